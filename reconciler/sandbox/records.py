"""The record shapes both simulated systems hold, and the builders fixtures use.

ConnectWise records are plain dicts in ConnectWise's JSON shape (dates as
"YYYY-MM-DDT00:00:00Z", None where ConnectWise would leave the field out); ZeroTek's
assignment history is a list of `Assignment` tuples.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any, NamedTuple

Record = dict[str, Any]


class Assignment(NamedTuple):
    """One user holding one ZeroTek SKU from `assigned_on` to `unassigned_on` (inclusive)."""

    customer_id: str
    sku: str
    user: str
    assigned_on: dt.date
    unassigned_on: dt.date | None = None


@dataclass
class Fixture:
    """Plain ConnectWise-shaped records plus ZeroTek's directory and assignment history.

    Records are never mutated by the sandbox (it replaces them), so one fixture may seed
    several sandboxes; nested objects such as `_info` may be shared between records.
    Additions carry `agreementId` as ConnectWise's own objects do."""

    companies: list[Record] = field(default_factory=list)
    agreements: list[Record] = field(default_factory=list)
    catalog: list[Record] = field(default_factory=list)
    additions: list[Record] = field(default_factory=list)
    zerotek_customers: list[Record] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)


def usage_counts(
    assignments: list[Assignment], start: dt.date, end: dt.date
) -> dict[str, dict[str, int]]:
    """Distinct users per customer and SKU whose assignment overlaps [start, end], customers
    and SKUs in sorted order.

    A 10,000-customer history holds ~470,000 assignments and the sandbox computes this
    under its lock (all other requests wait), so the loop avoids per-assignment churn: no
    attribute lookups, no (customer, sku) key tuple, no throw-away set per setdefault."""
    users: dict[str, dict[str, set[str]]] = {}
    for customer, sku, user, assigned_on, unassigned_on in assignments:
        if assigned_on <= end and (unassigned_on is None or unassigned_on >= start):
            by_sku = users.get(customer)
            if by_sku is None:
                users[customer] = {sku: {user}}
            elif (names := by_sku.get(sku)) is None:
                by_sku[sku] = {user}
            else:
                names.add(user)
    return {
        customer: {sku: len(names) for sku, names in sorted(by_sku.items())}
        for customer, by_sku in sorted(users.items())
    }


def cw_date(day: dt.date | None) -> str | None:
    return None if day is None else f"{day.isoformat()}T00:00:00Z"


_D = dt.date
_INFO = {"lastUpdated": "2026-11-01T09:00:00Z", "updatedBy": "jsmith"}
_TYPE = {"id": 1, "name": "Managed Services"}
_ACTIVE = {"id": 1, "name": "Active"}


def company_record(cid: int, identifier: str, name: str) -> Record:
    return {
        "id": cid,
        "identifier": identifier,
        "name": name,
        "status": _ACTIVE,
        "deletedFlag": False,
        "phoneNumber": f"555-01{cid % 100:02d}",
        "website": None,
        "_info": _INFO,
    }


def agreement_record(
    aid: int,
    name: str,
    company: Record,
    status: str,
    start: dt.date,
    end: dt.date | None = None,
    bill_start: dt.date | None = None,
) -> Record:
    return {
        "id": aid,
        "name": name,
        "type": _TYPE,
        "company": {k: company[k] for k in ("id", "identifier", "name")},
        "agreementStatus": status,
        "startDate": cw_date(start),
        "endDate": cw_date(end),
        "noEndingDateFlag": end is None,
        "cancelledFlag": status == "Cancelled",
        "billStartDate": cw_date(bill_start or start),
        "prorateFlag": False,
        "_info": _INFO,
    }


def catalog_item_record(
    iid: int, identifier: str, description: str, price: float, cost: float, inactive: bool = False
) -> Record:
    return {
        "id": iid,
        "identifier": identifier,
        "description": description,
        "customerDescription": description,
        "inactiveFlag": inactive,
        "price": float(price),
        "cost": float(cost),
        "subcategory": {"id": 3, "name": "Licensing"},
        "type": {"id": 2, "name": "Service"},
        "productClass": "NonInventory",
        "taxableFlag": False,
        "_info": _INFO,
    }


def addition_record(
    add_id: int,
    agreement: Record,
    item: Record,
    quantity: int,
    *,
    unit_price: float | None = None,
    cancelled: dt.date | None = None,
) -> Record:
    return {
        "id": add_id,
        "agreementId": agreement["id"],
        "product": {"id": item["id"], "identifier": item["identifier"]},
        "quantity": float(quantity),
        "lessIncluded": 0.0,
        "unitPrice": float(item["price"] if unit_price is None else unit_price),
        "unitCost": float(item["cost"]),
        "billCustomer": "Billable",
        "effectiveDate": agreement["startDate"],
        "cancelledDate": cw_date(cancelled),
        "taxableFlag": False,
        "serialNumber": None,
        "invoiceDescription": None,
        "description": item["description"],
        "agreementStatus": agreement["agreementStatus"],
        "_info": _INFO,
    }


def rand_day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))
