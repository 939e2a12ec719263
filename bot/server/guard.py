"""Prompt-injection hardening: flag suspicious inputs and check replies before they leave.

:func:`inspect_input` flags messages that try to override the bot's instructions or extract
its system prompt, and strips chat-template control tokens. :class:`ReplyGuard` checks a reply
never repeats the system prompt (any run of ``WINDOW`` words from it) and never shows personal
data that is not the user's own or the bot's published contact data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from adapters.prompting import system_prompt
from bot.definition.config import BotConfig
from bot.sessions.redaction import find_pii, pii_values, redact

WINDOW = 8
_V_OVERRIDE = r"(?:ignore|disregard|forget|override|bypass|skip|drop)"
_PRIOR = r"(?:all\s+|any\s+|the\s+|your\s+|my\s+)*(?:previous|prior|above|earlier|preceding|" \
         r"original|initial|system|existing)?"
_RULES = r"(?:instructions?|prompts?|rules|directions|guidelines|messages|context|constraints)"
_SECRET = r"(?:system|initial|hidden|original|secret|developer|internal)\s+" \
          r"(?:prompt|instructions?|message|rules|configuration)"
PATTERNS: dict[str, re.Pattern[str]] = {name: re.compile(rx, re.IGNORECASE) for name, rx in {
    "override": rf"\b{_V_OVERRIDE}\s+{_PRIOR}\s*{_RULES}",
    "reveal": rf"\b(?:reveal|show|print|repeat|tell|give|output|display|leak|dump|share|"
              rf"what\s+(?:is|are|was|were))\b.{{0,30}}\b(?:your|the)\s+{_SECRET}",
    "your_instructions": r"\bwhat\s+(?:were|are)\s+you(?:r)?\s+(?:told|instructions)",
    "repeat_above": r"\b(?:repeat|print|output)\b.{0,20}\b(?:text|words|everything)\s+"
                    r"(?:above|before)",
    "role_play": r"\b(?:you\s+are\s+now|from\s+now\s+on\s+you\s+are|act\s+as|pretend\s+"
                 r"(?:to\s+be|you\s+are))\b.{0,40}\b(?:dan|jailbr\w*|unrestricted|unfiltered|"
                 r"developer\s+mode|no\s+(?:rules|restrictions|filters))",
    "mode_switch": r"\b(?:developer|god|debug|jailbreak|dan)\s+mode\b",
    "fake_role": r"(?:^|\n)\s*(?:system|assistant|developer)\s*:|\bnew\s+instructions\s*:",
    "template_token": r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|###\s*(?:instruction|system)",
}.items()}
_CONTROL_TOKENS = re.compile(r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>", re.IGNORECASE)


@dataclass(frozen=True)
class InputVerdict:
    """What :func:`inspect_input` found: matched pattern names and the neutralised text."""

    flags: tuple[str, ...]
    text: str

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


def inspect_input(text: str) -> InputVerdict:
    """Flag prompt-injection attempts; the text comes back without chat control tokens."""
    flags = tuple(name for name, pattern in PATTERNS.items() if pattern.search(text))
    cleaned = " ".join(_CONTROL_TOKENS.sub(" ", text).split())
    return InputVerdict(flags, cleaned or text)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _windows(words: list[str], size: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + size]) for i in range(max(0, len(words) - size + 1))}


@dataclass(frozen=True)
class ReplyCheck:
    """The reply text to send and why it was changed (empty when it was not)."""

    text: str
    problems: tuple[str, ...] = ()


class ReplyGuard:
    """Checks replies of one bot; ``public_texts`` are the bot's own (FAQ, responses)."""

    def __init__(self, config: BotConfig, public_texts: Iterable[str] = ()) -> None:
        self.config = config
        persona = config.persona
        secret = "\n".join([system_prompt(persona), persona.style, persona.description])
        self._secret = _windows(_words(secret), WINDOW)
        own = [persona.greeting, config.fallback.message, *public_texts]
        for response in config.responses.values():
            own.extend([response.text, *response.variations])
        self._public = _windows(_words("\n".join(own)), WINDOW)
        self._public_pii = pii_values(*own)

    def leaks_prompt(self, text: str) -> bool:
        """Whether ``text`` repeats a run of the system prompt that is not public text."""
        return bool((_windows(_words(text), WINDOW) & self._secret) - self._public)

    def _allowed(self, text: str, own: Iterable[str],
                 gave: Callable[[str], bool]) -> frozenset[str]:
        """The personal-data values ``text`` may show: public, in ``own`` texts, or ones
        ``gave`` says the user gave."""
        allowed = self._public_pii | pii_values(*own)
        return allowed | {f.key for f in find_pii(text) if f.key not in allowed and gave(f.key)}

    def check(self, text: str, *, own: Iterable[str] = (),
              gave: Callable[[str], bool] = lambda _: False) -> ReplyCheck:
        """The reply to send: the fallback for a prompt leak, foreign PII masked."""
        if self.leaks_prompt(text):
            return ReplyCheck(self.config.fallback.message, ("system_prompt",))
        allowed = self._allowed(text, list(own), gave)
        if any(f.key not in allowed for f in find_pii(text)):
            return ReplyCheck(redact(text, keep=allowed), ("foreign_pii",))
        return ReplyCheck(text)
