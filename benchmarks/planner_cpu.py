"""The pure planner alone: 5,000 customers x 10 SKUs, no I/O (target: < 1 s).

    python benchmarks/planner_cpu.py [--customers 5000] [--skus 10] [--repeat 3]

Model objects are built directly (no YAML, no HTTP), in the shapes a real run produces:
half the agreements mapped by id and half by exact name, an expired agreement beside every
tenth live one, existing additions that are equal, off, missing or no longer used, plus
unmapped products and an unmapped ZeroTek SKU. Prints the best of `--repeat` timings and
the tracemalloc peak of one planning pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

from reconciler.core.model import Config, CustomerMap, PeriodKind, Settings, SkuMap
from reconciler.core.periods import Period
from reconciler.core.state import ActualState, Addition, Agreement, CatalogItem, Company, Usage
from reconciler.plan import planner

TARGET_SECONDS = 1.0
AS_OF = dt.date(2026, 11, 24)
PERIOD = Period(PeriodKind.LAST_BILLING_PERIOD, dt.date(2026, 10, 16), dt.date(2026, 11, 15), AS_OF)


def build(n_customers: int, n_skus: int, seed: int = 0) -> tuple[Config, Usage, ActualState]:
    rng = random.Random(seed)
    skus = tuple(
        SkuMap(f"SKU-{i:02d}", f"ZT-SKU-{i:02d}", unit_price=Decimal(i) if i % 3 == 0 else None)
        for i in range(1, n_skus + 1)
    )
    catalog = {
        s.product: CatalogItem(7000 + i, s.product, f"SKU {i}", price=Decimal(2 + i))
        for i, s in enumerate(skus, start=1)
    }
    catalog["MSP-HELPDESK"] = CatalogItem(7900, "MSP-HELPDESK", "helpdesk", price=Decimal(25))
    customers: list[CustomerMap] = []
    companies: dict[str, Company] = {}
    agreements: dict[int, Agreement] = {}
    additions: dict[int, tuple[Addition, ...]] = {}
    users: dict[str, dict[str, int]] = {}
    next_id = 500_000
    for i in range(1, n_customers + 1):
        ident, cid = f"C{i:05d}", f"zt-{i:06d}"
        company = Company(100_000 + i, ident, f"Customer {i}")
        companies[ident] = company
        agreement = Agreement(200_000 + i, f"Customer {i} Managed", company.id, "Active")
        agreements[agreement.id] = agreement
        if i % 10 == 0:
            old = Agreement(300_000 + i, f"Customer {i} 2023", company.id, "Expired")
            agreements[old.id] = old
        ref: int | str = agreement.id if i % 2 else agreement.name
        excluded = (skus[i % n_skus].sku,) if i % 25 == 0 else ()
        customers.append(CustomerMap(cid, company.name, ident, ref, exclude_skus=excluded))
        used = rng.sample(skus, min(n_skus, rng.randint(2, n_skus)))
        counts = {s.sku: rng.randint(1, 40) for s in used}
        if i % 50 == 0:
            counts["OKTA-UNMAPPED"] = 3
        users[cid] = counts
        rows: list[Addition] = []
        for s in skus:
            roll = rng.random()
            want = counts.get(s.sku, 0)
            if roll < 0.6 and (want or roll < 0.1):
                qty = want if roll < 0.4 else max(1, want + rng.choice((-2, 1, 3)))
                item = catalog[s.product]
                rows.append(Addition(next_id, agreement.id, item.id, s.product, qty))
                next_id += 1
        if i % 10 == 0:
            rows.append(Addition(next_id, agreement.id, 7900, "MSP-HELPDESK", 5))
            next_id += 1
        additions[agreement.id] = tuple(rows)
    config = Config(Path("."), Settings(), skus, tuple(customers), "benchmark")
    known = {c.id: c.name for c in customers}
    actual = ActualState(companies, agreements, catalog, additions)
    return config, Usage(PERIOD, users, known), actual


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--skus", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config, usage, actual = build(args.customers, args.skus)
    timings = []
    for _ in range(max(1, args.repeat)):
        started = time.perf_counter()
        plan = planner.plan(config, usage, actual)
        timings.append(time.perf_counter() - started)
    tracemalloc.start()
    planner.plan(config, usage, actual)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    best = min(timings)
    n_additions = sum(len(a) for a in actual.additions.values())
    verdict = "OK" if best < TARGET_SECONDS else "SLOWER THAN TARGET"
    print(
        f"input:        {len(config.customers)} customers x {len(config.skus)} SKUs, "
        f"{n_additions} existing additions, {len(actual.agreements)} agreements"
    )
    print(
        f"plan:         {len(plan.changes)} changes, "
        f"{sum(1 for cp in plan.customers if cp.errors)} customers with errors"
    )
    print(
        f"planner time: {best:.3f} s best of {len(timings)} "
        f"(all: {', '.join(f'{t:.3f}' for t in timings)}; target < {TARGET_SECONDS:.0f} s: "
        f"{verdict})"
    )
    print(f"peak memory:  {peak / 1e6:.1f} MB allocated during one plan (tracemalloc)")
    return 0 if best < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
