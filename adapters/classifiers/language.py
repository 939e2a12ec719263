"""The language of a message, identified offline with ``py3langid`` (an optional install:
``pip install "supportbot[multilingual]"``).

The identifier chooses among the bot's ``language.candidates`` only (restricting it to a few
languages makes it far surer on short questions) and answers None for a message it should
not judge: shorter than ``min_chars`` ("ok", "thanks", "hola"; a Chinese, Japanese or Korean
character counts twice) or identified with less than ``min_confidence``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from adapters.errors import ModelError
from adapters.settings import LanguageSettings

INSTALL = 'pip install "supportbot[multilingual]"'


@dataclass(frozen=True)
class Identified:
    """A message's most likely language and the identifier's probability for it."""

    code: str
    confidence: float


def weighted_length(text: str) -> int:
    """Characters of ``text`` without spaces, an ideograph or Hangul syllable counting two."""
    return sum(2 if _wide(ch) else 1 for ch in text if not ch.isspace())


def _wide(ch: str) -> bool:
    code = ord(ch)
    return 0x3040 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF


class LanguageIdentifier:
    """Identifies the language of messages among ``settings.candidates``."""

    def __init__(self, settings: LanguageSettings) -> None:
        self.settings = settings
        self._model: Any = None
        self._lock = threading.Lock()  # py3langid narrows its model in place: load once

    def load(self) -> LanguageIdentifier:
        """Load the identifier's model now (idempotent); ModelError naming the pip line
        when py3langid is missing, or naming a candidate it does not know."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self

    def _load(self) -> Any:
        try:
            from py3langid.langid import MODEL_FILE
            from py3langid.langid import LanguageIdentifier as Model
        except ImportError as exc:
            raise ModelError(f"identifying each message's language needs the optional "
                             f"package py3langid ({INSTALL})") from exc
        model = Model.from_model_file(MODEL_FILE, norm_probs=True)
        unknown = sorted(set(self.settings.candidates) - set(model.labels))
        if unknown:
            raise ModelError(f"language.candidates: py3langid does not know "
                             f"{', '.join(unknown)}")
        model.set_languages(list(self.settings.candidates))
        return model

    def rank(self, text: str) -> Identified:
        """The most likely candidate language of ``text``, however short or unsure."""
        self.load()
        code, confidence = self._model.classify(text)
        return Identified(str(code), float(confidence))

    def identify(self, text: str) -> str | None:
        """The language of ``text``; None when it is too short or the identifier unsure."""
        if weighted_length(text) < self.settings.min_chars:
            return None
        found = self.rank(text)
        return found.code if found.confidence >= self.settings.min_confidence else None
