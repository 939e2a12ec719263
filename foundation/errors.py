"""The errors that cross floors: the framework's base, a located error, and the channel family.

Each library keeps its own family (``retrieval.errors``, ``adapters.errors``); ``bot/``
translates those at its boundary. The errors here are the ones a connector raises or
catches, and the one a settings check raises, so they sit below every package.
"""

from __future__ import annotations


class BotError(Exception):
    """Base class of every error the framework raises on purpose."""


class Located(Exception):
    """An error that names a place in a file: ``file:line: key.path: reason``."""

    def __init__(self, message: str, *, file: str = "", path: str = "", line: int | None = None):
        self.file = file
        self.path = path
        self.line = line
        self.reason = message
        where = f"{file}:{line}" if file and line is not None else file
        prefix = ": ".join(part for part in (where, path) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(Located, BotError):
    """A bot definition is invalid: the message names the file, key path and line."""


class ChannelError(BotError):
    """A channel rejected a request or could not deliver a reply."""


class BadRequest(ChannelError):
    """The request itself is malformed (bad JSON, missing field, too large)."""


class Forbidden(ChannelError):
    """The caller is known but may not do this (another user's conversation, another
    agent's conversation): HTTP 403."""
