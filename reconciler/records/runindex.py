"""runs/index/: one small summary per run (`RunSummary`, a line of the Activity page),
written with its record, so the Activity page
(INDEX.md) and `reconcile activity` never parse the full records. A record holds every
planned customer (megabytes at 10,000 customers); reading them all on each apply made the
run log cost O(history x customers). With the summaries a listing costs one small read per
run listed, and `activity RUN_ID` reads one record.

A summary names the content digest (SHA-256) of the record it was made from; one that does
not match its record (a hand edit, even one that keeps the size; a crash between the two
writes; a record written by an older version) is ignored and the record itself is read
instead, so the index can never disagree with the run files (DESIGN 13.5). Hashing a
record costs a fraction of parsing it, but it still grows with the history (36 records of
10,000 customers: half a second on each listing, twice per apply). So a summary also keeps
the record's file signature when it was written (size, modification and change times in
nanoseconds, inode; the change time, as in git's index, is what `touch -r` or `cp -p` cannot
set back), and a record whose signature is unchanged is not hashed again, git's "racy clean"
rule included: a record modified in the same clock tick as its summary (a coarse-grained
file system) is always hashed. A fresh checkout changes every signature, so there every
record is hashed, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconciler.core.files import atomic_write, content_digest, read_json
from reconciler.records.record import RunRecord


@dataclass(frozen=True)
class RunSummary:
    """One line of the Activity page (INDEX.md, `reconcile activity`)."""

    run_id: str
    trigger: str
    started: str
    finished: str | None
    outcome: str  # one of record.OUTCOMES, or unreadable
    period: str
    customers: int
    customers_changed: int
    quantities_updated: int
    revenue_delta: str
    errors: int
    path: Path  # the run's JSON file
    billed: tuple[int, Decimal, str] | None = None  # seats, revenue/month, currency after
    period_end: str | None = None

    @property
    def md_link(self) -> str:
        """The Markdown twin, relative to runs/ (for INDEX.md)."""
        return "/".join((*self.path.parent.parts[-2:], f"{self.run_id}.md"))

    def as_json(self) -> dict[str, Any]:
        skip = ("path", "billed", "period_end")
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in skip}
        data["path"] = self.path.as_posix()
        return data


INDEX_DIR = "index"
_MAX_SUMMARY_BYTES = 1 << 20  # a summary is a few hundred bytes
_FIELDS = tuple(f for f in RunSummary.__dataclass_fields__ if f != "path")


def summary_path(runs: Path, run_id: str) -> Path:
    # Not .json: tools (and tests) that collect runs/**/*.json expect run records only.
    return runs / INDEX_DIR / f"{run_id}.summary"


def summary_of(record: RunRecord, path: Path) -> RunSummary:
    totals = record.totals
    return RunSummary(
        run_id=record.run_id,
        trigger=record.trigger,
        started=record.started,
        finished=record.finished,
        outcome=record.outcome,
        period=str(record.period),
        customers=totals.customers,
        customers_changed=totals.customers_changed,
        quantities_updated=totals.writes,
        revenue_delta=totals.revenue_delta,
        errors=totals.errors,
        path=path,
        billed=record.billed_after(),
        period_end=record.period.end,
    )


def signature(stat: os.stat_result) -> list[int]:
    """What changes when a file is written: any edit, or a checkout, gives another."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def write(runs: Path, summary: RunSummary, record_digest: str) -> None:
    """Store `summary` for the record (of content digest `record_digest`) at summary.path,
    with the record's signature as it is now (the caller has just written or hashed it)."""
    data: dict[str, Any] = {name: getattr(summary, name) for name in _FIELDS}
    if summary.billed is not None:  # INDEX.md's charts: the exact revenue as a string
        seats, revenue, currency = summary.billed
        data["billed"] = [seats, str(revenue), currency]
    data["record_sha256"] = record_digest
    # Unreadable: then only the digest vouches for the record, hashed on each read.
    with contextlib.suppress(OSError):
        data["record_signature"] = signature(summary.path.stat())
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    atomic_write(summary_path(runs, summary.run_id), text + "\n")


def read(runs: Path, record: Path) -> RunSummary | None:
    """The stored summary of the run whose record is `record`, or None when there is none
    or it does not describe the record as it is now."""
    try:
        stored = summary_path(runs, record.stem)
        data = read_json(stored, _MAX_SUMMARY_BYTES)
        if data["run_id"] != record.stem or not _describes(data, record, stored):
            return None
        fields = {name: data[name] for name in _FIELDS}
        if fields["billed"] is not None:
            seats, revenue, currency = fields["billed"]
            fields["billed"] = (seats, Decimal(revenue), currency)
        summary = RunSummary(**fields, path=record)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError):
        return None
    return summary if _well_typed(summary) else None


def _describes(data: dict[str, Any], record: Path, stored: Path) -> bool:
    """Whether the summary `data` (read from `stored`) was made from `record` as it is."""
    now = record.stat()
    # Racy: a record modified in the clock tick its summary was written in could have been
    # edited right after, keeping size and time alike; only such a one is hashed.
    if data.get("record_signature") == signature(now) and (
        now.st_mtime_ns < stored.stat().st_mtime_ns
    ):
        return True
    return bool(data["record_sha256"] == content_digest(record))


def _well_typed(s: RunSummary) -> bool:
    texts = (s.run_id, s.trigger, s.started, s.outcome, s.period, s.revenue_delta)
    numbers = (s.customers, s.customers_changed, s.quantities_updated, s.errors)
    return (
        all(isinstance(t, str) for t in texts)
        and all(x is None or isinstance(x, str) for x in (s.finished, s.period_end))
        and all(isinstance(n, int) and not isinstance(n, bool) for n in numbers)
        and (s.billed is None or _well_typed_billed(s.billed))
    )


def _well_typed_billed(billed: tuple[int, Decimal, str]) -> bool:
    seats, revenue, currency = billed
    return (
        isinstance(seats, int)
        and not isinstance(seats, bool)
        and revenue.is_finite()
        and isinstance(currency, str)
    )
