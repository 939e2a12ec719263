"""Forms: collect slots one at a time, validate each, then run an action and/or reply.

The active form lives in ``session.state["form"]`` (``name``, pending ``slot``, ``attempts``,
slots ``filled`` in this run); values go to ``session.slots``, so a later form can reuse them
(``carry_over``). The router decides about interruptions and cancelling; this module parses
values, asks, re-asks with a reason, gives up after ``max_attempts`` and completes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.classifiers.entities import Entity
from bot.definition.dialogue import FormDefinition, SlotDefinition
from bot.dialogue.actions import ActionResult, ActionRunner
from bot.dialogue.templates import Rendered, Templates, session_context
from bot.sessions.store import Session

FORM_KEY = "form"
DONE_TEXT = "Thanks, that's everything I needed."
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


@dataclass(frozen=True)
class Parsed:
    """A slot value read from a message, or the reason it could not be."""

    value: Any = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _in_range(slot: SlotDefinition, number: float) -> Parsed:
    if slot.min is not None and number < slot.min:
        return Parsed(reason=f"It must be at least {slot.min:g}.")
    if slot.max is not None and number > slot.max:
        return Parsed(reason=f"It must be at most {slot.max:g}.")
    return Parsed(number)


def _choice(slot: SlotDefinition, text: str) -> Parsed:
    wanted = " ".join(text.lower().split()).strip(" .!")
    for choice in slot.choices:
        if wanted == choice.lower():
            return Parsed(choice)
    if wanted.isdigit() and 1 <= int(wanted) <= len(slot.choices):
        return Parsed(slot.choices[int(wanted) - 1])
    found = [c for c in slot.choices
             if re.search(rf"(?<!\w){re.escape(c.lower())}(?!\w)", wanted)]
    if len(found) == 1:
        return Parsed(found[0])
    return Parsed(reason=f"Please choose one of: {', '.join(slot.choices)}.")


def parse_slot(slot: SlotDefinition, text: str, entities: Sequence[Entity]) -> Parsed:
    """Read ``slot`` from ``text`` (whose ``entities`` were found already) and check it
    against the slot's rules."""
    text = text.strip()
    if slot.type in ("number", "integer"):
        match = _NUMBER.search(text)
        if match is None:
            return Parsed(reason="That doesn't look like a number.")
        number = float(match.group().replace(",", ""))
        if slot.type == "integer":
            if not number.is_integer():
                return Parsed(reason="Please give a whole number.")
            parsed = _in_range(slot, number)
            return Parsed(int(number)) if parsed.ok else parsed
        return _in_range(slot, number)
    if slot.type in ("date", "email"):
        found = [e for e in entities if e.name == slot.type]
        if not found:
            what = "a date" if slot.type == "date" else "an email address"
            return Parsed(reason=f"That doesn't look like {what}.")
        value = found[0].value
        if slot.type == "date" and value.startswith("--"):
            return Parsed(reason="Please include the year.")
        if slot.type == "date" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return Parsed(reason="I can't tell the day from the month; please write it like "
                          "14 March 1990.")
        return Parsed(value)
    if slot.type == "choice":
        return _choice(slot, text)
    if slot.pattern is not None:
        match = re.search(slot.pattern, text, re.IGNORECASE)
        if match is None:
            return Parsed(reason="That doesn't look right.")
        if slot.type == "regex":
            groups = [g for g in match.groups() if g is not None]
            named = match.groupdict().get("value")
            return Parsed(named if named is not None else groups[0] if groups else match.group())
    return Parsed(text) if text else Parsed(reason="Please type an answer.")


@dataclass(frozen=True)
class FormReply:
    """What a form says this turn; ``kind`` is ``form``, ``form_done``, ``form_cancelled``,
    ``form_failed`` or ``action_error``."""

    text: str
    kind: str = "form"
    buttons: tuple[dict[str, str], ...] = ()
    action: ActionResult | None = None


class FormRunner:
    """Runs the bot's forms against a session."""

    def __init__(self, forms: Mapping[str, FormDefinition], templates: Templates,
                 actions: ActionRunner) -> None:
        self.forms = dict(forms)
        self.templates = templates
        self.actions = actions

    def pending(self, session: Session) -> tuple[FormDefinition, SlotDefinition] | None:
        """The active form and the slot it waits for, if any."""
        state = session.state.get(FORM_KEY)
        form = self.forms.get(state.get("name", "")) if isinstance(state, dict) else None
        if form is None or not isinstance(state, dict):
            return None
        slot = next((s for s in form.slots if s.name == state.get("slot")), None)
        return (form, slot) if slot is not None else None

    async def start(self, session: Session, name: str,
                    entities: Sequence[Entity] = ()) -> FormReply:
        """Start form ``name``; a verified customer's attributes (``session.state["user"]``)
        fill the slots of the same name, and ``entities`` (of the message that started it)
        the slots that name them."""
        form = self.forms[name]
        session.state[FORM_KEY] = {"name": name, "slot": None, "attempts": 0, "filled": []}
        known = session.state.get("user") or {}
        wanted = {s.entity: s for s in form.slots if s.entity}
        given: list[tuple[SlotDefinition, str, list[Entity]]] = [
            (s, v, [Entity(s.type, v, 0, len(v), v)]) for s in form.slots  # as if typed
            if (v := str(known.get(s.name) or ""))]
        given += [(wanted[e.name], e.value, [e]) for e in entities if e.name in wanted]
        for slot, value, found in given:
            parsed = parse_slot(slot, value, found)
            if parsed.ok and slot.validate is None:
                self._set(session, slot, parsed.value)
        return await self.advance(session)

    def _set(self, session: Session, slot: SlotDefinition, value: Any) -> None:
        session.slots[slot.name] = value
        state = session.state[FORM_KEY]
        state["filled"] = [*state.get("filled", []), slot.name]
        state["attempts"] = 0

    async def fill(self, session: Session, text: str, entities: Sequence[Entity]) -> Parsed:
        """Read the pending slot from ``text`` (with its ``entities``); store it when
        valid."""
        active = self.pending(session)
        assert active is not None, "fill() needs an active form"
        _form, slot = active
        parsed = parse_slot(slot, text, entities)
        if parsed.ok and slot.validate is not None:
            context = session_context(session, value=parsed.value, slot=slot.name)
            problem = await self.actions.validate(slot.validate, context)
            if problem is not None:
                parsed = Parsed(reason=problem)
        if parsed.ok:
            self._set(session, slot, parsed.value)
        return parsed

    def _missing(self, session: Session, form: FormDefinition) -> list[SlotDefinition]:
        filled = set(session.state[FORM_KEY].get("filled", []))
        return [s for s in form.slots if s.name not in filled
                and not (form.carry_over and session.slots.get(s.name) is not None)]

    async def advance(self, session: Session) -> FormReply:
        """Ask for the next missing slot, or complete the form."""
        state = session.state[FORM_KEY]
        form = self.forms[state["name"]]
        missing = self._missing(session, form)
        if not missing:
            return await self._complete(session, form)
        state["slot"] = missing[0].name
        return self.prompt(session)

    def prompt(self, session: Session, reason: str | None = None) -> FormReply:
        """The pending slot's question (after ``reason`` when re-asking)."""
        active = self.pending(session)
        assert active is not None, "prompt() needs an active form"
        _form, slot = active
        context = session_context(session, reason=reason or "")
        question = self.templates.render(slot.prompt, context)
        if reason is not None:
            question = (self.templates.render(slot.invalid, context) if slot.invalid
                        else f"{reason} {question}")
        buttons = tuple({"title": c, "payload": c} for c in slot.choices)
        return FormReply(question, "form", buttons)

    def reask(self, session: Session, reason: str) -> FormReply:
        """Re-ask after an invalid value; give up after ``max_attempts`` of them."""
        state = session.state[FORM_KEY]
        form = self.forms[state["name"]]
        state["attempts"] = int(state.get("attempts", 0)) + 1
        if state["attempts"] >= form.max_attempts:
            del session.state[FORM_KEY]
            return FormReply(self.templates.render(form.give_up, session_context(session)),
                             "form_failed")
        return self.prompt(session, reason)

    def cancel(self, session: Session) -> FormReply:
        """Stop the active form (the slots filled so far stay)."""
        state = session.state.pop(FORM_KEY, None)
        form = self.forms.get(state.get("name", "")) if isinstance(state, dict) else None
        text = form.cancel if form is not None else "OK, I've stopped that."
        return FormReply(self.templates.render(text, session_context(session)),
                         "form_cancelled")

    async def _complete(self, session: Session, form: FormDefinition) -> FormReply:
        del session.state[FORM_KEY]
        result: ActionResult | None = None
        if form.action is not None:
            result = await self.actions.run(form.action, session_context(session))
            session.slots.update(result.slots)
            if not result.ok:  # the details may be wrong: ask for them again next time
                for slot in form.slots:
                    session.slots.pop(slot.name, None)
                reply = result.reply or Rendered(self.actions.error_message)
                return FormReply(reply.text, "action_error", reply.buttons, result)
        if form.response is not None:
            data = result.data if result is not None else None
            reply = self.templates.response(form.response, session_context(session, result=data))
        else:
            reply = (result.reply if result is not None else None) or Rendered(DONE_TEXT)
        return FormReply(reply.text, "form_done", reply.buttons, result)
