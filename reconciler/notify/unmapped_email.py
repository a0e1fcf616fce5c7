"""The daily unmapped e-mail: mapped customers using ZeroTek SKUs with no mapping
(`unmapped_skus`) and ZeroTek customers with usage but no mapping, valued at the catalog
price, sent while anything is billed nowhere (`send_unmapped`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from reconciler.core.model import Config, Settings
from reconciler.core.periods import Period
from reconciler.core.state import Usage
from reconciler.core.wording import amount, period_words
from reconciler.insight.report import Row
from reconciler.notify.mailbody import REPORT_HINT, MailBody, html_doc
from reconciler.notify.smtp import SmtpSettings, deliver
from reconciler.plan.render import UNMAPPED_HEADER
from reconciler.records.record import EmailOutcome
from reconciler.secure.untrusted import plain

UNMAPPED = "unmapped-sku"


def unmapped_skus(config: Config, usage: Usage) -> list[tuple[str, str, str, int]]:
    """(customer id, customer name, sku, users) for each mapped customer using a ZeroTek SKU
    that has no mapping in skus.yaml, sorted by customer name, id and SKU."""
    mapped = {s.sku for s in config.skus}
    rows = [
        (c.id, c.name, sku, users)
        for c in config.customers
        for sku, users in usage.users.get(c.id, {}).items()
        if users > 0 and sku not in mapped
    ]
    return sorted(rows, key=lambda r: (r[1].casefold(), r[0], r[2]))


def _valued_rows(rows: Sequence[Row], currency: str) -> list[tuple[str, ...]]:
    def money(value: Any) -> str:
        return "not priced" if value is None else amount(value, currency)

    return [
        (r.customer_name, r.customer_id, r.sku, str(r.zerotek_users), r.product or "-",
         money(r.unit_price), money(r.amount))
        for r in rows
    ]  # fmt: skip


_VALUED_HEADER = ("Customer", "Customer id", "SKU", "Users", "Product", "Unit price", "Per month")


def send_unmapped(
    settings: Settings,
    rows: Sequence[tuple[str, str, str, int]],
    *,
    send: bool = True,
    smtp: SmtpSettings | None,
    period: Period | None = None,
    valued: Sequence[Row] = (),
    customers: Sequence[Row] = (),
    price_note: str | None = None,
) -> EmailOutcome | None:
    """The daily unmapped e-mail, while anything is billed nowhere: mapped customers using
    unmapped SKUs (`rows`, or `valued` when priced) and ZeroTek customers with usage but no
    mapping (`customers`), valued at the catalog price. None (nothing sent) once none remain."""
    if not rows and not customers:
        return None
    currency = settings.currency
    when = f" ({period_words(period.kind.value, period.start, period.end)})" if period else ""
    subject = _unmapped_subject(rows, customers)
    body = MailBody()
    if rows:
        _add_unmapped_skus(body, rows, valued, currency, when)
    if customers:
        intro = f"These ZeroTek customers have usage but no mapping, so nobody is billed{when}:"
        advice = (
            "Map them in mappings/customers.yaml; `reconcile discover` proposes the "
            "ConnectWise company and agreement for each."
        )
        body.listing(intro, _VALUED_HEADER, _valued_rows(customers, currency), advice)
    total = sum((r.amount for r in (*valued, *customers) if r.amount is not None), Decimal(0))
    closing = [f"Not billed in total: {amount(total, currency)} per month (priced rows)."]
    if price_note:
        closing.append(plain(price_note))
    body.lines([*closing, "This e-mail repeats daily until none remain.", REPORT_HINT])
    mail = (subject, body.plain_text(), html_doc(subject, body.parts))
    return deliver(UNMAPPED, settings.notifications.recipients, lambda: mail, send=send, smtp=smtp)


def _unmapped_subject(rows: Sequence[tuple[str, str, str, int]], customers: Sequence[Row]) -> str:
    n_sku = len({r[0] for r in rows})
    n_cust = len({r.customer_id for r in customers})
    what = []
    if n_sku:
        what.append(f"Unmapped ZeroTek SKUs in use: {n_sku} customer{'s' if n_sku != 1 else ''}")
    if n_cust:
        what.append(f"unmapped customers with usage: {n_cust}")
    return "[reconcile] " + "; ".join(what)[:1].upper() + "; ".join(what)[1:]


def _add_unmapped_skus(
    body: MailBody,
    rows: Sequence[tuple[str, str, str, int]],
    valued: Sequence[Row],
    currency: str,
    when: str,
) -> None:
    """Mapped customers using unmapped SKUs: valued at the catalog price when `valued`."""
    intro = f"These synced customers use ZeroTek SKUs that have no ConnectWise mapping{when}:"
    table = (
        _valued_rows(valued, currency)
        if valued
        else [(name, cid, sku, str(users)) for cid, name, sku, users in rows]
    )
    advice = (
        "Their usage is not billed. Map each SKU in mappings/skus.yaml (or list it in the "
        "customer's exclude_skus); `reconcile discover` proposes the catalog product."
    )
    body.listing(intro, _VALUED_HEADER if valued else UNMAPPED_HEADER, table, advice)
