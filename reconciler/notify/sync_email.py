"""The sync-outcome e-mail, rendered from the finished run record: the headline, the
figures the journal recorded as committed, the changes under their headings, errors,
warnings, and where to read the run."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from reconciler.core.wording import amount, period_words, run_links
from reconciler.notify.mailbody import REPORT_HINT, MailBody, html_doc
from reconciler.records.customers import ChangeRecord, CustomerRecord
from reconciler.records.record import RunRecord
from reconciler.secure.untrusted import html as _e


def _headline(run: RunRecord) -> str:
    failed = sum(1 for c in run.customers if not c.ok)
    written = run.totals.writes
    return {
        "success": "Sync succeeded",
        "partial": f"Sync failed for {failed} of {len(run.customers)} customers",
        "failed": "Sync failed",
        "interrupted": f"Sync interrupted ({run.interrupted_by}) after {written} "
        f"write{'s' if written != 1 else ''}",
        "incomplete": "Sync did not finish",
    }.get(run.outcome, f"Sync {run.outcome}")


_SECTIONS = (
    ("add", "Added", "new additions"),
    ("update", "Quantities updated", "additions whose quantity changed"),
    ("remove", "Removed", "additions removed"),
)
_CHANGE_HEADER = (
    "Customer",
    "Company",
    "Agreement",
    "SKU",
    "Quantity",
    "Unit price",
    "Revenue delta per month",
)


def _period_words(run: RunRecord) -> str:
    p = run.period
    return period_words(p.kind, dt.date.fromisoformat(p.start), dt.date.fromisoformat(p.end))


def run_md_path(run_id: str) -> str:
    """runs/YYYY/MM/<run id>.md, the run's Markdown twin (as runlog writes it)."""
    return f"runs/{run_id[:4]}/{run_id[4:6]}/{run_id}.md"


def sync_email(
    run: RunRecord, currency: str = "USD", environ: Mapping[str, str] | None = None
) -> tuple[str, str, str]:
    """The sync-outcome e-mail, from the run record: the figures it states are the ones
    the journal recorded as committed, so an interrupted or failed run says exactly what
    was written. Written for a billing person: the period in words, the currency on every
    figure, additions / quantity updates / removals under their own headings, warnings,
    refused changes, and a link to the run in the repository when run in Actions."""
    headline = _headline(run)
    when = _period_words(run)
    subject = f"[reconcile] {headline}: {when}"
    summary = _sync_summary(run, headline, when, currency)
    body = MailBody(text=[*summary, ""])
    body.parts.append(f"<p><strong>{_e(summary[0])}</strong><br>{_e(summary[1])}</p>")
    body.parts.append("<p>" + "<br>\n".join(_e(line) for line in summary[3:]) + "</p>")
    _add_changes(body, run, currency)
    body.notes("Errors", "Error", _sync_errors(run))
    body.notes("Warnings", "Warning", _sync_warnings(run))
    _add_links(body, run.run_id, os.environ if environ is None else environ)
    body.text.append(REPORT_HINT)
    body.parts.append(f"<p>{_e(REPORT_HINT)}</p>")
    return subject, body.plain_text(), html_doc(subject, body.parts)


def _sync_summary(run: RunRecord, headline: str, when: str, currency: str) -> list[str]:
    """The headline, the run id, a blank line, then the figures (committed changes only)."""
    totals = run.totals
    licences = {
        action: sum(ch.after - ch.before for c in run.customers for ch in c.changes
                    if ch.committed and ch.action == action)
        for action, _, _ in _SECTIONS
    }  # fmt: skip
    summary = [
        f"{headline}: {when} (as of {run.period.as_of})",
        f"Run: {run.run_id}",
        "",
        f"Customers: {totals.customers}, {totals.customers_changed} changed",
        f"Added: {totals.adds} additions ({licences['add']:+d} licences)",
        f"Quantities updated: {totals.updates} additions ({licences['update']:+d} licences)",
        f"Removed: {totals.removes} additions ({licences['remove']:+d} licences)",
        f"Revenue delta: {amount(totals.revenue_delta, currency, signed=True)} per month",
        f"Errors: {totals.errors}",
    ]
    repriced = [ch for c in run.customers for ch in c.changes if ch.committed and ch.price_change]
    if repriced:  # DESIGN 13.4: counted among the updates above, named here
        summary.insert(-2, f"Prices changed: {len(repriced)} of the updated additions")
    if totals.unknown:
        summary.append(f"Writes with unknown outcome: {totals.unknown} (check ConnectWise)")
    return summary


def _change_row(c: CustomerRecord, ch: ChangeRecord, currency: str) -> tuple[str, ...]:
    money = amount(ch.revenue_delta, currency, signed=True)
    sku = f"{ch.sku} ({ch.why})" if ch.why else ch.sku
    price = ch.price_words(lambda p: amount(p, currency))
    if ch.agreement is None:
        company, where = c.company, c.agreement.text()
    else:  # the agreement the customer left (13.1), maybe another company's: not beside it
        company, where = "", f"former {ch.agreement.text()}"
    return (c.name, company, where, sku, f"{ch.before} → {ch.after}",
            price, money)  # fmt: skip


def _add_changes(body: MailBody, run: RunRecord, currency: str) -> None:
    """The committed changes under their section's title (or that there were none), then
    the refused ones."""
    done = {
        action: [_change_row(c, ch, currency) for c in run.customers for ch in c.changes
                 if ch.committed and ch.action == action]
        for action, _, _ in _SECTIONS
    }  # fmt: skip
    for action, title, _ in _SECTIONS:
        if done[action]:
            body.table(title, _CHANGE_HEADER, done[action])
    if not any(done.values()):
        nothing = "Nothing was written to ConnectWise by this attempt."
        body.text += [nothing, ""]
        body.parts.append(f"<p>{_e(nothing)}</p>")
    # Never attempted although planned: the whole plan when it was refused (unsafe, stale).
    if run.outcome == "failed" and run.error:
        refused = [
            _change_row(c, ch, currency) for c in run.customers for ch in c.changes if ch.ok is None
        ]
        if refused:
            body.table("Refused changes (planned, not applied)", _CHANGE_HEADER, refused)


def _sync_errors(run: RunRecord) -> list[tuple[str, str]]:
    """(whose, error): the run's own first, then each customer's, then its failed writes'."""
    errors = [(c.name, e) for c in run.customers for e in c.errors]
    errors += [
        (c.name, f"{ch.action} {ch.sku} {ch.before} → {ch.after}: {ch.error}")
        for c in run.customers
        for ch in c.changes
        if ch.ok in (False, "unknown") and ch.error not in c.errors
    ]
    if run.error:
        errors.insert(0, ("(the whole run)", run.error))
    return errors


def _sync_warnings(run: RunRecord) -> list[tuple[str, str]]:
    warnings = [("(the plan)", w) for w in run.warnings]
    return warnings + [(c.name, w) for c in run.customers for w in c.warnings]


def _add_links(body: MailBody, run_id: str, environ: Mapping[str, str]) -> None:
    """Where to read the run: its links in the repository when run in Actions, else the
    command that shows it."""
    links = run_links(run_md_path(run_id), environ)
    if links:
        body.text += [f"{name.capitalize()}: {url}" for name, url in links.items()]
        body.parts.append(
            "<p>"
            + "<br>\n".join(
                f'{_e(name.capitalize())}: <a href="{_e(url)}">{_e(url)}</a>'
                for name, url in links.items()
            )
            + "</p>"
        )
    else:
        body.text.append(
            f"Details: `reconcile activity {run_id}` (runs/INDEX.md in the repository)"
        )
        body.parts.append(
            f"<p>Details: <code>reconcile activity {_e(run_id)}</code> "
            "(runs/INDEX.md in the repository)</p>"
        )
