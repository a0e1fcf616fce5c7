"""The sync engine under concurrency, signals, kills and lying proxies (DESIGN 12.5).

Every apply here is a real `python -m reconciler` subprocess against the sandbox running in
this process. Ground truth is the sandbox's own state, never the reconciler's answers: a
change counts as committed when the sandbox shows it, and the run record must say exactly
that.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import world_edits
from conftest import reconcile, trials
from generated_world import AS_OF, World, as_desired, duplicates, live, make_world
from runlog_samples import run_smtp

from reconciler.sandbox import Sandbox
from reconciler.sandbox.wire import Request, Response

APPLY = ["apply", "--yes", "--no-email", "--as-of", AS_OF.isoformat()]


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def run_records(root: Path) -> list[dict[str, Any]]:
    files = sorted((root / "runs").glob("*/*/*.json"))
    return [json.loads(p.read_text()) for p in files]


def applied(world: World, sb: Sandbox, start: dict[int, dict[str, list[int]]]) -> set[tuple]:
    """The changes the sandbox shows committed: (agreement, product, after) for each product
    whose live quantity moved from the start state."""
    now = live(sb, world)
    return {
        (agreement, product, (now[agreement].get(product) or [0])[0])
        for agreement in now
        for product in now[agreement].keys() | start[agreement].keys()
        if now[agreement].get(product) != start[agreement].get(product)
    }


def journaled(record: dict[str, Any], world: World) -> set[tuple]:
    """The changes the run record says were written (ok: true)."""
    return {
        (world.agreement_of[c["id"]], ch["product"], ch["after"])
        for c in record["customers"]
        for ch in c["changes"]
        if ch["ok"] is True
    }


# --- the lock --------------------------------------------------------------------------------


def _wait_for_an_exit(procs: list[subprocess.Popen[str]], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.02)


def _race(root: Path, trial: int) -> None:
    world = make_world(root, 8, seed=100 + trial)
    with Sandbox(world.fixture) as sb:
        env = {**os.environ, **sb.env()}
        args = APPLY
        if trial % 2:
            saved = str(world.root / "p.json")
            code, _, err = finish(reconcile(world.root, env, "plan", "--out", saved,
                                            "--as-of", AS_OF.isoformat()))  # fmt: skip
            assert code == 0, err
            args = ["apply", saved, "--yes", "--no-email"]
        procs: list[subprocess.Popen[str]] = []

        def hold_first_write(count: int) -> None:
            if count == 1:
                _wait_for_an_exit(procs)

        sb.on_write = hold_first_write
        procs += [reconcile(world.root, env, *args), reconcile(world.root, env, *args)]
        results = [finish(p) for p in procs]

        assert sorted(r[0] for r in results) == [0, 1], results
        winner = next(p for p, r in zip(procs, results, strict=True) if r[0] == 0)
        loser_err = next(r[2] for r in results if r[0] == 1)
        assert re.search(
            rf"locked by pid {winner.pid} on {re.escape(socket.gethostname())} since "
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
            loser_err,
        ), loser_err
        assert duplicates(sb, world) == []
        assert live(sb, world) == as_desired(world)
        assert len(run_records(world.root)) == 1  # the loser recorded nothing


def test_two_concurrent_applies_never_duplicate_and_the_loser_names_the_holder(
    tmp_path: Path,
) -> None:
    """10 trials (4 under the local "dev" profile) of two applies started together on one
    config dir (half planning live, half applying one saved plan). The first write is held
    until one process has exited, so the two always overlap: exactly one applies, the other
    exits 1 at once naming the holder. Trials run two at a time (each is mostly waiting on
    its subprocesses)."""
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(_race, tmp_path / f"t{n}", n) for n in range(trials(10))]
        for future in futures:
            future.result()


def test_waiting_applies_each_record_a_run_and_the_index_lists_all(tmp_path: Path) -> None:
    """6 applies at once on a converged world with --lock-timeout: they take turns, each
    records its own run (distinct ids, even within one second) and INDEX.md lists all."""
    world = make_world(tmp_path / "w", 8, seed=5)
    with Sandbox(world.fixture) as sb:
        env = {**os.environ, **sb.env()}
        code, _, err = finish(reconcile(world.root, env, *APPLY))
        assert code == 0, err
        writes = sb.stats.writes
        procs = [reconcile(world.root, env, *APPLY, "--lock-timeout", "120") for _ in range(6)]
        results = [finish(p, 180) for p in procs]
        assert [r[0] for r in results] == [0] * 6, [r[2] for r in results]
        assert sb.stats.writes == writes  # converged: nobody wrote
    records = run_records(world.root)
    assert len(records) == 7 and len({r["run_id"] for r in records}) == 7
    assert all(r["outcome"] == "success" for r in records)
    index = (world.root / "runs" / "INDEX.md").read_text()
    assert all(f"[{r['run_id']}]" in index for r in records)


# --- signals and kills -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "seed"),
    [(signal.SIGINT, 1), (signal.SIGTERM, 2), (signal.SIGINT, 3), (signal.SIGTERM, 4)],
    ids=["SIGINT-a", "SIGTERM-a", "SIGINT-b", "SIGTERM-b"],
)
def test_a_stop_signal_records_and_emails_exactly_what_was_written(
    tmp_path: Path, signum: int, seed: int
) -> None:
    world = make_world(tmp_path / "w", 30, seed=seed, max_concurrency=4)
    with Sandbox(world.fixture, latency_ms=2) as sb, run_smtp() as smtp:
        env = {**os.environ, **sb.env(), **smtp.env(SMTP_TLS="none")}
        start = live(sb, world)
        planned = sum(
            1
            for a, products in as_desired(world).items()
            for p in products.keys() | start[a].keys()
            if products.get(p) != start[a].get(p)
        )
        stop_at = random.Random(seed).randint(1, planned // 2)
        child: list[subprocess.Popen[str]] = []
        launched = threading.Event()

        def signal_at(count: int) -> None:
            if count == stop_at:
                launched.wait(10)
                os.kill(child[0].pid, signum)

        sb.on_write = signal_at
        args = ["apply", "--yes", "--as-of", AS_OF.isoformat()]
        child.append(reconcile(world.root, env, *args))
        launched.set()
        code, _out, err = finish(child[0])
        sb.on_write = None
        committed = applied(world, sb, start)
        mails = list(smtp.sink.received)

    assert code == 128 + signum, err
    assert stop_at <= len(committed) < planned, "the stop must land mid-apply"
    (record,) = run_records(world.root)
    assert record["outcome"] == "interrupted"
    assert record["interrupted_by"] == signal.Signals(signum).name
    assert journaled(record, world) == committed
    assert record["totals"]["adds"] + record["totals"]["updates"] + record["totals"][
        "removes"
    ] == len(committed)
    assert duplicates(sb, world) == []
    (sync,) = [m for m in mails if "Sync" in m.subject]
    # The e-mail states exactly what was written: additions, quantity updates, removals.
    t = record["totals"]
    assert f"Added: {t['adds']} additions" in sync.text
    assert f"Quantities updated: {t['updates']} additions" in sync.text
    assert f"Removed: {t['removes']} additions" in sync.text
    assert f"after {len(committed)} write" in sync.subject
    assert "interrupted" in sync.subject.lower()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_while_reading_exits_128_plus_its_number(tmp_path: Path, signum: int) -> None:
    """Before the first write (the pipelined read of companies, agreements and additions
    is under way) a stop signal ends the apply at once: nothing written, the run recorded
    as interrupted by that signal, exit 130 for SIGINT and 143 for SIGTERM (DESIGN 12.5)."""
    world = make_world(tmp_path / "w", 200, seed=5, max_concurrency=4)
    with Sandbox(world.fixture, latency_ms=40) as sb:
        env = {**os.environ, **sb.env(), "CI": "true"}  # recorded: CI records refusals
        child = reconcile(world.root, env, *APPLY)
        deadline = time.monotonic() + 60
        while sb.stats.requests.get("GET additions", 0) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sb.stats.requests.get("GET additions", 0) >= 20, "the read must be under way"
        child.send_signal(signum)
        code, _out, err = finish(child)
        assert sb.stats.writes == 0
    assert code == 128 + signum, err
    assert "Traceback" not in err
    (record,) = run_records(world.root)
    assert record["outcome"] == "interrupted"
    assert record["interrupted_by"] == signal.Signals(signum).name


def test_sigkill_leaves_incomplete_with_every_settled_write_journaled(tmp_path: Path) -> None:
    """One customer at a time, so exactly one write is in flight when the kill lands (it
    committed; its answer never arrived): the record holds every write before it."""
    world = make_world(tmp_path / "w", 20, seed=9, max_concurrency=1)
    with Sandbox(world.fixture, latency_ms=1) as sb:
        env = {**os.environ, **sb.env()}
        start = live(sb, world)
        child: list[subprocess.Popen[str]] = []
        launched = threading.Event()

        def kill_at(count: int) -> None:
            if count == 7:
                launched.wait(10)
                os.kill(child[0].pid, signal.SIGKILL)

        sb.on_write = kill_at
        child.append(reconcile(world.root, env, *APPLY))
        launched.set()
        code, _, err = finish(child[0])
        sb.on_write = None
        committed = applied(world, sb, start)

    assert code == -signal.SIGKILL, err
    assert len(committed) == 7
    (record,) = run_records(world.root)
    assert record["outcome"] == "incomplete" and record["finished"] is None
    written = journaled(record, world)
    assert written < committed and len(committed - written) == 1  # only the in-flight one
    assert record["totals"]["adds"] + record["totals"]["updates"] + record["totals"][
        "removes"
    ] == len(written)


# --- one customer's fault is its own ------------------------------------------------------------


LOGIN_PAGE = b"<html><body><form action='/login'>Sign in to continue</form></body></html>"


@pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "instead-of-commit"])
def test_an_html_answer_to_one_customers_post_leaves_the_others_applied(
    tmp_path: Path, committed: bool
) -> None:
    world = make_world(tmp_path / "w", 12, seed=21)
    with Sandbox(world.fixture) as sb:
        env = {**os.environ, **sb.env()}
        start, want = live(sb, world), as_desired(world)
        victim = next(c for c, a in world.agreement_of.items() if want[a].keys() - start[a].keys())
        target = f"/agreements/{world.agreement_of[victim]}/additions"
        page = Response(200, LOGIN_PAGE, [("Content-Type", "text/html")])

        def proxy(req: Request, resp: Response) -> Response:
            if req.method == "POST" and req.path.endswith(target):
                return page
            return resp

        if committed:
            sb.on_response = proxy
        else:  # the proxy answers in the API's place: nothing reaches ConnectWise
            original = sb._answer

            def answer(req: Request, n: int) -> Response | None:
                if req.method == "POST" and req.path.endswith(target):
                    return page
                return original(req, n)

            sb._answer = answer  # type: ignore[method-assign]
        code, _out, err = finish(reconcile(world.root, env, *APPLY))
        now = live(sb, world)
        assert duplicates(sb, world) == []

    victim_agreement = world.agreement_of[victim]
    others = {a for a in want if a != victim_agreement}
    assert {a: now[a] for a in others} == {a: want[a] for a in others}
    (record,) = run_records(world.root)
    (mine,) = [c for c in record["customers"] if c["id"] == victim]
    adds = [ch for ch in mine["changes"] if ch["action"] == "add"]
    if committed:  # settled by re-reading: written once, never re-sent
        assert code == 0, err
        assert all(ch["ok"] is True and "found committed" in ch["note"] for ch in adds)
        assert now[victim_agreement] == want[victim_agreement]
    else:
        assert code == 1, err
        assert all(ch["ok"] is False and "not JSON" in ch["error"] for ch in adds)
        assert record["outcome"] == "partial"


def test_a_stale_agreement_is_skipped_and_the_others_proceed(tmp_path: Path) -> None:
    """Someone edits one agreement's additions between the plan and its first write: that
    customer is skipped as stale (nothing written to it); the others are applied."""
    world = make_world(tmp_path / "w", 10, seed=33, max_concurrency=1)
    with Sandbox(world.fixture) as sb:
        env = {**os.environ, **sb.env()}
        start, want = live(sb, world), as_desired(world)
        changing = [c for c, a in world.agreement_of.items() if want[a] != start[a]]
        first, victim = changing[0], changing[-1]
        victim_agreement = world.agreement_of[victim]
        victim_rows = [
            r for r in sb.additions(victim_agreement)
            if r["product"]["identifier"] in world.managed_products
        ]  # fmt: skip
        assert victim_rows, "the victim needs a managed addition to edit"
        edited = threading.Event()

        def edit_once(count: int) -> None:
            if count == 1 and not edited.is_set():
                # A person changes the victim's agreement after the plan was made.
                row = victim_rows[0]
                world_edits.set_addition_quantity(sb, row["id"], row["quantity"] + 5)
                edited.set()

        sb.on_write = edit_once
        code, _out, err = finish(reconcile(world.root, env, *APPLY))
        now = live(sb, world)

    assert edited.is_set() and code == 1, err
    assert "stale" in err and victim in err
    (record,) = run_records(world.root)
    (mine,) = [c for c in record["customers"] if c["id"] == victim]
    assert all(ch["ok"] is None for ch in mine["changes"])
    assert any(e.startswith("stale:") for e in mine["errors"])
    done = {a for c, a in world.agreement_of.items() if c != victim}
    assert {a: now[a] for a in done} == {a: want[a] for a in done}
    assert first != victim
