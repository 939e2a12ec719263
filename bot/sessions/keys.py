"""Sender ids without personal data, and the server secret that keys them.

Callers of the ``rest`` and ``webhook`` channels choose the sender id, and some use the
customer's e-mail address or phone number. With ``sessions.hash_senders: auto`` (the
default) such an id is replaced, before anything is stored or locked, by ``h-`` and a keyed
hash (HMAC-SHA256 under the server's secret), so session keys, events, Redis lock and
rate-limit key names never hold it; the same id always maps to the same session. Browser
visitors (random ids) and platform ids (Telegram, Slack) are kept as they are, since
replies are pushed to them by id.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets

from bot.definition.config import BotDefinition
from bot.sessions.redaction import find_pii

CALLER_CHOSEN = frozenset({"rest", "webhook"})  # channels whose callers pick the sender id
PREFIX = "h-"


class SenderIds:
    """Maps a channel's sender id to the one sessions are stored under."""

    def __init__(self, secret: str, *, mode: str = "auto") -> None:
        self.secret = secret.encode("utf-8")
        self.mode = mode

    def stored(self, channel: str, sender: str) -> str:
        """``sender``, or its keyed hash when it looks like personal data."""
        if self.mode == "never" or channel not in CALLER_CHOSEN or sender.startswith(PREFIX) \
                or not any(f.kind in ("email", "phone") for f in find_pii(sender)):
            return sender
        digest = hmac.new(self.secret, f"{channel}:{sender}".encode(), hashlib.sha256)
        return PREFIX + digest.hexdigest()[:32]


def server_secret(bot: BotDefinition) -> str:
    """``security.session_secret``, or a random secret kept in the bot's build folder (every
    worker on this machine shares it; workers on several machines need ``session_secret``).
    It signs browser session tokens and keys hashed sender ids."""
    configured = bot.config.security.session_secret
    if configured:
        return configured
    path = bot.build_dir / "session_secret"
    if not path.is_file():  # written whole, then linked: workers starting together agree
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".session_secret.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text(encoding="utf-8").strip()
