"""One exception hierarchy for the whole framework.

Third-party errors are translated at the boundary with ``raise ... from exc`` so callers
only ever need to catch :class:`BotError` (or one of its children).
"""

from __future__ import annotations


class BotError(Exception):
    """Base class of every error the framework raises on purpose."""


class ConfigError(BotError):
    """A bot definition is invalid: the message names the file, key path and line."""

    def __init__(self, message: str, *, file: str = "", path: str = "", line: int | None = None):
        self.file = file
        self.path = path
        self.line = line
        self.reason = message
        where = file
        if file and line is not None:
            where = f"{file}:{line}"
        prefix = ": ".join(part for part in (where, path) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class NotTrainedError(BotError):
    """An artefact that `bot train` builds (index, adapter, classifier) is missing or stale."""


class ModelError(BotError):
    """A model could not be loaded or run (missing file, wrong base, corrupt weights)."""


class RetrievalError(BotError):
    """The FAQ index could not be built, loaded or searched."""


class SessionError(BotError):
    """The session store failed (unreadable database, lock timeout)."""


class ChannelError(BotError):
    """A channel rejected a request or could not deliver a reply."""


class BadRequest(ChannelError):
    """The request itself is malformed (bad JSON, missing field, too large)."""


class TurnTimeout(BotError):
    """A turn took longer than its configured limit."""


class TemplateError(BotError):
    """A reply template could not be rendered (unsafe access, a failing filter)."""


class ActionError(BotError):
    """An HTTP action failed (timeout, connection, 5xx, a reply that is not JSON)."""
