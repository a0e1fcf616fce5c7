"""Crash recovery: `reconcile apply --yes` SIGKILLed right after the k-th write commits
(its response never arrives), then run again: converges, no duplicate additions, and the
run log keeps the killed attempt as "incomplete" next to the successful one.

The CLI runs as a real subprocess against the sandbox in this process; the sandbox's
`on_write` hook fires inside the request that committed the write, before it answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import reconcile
from generated_world import AS_OF, as_desired, duplicates, live, make_world, unmanaged

from reconciler.records.activity import list_runs
from reconciler.sandbox import Sandbox


def apply_args() -> list[str]:
    return ["apply", "--yes", "--no-email", "--as-of", AS_OF.isoformat()]


def saved_plan(root: Path, env: dict[str, str]) -> list[str]:
    """`plan --out`, then the arguments that apply it (DESIGN 13.7's path: agreements
    planned from the file's snapshot, each changed one read just before its first write)."""
    plan_file = root / "plan.json"
    made = reconcile(root, env, "plan", "--out", str(plan_file), "--as-of", AS_OF.isoformat())
    out, err = made.communicate(timeout=60)
    assert made.returncode == 0, out + err
    return ["apply", str(plan_file), "--yes", "--no-email"]


@pytest.mark.parametrize(
    ("kill_at", "saved"), [(1, False), (25, False), (25, True)], ids=["1", "25", "25-planfile"]
)
def test_killed_apply_is_recorded_and_a_rerun_converges(
    tmp_path: Path, kill_at: int, saved: bool
) -> None:
    world = make_world(tmp_path / "config", 50, seed=7, max_concurrency=4)
    root = world.root
    with Sandbox(world.fixture, latency_ms=2) as sb:
        env = {**os.environ, **sb.env()}
        start = live(sb, world)
        desired = as_desired(world)
        needed_adds = sum(
            1 for a, products in desired.items() for p in products if p not in start[a]
        )
        assert needed_adds and start != desired
        ids_before = {r["id"] for r in sb.all_additions()}
        untouched = unmanaged(sb, world)

        launched = threading.Event()
        child: list[subprocess.Popen[str]] = []

        def kill_after(count: int) -> None:
            if count == kill_at:
                launched.wait(10)
                os.kill(child[0].pid, signal.SIGKILL)

        args = saved_plan(root, env) if saved else apply_args()
        sb.on_write = kill_after
        child.append(reconcile(root, env, *args))
        launched.set()
        _, err = child[0].communicate(timeout=60)
        assert child[0].returncode == -signal.SIGKILL, err

        partial = live(sb, world)
        assert sb.stats.writes >= kill_at
        assert partial != desired, "the kill must land before the apply finished"
        runs = list_runs(root)
        assert [r.outcome for r in runs] == ["incomplete"]
        assert runs[0].finished is None

        sb.on_write = None
        rerun = reconcile(root, env, *(saved_plan(root, env) if saved else apply_args()))
        out, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err

        assert live(sb, world) == desired
        assert duplicates(sb, world) == []
        new_ids = {r["id"] for r in sb.all_additions()} - ids_before
        assert len(new_ids) == needed_adds  # across the kill, each add was created once
        assert unmanaged(sb, world) == untouched
        assert [r.outcome for r in list_runs(root)] == ["success", "incomplete"]

        writes = sb.stats.writes
        check = reconcile(root, env, "plan", "--detailed-exitcode", "--as-of", AS_OF.isoformat())
        out, err = check.communicate(timeout=60)
        assert check.returncode == 0, out + err  # 0 with --detailed-exitcode: no changes
        assert sb.stats.writes == writes


def test_killed_while_sending_email_the_run_log_tells_the_truth(tmp_path: Path) -> None:
    """SIGKILL while the sync e-mail is being sent (after the record is finished, before
    its e-mail outcomes are): the record says `success`; `activity` shows it, and the
    INDEX.md rebuild sync.yml runs before committing brings the twin (the job summary)
    and INDEX.md to the record's outcome instead of the `incomplete` of its start."""
    import socket

    world = make_world(tmp_path / "config", 20, seed=11, max_concurrency=4)
    root = world.root
    listener = socket.create_server(("127.0.0.1", 0))  # an SMTP server that never answers
    port = listener.getsockname()[1]
    child: list[subprocess.Popen[str]] = []

    def kill_on_connect() -> None:
        conn, _ = listener.accept()
        os.kill(child[0].pid, signal.SIGKILL)
        conn.close()

    with Sandbox(world.fixture, latency_ms=1) as sb, listener:
        env = {**sb.env(), "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_TLS": "none"}
        env = {**os.environ, **env}
        killer = threading.Thread(target=kill_on_connect, daemon=True)
        killer.start()
        args = ["apply", "--yes", "--as-of", AS_OF.isoformat()]
        child.append(reconcile(root, env, *args))
        _, err = child[0].communicate(timeout=60)
        assert child[0].returncode == -signal.SIGKILL, err
        assert sb.stats.writes > 0
        (record,) = (root / "runs").glob("*/*/*.json")
        assert '"outcome":"success"' in record.read_text()
        activity = reconcile(root, env, "activity")
        out, err = activity.communicate(timeout=60)
        assert activity.returncode == 0, err
        assert "success" in out and "incomplete" not in out
        rebuilt = reconcile(root, env, "activity", "--rebuild-index")
        out, err = rebuilt.communicate(timeout=60)
        assert rebuilt.returncode == 0, err
        assert "**Outcome:** success" in record.with_suffix(".md").read_text()
        index = (root / "runs" / "INDEX.md").read_text()
        assert "success" in index and "incomplete" not in index
