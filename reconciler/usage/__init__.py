"""Desired state: licence counts per customer and SKU for a period, from the configured
source (`usage.source`: the ZeroTek API, or an assignment-history CSV).

Imports: core, secure, config, net.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config, Period, Usage
from reconciler.usage.csvfile import count_users, read_assignments
from reconciler.usage.zerotek import ZeroTekClient, fetch_zerotek_usage

__all__ = ["fetch_usage"]


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
