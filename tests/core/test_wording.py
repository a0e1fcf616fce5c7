"""Dates, money and links as a billing person reads them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from reconciler.core.wording import amount, date_range, period_words, run_links

D = dt.date


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        (D(2026, 10, 16), D(2026, 11, 15), "16 Oct – 15 Nov 2026"),
        (D(2026, 11, 16), D(2026, 11, 24), "16 – 24 Nov 2026"),
        (D(2026, 12, 16), D(2027, 1, 15), "16 Dec 2026 – 15 Jan 2027"),
        (D(2026, 11, 16), D(2026, 11, 16), "16 Nov 2026"),
    ],
)
def test_date_ranges_read_like_a_calendar(start, end, words):
    assert date_range(start, end) == words


def test_periods_in_words():
    assert (
        period_words("last-billing-period", D(2026, 10, 16), D(2026, 11, 15))
        == "last billing period, 16 Oct – 15 Nov 2026"
    )
    assert period_words("current", D(2026, 11, 16), D(2026, 11, 24)) == (
        "current period to date, 16 – 24 Nov 2026"
    )


def test_amounts_carry_the_currency_and_every_decimal():
    assert amount(Decimal("1234.5"), "USD") == "1,234.50 USD"
    assert amount("6.125", "EUR") == "6.125 EUR"  # never rounded for display
    assert amount(Decimal("-14"), "USD", signed=True) == "-14.00 USD"
    assert amount(Decimal("8"), "GBP", signed=True) == "+8.00 GBP"
    assert amount(0, "USD", signed=True) == "0.00 USD"


ACTIONS = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.example",
    "GITHUB_REPOSITORY": "msp/billing",
    "GITHUB_SHA": "0123abcd",
    "GITHUB_REF_TYPE": "branch",
    "GITHUB_REF_NAME": "main",
    "GITHUB_RUN_ID": "42",
}


def test_run_links_in_actions_point_at_the_branch_the_log_is_committed_to():
    links = run_links("runs/2026/11/20261115T061700Z-scheduled.md", ACTIONS)
    assert links == {
        "run log": "https://github.example/msp/billing/blob/main/runs/2026/11/"
        "20261115T061700Z-scheduled.md",
        "workflow run": "https://github.example/msp/billing/actions/runs/42",
    }
    detached = {**ACTIONS, "GITHUB_REF_TYPE": "tag"}
    assert "/blob/0123abcd/runs/" in run_links("runs/x.md", detached)["run log"]
    assert run_links("runs/x.md", {}) == {}
