"""Thumbs up or down from a chat channel: a reaction to one of the bot's messages, or a
message that is nothing but a thumbs emoji.

A channel turns a rating reaction into a :class:`~foundation.messages.UserMessage` whose
metadata carries :data:`FEEDBACK` (:func:`reaction_message`); the server records it as
feedback on the rated reply and answers nothing. :func:`feedback_of` reads either kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foundation.messages import UserMessage

FEEDBACK = "feedback"  # metadata key: {"rating": "up"|"down", "rated_text": str | None}
UP, DOWN = "up", "down"
_MODIFIERS = {chr(c) for c in range(0x1F3FB, 0x1F400)} | {"\ufe0f", "\ufe0e"}  # skin tones, VS
UP_EMOJI = frozenset({"👍", "❤"})  # other emoji say too little to count as a rating
DOWN_EMOJI = frozenset({"👎", "😡", "😠"})
TYPED = {"👍": UP, "👎": DOWN}  # a message that is only one of these rates the last reply


@dataclass(frozen=True)
class Rating:
    """A rating of one reply: ``rated_text`` is the text of the message the person reacted
    to, as the channel sent it (None: the conversation's last reply); ``reaction``: it came
    as a reaction (nothing to answer), not as a typed message."""

    rating: str
    rated_text: str | None = None
    reaction: bool = True


def rating_of(emoji: str) -> str | None:
    """``"up"``, ``"down"`` or None (not a rating) for one emoji, skin tone aside."""
    bare = "".join(c for c in emoji.strip() if c not in _MODIFIERS)
    return UP if bare in UP_EMOJI else DOWN if bare in DOWN_EMOJI else None


def rating_text(rating: str) -> str:
    """The text of a rating message."""
    return "👍" if rating == UP else "👎"


def rating_metadata(rating: str, rated_text: str | None) -> dict[str, Any]:
    """The metadata that makes a message a rating reaction."""
    return {FEEDBACK: {"rating": rating, "rated_text": rated_text}}


def reaction_message(sender: str, channel: str, rating: str, *, rated_text: str | None,
                     metadata: dict[str, Any] | None = None) -> UserMessage:
    """The message a channel hands the core for a rating reaction."""
    return UserMessage(sender=sender, text=rating_text(rating), channel=channel,
                       metadata={**(metadata or {}), **rating_metadata(rating, rated_text)})


def feedback_of(message: UserMessage) -> Rating | None:
    """The rating ``message`` carries: a reaction's, or a typed thumbs alone; else None."""
    given = message.metadata.get(FEEDBACK)
    if isinstance(given, dict) and given.get("rating") in (UP, DOWN):
        rated = given.get("rated_text")
        return Rating(given["rating"], rated if isinstance(rated, str) else None)
    typed = TYPED.get("".join(c for c in message.text.strip() if c not in _MODIFIERS))
    return None if typed is None else Rating(typed, None, reaction=False)
