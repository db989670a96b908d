"""YAML files read strictly, with the position of every node, so an error can name its line.

Used by :mod:`hygiene.config` (pydantic errors) and :mod:`hygiene.rules.settings` (rule
codes and options, which the config models leave free-form): both follow a key path such
as ``("overrides", 0, "rules", "IM002")`` through the node tree to a 1-based line.

Reading is strict because a configuration file is written by people, some careless and
some hostile, and read by a job that deletes images. Whatever YAML would silently turn
into something else, or would take unbounded time or memory, is refused with one line
naming the file and the line (a :class:`~hygiene.errors.ConfigError`):

* the file: missing, a directory, not a regular file (a FIFO would block for ever,
  ``/dev/zero`` never ends), unreadable, a symbolic link loop, over 1 MiB, empty;
* the bytes: UTF-16/UTF-32, NUL bytes (binary data), anything that is not UTF-8
  (a UTF-8 byte-order mark is accepted);
* YAML's surprises: a duplicate key at any depth (YAML keeps the last one without a
  word), YAML 1.1 base-60 numbers (``1:30`` is 90) and leading-zero octals (``010`` is
  8), integers of more than 100 digits, impossible dates (``2027-13-45``);
* anything but plain data: every tag except the core ones (``!!python/object``,
  ``!!binary``, ``!!set``, local ``!tags``);
* size and shape: nesting deeper than 32 levels (the composer recurses; 20,000 levels
  was a RecursionError), aliases that expand to more than 10,000 values beyond those
  written (a "billion laughs" bomb is 5 lines), an alias to its own parent;
* characters: C0/C1 control characters other than tab and newline (CR/LF header
  injection, terminal escape sequences) and bidirectional overrides (text that reads
  differently from what it is) in any key or value.

Anchors, aliases and merge keys (``<<: *defaults``) stay usable within those bounds.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from hygiene.errors import ConfigError
from hygiene.text import UNSAFE_CHARACTERS

KeyPath = tuple[Any, ...]  # mapping keys (str, or what YAML made of them) and list indexes

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_ALIAS_GROWTH = 10_000
MAX_INT_DIGITS = 100

_CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(
    _CORE + name
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
)


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


class _Problem(Exception):
    """A problem with the file at ``line`` (None: the file as a whole)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def read_mapping(path: Path) -> YamlMapping:
    """Read ``path``; raises :class:`ConfigError` naming the file (and line) when it cannot
    be read, is not strict YAML (see the module docstring), is empty or is not a mapping
    at the top level."""
    try:
        data, root = parse(decode(read_bytes(path)))
    except _Problem as problem:
        where = f"{path}:{problem.line}" if problem.line else str(path)
        raise ConfigError(f"{where}: {problem.message}") from None
    if root is None:
        raise ConfigError(f"{path}: the file is empty; write {{}} in it to accept every default")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:{root.start_mark.line + 1}: expected a mapping at the top level")
    return YamlMapping(path, data, root)


def dotted(key_path: KeyPath) -> str:
    """``("overrides", 0, "rules", "IM002")`` → ``overrides[0].rules.IM002``: how every
    configuration error names a key."""
    text = ""
    for part in key_path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            name = display_key(part)
            text += f".{name}" if text else name
    return text or "(top level)"


def display_key(value: Any) -> str:
    """A key as it reads in a key path: invisible or control characters escaped."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    text = str(value)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


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
            entry = next(((k, v) for k, v in node.value if _key_matches(k, part)), None)
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


_BOOLEAN_WORDS = {
    True: {"y", "yes", "true", "on"},
    False: {"n", "no", "false", "off"},
}


def _key_matches(key: yaml.Node, part: Any) -> bool:
    """Whether the key node reads as ``part`` (a key path holds constructed keys)."""
    if not isinstance(key, yaml.ScalarNode):
        return False
    if isinstance(part, bool):
        return str(key.value).lower() in _BOOLEAN_WORDS[part]
    if part is None:
        return key.value in ("", "~", "null", "Null", "NULL")
    return bool(key.value == str(part))


# ------------------------------------------------------------------------ the file


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most 1 MiB (never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if path.is_symlink():
            raise _Problem(
                f"file not found (broken symbolic link to {os.readlink(path)})"
            ) from None
        raise _Problem("file not found") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Problem("symbolic link loop") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise _Problem("permission denied") from None
        if exc.errno == errno.ENOTDIR:
            raise _Problem(f"{path.parent} is not a directory") from None
        raise _Problem(f"cannot be read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise _Problem("is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise _Problem(f"not a regular file ({_file_kind(mode)})")
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _Problem(f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > MAX_BYTES:
        raise _Problem("too large: a configuration file is at most 1 MiB")
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def decode(data: bytes) -> str:
    """UTF-8 text (a byte-order mark is dropped); anything else is a problem with a line."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if data.startswith(bom):
            raise _Problem(f"{name} text (byte-order mark); save the file as UTF-8", 1)
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _position(data, nul)
        raise _Problem(
            f"NUL byte at column {column}: binary data or UTF-16/UTF-32 text; "
            "save the file as UTF-8 text",
            line,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        try:
            data.decode("cp1252")
            hint = ", looks like Latin-1/Windows-1252"
        except UnicodeDecodeError:
            hint = ""
        raise _Problem(
            f"not UTF-8 (byte 0x{data[exc.start]:02X} at column {column}{hint}); "
            "save the file as UTF-8",
            line,
        ) from None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


# ------------------------------------------------------------------------ the YAML


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with a depth limit and constructors that refuse YAML 1.1's surprises.

    Pure Python (not the C loader): the node marks give every error its line.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(node.value)
        if ":" in text:
            raise _refused(
                node,
                f"{text} is a base 60 number in YAML 1.1 (= {super().construct_yaml_int(node)});"
                " quote it if it is text, or write the number in decimal",
            )
        if re.fullmatch(r"[-+]?0[0-7_]+", text):
            raise _refused(
                node,
                f"{text} has a leading zero: YAML 1.1 reads it as octal "
                f"(= {super().construct_yaml_int(node)}); drop the zero, or quote it",
            )
        digits = len(re.sub(r"[^0-9a-fA-F]", "", text.split("x")[-1]))
        if digits > MAX_INT_DIGITS:
            raise _refused(node, f"an integer with {digits} digits")
        try:
            return super().construct_yaml_int(node)
        except ValueError as exc:
            raise _refused(node, f"invalid !!int {text!r}: {exc}") from None

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        text = str(node.value)
        if ":" in text:
            raise _refused(
                node,
                f"{text} is a base 60 number in YAML 1.1; quote it if it is text, or "
                "write the number in decimal",
            )
        try:
            return super().construct_yaml_float(node)
        except ValueError as exc:
            raise _refused(node, f"invalid !!float {text!r}: {exc}") from None

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise _refused(node, f"invalid date {node.value}: {exc}") from None


def _refused(node: yaml.Node, message: str) -> ConstructorError:
    return ConstructorError(None, None, message, node.start_mark)


StrictLoader.add_constructor(_CORE + "int", StrictLoader.construct_yaml_int)
StrictLoader.add_constructor(_CORE + "float", StrictLoader.construct_yaml_float)
StrictLoader.add_constructor(_CORE + "timestamp", StrictLoader.construct_yaml_timestamp)
# YAML 1.1's "value" type (a plain `=`) has no use here: it stays a string.
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _CORE + "value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse(text: str) -> tuple[Any, yaml.Node | None]:
    """The data and node tree of one YAML document (``None, None`` when there is none)."""
    loader: StrictLoader | None = None
    try:
        loader = StrictLoader(text)  # the reader checks the first characters already
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_graph(loader, root)
        return loader.construct_document(root), root
    except _Problem:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = ", ".join(p for p in (exc.context, exc.problem) if p) or "not YAML"
        if isinstance(exc, ConstructorError) and exc.context is None:
            raise _Problem(problem, line) from None  # our own refusals say it all
        if problem.startswith("nested more than"):
            raise _Problem(problem, line) from None
        raise _Problem(f"invalid YAML: {problem}", line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        character = exc.character
        code = ord(character) if isinstance(character, str) else int(character)
        raise _Problem(f"invalid YAML: unacceptable character U+{code:04X}", line) from None
    except yaml.YAMLError as exc:
        raise _Problem(f"invalid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_graph(loader: StrictLoader, root: yaml.Node) -> None:
    """One walk over the node graph (aliases are shared nodes): tags, characters,
    duplicate keys, recursive aliases, and the size and depth aliases expand to."""
    written = 0
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    done: set[int] = set()
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, KeyPath, bool]] = [(root, (), False)]
    while stack:
        node, path, leaving = stack.pop()
        key = id(node)
        if leaving:
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            open_.discard(key)
            done.add(key)
            if height[key] > MAX_DEPTH:
                raise _Problem(
                    f"nested more than {MAX_DEPTH} levels deep (through aliases)", _line(node)
                )
            continue
        if key in done:
            continue
        if key in open_:
            raise _Problem(
                f"{dotted(path)}: recursive alias: a value that contains itself", _line(node)
            )
        open_.add(key)
        written += 1
        if node.tag not in ALLOWED_TAGS:
            raise _Problem(
                f"tag {_tag_name(node.tag)} is not allowed (plain YAML only: mappings, "
                "lists, strings, numbers, booleans, dates)",
                _line(node),
            )
        if isinstance(node, yaml.ScalarNode):
            bad = UNSAFE_CHARACTERS.search(node.value)
            if bad:
                raise _Problem(
                    f"{dotted(path)}: control character U+{ord(bad.group()):04X} in a string",
                    _line(node),
                )
        stack.append((node, path, True))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node, child_path in _entries(loader, node, path):
                stack.append((key_node, child_path, False))
                stack.append((value_node, child_path, False))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                stack.append((item, (*path, index), False))
    if size[id(root)] - written > MAX_ALIAS_GROWTH:
        raise _Problem(
            f"aliases expand to more than {MAX_ALIAS_GROWTH:,} values beyond those written "
            "(an alias bomb?); write the values out",
            _line(root),
        )


def _entries(
    loader: StrictLoader, node: yaml.MappingNode, path: KeyPath
) -> list[tuple[yaml.Node, yaml.Node, KeyPath]]:
    """The entries of a mapping with their key paths; a duplicate key is a problem.

    Keys are compared as YAML reads them (``yes`` and ``true`` are one key, so are ``16``
    and ``0x10``). Keys brought in by a merge (``<<``) may be overridden, as YAML says.
    """
    first: dict[Any, yaml.Node] = {}
    out = []
    for key_node, value_node in node.value:
        child_path = path
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _CORE + "merge":
            if key_node.tag not in ALLOWED_TAGS:
                raise _Problem(f"tag {_tag_name(key_node.tag)} is not allowed", _line(key_node))
            name = loader.construct_object(key_node)
            identity = (bool if isinstance(name, bool) else type(name), name)
            earlier = first.get(identity)
            if earlier is not None:
                as_written = "" if earlier.value == key_node.value else f" as {earlier.value!r}"
                raise _Problem(
                    f"{dotted((*path, name))}: duplicate key "
                    f"{key_node.value!r} (first on line {_line(earlier)}{as_written}); YAML "
                    "would silently keep only the last one",
                    _line(key_node),
                )
            first[identity] = key_node
            child_path = (*path, name)
        out.append((key_node, value_node, child_path))
    return out


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag
