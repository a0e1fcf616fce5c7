"""The simulated data of both systems, behind one lock, with helpers tests use to mutate it.

Records are replaced, never mutated in place: a fixture can seed many sandboxes, and a
response being serialised on one thread never sees half of a write from another.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from reconciler.sandbox.records import Assignment, Fixture, Record, cw_date, usage_counts


def now_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    """ConnectWise companies/agreements/catalog/additions and ZeroTek customers/assignments."""

    api_member = "ZeroTekIntegration"  # `_info.updatedBy` of writes made through the API

    def __init__(self, fixture: Fixture) -> None:
        self.lock = threading.RLock()
        by_id = lambda rows: {r["id"]: r for r in sorted(rows, key=lambda r: r["id"])}  # noqa: E731
        self.companies: dict[int, Record] = by_id(fixture.companies)
        self.agreements: dict[int, Record] = by_id(fixture.agreements)
        self.catalog: dict[int, Record] = by_id(fixture.catalog)
        self._additions: dict[int, Record] = by_id(fixture.additions)
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

    def set_addition_quantity(self, addition_id: int, quantity: int) -> None:
        """Change a quantity behind the reconciler's back (as a billing clerk would)."""
        self.update_addition(addition_id, quantity=float(quantity))

    def update_addition(self, addition_id: int, **fields: Any) -> None:
        with self.lock:
            current = self._additions[addition_id]
            info = {**current.get("_info", {}), "lastUpdated": now_stamp(), "updatedBy": "jsmith"}
            self._additions[addition_id] = {**current, **fields, "_info": info}

    def add_addition(
        self,
        agreement_id: int,
        product_identifier: str,
        quantity: int,
        *,
        effective_date: dt.date | None = None,
        cancelled_date: dt.date | None = None,
        **fields: Any,
    ) -> Record:
        """Create an addition directly (no API validation): duplicates, prorate lines..."""
        with self.lock:
            agreement = self.agreements[agreement_id]
            item = next(i for i in self.catalog.values() if i["identifier"] == product_identifier)
            record: Record = {
                "id": 0,
                "agreementId": agreement_id,
                "product": {"id": item["id"], "identifier": item["identifier"]},
                "quantity": float(quantity),
                "lessIncluded": 0.0,
                "unitPrice": float(item["price"]),
                "unitCost": float(item["cost"]),
                "billCustomer": "Billable",
                "effectiveDate": cw_date(effective_date) or agreement["startDate"],
                "cancelledDate": cw_date(cancelled_date),
                "taxableFlag": False,
                "serialNumber": None,
                "invoiceDescription": None,
                "description": item["description"],
                "agreementStatus": agreement["agreementStatus"],
                "_info": {"lastUpdated": now_stamp(), "updatedBy": "jsmith"},
                **fields,
            }
            return self.insert_addition(record)

    # --- ConnectWise agreements, catalog, companies ------------------------------------

    def update_agreement(self, agreement_id: int, **fields: Any) -> None:
        """E.g. update_agreement(1003, agreementStatus="Cancelled", cancelledFlag=True)."""
        with self.lock:
            self.agreements[agreement_id] = {**self.agreements[agreement_id], **fields}

    def update_catalog_item(self, identifier: str, **fields: Any) -> None:
        """E.g. update_catalog_item("ZT-OKTA-SSO", inactiveFlag=True)."""
        with self.lock:
            item = next(i for i in self.catalog.values() if i["identifier"] == identifier)
            self.catalog[item["id"]] = {**item, **fields}

    def update_company(self, company_id: int, **fields: Any) -> None:
        with self.lock:
            self.companies[company_id] = {**self.companies[company_id], **fields}

    # --- ZeroTek ---------------------------------------------------------------------------

    def assignments(self) -> list[Assignment]:
        with self.lock:
            return list(self._assignments)

    def add_assignment(
        self,
        customer_id: str,
        sku: str,
        user: str,
        assigned_on: dt.date,
        unassigned_on: dt.date | None = None,
    ) -> None:
        with self.lock:
            self._assignments.append(Assignment(customer_id, sku, user, assigned_on, unassigned_on))
            self._usage_cache.clear()

    def set_users(
        self, customer_id: str, sku: str, users: int, *, since: dt.date = dt.date(2026, 5, 1)
    ) -> None:
        """Replace a customer's history for one SKU by `users` users assigned since `since`."""
        with self.lock:
            self._assignments = [
                a for a in self._assignments if (a.customer_id, a.sku) != (customer_id, sku)
            ]
            self._assignments.extend(
                Assignment(customer_id, sku, f"set{n:04d}@{customer_id}.example", since)
                for n in range(1, users + 1)
            )
            self._usage_cache.clear()

    def usage(self, start: dt.date, end: dt.date) -> dict[str, dict[str, int]]:
        """customer -> sku -> distinct users over [start, end]; cached until history changes."""
        with self.lock:
            key = (start, end)
            if key not in self._usage_cache:
                if len(self._usage_cache) > 64:
                    self._usage_cache.clear()
                self._usage_cache[key] = usage_counts(self._assignments, start, end)
            return self._usage_cache[key]
