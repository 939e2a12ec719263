"""The one interface every dialogue engine offers: stream an answer to a request.

Local weights (:class:`adapters.engines.generation.DialogueModel`), llama.cpp's server
(:class:`adapters.engines.llama_model.LlamaCppDialogueModel`) and a model server
(:class:`adapters.engines.remote_model.RemoteDialogueModel`) all satisfy
:class:`StreamingModel`; a new engine is one more class with these methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from adapters.engines.answers import GeneratedAnswer, GenerationRequest


class AnswerTextStream(Protocol):
    """Text deltas of one answer; ``answer`` is set once exhausted; ``aclose()`` stops it."""

    answer: GeneratedAnswer | None

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def __anext__(self) -> str: ...

    async def aclose(self) -> None: ...


class StreamingModel(Protocol):
    """A dialogue model one can stream answers from, whatever engine runs it."""

    def stream(self, request: GenerationRequest) -> AnswerTextStream: ...

    def close(self) -> None: ...
