"""A generated sandbox world plus its config dir, and the ground truth to check a sync
against, computed from the fixture alone (never from the reconciler's own answers).

Shared by test_faults.py and test_crash.py.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from reconciler.config.loader import load_config
from reconciler.config.resources import example_dir
from reconciler.core.model import Config, PeriodKind
from reconciler.core.periods import period_for
from reconciler.sandbox import Fixture, Sandbox, generate_fixture, usage_counts

AS_OF = dt.date(2026, 11, 24)  # the generated usage history is built around this day


@dataclass
class World:
    fixture: Fixture
    root: Path  # the config dir (mappings/ inside; runs/ appear here)
    config: Config
    agreement_of: dict[str, int]  # ZeroTek customer id -> its agreement id
    product_of: dict[str, str]  # SKU -> catalog identifier

    @property
    def managed_products(self) -> set[str]:
        return set(self.product_of.values())

    def desired(self) -> dict[int, dict[str, int]]:
        """agreement id -> product -> quantity the last billing period bills for."""
        period = period_for(PeriodKind.LAST_BILLING_PERIOD, self.config.settings, AS_OF)
        counts = usage_counts(self.fixture.assignments, period.start, period.end)
        out: dict[int, dict[str, int]] = {a: {} for a in self.agreement_of.values()}
        for customer, agreement in self.agreement_of.items():
            for sku, users in counts.get(customer, {}).items():
                if sku in self.product_of and users > 0:
                    out[agreement][self.product_of[sku]] = users
        return out


def make_world(root: Path, n_customers: int, seed: int, *, max_concurrency: int = 8) -> World:
    fixture, skus_yaml, customers_yaml = generate_fixture(n_customers, seed=seed)
    mappings = root / "mappings"
    mappings.mkdir(parents=True)
    settings = (example_dir() / "settings.yaml").read_text(encoding="utf-8")
    # A generated world changes a large share of its additions on the first apply.
    for key, value in (
        ("max_concurrency", str(max_concurrency)),
        ("max_removal_percent", "100"),
        ("max_quantity_change_percent", "100"),
    ):
        settings, n = re.subn(rf"{key}: \d+", f"{key}: {value}", settings)
        assert n == 1, key
    (mappings / "settings.yaml").write_text(settings, encoding="utf-8")
    (mappings / "skus.yaml").write_text(skus_yaml, encoding="utf-8")
    (mappings / "customers.yaml").write_text(customers_yaml, encoding="utf-8")
    config = load_config(root)

    companies = {c["identifier"]: c["id"] for c in fixture.companies}
    agreement_of: dict[str, int] = {}
    for c in config.customers:
        matches = [
            a["id"]
            for a in fixture.agreements
            if a["company"]["id"] == companies[c.company]
            and (
                a["id"] == c.agreement if isinstance(c.agreement, int) else a["name"] == c.agreement
            )
        ]
        assert len(matches) == 1, c
        agreement_of[c.id] = matches[0]
    product_of = {s.sku: s.product for s in config.skus}
    return World(fixture, root, config, agreement_of, product_of)


def copy_world(world: World, root: Path) -> None:
    """The same mappings in another config dir (the run log of each lives apart)."""
    shutil.copytree(world.root / "mappings", root / "mappings")


def _active(record: dict, day: dt.date = AS_OF) -> bool:
    cancelled = record.get("cancelledDate")
    return (not cancelled or dt.date.fromisoformat(cancelled[:10]) > day) and record["quantity"] > 0


def live(sandbox: Sandbox, world: World) -> dict[int, dict[str, list[int]]]:
    """agreement id -> managed product -> quantities of its active additions (a list, so a
    duplicate shows up as two entries rather than being folded away)."""
    out: dict[int, dict[str, list[int]]] = {}
    for agreement in world.agreement_of.values():
        products: dict[str, list[int]] = {}
        for record in sandbox.additions(agreement):
            product = record["product"]["identifier"]
            if product in world.managed_products and _active(record):
                products.setdefault(product, []).append(int(record["quantity"]))
        out[agreement] = {p: sorted(q) for p, q in products.items()}
    return out


def duplicates(sandbox: Sandbox, world: World) -> list[tuple[int, str]]:
    """(agreement, product) pairs with more than one active addition."""
    return [
        (agreement, product)
        for agreement, products in live(sandbox, world).items()
        for product, quantities in products.items()
        if len(quantities) > 1
    ]


def as_desired(world: World) -> dict[int, dict[str, list[int]]]:
    return {a: {p: [q] for p, q in products.items()} for a, products in world.desired().items()}


def unmanaged(sandbox: Sandbox, world: World) -> Counter[tuple]:
    """Every addition that is not ours, as comparable tuples: must never change."""
    return Counter(
        (r["id"], r["agreementId"], r["product"]["identifier"], r["quantity"], r["cancelledDate"])
        for r in sandbox.all_additions()
        if r["product"]["identifier"] not in world.managed_products
    )
