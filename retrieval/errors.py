"""The retrieval package's errors; ``bot/`` translates them at its boundary (``bot.errors``)."""

from __future__ import annotations


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


class RetrievalError(Exception):
    """The FAQ index could not be built, loaded or searched."""


class SourceError(Located, RetrievalError):
    """A FAQ or YAML file is unreadable or invalid: names the file, key path and line."""


class EmbedderError(RetrievalError):
    """The embedding model could not be loaded or run."""
