"""Checks across entries and files that JSON Schema cannot state: each SKU and customer id
listed once, one spelling per SKU, product and company (ConnectWise ignores case), one
price, cost and description per product, at most 4 decimal places in money, an agreement
under one company and billed by one customer (unless shared), excluded SKUs that exist.

Every check reads entries with schema errors too (guarded), so one run reports every
problem; locations are worked out only for what is reported (100,000 customers, ~0
problems).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from reconciler.config.customer_prices import check_prices
from reconciler.config.entries import as_decimal, entries
from reconciler.config.schema_messages import suggest
from reconciler.config.yamlsource import Document
from reconciler.core.errors import Problem
from reconciler.core.model import Location
from reconciler.core.money import PRICE_PLACES, places
from reconciler.secure.scrub import shorten

__all__ = ["check_customers", "check_skus"]

_TERMS = ("unit_price", "unit_cost", "description")


def _check_money(doc: Document, index: int, item: dict[str, Any]) -> list[Problem]:
    """At most 4 decimal places: the schema bounds the range, JSON Schema's multipleOf
    cannot test decimals exactly (it divides floats)."""
    problems = []
    for key in ("unit_price", "unit_cost"):
        value = item.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            amount = as_decimal(value)
            if amount is not None and amount.is_finite() and places(amount) > PRICE_PLACES:
                problems.append(
                    Problem(
                        doc.location((index, key)),
                        f"{key}: expected at most {PRICE_PLACES} decimal places, got {value}",
                    )
                )
    return problems


def _short(text: str) -> str:
    return shorten(text, 40, mark="...")


def _check_terms(doc: Document) -> list[Problem]:
    """SKUs billed as one product must agree on its price, cost and description: the
    addition is one line on the invoice, so there is one decision per product."""
    problems = []
    first: dict[tuple[str, str], tuple[Any, Location, str]] = {}
    for index, item in entries(doc):
        product = item.get("product")
        if not isinstance(product, str):
            continue
        for key in _TERMS:
            value = item.get(key)
            money_key = key != "description"
            if (
                value is None
                or isinstance(value, bool)
                or not isinstance(value, (int | float) if money_key else str)
            ):
                continue  # wrong types are schema errors
            where = doc.location((index, key))
            comparable = as_decimal(value) if money_key else value
            shown = str(value) if money_key else repr(value)
            seen = first.setdefault((product.casefold(), key), (comparable, where, shown))
            if seen[1] != where and seen[0] != comparable:
                problems.append(
                    Problem(
                        where,
                        f"{key}: {_short(shown)} here but {_short(seen[2])} at {seen[1]}; "
                        f"SKUs mapped to product '{product}' bill as one addition and must "
                        f"agree on its {key}",
                    )
                )
    return problems


def check_skus(doc: Document | None) -> list[Problem]:
    """Problems across the SKU file's entries."""
    if doc is None:
        return []
    problems = _check_terms(doc)
    skus: dict[str, tuple[str, Location]] = {}
    products: dict[str, tuple[str, Location]] = {}
    for index, item in entries(doc):
        problems += _check_money(doc, index, item)
        sku, product = item.get("sku"), item.get("product")
        if isinstance(sku, str):
            where = doc.location((index, "sku"))
            seen = skus.get(sku.casefold())
            if seen is None:
                skus[sku.casefold()] = (sku, where)
            elif seen[0] == sku:
                problems.append(Problem(where, f"duplicate SKU '{sku}' (first at {seen[1]})"))
            else:
                problems.append(
                    Problem(
                        where,
                        f"SKU '{sku}' differs only in case from '{seen[0]}' at {seen[1]}; "
                        "SKUs compare case-insensitively: list each SKU once",
                    )
                )
        if isinstance(product, str) and isinstance(sku, str):
            # Several SKUs may bill one product (their users are summed), but spelled two
            # ways it would be two products here and one in ConnectWise (which ignores case).
            where = doc.location((index, "product"))
            first = products.setdefault(product.casefold(), (product, where))
            if first[0] != product:
                problems.append(
                    Problem(
                        where,
                        f"product '{product}' is spelled '{first[0]}' at {first[1]}; "
                        "ConnectWise ignores case, so spell one product the same way everywhere",
                    )
                )
    return problems


def _check_companies(docs: list[Document]) -> list[Problem]:
    """One spelling per company identifier (ConnectWise ignores case, so `ACME` and `acme`
    are one company: spelled two ways, a shared agreement would be planned in halves), and
    an agreement id under one company only. Locations are worked out only when reported."""
    problems = []
    spellings: dict[str, tuple[str, Document, int]] = {}
    owners: dict[int, tuple[str, Document, int]] = {}
    for doc in docs:
        for index, item in entries(doc):
            company, agreement = item.get("company"), item.get("agreement")
            if not isinstance(company, str):
                continue
            seen = spellings.setdefault(company.casefold(), (company, doc, index))
            if seen[0] != company:
                problems.append(
                    Problem(
                        doc.location((index, "company")),
                        f"company '{company}' differs only in case from '{seen[0]}' at "
                        f"{seen[1].location((seen[2], 'company'))}; ConnectWise ignores case, "
                        "so spell one company the same way everywhere",
                    )
                )
            if isinstance(agreement, int) and not isinstance(agreement, bool):
                owner = owners.setdefault(agreement, (company, doc, index))
                if owner[0].casefold() != company.casefold():
                    problems.append(
                        Problem(
                            doc.location((index, "agreement")),
                            f"agreement {agreement} is mapped under company '{company}' here "
                            f"and under company '{owner[0]}' at "
                            f"{owner[1].location((owner[2], 'agreement'))}; an agreement "
                            "belongs to one company",
                        )
                    )
    return problems


class _SkuNames(NamedTuple):
    """The SKUs a customer may name, as the SKU file lists them."""

    file: str  # where they are listed: mappings/skus.yaml
    spelled: dict[str, str]  # casefolded SKU -> as written
    products: dict[str, str]  # casefolded SKU -> its product ("" when missing)


def _sku_names(doc: Document | None) -> _SkuNames | None:
    """None when the SKU file could not be read as a list: then no SKU is unknown."""
    if doc is None or not isinstance(doc.data, list):
        return None
    listed = [item for _, item in entries(doc) if isinstance(item.get("sku"), str)]
    spelled = {item["sku"].casefold(): item["sku"] for item in listed}
    # a missing product is the schema's error, not an unknown SKU
    products = {item["sku"].casefold(): str(item.get("product") or "") for item in listed}
    return _SkuNames(doc.file, spelled, products)


def check_customers(docs: list[Document], skus_doc: Document | None) -> list[Problem]:
    """Problems across the customer files, and against the SKU file (`skus_doc`)."""
    skus = _sku_names(skus_doc)
    products = skus.products if skus is not None else None
    problems = _check_companies(docs)
    # (document, index) rather than a Location: locations are only worked out for the few
    # entries that are reported.
    ids: dict[str, tuple[Document, int]] = {}
    agreements: dict[tuple[str, int | str], tuple[str, bool, Document, int]] = {}
    for doc in docs:
        for index, item in entries(doc):
            cid = item.get("id")
            if isinstance(cid, str):
                seen = ids.setdefault(cid, (doc, index))
                if seen[0] is not doc or seen[1] != index:
                    where = doc.location((index, "id"))
                    first_id = seen[0].location((seen[1], "id"))
                    problems.append(
                        Problem(where, f"duplicate customer id '{cid}' (first at {first_id})")
                    )
            problems += check_prices(doc, index, item, products)
            problems += _unknown_excludes(doc, index, item, skus)
            company, agreement = item.get("company"), item.get("agreement")
            if isinstance(company, str) and isinstance(agreement, int | str):
                shared = item.get("shared_agreement") is True
                key = (company.casefold(), agreement)
                first = agreements.setdefault(key, (str(cid), shared, doc, index))
                if (first[2] is not doc or first[3] != index) and not (shared and first[1]):
                    first_at = first[2].location((first[3], "agreement"))
                    problems.append(
                        Problem(
                            doc.location((index, "agreement")),
                            f"customer '{cid}' bills into the same agreement as customer "
                            f"'{first[0]}' (at {first_at}): company {company}, agreement "
                            f"{agreement!r}; set shared_agreement: true on both if intended",
                        )
                    )
    return problems


def _unknown_excludes(
    doc: Document, index: int, item: dict[str, Any], skus: _SkuNames | None
) -> list[Problem]:
    """A customer's `exclude_skus` naming a SKU the SKU file does not list."""
    excludes = item.get("exclude_skus")
    if skus is None or not isinstance(excludes, list):
        return []
    problems = []
    for j, sku in enumerate(excludes):
        if isinstance(sku, str) and sku.casefold() not in skus.spelled:
            near = suggest(sku, set(skus.spelled.values()))
            hint = f"; did you mean '{near}'?" if near else ""
            problems.append(
                Problem(
                    doc.location((index, "exclude_skus", j)),
                    f"exclude_skus: unknown SKU '{sku}', expected a SKU listed in "
                    f"{skus.file}{hint}",
                )
            )
    return problems
