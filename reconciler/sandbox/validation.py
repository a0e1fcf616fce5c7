"""What ConnectWise checks when an agreement addition is created (POST) or patched (PATCH).

POST requires `product` ({"id": N}, an active catalog item) and `billCustomer`
(Billable | DoNotBill | NoCharge); `quantity` must be a whole number >= 0 (default 1);
`effectiveDate` may not be before the agreement's billStartDate (default: that date);
`cancelledDate` may not be before `effectiveDate`; a cancelled agreement takes no new
additions. Unknown and read-only properties in a POST body are ignored, as ConnectWise does.
PATCH takes a JSON-patch array of {op: replace|add|remove, path, value}; `path` is a field
name with or without a leading "/". Read-only or unknown paths are a 400.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.sandbox.conditions import record_date
from reconciler.sandbox.state import now_stamp

Record = dict[str, Any]
BILL_CUSTOMER = ("Billable", "DoNotBill", "NoCharge")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?$")
_PATCHABLE = {
    "quantity",
    "lessIncluded",
    "unitPrice",
    "unitCost",
    "billCustomer",
    "effectiveDate",
    "cancelledDate",
    "taxableFlag",
    "serialNumber",
    "invoiceDescription",
    "description",
    "product",
}
_REQUIRED = {"quantity", "billCustomer", "product", "effectiveDate"}


class AdditionError(Exception):
    def __init__(self, *errors: dict[str, str]) -> None:
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


def _err(field: str, message: str, code: str = "InvalidObject") -> AdditionError:
    return AdditionError({"code": code, "message": message, "resource": "addition", "field": field})


def _quantity(value: Any, field: str = "quantity") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(field, f"{field} must be a number", "InvalidValue")
    if value < 0 or float(value) != int(value):
        raise _err(field, f"{field} must be a whole number of at least 0", "OutOfRange")
    return float(value)


def _money(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(field, f"{field} must be a number", "InvalidValue")
    return float(value)


def _date(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.match(value):
        raise _err(field, f"{field} must be a date like 2026-11-24T00:00:00Z", "InvalidValue")
    parsed = record_date(value)
    if parsed is None:
        raise _err(field, f"{field} is not a valid date", "InvalidValue")
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any, field: str, limit: int) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _err(field, f"{field} must be a string", "InvalidValue")
    if value is not None and len(value) > limit:
        raise _err(field, f"{field} may be at most {limit} characters", "OutOfRange")
    return value


def _product(value: Any, catalog: dict[int, Record]) -> Record:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("id"), int)
        or isinstance(value.get("id"), bool)
    ):
        raise _err("product", 'product is required as {"id": N}', "NullValue")
    item = catalog.get(value["id"])
    if item is None:
        raise _err("product", f"product {value['id']} was not found")
    if item.get("inactiveFlag"):
        raise _err("product", f"product {item['identifier']} is inactive")
    return item


def _convert(field: str, value: Any, catalog: dict[int, Record]) -> Any:
    if field == "quantity":
        return _quantity(value)
    if field == "lessIncluded":
        return _quantity(value, field)
    if field in ("unitPrice", "unitCost"):
        return _money(value, field)
    if field == "billCustomer":
        if value not in BILL_CUSTOMER:
            raise _err(
                field, f"billCustomer must be one of {', '.join(BILL_CUSTOMER)}", "InvalidValue"
            )
        return value
    if field in ("effectiveDate", "cancelledDate"):
        return _date(value, field)
    if field == "taxableFlag":
        if not isinstance(value, bool):
            raise _err(field, "taxableFlag must be true or false", "InvalidValue")
        return value
    if field == "product":
        item = _product(value, catalog)
        return {"id": item["id"], "identifier": item["identifier"]}
    limit = {"serialNumber": 50, "invoiceDescription": 6000}.get(field, 6000)
    return _text(value, field, limit)


def _check_dates(record: Record, agreement: Record, effective_changed: bool) -> None:
    effective = record_date(record.get("effectiveDate"))
    cancelled = record_date(record.get("cancelledDate"))
    bill_start = record_date(agreement.get("billStartDate") or agreement.get("startDate"))
    if effective_changed and effective and bill_start and effective < bill_start:
        raise _err(
            "effectiveDate", "effectiveDate cannot be less than the agreement billing start date"
        )
    if effective and cancelled and cancelled < effective:
        raise _err("cancelledDate", "cancelledDate cannot be before the effectiveDate")


def new_addition(body: Any, agreement: Record, catalog: dict[int, Record], member: str) -> Record:
    """The record a valid POST body creates (id 0: the store assigns it)."""
    if not isinstance(body, dict):
        raise _err("addition", "the request body must be an addition object")
    if agreement.get("cancelledFlag") or agreement.get("agreementStatus") == "Cancelled":
        raise _err("agreementId", "additions cannot be added to a cancelled agreement")
    item = _product(body.get("product"), catalog)
    if body.get("billCustomer") is None:
        raise _err("billCustomer", "billCustomer is required", "NullValue")
    stamp = now_stamp()
    record: Record = {
        "id": 0,
        "agreementId": agreement["id"],
        "product": {"id": item["id"], "identifier": item["identifier"]},
        "quantity": 1.0,
        "lessIncluded": 0.0,
        "unitPrice": float(item.get("price") or 0),
        "unitCost": float(item.get("cost") or 0),
        "billCustomer": None,
        "effectiveDate": agreement.get("billStartDate") or agreement.get("startDate"),
        "cancelledDate": None,
        "taxableFlag": bool(item.get("taxableFlag")),
        "serialNumber": None,
        "invoiceDescription": None,
        "description": item.get("description"),
        "agreementStatus": agreement.get("agreementStatus"),
        "_info": {
            "lastUpdated": stamp,
            "updatedBy": member,
            "dateEntered": stamp,
            "enteredBy": member,
        },
    }
    for field in sorted(_PATCHABLE - {"product"}):
        if field in body and body[field] is not None:
            record[field] = _convert(field, body[field], catalog)
    _check_dates(record, agreement, effective_changed=True)
    return record


def apply_patch(current: Record, ops: Any, agreement: Record, member: str) -> Record:
    """`current` with a JSON-patch array applied and re-validated; AdditionError if not."""
    if not isinstance(ops, list) or not ops:
        raise _err("patch", "the request body must be a non-empty array of patch operations")
    record = dict(current)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise _err("patch", 'each operation needs "op" and "path"')
        kind = str(op.get("op", "")).lower()
        field = op["path"].lstrip("/")
        if kind not in ("replace", "add", "remove"):
            raise _err(field or "op", f"unsupported patch op {op.get('op')!r}")
        if field not in _PATCHABLE:
            raise _err(field or "path", f"{op['path']!r} is not a patchable field of an addition")
        if kind == "remove":
            if field in _REQUIRED:
                raise _err(field, f"{field} is required and cannot be removed", "NullValue")
            record[field] = None
        elif "value" not in op:
            raise _err(field, f"{kind} of {field} needs a value")
        elif op["value"] is None and field in _REQUIRED:
            raise _err(field, f"{field} is required", "NullValue")
        elif field == "product":
            raise _err("product", "the product of an addition cannot be changed")
        else:
            record[field] = _convert(field, op["value"], {})
    effective_changed = record.get("effectiveDate") != current.get("effectiveDate")
    _check_dates(record, agreement, effective_changed)
    record["_info"] = {**current.get("_info", {}), "lastUpdated": now_stamp(), "updatedBy": member}
    return record
