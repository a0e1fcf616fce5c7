"""Safe YAML reading that keeps every node's `file:line:col`.

PyYAML only *composes* the node graph here; Python values are built by hand so that:
- plain scalars resolve the YAML 1.2 core way (ints, floats, true/false, null/~) and nothing
  else: dates, `yes`/`no`/`on`/`off` and friends stay strings and the schema decides;
- duplicate keys are errors (PyYAML silently keeps the last one);
- anchors/aliases are refused (they make "where did this value come from" ambiguous and are
  the vehicle of billion-laughs documents);
- every node's position is kept, keyed by its path, for error messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import ConfigError, Problem
from reconciler.model import Location

# libyaml composes ~10x faster (the 5,000-customer benchmark depends on it); both loaders give
# the same marks, so messages and locations do not depend on which one is installed.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

JsonPath = tuple[str | int, ...]

_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}

_CORE_PREFIX = "tag:yaml.org,2002:"
_STR_TAG = _CORE_PREFIX + "str"
# What the composer may assign on its own (YAML 1.1 implicit resolution) plus the collections.
_CORE_TAGS = {
    _CORE_PREFIX + name
    for name in ("str", "int", "float", "bool", "null", "timestamp", "merge", "value", "seq", "map")
}


@dataclass
class Document:
    """A parsed YAML file: its value plus where every part of it came from."""

    file: str  # path shown in messages, relative to the config dir (e.g. mappings/skus.yaml)
    data: Any
    locations: dict[JsonPath, Location] = field(default_factory=dict)  # value nodes
    key_locations: dict[JsonPath, Location] = field(default_factory=dict)  # mapping keys

    def location(self, path: JsonPath | Iterator[str | int]) -> Location:
        """Location of the node at `path`, else of its nearest ancestor that has one."""
        parts = tuple(path)
        while parts and parts not in self.locations:
            parts = parts[:-1]
        return self.locations.get(parts, Location(self.file, 1, 1))

    def key_location(self, path: JsonPath) -> Location:
        """Location of the key naming the node at `path` (falls back to the node)."""
        return self.key_locations.get(tuple(path)) or self.location(path)


def resolve_plain(text: str) -> Any:
    """YAML 1.2 core schema resolution of a plain (unquoted) scalar."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _OCT.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        value = float(text)
        # Overflowing literals (1e999) would become inf, which no schema range can reject.
        return value if math.isfinite(value) else text
    # .inf and .nan are deliberately left as strings: no setting is meant to be infinite,
    # and a string gets a clear "expected a number" from the schema.
    return text


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def decode(raw: bytes, file: str) -> str:
    """UTF-8 bytes -> text, or a Problem at the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = raw[: exc.start]
        line = head.count(b"\n") + 1
        line_start = head.rfind(b"\n") + 1
        col = len(head[line_start:].decode("utf-8", errors="replace")) + 1
        byte = raw[exc.start]
        raise ConfigError(
            [
                Problem(
                    Location(file, line, col),
                    f"not valid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8",
                )
            ]
        ) from None


def _syntax_problem(exc: yaml.YAMLError, text: str, file: str) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        position = exc.position
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        if exc.encoding != "unicode":  # libyaml counts UTF-8 bytes, PyYAML characters
            position = len(text.encode("utf-8")[:position].decode("utf-8", errors="ignore"))
        line, col = _line_col(text, position)
        return Problem(
            Location(file, line, col),
            f"character {code:#x} is not allowed in YAML ({exc.reason}); remove it",
        )
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        location = Location(file, mark.line + 1, mark.column + 1)
        line_text = text.splitlines()[mark.line] if mark.line < len(text.splitlines()) else ""
        indent = line_text[: len(line_text) - len(line_text.lstrip(" \t"))]
        if "\t" in indent and mark.column <= len(indent):
            return Problem(
                Location(file, mark.line + 1, indent.index("\t") + 1),
                "tab character in indentation; YAML indentation must use spaces",
            )
        message = f"YAML syntax error: {exc.problem}"
        if exc.context:
            where = ""
            if exc.context_mark is not None and exc.context_mark.line != mark.line:
                where = f" started at line {exc.context_mark.line + 1}"
            message += f" ({exc.context}{where})"
        return Problem(location, message)
    return Problem(Location(file, 1, 1), f"YAML error: {exc}")


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.locations: dict[JsonPath, Location] = {}
        self.key_locations: dict[JsonPath, Location] = {}
        self.problems: list[Problem] = []
        self._seen: set[int] = set()
        self.aliased = False

    def loc(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: JsonPath) -> Any:
        if id(node) in self._seen:
            # The composer hands back the same node object for every alias of an anchor;
            # parse() locates the aliases themselves.
            self.aliased = True
            return None
        self._seen.add(id(node))
        self.locations[path] = self.loc(node)
        if node.tag not in _CORE_TAGS:
            # Application tags (!foo, !!python/...) would change meaning behind the schema.
            self.problems.append(
                Problem(self.loc(node), f"unsupported YAML tag '{node.tag}'; remove it")
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.style:  # quoted or block scalar: always a string
            return node.value
        value = resolve_plain(node.value)
        if node.tag == _STR_TAG and not isinstance(value, str):
            # The composer tags implicit plain scalars by YAML 1.1 (15 -> int), so a plain
            # scalar still tagged str here carried an explicit `!!str`.
            return node.value
        return value

    def _mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(
                    Problem(self.loc(key_node), "mapping keys must be plain names, not lists")
                )
                continue
            key = key_node.value
            key_loc = self.loc(key_node)
            if key == "<<" and not key_node.style:
                self.problems.append(
                    Problem(key_loc, "merge keys (<<) are not supported; write the keys out")
                )
                continue
            if key in first_seen:
                self.problems.append(
                    Problem(key_loc, f"duplicate key '{key}' (first defined at {first_seen[key]})")
                )
                continue
            first_seen[key] = key_loc
            child = (*path, key)
            self.key_locations[child] = key_loc
            result[key] = self.build(value_node, child)
        return result


def parse(text: str, file: str, expected: str) -> Document:
    """Parse YAML text; raise ConfigError listing every problem found.

    `expected` finishes the sentence "empty file, expected ..." (e.g. "a list of SKU mappings").
    """
    if text.startswith("\ufeff"):
        text = text[1:]  # a BOM would otherwise shift line 1's columns
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_problem(exc, text, file)]) from None
    if root is None or (
        isinstance(root, yaml.ScalarNode) and not root.style and root.value in _NULL
    ):
        raise ConfigError([Problem(Location(file, 1, 1), f"empty file, expected {expected}")])
    builder = _Builder(file)
    data = builder.build(root, ())
    if builder.aliased:
        builder.problems.extend(
            Problem(
                Location(file, event.start_mark.line + 1, event.start_mark.column + 1),
                "aliases (*name) are not supported; write the value out in full",
            )
            for event in yaml.parse(text, Loader=_Loader)
            if isinstance(event, yaml.AliasEvent) and event.start_mark is not None
        )
    if builder.problems:
        raise ConfigError(builder.problems)
    return Document(file, data, builder.locations, builder.key_locations)


def load(path: Path, file: str, expected: str) -> Document:
    """Read and parse one YAML file; `file` is the name used in messages."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(Location(file), "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(Location(file), "is a directory, expected a file")]) from None
    except OSError as exc:
        raise ConfigError([Problem(Location(file), f"cannot read: {exc.strerror}")]) from None
    return parse(decode(raw, file), file, expected)


def compose_text(text: str, file: str) -> yaml.Node | None:
    """The raw node graph (with marks) for in-place edits; syntax errors as ConfigError."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_problem(exc, text, file)]) from None
