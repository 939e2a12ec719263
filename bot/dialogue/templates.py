"""Reply templates: Jinja2 in a sandbox, rendered with the session's slots and a few variables.

Rendering uses the sandbox of :mod:`bot.definition.templates`; a failing or unsafe
template raises :class:`~bot.errors.TemplateError`.

Variables: every slot by name and as ``slots``, ``sender``, ``channel``, ``today`` (ISO date),
``bot_name``, ``user`` (a verified customer's attributes: ``user.name``, ``user.email``...;
empty for anonymous visitors), and whatever the caller adds (``result`` after an action,
``reason`` when re-asking, ``first``/``second`` when clarifying).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.sandbox import SecurityError

from bot.definition.dialogue import Response
from bot.definition.templates import compile_template, new_environment
from bot.errors import TemplateError
from bot.sessions.store import Session
from foundation.settings import Where


def session_context(session: Session, **extra: Any) -> dict[str, Any]:
    """The variables a template sees for ``session`` (``extra`` wins over slots)."""
    return {**session.slots, "slots": dict(session.slots), "sender": session.sender,
            "channel": session.channel, "today": dt.date.today().isoformat(),
            "user": dict(session.state.get("user") or {}), **extra}


@dataclass(frozen=True)
class Rendered:
    """A rendered response: its text and buttons (``{"title", "payload"}``)."""

    text: str
    buttons: tuple[dict[str, str], ...] = ()


class Templates:
    """Renders template strings and named responses; picks variations with its own RNG."""

    def __init__(self, responses: Mapping[str, Response] | None = None, *,
                 seed: int | None = None, bot_name: str = "") -> None:
        self.responses = dict(responses or {})
        self.random = random.Random(seed)
        self.env = new_environment()
        self.env.globals["bot_name"] = bot_name
        self._compiled: dict[str, jinja2.Template] = {}

    def render(self, text: str, context: Mapping[str, Any]) -> str:
        """Render a template string; raises :class:`TemplateError` if rendering fails."""
        template = self._compiled.get(text)
        if template is None:
            template = compile_template(text, Where("<template>"), env=self.env)
            self._compiled[text] = template
        try:
            return template.render(dict(context)).strip()
        except SecurityError as exc:
            raise TemplateError(f"unsafe template: {exc}") from exc
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError,
                AttributeError) as exc:
            raise TemplateError(f"cannot render template: {exc}") from exc

    def response(self, reply: str | Response, context: Mapping[str, Any]) -> Rendered:
        """Render a response (by name, or written in place): one of its text variations,
        chosen at random, and its buttons."""
        response = self.responses[reply] if isinstance(reply, str) else reply
        text = self.random.choice((response.text, *response.variations))
        buttons = tuple({"title": self.render(b.title, context),
                         "payload": self.render(b.payload, context)} for b in response.buttons)
        return Rendered(self.render(text, context), buttons)
