"""Desired state: licence counts per customer and SKU for a period, from the configured
source (`usage.source`: the ZeroTek API, or an assignment-history CSV).

Imports: core, secure, config, net.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config
from reconciler.core.periods import Period
from reconciler.core.state import Usage
from reconciler.net.taskgroup import all_or_none2
from reconciler.usage.csvfile import count_users, read_assignments
from reconciler.usage.zerotek import ZeroTekClient, zerotek_rows

__all__ = ["UsageRead", "fetch_usage", "reading_usage", "second_opinion"]


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
    async with reading_usage(config, period, customer_ids, zerotek=zerotek) as reading:
        usage, known = await all_or_none2(reading.rows(), reading.directory())
    return usage if known is None else replace(usage, known_customers=known)


@dataclass(frozen=True)
class UsageRead:
    """A usage read in its two parts, to be awaited concurrently: `rows`, the usage (with
    `known_customers` None when the directory is read apart), and `directory`, ZeroTek's
    customer directory (None when there is none to read: a CSV source, or a few customers,
    whose per-customer calls say which ones ZeroTek knows). The directory is a chain of
    cursor pages that arrives last: a caller may work with the rows while it does."""

    rows: Callable[[], Awaitable[Usage]]
    directory: Callable[[], Awaitable[dict[str, str] | None]]


@asynccontextmanager
async def reading_usage(
    config: Config,
    period: Period,
    customer_ids: Sequence[str] | None = None,
    *,
    zerotek: Callable[[], ZeroTekClient],
) -> AsyncIterator[UsageRead]:
    """The usage read of `fetch_usage`, in parts (`UsageRead`), with its client open."""
    source = config.settings.usage_source
    if source == "csv":
        yield UsageRead(lambda: _csv_usage(config, period, customer_ids), _no_directory)
    elif source == "zerotek":
        async with zerotek() as client:
            yield UsageRead(
                lambda: zerotek_rows(client, period, customer_ids),
                client.customers if customer_ids is None else _no_directory,
            )
    else:
        raise ReconcileError(f"unknown usage source {source!r}: expected zerotek or csv")


async def _csv_usage(config: Config, period: Period, customer_ids: Sequence[str] | None) -> Usage:
    path = config.config_dir / config.settings.usage_path
    users = count_users(read_assignments(path), period.start, period.end)
    if customer_ids is not None:
        wanted = set(customer_ids)
        users = {c: skus for c, skus in users.items() if c in wanted}
    return Usage(period=period, users=users, known_customers=None)


async def _no_directory() -> None:
    return None


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
