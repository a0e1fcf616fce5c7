"""Changes made to the sandbox's world behind the reconciler's back, as a billing clerk,
another integration or a ZeroTek admin would: test set-up only, so kept out of the package
(the sandbox itself changes its world only through the API it serves).

    from world_edits import set_users
    set_users(sb.world, "zt-0002", "OKTA-SSO", 50)      # or pass the Sandbox itself
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from reconciler.sandbox.records import Assignment, Record, cw_date
from reconciler.sandbox.state import World, now_stamp

CLERK = "jsmith"  # `_info.updatedBy` of an edit made in the ConnectWise UI


def update_addition(world: World, addition_id: int, **fields: Any) -> None:
    with world.lock:
        current = world._additions[addition_id]
        info = {**current.get("_info", {}), "lastUpdated": now_stamp(), "updatedBy": CLERK}
        world._additions[addition_id] = {**current, **fields, "_info": info}


def set_addition_quantity(world: World, addition_id: int, quantity: int) -> None:
    """Change a quantity behind the reconciler's back (as a billing clerk would)."""
    update_addition(world, addition_id, quantity=float(quantity))


def add_addition(
    world: World,
    agreement_id: int,
    product_identifier: str,
    quantity: int,
    *,
    effective_date: dt.date | None = None,
    cancelled_date: dt.date | None = None,
    **fields: Any,
) -> Record:
    """Create an addition directly (no API validation): duplicates, prorate lines..."""
    with world.lock:
        agreement = world.agreements[agreement_id]
        item = next(i for i in world.catalog.values() if i["identifier"] == product_identifier)
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
            "_info": {"lastUpdated": now_stamp(), "updatedBy": CLERK},
            **fields,
        }
        return world.insert_addition(record)


def update_agreement(world: World, agreement_id: int, **fields: Any) -> None:
    """E.g. update_agreement(sb, 1003, agreementStatus="Cancelled", cancelledFlag=True)."""
    with world.lock:
        world.agreements[agreement_id] = {**world.agreements[agreement_id], **fields}


def update_catalog_item(world: World, identifier: str, **fields: Any) -> None:
    """E.g. update_catalog_item(sb, "ZT-OKTA-SSO", inactiveFlag=True)."""
    with world.lock:
        item = next(i for i in world.catalog.values() if i["identifier"] == identifier)
        world.catalog[item["id"]] = {**item, **fields}


def add_company(world: World, record: Record) -> None:
    """A company created in ConnectWise (e.g. a second one whose identifier differs only
    in case from an existing one's)."""
    with world.lock:
        world.companies[record["id"]] = record


def update_company(world: World, company_id: int, **fields: Any) -> None:
    with world.lock:
        world.companies[company_id] = {**world.companies[company_id], **fields}


def add_assignment(
    world: World,
    customer_id: str,
    sku: str,
    user: str,
    assigned_on: dt.date,
    unassigned_on: dt.date | None = None,
) -> None:
    with world.lock:
        world._assignments.append(Assignment(customer_id, sku, user, assigned_on, unassigned_on))
        world._usage_cache.clear()


def set_users(
    world: World, customer_id: str, sku: str, users: int, *, since: dt.date = dt.date(2026, 5, 1)
) -> None:
    """Replace a customer's history for one SKU by `users` users assigned since `since`."""
    with world.lock:
        world._assignments = [
            a for a in world._assignments if (a.customer_id, a.sku) != (customer_id, sku)
        ]
        world._assignments.extend(
            Assignment(customer_id, sku, f"set{n:04d}@{customer_id}.example", since)
            for n in range(1, users + 1)
        )
        world._usage_cache.clear()
