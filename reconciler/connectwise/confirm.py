"""Does a write's response show what the write meant to do? Pure (DESIGN 13.7).

ConnectWise answers a POST (201) and a PATCH (200) with the addition as it now stands, so
a write is verified by its own answer; apply re-reads the agreement only when an answer is
missing, unparseable or shows something else. The test is the planner's own notion of a
live managed line (model.is_live_managed), so "confirmed" means exactly what a re-read
followed by a re-plan would find: the product at its planned quantity, or gone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from reconciler.connectwise.payload import addition
from reconciler.connectwise.state import additions_path
from reconciler.core.errors import ReconcileError
from reconciler.core.model import ManagedProducts, Removal
from reconciler.core.plan import Action, Change
from reconciler.core.state import is_live_managed


def shows(
    change: Change,
    method: Removal | None,
    body: dict[str, Any],
    products: ManagedProducts,
    as_of: dt.date,
) -> bool:
    """True when `body` (the response to `change`'s write, sent as `method` for a removal)
    shows the addition in its intended state. A DELETE answers with no body: its success
    is its status."""
    if change.action is Action.REMOVE and method is Removal.DELETE:
        return True
    try:
        line = addition(body, change.agreement_id, additions_path(change.agreement_id), products)
    except ReconcileError:  # not an addition (an empty or odd body): only a re-read can tell
        return False
    if products.spelling(line.product_identifier) != change.product or line.problem:
        return False
    if change.action is not Action.ADD and line.id != change.addition_id:
        return False
    live = is_live_managed(line, products, as_of)
    if change.action is Action.REMOVE:
        return not live
    # a repriced line (13.4) must show its new price too; Decimal compares 4.25 == 4.2500
    priced = not change.repriced or line.unit_price == change.unit_price
    return live and line.quantity == change.after and priced
