"""The daily unmapped-usage check (`reconcile check-unmapped`): current-period usage from
one bulk ZeroTek read -> the customers using SKUs no mapping names and the ZeroTek customers
with usage but no mapping, valued at the catalog price, and the reminder e-mail while any
remain.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from reconciler.connectwise.payload import CATALOG, CATALOG_FIELDS, catalog_item
from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config
from reconciler.core.periods import Period
from reconciler.core.state import CatalogItem
from reconciler.engine.clients import Clients
from reconciler.insight.report import Kind, Pricer, Row, unmapped_customer_rows
from reconciler.notify.smtp import SmtpSettings, delivery_failed
from reconciler.notify.unmapped_email import send_unmapped, unmapped_skus
from reconciler.records.record import EmailOutcome
from reconciler.usage import fetch_usage


@dataclass(frozen=True)
class Unmapped:
    period: Period
    rows: list[tuple[str, str, str, int]] = field(default_factory=list)
    email: EmailOutcome | None = None
    # Valued at the catalog price (report.Pricer): the SKU rows above, and ZeroTek
    # customers with usage but no mapping (unbilled revenue).
    valued_skus: list[Row] = field(default_factory=list)
    customers: list[Row] = field(default_factory=list)
    price_note: str | None = None  # why nothing could be priced (ConnectWise unreadable)

    @property
    def any(self) -> bool:
        return bool(self.rows or self.customers)

    @property
    def email_failed(self) -> bool:
        return self.email is not None and delivery_failed(self.email)


async def find_unmapped(config: Config, clients: Clients, period: Period) -> Unmapped:
    """The unmapped usage of `period`, valued (no e-mail yet)."""
    zerotek = lambda: clients.zerotek(config)  # noqa: E731
    usage = await fetch_usage(config, period, zerotek=zerotek)
    rows = unmapped_skus(config, usage)
    catalog, note = await _catalog(config, clients)
    pricer = Pricer(config, catalog)
    valued = [pricer.row(Kind.UNMAPPED_SKU, cid, name, sku, n) for cid, name, sku, n in rows]
    customers = unmapped_customer_rows(config, usage, pricer)
    return Unmapped(period, rows, None, valued, customers, note)


async def _catalog(config: Config, clients: Clients) -> tuple[tuple[CatalogItem, ...], str | None]:
    """The whole catalog, to price unbilled usage. The daily reminder must still go out
    when ConnectWise cannot be read: then nothing is priced, and the e-mail says why."""
    try:
        async with clients.connectwise(config) as cw:
            items = await cw.get_all(CATALOG, fields=CATALOG_FIELDS)
        return tuple(catalog_item(r) for r in items), None
    except ReconcileError as exc:
        return (), f"not priced: ConnectWise catalog unreadable ({exc})"


def remind(
    config: Config, found: Unmapped, *, send_email: bool, smtp: SmtpSettings | None
) -> Unmapped:
    """The daily e-mail while any unmapped usage remains; `found` with its outcome."""
    email = send_unmapped(
        config.settings,
        found.rows,
        send=send_email,
        smtp=smtp,
        period=found.period,
        valued=found.valued_skus,
        customers=found.customers,
        price_note=found.price_note,
    )
    return replace(found, email=email)
