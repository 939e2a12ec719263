"""The local dialogue model for ``model.engine``: one place that maps the setting to a class."""

from __future__ import annotations

from adapters.errors import ModelError
from adapters.generation import DialogueModel
from adapters.llama_model import LlamaCppDialogueModel
from adapters.settings import ModelSettings

LocalModel = DialogueModel | LlamaCppDialogueModel


def local_model(settings: ModelSettings) -> LocalModel:
    """An unloaded local model for ``settings.backend`` (``llama.cpp`` or ``transformers``)."""
    if settings.backend == "transformers":
        return DialogueModel(settings)
    if settings.backend == "llama.cpp":
        return LlamaCppDialogueModel(settings)
    raise ModelError(f"model.engine {settings.backend!r} runs no model in this process")
