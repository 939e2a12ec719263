"""Definitions for multi-turn dialogue: forms, HTTP actions, handoff and dialogue settings.

These are sections of :class:`bot.config.BotConfig` (``forms``, ``actions``, ``handoff``,
``dialogue``); :func:`check_dialogue` runs the cross-section checks at load time (names that
exist, templates that compile) so every mistake is a :class:`ConfigError` naming file and key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bot.schema import Where, between, check, identifier, non_empty, positive

if TYPE_CHECKING:
    from bot.config import BotConfig

@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Response:
    text: str
    variations: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()


Reply = str | Response  # a response name (in ``responses``) or a response written in place
SlotType = Literal["text", "number", "integer", "date", "email", "choice", "regex"]
Sections = Mapping[str, tuple[Where, Any]]


def valid_regex(value: Any) -> str | None:
    """Check for a field holding a regular expression."""
    try:
        re.compile(value)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return None


@dataclass(frozen=True)
class SlotDefinition:
    """One value a form collects: how to ask for it and what counts as valid."""

    name: str = check(identifier)
    prompt: str = check(non_empty)
    type: SlotType = "text"
    pattern: str | None = check(valid_regex, default=None)
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    entity: str | None = None  # fill from this extracted entity when the form starts
    validate: str | None = None  # an HTTP action that must accept the value
    invalid: str | None = None  # the re-ask message (template; ``reason`` is available)

    def __post_init__(self) -> None:
        if self.type == "regex" and self.pattern is None:
            raise ValueError(f"slot {self.name!r} of type 'regex' needs a 'pattern'")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"slot {self.name!r} of type 'choice' needs 'choices'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"slot {self.name!r}: 'min' is greater than 'max'")


@dataclass(frozen=True)
class FormDefinition:
    """Slots asked in order; on completion an action runs and/or a response is rendered."""

    slots: tuple[SlotDefinition, ...] = check(non_empty)
    action: str | None = None
    response: Reply | None = None
    cancel: str = "OK, I've stopped that. Is there anything else I can help with?"
    give_up: str = ("Sorry, I couldn't get that. Let's leave it for now; you can start again "
                    "any time or ask to talk to a person.")
    max_attempts: int = check(positive, default=3)
    carry_over: bool = True  # a slot filled earlier in the session is not asked again

    def __post_init__(self) -> None:
        names = [s.name for s in self.slots]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate slot {duplicates[0]!r}")


@dataclass(frozen=True)
class ActionDefinition:
    """An HTTP call: URL and JSON body are templates; the JSON reply can fill slots."""

    url: str = check(non_empty)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    timeout_s: float = check(between(0.01, 120.0), default=5.0)
    slots: dict[str, str] = field(default_factory=dict)  # slot -> dotted path in the reply
    response: Reply | None = None  # rendered on success
    error_response: Reply | None = None  # rendered on failure (else dialogue.action_error)
    on_status: dict[str, Reply] = field(default_factory=dict)  # "404" -> a response

    def __post_init__(self) -> None:
        for status in self.on_status:
            if not (status.isdigit() and 400 <= int(status) <= 599):
                raise ValueError(f"on_status: {status!r} is not an HTTP error status (400-599)")


@dataclass(frozen=True)
class HandoffSettings:
    """When the bot passes a conversation to a person, and what it says then."""

    agent_token: str | None = None  # bearer token of the agent API (write ``${AGENT_TOKEN}``)
    intent: str = "human_agent"  # asking for a person
    negative_streak: int = check(between(0, 100), default=3)  # 0: never
    frustration_level: float | None = check(between(0.0, 1.0), default=None)
    fallback_streak: int = check(between(0, 100), default=3)  # misunderstood N times; 0: never
    offer_after: int = check(between(0, 100), default=2)  # fallbacks before offering a person
    message: str = "I'm passing you to a member of our team; they'll reply here shortly."
    frustrated_message: str = ("I'm sorry this has been frustrating. I've asked a member of "
                               "our team to take over; they'll reply here shortly.")
    fallback_message: str = ("I'm having trouble understanding, so I've asked a member of our "
                             "team to help. They'll reply here shortly.")
    waiting_message: str = "A member of our team will answer you here shortly."
    note: str = "(Your message has been passed on to our team.)"
    returned_message: str = "You're chatting with the assistant again. How can I help?"
    offer: str = "Would you like to talk to a person?"
    offer_button: str = "Talk to a person"
    summary_messages: int = check(between(1, 50), default=5)


@dataclass(frozen=True)
class DialogueSettings:
    """Form cancelling, follow-up questions, clarification and action errors."""

    cancel_words: tuple[str, ...] = ("cancel", "stop", "never mind", "nevermind", "quit",
                                     "forget it")
    cancel_intent: str = "cancel"
    follow_up: bool = True  # retry weak retrieval with the previous question prepended
    follow_up_max_words: int = check(positive, default=8)
    clarify: str = "Did you mean {{ first }} or {{ second }}?"
    # an intent with only a response yields to an FAQ match this strong (None: never) ...
    faq_over_intent: float | None = check(between(-1.0, 1.0), default=0.65)
    # ... unless the classifier is at least this sure of the intent (acme_bank eval: 0.65 /
    # 0.99 answer 211 of 260 held-out messages right, against 183 without the rule)
    intent_certain: float = check(between(0.0, 1.0), default=0.99)
    action_error: str = "Sorry, I can't check that right now. Please try again in a few minutes."
    seed: int | None = None  # fixes the choice among response variations


def _where(sections: Sections, section: str, *keys: str | int) -> Where:
    where, raw = sections.get(section) or sections["."]
    if section not in sections:
        where = where.key(raw, section)
        raw = None
    for key in keys:
        if isinstance(key, int):
            inside = isinstance(raw, list) and key < len(raw)
            where, raw = where.item(raw, key), raw[key] if inside else None
        else:
            where = where.key(raw, key)
            raw = raw.get(key) if isinstance(raw, dict) else None
    return where


def _need(known: Iterable[str], name: str | None, what: str, where: Where) -> None:
    names = sorted(known)
    if name is not None and name not in names:
        raise where.error(f"unknown {what} {name!r}; defined: {', '.join(names) or '(none)'}")


def check_dialogue(config: BotConfig, sections: Sections) -> None:
    """Cross-section checks: referenced forms/actions/responses exist; templates compile.

    ``sections`` maps a top-level key to its position and raw YAML; ``"."`` is the top.
    """
    from adapters.entities import BUILTIN_ENTITIES
    from bot.templating import compile_template

    actions, forms = config.actions, config.forms
    entities = {*BUILTIN_ENTITIES, *(e.name for e in config.entities)}
    for i, intent in enumerate(config.intents):
        _need(forms, intent.form, "form", _where(sections, "intents", i, "form"))
        _need(actions, intent.action, "action", _where(sections, "intents", i, "action"))
    for name, form in forms.items():
        _need(actions, form.action, "action", _where(sections, "forms", name, "action"))
        _check_reply(config, form.response, sections, "forms", name, "response")
        compile_template(form.cancel, _where(sections, "forms", name, "cancel"))
        compile_template(form.give_up, _where(sections, "forms", name, "give_up"))
        for j, slot in enumerate(form.slots):
            _need(actions, slot.validate, "action",
                  _where(sections, "forms", name, "slots", j, "validate"))
            _need(entities, slot.entity, "entity",
                  _where(sections, "forms", name, "slots", j, "entity"))
            for key in ("prompt", "invalid"):
                text = getattr(slot, key)
                if text is not None:
                    compile_template(text, _where(sections, "forms", name, "slots", j, key))
    for name, action in actions.items():
        compile_template(action.url, _where(sections, "actions", name, "url"))
        _compile_body(action.body, _where(sections, "actions", name, "body"))
        for key in ("response", "error_response"):
            _check_reply(config, getattr(action, key), sections, "actions", name, key)
        for status, mapped in action.on_status.items():
            _check_reply(config, mapped, sections, "actions", name, "on_status", status)
    for name, response in config.responses.items():
        _check_reply(config, response, sections, "responses", name)
    compile_template(config.dialogue.clarify, _where(sections, "dialogue", "clarify"))


def _check_reply(config: BotConfig, reply: Reply | None, sections: Sections, section: str,
                 *keys: str | int) -> None:
    """A response name must exist; a response written in place must compile."""
    from bot.templating import compile_template

    if isinstance(reply, str):
        _need(config.responses, reply, "response", _where(sections, section, *keys))
        return
    if reply is None:
        return
    compile_template(reply.text, _where(sections, section, *keys, "text"))
    for j, text in enumerate(reply.variations):
        compile_template(text, _where(sections, section, *keys, "variations", j))
    for j, button in enumerate(reply.buttons):
        for key in ("title", "payload"):
            compile_template(getattr(button, key),
                             _where(sections, section, *keys, "buttons", j, key))


def _compile_body(body: Any, where: Where) -> None:
    from bot.templating import compile_template

    if isinstance(body, str):
        compile_template(body, where)
    elif isinstance(body, dict):
        for key, value in body.items():
            _compile_body(value, where.key(body, str(key)))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            _compile_body(value, where.item(body, i))
    elif body is not None and not isinstance(body, int | float | bool):
        raise where.error(f"must be JSON-like, got {type(body).__name__}")


__all__ = ["ActionDefinition", "Button", "DialogueSettings", "FormDefinition",
           "HandoffSettings", "Reply", "Response", "SlotDefinition", "check_dialogue",
           "valid_regex"]
