"""The runs/INDEX.md chart: one point per period, the last 12 runs, Mermaid xychart-beta."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from reconciler.records.runchart import Point, index_chart, points_per_period


def _p(month: int, seats: int, revenue: str, year: int = 2026) -> Point:
    return Point(dt.date(year, month, 15), seats, Decimal(revenue), "EUR")


def test_one_point_per_period_latest_run_wins_last_twelve_runs():
    runs = [_p(m, 100 + m, f"{m}00") for m in range(1, 13)]
    runs += [_p(12, 999, "1.5"), _p(1, 7, "70", 2027)]  # a re-run of Dec, then Jan 2027
    series = points_per_period(runs)
    assert [p.period_end for p in series] == [dt.date(2026, m, 15) for m in range(3, 13)] + [
        dt.date(2027, 1, 15)
    ]
    assert series[-2].seats == 999


def test_chart_is_two_mermaid_xycharts():
    chart = index_chart([_p(10, 180, "700.5"), _p(11, 189, "731.25")])
    blocks = chart.split("```mermaid\n")[1:]
    assert len(blocks) == 2 and all(b.startswith("xychart-beta") for b in blocks)
    assert 'x-axis ["15 Oct 2026", "15 Nov 2026"]' in blocks[0]
    assert "bar [180, 189]" in blocks[0]
    assert "line [700.50, 731.25]" in blocks[1]
    assert "(EUR)" in blocks[1]
    assert index_chart([]) == ""
