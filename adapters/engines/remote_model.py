"""The dialogue model on an OpenAI-compatible model server (vLLM, llama.cpp, TGI).

With ``model.server`` set, workers load no weights. Each answer is one streaming
``POST {url}/chat/completions`` (``stream: true``, greedy) carrying the chat messages the
local model would get, for the served LoRA adapter the request names (``model.server.adapter``,
e.g. vLLM's ``--lora-modules`` name) or else the served model. The Server-Sent Events are
read as they arrive and the text is post-processed exactly as the local model's
(adapters/engines/answers.py). Every answer uses its own short-lived client session, as HTTP actions
do. The server applies the chat template and its stop tokens (and refuses a prompt too long
for it). A refused connection, a non-200 status, a malformed stream or ``timeout_s`` for the
whole answer is a :class:`ModelError` naming the URL, never the API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import aiohttp
from yarl import URL

from adapters.engines.answers import (
    AnswerCollector,
    GeneratedAnswer,
    GenerationRequest,
    finish_answer,
    rule_answer,
)
from adapters.engines.prompting import build_messages
from adapters.errors import ModelError
from adapters.settings import ModelServerSettings, ModelSettings

EXCERPT_BYTES = 300  # of an error body, in the message


class RemoteDialogueModel:
    """Answers :class:`GenerationRequest` objects on ``settings.server``; cheap to construct.

    ``server`` overrides ``settings.server``; ``lora_ids`` (adapter name -> id) makes it a
    client of a llama.cpp server holding those adapters: a request for adapter ``a`` then
    carries ``lora: [{"id": lora_ids[a], "scale": 1}, ...]``, the others at scale 0.
    ``merged`` names the adapter already merged into the served model (no ``lora`` needed).
    """

    def __init__(self, settings: ModelSettings, *, server: ModelServerSettings | None = None,
                 lora_ids: Mapping[str, int] | None = None, merged: str | None = None) -> None:
        server = server or settings.server
        if server is None:
            raise ModelError("model.server is not set: no model server to call")
        self.settings = settings
        self.server: ModelServerSettings = server
        self.lora_ids = dict(lora_ids) if lora_ids is not None else None
        self.merged = merged
        self.endpoint = self.server.url.rstrip("/") + "/chat/completions"
        self.shown_url = str(URL(self.server.url).with_user(None))  # no credentials in messages

    def stream(self, request: GenerationRequest) -> RemoteAnswerStream:
        """Text deltas of the answer; ``.answer`` holds the full result once exhausted."""
        return RemoteAnswerStream(self, request)

    async def agenerate(self, request: GenerationRequest) -> GeneratedAnswer:
        """The whole answer to ``request``."""
        stream = self.stream(request)
        try:
            async for _delta in stream:
                pass
        finally:
            await stream.aclose()
        assert stream.answer is not None
        return stream.answer

    def generate(self, request: GenerationRequest) -> GeneratedAnswer:
        """:meth:`agenerate` for synchronous code (not inside a running event loop)."""
        return asyncio.run(self.agenerate(request))

    def close(self) -> None:
        """Nothing to stop: each answer's connection closes with it."""

    def body(self, request: GenerationRequest) -> dict[str, Any]:
        """The chat-completions request for ``request`` (the local model's prompt)."""
        messages = build_messages(request.persona, request.question, request.passages,
                                  history=request.history,
                                  history_turns=self.settings.history_turns,
                                  max_words=self.settings.passage_words)
        body: dict[str, Any] = {
            "model": request.adapter or self.server.model, "messages": messages,
            "max_tokens": request.max_new_tokens or self.settings.max_new_tokens,
            "temperature": 0, "stream": True}
        lora = self.lora_field(request.adapter)
        if lora is not None:  # llama.cpp: the adapter is a field, the model stays the base
            body.update(model=self.server.model, lora=lora, cache_prompt=True)
        return body

    def lora_field(self, adapter: str | None) -> list[dict[str, Any]] | None:
        """The llama.cpp ``lora`` field that selects ``adapter`` (None: not llama.cpp)."""
        if self.server.lora_id is not None:
            return [{"id": self.server.lora_id, "scale": 1.0}]
        if self.lora_ids is None:
            return None
        if self.merged is not None:
            if adapter != self.merged:
                raise ModelError(f"the engine runs {self.merged!r}'s adapter merged into its "
                                 f"model; it cannot answer for {adapter or 'the base model'!r}")
            return []
        if adapter is not None and adapter not in self.lora_ids:
            known = ", ".join(sorted(self.lora_ids)) or "(none loaded)"
            raise ModelError(f"unknown adapter {adapter!r}; loaded adapters: {known}")
        # every adapter named, the others at 0: an empty list would let the server reuse a
        # prompt cache computed with the previous request's adapter
        return [{"id": n, "scale": 1.0 if name == adapter else 0.0}
                for name, n in self.lora_ids.items()]

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.server.api_key:
            headers["Authorization"] = f"Bearer {self.server.api_key}"
        return headers

    async def deltas(self, request: GenerationRequest
                     ) -> AsyncGenerator[tuple[str, int | None], None]:
        """``(text, completion tokens if the chunk reports usage)`` per streamed chunk."""
        timeout = aiohttp.ClientTimeout(total=self.server.timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as client, client.post(
                    self.endpoint, json=self.body(request), headers=self.headers()) as response:
                if response.status != 200:
                    body = await response.content.read(EXCERPT_BYTES)
                    excerpt = body.decode("utf-8", "replace").strip() or "(empty body)"
                    raise self.error(f"answered HTTP {response.status}: {excerpt}")
                finished = False
                async for data in sse_data(response.content):
                    if data.strip() == "[DONE]":
                        return
                    text, finish, used = self.parse(data)
                    finished = finished or finish
                    yield text, used
                if not finished:
                    raise self.error("closed the event stream before it finished")
        except ModelError:
            raise
        except TimeoutError as exc:
            raise self.error(f"did not answer within {self.server.timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise self.error(f"failed: {exc}") from exc
        except ValueError as exc:  # undecodable bytes, an over-long line
            raise self.error(f"sent a malformed event stream: {exc}") from exc

    def parse(self, data: str) -> tuple[str, bool, int | None]:
        """``(content, finished, completion tokens or None)`` of one chunk's JSON."""
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise self.error(f"sent malformed JSON in its event stream: {data[:80]!r}") from exc
        if not isinstance(chunk, dict):
            raise self.error(f"sent a chunk that is not a JSON object: {data[:80]!r}")
        if "error" in chunk:
            raise self.error(f"reported an error: {json.dumps(chunk['error'])[:EXCERPT_BYTES]}")
        usage = chunk.get("usage")
        used = usage.get("completion_tokens") if isinstance(usage, dict) else None
        choices = chunk.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise self.error(f"sent a chunk without valid choices: {data[:80]!r}")
        if not choices:
            return "", False, used if isinstance(used, int) else None
        delta = choices[0].get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        if content is not None and not isinstance(content, str):
            raise self.error(f"sent non-text content: {data[:80]!r}")
        return (content or "", bool(choices[0].get("finish_reason")),
                used if isinstance(used, int) else None)

    def error(self, what: str) -> ModelError:
        """A :class:`ModelError` naming the server (any API key masked)."""
        message = f"model server {self.shown_url} {what}"
        if self.server.api_key:
            message = message.replace(self.server.api_key, "***")
        return ModelError(message)


async def sse_data(content: aiohttp.StreamReader) -> AsyncIterator[str]:
    """The ``data`` of each Server-Sent Event read from ``content`` (other fields skipped)."""
    lines: list[str] = []
    async for raw in content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:  # a blank line ends an event
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        name, _, value = line.partition(":")
        if name == "data":  # ":" first (name "") is a comment
            lines.append(value.removeprefix(" "))
    if lines:
        yield "\n".join(lines)


class RemoteAnswerStream:
    """Async iterator of answer text deltas from the model server.

    ``answer`` is the :class:`GeneratedAnswer` once the stream is exhausted (after an early
    ``aclose()``: the answer so far). ``aclose()`` cancels the HTTP request.
    """

    def __init__(self, model: RemoteDialogueModel, request: GenerationRequest) -> None:
        self._model = model
        self._request = request
        self._run: AsyncGenerator[str, None] | None = None
        self.answer: GeneratedAnswer | None = None

    def __aiter__(self) -> RemoteAnswerStream:
        return self

    async def __anext__(self) -> str:
        if self._run is None:
            self._run = self._answer()
        return await self._run.__anext__()

    async def aclose(self) -> None:
        """Stop reading and close the connection (the server then stops generating)."""
        if self._run is not None:
            await self._run.aclose()

    async def _answer(self) -> AsyncGenerator[str, None]:
        request = self._request
        if not request.passages:  # the rule answer: no model call
            self.answer = rule_answer(request)
            yield request.no_answer
            return
        started = time.perf_counter()
        shown: list[str] = []
        collector = AnswerCollector(shown.append)
        pieces, reported, first = 0, None, None

        def answer() -> GeneratedAnswer:
            return finish_answer(request, collector.finish(), tokens=reported or pieces,
                                 started=started, first_token_at=first)

        try:
            async with contextlib.aclosing(self._model.deltas(request)) as deltas:
                async for text, used in deltas:
                    reported = used if used is not None else reported
                    if text:
                        first = first or time.perf_counter()
                        pieces += 1  # one chunk per token on vLLM and llama.cpp
                        collector.take(text)
                        if collector.looping():  # closing the request stops the server
                            break
                    while shown:
                        yield shown.pop(0)
        except GeneratorExit:  # aclose(): the request is cancelled; keep what came
            self.answer = answer()
            raise
        self.answer = answer()
        for text in shown:  # the text the marker filter held back
            yield text
