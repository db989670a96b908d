"""YAML files read with the position of every node, so an error can name its line.

Used by :mod:`hygiene.config` (pydantic errors) and :mod:`hygiene.rules.settings` (rule
codes and options, which the config models leave free-form): both follow a key path such
as ``("overrides", 0, "rules", "IM002")`` through the node tree to a 1-based line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hygiene.errors import ConfigError

KeyPath = tuple[int | str, ...]


@dataclass(frozen=True)
class YamlMapping:
    """A YAML file whose top level is a mapping: its data and its node tree."""

    path: Path
    data: dict[str, Any]
    root: yaml.Node | None

    def line_of(self, key_path: KeyPath) -> int | None:
        return line_of(self.root, key_path)

    def where(self, key_path: KeyPath) -> str:
        """``path:line`` of the deepest node of ``key_path`` found, or ``path``."""
        line = self.line_of(key_path)
        return f"{self.path}:{line}" if line else str(self.path)


def read_mapping(path: Path) -> YamlMapping:
    """Read ``path``; raises :class:`ConfigError` naming the file (and line) when it is
    missing, not YAML, or not a mapping at the top level. An empty file is ``{}``."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping at the top level")
    return YamlMapping(path, data, root)


def line_of(root: yaml.Node | None, key_path: KeyPath) -> int | None:
    """The 1-based line of the deepest node of ``key_path`` present under ``root``.

    Mapping keys are matched by value, sequence items by index; for a mapping entry the
    line is that of its key. A path that leaves the tree early gives the line of the
    last node it reached (the top of the document for an unknown first key).
    """
    node = root
    line = None if node is None else node.start_mark.line + 1
    for part in key_path:
        if isinstance(node, yaml.MappingNode):
            entry = next(((k, v) for k, v in node.value if k.value == part), None)
            if entry is None:
                break
            key, node = entry
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
