"""HTTP actions declared in YAML: call a backend, map its JSON reply into slots, reply.

The URL and the string leaves of the JSON body are templates (``bot/dialogue/templates.py``); values
put into the URL are percent-encoded, so a slot cannot change the path or query. Headers are
sent as written (``${ENV}`` secrets are expanded at load). A failure (timeout, connection
error, 5xx, a reply that is not JSON where slots are mapped) gives the action's
``error_response`` or the polite ``dialogue.action_error`` and is logged with the action name,
method and host only: never headers, bodies, query strings or slot values.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from bot.definition.dialogue import ActionDefinition
from bot.dialogue.templates import Rendered, Templates
from bot.errors import ActionError, TemplateError
from foundation.checks import http_url

log = logging.getLogger(__name__)
_MISSING = object()
_ONLY_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.\w+)*)\s*\}\}")


def dotted(data: Any, path: str, default: Any = None) -> Any:
    """``data["a"]["b"][0]`` for path ``"a.b.0"``; ``default`` when any step is missing."""
    for part in path.split("."):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.lstrip("-").isdigit() and \
                -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            return default
    return data


def _url_safe(value: Any) -> Any:
    """Template values with every string percent-encoded (for rendering URLs)."""
    if isinstance(value, str):
        return quote(value, safe="")
    if isinstance(value, Mapping):
        return {k: _url_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_url_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class ActionResult:
    """What an action did: its reply data, the slots it filled and what to say."""

    name: str
    ok: bool
    status: int | None = None
    data: Any = None
    slots: dict[str, Any] = field(default_factory=dict)
    reply: Rendered | None = None
    error: str | None = None


class ActionRunner:
    """Runs the bot's HTTP actions (one short-lived client session per call)."""

    def __init__(self, actions: Mapping[str, ActionDefinition], templates: Templates, *,
                 error_message: str) -> None:
        self.actions = dict(actions)
        self.templates = templates
        self.error_message = error_message

    def render_body(self, body: Any, context: Mapping[str, Any]) -> Any:
        """The JSON body: string leaves rendered; ``"{{ name }}"`` alone keeps its JSON type."""
        if isinstance(body, str):
            match = _ONLY_VARIABLE.fullmatch(body.strip())
            if match is not None:
                value = dotted(context, match.group(1), _MISSING)
                if value is not _MISSING:
                    return value
            return self.templates.render(body, context)
        if isinstance(body, Mapping):
            return {str(k): self.render_body(v, context) for k, v in body.items()}
        if isinstance(body, list | tuple):
            return [self.render_body(v, context) for v in body]
        return body

    def _url(self, action: ActionDefinition, context: Mapping[str, Any]) -> str:
        url = self.templates.render(action.url, _url_safe(dict(context)))
        if http_url(url) is not None:
            raise ActionError("the rendered URL is not an absolute http(s) URL")
        return url

    async def _call(self, action: ActionDefinition,
                    context: Mapping[str, Any]) -> tuple[int, str, str]:
        """(status, body text, host) of the request; raises :class:`ActionError`."""
        url = self._url(action, context)
        body = self.render_body(action.body, context) if action.body is not None else None
        headers = {str(k): str(v) for k, v in action.headers.items()}
        timeout = aiohttp.ClientTimeout(total=action.timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as client, client.request(
                    action.method, url, json=body, headers=headers) as response:
                return response.status, await response.text(errors="replace"), \
                    urlsplit(url).hostname or ""
        except TimeoutError as exc:
            raise ActionError(f"no reply within {action.timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise ActionError(f"request failed ({type(exc).__name__})") from exc

    async def run(self, name: str, context: Mapping[str, Any]) -> ActionResult:
        """Run action ``name`` with template variables ``context``; never raises."""
        action = self.actions[name]
        host = urlsplit(action.url).hostname or "?"
        try:
            status, text, host = await self._call(action, context)
        except ActionError as exc:
            return self._failed(name, action, f"{exc}", host)
        except TemplateError as exc:
            log.error("action %s: %s", name, exc)
            return self._failed(name, action, "a template failed to render", host)
        if status >= 400:
            mapped = action.on_status.get(str(status))
            if mapped is not None:
                log.info("action %s: HTTP %d (%s %s), answered with %r", name, status,
                         action.method, host, mapped)
                answer = self.templates.response(mapped, {**context, "status": status})
                return ActionResult(name, False, status, reply=answer, error=f"HTTP {status}")
            return self._failed(name, action, f"HTTP {status}", host, status=status)
        try:
            data = json.loads(text) if text.strip() else None
        except json.JSONDecodeError:
            if action.slots:
                return self._failed(name, action, "the reply is not JSON", host, status=status)
            data = None
        slots = {slot: value for slot, path in action.slots.items()
                 if (value := dotted(data, path, _MISSING)) is not _MISSING}
        reply: Rendered | None = None
        if action.response is not None:
            scope = {**context, **slots, "slots": {**context.get("slots", {}), **slots},
                     "result": data}
            reply = self.templates.response(action.response, scope)
        return ActionResult(name, True, status, data, slots, reply)

    def _failed(self, name: str, action: ActionDefinition, problem: str, host: str, *,
                status: int | None = None) -> ActionResult:
        log.warning("action %s failed: %s (%s %s)", name, problem, action.method, host)
        if action.error_response is not None:
            reply = self.templates.response(action.error_response, {})
        else:
            reply = Rendered(self.error_message)
        return ActionResult(name, False, status, reply=reply, error=problem)

    async def validate(self, name: str, context: Mapping[str, Any]) -> str | None:
        """Ask validation action ``name`` about ``context["value"]``: None if accepted, else
        the reason (the reply's ``reason``, or the polite error when the call failed).

        A 2xx reply accepts the value unless its JSON says ``"valid": false``.
        """
        result = await self.run(name, context)
        if not result.ok:
            return result.reply.text if result.reply else self.error_message
        if isinstance(result.data, Mapping) and result.data.get("valid", True) is False:
            reason = result.data.get("reason")
            return str(reason) if reason else "that doesn't look right."
        return None
