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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.core.errors import ConfigError, Problem
from reconciler.core.model import Location

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

_PACKED_START = 1 << 32 | 1  # line 1, column 1

_CORE_PREFIX = "tag:yaml.org,2002:"
_STR_TAG = _CORE_PREFIX + "str"
# What the composer may assign on its own (YAML 1.1 implicit resolution) plus the collections.
_CORE_TAGS = {
    _CORE_PREFIX + name
    for name in ("str", "int", "float", "bool", "null", "timestamp", "merge", "value", "seq", "map")
}


def _position(event: yaml.Event) -> tuple[int, int]:
    """1-based (line, column) of an event; every event the parser emits carries a mark."""
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


@dataclass
class Document:
    """A parsed YAML file: its value plus where every part of it came from."""

    file: str  # path shown in messages, relative to the config dir (e.g. mappings/skus.yaml)
    data: Any
    # Where each value node and each mapping key starts, packed as line << 32 | column (a
    # Location object per node would be most of the memory of a 100,000-customer file).
    marks: dict[JsonPath, int] = field(default_factory=dict)
    key_marks: dict[JsonPath, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # structural (duplicate keys...)
    # Values that could not be read (an alias, an unsupported tag): the schema says nothing
    # about them, the structural problem already does.
    unknown: frozenset[JsonPath] = frozenset()
    # Mappings with keys that could not be read (merge keys, list keys): no "missing key".
    incomplete: frozenset[JsonPath] = frozenset()
    quoted: frozenset[JsonPath] = frozenset()  # scalars written in quotes (or block style)

    def location(self, path: JsonPath | Iterator[str | int]) -> Location:
        """Location of the node at `path`, else of its nearest ancestor that has one."""
        parts = tuple(path)
        while parts and parts not in self.marks:
            parts = parts[:-1]
        return self._unpack(self.marks.get(parts, _PACKED_START))

    def key_location(self, path: JsonPath) -> Location:
        """Location of the key naming the node at `path` (falls back to the node)."""
        packed = self.key_marks.get(tuple(path))
        return self.location(path) if packed is None else self._unpack(packed)

    def _unpack(self, packed: int) -> Location:
        return Location(self.file, packed >> 32, packed & 0xFFFFFFFF)


_NUMBER_START = frozenset("0123456789+-.")


def resolve_plain(text: str) -> Any:
    """YAML 1.2 core schema resolution of a plain (unquoted) scalar."""
    if text and text[0] not in _NUMBER_START and text[0] not in "nNtTfF~":
        return text  # most scalars are names: no pattern can match them
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


_ALIAS_MESSAGE = "aliases (*name) are not supported; write the value out in full"
# The mapping files are at most ~5 levels deep; far deeper is a mistake or an attack.
MAX_DEPTH = 32
# 10,000 customers take a few megabytes; a larger file is not a mapping file.
MAX_BYTES = 256 * 1024 * 1024
# Endings of the messages for unsupported constructs, which _summarise() collapses.
_COLLAPSED = ("write the value out in full", "remove it", "write the keys out")


class _Builder:
    """Builds Python values straight from parser events (no node graph: linear, small)."""

    def __init__(self, loader: Any, file: str, progress: Progress | None) -> None:
        self.loader = loader
        self.file = file
        self.progress = progress
        self.marks: dict[JsonPath, int] = {}
        self.key_marks: dict[JsonPath, int] = {}
        self.problems: list[Problem] = []
        self.unknown: set[JsonPath] = set()
        self.incomplete: set[JsonPath] = set()
        self.quoted: set[JsonPath] = set()
        # Keys repeat on every list item: one string object each, not one per item.
        self._keys: dict[str, str] = {}

    def _unpack(self, packed: int) -> Location:
        return Location(self.file, packed >> 32, packed & 0xFFFFFFFF)

    def loc(self, event: yaml.Event) -> Location:
        line, column = _position(event)
        return Location(self.file, line, column)

    def _skip(self, event: yaml.Event) -> None:
        """Read past a collection whose start event was just read, reporting any alias."""
        depth = 1
        while depth:
            event = self.loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                self.problems.append(Problem(self.loc(event), _ALIAS_MESSAGE))

    def value(self, event: yaml.Event, path: JsonPath) -> Any:
        if isinstance(event, yaml.AliasEvent):
            self.problems.append(Problem(self.loc(event), _ALIAS_MESSAGE))
            self.unknown.add(path)
            return None
        line, column = _position(event)
        self.marks[path] = line << 32 | column
        if isinstance(event, yaml.CollectionStartEvent) and len(path) >= MAX_DEPTH:
            # Deeper than any mapping file is: refused here, before anything recursive
            # (the builder, the schema checks) meets a 400-deep list.
            self.problems.append(
                Problem(self.loc(event), f"nested deeper than {MAX_DEPTH} levels; remove it")
            )
            self.unknown.add(path)
            self._skip(event)
            return None
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and tag not in _CORE_TAGS:
            # Application tags (!foo, !!python/...) would change meaning behind the schema.
            self.problems.append(
                Problem(self.loc(event), f"unsupported YAML tag '{tag}'; remove it")
            )
            self.unknown.add(path)
            if isinstance(event, yaml.CollectionStartEvent):
                self._skip(event)
            return None
        if isinstance(event, yaml.ScalarEvent):
            if event.style:  # quoted or block scalar: always a string
                self.quoted.add(path)
                return event.value
            if tag in (_STR_TAG, "!"):  # an explicit !!str, or the non-specific "!"
                return event.value
            return resolve_plain(event.value)
        if isinstance(event, yaml.SequenceStartEvent):
            return self._sequence(path)
        return self._mapping(path)

    def _sequence(self, path: JsonPath) -> list[Any]:
        items: list[Any] = []
        get = self.loader.get_event
        top = not path and self.progress is not None
        while not isinstance(event := get(), yaml.SequenceEndEvent):
            items.append(self.value(event, (*path, len(items))))
            if top and len(items) % 1000 == 0:
                assert self.progress is not None
                self.progress(event.end_mark.line)
        return items

    def _mapping(self, path: JsonPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        get = self.loader.get_event
        while not isinstance(key_event := get(), yaml.MappingEndEvent):
            value_event = None
            if not isinstance(key_event, yaml.ScalarEvent):
                where = self.loc(key_event)
                if isinstance(key_event, yaml.AliasEvent):
                    self.problems.append(Problem(where, _ALIAS_MESSAGE))
                else:
                    kind = "lists" if isinstance(key_event, yaml.SequenceStartEvent) else "mappings"
                    self.problems.append(
                        Problem(where, f"mapping keys must be plain names, not {kind}")
                    )
                    self._skip(key_event)
                self.incomplete.add(path)
                self._discard(get())
                continue
            key = self._keys.setdefault(key_event.value, key_event.value)
            key_line, key_column = _position(key_event)
            packed = key_line << 32 | key_column
            if key == "<<" and not key_event.style:
                self.problems.append(
                    Problem(
                        self.loc(key_event), "merge keys (<<) are not supported; write the keys out"
                    )
                )
                self.incomplete.add(path)
                self._discard(get())
                continue
            value_event = get()
            if key in first_seen:
                first = self._unpack(first_seen[key])
                message = f"duplicate key '{key}' (first defined at {first})"
                self.problems.append(Problem(self.loc(key_event), message))
                # The first value stands (its checks still run); the repeat is only read.
                self._discard(value_event)
                continue
            first_seen[key] = packed
            child = (*path, key)
            self.key_marks[child] = packed
            result[key] = self.value(value_event, child)
        return result

    def _discard(self, event: yaml.Event) -> None:
        """Read past a value that is not kept, still reporting aliases and tags inside it."""
        if isinstance(event, yaml.AliasEvent):
            self.problems.append(Problem(self.loc(event), _ALIAS_MESSAGE))
        elif isinstance(event, yaml.CollectionStartEvent):
            self._skip(event)


def _summarise(problems: list[Problem]) -> list[Problem]:
    """One line per distinct problem: an alias bomb is one mistake, not 80 lines of it.

    Unsupported constructs (aliases, tags, merge keys) repeat the same message wherever they
    are used; the first use is shown with the count. Duplicate keys stay one line each (every
    one is a line to delete).
    """
    counts: dict[str, int] = {}
    for problem in problems:
        counts[problem.message] = counts.get(problem.message, 0) + 1
    out = []
    for problem in problems:
        repeats = counts.get(problem.message)
        if repeats is None:
            continue  # already shown
        if problem.message.endswith(_COLLAPSED) and repeats > 1:
            del counts[problem.message]
            problem = Problem(
                problem.location, f"{problem.message} ({repeats} in this file, the first here)"
            )
        out.append(problem)
    return out


Progress = Callable[[int], None]
"""Called now and then with the number of lines read so far."""


def read(text: str, file: str, expected: str, progress: Progress | None = None) -> Document:
    """Parse YAML text into a Document that carries its structural problems.

    A syntax error or an empty file raises ConfigError (nothing can be read past it); every
    other problem (duplicate keys, aliases, tags, merge keys) is listed in `doc.problems` and
    reading goes on, so the schema can report the rest of the file in the same run.
    `expected` finishes the sentence "empty file, expected ..." (e.g. "a list of SKU mappings").
    """
    if text.startswith("\ufeff"):
        text = text[1:]  # a BOM would otherwise shift line 1's columns
    loader = None
    try:
        loader = _Loader(text)  # the pure-Python reader checks characters right here
        builder = _Builder(loader, file, progress)
        data: Any = None
        empty = True
        loader.get_event()  # StreamStart
        event = loader.get_event()
        if isinstance(event, yaml.DocumentStartEvent):
            document = event
            event = loader.get_event()
            empty = (
                isinstance(event, yaml.ScalarEvent)
                and not event.style
                and event.tag is None
                and event.value in _NULL
            )
            data = builder.value(event, ())
            loader.get_event()  # DocumentEnd
            event = loader.get_event()
            if not isinstance(event, yaml.StreamEndEvent):
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream",
                    document.start_mark,  # type: ignore[arg-type]  # the C loader's Mark
                    "but found another document",
                    event.start_mark,
                )
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_problem(exc, text, file)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if empty:
        raise ConfigError([Problem(Location(file, 1, 1), f"empty file, expected {expected}")])
    return Document(
        file,
        data,
        builder.marks,
        builder.key_marks,
        problems=_summarise(builder.problems),
        unknown=frozenset(builder.unknown),
        incomplete=frozenset(builder.incomplete),
        quoted=frozenset(builder.quoted),
    )


def parse(text: str, file: str, expected: str) -> Document:
    """Parse YAML text; raise ConfigError listing every problem found."""
    doc = read(text, file, expected)
    if doc.problems:
        raise ConfigError(doc.problems)
    return doc


def load(path: Path, file: str, expected: str) -> Document:
    """Read and parse one YAML file; `file` is the name used in messages."""
    try:
        raw = read_limited(path)
    except FileNotFoundError:
        raise ConfigError([Problem(Location(file), "file not found")]) from None
    except ValueError as exc:
        raise ConfigError([Problem(Location(file), str(exc))]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(Location(file), "is a directory, expected a file")]) from None
    except OSError as exc:
        raise ConfigError([Problem(Location(file), f"cannot read: {exc.strerror}")]) from None
    return parse(decode(raw, file), file, expected)


def read_limited(path: Path) -> bytes:
    """The file's bytes; ValueError when larger than MAX_BYTES (not read)."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ValueError(f"{size:,} bytes, larger than the {MAX_BYTES:,} a mapping file may be")
    return path.read_bytes()


def compose_text(text: str, file: str) -> yaml.Node | None:
    """The raw node graph (with marks) for in-place edits; syntax errors as ConfigError."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_problem(exc, text, file)]) from None
