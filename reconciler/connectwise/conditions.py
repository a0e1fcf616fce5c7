"""ConnectWise `conditions=` expressions: literals quoted correctly, long `in` lists chunked.

Company and agreement names contain quotes and apostrophes, so strings are always built
here, never by f-string at the call site.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote_plus

Value = str | int | bool | dt.date

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*\Z")


def quote(value: str) -> str:
    """A ConnectWise string literal: double quotes, with `\\` and `"` backslash-escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: Value) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return f"[{value.strftime('%Y-%m-%dT%H:%M:%SZ')}]"
    if isinstance(value, dt.date):
        return f"[{value.isoformat()}T00:00:00Z]"
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"cannot express {type(value).__name__} in a ConnectWise condition")


def _field(name: str) -> str:
    if not _FIELD.match(name):
        raise ValueError(f"not a ConnectWise field name: {name!r}")
    return name


def eq(field: str, value: Value) -> str:
    return f"{_field(field)} = {literal(value)}"


def in_list(field: str, values: Iterable[Value]) -> str:
    items = [literal(v) for v in values]
    if not items:
        raise ValueError("an `in` list needs at least one value")
    return f"{_field(field)} in ({', '.join(items)})"


def and_(*conditions: str | None) -> str:
    parts = [c for c in conditions if c]
    return " and ".join(f"({c})" if len(parts) > 1 else c for c in parts)


def _encoded_len(text: str) -> int:
    return len(quote_plus(text))


def in_chunks(
    field: str, values: Sequence[Value], max_encoded: int, *, extra: str | None = None
) -> list[str]:
    """`field in (...)` conditions (each and-ed with `extra`) whose URL-encoded length
    stays within `max_encoded`. A single value too long on its own still gets a chunk."""
    return [
        and_(extra, in_list(field, group))
        for group in chunk_values(field, values, max_encoded, extra=extra)
    ]


def chunk_values(
    field: str, values: Sequence[Value], max_encoded: int, *, extra: str | None = None
) -> list[list[Value]]:
    """The values of each `in_chunks` condition, in order, duplicates dropped."""
    unique = list(dict.fromkeys(values))
    head = and_(extra, f"{_field(field)} in (X)")
    # Length of everything but the list items: the `X` placeholder is one encoded char.
    overhead = _encoded_len(head) - 1
    sep = _encoded_len(", ")
    groups: list[list[Value]] = []
    current: list[Value] = []
    size = overhead
    for value in unique:
        cost = _encoded_len(literal(value)) + (sep if current else 0)
        if current and size + cost > max_encoded:
            groups.append(current)
            current, size = [], overhead
            cost = _encoded_len(literal(value))
        current.append(value)
        size += cost
    if current:
        groups.append(current)
    return groups
