"""Assignment-history CSV usage source (`usage.source: csv`).

Columns `customer_id,sku,user,assigned_on,unassigned_on` (any order, header required).
A user counts for a window when their assignment overlaps it at all (inclusive dates).
Every malformed row is reported, each as `file:line:col: problem`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from reconciler.core.errors import ConfigError, Problem
from reconciler.core.model import Location
from reconciler.usage.identity import sku_key

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

COLUMNS = ("customer_id", "sku", "user", "assigned_on", "unassigned_on")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Assignment:
    customer_id: str
    sku: str
    user: str
    assigned_on: dt.date
    unassigned_on: dt.date | None
    location: Location

    def overlaps(self, start: dt.date, end: dt.date) -> bool:
        return self.assigned_on <= end and (
            self.unassigned_on is None or self.unassigned_on >= start
        )


def read_assignments(path: Path | str) -> list[Assignment]:
    """Every assignment in the file; every malformed row is reported, all in one error."""
    path = Path(path)
    name = str(path)
    text = _read_text(path)
    lines = _LINE_END.split(text)  # physical lines, numbered as csv's line_num counts them
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _header(reader, name)
    index = {col: header.index(col) for col in COLUMNS}
    problems: list[Problem] = []
    rows: list[Assignment] = []
    for line, fields in _records(reader, name, problems):
        if len(fields) != len(COLUMNS):
            problems.append(
                Problem(
                    Location(name, line, 1),
                    f"{len(fields)} fields, expected {len(COLUMNS)} ({','.join(header)})",
                )
            )
            continue
        cells = _cells(fields, index, Location(name, line), lines)
        row = _row(cells.values, cells.where, problems)
        if row is not None:
            rows.append(row)
    if problems:
        raise ConfigError(problems)
    return rows


def _read_text(path: Path) -> str:
    name = str(path)
    try:
        # newline="": the csv module handles line ends itself, so a quoted "a\nb" keeps its
        # line break (split into lines first, it became "ab").
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ConfigError([Problem(Location(name), "usage CSV file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([Problem(Location(name), f"cannot read usage CSV: {reason}")]) from None


def _header(reader: CsvReader, name: str) -> list[str]:
    """The header's column names, refused unless they are exactly COLUMNS (in any order)."""
    try:
        header = next(reader)
    except StopIteration:
        header = []
    except csv.Error as exc:
        raise ConfigError([Problem(Location(name, 1, 1), f"invalid CSV: {exc}")]) from None
    header = [h.strip() for h in header]
    if sorted(header) != sorted(COLUMNS):
        raise ConfigError(
            [
                Problem(
                    Location(name, 1, 1),
                    f"header is {','.join(header) or 'missing'!s}; expected the columns "
                    f"{','.join(COLUMNS)}",
                )
            ]
        )
    return header


class _Record(NamedTuple):
    line: int  # where the record starts (a quoted field may carry it over lines)
    fields: list[str]


def _records(reader: CsvReader, name: str, problems: list[Problem]) -> Iterator[_Record]:
    """The records after the header, blank ones left out; a record the csv module cannot
    parse becomes a problem and reading goes on."""
    while True:
        first_line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(Problem(Location(name, reader.line_num, 1), f"invalid CSV: {exc}"))
            continue
        if any(f.strip() for f in fields):  # blank lines are harmless
            yield _Record(first_line, fields)


class _Cells(NamedTuple):
    values: dict[str, str]  # column -> stripped value
    where: dict[str, Location]  # column -> its file:line:col


def _cells(fields: list[str], index: dict[str, int], at: Location, lines: list[str]) -> _Cells:
    """A record's values by column, each located at the column it starts at on the record's
    first physical line (`at`)."""
    starts = _field_columns(lines[at.line - 1]) if at.line <= len(lines) else []
    where = {
        col: Location(at.file, at.line, starts[i] if i < len(starts) else 1)
        for col, i in index.items()
    }
    return _Cells({col: fields[i].strip() for col, i in index.items()}, where)


def _row(
    values: dict[str, str], where: dict[str, Location], problems: list[Problem]
) -> Assignment | None:
    found: list[Problem] = []
    for col in ("customer_id", "sku", "user", "assigned_on"):
        if not values[col]:
            found.append(Problem(where[col], f"{col} is empty"))
    assigned = _date(values["assigned_on"], where["assigned_on"], found)
    unassigned = _date(values["unassigned_on"], where["unassigned_on"], found)
    if assigned and unassigned and unassigned < assigned:
        found.append(
            Problem(
                where["unassigned_on"],
                f"unassigned_on {unassigned} is before assigned_on {assigned}",
            )
        )
    problems.extend(found)
    if found or assigned is None:
        return None
    return Assignment(
        values["customer_id"],
        values["sku"],
        values["user"],
        assigned,
        unassigned,
        Location(where["customer_id"].file, where["customer_id"].line, 1),
    )


def count_users(
    assignments: list[Assignment], start: dt.date, end: dt.date
) -> dict[str, dict[str, int]]:
    """Distinct users per customer and SKU whose assignment overlaps [start, end]. One SKU
    in two spellings (usage.identity) is one SKU: a user assigned under both counts once,
    under the first spelling read."""
    users: dict[str, dict[str, set[str]]] = {}
    spelling: dict[tuple[str, str], str] = {}
    for a in assignments:
        if a.overlaps(start, end):
            sku = spelling.setdefault((a.customer_id, sku_key(a.sku)), a.sku.strip())
            users.setdefault(a.customer_id, {}).setdefault(sku, set()).add(a.user)
    return {c: {s: len(u) for s, u in skus.items()} for c, skus in users.items()}


def _date(value: str, where: Location, problems: list[Problem]) -> dt.date | None:
    if not value:
        return None
    if _ISO_DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(Problem(where, f"{value!r} is not a date; expected YYYY-MM-DD"))
    return None


def _field_columns(line: str) -> list[int]:
    """1-based start column of each CSV field on a physical line (quote-aware)."""
    starts = [1]
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted  # a doubled "" toggles twice: net no change
        elif ch == "," and not quoted:
            starts.append(i + 2)
    return starts
