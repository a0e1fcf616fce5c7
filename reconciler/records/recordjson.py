"""A run record's parts as JSON (schemas/run.schema.json): a customer with its agreement
and changes, written (`customer_json`, also streamed one by one by `stream`) and read back
(`customer_from_json`), and any record part one level deep (`flat`). Built directly, not
with `asdict`, which deep-copies every value (seconds per write at 10,000 customers).
"""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import Any

from reconciler.records.customers import AgreementRef, ChangeRecord, CustomerRecord


@functools.cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def flat(obj: Any) -> dict[str, Any]:
    """A dataclass's fields, one level deep (the caller converts nested values)."""
    kind: type = type(obj)
    return {name: getattr(obj, name) for name in _names(kind)}


def customer_json(c: CustomerRecord) -> dict[str, Any]:
    """One customer of a record as its JSON object."""
    return {
        **flat(c),
        "agreement": flat(c.agreement),
        "changes": [
            {**flat(ch), "agreement": flat(ch.agreement) if ch.agreement else None}
            for ch in c.changes
        ],
        "errors": list(c.errors),
        "warnings": list(c.warnings),
    }


def customer_from_json(c: dict[str, Any]) -> CustomerRecord:
    """Raises KeyError/TypeError/ValueError on an object that is not one."""
    return CustomerRecord(
        id=c["id"],
        name=c["name"],
        company=c["company"],
        agreement=AgreementRef(**c["agreement"]),
        changes=[_change_from_json(ch) for ch in c["changes"]],
        errors=list(c["errors"]),
        warnings=list(c["warnings"]),
        verified=bool(c["verified"]),
    )


def _change_from_json(data: dict[str, Any]) -> ChangeRecord:
    where = data.get("agreement")
    return ChangeRecord(**{**data, "agreement": AgreementRef(**where) if where else None})
