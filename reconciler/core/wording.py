"""Figures and dates as a billing person reads them. Pure.

"last billing period, 16 Oct – 15 Nov 2026" rather than `last-billing-period
2026-10-16..2026-11-15`; "1,234.50 USD" with the currency on every figure, all its
decimals (DESIGN 12.2: never rounded for display, at least two); links to the run log in
the repository when running in GitHub Actions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import quote

from reconciler.core.money import display

PERIOD_NAMES = {
    "last-billing-period": "last billing period",
    "current": "current period to date",
}


def _day(d: dt.date, *, month: bool = True, year: bool = True) -> str:
    text = str(d.day)
    if month:
        text += f" {d.strftime('%b')}"
    if year:
        text += f" {d.year}"
    return text


def date_range(start: dt.date, end: dt.date) -> str:
    """16 – 24 Nov 2026, 16 Oct – 15 Nov 2026, 16 Dec 2026 – 15 Jan 2027, 5 Nov 2026."""
    if start == end:
        return _day(end)
    if start.year != end.year:
        return f"{_day(start)} – {_day(end)}"
    if start.month != end.month:
        return f"{_day(start, year=False)} – {_day(end)}"
    return f"{_day(start, month=False, year=False)} – {_day(end)}"


def period_words(kind: str, start: dt.date, end: dt.date) -> str:
    """ "last billing period, 16 Oct – 15 Nov 2026"."""
    return f"{PERIOD_NAMES.get(kind, kind)}, {date_range(start, end)}"


def amount(value: Decimal | str | int, currency: str, *, signed: bool = False) -> str:
    """ "1,234.50 USD"; signed: "+8.00 USD" / "-14.00 USD" (a delta). Exact (money.py)."""
    return display(Decimal(value), signed=signed, currency=currency)


def run_links(run_path: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Links to a run from an e-mail, when running in GitHub Actions: the run log in the
    repository, and the workflow run.

    The log is committed back after the run, on the branch the workflow ran on - the
    commit GITHUB_SHA names predates it - so the link names the branch (GITHUB_REF_NAME),
    falling back to GITHUB_SHA outside a branch."""
    server = environ.get("GITHUB_SERVER_URL", "").rstrip("/")
    repo = environ.get("GITHUB_REPOSITORY", "")
    if environ.get("GITHUB_ACTIONS") != "true" or not server or not repo:
        return {}
    links: dict[str, str] = {}
    ref = environ.get("GITHUB_REF_NAME") if environ.get("GITHUB_REF_TYPE") == "branch" else None
    ref = ref or environ.get("GITHUB_SHA")
    if ref:
        links["run log"] = f"{server}/{repo}/blob/{quote(ref, safe='/')}/{quote(run_path)}"
    run_id = environ.get("GITHUB_RUN_ID", "")
    if run_id.isdigit():
        links["workflow run"] = f"{server}/{repo}/actions/runs/{run_id}"
    return links
