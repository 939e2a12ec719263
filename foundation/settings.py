"""Settings fields from parsed YAML: frozen dataclasses, types validated as they are converted.

Every error names the file, the key path (``intents[3].examples``) and, where the YAML
loader recorded it, the line. Unknown keys are errors. ``${NAME}`` in a string is replaced by
the environment variable ``NAME`` (``${NAME:-default}``: ``default`` when it is unset) and
kept as a :class:`Secret`, whose ``repr`` hides it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from foundation.errors import ConfigError

T = TypeVar("T")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Secret(str):
    """A string that came from an environment variable: never shown in reprs or logs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class Where:
    """Position inside a YAML file while converting it."""

    file: str
    path: str = ""
    line: int | None = None

    def key(self, mapping: Any, key: str) -> Where:
        line = getattr(mapping, "key_lines", {}).get(key, self.line)
        return Where(self.file, f"{self.path}.{key}" if self.path else key, line)

    def item(self, sequence: Any, index: int) -> Where:
        lines = getattr(sequence, "item_lines", None)
        line = lines[index] if lines and index < len(lines) else self.line
        return Where(self.file, f"{self.path}[{index}]", line)

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, path=self.path, line=self.line)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if origin is tuple:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    return str(tp)


def _expand_env(text: str, where: Where) -> str:
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name, match.group(2))
        if value is None:
            raise where.error(f"environment variable {name} is not set")
        return value

    return Secret(_ENV_REF.sub(replace, text))


@dataclass(frozen=True)
class Prebuilt:
    """A value converted already (a section read from an included file)."""

    value: Any


def convert(tp: Any, value: Any, where: Where) -> Any:
    """Convert ``value`` to type ``tp`` or raise :class:`ConfigError` at ``where``."""
    if isinstance(value, Prebuilt):
        return value.value
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(option, value, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else where.error(
            "must be " + " or ".join(_type_name(o) for o in options if o is not type(None))
        )
    if value is None:
        raise where.error(f"must be {_type_name(tp)}, got nothing")
    if tp is str:
        if not isinstance(value, str):
            raise where.error(f"must be a string, got {type(value).__name__}")
        return _expand_env(value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.error(f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise where.error(f"must be a number, got {value!r}")
        return float(value)
    if origin is Literal:
        if value not in get_args(tp):
            raise where.error(f"must be {_type_name(tp)}, got {value!r}")
        return value
    if origin is tuple:
        (item_type, _ellipsis) = get_args(tp)
        if not isinstance(value, list):
            raise where.error(f"must be a list, got {type(value).__name__}")
        return tuple(convert(item_type, v, where.item(value, i)) for i, v in enumerate(value))
    if origin in (dict, Mapping):
        _key_type, item_type = get_args(tp)
        if not isinstance(value, dict):
            raise where.error(f"must be a mapping, got {type(value).__name__}")
        return types.MappingProxyType(
            {str(k): convert(item_type, v, where.key(value, str(k))) for k, v in value.items()}
        )
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return build(tp, value, where)
    raise TypeError(f"unsupported config type {tp!r}")  # a programming error, not user input


def build(cls: type[T], data: Any, where: Where) -> T:
    """Build dataclass ``cls`` from a YAML mapping, with unknown-key and field checks."""
    if not isinstance(data, dict):
        raise where.error(f"must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        valid = ", ".join(sorted(fields))
        raise where.key(data, unknown[0]).error(f"unknown key; valid keys are: {valid}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        field_where = where.key(data, name)
        if name not in data:
            no_default = field.default is dataclasses.MISSING
            if no_default and field.default_factory is dataclasses.MISSING:
                raise field_where.error("required")
            continue
        value = convert(hints[name], data[name], field_where)
        for rule in field.metadata.get("checks", ()):
            problem = rule(value) if value is not None else None
            if problem:
                raise field_where.error(problem)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:  # __post_init__ cross-field checks
        raise where.error(str(exc)) from exc

