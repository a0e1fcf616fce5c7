"""The agreement-ending e-mail: which mapped agreements end within the warning days of the
plan's as-of date (`agreements_ending`), and the e-mail that lists them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.core.plan import Plan
from reconciler.notify.mailbody import html_doc, html_table
from reconciler.plan.render import text_table
from reconciler.secure.untrusted import html as _e


@dataclass(frozen=True)
class EndingAgreement:
    agreement_id: int
    agreement_name: str
    company: str
    end_date: dt.date
    days_left: int
    customers: tuple[str, ...]  # "Name (id)"


def agreements_ending(plan: Plan, warning_days: int) -> list[EndingAgreement]:
    """Every mapped agreement, changed or not, ending 0..warning_days days after the as-of
    date (inclusive); one entry per agreement even when customers share it."""
    found: dict[int, EndingAgreement] = {}
    for cp in plan.customers:
        end, agreement_id = cp.agreement_end_date, cp.agreement_id
        if end is None or agreement_id is None:
            continue
        days = (end - plan.period.as_of).days
        if not 0 <= days <= warning_days:
            continue
        who = f"{cp.name} ({cp.customer_id})"
        prior = found.get(agreement_id)
        found[agreement_id] = EndingAgreement(
            agreement_id,
            cp.agreement_name or f"#{agreement_id}",
            cp.company,
            end,
            days,
            (*prior.customers, who) if prior else (who,),
        )
    return sorted(found.values(), key=lambda a: (a.end_date, a.company, a.agreement_id))


def ending_email(
    ending: Sequence[EndingAgreement], plan: Plan, warning_days: int, run_id: str
) -> tuple[str, str, str]:
    n = len(ending)
    subject = (
        f"[reconcile] {n} agreement{'s' if n != 1 else ''} "
        f"end{'s' if n == 1 else ''} within {warning_days} days"
    )
    intro = (
        f"These mapped ConnectWise agreements end within {warning_days} days of "
        f"{plan.period.as_of.isoformat()}:"
    )
    advice = (
        "Renew them in ConnectWise or map the customers to new agreements in "
        "mappings/customers.yaml; an expired agreement stops the sync for its customers."
    )
    header = ("Agreement", "Company", "Customers", "Ends", "Days left")
    rows = [
        (f"{a.agreement_name} (#{a.agreement_id})", a.company, ", ".join(a.customers),
         a.end_date.isoformat(), str(a.days_left))
        for a in ending
    ]  # fmt: skip
    text = [intro, "", *text_table([header, *rows]), "", advice, f"Run: {run_id}"]
    parts = [
        f"<p>{_e(intro)}</p>",
        html_table(header, rows),
        f"<p>{_e(advice)}<br>Run: {_e(run_id)}</p>",
    ]
    return subject, "\n".join(text) + "\n", html_doc(subject, parts)
