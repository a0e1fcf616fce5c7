"""The ownership ledger, state/managed.json (DESIGN 13.1): what the reconciler manages.

Rewritten atomically by every apply that reached ConnectWise, under the config lock, from
the apply's own outcomes (the journal's content: interrupted and partial runs too):
- lines on agreements this run did not plan (other customers, errors) stay as they were;
- on each agreement it planned, every live managed line it read is adopted (owner: the
  customer planned on it, SKU: the first SKU mapping the product), an add it committed is
  added, a removal it committed is dropped;
- a line of the old ledger that is still live but not adopted (an orphan whose removal
  failed, or was kept) keeps its old entry, so the next plan finds it again.
Sorted, one line per entry (so `validate` points at a line and git diffs stay small); no
secrets, no money. `reconcile validate` checks it against `reconcile schema managed`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.config.loader import LEDGER_FILE
from reconciler.core.files import atomic_write
from reconciler.core.model import Config, LedgerLine
from reconciler.core.plan import Action, CustomerPlan
from reconciler.core.results import ApplyResult

Key = tuple[int, int]  # (agreement id, addition id)


def rewrite(config: Config, state: Mapping[str, Any], result: ApplyResult, run_id: str) -> Path:
    """Write the ledger after an apply (see the module docstring); returns its path."""
    lines = updated(config, state, result, run_id)
    path = config.config_dir / LEDGER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, dumps(lines))
    return path


def updated(
    config: Config, state: Mapping[str, Any], result: ApplyResult, run_id: str
) -> list[LedgerLine]:
    old = {(x.agreement_id, x.addition_id): x for x in config.ledger or ()}
    snapshot: Mapping[str, Any] = state.get("agreements", {})
    planned = {int(i) for i in snapshot}
    lines = {k: x for k, x in old.items() if k[0] not in planned}
    owners = _owners(result.plan.customers)
    for agreement_key, agreement in snapshot.items():
        agreement_id = int(agreement_key)
        for addition_key, seen in agreement.get("additions", {}).items():
            key = (agreement_id, int(addition_key))
            adopted = _adopt(config, owners.get(agreement_id), key, seen["product"], run_id)
            if adopted is not None:
                lines[key] = adopted
            elif key in old:
                lines[key] = old[key]  # still live, not ours by mapping: an orphan left
    for customer in result.customers:
        for r in customer.results:
            c = r.change
            if not r.ok:
                continue
            if c.action is Action.ADD and r.addition_id is not None:
                key = (c.agreement_id, r.addition_id)
                lines[key] = LedgerLine(*key, c.product, c.customer_id, c.sku, run_id)
            elif c.action is Action.REMOVE and c.addition_id is not None:
                lines.pop((c.agreement_id, c.addition_id), None)
    return [lines[k] for k in sorted(lines)]


def _owners(customers: tuple[CustomerPlan, ...]) -> dict[int, str]:
    """The customer planned first on each agreement (a shared agreement's changes go there)."""
    owners: dict[int, str] = {}
    for cp in sorted(customers, key=lambda cp: cp.customer_id):
        if cp.agreement_id is not None and not cp.errors:
            owners.setdefault(cp.agreement_id, cp.customer_id)
    return owners


def _adopt(
    config: Config, owner: str | None, key: Key, product: str, run_id: str
) -> LedgerLine | None:
    customer = config.customer(owner) if owner else None
    if customer is None or product not in config.managed_products:
        return None
    excluded = {s.casefold() for s in customer.exclude_skus}
    skus = sorted(
        s.sku
        for s in config.skus
        if s.product.casefold() == product.casefold() and s.sku.casefold() not in excluded
    )
    if not skus:
        return None  # excluded for this customer: no longer ours (DESIGN 11)
    spelling = config.managed_products.spelling(product) or product
    return LedgerLine(*key, spelling, customer.id, skus[0], run_id)


def dumps(lines: list[LedgerLine]) -> str:
    rows = [
        json.dumps(
            {
                "agreement_id": x.agreement_id,
                "addition_id": x.addition_id,
                "product": x.product,
                "customer_id": x.customer_id,
                "sku": x.sku,
                "run": x.run,
            },
            ensure_ascii=False,
        )
        for x in lines
    ]
    return "[\n" + ",\n".join(f"  {r}" for r in rows) + ("\n]\n" if rows else "]\n")
