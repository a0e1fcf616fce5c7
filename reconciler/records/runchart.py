"""The chart at the top of runs/INDEX.md: billed seats and monthly revenue per period over
the last 12 runs, as Mermaid `xychart-beta` blocks (GitHub renders them; no image files).
Pure: the run log passes the points in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

LAST_RUNS = 12


@dataclass(frozen=True)
class Point:
    """What ConnectWise bills for the managed products after one run."""

    period_end: dt.date
    seats: int
    revenue: Decimal  # per month
    currency: str = "USD"


def _label(day: dt.date) -> str:
    return f"{day.day} {day.strftime('%b')} {day.year}"  # the period's last day


def _plain(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")  # chart scale only, not a figure


def points_per_period(points: Sequence[Point]) -> list[Point]:
    """Oldest first, one point per period (the latest run of a period wins), the last 12."""
    latest: dict[dt.date, Point] = {}
    for p in points[-LAST_RUNS:]:
        latest[p.period_end] = p
    return [latest[d] for d in sorted(latest)]


def index_chart(points: Sequence[Point]) -> str:
    """Two charts (seats; revenue in its currency), or "" with no points. `points` are in
    run order, oldest first."""
    series = points_per_period(points)
    if not series:
        return ""
    labels = ", ".join(f'"{_label(p.period_end)}"' for p in series)
    seats = [p.seats for p in series]
    revenue = [p.revenue for p in series]
    currency = "".join(ch for ch in series[-1].currency if ch.isalnum())[:8] or "USD"
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            '    title "Billed seats per period"',
            f"    x-axis [{labels}]",
            f'    y-axis "seats" 0 --> {max(max(seats), 1)}',
            f"    bar [{', '.join(str(s) for s in seats)}]",
            "```",
            "",
            "```mermaid",
            "xychart-beta",
            f'    title "Monthly revenue per period ({currency})"',
            f"    x-axis [{labels}]",
            f'    y-axis "{currency} per month" 0 --> {_plain(max(max(revenue), Decimal(1)))}',
            f"    line [{', '.join(_plain(r) for r in revenue)}]",
            "```",
        ]
    )
