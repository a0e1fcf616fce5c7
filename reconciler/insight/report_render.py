"""`report` output: text, Markdown (with a Mermaid chart), CSV, JSON (schemas/report.schema.json).

Customer names, SKUs and identifiers are data: Markdown cells are escaped, chart labels
keep only letters, digits and a few separators, and CSV cells that a spreadsheet would
read as a formula are prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from reconciler.core.money import display
from reconciler.core.money import optional as optional_money
from reconciler.insight.report import Kind, Report, Row, Totals
from reconciler.secure.untrusted import chart_label, escape_controls, json_dumps
from reconciler.secure.untrusted import markdown as md
from reconciler.secure.untrusted import plain as t

TITLES = {
    Kind.UNDER: "Under-billed (ZeroTek users above what ConnectWise bills)",
    Kind.OVER: (
        "Over-billed (ConnectWise bills more than ZeroTek users, or lines no mapping manages)"
    ),
    Kind.UNMAPPED_CUSTOMER: "Unmapped customers (usage with no mapping: billed nowhere)",
    Kind.UNMAPPED_SKU: "Unmapped SKUs (used by mapped customers: billed nowhere)",
    Kind.MISPRICED: "Mispriced (billed at another unit price than mapped)",
}
CHART_BARS = 10


def money(value: Decimal | None, currency: str) -> str:
    return "not priced" if value is None else display(value, currency=currency)


def _price(r: Row, currency: str) -> str:
    """The unit price of a row; a mispriced row's as the move a fix makes."""
    if r.kind is not Kind.MISPRICED:
        return money(r.unit_price, currency)
    billed = "none" if r.billed_price is None else display(r.billed_price)
    return f"({billed} → {money(r.unit_price, currency)})"


def _valued(r: Row, currency: str) -> str:
    """`3 x 4.00 = 12.00/month`; without a price, say so once in words (not "3 x not
    priced = not priced/month")."""
    if r.unit_price is None or r.amount is None:
        licences = f"{r.quantity} licence{'s' if r.quantity != 1 else ''}"
        return f"{licences}, no price known (none in skus.yaml or the ConnectWise catalog)"
    return f"{r.quantity} x {_price(r, currency)} = {money(r.amount, currency)}/month"


def _product(r: Row) -> str:
    """The product cell; an orphan's says why and what becomes of it."""
    product = r.product or "—"
    return f"{product} ({r.orphan})" if r.orphan else product


def _where(r: Row) -> str:
    parts = [r.customer_id, r.customer_name]
    return " ".join(dict.fromkeys(parts))


def _totals_line(t: Totals, currency: str) -> str:
    rows = f"{t.unvalued} row{'s' if t.unvalued != 1 else ''}"
    more = f" (plus {rows} with no price, not counted in the amount)" if t.unvalued else ""
    margin = f", margin {money(t.margin, currency)}" if t.margin else ""
    return f"{t.quantity} licences, {money(t.amount, currency)}/month{margin}{more}"


def text(report: Report) -> str:
    cur, p = report.currency, report.period
    out = [
        f"Revenue assurance, {p.kind.value} {p.start.isoformat()}..{p.end.isoformat()} "
        f"(as of {p.as_of.isoformat()})",
        f"Mapped customers: ZeroTek reports {report.zerotek_users} users of mapped SKUs; "
        f"ConnectWise bills {report.billed_quantity}.",
        "",
    ]
    for kind in Kind:
        rows = [r for r in report.rows if r.kind is kind]
        out.append(f"{TITLES[kind]}: {_totals_line(report.totals(kind), cur)}")
        for r in rows:
            product = r.product or "no catalog product"
            out.append(
                f"  {t(_where(r))}: {t(r.sku)} ({t(product)}) "
                f"ZeroTek {r.zerotek_users}, billed {r.billed}: {_valued(r, cur)}"
                + (f", margin {money(r.margin, cur)}" if r.margin is not None else "")
                + (f"; {t(r.orphan)}" if r.orphan else "")
            )
        out.append("")
    out.append(f"Not billed: {money(report.unbilled, cur)}/month")
    out.append(f"Over-billed: {money(report.totals(Kind.OVER).amount, cur)}/month")
    out.append(f"Net if everything were fixed: {money(report.net, cur)}/month")
    for cid, error in report.errors:
        out.append(f"not compared: {t(cid)}: {t(error)}")
    return "\n".join(out) + "\n"


def _label(r: Row) -> str:
    """A chart label built from identifiers only, reduced to characters Mermaid cannot
    misread (names never reach the chart)."""
    text = f"{r.customer_id} {r.product or r.sku}"
    tag = {Kind.OVER: " over", Kind.UNDER: " under", Kind.MISPRICED: " price"}.get(
        r.kind, " unmapped"
    )
    return (chart_label(text, 40) or "?") + tag


def chart(report: Report) -> str:
    """The largest discrepancies by monthly amount, as a Mermaid xychart-beta (GitHub
    renders it; no image files). Each label says which way the money goes."""
    priced = [r for r in report.rows if r.amount]
    top = sorted(priced, key=lambda r: (-(r.amount or 0), r.customer_id))[:CHART_BARS]
    if not top:
        return ""
    currency = chart_label(report.currency)
    labels = ", ".join(f'"{_label(r)}"' for r in top)
    bars = ", ".join(optional_money(r.amount) or "0" for r in top)
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "Largest discrepancies ({currency} per month)"',
            f"    x-axis [{labels}]",
            f'    y-axis "{currency} per month" 0 --> {optional_money(top[0].amount)}',
            f"    bar [{bars}]",
            "```",
        ]
    )


def markdown(report: Report) -> str:
    cur, p = report.currency, report.period
    out = [
        f"## Revenue assurance: {p.start.isoformat()} to {p.end.isoformat()}",
        "",
        f"ZeroTek reports **{report.zerotek_users}** users of mapped SKUs for mapped "
        f"customers; ConnectWise bills **{report.billed_quantity}**.",
        "",
        "| | licences | per month | margin |",
        "|---|---:|---:|---:|",
    ]
    for kind in Kind:
        t = report.totals(kind)
        out.append(
            f"| {md(kind.value)} | {t.quantity} | {money(t.amount, cur)} | "
            f"{money(t.margin, cur) if t.margin else ''} |"
        )
    out += [
        f"| **not billed** | | **{money(report.unbilled, cur)}** | |",
        f"| **net if fixed** | | **{money(report.net, cur)}** | |",
        "",
    ]
    figure = chart(report)
    if figure:
        out += [figure, ""]
    for kind in Kind:
        rows = [r for r in report.rows if r.kind is kind]
        if not rows:
            continue
        out += [
            f"### {TITLES[kind]}",
            "",
            "| customer | SKU | product | ZeroTek | billed | difference | unit price "
            "| per month | margin |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            out.append(
                f"| {md(_where(r))} | {md(r.sku)} | {md(_product(r))} | "
                f"{r.zerotek_users} | {r.billed} | {r.quantity} | "
                f"{_price(r, cur)} | {money(r.amount, cur)} | "
                f"{money(r.margin, cur) if r.margin is not None else ''} |"
            )
        out.append("")
    if report.errors:
        out += ["### Not compared (errors)", ""]
        out += [f"- {md(cid)}: {md(e)}" for cid, e in report.errors]
        out.append("")
    return "\n".join(out)


CSV_COLUMNS = [
    "kind",
    "customer_id",
    "customer_name",
    "company",
    "agreement_id",
    "sku",
    "product",
    "zerotek_users",
    "billed_quantity",
    "difference",
    "unit_price",
    "monthly_amount",
    "unit_cost",
    "monthly_margin",
    "currency",
    "billed_price",
    "note",
]


def _cell(value: object) -> str:
    """A spreadsheet must not run a name as a formula (=, +, -, @, tab, CR), nor a terminal
    `cat`-ing the file obey an escape sequence in it (control characters escaped)."""
    text = "" if value is None else escape_controls(str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_text(report: Report) -> str:
    """One row per customer x product discrepancy; opens in any spreadsheet."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.rows:
        writer.writerow(
            [
                r.kind.value,
                _cell(r.customer_id),
                _cell(r.customer_name),
                _cell(r.company),
                r.agreement_id if r.agreement_id is not None else "",
                _cell(r.sku),
                _cell(r.product),
                r.zerotek_users,
                r.billed,
                r.quantity,
                optional_money(r.unit_price) or "",
                optional_money(r.amount) or "",
                optional_money(r.unit_cost) or "",
                optional_money(r.margin) or "",
                _cell(report.currency),
                optional_money(r.billed_price) or "",
                _cell(r.orphan),
            ]
        )
    return buf.getvalue()


def as_json(report: Report) -> dict[str, Any]:
    p = report.period

    def totals(t: Totals) -> dict[str, Any]:
        return {
            "quantity": t.quantity,
            "amount": optional_money(t.amount),
            "margin": optional_money(t.margin),
            "unpriced_rows": t.unvalued,
        }

    return {
        "format": "reconcile-report/1",
        "currency": report.currency,
        "period": {
            "kind": p.kind.value,
            "start": p.start.isoformat(),
            "end": p.end.isoformat(),
            "as_of": p.as_of.isoformat(),
        },
        "zerotek_users": report.zerotek_users,
        "billed_quantity": report.billed_quantity,
        "totals": {
            **{k.value: totals(report.totals(k)) for k in Kind},
            "unbilled": optional_money(report.unbilled),
            "net": optional_money(report.net),
        },
        "rows": [
            {
                "kind": r.kind.value,
                "customer_id": r.customer_id,
                "customer_name": r.customer_name,
                "company": r.company,
                "agreement_id": r.agreement_id,
                "sku": r.sku,
                "product": r.product,
                "zerotek_users": r.zerotek_users,
                "billed_quantity": r.billed,
                "difference": r.quantity,
                "unit_price": optional_money(r.unit_price),
                "monthly_amount": optional_money(r.amount),
                "unit_cost": optional_money(r.unit_cost),
                "monthly_margin": optional_money(r.margin),
                "billed_price": optional_money(r.billed_price),
                "note": r.orphan,
            }
            for r in report.rows
        ],
        "errors": [{"customer_id": c, "error": e} for c, e in report.errors],
    }


def json_text(report: Report) -> str:
    return json_dumps(as_json(report), indent=2) + "\n"


def render(report: Report, fmt: str) -> str:
    if fmt == "markdown":
        return markdown(report)
    if fmt == "csv":
        return csv_text(report)
    if fmt == "json":
        return json_text(report)
    return text(report)
