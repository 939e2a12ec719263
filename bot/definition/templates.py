"""The template sandbox: bot authors' Jinja2 templates, compiled safely.

Templates are written by the bot's author (``responses``, slot prompts, action URLs and
bodies); what users type only ever enters as *values*, never as template source. The sandbox
refuses attribute access outside the safe set (``''.__class__`` raises at render time) and
values cannot be modified. Syntax errors are :class:`~bot.errors.ConfigError` at load time,
naming file and key.
"""

from __future__ import annotations

from typing import Any, NoReturn

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from foundation.settings import Where


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, raising at once on unsafe attributes (not rendering them as empty)."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        raise SecurityError(f"access to attribute {attribute!r} of "
                            f"{type(obj).__name__!r} object is unsafe")


def new_environment() -> jinja2.Environment:
    """A sandboxed environment: no HTML escaping, missing variables render as empty."""
    return _Sandbox(autoescape=False, undefined=jinja2.ChainableUndefined,
                    keep_trailing_newline=False)


def compile_template(text: str, where: Where, *,
                     env: jinja2.Environment | None = None) -> jinja2.Template:
    """Compile ``text``; a syntax error is a :class:`ConfigError` at ``where``."""
    try:
        return (env or new_environment()).from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise where.error(f"template syntax error: {exc.message} "
                          f"(template line {exc.lineno})") from exc
