import datetime as dt

import pytest

from reconciler.core.model import PeriodKind, Settings
from reconciler.core.periods import period_for, period_window, today_in

D = dt.date
LAST = PeriodKind.LAST_BILLING_PERIOD
CUR = PeriodKind.CURRENT


@pytest.mark.parametrize(
    ("as_of", "start", "end"),
    [
        (D(2026, 11, 24), D(2026, 10, 16), D(2026, 11, 15)),  # DESIGN §5 examples
        (D(2026, 11, 15), D(2026, 10, 16), D(2026, 11, 15)),
        (D(2026, 11, 14), D(2026, 9, 16), D(2026, 10, 15)),
        (D(2026, 1, 10), D(2025, 11, 16), D(2025, 12, 15)),  # across the year end
        (D(2026, 1, 15), D(2025, 12, 16), D(2026, 1, 15)),
        (D(2026, 3, 1), D(2026, 1, 16), D(2026, 2, 15)),
    ],
)
def test_last_billing_period(as_of: dt.date, start: dt.date, end: dt.date) -> None:
    p = period_window(LAST, as_of, 15)
    assert (p.start, p.end, p.as_of, p.kind) == (start, end, as_of, LAST)


@pytest.mark.parametrize(
    ("as_of", "start", "end"),
    [
        (D(2026, 11, 24), D(2026, 11, 16), D(2026, 11, 24)),
        (D(2026, 11, 16), D(2026, 11, 16), D(2026, 11, 16)),
        (D(2026, 11, 15), D(2026, 10, 16), D(2026, 11, 15)),
        (D(2026, 11, 3), D(2026, 10, 16), D(2026, 11, 3)),
        (D(2027, 1, 2), D(2026, 12, 16), D(2027, 1, 2)),
    ],
)
def test_current(as_of: dt.date, start: dt.date, end: dt.date) -> None:
    p = period_window(CUR, as_of, 15)
    assert (p.start, p.end) == (start, end)


@pytest.mark.parametrize(
    ("sync_day", "as_of", "start", "end"),
    [
        (1, D(2026, 3, 1), D(2026, 2, 2), D(2026, 3, 1)),
        (1, D(2026, 3, 2), D(2026, 2, 2), D(2026, 3, 1)),
        (1, D(2026, 1, 1), D(2025, 12, 2), D(2026, 1, 1)),
        (28, D(2026, 3, 27), D(2026, 1, 29), D(2026, 2, 28)),  # Feb 28 ends a period
        (28, D(2026, 3, 1), D(2026, 1, 29), D(2026, 2, 28)),
        (28, D(2028, 3, 1), D(2028, 1, 29), D(2028, 2, 28)),  # leap year: 29th is in next
    ],
)
def test_sync_day_edges(sync_day: int, as_of: dt.date, start: dt.date, end: dt.date) -> None:
    p = period_window(LAST, as_of, sync_day)
    assert (p.start, p.end) == (start, end)
    # consecutive periods tile the calendar: the next one starts the day after
    nxt = period_window(LAST, end + dt.timedelta(days=40), sync_day)
    assert nxt.start == end + dt.timedelta(days=1) or nxt.start > end


def test_periods_tile_without_gaps_or_overlap() -> None:
    for sync_day in (1, 10, 15, 28):
        day, seen_end = D(2025, 1, 1), None
        while day < D(2027, 1, 1):
            p = period_window(LAST, day, sync_day)
            assert p.start <= p.end <= day
            if seen_end is not None and p.end != seen_end:
                assert p.start == seen_end + dt.timedelta(days=1)
            seen_end = p.end
            c = period_window(CUR, day, sync_day)
            assert c.end == day and c.start <= day
            assert (c.end - c.start).days < 31
            day += dt.timedelta(days=1)


def test_today_follows_the_billing_timezone() -> None:
    now = dt.datetime(2026, 11, 15, 23, 30, tzinfo=dt.UTC)
    assert today_in("UTC", now) == D(2026, 11, 15)
    assert today_in("Australia/Sydney", now) == D(2026, 11, 16)
    assert today_in("America/Los_Angeles", now) == D(2026, 11, 15)
    sydney = period_for(CUR, Settings(timezone="Australia/Sydney"), now=now)
    utc = period_for(CUR, Settings(timezone="UTC"), now=now)
    assert (sydney.start, sydney.end) == (D(2026, 11, 16), D(2026, 11, 16))
    assert (utc.start, utc.end) == (D(2026, 10, 16), D(2026, 11, 15))


def test_as_of_overrides_today() -> None:
    p = period_for("last-billing-period", Settings(), as_of=D(2026, 11, 24))
    assert str(p) == "last-billing-period 2026-10-16..2026-11-15"
