"""The messages that cross between channels and the dialogue manager."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any


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

    def to_dict(self, recipient_id: str | None = None) -> dict[str, Any]:
        data = asdict(self)
        data["citations"] = [asdict(c) for c in self.citations]
        data["buttons"] = list(self.buttons)
        if recipient_id is not None:
            data["recipient_id"] = recipient_id
        return data


async def final_reply(items: AsyncIterator[str | BotReply]) -> BotReply:
    """Run a reply stream (text deltas, then the :class:`BotReply`) to its end; the reply."""
    reply: BotReply | None = None
    async for item in items:
        if isinstance(item, BotReply):
            reply = item
    if reply is None:
        raise RuntimeError("the reply stream ended without a reply")
    return reply
