"""Reads for `discover` and `report`: both systems, read-only, concurrently.

`discover` needs what the mappings do not name yet (ConnectWise's whole directory,
ZeroTek's directory with status); `report` needs exactly what `plan` reads plus the catalog
prices of unmapped SKUs. Neither ever writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from reconciler.connectwise.directory import read_directory
from reconciler.connectwise.payload import CATALOG, CATALOG_FIELDS, catalog_item
from reconciler.connectwise.state import read_owned, read_state
from reconciler.core.model import Config, PeriodKind
from reconciler.core.periods import Period, period_for
from reconciler.engine.clients import Clients
from reconciler.insight.discover import Discovery, discover
from reconciler.insight.report import Report, build_report
from reconciler.plan import orphans
from reconciler.usage import fetch_usage


async def run_discover(
    config: Config, as_of: dt.date | None, clients: Clients | None = None
) -> Discovery:
    """Usage over the last complete billing period and since (what a customer is using
    now, plus who stopped just before), and both directories."""
    last = period_for(PeriodKind.LAST_BILLING_PERIOD, config.settings, as_of)
    today = as_of or last.as_of
    clients = clients or Clients()
    async with clients.connectwise(config) as cw, clients.zerotek(config) as zt:
        directory, people, usage = await asyncio.gather(
            read_directory(cw), zt.customer_directory(), zt.usage(last.start, today)
        )
    return discover(config, people, usage, directory, today, (last.start, today))


async def run_report(config: Config, period: Period, clients: Clients | None = None) -> Report:
    """What `plan` reads (mapped companies, agreements, additions; ZeroTek's bulk usage
    and directory) plus the whole catalog (ceil(n/1000) pages) to price unmapped SKUs."""
    clients = clients or Clients()
    async with clients.connectwise(config) as cw:
        actual, usage, catalog_rows = await asyncio.gather(
            read_state(cw, config, config.customers),
            fetch_usage(config, period, zerotek=lambda: clients.zerotek(config)),
            cw.get_all(CATALOG, fields=CATALOG_FIELDS),
        )
        # orphans' lines (DESIGN 13.1) are over-billed money: read their agreements too
        extra = orphans.ledger_agreements(config, None, actual.additions)
        actual = await read_owned(cw, actual, extra, config.owned_products)
    catalog = tuple(catalog_item(r) for r in catalog_rows)
    currency = config.settings.currency
    return build_report(config, usage, actual, catalog, currency)
