"""Which engine runs the dialogue model: the one place that reads ``model.engine``.

:func:`engine_for` decides (``model.engine``, or what its absence means) and says what the
chosen engine needs; :func:`local_model` builds the model for an engine that runs on this
machine. Training, serving, ``bot engine build`` and evaluation ask these two rather than
reading the setting themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.engines.generation import DialogueModel
from adapters.engines.llama_model import LlamaCppDialogueModel
from adapters.errors import ModelError
from adapters.settings import EngineName, ModelSettings

LocalModel = DialogueModel | LlamaCppDialogueModel


@dataclass(frozen=True)
class EngineChoice:
    """The engine that runs a bot's dialogue model, and what it needs."""

    name: EngineName

    @property
    def local(self) -> bool:
        """Whether the model runs on this machine (its weights, the bot's adapter): every
        engine but a model server, which has both."""
        return self.name != "server"

    @property
    def llama_cpp(self) -> bool:
        """Whether it needs llama.cpp: its GGUF files at ``bot train`` and the
        ``llama-server`` binary at ``bot serve``."""
        return self.name == "llama.cpp"


def engine_for(settings: ModelSettings) -> EngineChoice:
    """The engine of ``settings``: ``model.engine``, or unset, ``server`` when a
    ``model.server`` section is there and ``llama.cpp`` otherwise."""
    if settings.engine is not None:
        return EngineChoice(settings.engine)
    return EngineChoice("server" if settings.server is not None else "llama.cpp")


def local_model(settings: ModelSettings) -> LocalModel:
    """An unloaded model for a local engine (``llama.cpp`` or ``transformers``)."""
    engine = engine_for(settings)
    if engine.name == "transformers":
        return DialogueModel(settings)
    if engine.name == "llama.cpp":
        return LlamaCppDialogueModel(settings)
    raise ModelError(f"model.engine {engine.name!r} runs no model in this process")
