"""Generated worlds for scale tests and benchmarks: `generate_fixture(n)`."""

from __future__ import annotations

import datetime as dt
import json
import random

from reconciler.sandbox.fixtures import CURRENT_END, CURRENT_START
from reconciler.sandbox.records import (
    Assignment,
    Fixture,
    addition_record,
    agreement_record,
    catalog_item_record,
    company_record,
    rand_day,
)

_D = dt.date
_NAME_WORDS = [
    "Apex",
    "Birch",
    "Cobalt",
    "Dune",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Iris",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Maple",
    "Nimbus",
    "Onyx",
    "Pioneer",
]
_NAME_TEMPLATES = [
    "{w} Holdings",
    "{w} & Sons",
    'The "{w}" Group',
    "{w}'s Plumbing",
    "{w}, Inc.",
    "{w} (EMEA) Ltd",
    "{w} Dental & Ortho",
    "{w} IT",
]


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def generate_fixture(
    n_customers: int, *, seed: int = 0, skus_per_customer: int = 3
) -> tuple[Fixture, str, str]:
    """A world of `n_customers` mapped customers plus the matching mapping files' text.

    Returns (fixture, skus_yaml_text, customers_yaml_text). Companies are C0001.., agreements
    are named half by id and half by exact name; existing additions are a mix of equal,
    off, missing and no-longer-used (to remove), plus unmapped products that are not ours.
    Assignments share date and user-name objects to keep memory small at 5,000+ customers.
    """
    if n_customers < 1 or skus_per_customer < 1:
        raise ValueError("n_customers and skus_per_customer must be positive")
    rng = random.Random(seed)
    n_skus = max(8, skus_per_customer + 1)
    width = max(4, len(str(n_customers)))
    fx = Fixture()
    skus = [f"GEN-{i:02d}" for i in range(1, n_skus + 1)]
    items = [
        catalog_item_record(
            7000 + i, f"ZT-{sku}", f"ZeroTek generated SKU {i}", 2.0 + i, 1.0 + i / 2
        )
        for i, sku in enumerate(skus, start=1)
    ]
    helpdesk = catalog_item_record(7900, "MSP-HELPDESK", "Managed helpdesk per user", 25.0, 12.0)
    fx.catalog = [*items, helpdesk]
    item_of = dict(zip(skus, items, strict=True))

    days: dict[dt.date, dt.date] = {}  # one date object per day, shared by every assignment
    users: dict[int, str] = {}  # one string per user number, shared across customers

    def day(first: dt.date, last: dt.date) -> dt.date:
        d = rand_day(rng, first, last)
        return days.setdefault(d, d)

    def user(n: int) -> str:
        return users.setdefault(n, f"u{n}")

    sku_lines = [f"- sku: {sku}\n  product: ZT-{sku}\n" for sku in skus]
    customer_lines: list[str] = []
    next_addition = 500_001
    for i in range(1, n_customers + 1):
        ident = f"C{i:0{width}d}"
        name = rng.choice(_NAME_TEMPLATES).format(w=rng.choice(_NAME_WORDS)) + f" {i}"
        company = company_record(100_000 + i, ident, name)
        agreement = agreement_record(
            200_000 + i,
            f"{name} Managed Services",
            company,
            "Active",
            _D(2025, 1, 1) + dt.timedelta(days=i % 300),
        )
        fx.companies.append(company)
        fx.agreements.append(agreement)
        if i % 10 == 0:  # an old expired agreement beside the live one
            fx.agreements.append(
                agreement_record(
                    300_000 + i,
                    f"{name} 2023",
                    company,
                    "Expired",
                    _D(2023, 1, 1),
                    _D(2023, 12, 31),
                )
            )
        zt_id = f"zt-{i:0{width + 1}d}"
        fx.zerotek_customers.append({"id": zt_id, "name": name, "status": "active"})
        ref = str(agreement["id"]) if i % 2 else _yaml_str(agreement["name"])
        customer_lines.append(
            f"- id: {zt_id}\n  name: {_yaml_str(name)}\n  company: {ident}\n  agreement: {ref}\n"
        )

        used = rng.sample(skus, skus_per_customer)
        for sku in used:
            count = rng.randint(1, 30)
            for n in range(1, count + 1):
                fx.assignments.append(
                    Assignment(zt_id, sku, user(n), day(_D(2026, 5, 1), _D(2026, 9, 30)))
                )
            if rng.random() < 0.1:  # a joiner after the last period: current differs
                fx.assignments.append(
                    Assignment(zt_id, sku, user(count + 1), day(CURRENT_START, CURRENT_END))
                )
            roll = rng.random()
            if roll < 0.75:
                quantity = count if roll < 0.5 else max(1, count + rng.choice((-2, -1, 1, 2)))
                fx.additions.append(
                    addition_record(next_addition, agreement, item_of[sku], quantity)
                )
                next_addition += 1
        if rng.random() < 0.2:  # a mapped product the customer no longer uses
            gone = rng.choice([s for s in skus if s not in used])
            fx.additions.append(
                addition_record(next_addition, agreement, item_of[gone], rng.randint(1, 10))
            )
            next_addition += 1
        if rng.random() < 0.1:  # not ours: never touched
            fx.additions.append(addition_record(next_addition, agreement, helpdesk, count))
            next_addition += 1
    header = f"# generated by reconciler.sandbox.generate_fixture({n_customers}, seed={seed})\n"
    return fx, header + "".join(sku_lines), header + "".join(customer_lines)
