"""The messages that cross between channels and the dialogue manager, and the stream a
reply arrives in."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, aclosing
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from foundation.errors import BadRequest


@dataclass(frozen=True)
class UserMessage:
    """One incoming message from a user on a channel."""

    sender: str
    text: str
    channel: str = "rest"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def session_key(self) -> str:
        return f"{self.channel}:{self.sender}"


def clean_text(text: object, *, max_chars: int) -> str:
    """Validate and normalise a user message; raise :class:`BadRequest` when unusable."""
    if not isinstance(text, str):
        raise BadRequest(f"'message' must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise BadRequest(f"'message' is too long: {len(text)} characters (limit {max_chars})")
    if "\x00" in text or any(unicodedata.category(c) == "Cs" for c in text):
        raise BadRequest("'message' contains binary data")
    cleaned = " ".join(text.split())
    if not cleaned:
        raise BadRequest("'message' is empty")
    return cleaned


def cleaned(message: UserMessage, *, max_chars: int) -> UserMessage:
    """``message`` with its text validated and normalised (:func:`clean_text`)."""
    return UserMessage(sender=message.sender, text=clean_text(message.text, max_chars=max_chars),
                       channel=message.channel, metadata=message.metadata)


@dataclass(frozen=True)
class Citation:
    """A FAQ passage a reply is grounded in."""

    passage_id: str
    source: str
    title: str
    score: float


@dataclass(frozen=True)
class BotReply:
    """What the bot answers for one turn."""

    text: str
    citations: tuple[Citation, ...] = ()
    intent: str | None = None
    confidence: float | None = None
    sentiment: str | None = None
    handoff: bool = False
    buttons: tuple[dict[str, str], ...] = ()
    kind: str = "faq"
    decision: dict[str, Any] | None = None  # the answer decision and its evidence
    agent: str | None = None  # the person who wrote it (kind agent, agent_joined, ...)

    def to_dict(self, recipient_id: str | None = None) -> dict[str, Any]:
        data = asdict(self)
        data["citations"] = [asdict(c) for c in self.citations]
        data["buttons"] = list(self.buttons)
        if recipient_id is not None:
            data["recipient_id"] = recipient_id
        return data


class Deltas(Protocol):
    """Text deltas that can be stopped early (an async generator, a model's answer stream)."""

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


ReplyHook = Callable[[BotReply], Awaitable[BotReply]]
DeltaHook = Callable[[str], str | None]  # a delta to pass on, or None to hold it back


class ReplyStream:
    """One reply as it is produced: text deltas, then the final :class:`BotReply`.

    ``async for delta in stream`` gives the deltas; afterwards :attr:`reply` is the final
    reply. Stages make one with :meth:`of` (a finished reply) or :meth:`streaming` (a model's
    deltas and a function that builds the reply once they end); the layers above attach
    hooks instead of re-yielding: :meth:`on_delta` sees (and may hold back) each delta,
    :meth:`on_reply` rewrites the final reply (record it, check it, count it), and
    :meth:`within` runs the whole stream inside a scope (a session lock, a timeout).

    Text of the final reply that was not streamed (a finished reply's whole text, an offer a
    hook appended) comes as one last delta, so the deltas add up to the reply's text unless
    a hook changed what was already shown. Iterate a stream once.
    """

    def __init__(self, deltas: Deltas | None,
                 finish: Callable[[], BotReply] | None,
                 scope: AbstractAsyncContextManager[ReplyStream] | None = None) -> None:
        self._deltas = deltas
        self._finish = finish
        self._scope = scope
        self._delta_hooks: list[DeltaHook] = []
        self._reply_hooks: list[ReplyHook] = []
        self._started = False
        self.reply: BotReply | None = None

    @classmethod
    def of(cls, reply: BotReply) -> ReplyStream:
        """A reply that is already complete."""
        return cls(None, lambda: reply)

    @classmethod
    def streaming(cls, deltas: Deltas, finish: Callable[[], BotReply]) -> ReplyStream:
        """``deltas`` as produced; ``finish()`` builds the reply once they are exhausted."""
        return cls(deltas, finish)

    @classmethod
    def within(cls, scope: AbstractAsyncContextManager[ReplyStream]) -> ReplyStream:
        """The stream ``scope`` opens, iterated (hooks included) before the scope closes;
        errors raised meanwhile pass through the scope (it may translate them)."""
        return cls(None, None, scope)

    def on_delta(self, hook: DeltaHook) -> ReplyStream:
        self._delta_hooks.append(hook)
        return self

    def on_reply(self, hook: ReplyHook) -> ReplyStream:
        self._reply_hooks.append(hook)
        return self

    def __aiter__(self) -> AsyncIterator[str]:
        if self._started:
            raise RuntimeError("a reply stream can be iterated only once")
        self._started = True
        return self._run()

    async def _run(self) -> AsyncIterator[str]:
        shown = ""
        async with AsyncExitStack() as scopes:
            layers = [self]  # this stream, then the ones its scopes opened, innermost last
            while layers[-1]._scope is not None:
                layers.append(await scopes.enter_async_context(layers[-1]._scope))
            core = layers[-1]
            delta_hooks = [h for layer in reversed(layers) for h in layer._delta_hooks]
            if core._deltas is not None:
                async with aclosing(core._deltas) as deltas:
                    async for delta in deltas:
                        passed: str | None = delta
                        for check in delta_hooks:
                            if passed is None:
                                break
                            passed = check(passed)
                        if passed:
                            shown += passed
                            yield passed
            assert core._finish is not None
            reply = core._finish()
            for rewrite in (h for layer in reversed(layers) for h in layer._reply_hooks):
                reply = await rewrite(reply)
            self.reply = reply
        if reply.text.startswith(shown) and len(reply.text) > len(shown):
            yield reply.text[len(shown):]

    async def result(self) -> BotReply:
        """Run the stream to its end; the final reply."""
        async for _ in self:
            pass
        assert self.reply is not None
        return self.reply
