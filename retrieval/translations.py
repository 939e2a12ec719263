"""FAQ entries in several languages: ``question`` and ``answer`` written as a mapping from
language code to text, the FAQ's own language first::

    - id: card-not-arrived
      question:
        en: My card has not arrived
        es: No me ha llegado la tarjeta
        zh: 我的卡还没到
      answer:
        en: Cards arrive within 5-7 working days.
        es: Las tarjetas llegan en 5-7 días laborables.
        zh: 银行卡会在5至7个工作日内寄到。

The first language's texts are the entry's question and answer; the other languages'
questions become more wordings of the entry (so a question in that language finds it and the
answer decision learns from it), and their answers the entry's translations, which the bot
quotes to a customer writing in that language (``bot/dialogue/language.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from retrieval.errors import SourceError

LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?")  # en, es, zh, pt-BR, zh-Hans


@dataclass(frozen=True)
class Localized:
    """A field's text in the FAQ's own language, that language when the field names it, and
    the text in other languages (``(code, text)``, in the order written)."""

    text: str
    language: str | None = None
    others: tuple[tuple[str, str], ...] = ()


def localized(value: Any, *, path: str, display: str, line: int | None) -> Localized:
    """A ``question`` or ``answer``: one text, or a mapping of language code to text."""
    if isinstance(value, str) and value.strip():
        return Localized(value)
    if not isinstance(value, dict) or not value:
        raise SourceError("must be a non-empty string, or a mapping of language code to text "
                          "({en: ..., es: ...})", file=display, path=path, line=line)
    texts: list[tuple[str, str]] = []
    for code, text in value.items():
        if not isinstance(code, str) or not LANGUAGE.fullmatch(code):
            raise SourceError(f"{code!r} is not a language code (en, es, zh, pt-BR, ...)",
                              file=display, path=path, line=line)
        if not isinstance(text, str) or not text.strip():
            raise SourceError("must be a non-empty string", file=display,
                              path=f"{path}.{code}", line=line)
        texts.append((code, text))
    (language, text), *others = texts
    return Localized(text, language, tuple(others))


def same_first_language(question: Localized, answer: Localized, *, path: str, display: str,
                        line: int | None) -> None:
    """Both fields, where they name languages, start with the same one (the FAQ's own)."""
    if question.language and answer.language and question.language != answer.language:
        raise SourceError(f"the question starts with {question.language!r} and the answer "
                          f"with {answer.language!r}: list the FAQ's own language first in "
                          "both", file=display, path=path, line=line)
