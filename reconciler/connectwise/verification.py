"""Whether the writes to a customer's agreements hold (DESIGN 13.7): the agreements re-read
when an answer could not settle a write, every changed product checked for its planned
quantity and price, and writes whose outcome was unknown settled by what the re-read shows."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from typing import NamedTuple

from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.state import read_additions
from reconciler.core import money
from reconciler.core.model import ManagedProducts
from reconciler.core.plan import Change, CustomerPlan
from reconciler.core.results import ChangeResult
from reconciler.core.state import Addition, is_live_managed


def live_quantities(
    additions: tuple[Addition, ...], product: str, products: ManagedProducts, as_of: dt.date
) -> list[int]:
    """The quantities of `product`'s live managed additions (model.is_live_managed, as the
    planner counts them): what an add created, or an update set."""
    return [
        a.quantity
        for a in additions
        if is_live_managed(a, products, as_of)
        and products.spelling(a.product_identifier) == product
    ]


class Verified(NamedTuple):
    """The results with unknown outcomes settled, what does not hold, and how many of the
    unknown writes the re-read showed written."""

    settled: list[ChangeResult]
    problems: list[str]
    written: int


async def verify(
    cw: ConnectWiseClient,
    products: ManagedProducts,
    as_of: dt.date,
    cp: CustomerPlan,
    results: list[ChangeResult],
) -> Verified:
    """Re-read the agreement (when an answer could not settle a write): every changed
    product must now hold its planned quantity. Writes whose outcome was unknown are
    settled here, by what the re-read shows."""
    assert cp.agreement_id is not None
    # an orphan's removal may act on another agreement than the customer's (13.1)
    ids = sorted({r.change.agreement_id for r in results} or {cp.agreement_id})
    reads = await asyncio.gather(*(read_additions(cw, i, managed=products) for i in ids))
    current = dict(zip(ids, reads, strict=True))
    problems: list[str] = []
    settled: list[ChangeResult] = []
    written = 0
    for r in results:
        c = r.change
        live = live_quantities(current[c.agreement_id], c.product, products, as_of)
        want = [c.after] if c.after > 0 else []
        price = _price_problem(c, current[c.agreement_id])
        if r.unknown:
            done = live == want and price is None
            written += int(done)
            verdict = "written" if done else "not written"
            r = replace(r, ok=done, unknown=False, note=f"settled by re-read: {verdict}")
        settled.append(r)
        if live != want:
            found = ", ".join(map(str, live)) or "none"
            problems.append(
                f"verification: {c.product} expected quantity {c.after or 'none'}, found {found}"
            )
        if price is not None:
            problems.append(price)
    return Verified(settled, problems, written)


def _price_problem(change: Change, current: tuple[Addition, ...]) -> str | None:
    """Why a repriced line does not bill its new price after the write, else None."""
    if not change.repriced:
        return None
    line = next((a for a in current if a.id == change.addition_id), None)
    found = "no such addition" if line is None else money.optional(line.unit_price) or "none"
    if line is not None and line.unit_price == change.unit_price:
        return None
    return (
        f"verification: {change.product} #{change.addition_id} expected unit price "
        f"{money.plain(change.unit_price)}, found {found}"
    )
