"""Throttling makes a run slower, never failed (issue 31, DESIGN 13.9).

Against the loopback sandbox, a real HTTP server: its own request log (every request as it
arrived, with the time) is what the assertions read, not the client's idea of what it sent.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from generated_world import AS_OF, as_desired, duplicates, live, make_world
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.config.env import cw_credentials_from_env
from reconciler.connectwise.apply import apply_plan
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.core.model import PeriodKind
from reconciler.core.periods import period_for
from reconciler.engine.clients import Clients
from reconciler.engine.planning import make_plan
from reconciler.net.settings import HttpSettings
from reconciler.net.stats import Traffic
from reconciler.net.throttle import Throttle, TimeLimit
from reconciler.sandbox import Sandbox

CATALOG = "/procurement/catalog"


class RequestLog:
    """The sandbox's request log, each line with the monotonic time it was logged."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.on_line: list[object] = []

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append((time.monotonic(), line))
        for hook in self.on_line:
            hook(line)  # type: ignore[operator]

    def times(self, *, refused: bool | None = None) -> list[float]:
        return [
            t for t, line in self.lines if refused is None or line.endswith("-> 429") == refused
        ]


@pytest.fixture
def logged() -> Iterator[tuple[Sandbox, RequestLog]]:
    log = RequestLog()
    with Sandbox(log=log) as sb:
        yield sb, log


def client(sb: Sandbox, throttle: Throttle | None = None, **http: Any) -> ConnectWiseClient:
    """A client of the sandbox, 8 requests in flight; `http`: other HttpSettings fields."""
    creds = cw_credentials_from_env(sb.env())
    settings = HttpSettings(max_concurrency=8, **http)
    return ConnectWiseClient(sb.cw_url, creds, http=settings, throttle=throttle)


def test_a_429_storm_pauses_every_slot_until_retry_after() -> None:
    """The first 429 (Retry-After: 5) ends the storm at once, so only the requests already
    in flight are refused. The other slots' requests, and the queued ones, must still
    wait: no request reaches the server for 5 s. Before: each refused request slept on
    its own while the free slots went on sending (and max_retries 0 failed them). 96
    requests at 100 ms over 8 slots take 1.2 s: without the pause they would arrive
    well within the 5 s."""
    log = RequestLog()
    with Sandbox(log=log, latency_ms=100) as sb:
        sb.configure_faults(error_429=1.0, retry_after=5)
        first_429: list[float] = []

        def end_storm(line: str) -> None:
            if line.endswith("-> 429") and not first_429:
                first_429.append(time.monotonic())
                sb.configure_faults()  # one 429 burst, then a healthy server

        log.on_line.append(end_storm)

        async def go() -> list[int]:
            async with client(sb, max_retries=0) as cw:
                answers = await asyncio.gather(*(cw.request("GET", CATALOG) for _ in range(96)))
                assert cw.stats.status_429 >= 1
                return [r.status_code for r in answers]

        assert asyncio.run(go()) == [200] * 96
    t0 = first_429[0]
    in_flight = 0.5  # sent before the client read the 429 (100 ms, a loaded machine)
    during = [t for t in log.times() if t0 + in_flight < t < t0 + 5 - 0.05]
    assert during == [], f"{len(during)} requests reached the server during the pause"
    before = [t for t in log.times() if t <= t0 + in_flight]
    assert len(before) <= 16  # the first 429's round and the one in flight behind it
    assert len(log.times()) - len(before) >= 96 - len(before)


def test_a_limit_that_drops_mid_run_is_followed_within_seconds(
    logged: tuple[Sandbox, RequestLog],
) -> None:
    """3,000/min, then another integration takes most of it: 600/min (10/s). A few
    seconds later the client sends at about the new rate and is rarely refused."""
    sb, log = logged
    sb.set_rate_limit(3000)
    dropped: list[float] = []

    async def go() -> None:
        async with client(sb) as cw:
            loop_end = time.monotonic() + 14

            async def worker() -> None:
                while time.monotonic() < loop_end:
                    assert (await cw.request("GET", CATALOG)).status_code == 200
                    if not dropped and time.monotonic() > loop_end - 11:
                        dropped.append(time.monotonic())
                        sb.set_rate_limit(600)

            await asyncio.gather(*(worker() for _ in range(8)))

    asyncio.run(go())
    t = dropped[0]
    late = [s for s in log.times() if t + 6 <= s < t + 11]
    refused = [s for s in log.times(refused=True) if t + 6 <= s < t + 11]
    answered = len(late) - len(refused)
    # 5 s at 10/s: ~50 answered (plus the bucket's 10 of burst), few refused
    assert 35 <= answered <= 65, answered
    assert len(refused) <= 0.1 * len(late), (len(refused), len(late))


def test_retry_after_beyond_the_deadline_ends_the_request_cleanly(
    logged: tuple[Sandbox, RequestLog],
) -> None:
    """Retry-After 30 with 2 s left of the run: the request ends at once with TimeLimit,
    not after 30 s; a POST is not sent again (its 429 means it was not processed) and is
    not "outcome unknown"; the counts are what the server saw."""
    sb, log = logged
    sb.configure_faults(error_429=1.0, retry_after=30)
    throttle = Throttle(deadline=time.monotonic() + 2)
    body = {"agreementId": 1, "product": {"identifier": "X"}, "quantity": 1}

    async def go() -> ConnectWiseClient:
        async with client(sb, throttle=throttle) as cw:
            with pytest.raises(TimeLimit, match="time limit"):
                await cw.request("POST", "/finance/agreements/1/additions", json_body=body)
            with pytest.raises(TimeLimit):
                await cw.request("GET", CATALOG)  # still paused: never sent
            return cw

    started = time.monotonic()
    cw = asyncio.run(go())
    assert time.monotonic() - started < 2
    assert len(log.lines) == 1 and cw.stats.attempts == 1 and cw.stats.status_429 == 1
    assert sb.stats.writes == 0


def test_throttled_plan_and_apply_converge_without_duplicates(tmp_path: Path) -> None:
    """A hidden limit of 600/min: plan and apply of 20 customers finish with no customer
    failed and no addition duplicated; the throttle noticed and told the progress line."""
    w = make_world(tmp_path, 20, seed=5)
    with Sandbox(w.fixture) as sb:
        # 10/s with a burst of 5: the first burst of 8 in flight is mostly refused
        sb.set_rate_limit(600, burst=5)
        notices: list[str] = []
        clients = Clients(environ=sb.env(), traffic=Traffic(notice=notices.append))
        period = period_for(PeriodKind.LAST_BILLING_PERIOD, w.config.settings, AS_OF)

        async def go() -> bool:
            async with clients.connectwise(w.config) as cw:
                planned = await make_plan(w.config, period, None, cw, clients)
                result = await apply_plan(planned.plan, w.config, cw, expected=planned.state)
                return result.ok

        assert asyncio.run(go())
        assert live(sb, w) == as_desired(w)
        assert duplicates(sb, w) == []
        refused = sb.stats.faults["rate_limit"]
        cw = clients.traffic.to_json()["connectwise"]
        assert (
            refused > 0
            and cw["status_429"] + clients.traffic.to_json()["zerotek"]["status_429"] == refused
        )
        assert cw["throttle"]["pauses"] >= 1 and cw["throttle"]["decreases"] >= 1
        assert any(line.startswith("ConnectWise is throttling: ") for line in notices)
        # Found: "ConnectWise is throttling: 36 requests/s" at this 10/s limit (the rate
        # the client tried, learned from the bucket's first burst): every figure shown is
        # what the server let through
        shown = [float(m[1]) for line in notices if (m := re.search(r"([\d.]+) requests/s", line))]
        assert all(rate <= 12 for rate in shown), notices


def test_a_configured_cap_paces_from_the_first_request(logged: tuple[Sandbox, RequestLog]) -> None:
    """max_requests_per_minute 600: 10 requests a second from the start, no 429 needed."""
    sb, log = logged

    async def go() -> None:
        async with client(sb, max_requests_per_minute=600) as cw:
            await asyncio.gather(*(cw.request("GET", CATALOG) for _ in range(16)))

    asyncio.run(go())
    times = log.times()
    assert len(times) == 16
    assert times[-1] - times[0] >= 15 * 0.1 - 0.05  # 16 requests, 0.1 s apart


def test_the_cli_shows_the_throttling_and_records_it(tmp_path: Path) -> None:
    """`reconcile plan -v` against `--rate-limit`: the progress line, and -v's throttle
    line; settings' max_requests_per_minute is read from settings.yaml."""
    w = make_world(tmp_path, 20, seed=3)
    with Sandbox(w.fixture) as sb:
        sb.set_rate_limit(600, burst=5)
        result = CliRunner().invoke(
            app,
            ["--config-dir", str(tmp_path), "-v", "plan", "--as-of", AS_OF.isoformat()],
            env=sb.env(),
        )
    assert result.exit_code in (0, 2), result.output
    assert "ConnectWise is throttling: " in result.stderr
    assert "throttled: paused " in result.stderr


def test_max_requests_per_minute_must_be_positive(tmp_path: Path) -> None:
    make_world(tmp_path, 2, seed=1)
    settings = tmp_path / "mappings" / "settings.yaml"
    text = settings.read_text(encoding="utf-8").replace(
        "  max_concurrency: 8", "  max_concurrency: 8\n  max_requests_per_minute: 0"
    )
    settings.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["--config-dir", str(tmp_path), "validate"])
    assert result.exit_code == 1
    assert "settings.yaml:" in result.output and "max_requests_per_minute" in result.output
    assert "Traceback" not in result.output


def test_settings_cap_reaches_the_clients(tmp_path: Path) -> None:
    from reconciler.config.loader import load_config

    make_world(tmp_path, 2, seed=1)
    settings = tmp_path / "mappings" / "settings.yaml"
    text = settings.read_text(encoding="utf-8").replace(
        "  max_concurrency: 8", "  max_concurrency: 8\n  max_requests_per_minute: 300"
    )
    settings.write_text(text, encoding="utf-8")
    config = load_config(tmp_path)
    assert config.settings.cw_max_requests_per_minute == 300
    with Sandbox() as sb:
        clients = Clients(environ=sb.env())
        cw = clients.connectwise(config)
        assert cw.throttle.rate == 5.0 and cw.throttle.to_json()["max_per_minute"] == 300
        assert clients.traffic.to_json()["connectwise"]["throttle"]["max_per_minute"] == 300
        asyncio.run(cw.aclose())


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stray_429_only_pauses_a_burst_of_them_lowers_the_rate() -> None:
    """Random 429s among many answers (the fault tests' 10%) must not slow a run down for
    good; a fifth of recent attempts refused is a limit, followed at 90% of the answers'
    rate; 429s to requests sent before that decrease do not lower it again."""
    clock = FakeClock()
    th = Throttle(clock=clock)
    asyncio.run(th.wait())  # the run's first request, at t=100
    for _ in range(40):  # 40 answers over 2 s
        clock.now += 0.05
        th.answered(clock.now - 0.04)
    th.refused(clock.now - 0.04, 0.0)  # 1 of 41: stray
    assert th.rate is None and th.decreases == 0 and th.pauses == 0  # Retry-After: 0
    sent = clock.now
    for _ in range(12):  # a burst: 13 of 53 refused
        th.refused(sent, 1.0)
    assert th.decreases == 1 and th.rate == pytest.approx(0.9 * 40 / 2)
    assert th.paused_until == pytest.approx(clock.now + 1.0)
    th.refused(sent, 1.0)  # sent before the decrease: nothing new
    assert th.decreases == 1


def test_the_first_line_names_no_rate_and_later_ones_what_got_through() -> None:
    """The first decrease comes from the start of a run, where the server's burst passes
    more than its rate: it says that the API throttles, without a figure; after WINDOW
    seconds the line names the rate of answers, what the server let through."""
    clock, notices = FakeClock(), []
    th = Throttle("ConnectWise", notice=notices.append, clock=clock)
    asyncio.run(th.wait())  # t=100
    for _ in range(5):  # the bucket's burst: 5 answers in 0.05 s
        clock.now += 0.01
        th.answered(clock.now - 0.005)
    for _ in range(3):
        th.refused(clock.now - 0.005, 1.0)
    assert th.decreases == 1 and th.rate is not None and th.rate > 12  # tried: 18/s
    assert notices == [
        "ConnectWise is throttling: it answered 429 Too Many Requests; pausing and slowing "
        "down to the rate it allows"
    ]
    clock.now += 1.0  # the pause
    for _ in range(60):  # then the server's 10/s
        clock.now += 0.1
        sent = asyncio.run(th.wait())
        th.answered(sent)
    assert notices[1:] == ["ConnectWise is throttling: about 10 requests/s get through"]


@pytest.mark.parametrize(
    ("retry_after", "left", "said"),
    [
        (30.0, 3.0, "could start in 30 s, after the run's time limit (3 s left)"),
        # Found: "could start in 1 s, after the run's time limit (1 s left)"
        (1.4, 0.6, "could start in 1.4 s, after the run's time limit (0.6 s left)"),
        (0.5, 0.04, "could start in 0.5 s, after the run's time limit (less than 0.1 s left)"),
    ],
)
def test_the_time_limit_message_never_reads_as_equal_times(retry_after, left, said) -> None:
    clock = FakeClock()
    th = Throttle("ConnectWise", deadline=clock.now + left, clock=clock)
    th.refused(clock.now, retry_after)
    with pytest.raises(TimeLimit) as caught:
        asyncio.run(th.wait())
    assert said in str(caught.value)


def test_the_time_limit_message_names_the_wait_and_what_is_left() -> None:
    clock = FakeClock()
    th = Throttle("ConnectWise", deadline=clock.now + 3, clock=clock)
    th.refused(clock.now, 30.0)
    with pytest.raises(TimeLimit) as caught:
        asyncio.run(th.wait())
    assert str(caught.value) == (
        "ConnectWise is rate-limiting: the next request could start in 30 s, after the "
        "run's time limit (3 s left); stopped without sending it"
    )


def test_retry_after_beyond_max_duration_ends_the_apply_as_a_time_limit(tmp_path: Path) -> None:
    """`apply --max-duration 3` against a ConnectWise answering 429 + Retry-After 60: the
    run ends at once as `interrupted` ("time limit"), exit 124, nothing written, and the
    record's counts are what the server received."""
    w = make_world(tmp_path, 5, seed=2)
    with Sandbox(w.fixture) as sb:
        sb.configure_faults(error_429=1.0, retry_after=60, methods={"GET"})
        started = time.monotonic()
        result = CliRunner().invoke(
            app,
            ["--config-dir", str(tmp_path), "apply", "--yes", "--no-email",
             "--max-duration", "3", "--as-of", AS_OF.isoformat()],
            env={**sb.env(), "CI": "true"},  # CI records a failure before any write
        )  # fmt: skip
        assert time.monotonic() - started < 3
        assert result.exit_code == 124, result.output
        assert "time limit" in result.stderr and sb.stats.writes == 0
        runs = sorted((tmp_path / "runs").rglob("*.json"))
        record = json.loads(runs[-1].read_text(encoding="utf-8"))
        assert record["outcome"] == "interrupted" and record["interrupted_by"] == "time limit"
        sent = (
            record["requests"]["connectwise"]["requests"]
            + record["requests"]["zerotek"]["requests"]
        )
        assert sent == sb.stats.total
