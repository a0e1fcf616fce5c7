"""Typed reads of JSON that came from outside (a saved plan file), checked as they are read.

A full JSON Schema pass over a 10,000-customer plan took seconds (jsonschema walks every
keyword of every item in Python); reading each field once with its type checked costs
almost nothing and catches the same structural defects, each as one line naming its
JSON path ("customers/12/changes/0/after: expected an integer >= 0, got "5"").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.secure.scrub import shorten


class ShapeError(ValueError):
    """`str()` is "path: what is wrong"."""


class Obj:
    """A JSON object at `path`, read key by key with the type each key must have."""

    __slots__ = ("_data", "path")

    def __init__(self, data: Any, path: str, keys: frozenset[str] | None = None) -> None:
        if not isinstance(data, dict):
            raise ShapeError(f"{path or '(top level)'}: expected an object, got {_kind(data)}")
        if keys is not None and not data.keys() <= keys:
            unknown = sorted(data.keys() - keys)
            raise ShapeError(f"{self._at(path, unknown[0])}: unknown key")
        self._data = data
        self.path = path

    @staticmethod
    def _at(path: str, key: str | int) -> str:
        return f"{path}/{key}" if path else str(key)

    def _value(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise ShapeError(f"{self.path or '(top level)'}: missing {key!r}") from None

    def _fail(self, key: str, expected: str, value: Any) -> ShapeError:
        return ShapeError(f"{self._at(self.path, key)}: expected {expected}, got {_kind(value)}")

    def has(self, key: str) -> bool:
        return key in self._data

    def boolean(self, key: str) -> bool:
        value = self._value(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def text(self, key: str) -> str:
        value = self._value(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string", value)
        return value

    def opt_text(self, key: str) -> str | None:
        value = self._value(key)
        return None if value is None else self.text(key)

    def integer(self, key: str, minimum: int | None = None) -> int:
        value = self._value(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "an integer", value)
        if minimum is not None and value < minimum:
            raise self._fail(key, f"an integer >= {minimum}", value)
        return value

    def opt_integer(self, key: str) -> int | None:
        value = self._value(key)
        return None if value is None else self.integer(key)

    def date(self, key: str) -> dt.date:
        value = self._value(key)
        try:
            return dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            raise self._fail(key, "a date (YYYY-MM-DD)", value) from None

    def opt_date(self, key: str) -> dt.date | None:
        return None if self._value(key) is None else self.date(key)

    def decimal(self, key: str) -> Decimal:
        """A decimal written as a string (never a float: money)."""
        value = self._value(key)
        try:
            if not isinstance(value, str):
                raise TypeError
            number = Decimal(value)
        except (TypeError, InvalidOperation):
            raise self._fail(key, "a decimal number in a string", value) from None
        if not number.is_finite():
            raise self._fail(key, "a finite decimal number", value)
        return number

    def opt_decimal(self, key: str) -> Decimal | None:
        return None if self._value(key) is None else self.decimal(key)

    @property
    def raw(self) -> dict[str, Any]:
        return self._data

    def items(self) -> Iterator[tuple[str, Any]]:
        """The object's members (JSON keys are always strings)."""
        yield from self._data.items()

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.array(key)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ShapeError(f"{self._at(self._at(self.path, key), i)}: expected a string")
        return tuple(items)

    def array(self, key: str) -> list[Any]:
        value = self._value(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list", value)
        return value

    def obj(self, key: str, keys: frozenset[str] | None = None) -> Obj:
        return Obj(self._value(key), self._at(self.path, key), keys)

    def opt_obj(self, key: str, keys: frozenset[str] | None = None) -> Obj | None:
        """The object at `key`; None when it is null or absent (a key added later)."""
        value = self._data.get(key)
        return None if value is None else Obj(value, self._at(self.path, key), keys)

    def objs(self, key: str, keys: frozenset[str] | None = None) -> Iterator[Obj]:
        where = self._at(self.path, key)
        for i, item in enumerate(self.array(key)):
            yield Obj(item, self._at(where, i), keys)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(shorten(value, 40))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
