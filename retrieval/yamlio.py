"""Safe YAML loading that remembers the line of every key and list item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from retrieval.errors import SourceError


class LocatedDict(dict[str, Any]):
    """A mapping from YAML that knows the line of each key (1-based)."""

    line: int | None = None
    key_lines: dict[str, int]


class LocatedList(list[Any]):
    """A sequence from YAML that knows the line of each item (1-based)."""

    line: int | None = None
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that builds :class:`LocatedDict` / :class:`LocatedList`."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LocatedDict:
    loader.flatten_mapping(node)
    result = LocatedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) or key is None:
            raise SourceError(
                "mapping keys must be plain scalars",
                file=loader.name,
                line=key_node.start_mark.line + 1,
            )
        key = str(key)
        if key in result:
            raise SourceError(
                f"duplicate key {key!r}", file=loader.name, line=key_node.start_mark.line + 1
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LocatedList:
    result = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path, *, display: str | None = None) -> Any:
    """Parse one YAML file safely; syntax errors become :class:`SourceError` with the line."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceError("file not found", file=name) from exc
    except OSError as exc:
        raise SourceError(f"cannot read file: {exc.strerror}", file=name) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError("not UTF-8 text", file=name) from exc
    loader = _LineLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise SourceError(f"invalid YAML: {reason}", file=name, line=line) from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"invalid YAML: {exc}", file=name) from exc
    finally:
        loader.dispose()
