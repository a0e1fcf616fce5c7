"""A customer's `prices: {SKU: price}` in customers.yaml (DESIGN 13.4): read and checked.

The schema bounds each price (a number, 0..1,000,000); this module checks what a schema
cannot: at most 4 decimal places (exactly, not by float division), a SKU that skus.yaml
lists, not one the customer excludes (a price for a SKU it is never billed would silently
do nothing), one spelling per SKU, and one price per product (an addition is one line).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reconciler.config.yamlsource import Document
from reconciler.core.errors import Problem
from reconciler.core.money import PRICE_PLACES, display, places


def _price(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # wrong types are schema errors
    amount = Decimal(str(value))  # str() first: never the float's binary error
    return amount if amount.is_finite() else None


def prices_of(item: Mapping[str, Any]) -> tuple[tuple[str, Decimal], ...]:
    """The validated `prices:` of one customer entry, as sorted (SKU, price) pairs."""
    raw = item.get("prices")
    if not isinstance(raw, dict):
        return ()
    found = ((sku, _price(value)) for sku, value in raw.items())
    return tuple(sorted((sku, p) for sku, p in found if p is not None))


def check_prices(
    doc: Document, index: int, item: Mapping[str, Any], products: Mapping[str, str] | None
) -> list[Problem]:
    """Problems of one customer's `prices:`. `products`: casefolded SKU -> product from
    skus.yaml (None when skus.yaml could not be read: only the decimals are checked)."""
    raw = item.get("prices")
    if not isinstance(raw, dict):
        return []
    excluded = item.get("exclude_skus")
    excluded_keys = (
        {s.casefold() for s in excluded if isinstance(s, str)}
        if isinstance(excluded, list)
        else set()
    )
    problems: list[Problem] = []
    spelled: dict[str, str] = {}
    per_product: dict[str, tuple[str, Decimal]] = {}
    for sku, value in raw.items():
        at = (index, "prices", sku)
        price = _price(value)
        if price is not None and places(price) > PRICE_PLACES:
            problems.append(
                Problem(
                    doc.location(at),
                    f"prices.{sku}: expected at most {PRICE_PLACES} decimal places, got {value}",
                )
            )
        if isinstance(sku, str) and products is not None:
            why = _sku_problem(sku, price, products, excluded_keys, spelled, per_product)
            if why is not None:
                problems.append(Problem(doc.key_location(at), f"prices: {why}"))
    return problems


def _sku_problem(
    sku: str,
    price: Decimal | None,
    products: Mapping[str, str],
    excluded: set[str],
    spelled: dict[str, str],
    per_product: dict[str, tuple[str, Decimal]],
) -> str | None:
    """What is wrong with one SKU of a customer's `prices:` (the SKUs seen so far in
    `spelled` and their prices per product in `per_product`), else None."""
    key = sku.casefold()
    first = spelled.setdefault(key, sku)
    if first != sku:
        return f"SKU '{sku}' is also listed as '{first}'; list it once"
    if key not in products:
        return f"unknown SKU '{sku}', expected a SKU listed in mappings/skus.yaml"
    if key in excluded:
        return (
            f"SKU '{sku}' is in this customer's exclude_skus, so it is never billed to it; "
            "remove the price or the exclusion"
        )
    if price is None:
        return None  # the schema reports it
    product = products[key]
    seen = per_product.setdefault(product.casefold(), (sku, price))
    if seen[1] == price:
        return None
    return (
        f"{sku} is {display(price)} but {seen[0]} is {display(seen[1])}; both bill product "
        f"'{product}' as one addition, which has one price"
    )
