"""Desired state: licence counts per customer and SKU for a period, from the configured
source (`usage.source`: the ZeroTek API, or an assignment-history CSV).

Imports: core, secure, config, net.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config
from reconciler.core.periods import Period
from reconciler.core.state import Usage
from reconciler.usage.csvfile import count_users, read_assignments
from reconciler.usage.zerotek import ZeroTekClient, fetch_zerotek_usage

__all__ = ["fetch_usage", "second_opinion"]


async def fetch_usage(
    config: Config,
    period: Period,
    customer_ids: Sequence[str] | None = None,
    *,
    zerotek: Callable[[], ZeroTekClient],
) -> Usage:
    """`customer_ids` None = full sync (bulk usage + ZeroTek's customer directory); given =
    only those customers, and no directory. `zerotek` makes the client (see clients.py);
    it is called only when the source is the ZeroTek API."""
    source = config.settings.usage_source
    if source == "csv":
        path = config.config_dir / config.settings.usage_path
        users = count_users(read_assignments(path), period.start, period.end)
        if customer_ids is not None:
            wanted = set(customer_ids)
            users = {c: skus for c, skus in users.items() if c in wanted}
        return Usage(period=period, users=users, known_customers=None)
    if source == "zerotek":
        async with zerotek() as client:
            return await fetch_zerotek_usage(client, period, customer_ids)
    raise ReconcileError(f"unknown usage source {source!r}: expected zerotek or csv")


async def second_opinion(
    config: Config,
    usage: Usage,
    customer_ids: Sequence[str],
    *,
    zerotek: Callable[[], ZeroTekClient],
) -> Usage:
    """DESIGN 13.2: before a customer whose bulk usage is empty loses its lines, ask ZeroTek
    again with the per-customer call. A bulk read that silently drops customers (a short
    page, a lost cursor) then cancels nothing: where the two reads disagree, that customer
    is an error (`Usage.problems`), never a removal. Only for the ZeroTek bulk read."""
    if config.settings.usage_source != "zerotek" or not customer_ids:
        return usage
    period = usage.period
    async with zerotek() as client:
        answers = await asyncio.gather(
            *(client.customer_usage(c, period.start, period.end) for c in customer_ids)
        )
    problems = dict(usage.problems)
    for cid, rows in zip(customer_ids, answers, strict=True):
        if rows is None:
            problems[cid] = (
                "ZeroTek's bulk usage lists this customer with no users, but its own usage "
                "call does not know it: the reads disagree, nothing is removed"
            )
        elif rows.result() or rows.problems:
            found = ", ".join(f"{s} {n}" for s, n in sorted(rows.result().get(cid, {}).items()))
            problems[cid] = (
                "ZeroTek's bulk usage reported no users for this customer, but its own usage "
                f"call reports {found or 'rows'}: the reads disagree, nothing is removed "
                "(run the plan again; if it persists, tell ZeroTek)"
            )
    return replace(usage, problems=problems)
