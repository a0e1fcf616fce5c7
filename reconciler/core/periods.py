"""Billing windows (pure): the `Period` a plan, its usage and its run are for, and how it
is found from the settings and a day.

A billing period runs from the day after `sync_day` of one month through `sync_day` of the
next (default 16th -> 15th). `sync_day` is capped at 28 by the schema, so every month has it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from reconciler.core.model import Settings
from reconciler.core.vocabulary import PeriodKind


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    start: dt.date
    end: dt.date  # inclusive
    as_of: dt.date

    def __str__(self) -> str:
        return f"{self.kind.value} {self.start.isoformat()}..{self.end.isoformat()}"


def today_in(timezone: str, now: dt.datetime | None = None) -> dt.date:
    """Today's date where the MSP bills: at 23:30 UTC it is already tomorrow in Sydney."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(ZoneInfo(timezone)).date()


def _month_before(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def period_end_on_or_before(day: dt.date, sync_day: int) -> dt.date:
    """The latest sync date (end of a complete period) that is not after `day`."""
    if day.day >= sync_day:
        return day.replace(day=sync_day)
    year, month = _month_before(day.year, day.month)
    return dt.date(year, month, sync_day)


def period_window(kind: PeriodKind, as_of: dt.date, sync_day: int = 15) -> Period:
    last_end = period_end_on_or_before(as_of, sync_day)
    if kind is PeriodKind.LAST_BILLING_PERIOD:
        year, month = _month_before(last_end.year, last_end.month)
        start = dt.date(year, month, sync_day) + dt.timedelta(days=1)
        return Period(kind, start, last_end, as_of)
    if as_of == last_end:
        # On the sync day itself "usage since the last sync" is just that day's period tail:
        # the period containing the sync day started the day after the previous sync.
        year, month = _month_before(last_end.year, last_end.month)
        start = dt.date(year, month, sync_day) + dt.timedelta(days=1)
    else:
        start = last_end + dt.timedelta(days=1)
    return Period(kind, start, as_of, as_of)


def period_for(
    kind: PeriodKind | str,
    settings: Settings,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Period:
    """The window for `kind`, as of `as_of` (default: today in the billing time zone)."""
    day = as_of or today_in(settings.timezone, now)
    return period_window(PeriodKind(kind), day, settings.sync_day)
