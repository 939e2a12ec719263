"""Checks across sections of a bot definition: referenced forms, actions, responses and
entities exist, and every template compiles (each failure names file, line and key)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adapters.classifiers.entities import BUILTIN_ENTITIES
from bot.definition.config import BotConfig
from bot.definition.dialogue import Reply
from bot.definition.templates import compile_template
from foundation.settings import Where
from retrieval.multilingual import is_multilingual
from retrieval.translations import LANGUAGE

Sections = Mapping[str, tuple[Where, Any]]


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
    if is_multilingual(config.embedder.model) and config.classifier.encoder_steps:
        raise _where(sections, "classifier", "encoder_steps").error(
            f"{config.embedder.model} is not a sentence-transformers model and cannot be "
            "tuned for the intent classifier; set classifier.encoder_steps to 0")
    for code, table in config.translations.items():
        if not LANGUAGE.fullmatch(code):
            raise _where(sections, "translations", code).error(
                f"{code!r} is not a language code (es, zh, pt-BR, ...)")
        for text, translated in table.items():
            if not text.strip() or not translated.strip():
                raise _where(sections, "translations", code, text).error(
                    "both a text and its translation must be non-empty")
    actions, forms = config.actions, config.forms
    declared: set[str] = set()
    for i, entity in enumerate(config.entities):
        if entity.name in declared:
            raise _where(sections, "entities", i, "name").error(
                f"duplicate entity {entity.name!r}")
        declared.add(entity.name)
    entities = {*BUILTIN_ENTITIES, *declared}
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
