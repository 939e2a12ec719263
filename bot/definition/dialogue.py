"""Definitions for multi-turn dialogue: forms, HTTP actions, handoff and dialogue settings.

These are sections of :class:`bot.definition.config.BotConfig` (``forms``, ``actions``, ``handoff``,
``dialogue``); :func:`check_dialogue` runs the cross-section checks at load time (names that
exist, templates that compile) so every mistake is a :class:`ConfigError` naming file and key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from foundation.checks import between, check, identifier, non_empty, positive, valid_regex
from foundation.settings import Secret

AGENT_NAME = re.compile(r"[^\W\d_][\w .'-]{0,39}")  # "alice", "Bob M.", "Zoë"
MIN_CREDENTIAL_CHARS = 12


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


def agent_credentials(agents: Mapping[str, str]) -> str | None:
    """Config check of ``handoff.agents``: a display name per agent, its credential an
    ``${ENV}`` reference (never written in the YAML) of at least 12 characters, or empty
    (``${ALICE_CREDENTIAL:-}`` unset: that agent cannot sign in)."""
    for name, credential in agents.items():
        if not AGENT_NAME.fullmatch(name) or name != name.strip():
            return (f"agent name {name!r} must start with a letter and hold at most 40 "
                    "letters, digits, spaces or . ' - _")
        if not isinstance(credential, Secret):
            return (f"{name}: write the credential as an environment variable reference "
                    "(${ALICE_AGENT_TOKEN}), never in the YAML")
        if 0 < len(credential) < MIN_CREDENTIAL_CHARS:
            return f"{name}: the credential must be at least {MIN_CREDENTIAL_CHARS} characters"
    return None


@dataclass(frozen=True)
class AssignmentSettings:
    """Who gets a new handoff: nobody (``off``: a shared waiting queue), or an agent online
    in the desk, in turn (``round_robin``) or holding the fewest (``least_busy``), each
    holding at most ``chat_limit`` conversations (0: no limit)."""

    mode: Literal["off", "round_robin", "least_busy"] = "off"
    chat_limit: int = check(between(0, 1000), default=5)


@dataclass(frozen=True)
class HandoffSettings:
    """When the bot passes a conversation to a person, and what it says then."""

    # name -> that agent's own credential (${ENV}): the /agent API's bearer token and the
    # desk's sign-in (bot/server/desk/)
    agents: dict[str, str] = field(default_factory=dict, metadata={
        "checks": (agent_credentials,)})
    # agents who also see the lead's pages: /desk/review and /desk/dashboard (docs/lead.md)
    leads: tuple[str, ...] = ()
    agent_token: str | None = None  # one token shared by every agent (acts as "agent")
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
    assignment: AssignmentSettings = field(default_factory=AssignmentSettings)  # the desk's

    def __post_init__(self) -> None:
        unknown = [name for name in self.leads if name not in self.agents]
        if unknown:
            raise ValueError(f"leads: {', '.join(map(repr, unknown))} must be names of "
                             f"handoff.agents (known: {', '.join(self.agents) or 'none'})")


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


__all__ = ["ActionDefinition", "AssignmentSettings", "Button", "DialogueSettings", "FormDefinition",
           "HandoffSettings", "Reply", "Response", "SlotDefinition",
           "valid_regex"]
