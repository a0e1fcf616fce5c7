"""ConnectWise payloads parsed defensively: a malformed item is one error naming the
endpoint and field, never a KeyError deep in the planner. Unmanaged additions (someone
else's) are read leniently: they are never written, so a gap in them never stops a plan."""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.core.errors import ReconcileError
from reconciler.core.model import ManagedProducts
from reconciler.core.state import Addition, Agreement, CatalogItem, Company
from reconciler.secure.scrub import shorten

COMPANIES = "/company/companies"
AGREEMENTS = "/finance/agreements"
CATALOG = "/procurement/catalog"
COMPANY_FIELDS = "id,identifier,name"
AGREEMENT_FIELDS = (
    "id,name,company,agreementStatus,startDate,endDate,noEndingDateFlag,cancelledFlag,billStartDate"
)
CATALOG_FIELDS = "id,identifier,description,inactiveFlag,price,cost"
ADDITION_FIELDS = (
    "id,product,quantity,unitPrice,unitCost,billCustomer,effectiveDate,cancelledDate,"
    "description,_info"
)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]*(?:Z|[+-]\d{2}:?\d{2})?)?\Z")


class _Item:
    """Typed access to one JSON object, with errors that name the endpoint and field."""

    def __init__(self, row: dict[str, Any], endpoint: str) -> None:
        self.row = row
        self.endpoint = endpoint

    def fail(self, field: str, problem: str) -> ReconcileError:
        ident = self.row.get("id")
        which = f" (id {ident})" if isinstance(ident, int) and field != "id" else ""
        return ReconcileError(
            f"ConnectWise returned a malformed item on GET {self.endpoint}{which}: "
            f"{field} {problem}"
        )

    def get(self, field: str) -> Any:
        value: Any = self.row
        for part in field.split("/"):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def integer(self, field: str) -> int:
        value = self.get(field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"is {_show(value)}, expected an integer")
        return value

    def string(self, field: str, *, required: bool = True) -> str | None:
        value = self.get(field)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise self.fail(field, f"is {_show(value)}, expected a string")
        return value

    def text(self, field: str) -> str:
        value = self.string(field)
        assert value is not None
        return value

    def flag(self, field: str) -> bool:
        value = self.get(field)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(field, f"is {_show(value)}, expected true or false")
        return value

    def date(self, field: str) -> dt.date | None:
        value = self.get(field)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _DATE.match(value):
            raise self.fail(field, f"is {_show(value)}, expected a date YYYY-MM-DDTHH:MM:SSZ")
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            raise self.fail(field, f"is {_show(value)}, not a calendar date") from None

    def decimal(self, field: str) -> Decimal | None:
        value = self.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(field, f"is {_show(value)}, expected a number")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(field, f"is {_show(value)}, expected a number") from None
        if not number.is_finite():
            raise self.fail(field, f"is {_show(value)}, expected a finite number")
        return number


def _managed_quantity(value: Any) -> tuple[int, str | None]:
    """A managed addition's quantity, or why it is not a whole number of licences >= 0
    (DESIGN 12.3: an error for that customer, not for the whole plan, and never "absent")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0, f"quantity {_show(value)}"
    if not math.isfinite(value) or value != int(value):
        return 0, f"quantity {value}"
    if value < 0:
        return int(value), f"quantity {int(value)}"
    return int(value), None


def _unmanaged(item: _Item, agreement_id: int, product: Any) -> Addition:
    """Someone else's addition: read only what can be read (DESIGN 12.3). A missing or null
    identifier, quantity or price never stops a plan; it is never written to anyway."""

    def lenient(read: Any, default: Any) -> Any:
        try:
            return read()
        except ReconcileError:
            return default

    quantity = item.get("quantity")
    number = quantity if isinstance(quantity, int | float) and not isinstance(quantity, bool) else 0
    return Addition(
        id=lenient(lambda: item.integer("id"), 0),
        agreement_id=agreement_id,
        product_id=lenient(lambda: item.integer("product/id"), 0),
        product_identifier=product if isinstance(product, str) else "",
        quantity=round(number) if math.isfinite(number) else 0,
        unit_price=lenient(lambda: item.decimal("unitPrice"), None),
        unit_cost=lenient(lambda: item.decimal("unitCost"), None),
        bill_customer=lenient(lambda: item.string("billCustomer", required=False), None),
        effective_date=lenient(lambda: item.date("effectiveDate"), None),
        cancelled_date=lenient(lambda: item.date("cancelledDate"), None),
        description=lenient(lambda: item.string("description", required=False), None),
        last_updated=lenient(lambda: item.string("_info/lastUpdated", required=False), None),
    )


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    return shorten(repr(value), 60, mark="...")


def company(row: dict[str, Any]) -> Company:
    item = _Item(row, COMPANIES)
    return Company(
        id=item.integer("id"), identifier=item.text("identifier"), name=item.text("name")
    )


def agreement(row: dict[str, Any], endpoint: str) -> Agreement:
    item = _Item(row, endpoint)
    return Agreement(
        id=item.integer("id"),
        name=item.text("name"),
        company_id=item.integer("company/id"),
        status=item.string("agreementStatus", required=False),
        start_date=item.date("startDate"),
        end_date=item.date("endDate"),
        no_ending_date=item.flag("noEndingDateFlag"),
        cancelled=item.flag("cancelledFlag"),
        bill_start_date=item.date("billStartDate"),
    )


def catalog_item(row: dict[str, Any]) -> CatalogItem:
    item = _Item(row, CATALOG)
    return CatalogItem(
        id=item.integer("id"),
        identifier=item.text("identifier"),
        description=item.string("description", required=False) or "",
        inactive=item.flag("inactiveFlag"),
        price=item.decimal("price"),
        cost=item.decimal("cost"),
    )


def addition(
    row: dict[str, Any], agreement_id: int, endpoint: str, managed: ManagedProducts
) -> Addition:
    item = _Item(row, endpoint)
    raw = item.get("product/identifier")
    product = managed.spelling(raw)  # the one test of "ours" (model.ManagedProducts)
    if product is None:
        return _unmanaged(item, agreement_id, raw)
    quantity, problem = _managed_quantity(item.get("quantity"))
    return Addition(
        id=item.integer("id"),
        agreement_id=agreement_id,
        product_id=item.integer("product/id"),
        product_identifier=product,
        quantity=quantity,
        problem=problem,
        unit_price=item.decimal("unitPrice"),
        unit_cost=item.decimal("unitCost"),
        bill_customer=item.string("billCustomer", required=False),
        effective_date=item.date("effectiveDate"),
        cancelled_date=item.date("cancelledDate"),
        description=item.string("description", required=False),
        last_updated=item.string("_info/lastUpdated", required=False),
    )
