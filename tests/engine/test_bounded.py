"""Issue 25 / DESIGN 13.5: every run, list read and side channel is bounded in time.

Real servers on loopback: the sandbox (slowed with `on_write`, or answering 429 with a long
Retry-After), small `http.server`s that page forever, an SMTP and an HTTP server that
trickle one byte at a time (a per-read timeout never fires), and real signals.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import set_setting
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.config.env import CWCredentials
from reconciler.connectwise import client as cw_client
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.core.model import PeriodKind
from reconciler.core.periods import Period
from reconciler.net.deadline import RunDeadline, parse_duration, within
from reconciler.notify import chat
from reconciler.notify.github import GitHubClient
from reconciler.notify.smtp import SmtpSettings, deliver
from reconciler.records import activity
from reconciler.sandbox import Sandbox

AS_OF = ["--as-of", "2026-11-24"]
CREDS = CWCredentials("co", "pub", "privatekey", "client")


def cli(config_dir: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--config-dir", str(config_dir), *args])
    assert "Traceback" not in result.output, result.output
    return result


# --- ConnectWise lists: page cap and pages with nothing new ----------------------------------


@pytest.fixture
def pager() -> Iterator[Callable[[Callable[[int], list[int]]], tuple[str, list[str]]]]:
    """A list endpoint answering page n with ids `ids(n)` and always a `rel="next"` Link
    (a server whose paging never ends); it stops at page 400 so old code ends too."""
    servers: list[ThreadingHTTPServer] = []

    def start(ids: Callable[[int], list[int]]) -> tuple[str, list[str]]:
        served: list[str] = []

        class Endless(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.append(self.path)
                page = int(self.path.split("page=")[1].split("&")[0])
                body = json.dumps([{"id": i} for i in ids(page)] if page < 400 else []).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Link", f'<{self.path}>; rel="next"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_port}/v4_6_release/apis/3.0", served

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _read_all(url: str) -> list[dict[str, Any]]:
    import asyncio

    async def go() -> list[dict[str, Any]]:
        async with ConnectWiseClient(url, CREDS) as client:
            return await client.get_all("company/companies")

    return asyncio.run(go())


def test_pages_repeating_earlier_pages_end_the_read_with_an_error(pager: Any) -> None:
    url, served = pager(lambda page: [page % 2, page % 2 + 10])  # A, B, A, B, ...
    with pytest.raises(Exception, match=r"page 3 .* no item not already read"):
        _read_all(url)
    assert len(served) == 3


def test_a_list_that_never_ends_stops_at_the_page_cap(
    pager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cw_client, "MAX_PAGES", 25)  # 10,000 in production
    url, served = pager(lambda page: [page])
    with pytest.raises(Exception, match="after 25 pages"):
        _read_all(url)
    assert len(served) == 25


# --- --max-duration ---------------------------------------------------------------------


def test_durations_parse() -> None:
    assert parse_duration("3000") == 3000
    assert parse_duration("50m") == 3000
    assert parse_duration("1.5h") == 5400
    with pytest.raises(Exception, match="not a duration"):
        parse_duration("soon")
    clock = [100.0]
    deadline = RunDeadline(10, clock=lambda: clock[0])
    assert deadline.remaining() == 10 and not deadline.expired
    clock[0] = 111.0
    assert deadline.remaining() == 0 and deadline.expired and deadline.cap(5) == 0
    assert RunDeadline.unbounded().timeout() is None


def test_plan_under_endless_429s_ends_at_the_time_limit(sandbox: Sandbox, config_dir: Path) -> None:
    sandbox.configure_faults(error_429=1.0, retry_after=100)
    started = time.monotonic()
    result = cli(config_dir, "plan", *AS_OF, "--max-duration", "2")
    assert time.monotonic() - started < 15
    assert result.exit_code == 124, result.output
    assert "time limit" in result.stderr and "--max-duration 2 s" in result.stderr


def test_apply_at_the_time_limit_starts_no_new_write_and_records_the_truth(
    sandbox: Sandbox, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_setting(config_dir, "max_concurrency", "1")
    sandbox.on_write = lambda count: time.sleep(0.7)  # a slow tenant: ~0.7 s per write
    monkeypatch.setenv("RECONCILE_MAX_DURATION", "2")
    result = cli(config_dir, "apply", "--yes", "--no-email", *AS_OF)
    assert result.exit_code == 124, result.output
    written = sandbox.stats.writes
    assert 0 < written < 11  # some, not all: the limit fell mid-apply
    (summary,) = activity.list_runs(config_dir)
    record = activity.load_run(config_dir, summary.run_id)
    assert record.outcome == "interrupted" and record.interrupted_by == "time limit"
    assert record.totals.writes == written  # true counts
    assert "Interrupted by time limit" in result.stderr


def test_apply_reading_past_the_time_limit_is_recorded_interrupted(
    sandbox: Sandbox, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")  # CI records a failure before any write (docs/guide.md)
    sandbox.configure_faults(error_429=1.0, retry_after=100)
    result = cli(config_dir, "apply", "--yes", "--no-email", *AS_OF, "--max-duration", "1")
    assert result.exit_code == 124, result.output
    assert sandbox.stats.writes == 0
    (summary,) = activity.list_runs(config_dir)
    record = activity.load_run(config_dir, summary.run_id)
    assert record.outcome == "interrupted" and record.interrupted_by == "time limit"


# --- side channels: total deadlines against servers that trickle ------------------------------


@pytest.fixture
def trickler() -> Iterator[Callable[[bytes], int]]:
    """A TCP server that sends `greeting` one byte every 0.3 s, forever (each byte well
    inside any per-read timeout)."""
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def start(greeting: bytes) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                sockets.append(conn)
                threading.Thread(target=drip, args=(conn,), daemon=True).start()

        def drip(conn: socket.socket) -> None:
            data = greeting * 1000
            for i in range(len(data)):
                if stop.wait(0.3):
                    return
                try:
                    conn.sendall(data[i : i + 1])
                except OSError:
                    return

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    stop.set()
    for s in sockets:
        s.close()


def test_smtp_that_trickles_is_cut_at_the_message_deadline(trickler: Any) -> None:
    port = trickler(b"220-slow ")
    smtp = SmtpSettings("127.0.0.1", port, "r@x.example", tls="none", message_seconds=1.5)
    started = time.monotonic()
    outcome = deliver(
        "sync-outcome", ["a@x.example"], lambda: ("s", "t", "<p>h</p>"), send=True, smtp=smtp
    )
    assert time.monotonic() - started < 4
    assert not outcome.sent and "within 1.5 s" in outcome.detail


def test_all_e_mails_share_one_total_budget(trickler: Any) -> None:
    port = trickler(b"220-slow ")
    smtp = SmtpSettings(
        "127.0.0.1", port, "r@x.example", tls="none", message_seconds=1.0, total_seconds=1.5
    )
    budget = RunDeadline(smtp.total_seconds)
    started = time.monotonic()
    outcomes = [
        deliver("k", ["a@x.example"], lambda: ("s", "t", "h"), send=True, smtp=smtp, budget=budget)
        for _ in range(3)
    ]
    assert time.monotonic() - started < 3.5
    assert "used up" in outcomes[2].detail


def test_chat_webhook_that_trickles_is_cut_at_its_deadline(trickler: Any) -> None:
    port = trickler(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    env = {"RECONCILE_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook"}
    event = chat.missed_sync_event(_period(), "2026-11-20", 5, catching_up=True)
    started = time.monotonic()
    outcome = chat.send(event, env, deadline=1.5)
    assert time.monotonic() - started < 4
    assert outcome is not None and not outcome.sent and "within 1.5 s" in outcome.detail
    assert chat.DEADLINE_SECONDS == 15


def test_github_api_that_trickles_is_cut_at_its_deadline(trickler: Any) -> None:
    port = trickler(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    client = GitHubClient("o/r", "ghp_token_value", f"http://127.0.0.1:{port}", deadline=1.5)
    started = time.monotonic()
    with pytest.raises(Exception, match=r"within 1\.5 s"):
        client.create_comment(1, "body")
    assert time.monotonic() - started < 4


def test_within_returns_and_raises_what_the_call_does() -> None:
    assert within(5, lambda: 42) == 42
    with pytest.raises(ZeroDivisionError):
        within(5, lambda: 1 // 0)


def _period() -> Period:
    day = dt.date
    return Period(
        PeriodKind.LAST_BILLING_PERIOD, day(2026, 10, 16), day(2026, 11, 15), day(2026, 11, 20)
    )


# --- a second stop signal abandons the notifications -----------------------------------------


def test_second_signal_abandons_a_stuck_e_mail_and_the_record_says_so(
    sandbox: Sandbox, config_dir: Path
) -> None:
    """SIGINT, then SIGTERM, while the sync e-mail trickles: the process ends at once (old:
    both ignored inside `deferred()` until the server gave up), exit 130, and the record
    lists the e-mails as abandoned."""
    listener = socket.create_server(("127.0.0.1", 0))  # an SMTP server that only trickles
    connected = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        connected.set()
        with conn:
            for _ in range(200):
                time.sleep(0.2)
                try:
                    conn.sendall(b"2")
                except OSError:
                    return

    threading.Thread(target=drip, daemon=True).start()
    port = listener.getsockname()[1]
    env = {**os.environ, **sandbox.env(), "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port)}
    env |= {"SMTP_TLS": "none", "PYTHONPATH": os.getcwd()}
    command = [sys.executable, "-m", "reconciler", "--config-dir", str(config_dir)]
    child = subprocess.Popen(
        [*command, "apply", "--yes", *AS_OF], env=env, stderr=subprocess.PIPE, text=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert connected.wait(30), "apply never reached the e-mail"
        child.send_signal(signal.SIGINT)
        time.sleep(0.3)
        started = time.monotonic()
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=10)
        assert time.monotonic() - started < 5
    finally:
        child.kill()
        listener.close()
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert sandbox.stats.writes == 11  # the apply itself had finished
    (summary,) = activity.list_runs(config_dir)
    record = activity.load_run(config_dir, summary.run_id)
    assert record.emails and all("abandoned" in e.detail for e in record.emails), record.emails
