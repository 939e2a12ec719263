"""Load a bot folder: ``bot.yaml`` and the files it includes, converted and checked.

A top-level section may be written inline or as the name of another YAML file in the bot
folder (``intents: intents.yaml``); errors then name that file.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from bot.definition.checks import check_dialogue
from bot.definition.config import BUILD_DIR, BotConfig, BotDefinition, served_folder, typed_path
from bot.errors import ConfigError, library_errors
from channels.registry import validate_channel_settings
from foundation.settings import Prebuilt, Where, build, convert
from retrieval.sites.settings import check_site_entries
from retrieval.yamlio import LocatedDict, load_yaml

INCLUDABLE = ("intents", "responses", "faq", "channels", "entities", "forms", "actions",
              "translations")


def bot_file(directory: Path) -> Path:
    """The definition file of a bot folder (``bot.yaml`` or ``bot.yml``)."""
    if directory.is_file():
        return directory
    for name in ("bot.yaml", "bot.yml"):
        if (directory / name).is_file():
            return directory / name
    if not directory.exists():
        raise ConfigError("bot folder does not exist", file=typed_path(directory))
    raise ConfigError("no bot.yaml in this folder", file=typed_path(directory))


def load_bot(directory: str | Path) -> BotDefinition:
    """Load and validate a bot folder; raise :class:`ConfigError` naming what is wrong."""
    with library_errors():
        return _load(Path(directory))


def _load(directory: Path) -> BotDefinition:
    file = bot_file(directory)
    root = file.parent
    shown = typed_path(file)
    raw = load_yaml(file, display=shown)
    top = Where(shown)
    if not isinstance(raw, dict):
        raise top.error("the top level must be a mapping with at least a 'name'")
    hints = typing.get_type_hints(BotConfig)
    data = dict(raw)
    sections: dict[str, tuple[Where, Any]] = {k: (top.key(raw, k), raw.get(k)) for k in raw}
    for key in INCLUDABLE:
        value = data.get(key)
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            included = root / value
            if not included.is_file():
                raise top.key(raw, key).error(f"included file {value!r} not found")
            included_name = typed_path(included)
            parsed = load_yaml(included, display=included_name)
            where = Where(included_name, key, getattr(parsed, "line", None))
            sections[key] = (where, parsed)
            if key == "faq":  # a wrong site entry named with its own reason, not the union's
                check_site_entries(parsed, where)
            data[key] = Prebuilt(convert(hints[key], parsed, where))
    if not isinstance(data.get("faq"), Prebuilt):
        check_site_entries(raw.get("faq"), top.key(raw, "faq"))
    located = LocatedDict(data)
    located.key_lines = dict(getattr(raw, "key_lines", {}))
    located.line = getattr(raw, "line", None)
    config = build(BotConfig, located, top)
    _cross_check(config, sections.get("intents", (top.key(raw, "intents"), None)))
    if config.model.generation and config.faq is None:
        model = top.key(raw, "model")
        raise model.key(raw.get("model"), "generation").error(
            "grounded generation answers from the FAQ: add a 'faq' section or set it to false")
    check_dialogue(config, {**sections, ".": (top, raw)})
    validate_channel_settings(config.channels, sections.get("channels", (top, None))[0])
    return BotDefinition(root=root, config=config, file=file,
                         artefacts=served_folder(root / BUILD_DIR))


def _cross_check(config: BotConfig, intents_section: tuple[Where, Any]) -> None:
    """Checks across sections: unique intent names, responses that exist."""
    intents_where, intents_raw = intents_section
    seen: set[str] = set()
    for i, intent in enumerate(config.intents):
        where = intents_where.item(intents_raw, i)
        if intent.name in seen:
            raise Where(where.file, f"{where.path}.name", where.line).error(
                f"duplicate intent {intent.name!r}"
            )
        seen.add(intent.name)
        if intent.response is not None and intent.response not in config.responses:
            known = ", ".join(sorted(config.responses)) or "(none defined)"
            raise Where(where.file, f"{where.path}.response", where.line).error(
                f"unknown response {intent.response!r}; defined responses: {known}"
            )
