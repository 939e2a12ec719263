"""Prompt-injection hardening: flag suspicious inputs and check replies before they leave.

:func:`inspect_input` flags messages that try to override the bot's instructions or extract
its system prompt, and strips chat-template control tokens. :class:`ReplyGuard` checks a reply
never repeats the system prompt (any run of ``WINDOW`` words from it) and never shows personal
data that is not the user's own or the bot's published contact data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from adapters.engines.prompting import system_prompt
from bot.definition.config import BotConfig
from bot.definition.secrets import config_strings
from bot.sessions.redaction import find_pii, pii_values, redact

WINDOW = 8
_V_OVERRIDE = r"(?:ignore|disregard|forget|override|bypass|skip|drop|ignoriere|vergiss|" \
              r"missachte|ignora|ignorate|olvida|omite|oublie|dimentica|negeer|vergeet|esqueca|" \
              r"ne\s+tiens\s+pas\s+compte\s+de)"
_PRIOR = r"(?:(?:all|any|the|your|my|these|alle|todas|las|toutes|les|tes|tus|le|tutte|" \
         r"deine|je|suas|as|de|vorherigen|previous|prior|above|earlier|preceding|original|" \
         r"initial|system|existing|anteriores|precedentes|precedenti|vorige|the\s+bank'?s)" \
         r"\s+)*"
_RULES = r"(?:instructions?|prompts?|rules|directions|guidelines|messages|context|" \
         r"constraints|polic(?:y|ies)|anweisungen|regeln|instrucciones|reglas|consignes|" \
         r"regles|istruzioni|regole|instructies|regels|instrucoes|regras|systemprompt|faq)"
_SECRET = r"(?:system|initial|hidden|original|secret|developer|internal|real)\s+" \
          r"(?:prompt|instructions?|message|rules|configuration|settings|text|code|notes)"
_YOUR = r"(?:your|the\s+assistant'?s|its)\s+(?:own\s+)?" \
        r"(?:prompt|instructions?|rules|configuration|guidelines|context\s+window|" \
        r"initiali[sz]ation|hidden\s+\w+)"
_TELL = r"(?:reveal|show|print|repeat|tell|give|output|display|leak|dump|share|list|" \
        r"translate|summari[sz]e|paraphrase|spell|encode|write|read|say|affiche|zeig|" \
        r"muestra|dime|mostre|rivela|laat|respond\s+only\s+with)"
_OTHERS = r"(?:previous|last|other|earlier)\s+(?:\w+\s+)?(?:customers?|users?|callers?|" \
          r"clients?)|customer\s+(?:data|details)|customer\s+before\s+me|customers\s+you"
PATTERNS: dict[str, re.Pattern[str]] = {name: re.compile(rx, re.IGNORECASE) for name, rx in {
    "override": rf"\b{_V_OVERRIDE}\s+{_PRIOR}{_RULES}\b",
    "reveal": rf"\b(?:{_TELL}|what\s+(?:is|are|was|were))\b.{{0,40}}\b(?:{_SECRET}|"
              rf"{_YOUR})",
    "prompt_words": rf"\b(?:{_SECRET}|prompt\s+syst[eè]me|systemprompt|system\s*prompt|"
                    rf"first\s+line\s+of\s+your|everything\s+you\s+were\s+told|"
                    rf"(?:what|the\s+text|words)\s+you\s+were\s+(?:told|given))\b",
    "your_instructions": r"\bwhat\s+(?:were|are)\s+you(?:r)?\s+(?:told|instructions)",
    "repeat_above": r"\b(?:repeat|print|output)\b.{0,20}\b(?:text|words|everything)\s+"
                    r"(?:above|before)",
    "continuation": r"\b(?:continue|complete|finish)\b.{0,30}\b(?:sentence|text|prompt|"
                    r"instructions)\b.{0,40}(?:[\"'“]|starts?\s+with)|"
                    r"\brepeat\s+after\s+me\b",
    "role_play": r"\b(?:you\s+are\s+(?:now|no\s+longer)|from\s+now\s+on\s+(?:you\s+are|"
                 r"answer\s+as)|act\s+as|pretend\s+(?:to\s+be|you\s+are)|let'?s\s+play\s+a\s+"
                 r"game|role-?play)\b.{0,80}\b(?:dan|jailbr\w*|unrestricted|unfiltered|"
                 r"developer|console|no\s+(?:rules|restrictions|filters)|without\s+(?:any\s+)?"
                 r"rules|evil\w*|internal|escalation|codes?|an?\s+(?:unrestricted\s+)?ai)\b",
    "mode_switch": r"\b(?:god|debug|jailbreak|dan)\s+mode\b|\b(?:enable|activate|switch\s+"
                   r"(?:on|to)|enter)\s+developer\s+mode\b|\bsafety\s+(?:off|rules)\b|"
                   r"\bno\s+restrictions\b|\bfor\s+debugging\b",
    "fake_role": r"(?:^|\n)\s*(?:system|assistant|developer|admin(?:istrator)?|agent|support"
                 r"\s+agent|operator|root)(?:\s+(?:override|note|mode))?\s*:|"
                 r"\bnew\s+instructions\s*:|\bi\s+am\s+your\s+(?:developer|creator|admin)",
    "others_data": rf"\b(?:{_OTHERS})\b",
    "encoded": r"\b(?:base64|rot13|hex)[- ]?(?:decode|encoded?)\b.{0,40}[A-Za-z0-9+/]{12,}={0,2}",
    "template_token": r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|###\s*(?:instruction|system)",
}.items()}
_CONTROL_TOKENS = re.compile(r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>", re.IGNORECASE)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s"})
_SPACED = re.compile(r"\b(?:\w\s){3,}\w\b")
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff]")


def _variants(text: str) -> list[str]:
    """``text`` as written, without accents and invisible characters, and with leetspeak
    and letter-spacing undone (``1gn0r3``, ``i g n o r e``)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", _INVISIBLE.sub("", text))
                    if not unicodedata.combining(c))
    unleet = " ".join(w.translate(_LEET) if any(ch.isalpha() for ch in w) else w
                      for w in plain.split())
    joined = _SPACED.sub(lambda m: m.group().replace(" ", ""), plain)
    return list(dict.fromkeys([text, plain, unleet, joined]))


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
    variants = _variants(text)
    flags = tuple(name for name, pattern in PATTERNS.items()
                  if any(pattern.search(v) for v in variants))
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


def bot_texts(*sections: object) -> list[str]:
    """Every string the bot's YAML gives it to say in ``sections`` (responses, form
    prompts, handoff and dialogue messages), its secrets left out."""
    return [text for text, secret in config_strings(sections) if not secret]


class ReplyGuard:
    """Checks replies of one bot; ``public_texts`` are the bot's own (FAQ, responses)."""

    def __init__(self, config: BotConfig, public_texts: Iterable[str] = ()) -> None:
        self.config = config
        persona = config.persona
        secret = "\n".join([system_prompt(persona), persona.style, persona.description])
        self._secret = _windows(_words(secret), WINDOW)
        own = [persona.greeting, config.fallback.message, *public_texts,
               *bot_texts(config.responses, config.forms, config.handoff, config.dialogue,
                          config.answers)]
        self._public = _windows(_words("\n".join(own)), WINDOW)
        self._public_pii = pii_values(*own)

    def leaks_prompt(self, text: str) -> bool:
        """Whether ``text`` repeats a run of the system prompt that is not public text."""
        return bool((_windows(_words(text), WINDOW) & self._secret) - self._public)

    def check(self, text: str, *, own: Iterable[str] = (),
              gave: Callable[[str], bool] = lambda _: False) -> ReplyCheck:
        """The reply to send: the fallback for a prompt leak; personal data masked unless it
        is public, in ``own`` texts, or ``gave`` says the user gave it."""
        if self.leaks_prompt(text):
            return ReplyCheck(self.config.fallback.message, ("system_prompt",))
        findings = find_pii(text)
        if not findings:  # the usual reply: nothing to compare, so ``own`` is not scanned
            return ReplyCheck(text)
        allowed = self._public_pii | pii_values(*own)
        keep = allowed | {f.key for f in findings if f.key not in allowed and gave(f.key)}
        if any(f.key not in keep for f in findings):
            return ReplyCheck(redact(text, keep=keep), ("foreign_pii",))
        return ReplyCheck(text)
