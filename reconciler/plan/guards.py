"""The silent-SKU guard (DESIGN 13.2): a typo in skus.yaml must not cancel real billing.

`sku: OKTA-MFAA` instead of `OKTA-MFA` passed `validate`, made a "safe" plan, and `apply`
cancelled the line on every customer. The tell: a mapped SKU that ZeroTek reports for
nobody while ConnectWise bills its product. That is unsafe (apply exit 3, `--force`
overrides) when the removals it causes hit two or more customers, or when ZeroTek reports
an unmapped SKU one edit away from it ("did you mean ..."). Pure.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from reconciler.core.model import Config
from reconciler.core.plan import Action, Change, Plan
from reconciler.core.state import Usage


def _key(sku: str) -> str:
    return sku.strip().casefold()


def within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance <= 1 (one letter added, dropped or changed)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)) :] == b[i + 1 :]


def silent_skus(plan: Plan, config: Config, usage: Usage) -> tuple[str, ...]:
    """Why the plan is unsafe because of silent mapped SKUs (empty when none is)."""
    if plan.reported_users == 0:
        return ()  # every SKU is silent: the wipe guard (safety) says it once, better
    reported = {_key(s) for skus in usage.users.values() for s, n in skus.items() if n > 0}
    unmapped = sorted({s.strip() for skus in usage.users.values() for s in skus
                       if config.sku(s.strip()) is None})  # fmt: skip
    by_product: dict[str, list[str]] = defaultdict(list)
    for s in config.skus:
        by_product[s.product.casefold()].append(s.sku)
    removals: dict[str, list[Change]] = defaultdict(list)
    for c in plan.changes:
        if c.action is Action.REMOVE and not c.orphan:
            removals[c.product.casefold()].append(c)
    reasons: list[str] = []
    for product, found in sorted(removals.items()):
        skus = sorted(by_product.get(product, ()))
        if not skus or any(_key(s) in reported for s in skus):
            continue  # someone still uses it: these are ordinary removals
        close = [u for u in unmapped if any(within_one_edit(_key(u), _key(s)) for s in skus)]
        customers = {c.customer_id for c in found}
        if len(customers) < 2 and not close:
            continue
        reasons.append(_reason(skus, found, close, plan.currency))
    return tuple(reasons)


def _reason(skus: list[str], found: list[Change], close: list[str], currency: str) -> str:
    money = -sum((c.revenue_delta for c in found), Decimal(0))
    lines = ", ".join(
        f"{c.customer_id} #{c.addition_id} quantity {c.before}"
        for c in sorted(found, key=lambda c: (c.customer_id, c.addition_id or 0))[:5]
    )
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    guess = f"; did you mean {' or '.join(close)}?" if close else ""
    return (
        f"mapped SKU {' / '.join(skus)} is reported by no ZeroTek customer, yet "
        f"{len(found)} line(s) of {found[0].product} would be removed ({lines}{more}; "
        f"{money:.2f} {currency}/month){guess}"
    )
