"""How runs read: the Markdown twin of a run, runs/INDEX.md (the Activity page), and the
`reconcile activity` text. Pure functions of the run records and summaries."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from reconciler.core import money as money_format
from reconciler.records import requestview
from reconciler.records.customers import ChangeRecord, CustomerRecord, Ok
from reconciler.records.record import RunRecord
from reconciler.records.runchart import LAST_RUNS, Point, index_chart
from reconciler.records.runindex import RunSummary
from reconciler.secure.untrusted import markdown as md
from reconciler.secure.untrusted import plain as t


def result_text(ok: Ok, outcome: str = "") -> str:
    """A change's result. In an `incomplete` record (the process died, or the disk refused
    the journal) a change without an outcome may have been written after the last entry
    that reached the disk: "NOT RECORDED", never "not applied" (DESIGN 13.5)."""
    if ok is None and outcome == "incomplete":
        return "NOT RECORDED"
    return {True: "done", False: "FAILED", None: "not applied", "unknown": "UNKNOWN"}.get(ok, "?")


def money(value: str | Decimal) -> str:
    """Signed, thousands-separated; two decimals unless the exact value needs more."""
    try:
        return _money(value)
    except TypeError:  # unhashable: not a figure at all (a hand-edited run file)
        return "?"


@functools.lru_cache(maxsize=1 << 12)
def _money(value: str | Decimal) -> str:
    # Cached: a 10,000-customer run formats ~50,000 figures per write, mostly repeats.
    try:
        return money_format.delta(Decimal(value))
    except (InvalidOperation, TypeError, ValueError):
        return "?"  # a hand-edited run file; never echo its text unescaped


def price(value: str | Decimal) -> str:
    return money(value).lstrip("+")


def when(stamp: str | None) -> str:
    return stamp.replace("T", " ").rstrip("Z") if stamp else "-"


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], align: str, rows: Sequence[Sequence[object]]) -> list[str]:
    seps = ["---:" if a == "r" else "---" for a in align]
    return [_row(header), _row(seps), *(_row(r) for r in rows), ""]


_STOPPED = {
    "incomplete": "The run never finished: the process stopped mid-apply, or the disk "
    "refused its journal. Writes shown done are certain; a change shown NOT RECORDED may or "
    "may not have been written. Run `reconcile plan` to see ConnectWise as it is; re-run to "
    "converge.",
    "interrupted": "The run was interrupted by a stop signal: no write started after it, "
    "and the writes already sent finished and are recorded below.",
}


def render_run(run: RunRecord) -> str:
    totals, period = run.totals, run.period
    out = [
        f"# Sync run {md(run.run_id)}",
        "",
        "[← Activity](../../INDEX.md)",
        "",
        f"- **Outcome:** {md(run.outcome)}",
        f"- **Trigger:** {md(run.trigger)}",
        f"- **Period:** {md(period)} (as of {period.as_of})",
        f"- **Started:** {when(run.started)} UTC",
        f"- **Finished:** {when(run.finished)}" + (" UTC" if run.finished else ""),
        f"- **Customers:** {totals.customers}, {totals.customers_changed} changed",
        f"- **Quantities updated:** {totals.quantities()}",
        f"- **Revenue delta:** {money(totals.revenue_delta)} {md(run.currency)} per month",
        f"- **Errors:** {totals.errors}",
        "",
    ]
    if totals.unknown:
        out.insert(-1, f"- **Writes with unknown outcome:** {totals.unknown}")
    if run.outcome in _STOPPED:
        out += [f"> {_STOPPED[run.outcome]}", ""]
    if run.error:
        out += [f"> **Error:** {md(run.error)}", ""]
    rows = [
        [
            md(c.name),
            md((ch.agreement or c.agreement).text()),  # the one written to (13.1)
            md(ch.action) + (f" — {md(ch.why)}" if ch.why else ""),  # as the plan shows it
            md(ch.sku),
            md(ch.product),
            f"{ch.before} → {ch.after}",
            ch.price_words(price),
            money(ch.revenue_delta),
            result_text(ch.ok, run.outcome) + (f": {md(ch.error)}" if ch.error else ""),
        ]
        for c in run.customers
        for ch in c.changes
    ]
    out += ["## Changes", ""]
    cur = md(run.currency)
    header = ["Customer", "Agreement", "Action", "SKU", "Product", "Quantity"]
    header += [f"Unit price ({cur})", f"Revenue delta ({cur}/month)", "Result"]
    out += _table(header, "llllllrrl", rows) if rows else ["No changes.", ""]
    errors = [f"- **{md(c.name)}** ({md(c.id)}): {md(e)}" for c in run.customers for e in c.errors]
    if errors:
        out += ["## Errors", "", *errors, ""]
    warnings = [f"- {md(w)}" for w in run.warnings] + [
        f"- **{md(c.name)}**: {md(w)}" for c in run.customers for w in c.warnings
    ]
    if warnings:
        out += ["## Warnings", "", *warnings, ""]
    out += ["## E-mails", ""]
    mails = [[md(e.kind), md(", ".join(e.to) or "-"), md(e.detail)] for e in run.emails]
    out += _table(["E-mail", "To", "Result"], "lll", mails) if mails else ["None recorded.", ""]
    out += requestview.markdown(run.requests)
    return "\n".join(out)


def render_index(runs: Sequence[RunSummary]) -> str:
    out = [
        "# Activity",
        "",
        "Sync runs, newest first. Generated by `reconcile` from the run files beside this page;",
        "edits here are overwritten.",
        "",
    ]
    if not runs:
        return "\n".join([*out, "No runs yet.", ""])
    chart = index_chart(_chart_points(runs))
    if chart:
        out[1:1] = ["", chart]
    header = ["When (UTC)", "Trigger", "Period", "Outcome", "Customers changed"]
    header += ["Quantities updated", "Revenue delta", "Errors", "Run"]
    rows = [_index_row(s) for s in runs]
    return "\n".join(out + _table(header, "llllrrrrl", rows))


def _count(value: object) -> str:
    return str(value) if type(value) is int else md(value)


def _chart_points(runs: Sequence[RunSummary]) -> list[Point]:
    """Billed seats and revenue after each of the last 12 runs that read them, oldest first
    (`runs` is newest first)."""
    points = []
    for s in runs[:LAST_RUNS]:
        if s.billed is None or s.period_end is None or s.outcome == "incomplete":
            continue
        try:  # a hand-edited summary or record may hold anything
            end = dt.date.fromisoformat(s.period_end)
        except (TypeError, ValueError):
            continue
        seats, revenue, currency = s.billed
        points.append(Point(end, seats, revenue, currency))
    return points[::-1]


def _index_row(s: RunSummary) -> list[object]:
    # Run files live in git: a hand-edited one may hold anything, so every field is data.
    link = f"[{md(s.run_id)}]({quote(s.md_link)})"
    if s.outcome == "unreadable":
        return ["?", "?", "?", "unreadable", "", "", "", "", md(s.path.name)]
    # Only a killed run's figures are in doubt (its in-flight writes were never settled).
    unknown = s.outcome == "incomplete"
    outcome = md(s.outcome)
    return [
        md(when(s.started)),
        md(s.trigger),
        md(s.period),
        f"**{outcome}**" if s.outcome != "success" else outcome,
        "?" if unknown else _count(s.customers_changed),
        "?" if unknown else _count(s.quantities_updated),
        "?" if unknown else money(s.revenue_delta),
        _count(s.errors),
        link,
    ]


# --- terminal ------------------------------------------------------------------------------


def render_runs_text(runs: Sequence[RunSummary]) -> str:
    header = [
        "WHEN (UTC)",
        "TRIGGER",
        "PERIOD",
        "OUTCOME",
        "CHANGED",
        "QTY",
        "REVENUE",
        "ERRORS",
        "RUN",
    ]
    rows: list[Sequence[str]] = [
        header,
        *(
            [
                t(cell)
                for cell in (
                    when(s.started),
                    s.trigger,
                    s.period,
                    s.outcome,
                    *(
                        ("?", "?", "?")
                        if s.outcome == "incomplete"
                        else (s.customers_changed, s.quantities_updated, money(s.revenue_delta))
                    ),
                    s.errors,
                    s.run_id,
                )
            ]
            for s in runs
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    numeric = {4, 5, 6, 7}
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def _customer_text(c: CustomerRecord, run: RunRecord) -> list[str]:
    """A customer under its agreement: its changes, errors and warnings; then the changes
    it wrote to another agreement (an orphan where it moved away from), under that one."""
    end = c.agreement.end_date
    who = t(c.id) if c.name == c.id else f"{t(c.name)} ({t(c.id)})"  # a removed customer
    company = f" company {t(c.company)}," if c.company else ","
    out = [f"\n{who}{company} agreement {t(c.agreement.text())}" + (f", ends {end}" if end else "")]
    out += [_change_text(ch, run) for ch in c.changes if ch.agreement is None]
    out += [f"  error: {t(e)}" for e in c.errors]
    out += [f"  warning: {t(w)}" for w in c.warnings]
    for where in c.elsewhere():
        # the agreement it left, maybe another company's: not shown beside the customer's
        out.append(f"\n{who}, former agreement {t(where.agreement.text())}")
        out += [_change_text(ch, run) for ch in where.changes]
    return out


def _change_text(ch: ChangeRecord, run: RunRecord) -> str:
    result = result_text(ch.ok, run.outcome) + (f": {t(ch.error)}" if ch.error else "")
    note = f" ({t(ch.note)})" if ch.note else ""
    why = f" — {t(ch.why)}" if ch.why else ""  # an orphan's reason, "no charge"
    return (
        f"  {t(ch.action):<6} {t(ch.sku)} [{t(ch.product)}] {ch.before} → "
        f"{ch.after} @ {ch.price_words(price)} = {money(ch.revenue_delta)} "
        f"{t(run.currency)}{why}"
        f"  {result}{note}"
    )


def render_run_text(run: RunRecord) -> str:
    totals, period = run.totals, run.period
    out = [
        f"Run {t(run.run_id)}",
        f"  outcome:    {t(run.outcome)}",
        f"  trigger:    {t(run.trigger)}",
        f"  period:     {t(period)} (as of {period.as_of})",
        f"  started:    {when(run.started)} UTC",
        f"  finished:   {when(run.finished)}" + (" UTC" if run.finished else ""),
        f"  customers:  {totals.customers}, {totals.customers_changed} changed",
        f"  quantities: {totals.quantities()}",
        f"  revenue:    {money(totals.revenue_delta)} {t(run.currency)} per month",
        f"  errors:     {totals.errors}",
    ]
    if totals.unknown:
        out.append(f"  unknown:    {totals.unknown} write(s) whose outcome could not be settled")
    if run.outcome in _STOPPED:
        out.append(f"  ({_STOPPED[run.outcome]})")
    if run.error:
        out.append(f"  error:      {t(run.error)}")
    for c in run.customers:
        if c.changes or c.errors or c.warnings:
            out += _customer_text(c, run)
    if run.warnings:
        out += ["", *(f"warning: {t(w)}" for w in run.warnings)]
    if run.emails:
        out.append("")
        out += [
            f"e-mail {t(e.kind)} to {t(', '.join(e.to) or '-')}: {t(e.detail)}" for e in run.emails
        ]
    requests = requestview.text_lines(run.requests)
    if requests:
        out += ["", "requests:", *(f"  {line}" for line in requests)]
    return "\n".join(out)
