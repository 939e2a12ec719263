"""Grounded answers from the dialogue model, with one base model serving many bots' adapters.

``DialogueModel(settings)`` is cheap; ``load()`` loads the base model. Each bot's LoRA
adapter is added by name (``add_adapter``/``add_bot_adapter``); a request names the adapter
to use (or none for the plain base). Concurrent requests are batched: a worker thread
collects them for up to ``model.batch_wait_ms`` (at most ``model.max_batch``, one adapter
per batch) and runs one left-padded greedy ``generate``, the adapter selected under a lock
so adapters never mix. ``generate`` blocks; ``stream`` yields text deltas as the model
produces them. With no passages the answer is a rule: say so and offer a human, no model call.
The raw text becomes an answer the same way as a model server's (adapters/engines/answers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from adapters.engines.adapter_store import check_adapter
from adapters.engines.answers import (
    AnswerCollector,
    GeneratedAnswer,
    GenerationRequest,
    finish_answer,
    rule_answer,
)
from adapters.engines.base_model import BaseModel, load_base_model
from adapters.engines.batching import BatchQueue, BatchStreamer, Job, RowStream, left_pad
from adapters.engines.prompting import build_messages
from adapters.errors import AdapterError, ModelError
from adapters.settings import ModelSettings

__all__ = ["AnswerStream", "DialogueModel", "GeneratedAnswer", "GenerationRequest"]

MAX_PROMPT_TOKENS = 2048


_Job = Job[GenerationRequest, GeneratedAnswer]


class DialogueModel:
    """A base model plus named LoRA adapters; answers :class:`GenerationRequest` objects."""

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()
        self._base: BaseModel | None = None
        self._peft: Any = None
        self._adapters: dict[str, Path] = {}
        self._lock = threading.Lock()  # one model call (and adapter choice) at a time
        self._load_lock = threading.Lock()
        self._queue: BatchQueue[GenerationRequest, GeneratedAnswer] = BatchQueue(
            self._run_batch, max_batch=self.settings.max_batch,
            wait_s=self.settings.batch_wait_ms / 1000)

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

    def close(self) -> None:
        """Nothing to stop: the weights live in this process."""

    def remove_adapter(self, name: str) -> None:
        with self._lock:
            if name in self._adapters and self._peft is not None:
                self._peft.delete_adapter(name)
                del self._adapters[name]

    def generate(self, request: GenerationRequest) -> GeneratedAnswer:
        """Answer ``request`` (blocking)."""
        return self._submit(request, lambda _delta: None, threading.Event()).result()

    async def agenerate(self, request: GenerationRequest) -> GeneratedAnswer:
        """:meth:`generate` without blocking the event loop (the batch worker runs it)."""
        cancel = threading.Event()
        try:
            return await asyncio.wrap_future(self._submit(request, lambda _delta: None, cancel))
        except asyncio.CancelledError:  # e.g. a turn timeout: stop this row, if it runs
            cancel.set()
            raise

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

    def _submit(self, request: GenerationRequest, on_delta: Callable[[str], None],
                cancel: threading.Event) -> Future[GeneratedAnswer]:
        """Queue ``request`` for the batch worker; a rule answer resolves at once."""
        job = _Job(request, request.adapter, on_delta, cancel)
        if request.passages:
            return self._queue.submit(job)
        on_delta(request.no_answer)
        job.future.set_result(rule_answer(request))
        return job.future

    def _stop_ids(self) -> list[int]:
        tokenizer = self.base.tokenizer
        stops = {tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(
            ["<|im_end|>", "<|im_start|>"])} - {None, tokenizer.unk_token_id}
        return sorted(stops)

    def _run_batch(self, jobs: list[_Job]) -> None:
        """Answer ``jobs`` (one adapter) with one greedy batched ``generate``."""
        for job in jobs:
            if job.cancel.is_set():  # cancelled while queued
                job.future.set_result(self._answer(job, "", 0, 0))
        jobs = [job for job in jobs if not job.future.done()]
        if not jobs:
            return
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        base = self.load().base
        tokenizer = base.tokenizer
        prompts = [self.prompt_ids(job.request)["input_ids"][0].tolist() for job in jobs]
        input_ids, mask = left_pad(prompts, tokenizer.pad_token_id)
        stops = self._stop_ids()
        rows = [self._row(job, tokenizer, len(jobs)) for job in jobs]
        streamer = BatchStreamer(rows, stops)
        config = GenerationConfig(
            max_new_tokens=max(row.limit for row in rows), do_sample=False, use_cache=True,
            eos_token_id=stops, pad_token_id=tokenizer.pad_token_id,
        )
        with self._lock:
            model, selected = self._model_for(jobs[0].key)
            try:
                with selected, torch.inference_mode():
                    model.generate(
                        input_ids=input_ids.to(base.device), attention_mask=mask.to(base.device),
                        generation_config=config, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList(
                            [streamer.criterion(input_ids.shape[1])]),
                    )
            except AdapterError:
                raise
            except Exception as exc:  # third-party boundary
                raise ModelError(f"generation failed: {exc}") from exc
        streamer.end()

    def _row(self, job: _Job, tokenizer: Any, batch_size: int) -> RowStream:
        """The streamed row of ``job``; its future resolves as soon as the row is done."""
        collector = AnswerCollector(job.on_delta)

        def done(row: RowStream) -> None:
            job.future.set_result(self._answer(job, collector.finish(), len(row.ids),
                                               batch_size, row.first_token_at))

        return RowStream(tokenizer, collector.take, done, cancel=job.cancel,
                         limit=job.request.max_new_tokens or self.settings.max_new_tokens)

    def _answer(self, job: _Job, full: str, tokens: int, batch_size: int,
                first_token_at: float | None = None) -> GeneratedAnswer:
        """The answer from the raw generated text ``full`` (markers included)."""
        return finish_answer(job.request, full, tokens=tokens, started=job.enqueued,
                             batch_size=batch_size, first_token_at=first_token_at)


_END = object()


class AnswerStream:
    """Async iterator of answer text deltas; the model runs in the batch worker thread.

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

        future = self._model._submit(self._request, on_delta, self._cancel)
        # deltas are posted before the future resolves, so _END comes after the last one
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, _END))
        self._task = asyncio.wrap_future(future)
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
        """Stop generating this answer and wait until its row has stopped."""
        self._cancel.set()
        if self._task is not None:
            with contextlib.suppress(AdapterError):
                self.answer = await self._task

