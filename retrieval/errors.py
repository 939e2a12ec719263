"""The retrieval package's errors; ``bot/`` translates them at its boundary (``bot.errors``)."""

from __future__ import annotations

from foundation.errors import Located


class RetrievalError(Exception):
    """The FAQ index could not be built, loaded or searched."""


class SourceError(Located, RetrievalError):
    """A FAQ or YAML file is unreadable or invalid: names the file, key path and line."""


class EmptySourceError(SourceError):
    """A file holds nothing to answer from (no entries, no text): skipped with a warning when
    a folder or glob named it, an error when it was named on its own."""


class EmbedderError(RetrievalError):
    """The embedding model could not be loaded or run."""
