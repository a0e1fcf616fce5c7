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
    # (owner, product) -> what adopting gives: ~25,000 lines at 10,000 customers, a few
    # distinct answers, each a scan of the SKU mappings.
    adopting: dict[tuple[str | None, str], tuple[str, str, str] | None] = {}
    for agreement_key, agreement in snapshot.items():
        agreement_id = int(agreement_key)
        owner = owners.get(agreement_id)
        for addition_key, seen in agreement.get("additions", {}).items():
            key = (agreement_id, int(addition_key))
            product = seen["product"]
            if (owner, product) not in adopting:
                adopting[owner, product] = _adopt(config, owner, product)
            adopted = adopting[owner, product]
            if adopted is not None:
                lines[key] = LedgerLine(*key, *adopted, run_id)
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


def _adopt(config: Config, owner: str | None, product: str) -> tuple[str, str, str] | None:
    """(product as mapped, customer id, SKU) of a live line of `product` on `owner`'s
    agreement, or None when it is not ours by mapping."""
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
    return spelling, customer.id, skus[0]


# One encoder for every line: json.dumps with an option builds a new one per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def dumps(lines: list[LedgerLine]) -> str:
    rows = [
        _ENCODE(
            {
                "agreement_id": x.agreement_id,
                "addition_id": x.addition_id,
                "product": x.product,
                "customer_id": x.customer_id,
                "sku": x.sku,
                "run": x.run,
            }
        )
        for x in lines
    ]
    return "[\n" + ",\n".join(f"  {r}" for r in rows) + ("\n]\n" if rows else "]\n")
