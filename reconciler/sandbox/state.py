"""The simulated data of both systems, behind one lock, with helpers tests use to mutate it.

Records are replaced, never mutated in place: a fixture can seed many sandboxes, and a
response being serialised on one thread never sees half of a write from another.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable

from reconciler.sandbox.lookup import Table
from reconciler.sandbox.records import Assignment, Fixture, Record, usage_counts


def now_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _by_id(rows: Iterable[Record]) -> Table:
    return Table((r["id"], r) for r in sorted(rows, key=lambda r: r["id"]))


class World:
    """ConnectWise companies/agreements/catalog/additions and ZeroTek customers/assignments."""

    api_member = "ZeroTekIntegration"  # `_info.updatedBy` of writes made through the API

    def __init__(self, fixture: Fixture) -> None:
        self.lock = threading.RLock()
        # Tables that count their changes: list queries are answered through indexes (lookup.py)
        self.companies: Table = _by_id(fixture.companies)
        self.agreements: Table = _by_id(fixture.agreements)
        self.catalog: Table = _by_id(fixture.catalog)
        self._additions: dict[int, Record] = dict(_by_id(fixture.additions))
        self._by_agreement: dict[int, list[int]] = {}
        for add in self._additions.values():
            self._by_agreement.setdefault(add["agreementId"], []).append(add["id"])
        self.zt_customers: dict[str, Record] = {
            c["id"]: c for c in sorted(fixture.zerotek_customers, key=lambda c: c["id"])
        }
        self._assignments: list[Assignment] = list(fixture.assignments)
        self._usage_cache: dict[tuple[dt.date, dt.date], dict[str, dict[str, int]]] = {}
        self._next_addition_id = max(self._additions, default=10_000) + 1

    # --- ConnectWise additions ---------------------------------------------------------

    def additions(self, agreement_id: int) -> list[Record]:
        """The stored additions of one agreement (nulls kept), ordered by id."""
        with self.lock:
            return [dict(self._additions[i]) for i in self._by_agreement.get(agreement_id, [])]

    def addition(self, addition_id: int) -> Record | None:
        with self.lock:
            found = self._additions.get(addition_id)
            return None if found is None else dict(found)

    def all_additions(self) -> list[Record]:
        with self.lock:
            return [dict(a) for a in self._additions.values()]

    def insert_addition(self, record: Record) -> Record:
        """Store a new addition under a fresh id (the id in `record` is ignored)."""
        with self.lock:
            stored = {**record, "id": self._next_addition_id}
            self._next_addition_id += 1
            self._additions[stored["id"]] = stored
            self._by_agreement.setdefault(stored["agreementId"], []).append(stored["id"])
            return dict(stored)

    def replace_addition(self, record: Record) -> None:
        with self.lock:
            if record["id"] not in self._additions:
                raise KeyError(record["id"])
            self._additions[record["id"]] = dict(record)

    def delete_addition(self, addition_id: int) -> None:
        with self.lock:
            gone = self._additions.pop(addition_id)
            self._by_agreement[gone["agreementId"]].remove(addition_id)

    # --- ZeroTek ---------------------------------------------------------------------------

    def assignments(self) -> list[Assignment]:
        with self.lock:
            return list(self._assignments)

    def usage(self, start: dt.date, end: dt.date) -> dict[str, dict[str, int]]:
        """customer -> sku -> distinct users over [start, end]; cached until history changes."""
        with self.lock:
            key = (start, end)
            if key not in self._usage_cache:
                if len(self._usage_cache) > 64:
                    self._usage_cache.clear()
                self._usage_cache[key] = usage_counts(self._assignments, start, end)
            return self._usage_cache[key]
