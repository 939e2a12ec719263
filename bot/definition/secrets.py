"""The bot's secrets: every value of its configuration that must never be shown or stored
(logs and error messages mask them; the session store masks them in what users type)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from bot.definition.config import BotConfig
from channels.registry import channel_settings
from foundation.settings import Secret, Where

SECRET_FIELD = re.compile(r"token|secret|password|api_key|agents", re.IGNORECASE)


def config_strings(value: Any, *, secret: bool = False) -> Iterator[tuple[str, bool]]:
    """Every string inside a config value (dataclasses, the values of maps, lists), and
    whether it is secret: a :class:`~foundation.settings.Secret` (it came from ``${ENV}``)
    or held, at any depth, by a dataclass field whose name says so (``token``, ``secret``,
    ``password``, ``api_key``, ``agents``)."""
    if isinstance(value, str):
        yield value, secret or isinstance(value, Secret)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from config_strings(getattr(value, f.name),
                                      secret=secret or bool(SECRET_FIELD.search(f.name)))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from config_strings(item, secret=secret)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from config_strings(item, secret=secret)


def collect_secrets(value: Any) -> set[str]:
    """The secret strings inside a config value (:func:`config_strings`), empty ones aside."""
    return {text for text, secret in config_strings(value) if secret and text}


def bot_secrets(config: BotConfig) -> set[str]:
    """Values to keep out of logs and error messages: ``${ENV}`` values and secret fields
    anywhere in the config (channel settings included), API and agent tokens, ``mask_env``
    variables."""
    found = collect_secrets(config) | set(config.security.api_tokens)
    for name, raw in config.channels.items():  # raw YAML until now: build each one's settings
        found |= collect_secrets(channel_settings(name, raw, Where("bot.yaml", "channels")))
    found.update(os.environ[n] for n in config.security.mask_env if os.environ.get(n))
    return found
