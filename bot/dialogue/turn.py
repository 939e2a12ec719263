"""One message on its way through the routing stages, and what those stages share.

A :class:`Turn` carries what is known about the message so far: the session, the analysis
(intent, sentiment, entities, the message's embedding), the intent the turn acts on, and the
FAQ hits of each query searched (each query is searched once per turn). :class:`Parts` are
the bot's components the stages answer with. A stage is a function ``(turn, parts) ->
ReplyStream | BotReply | None``; None passes the turn to the next stage (see
``bot/dialogue/router.py`` for the list).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.answering.answer_policy import Decision
from adapters.classifiers.analysis import Analysis
from adapters.classifiers.entities import Entity, EntityExtractor
from bot.definition.config import BotConfig, Intent
from bot.dialogue.actions import ActionRunner
from bot.dialogue.answerer import FaqAnswerer
from bot.dialogue.forms import FormReply, FormRunner
from bot.dialogue.language import CustomerLanguage
from bot.dialogue.templates import Rendered, Templates, session_context
from bot.sessions.store import Session
from foundation.messages import BotReply, ReplyStream, UserMessage
from retrieval.index import Hit


class MessageAnalyzer(Protocol):
    """Classifies a message: intent, sentiment, the session's frustration, entities
    (:class:`adapters.classifiers.analysis.Analyzer`, or a deterministic fake in tests)."""

    def analyze(self, text: str, *, frustration: Any = None) -> Analysis: ...


@dataclass(frozen=True)
class ChosenIntent:
    """The intent this turn acts on (None: none confident), and what the classifier said;
    ``ambiguous``: the two close intents to ask about."""

    intent: Intent | None = None
    name: str | None = None
    confidence: float | None = None
    ambiguous: tuple[str, ...] = ()


@dataclass
class Parts:
    """The bot's components the stages answer with (built once per bot)."""

    config: BotConfig
    answerer: FaqAnswerer
    analyzer: MessageAnalyzer | None = None
    templates: Templates = field(init=False)
    actions: ActionRunner = field(init=False)
    forms: FormRunner = field(init=False)
    extractor: EntityExtractor = field(init=False)
    intents: dict[str, Intent] = field(init=False)
    answerable: frozenset[str] = field(init=False)  # intents that answer with a response
    language: CustomerLanguage | None = field(init=False)  # None: no identification

    def __post_init__(self) -> None:
        config = self.config
        self.templates = Templates(config.responses, seed=config.dialogue.seed,
                                   bot_name=config.persona.name)
        self.actions = ActionRunner(config.actions, self.templates,
                                    error_message=config.dialogue.action_error)
        self.extractor = EntityExtractor(config.entities)
        self.forms = FormRunner(config.forms, self.templates, self.actions)
        self.intents = {i.name: i for i in config.intents}
        self.answerable = frozenset(i.name for i in config.intents if i.response and not (
            i.form or i.action or i.handoff))
        languages = config.languages
        self.language = CustomerLanguage(languages).load() if languages.detect else None

    def response(self, name: str, session: Session) -> Rendered:
        """Response ``name`` rendered for ``session``."""
        return self.templates.response(name, session_context(session))


@dataclass
class Turn:
    """One message being answered."""

    session: Session
    message: UserMessage
    search: Callable[[str, Analysis | None], Awaitable[list[Hit]]]
    analysis: Analysis | None = None
    chosen: ChosenIntent = ChosenIntent()
    entities: list[Entity] = field(default_factory=list)
    decision: Decision | None = None  # the answer decision, when it abstained
    language: str | None = None  # the customer's language, when the bot identifies it
    _hits: dict[str, list[Hit]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.message.text

    async def hits(self, query: str | None = None) -> list[Hit]:
        """The FAQ passages for ``query`` (default: the message), best first; each query
        is searched once per turn, the message with the vector its analysis computed."""
        query = self.text if query is None else query
        if query not in self._hits:
            self._hits[query] = await self.search(query, self.analysis)
        return self._hits[query]


Answer = ReplyStream | BotReply | None


class Stage(Protocol):
    """One step of routing: answer the turn, or None to pass it on."""

    async def __call__(self, turn: Turn, parts: Parts, /) -> Answer: ...


Shown = BotReply | Rendered | FormReply  # anything with ``text`` and ``buttons``


def rendered_reply(rendered: Rendered, kind: str) -> BotReply:
    return BotReply(text=rendered.text, buttons=rendered.buttons, kind=kind)


def form_reply(step: FormReply) -> BotReply:
    return BotReply(text=step.text, buttons=step.buttons, kind=step.kind)


def joined(first: Shown, then: Shown, base: BotReply) -> BotReply:
    """``base`` with the text and buttons of ``first`` followed by those of ``then``."""
    return dataclasses.replace(base, text=f"{first.text}\n\n{then.text}",
                               buttons=first.buttons + then.buttons)
