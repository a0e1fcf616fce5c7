"""When the scheduled sync should bill a period (`reconcile plan --if-due`, DESIGN 12.1).

The workflow runs every day at one fixed UTC time, which is a different local date in every
billing time zone (06:17 UTC is still yesterday in Los Angeles and already evening in
Kiritimati). So the workflow never decides *which* period to bill; this module does, from
the local date and the run log:

- P is the last billing period as of today in `billing.timezone`;
- P is due from its end date (the sync day) through 6 days after it — a day the runner
  skipped, a failed run or a DST shift that repeats or skips a local date is caught up on
  a later day of that week;
- and only while runs/ holds no `scheduled` run with outcome `success` for P's window — so
  the schedule never applies one period twice.

`decide` is pure; `scheduled_successes` is the one read of runs/.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from reconciler.core.files import read_json
from reconciler.core.model import PeriodKind
from reconciler.core.periods import Period, period_window

CATCH_UP_DAYS = 6  # due on the sync day and up to this many days after it
Window = tuple[dt.date, dt.date]  # (start, end) of a billing period, inclusive


@dataclass(frozen=True)
class Decision:
    due: bool
    period: Period
    reason: str  # one line: why it is (not) due


def decide(today: dt.date, sync_day: int, billed: Collection[Window]) -> Decision:
    """Whether the last billing period as of `today` is due; `billed` holds the windows
    that already have a successful scheduled run."""
    period = period_window(PeriodKind.LAST_BILLING_PERIOD, today, sync_day)
    window = f"{period.start.isoformat()}..{period.end.isoformat()}"
    late = (today - period.end).days
    if (period.start, period.end) in billed:
        return Decision(
            False,
            period,
            f"not due: period {window} already has a successful scheduled sync in runs/",
        )
    if late > CATCH_UP_DAYS:
        return Decision(
            False,
            period,
            f"not due: today is {today.isoformat()}, {late} days after the sync day "
            f"{period.end.isoformat()} (period {window}); the next period is due from "
            f"{_next_sync_day(period.end, sync_day).isoformat()}",
        )
    when = "the sync day" if late == 0 else f"{late} day{'s' if late != 1 else ''} after it"
    return Decision(
        True,
        period,
        f"due: period {window}, today {today.isoformat()} is {when}",
    )


def _next_sync_day(end: dt.date, sync_day: int) -> dt.date:
    year, month = (end.year + 1, 1) if end.month == 12 else (end.year, end.month + 1)
    return dt.date(year, month, sync_day)


def scheduled_successes(config_dir: Path) -> set[Window]:
    """Windows of the runs/ records with trigger `scheduled` and outcome `success`.

    Reads the run files (DESIGN 8 layout: runs/YYYY/MM/<id>.json) directly; an unreadable
    or foreign file simply does not count as a success, so it can only make a period due,
    never skip one."""
    found: set[Window] = set()
    for path in (config_dir / "runs").glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.json"):
        try:
            run = read_json(path)
            if run.get("trigger") != "scheduled" or run.get("outcome") != "success":
                continue
            period = run["period"]
            found.add(
                (dt.date.fromisoformat(period["start"]), dt.date.fromisoformat(period["end"]))
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue
    return found
