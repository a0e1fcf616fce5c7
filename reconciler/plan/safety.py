"""When a plan is too destructive to apply without a human saying `--force`.

A ZeroTek outage that reports zero users, or a mapping typo, looks exactly like "every
customer left": the thresholds turn that into a refused plan instead of mass cancellations.
Pure: works on the plan alone.
"""

from __future__ import annotations

from decimal import Decimal

from reconciler.core.model import Safety
from reconciler.core.money import display
from reconciler.core.plan import Action, Change, Plan


def unsafe_reasons(plan: Plan, safety: Safety) -> tuple[str, ...]:
    """Why the plan is unsafe (empty when it is safe).

    Thresholds only apply when at least `min_existing` managed additions exist: on a small
    or brand-new setup any change is a large percentage and not a sign of trouble.
    - removals: removed additions as a percentage of the managed additions;
    - quantity change: the sum of |after - before| over updates and removals, as a
      percentage of the managed additions' total quantity before the plan.
    """
    managed = sum(cp.managed for cp in plan.customers)
    reasons: list[str] = _price_reasons(plan, safety)
    # Orphans go because a mapping was edited, whatever ZeroTek says (`--customer C` of a
    # customer whose mapping was removed plans nothing else).
    by_usage = managed - sum(1 for c in plan.changes if c.orphan)
    if plan.reported_users == 0 and by_usage > 0:
        # Wipe guard (DESIGN 12.3), whatever the thresholds: ZeroTek answering "nobody uses
        # anything" for every planned customer is far likelier an outage or an emptied
        # tenant than every user leaving at once, and small setups sit below min_existing.
        reasons.append(
            f"ZeroTek reported zero users for every SKU of every planned customer, yet "
            f"{by_usage} managed addition{'s' if by_usage != 1 else ''} exist: this would "
            "remove them all"
        )
    reasons.extend(_over_cap(plan, safety.max_quantity))
    if managed < safety.min_existing or managed == 0:
        return tuple(reasons)
    removals = plan.count(Action.REMOVE)
    removal_pct = 100 * removals / managed
    if removal_pct > safety.max_removal_percent:
        reasons.append(
            f"{removals} of {managed} managed additions would be removed "
            f"({removal_pct:.0f}% > max_removal_percent {safety.max_removal_percent:g}%)"
        )
    before_total = sum(cp.managed_quantity for cp in plan.customers)
    moved = sum(abs(c.after - c.before) for c in plan.changes if c.action is not Action.ADD)
    if before_total > 0:
        change_pct = 100 * moved / before_total
        if change_pct > safety.max_quantity_change_percent:
            reasons.append(
                f"quantities of existing additions would change by {moved} of {before_total} "
                f"({change_pct:.0f}% > max_quantity_change_percent "
                f"{safety.max_quantity_change_percent:g}%)"
            )
    return tuple(reasons)


def _price_move(change: Change) -> Decimal | None:
    """How far a repriced line's price moves, in percent of its old price (None: from no
    price or from 0, which no percentage can measure)."""
    if not change.price_before:
        return None
    return 100 * abs(change.unit_price - change.price_before) / change.price_before


def _price_reasons(plan: Plan, safety: Safety) -> list[str]:
    """Repriced lines (DESIGN 13.4) whose price moves beyond max_price_change_percent, or
    from no price at all: a typo in a price (42.50 for 4.25) reprices every line of that
    SKU at once. Per line and whatever min_existing says: a line's price is wrong on its
    own, however few lines there are."""
    too_far = []
    for c in plan.changes:
        if not c.repriced:
            continue
        move = _price_move(c)
        if move is None or move > safety.max_price_change_percent:
            too_far.append((c, move))
    if not too_far:
        return []
    c, move = too_far[0]
    was = "none" if c.price_before is None else display(c.price_before)
    how = "" if move is None else f", {move:.0f}%"
    return [
        f"{len(too_far)} repriced line{'s' if len(too_far) != 1 else ''} move beyond "
        f"max_price_change_percent {safety.max_price_change_percent:g}% (e.g. {c.product} "
        f"#{c.addition_id} {was} → {display(c.unit_price)}{how}): check the prices"
    ]


def _over_cap(plan: Plan, cap: int) -> list[str]:
    """Quantity cap (DESIGN 13.2), whatever `min_existing` says: one glitched count would
    otherwise bill a million seats on a line that does not exist yet (an add is never
    counted by the percentage thresholds)."""
    over = [c for c in plan.changes if c.after > cap]
    if not over:
        return []
    shown = ", ".join(
        f"{c.customer_id} {c.product} {c.before} → {c.after}"
        for c in sorted(over, key=lambda c: (c.customer_id, c.product))[:5]
    )
    more = f" and {len(over) - 5} more" if len(over) > 5 else ""
    return [
        f"{len(over)} change{'s' if len(over) != 1 else ''} would set a quantity above "
        f"max_quantity {cap}: {shown}{more}"
    ]
