"""Grounded answers from the dialogue model, with one base model serving many bots' adapters.

``DialogueModel(settings)`` is cheap; ``load()`` loads the base model. Each bot's LoRA
adapter is added by name (``add_adapter``/``add_bot_adapter``); a request names the adapter
to use (or none for the plain base). Requests run one at a time under a lock, so concurrent
requests never mix adapters. ``generate`` blocks; ``stream`` yields text deltas while the
model runs in a worker thread. With no passages the answer is a rule: say so and offer a
human, no model call.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.adapter_store import adapter_dir, check_adapter
from adapters.base_model import BaseModel, load_base_model
from adapters.prompting import (
    NO_ANSWER,
    MarkerFilter,
    Turn,
    build_messages,
    is_decline,
    parse_citations,
    strip_markers,
    verify_citations,
)
from bot.config import BotDefinition, ModelSettings, Persona
from bot.errors import BotError, ModelError
from retrieval.documents import Passage

MAX_PROMPT_TOKENS = 2048


@dataclass(frozen=True)
class GenerationRequest:
    """One question with the passages (already filtered for relevance) to answer from."""

    question: str
    passages: Sequence[Passage] = ()
    history: Sequence[Turn] = ()
    persona: Persona = field(default_factory=Persona)
    adapter: str | None = None
    max_new_tokens: int | None = None
    no_answer: str = NO_ANSWER


@dataclass(frozen=True)
class GeneratedAnswer:
    """The answer text (markers removed), the passage ids it cites and how it came about."""

    text: str
    cited_ids: tuple[str, ...] = ()
    declined: bool = False
    tokens: int = 0
    seconds: float = 0.0
    adapter: str | None = None
    first_token_seconds: float | None = None
    marked_ids: tuple[str, ...] = ()  # the model's own markers (in the prompt), before checks


class _DeltaStreamer:
    """A ``generate`` streamer that decodes new tokens and hands text deltas to a callback."""

    def __init__(self, tokenizer: Any, on_delta: Callable[[str], None]) -> None:
        self.tokenizer = tokenizer
        self.on_delta = on_delta
        self.ids: list[int] = []
        self.shown = 0
        self.prompt_seen = False
        self.first_token_at: float | None = None

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.ids.extend(value.reshape(-1).tolist())
        self._flush(final=False)

    def end(self) -> None:
        self._flush(final=True)

    def _flush(self, *, final: bool) -> None:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)
        if not final and text.endswith("\ufffd"):
            return  # an incomplete UTF-8 character: wait for the next token
        if len(text) > self.shown:
            delta, self.shown = text[self.shown:], len(text)
            self.on_delta(delta)


def _cancel_criterion(cancel: threading.Event) -> Any:
    import torch
    from transformers import StoppingCriteria

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool,
                              device=input_ids.device)

    return Cancelled()


class DialogueModel:
    """A base model plus named LoRA adapters; answers :class:`GenerationRequest` objects."""

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()
        self._base: BaseModel | None = None
        self._peft: Any = None
        self._adapters: dict[str, Path] = {}
        self._lock = threading.Lock()  # one request at a time on the shared model
        self._load_lock = threading.Lock()

    def load(self) -> DialogueModel:
        """Load the base model now (idempotent, thread-safe)."""
        with self._load_lock:
            if self._base is None:
                self._base = load_base_model(self.settings)
        return self

    @property
    def base(self) -> BaseModel:
        if self._base is None:
            raise ModelError("the dialogue model is not loaded; call load() first")
        return self._base

    @property
    def adapters(self) -> dict[str, Path]:
        """Loaded adapters by name."""
        return dict(self._adapters)

    def add_adapter(self, name: str, path: Path) -> None:
        """Load (or hot-swap) the adapter at ``path`` under ``name``; checks its base model."""
        base = self.load().base
        check_adapter(path, base_name=base.name, base_fingerprint=base.fingerprint)
        with self._lock:
            try:
                if self._peft is None:
                    from peft import PeftModel

                    self._peft = PeftModel.from_pretrained(base.model, str(path),
                                                           adapter_name=name)
                else:
                    if name in self._adapters:
                        self._peft.delete_adapter(name)
                    self._peft.load_adapter(str(path), adapter_name=name)
            except Exception as exc:  # third-party boundary: damaged or foreign adapter
                raise ModelError(f"cannot load adapter {path}: {exc}") from exc
            self._peft.eval()
            self._adapters[name] = path

    def add_bot_adapter(self, bot: BotDefinition) -> str:
        """Load ``bot``'s trained adapter under the bot's name; returns that name."""
        self.add_adapter(bot.config.name, adapter_dir(bot))
        return bot.config.name

    def remove_adapter(self, name: str) -> None:
        with self._lock:
            if name in self._adapters and self._peft is not None:
                self._peft.delete_adapter(name)
                del self._adapters[name]

    def generate(self, request: GenerationRequest) -> GeneratedAnswer:
        """Answer ``request`` (blocking)."""
        return self._run(request, lambda _delta: None, threading.Event())

    async def agenerate(self, request: GenerationRequest) -> GeneratedAnswer:
        """:meth:`generate` in a worker thread."""
        return await asyncio.to_thread(self.generate, request)

    def stream(self, request: GenerationRequest) -> AnswerStream:
        """Text deltas of the answer; ``.answer`` holds the full result once exhausted."""
        return AnswerStream(self, request)

    def prompt_ids(self, request: GenerationRequest) -> dict[str, Any]:
        """The tokenised prompt (``input_ids``, ``attention_mask``) for ``request``."""
        tokenizer = self.base.tokenizer
        history = list(request.history)
        words = self.settings.passage_words
        while True:
            messages = build_messages(request.persona, request.question, request.passages,
                                      history=history, history_turns=self.settings.history_turns,
                                      max_words=words)
            encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                    return_tensors="pt", return_dict=True)
            if encoded["input_ids"].shape[1] <= MAX_PROMPT_TOKENS or (words <= 8 and not history):
                return dict(encoded)
            if history:
                history = history[1:]
            else:
                words //= 2

    def _model_for(self, adapter: str | None) -> tuple[Any, contextlib.AbstractContextManager[Any]]:
        """The module to run and a context that selects ``adapter`` (call under the lock)."""
        if adapter is None:
            if self._peft is None:
                return self.base.model, contextlib.nullcontext()
            return self._peft, self._peft.disable_adapter()
        if adapter not in self._adapters:
            known = ", ".join(sorted(self._adapters)) or "(none loaded)"
            raise ModelError(f"unknown adapter {adapter!r}; loaded adapters: {known}")
        self._peft.set_adapter(adapter)
        return self._peft, contextlib.nullcontext()

    def _run(self, request: GenerationRequest, on_delta: Callable[[str], None],
             cancel: threading.Event) -> GeneratedAnswer:
        started = time.perf_counter()
        if not request.passages:
            text = request.no_answer
            on_delta(text)
            return GeneratedAnswer(text, (), True, 0, 0.0, request.adapter)
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        base = self.load().base
        tokenizer = base.tokenizer
        inputs = {k: v.to(base.device) for k, v in self.prompt_ids(request).items()}
        stops = {tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(
            ["<|im_end|>", "<|im_start|>"])} - {None, tokenizer.unk_token_id}
        config = GenerationConfig(
            max_new_tokens=request.max_new_tokens or self.settings.max_new_tokens,
            do_sample=False, use_cache=True, eos_token_id=sorted(stops),
            pad_token_id=tokenizer.pad_token_id,
        )
        raw: list[str] = []
        cleaner = MarkerFilter()

        def take(delta: str) -> None:
            raw.append(delta)
            shown = cleaner.feed(delta)
            if shown:
                on_delta(shown)

        streamer = _DeltaStreamer(tokenizer, take)
        with self._lock:
            model, selected = self._model_for(request.adapter)
            try:
                with selected, torch.inference_mode():
                    output = model.generate(
                        **inputs, generation_config=config, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_cancel_criterion(cancel)]),
                    )
            except BotError:
                raise
            except Exception as exc:  # third-party boundary
                raise ModelError(f"generation failed: {exc}") from exc
        tail = cleaner.finish()
        if tail:
            on_delta(tail)
        full = "".join(raw)
        text = strip_markers(full)
        marked = parse_citations(full, (p.id for p in request.passages))
        cited = verify_citations(text, marked, request.passages)
        tokens = int(output.shape[1] - inputs["input_ids"].shape[1])
        first = (streamer.first_token_at - started) if streamer.first_token_at else None
        return GeneratedAnswer(text, cited, not cited and is_decline(text), tokens,
                               time.perf_counter() - started, request.adapter, first, marked)


_END = object()


class AnswerStream:
    """Async iterator of answer text deltas; the model runs in a worker thread.

    ``answer`` is the :class:`GeneratedAnswer` once the stream is exhausted. ``aclose()``
    stops generation early (e.g. when the client went away).
    """

    def __init__(self, model: DialogueModel, request: GenerationRequest) -> None:
        self._model = model
        self._request = request
        self._cancel = threading.Event()
        self._queue: asyncio.Queue[object] | None = None
        self._task: asyncio.Future[GeneratedAnswer] | None = None
        self.answer: GeneratedAnswer | None = None

    def __aiter__(self) -> AnswerStream:
        return self

    def _start(self) -> asyncio.Queue[object]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def on_delta(delta: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, delta)

        def work() -> GeneratedAnswer:
            try:
                return self._model._run(self._request, on_delta, self._cancel)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        self._task = asyncio.ensure_future(asyncio.to_thread(work))
        return queue

    async def __anext__(self) -> str:
        if self._queue is None:
            self._queue = self._start()
        item = await self._queue.get()
        if item is _END:
            assert self._task is not None
            self.answer = await self._task  # re-raises the worker's error
            raise StopAsyncIteration
        assert isinstance(item, str)
        return item

    async def aclose(self) -> None:
        """Stop generating and wait for the worker thread to finish."""
        self._cancel.set()
        if self._task is not None:
            with contextlib.suppress(BotError):
                self.answer = await self._task

