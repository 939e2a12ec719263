"""The bot's secrets: every value of its configuration that must never be shown or stored
(logs and error messages mask them; the session store masks them in what users type)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

from bot.definition.config import BotConfig
from channels.registry import channel_settings
from foundation.settings import Secret, Where

_SECRET_FIELD = re.compile(r"token|secret|password|api_key", re.IGNORECASE)


def collect_secrets(value: Any) -> set[str]:
    """Every :class:`~foundation.settings.Secret` (a value that came from ``${ENV}``)
    inside a config value (dataclasses, maps, lists), and every non-empty string of a
    dataclass field whose name says it is one (``token``, ``secret``, ``password``)."""
    if isinstance(value, Secret):
        return {str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found: set[str] = set()
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if isinstance(item, str) and item and _SECRET_FIELD.search(f.name):
                found.add(item)
            found |= collect_secrets(item)
        return found
    if isinstance(value, Mapping):
        return set().union(*(collect_secrets(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(collect_secrets(v) for v in value))
    return set()


def bot_secrets(config: BotConfig) -> set[str]:
    """Values to keep out of logs and error messages: ``${ENV}`` values and secret fields
    anywhere in the config (channel settings included), API and agent tokens, ``mask_env``
    variables."""
    found = collect_secrets(config) | set(config.security.api_tokens)
    if config.handoff is not None:  # each agent's own token
        found |= set(config.handoff.agents.values())
    for name, raw in config.channels.items():  # raw YAML until now: build each one's settings
        found |= collect_secrets(channel_settings(name, raw, Where("bot.yaml", "channels")))
    found.update(os.environ[n] for n in config.security.mask_env if os.environ.get(n))
    return found
