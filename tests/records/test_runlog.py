"""runs/: run records, their Markdown twins, INDEX.md, atomic writes."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from markdown_it import MarkdownIt
from runlog_samples import (
    ACME,
    ACME_ADD,
    ACME_UPDATE,
    BETA_ERROR,
    BETA_REMOVE,
    FINISHED,
    PERIOD,
    STARTED,
    failed_result,
    partial_result,
    plan,
    success_result,
)

from reconciler.core.errors import ReconcileError
from reconciler.core.plan import CustomerPlan
from reconciler.records import activity, journal, runfiles, runlog
from reconciler.records.record import EmailOutcome

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas/run.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
RUN_ID = "20261124T101500Z-manual"


def run_files(config_dir: Path) -> list[Path]:
    return sorted((config_dir / "runs").rglob("*.json"))


def validate_all(config_dir: Path) -> list[dict[str, object]]:
    runs = []
    for path in run_files(config_dir):
        record = json.loads(path.read_text())
        errors = [e.message for e in VALIDATOR.iter_errors(record)]
        assert errors == [], f"{path}: {errors}"
        runs.append(record)
    return runs


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize(
    ("explicit", "event", "expected"),
    [
        (None, "schedule", "scheduled"),
        (None, "workflow_dispatch", "manual"),
        (None, None, "manual"),
        ("manual", "schedule", "manual"),
        ("scheduled", None, "scheduled"),
    ],
)
def test_detect_trigger(explicit: str | None, event: str | None, expected: str) -> None:
    env = {"GITHUB_EVENT_NAME": event} if event else {}
    assert runfiles.detect_trigger(explicit, env) == expected


def test_detect_trigger_rejects_unknown() -> None:
    with pytest.raises(ReconcileError, match="--trigger must be one of scheduled, manual"):
        runfiles.detect_trigger("cron", {})


def test_start_run_records_incomplete_before_anything_is_applied(tmp_path: Path) -> None:
    result = success_result()
    handle = runlog.start_run(tmp_path, result.plan, trigger="manual", started=STARTED)

    assert handle.run_id == RUN_ID
    assert handle.path == tmp_path / "runs/2026/11" / f"{RUN_ID}.json"
    (record,) = validate_all(tmp_path)
    assert record["outcome"] == "incomplete"
    assert record["finished"] is None
    assert record["started"] == "2026-11-24T10:15:00Z"
    changes = record["customers"][0]["changes"]
    assert [(c["sku"], c["before"], c["after"], c["ok"]) for c in changes] == [
        ("OKTA-SSO", 40, 42, None),
        ("OKTA-MFA", 0, 10, None),
    ]
    assert record["totals"]["adds"] == 0  # nothing is known to be written yet
    assert "incomplete" in handle.md_path.read_text()
    index = (tmp_path / "runs/INDEX.md").read_text()
    assert "| **incomplete** | ? | ? | ? |" in index


def test_finish_success_record(tmp_path: Path) -> None:
    result = success_result()
    handle = runlog.start_run(tmp_path, result.plan, trigger="scheduled", started=STARTED)
    mails = [EmailOutcome("sync-outcome", ("ops@msp.example",), False, "not sent: --no-email")]
    handle.finish(result)
    path = handle.set_emails(mails)

    (record,) = validate_all(tmp_path)
    assert path.name == "20261124T101500Z-scheduled.json"
    assert record["outcome"] != "incomplete"
    assert record["trigger"] == "scheduled"
    assert record["finished"] == FINISHED.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert record["period"] == {
        "kind": "last-billing-period",
        "start": "2026-10-16",
        "end": "2026-11-15",
        "as_of": "2026-11-24",
    }
    expected_revenue = ACME_UPDATE.revenue_delta + ACME_ADD.revenue_delta  # 6.00 + 15.00
    assert record["totals"] == {
        "customers": 3,
        "customers_changed": 1,
        "adds": 1,
        "updates": 1,
        "removes": 0,
        "quantity_delta": 12,
        "revenue_delta": str(expected_revenue),
        "errors": 0,
        "unknown": 0,
    }
    acme = record["customers"][0]
    assert acme["agreement"] == {"id": 501, "name": "Okta licences", "end_date": "2026-12-23"}
    assert acme["verified"] is True
    assert acme["changes"][0] == {
        "action": "update",
        "sku": "OKTA-SSO",
        "product": "CW-OKTA-SSO",
        "before": 40,
        "after": 42,
        "unit_price": "3.00",
        "revenue_delta": "6.00",
        "ok": True,
        "error": None,
        "note": None,
        "why": None,  # an orphan's reason (DESIGN 13.1)
        "price_change": None,
        "agreement": None,  # an orphan's on another agreement than the customer's (13.1)
    }
    assert record["customers"][1]["agreement"]["end_date"] is None
    assert record["warnings"] == ["ZeroTek customer zt-0099 has usage but no mapping"]
    assert record["emails"] == [
        {"kind": "sync-outcome", "to": ["ops@msp.example"], "sent": False,
         "detail": "not sent: --no-email"}
    ]  # fmt: skip
    md = handle.md_path.read_text()
    assert "OKTA-MFA" in md and "0 → 10" in md and "+15.00" in md and "+21.00" in md
    assert "not sent\\: --no-email" in md


def test_finish_partial_and_failed_outcomes(tmp_path: Path) -> None:
    h1 = runlog.start_run(tmp_path, partial_result().plan, trigger="manual", started=STARTED)
    h1.finish(partial_result())
    later = STARTED + dt.timedelta(hours=1)
    h2 = runlog.start_run(tmp_path, failed_result().plan, trigger="manual", started=later)
    h2.finish(failed_result())

    partial, failed = validate_all(tmp_path)
    assert partial["outcome"] == "partial"
    beta = partial["customers"][1]
    assert beta["changes"][0]["ok"] is False
    assert beta["changes"][0]["error"] == BETA_ERROR
    assert beta["errors"] == [BETA_ERROR]
    gamma = partial["customers"][2]
    assert gamma["agreement"] == {"id": None, "name": None, "end_date": None}
    assert gamma["errors"] == ["company GAMMA not found in ConnectWise"]
    # Beta's error is counted once although it is both a customer and a change error.
    assert partial["totals"]["errors"] == 2
    assert partial["totals"]["removes"] == 0  # the failed remove was not written
    assert failed["outcome"] == "failed"
    md = h1.md_path.read_text()
    assert "FAILED: ConnectWise 400" in md
    assert "Beta \\| Ltd \\<b\\>" in md  # neither breaks the table nor injects HTML


def test_fail_records_run_level_error(tmp_path: Path) -> None:
    handle = runlog.start_run(tmp_path, plan(ACME), trigger="manual", started=STARTED)
    handle.fail("plan is stale: agreement 501 additions changed since it was made")
    (record,) = validate_all(tmp_path)
    assert record["outcome"] == "failed"
    assert record["error"].startswith("plan is stale")
    assert record["totals"]["errors"] == 1
    assert [c["ok"] for c in record["customers"][0]["changes"]] == [None, None]
    assert "not applied" in handle.md_path.read_text()


def test_attempt_without_plan(tmp_path: Path) -> None:
    handle = runlog.start_run(tmp_path, None, trigger="manual", started=STARTED, period=PERIOD)
    handle.fail("ConnectWise unreachable: connection refused")
    (record,) = validate_all(tmp_path)
    assert record["customers"] == [] and record["outcome"] == "failed"
    with pytest.raises(ValueError, match="plan or a period"):
        runlog.start_run(tmp_path, None, trigger="manual", started=STARTED)


def test_two_runs_in_one_second_get_distinct_ids(tmp_path: Path) -> None:
    ids = [
        runlog.start_run(tmp_path, plan(ACME), trigger="manual", started=STARTED).run_id
        for _ in range(3)
    ]
    assert ids == [RUN_ID, f"{RUN_ID}-2", f"{RUN_ID}-3"]
    assert [s.run_id for s in activity.list_runs(tmp_path)] == list(reversed(ids))
    validate_all(tmp_path)


def test_naive_and_offset_datetimes_are_recorded_in_utc(tmp_path: Path) -> None:
    tz = dt.timezone(dt.timedelta(hours=11))
    h = runlog.start_run(
        tmp_path, plan(ACME), trigger="manual", started=dt.datetime(2026, 12, 1, 9, 0, tzinfo=tz)
    )
    assert h.run_id == "20261130T220000Z-manual"
    assert h.path.parent == tmp_path / "runs/2026/11"


def test_index_is_newest_first_and_renders_as_a_table(tmp_path: Path) -> None:
    stamps = [STARTED + dt.timedelta(days=d) for d in (0, 31, 3)]
    results = (success_result(), partial_result(), failed_result())
    for stamp, result in zip(stamps, results, strict=True):
        runlog.start_run(tmp_path, result.plan, trigger="manual", started=stamp).finish(result)

    summaries = activity.list_runs(tmp_path)
    assert [s.started for s in summaries] == [
        "2026-12-25T10:15:00Z",
        "2026-11-27T10:15:00Z",
        "2026-11-24T10:15:00Z",
    ]
    assert [s.outcome for s in summaries] == ["partial", "failed", "success"]
    assert summaries[2].quantities_updated == 2
    assert Decimal(summaries[2].revenue_delta) == Decimal("21.00")
    assert [s.run_id for s in activity.list_runs(tmp_path, limit=1)] == [summaries[0].run_id]

    index = (tmp_path / "runs/INDEX.md").read_text()
    html = MarkdownIt("commonmark").enable("table").render(index)
    assert html.count("<table>") == 1
    assert html.count("<tr>") == 1 + 3
    header = html.split("</thead>")[0]
    for column in ("When (UTC)", "Trigger", "Period", "Outcome", "Customers changed",
                   "Quantities updated", "Revenue delta", "Errors", "Run"):  # fmt: skip
        assert f">{column}</th>" in header
    for s in summaries:  # every link resolves to the run's Markdown twin
        href = f'href="{s.md_link}"'
        assert href in html
        assert (tmp_path / "runs" / s.md_link).is_file()
    rows = html.split("<tbody>")[1].split("</tr>")
    assert "2026-12-25 10:15:00" in rows[0] and "+21.00" in rows[2]


def test_index_never_disagrees_with_the_run_files(tmp_path: Path) -> None:
    a = runlog.start_run(tmp_path, plan(ACME), trigger="manual", started=STARTED)
    b = runlog.start_run(
        tmp_path, plan(ACME), trigger="manual", started=STARTED + dt.timedelta(days=1)
    )
    b.path.unlink()  # e.g. removed in git
    activity.rebuild_index(tmp_path)
    index = (tmp_path / "runs/INDEX.md").read_text()
    assert a.run_id in index and b.run_id not in index
    (a.path.parent / "20261130T000000Z-manual.json").write_text("{not json")
    activity.rebuild_index(tmp_path)
    assert "unreadable" in (tmp_path / "runs/INDEX.md").read_text()


def test_empty_index(tmp_path: Path) -> None:
    activity.rebuild_index(tmp_path)
    assert "No runs yet." in (tmp_path / "runs/INDEX.md").read_text()
    assert activity.list_runs(tmp_path) == []


def test_load_run_by_id_and_prefix(tmp_path: Path) -> None:
    h = runlog.start_run(tmp_path, plan(ACME), trigger="manual", started=STARTED)
    assert activity.load_run(tmp_path, h.run_id).run_id == h.run_id
    assert activity.load_run(tmp_path, "20261124T10").run_id == h.run_id
    with pytest.raises(ReconcileError, match="no run 'nope'"):
        activity.load_run(tmp_path, "nope")
    runlog.start_run(tmp_path, plan(ACME), trigger="scheduled", started=STARTED)
    with pytest.raises(ReconcileError, match="ambiguous"):
        activity.load_run(tmp_path, "20261124T10")


def test_secret_values_are_scrubbed_from_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CW_PRIVATE_KEY", "SENTINEL-private-key-0042")
    h = runlog.start_run(tmp_path, plan(ACME), trigger="manual", started=STARTED)
    h.fail("401 from https://x/?key=SENTINEL-private-key-0042")
    text = h.path.read_text() + h.md_path.read_text()
    assert "SENTINEL-private-key-0042" not in text
    assert "[CW_PRIVATE_KEY redacted]" in text


# --- atomic writes -------------------------------------------------------------------------

CHILD = """
import sys, time
from pathlib import Path
from reconciler.records.runlog import atomic_write

def chunks():
    # More than any write buffer (8 KiB, 128 KiB since Python 3.14): on disk before the
    # marker says it is writing.
    yield "partial " * (1 << 17)
    Path(sys.argv[2]).write_text("writing")
    while True:  # a huge file: the parent kills us long before the end
        yield "x" * 65536
        time.sleep(0.001)

atomic_write(Path(sys.argv[1]), chunks())
"""


@pytest.mark.parametrize("existing", [True, False])
def test_kill_mid_write_leaves_no_partial_file(tmp_path: Path, existing: bool) -> None:
    target = tmp_path / "runs/2026/11" / f"{RUN_ID}.json"
    target.parent.mkdir(parents=True)
    if existing:
        target.write_text('{"old": true}\n')
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target), str(marker)])
    try:
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert child.poll() is None, "writer exited early"
            assert time.monotonic() < deadline, "writer never started"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    temps = list(target.parent.glob(".*.tmp"))
    assert len(temps) == 1 and temps[0].stat().st_size > 0  # it was mid-write
    if existing:
        assert target.read_text() == '{"old": true}\n'
    else:
        assert not target.exists()
    # A later run sweeps the stale temp file so it is never committed with runs/.
    activity.rebuild_index(tmp_path)
    assert temps[0].exists()  # too fresh: might belong to a live writer
    old = time.time() - 3600
    os.utime(temps[0], (old, old))
    activity.rebuild_index(tmp_path)
    assert not temps[0].exists()


def test_atomic_write_cleans_up_after_an_exception(tmp_path: Path) -> None:
    target = tmp_path / "f.json"

    def chunks():  # type: ignore[no-untyped-def]
        yield "a"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        runlog.atomic_write(target, chunks())
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_order_of_small_and_large_pieces(tmp_path: Path) -> None:
    """A piece over the write size goes out as it is, after what was gathered before it:
    the file holds every piece in order, str and bytes alike (non-ASCII encoded once)."""
    target = tmp_path / "f.txt"
    large = "é" * 70_000  # 140,000 bytes: over the 64 KiB gathering size
    pieces = ["head,", b"bytes,", large, "tail,", large.encode(), "end"]
    runlog.atomic_write(target, iter(pieces))
    want = "head,bytes," + large + "tail," + large + "end"
    assert target.read_text(encoding="utf-8") == want
    runlog.atomic_write(target, large)  # one large str, as a plan file is written
    assert target.read_text(encoding="utf-8") == large


@pytest.mark.parametrize("fold_always_bytes", [10**9, 0])
def test_journal_holds_every_outcome_until_the_record_is_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fold_always_bytes: int
) -> None:
    """Each outcome is journaled at once. A small record is rewritten with every outcome;
    a big one not until it is finished, the journal holding every outcome: whoever reads
    the run through runlog (activity, INDEX.md) sees every outcome."""
    from reconciler.core.results import ChangeResult, CustomerResult

    monkeypatch.setattr(runlog, "FOLD_ALWAYS_BYTES", fold_always_bytes)
    the_plan = plan(ACME)
    h = runlog.start_run(tmp_path, the_plan, trigger="manual", started=STARTED)
    h.change(ChangeResult(the_plan.customers[0].changes[0], True))
    h.change(ChangeResult(the_plan.customers[0].changes[1], False, error="boom"))
    h.customer(CustomerResult(the_plan.customers[0], (), ("verification: off",), False))
    # Killed here: no finish. Through runlog, every outcome is there either way.
    seen = activity.load_run(tmp_path, h.run_id)
    assert [c.ok for c in seen.customers[0].changes] == [True, False]
    assert seen.customers[0].changes[1].error == "boom"
    assert seen.customers[0].errors == ["verification: off"]
    assert seen.outcome == "incomplete" and seen.totals.writes == 1
    (listed,) = activity.list_runs(tmp_path)
    assert listed.errors == seen.totals.errors == 2
    raw = json.loads(h.path.read_text())
    raw_oks = [c["ok"] for c in raw["customers"][0]["changes"]]
    assert raw_oks == ([True, False] if fold_always_bytes else [None, None])
    assert h.journal_path.exists()
    # A torn last line (killed mid-append) ends the replay; what came before stands.
    with h.journal_path.open("a") as f:
        f.write('{"c":0,"k":0,"ok":fal')
    assert [c.ok for c in activity.load_run(tmp_path, h.run_id).customers[0].changes] == [
        True,
        False,
    ]
    h.finish(success_result())
    assert not h.journal_path.exists()
    (record,) = validate_all(tmp_path)
    assert record["outcome"] != "incomplete"


def test_listing_reads_summaries_not_records(tmp_path: Path) -> None:
    """INDEX.md and `activity` read runs/index/*.summary; a summary that no longer matches
    its record (edited by hand) is ignored and the record read instead."""
    h = runlog.start_run(tmp_path, plan(ACME), trigger="manual", started=STARTED)
    h.finish(success_result())
    summary = tmp_path / "runs" / "index" / f"{h.run_id}.summary"
    assert json.loads(summary.read_text())["outcome"] == "success"
    # A summary alone decides the listing while it matches the record...
    data = json.loads(summary.read_text())
    summary.write_text(json.dumps({**data, "revenue_delta": "7.00"}))
    assert activity.list_runs(tmp_path)[0].revenue_delta == "7.00"
    # ...and is ignored once the record changed under it.
    record = json.loads(h.path.read_text())
    record["totals"]["revenue_delta"] = "99.00"
    h.path.write_text(json.dumps(record, indent=2))
    assert activity.list_runs(tmp_path)[0].revenue_delta == "99.00"
    summary.unlink()
    assert activity.list_runs(tmp_path)[0].revenue_delta == "99.00"
    summary.write_text("{not json")
    assert activity.list_runs(tmp_path)[0].outcome == "success"


def test_listing_hashes_only_records_whose_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record whose size, times and inode are as its summary saw them is not hashed again
    (issue 18's history part); a same-size edit changes its time and is; and so is one whose
    modification time was set back (`touch -r`, `cp -p`): its change time cannot be."""
    from reconciler.records import runindex

    h = runlog.start_run(tmp_path, plan(ACME), trigger="manual", started=STARTED)
    h.finish(success_result())
    hashed: list[Path] = []
    real = runindex.content_digest
    monkeypatch.setattr(runindex, "content_digest", lambda p: hashed.append(p) or real(p))
    assert activity.list_runs(tmp_path)[0].outcome == "success"
    assert hashed == []

    text = h.path.read_text()
    assert '"outcome":"success"' in text
    h.path.write_text(text.replace('"outcome":"success"', '"outcome":"partial"'))  # same size
    assert activity.list_runs(tmp_path)[0].outcome == "partial"
    assert hashed == [h.path]

    h2 = runlog.start_run(
        tmp_path, plan(ACME), trigger="manual", started=STARTED + dt.timedelta(days=1)
    )
    h2.finish(success_result())
    was = h2.path.stat()
    text = h2.path.read_text()
    with h2.path.open("r+") as fh:  # in place: the same inode and size
        fh.write(text.replace('"outcome":"success"', '"outcome":"partial"'))
    os.utime(h2.path, ns=(was.st_atime_ns, was.st_mtime_ns))  # `touch -r`, `cp -p`
    assert h2.path.stat().st_mtime_ns == was.st_mtime_ns
    assert [r.outcome for r in activity.list_runs(tmp_path)] == ["partial", "partial"]


def test_record_to_json_is_asdict_exactly() -> None:
    """to_json is hand-built for speed; it must stay what dataclasses.asdict gives."""
    import dataclasses

    from reconciler.records.record import RunRecord

    for result in (success_result(), partial_result(), failed_result()):
        record = RunRecord.of_result(result, RUN_ID)
        record.emails = [EmailOutcome("sync-outcome", ("ops@msp.example",), True, "sent")]
        expected = dataclasses.asdict(record)
        expected["emails"] = [{**e, "to": list(e["to"])} for e in expected["emails"]]
        assert json.dumps(record.to_json()) == json.dumps(expected)


@pytest.mark.parametrize(
    "secret", ["Sup3rSecretPrivateKey/With+Punctuation", 'Key##[with"quote\\and-bracket']
)
def test_streamed_record_is_scrubbed_piece_by_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    """The record is written customer by customer; a credential in any piece (a name from
    the API, the run's error text) is replaced in the file, its twin and its summary, and
    the summary still matches the record it describes (its size), so listings trust it."""
    import dataclasses

    monkeypatch.setenv("CW_PRIVATE_KEY", secret)
    named = dataclasses.replace(ACME, name=f"Acme {secret}")
    beta = CustomerPlan("zt-0002", "Beta", "BETA", 502, "Okta", None, changes=(BETA_REMOVE,))
    the_plan = plan(named, beta)
    h = runlog.start_run(tmp_path, the_plan, trigger="manual", started=STARTED)
    h.fail(f'stopped: "{secret}" was echoed')
    text = h.path.read_text()
    assert secret not in text and json.dumps(secret)[1:-1] not in text
    assert secret[:6] not in json.dumps(json.loads(text))  # no escaped form either
    assert "[CW_PRIVATE_KEY redacted]" in text
    record = json.loads(text)
    assert [c["id"] for c in record["customers"]] == ["zt-0001", "zt-0002"]
    assert record["customers"][1]["name"] == "Beta"
    assert record["customers"][0]["name"] == "Acme [CW_PRIVATE_KEY redacted]"
    md = h.md_path.read_text()
    assert secret[:6] not in md.replace("\\", "") and "Acme" in md
    summary = json.loads((tmp_path / "runs" / "index" / f"{h.run_id}.summary").read_text())
    assert summary["record_sha256"] == hashlib.sha256(h.path.read_bytes()).hexdigest()
    (listed,) = activity.list_runs(tmp_path)
    assert listed.outcome == "failed"
    assert validate_all(tmp_path)[0]["error"].startswith("stopped: ")


def test_finished_run_is_true_everywhere_before_the_emails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large record (journal-only while it runs) that is finished but whose e-mails never
    went out (the process killed while sending): the record, its twin, the listing and
    INDEX.md all say how the run ended; none still says incomplete."""
    monkeypatch.setattr(runlog, "FOLD_ALWAYS_BYTES", 0)
    result = success_result()
    h = runlog.start_run(tmp_path, result.plan, trigger="manual", started=STARTED)
    assert "incomplete" in h.md_path.read_text()
    h.finish(result)  # ...and killed here, before set_emails
    assert json.loads(h.path.read_text())["outcome"] == "success"
    assert "**Outcome:** success" in h.md_path.read_text()
    (listed,) = activity.list_runs(tmp_path)
    assert listed.outcome == "success"
    index = (tmp_path / "runs" / "INDEX.md").read_text()
    assert "success" in index and "incomplete" not in index


def test_a_large_run_killed_mid_apply_has_a_truthful_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large record is journal-only until finished: killed mid-apply, its twin (what
    the job summary and the repo show) still says nothing was written. The next INDEX.md
    rebuild renders it from the record and its journal: every write journaled."""
    from reconciler.core.results import ChangeResult

    monkeypatch.setattr(runlog, "FOLD_ALWAYS_BYTES", 0)
    the_plan = plan(ACME)
    h = runlog.start_run(tmp_path, the_plan, trigger="manual", started=STARTED)
    h.change(ChangeResult(the_plan.customers[0].changes[0], True))
    h.change(ChangeResult(the_plan.customers[0].changes[1], False, error="boom-at-write-2"))
    # Killed here (SIGKILL): only the journal knows.
    assert "boom-at-write-2" not in h.md_path.read_text()
    activity.rebuild_index(tmp_path)
    twin = h.md_path.read_text()
    assert "boom-at-write-2" in twin
    assert "**Quantities updated:** " in twin and "**Errors:** 1" in twin
    assert h.journal_path.exists()  # still the record's journal until a finish


def test_a_journal_left_beside_a_finished_record_is_removed_by_the_rebuild(
    tmp_path: Path,
) -> None:
    """Killed between writing the finished record and removing its journal: the record
    holds everything; the rebuild removes the leftover journal and stores the summary,
    so listings stop re-reading the record."""
    h = runlog.start_run(tmp_path, plan(ACME), trigger="manual", started=STARTED)
    h.finish(success_result())
    h.journal_path.write_text('{"c":0,"k":0,"ok":false,"error":"stale","note":null}\n')
    activity.rebuild_index(tmp_path)
    assert not h.journal_path.exists()
    assert activity.list_runs(tmp_path)[0].outcome == "success"
    assert "stale" not in h.md_path.read_text()


def test_a_hand_edited_record_the_twin_cannot_render_is_still_listed(tmp_path: Path) -> None:
    """The rebuild's twin repair is best effort: a record edited so that its summary can
    be made but its Markdown cannot (`ok` an object) is listed as it was, not as
    `unreadable`, and the rebuild does not fail."""
    h = runlog.start_run(tmp_path, plan(ACME), trigger="manual", started=STARTED)
    h.finish(success_result())
    record = json.loads(h.path.read_text())
    record["customers"][0]["changes"][0]["ok"] = {"z": 1}
    h.path.write_text(json.dumps(record))
    index = activity.rebuild_index(tmp_path).read_text()
    assert "unreadable" not in index and "success" in index
    assert [r.outcome for r in activity.list_runs(tmp_path)] == ["success"]


def test_a_large_runs_journal_reaches_the_disk_as_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DESIGN 12.5, durably as soon as known: a large run's journal is flushed by a thread
    whenever lines were appended since its last flush; the last flush covers every line,
    and the writes never wait for the disk."""
    from reconciler.core.results import ChangeResult, CustomerResult

    flushed: list[int] = []

    def datasync(fd: int) -> None:
        os.fsync(fd)
        flushed.append(os.fstat(fd).st_size)

    monkeypatch.setattr(runlog, "FOLD_ALWAYS_BYTES", 0)
    monkeypatch.setattr(journal, "_datasync", datasync)
    the_plan = plan(ACME)
    h = runlog.start_run(tmp_path, the_plan, trigger="manual", started=STARTED)
    h.change(ChangeResult(the_plan.customers[0].changes[0], True))
    h.change(ChangeResult(the_plan.customers[0].changes[1], False, error="boom"))
    h.customer(CustomerResult(the_plan.customers[0], (), (), False))
    written = h.journal_path.stat().st_size
    deadline = time.monotonic() + 10
    while (not flushed or flushed[-1] < written) and time.monotonic() < deadline:
        time.sleep(0.01)  # the flusher runs beside the apply; no write waited for it
    assert flushed and flushed[-1] == written  # on disk while the run is still going
    flusher = h._journal_file.flusher
    assert flusher is not None
    h.finish(success_result())
    assert not h.journal_path.exists()
    assert not flusher._thread.is_alive()  # finishing ends it


def test_journal_flushes_are_grouped_and_the_last_one_is_immediate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines appended in a burst share flushes (at most one per GROUP_SECONDS), yet none
    waits longer than that, and closing flushes at once what is left."""
    flushed: list[tuple[float, int]] = []

    def datasync(fd: int) -> None:
        flushed.append((time.monotonic(), os.fstat(fd).st_size))

    monkeypatch.setattr(journal, "_datasync", datasync)
    group = journal.Flusher.GROUP_SECONDS
    fd = os.open(tmp_path / "journal", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        flusher = journal.Flusher(fd)
        began = time.monotonic()
        for _ in range(300):  # ~0.3 s of lines, one per millisecond
            os.write(fd, b"{}\n")
            flusher.written()
            time.sleep(0.001)
        # A group that would outlast the test: the last line's flush must come from closing.
        flusher.GROUP_SECONDS = 60
        os.write(fd, b"{}\n")
        flusher.written()
        closing = time.monotonic()
        flusher.close()
    finally:
        os.close(fd)
    times = [t for t, _ in flushed]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # grouped: far fewer flushes than lines, however slowly the machine wrote them
    assert len(flushed) <= min((closing - began) / group + 2, 150)
    assert all(g >= group * 0.99 for g in gaps[:-1])  # never more often than the group
    assert flushed[-1][1] == 301 * 3  # the last flush covers every line...
    assert flushed[-1][0] - closing < 30  # ...and closing did not wait out the 60 s group
