"""The adapters package's errors; ``bot/`` translates them at its boundary (``bot.errors``)."""

from __future__ import annotations

from retrieval.errors import Located


class AdapterError(Exception):
    """Base class of the errors the models and their training raise on purpose."""


class ModelError(AdapterError):
    """A model could not be loaded or run (missing file, wrong base, corrupt weights)."""


class NotTrainedError(AdapterError):
    """An artefact that training builds (classifier, adapter) is missing or stale."""


class SettingsError(Located, AdapterError):
    """Model settings that cannot work together (e.g. two entities of one name)."""
