"""Reactions as feedback: which of the bot's messages a reaction points at.

Platforms name the message a reaction is on by their own id of it (WhatsApp's ``wamid``,
Messenger's ``mid``, Slack's ``ts``, Telegram's ``message_id``, the Bot Framework's activity
id). A connector remembers the ids its sends got back with the text they carried
(:class:`SentMessages`, in memory, per process); a rating reaction then becomes a
:func:`foundation.feedback.reaction_message` naming that text, which the server matches to
the reply in the conversation's history. A reaction to a message this process did not send
(after a restart) rates the conversation's last reply.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

KNOWN_MESSAGES = 20_000


class SentMessages:
    """The last :data:`KNOWN_MESSAGES` message ids this connector sent, with their text."""

    def __init__(self, size: int = KNOWN_MESSAGES) -> None:
        self.size = size
        self._texts: OrderedDict[str, str] = OrderedDict()

    def remember(self, ids: Iterable[str | None], text: str) -> None:
        """The messages ``ids`` (the parts of one reply) carried ``text``."""
        for message_id in ids:
            if message_id:
                self._texts.pop(message_id, None)
                self._texts[message_id] = text
        while len(self._texts) > self.size:
            self._texts.popitem(last=False)

    def text_of(self, message_id: str | None) -> str | None:
        return None if message_id is None else self._texts.get(message_id)

