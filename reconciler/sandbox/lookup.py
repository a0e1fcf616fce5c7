"""Lookup indexes over the ConnectWise tables, as the real service's database keeps them.

A chunked `identifier in ("C00001", ...)` or `company/id in (1, 2, ...)` query would
otherwise test every record of its table (10,000 companies, 11,000 agreements at the
benchmarks' scale) on every request: CPU the real ConnectWise does not spend, and which,
on the sandbox's handler threads sharing one GIL, would inflate the latency of every
concurrent request that the benchmarks measure.

An index maps a field's comparable value, made by the very `_comparer` the predicate
uses (so string case-folding is identical), to the positions of the records holding it.
It only narrows: the full predicate still decides each candidate, and candidates keep
table order, so an answer is exactly the one a scan gives.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler.sandbox.conditions import KeyLookup, Record, _comparer


class Table(dict[int, Record]):
    """A table by id that counts its changes, so an index built over it knows it is stale.

    Every way of changing a dict is overridden (dict's own C methods would bypass
    __setitem__): a test replacing `world.agreements[1003]` must not be answered from an
    index of the old record."""

    version = 0  # also for copies made without __init__ (pickle sets items before state)

    def __init__(self, rows: Iterable[tuple[int, Record]] = ()) -> None:
        super().__init__(rows)
        self.version = 0
        self.indexes: dict[tuple[str, str], _Index] = {}

    def __setitem__(self, key: int, value: Record) -> None:
        self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: int) -> None:
        self.version += 1
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self.version += 1
        return super().pop(*args)

    def popitem(self) -> tuple[int, Record]:
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        self.version += 1
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.version += 1
        super().update(*args, **kwargs)

    def setdefault(self, key: int, default: Any = None) -> Any:
        self.version += 1
        return super().setdefault(key, default)

    def __ior__(self, other: Any) -> Table:  # type: ignore[override,misc]
        self.version += 1
        super().update(other)
        return self


class _Index:
    """value -> positions in `records` (a snapshot of the table at `version`): the first
    position of each value in `first`, any further ones in `more`. Plain ints rather than
    a list per value: 10,000 small lists would also wake the cycle collector over the
    whole (large) heap."""

    def __init__(self, table: Table, ftype: str, path: str) -> None:
        self.version = table.version
        self.records = list(table.values())
        self.first: dict[Any, int] = {}
        self.more: dict[Any, list[int]] = {}
        value_of = _comparer(ftype, path)
        for pos, record in enumerate(self.records):
            value = value_of(record)
            if value is None:  # null never satisfies `in` or `=`
                continue
            try:
                if value in self.first:
                    self.more.setdefault(value, []).append(pos)
                else:
                    self.first[value] = pos
            except TypeError:  # unhashable garbage (a list in an id field) equals no literal
                continue

    def positions(self, values: frozenset[Any]) -> list[int]:
        """Ascending; each record sits under one value, so no position comes twice."""
        found = [pos for value in values if (pos := self.first.get(value)) is not None]
        if self.more:
            found += [pos for value in values for pos in self.more.get(value, ())]
        found.sort()
        return found


def candidates(table: dict[int, Record], lookup: KeyLookup | None) -> list[Record]:
    """The records of `table`, in table order, that a query with `lookup` can match: all
    of them without a lookup, else only those whose field holds one of its values.

    Call with the world's lock held: the index is built and read under it."""
    if lookup is None or not isinstance(table, Table):
        return list(table.values())
    key = (lookup.ftype, lookup.path)
    index = table.indexes.get(key)
    if index is None or index.version != table.version:
        index = table.indexes[key] = _Index(table, lookup.ftype, lookup.path)
    records = index.records
    return [records[pos] for pos in index.positions(lookup.values)]
