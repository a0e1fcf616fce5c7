"""`reconcile plan --if-due` (DESIGN 12.1): the daily schedule bills the right period in every
time zone, catches a missed day up within the week, and never applies one period twice.

Clocks are faked with time-machine (the CLI reads the real clock); ConnectWise and ZeroTek
are the sandbox on loopback.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
import world_edits
from clirun import run
from conftest import set_setting

from reconciler.core.schedule import CATCH_UP_DAYS, decide, scheduled_successes

UTC = dt.UTC
D = dt.date


def at(moment: dt.datetime) -> time_machine.travel:
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def sandbox(sandbox):
    """The example data, with no agreement ending: these tests travel into 2027."""
    for agreement in list(sandbox.agreements):
        world_edits.update_agreement(sandbox, agreement, endDate=None, noEndingDateFlag=True)
    return sandbox


def plan_if_due(config_dir: Path, out: Path):
    return run(config_dir, "plan", "--if-due", "--out", str(out), "--format", "json")


# --- the pure decision ---------------------------------------------------------------------


def test_due_from_the_sync_day_through_six_days_after():
    for late in range(-3, 12):
        today = D(2026, 11, 15) + dt.timedelta(days=late)
        decision = decide(today, 15, set())
        assert decision.due is (0 <= late <= CATCH_UP_DAYS), today
        if 0 <= late <= CATCH_UP_DAYS:
            assert (decision.period.start, decision.period.end) == (
                D(2026, 10, 16),
                D(2026, 11, 15),
            )


def test_a_period_with_a_scheduled_success_is_never_due_again():
    billed = {(D(2026, 10, 16), D(2026, 11, 15))}
    for late in range(CATCH_UP_DAYS + 1):
        decision = decide(D(2026, 11, 15) + dt.timedelta(days=late), 15, billed)
        assert not decision.due
        assert "already has a successful scheduled sync" in decision.reason
    # the next period is unaffected
    assert decide(D(2026, 12, 15), 15, billed).due


@pytest.mark.parametrize("sync_day", [1, 2, 14, 15, 27, 28])
def test_every_period_gets_exactly_seven_due_days(sync_day):
    due: dict[tuple[D, D], int] = {}
    day = D(2026, 1, 1)
    while day < D(2028, 1, 1):
        decision = decide(day, sync_day, set())
        if decision.due:
            window = (decision.period.start, decision.period.end)
            due[window] = due.get(window, 0) + 1
            assert decision.period.end.day == sync_day
        day += dt.timedelta(days=1)
    inside = {w: n for w, n in due.items() if D(2026, 1, 1) <= w[1] < D(2027, 12, 1)}
    assert set(inside.values()) == {CATCH_UP_DAYS + 1}
    assert len(inside) == 23  # one per month, none skipped


def _write_run(config_dir: Path, name: str, trigger: str, outcome: str, start: str, end: str):
    path = config_dir / "runs" / "2026" / "11" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    period = {"kind": "last-billing-period", "start": start, "end": end, "as_of": end}
    body = {"trigger": trigger, "outcome": outcome, "period": period}
    path.write_text(json.dumps(body), encoding="utf-8")


def test_only_scheduled_successes_count(tmp_path):
    _write_run(
        tmp_path, "20261115T061700Z-scheduled", "scheduled", "failed", "2026-10-16", "2026-11-15"
    )
    _write_run(
        tmp_path, "20261115T071700Z-scheduled", "scheduled", "partial", "2026-10-16", "2026-11-15"
    )
    _write_run(tmp_path, "20261115T081700Z-manual", "manual", "success", "2026-10-16", "2026-11-15")
    _write_run(
        tmp_path, "20261015T061700Z-scheduled", "scheduled", "success", "2026-09-16", "2026-10-15"
    )
    (tmp_path / "runs" / "2026" / "11" / "20261116T000000Z-scheduled.json").write_text("{not json")
    assert scheduled_successes(tmp_path) == {(D(2026, 9, 16), D(2026, 10, 15))}
    # failed, partial and manual runs leave the period due: the next day retries it
    assert decide(D(2026, 11, 16), 15, scheduled_successes(tmp_path)).due


# --- the CLI at faked clocks, per time zone --------------------------------------------------

ZONES = [
    # zone, sync_day, UTC moment of a daily run, due?, the period planned (or None)
    # 06:17 UTC on the 15th is still the 14th in Los Angeles: not due (the old cron billed
    # Sep 16..Oct 15 here); the next day's run is the 15th there and bills Oct 16..Nov 15.
    ("America/Los_Angeles", 15, dt.datetime(2026, 11, 15, 6, 17, tzinfo=UTC), None),
    (
        "America/Los_Angeles",
        15,
        dt.datetime(2026, 11, 16, 6, 17, tzinfo=UTC),
        ("2026-10-16", "2026-11-15"),
    ),
    (
        "America/Los_Angeles",
        15,
        dt.datetime(2026, 7, 16, 6, 17, tzinfo=UTC),
        ("2026-06-16", "2026-07-15"),
    ),
    # UTC+14: 10:30 UTC on the 14th is already 00:30 on the 15th in Kiritimati.
    ("Pacific/Kiritimati", 15, dt.datetime(2026, 11, 14, 6, 17, tzinfo=UTC), None),
    (
        "Pacific/Kiritimati",
        15,
        dt.datetime(2026, 11, 14, 10, 30, tzinfo=UTC),
        ("2026-10-16", "2026-11-15"),
    ),
    # UTC-11: 06:17 UTC on the 16th is 19:17 on the 15th in Pago Pago.
    ("Pacific/Pago_Pago", 15, dt.datetime(2026, 11, 15, 6, 17, tzinfo=UTC), None),
    (
        "Pacific/Pago_Pago",
        15,
        dt.datetime(2026, 11, 16, 6, 17, tzinfo=UTC),
        ("2026-10-16", "2026-11-15"),
    ),
    (
        "Pacific/Pago_Pago",
        15,
        dt.datetime(2026, 11, 22, 10, 59, tzinfo=UTC),
        ("2026-10-16", "2026-11-15"),
    ),
    ("Pacific/Pago_Pago", 15, dt.datetime(2026, 11, 22, 11, 0, tzinfo=UTC), None),  # local 23rd
    # Berlin, sync_day 1, across New Year: 23:30 UTC on Dec 31 is 00:30 on Jan 1 in Berlin.
    ("Europe/Berlin", 1, dt.datetime(2026, 12, 31, 22, 59, tzinfo=UTC), None),
    (
        "Europe/Berlin",
        1,
        dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
        ("2026-12-02", "2027-01-01"),
    ),
    ("Europe/Berlin", 1, dt.datetime(2027, 1, 7, 6, 17, tzinfo=UTC), ("2026-12-02", "2027-01-01")),
    ("Europe/Berlin", 1, dt.datetime(2027, 1, 7, 23, 0, tzinfo=UTC), None),  # local Jan 8
]


@pytest.mark.parametrize(("zone", "sync_day", "now", "window"), ZONES)
def test_plan_if_due_in_each_zone(sandbox, config_dir, tmp_path, zone, sync_day, now, window):
    set_setting(config_dir, "timezone", zone)
    set_setting(config_dir, "sync_day", str(sync_day))
    out = tmp_path / "plan.json"
    out.write_text("a leftover plan from an earlier run\n")
    with at(now):
        result = plan_if_due(config_dir, out)
    assert result.exit_code == 0, result.output
    if window is None:
        assert not out.exists()
        assert result.stdout.startswith("not due: ") and result.stdout.count("\n") == 1
        assert sandbox.stats.total == 0
        return
    plan = json.loads(out.read_text(encoding="utf-8"))
    assert plan["period"]["kind"] == "last-billing-period"
    assert (plan["period"]["start"], plan["period"]["end"]) == window
    assert json.loads(result.stdout)["period"] == plan["period"]


def test_if_due_refuses_the_current_period(config_dir, tmp_path):
    result = run(
        config_dir, "plan", "--if-due", "--period", "current", "--out", str(tmp_path / "p")
    )
    assert result.exit_code == 1 and "--if-due" in result.output


def _daily(config_dir: Path, tmp_path: Path, days: list[dt.datetime], monkeypatch) -> list[str]:
    """The sync workflow's two steps each day: `plan --if-due --out`, then `apply FILE` as a
    scheduled run only when the plan file was written. Returns the windows applied."""
    monkeypatch.setenv("GITHUB_EVENT_NAME", "schedule")
    applied = []
    for now in days:
        out = tmp_path / "plan.json"
        out.unlink(missing_ok=True)
        with at(now):
            planned = plan_if_due(config_dir, out)
            assert planned.exit_code == 0, planned.output
            if out.exists():
                result = run(config_dir, "apply", str(out), "--yes", "--no-email")
                assert result.exit_code == 0, result.output
                period = json.loads(out.read_text())["period"]
                applied.append(f"{now.date()}: {period['start']}..{period['end']}")
    return applied


def test_new_york_across_the_march_dst_change_applies_once(
    sandbox, config_dir, tmp_path, monkeypatch
):
    # 2027-03-14 is the DST change in New York and the sync day: 06:17 UTC is 01:17 EST
    # before it and 02:17 EDT after it; the run of the 14th bills the period exactly once.
    set_setting(config_dir, "timezone", "America/New_York")
    set_setting(config_dir, "sync_day", "14")
    days = [dt.datetime(2027, 3, d, 6, 17, tzinfo=UTC) for d in range(10, 26)]
    applied = _daily(config_dir, tmp_path, days, monkeypatch)
    assert applied == ["2027-03-14: 2027-02-15..2027-03-14"]
    runs = sorted((config_dir / "runs").rglob("*.json"))
    assert len(runs) == 1 and runs[0].name.endswith("-scheduled.json")
    record = json.loads(runs[0].read_text())
    assert record["trigger"] == "scheduled" and record["outcome"] == "success"


def test_a_local_date_skipped_by_dst_is_caught_up_the_next_day(
    sandbox, config_dir, tmp_path, monkeypatch
):
    # At 05:30 UTC Chicago is 23:30 CST the day before, then 00:30 CDT once DST starts: the
    # daily run never sees local 2027-03-14 (the sync day). The 15th catches it up.
    set_setting(config_dir, "timezone", "America/Chicago")
    set_setting(config_dir, "sync_day", "14")
    days = [dt.datetime(2027, 3, d, 5, 30, tzinfo=UTC) for d in range(12, 20)]
    seen = [d.astimezone(ZoneInfo("America/Chicago")).date() for d in days]
    assert D(2027, 3, 14) not in seen
    assert _daily(config_dir, tmp_path, days, monkeypatch) == ["2027-03-15: 2027-02-15..2027-03-14"]


def test_a_missed_week_is_caught_up_on_its_last_day_only(
    sandbox, config_dir, tmp_path, monkeypatch
):
    # The runner skipped the 15th..20th (outage): the 21st (6 days late) still bills it; had
    # it also missed the 21st, the 22nd would not (the next sync picks the usage up).
    days = [dt.datetime(2026, 11, 21, 6, 17, tzinfo=UTC)]
    assert _daily(config_dir, tmp_path, days, monkeypatch) == ["2026-11-21: 2026-10-16..2026-11-15"]
    with at(dt.datetime(2026, 12, 22, 6, 17, tzinfo=UTC)):
        late = plan_if_due(config_dir, tmp_path / "late.json")
    assert late.exit_code == 0 and not (tmp_path / "late.json").exists()
    assert "7 days after the sync day 2026-12-15" in late.stdout


def test_a_failed_scheduled_run_is_retried_the_next_day(sandbox, config_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_EVENT_NAME", "schedule")
    out = tmp_path / "plan.json"
    with at(dt.datetime(2026, 11, 15, 6, 17, tzinfo=UTC)):
        assert plan_if_due(config_dir, out).exit_code == 0 and out.exists()
        sandbox.configure_faults(error_500=1.0, retry_after=0)  # ConnectWise down all morning
        failed = run(config_dir, "apply", str(out), "--yes", "--no-email")
        assert failed.exit_code == 1
        sandbox.configure_faults()
    (record,) = (config_dir / "runs").rglob("*.json")
    assert json.loads(record.read_text())["outcome"] == "failed"
    assert _daily(
        config_dir, tmp_path, [dt.datetime(2026, 11, 16, 6, 17, tzinfo=UTC)], monkeypatch
    ) == ["2026-11-16: 2026-10-16..2026-11-15"]
