"""One adaptive request rate per API, shared by every request slot (DESIGN 13.9).

ConnectWise (and ZeroTek) answer 429 with `Retry-After` when a tenant goes over its rate
limit; the limit is not published and other integrations share it. Retrying each refused
request on its own (what the slots did before) keeps the other seven slots firing into the
limit, so most attempts were refused and the retry budgets ran out. Here, as in AWS SDKs'
"adaptive" retry mode and TCP's AIMD:

- a 429 pauses every slot of that API until its `Retry-After` has passed: no request is
  sent during the pause (the ones already in flight cannot be called back);
- a burst of 429s (a fifth of recent attempts or more) lowers the allowed rate
  (multiplicative decrease) to a share of what the server let through lately; a stray
  429 among many answers lowers a rate already set by that share of itself, at most once
  every few seconds; 429s answering requests sent before a decrease say nothing new;
- while the rate is what holds requests back and no 429 comes, it rises by a fixed step
  per second (additive increase); once it exceeds what `max_concurrency` slots can send
  at the observed latency, the limit is lifted;
- `max_requests_per_minute` (settings) caps it from the start and for good.

Requests are paced (spaced 1/rate apart) rather than sent in bursts: a burst would empty
the server's token bucket and draw a volley of 429s at once.

A 429 does not count against a request's retry budget. With a `deadline` (the run's
`--max-duration`, as a `time.monotonic()` instant) the waiting is bounded by it: a pause
or a paced start beyond it ends the request with `TimeLimit` before it is sent, so a POST
is never left in doubt. Without one, a request gives up after `MAX_THROTTLED` 429s.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from typing import Any

from reconciler.net.deadline import TimeLimit as RunTimeLimit

DECREASE = 0.9  # multiplicative decrease: this share of the recent successful rate
INCREASE = 0.02  # additive increase per second: this share of the rate set at the last 429
MIN_RATE = 1 / 60  # requests/s: never slower than one a minute
DEFAULT_PAUSE = 1.0  # seconds, for a 429 without a usable Retry-After
WINDOW = 5.0  # seconds of answers behind the "rate the server let through lately"
ENOUGH = 20  # ... or the time of this many answers, when the rate is low
MIN_SPAN = 0.25  # seconds: a shorter start of a run is measured as this long
FEW = 5  # fewer successes than this in that window tell nothing of the server's rate
CROWDED = 0.2  # this share of recent attempts refused: the limit is well below the rate
SPACING = 4.0  # seconds: at most one decrease in this time (429s that are not a limit,
# one in twenty at random say, would otherwise lower the rate without end; in 4 s the
# additive increase wins back most of a decrease)
MAX_THROTTLED = 100  # 429s one request may take when the run has no deadline
NOTICE_EVERY = 10.0  # seconds between two progress lines about the same throttling


class TimeLimit(RunTimeLimit):
    """Waiting for the API's rate limit would outlast the run's time limit: the request
    was not sent. The engine ends such a run as its --max-duration (exit 124)."""


class Throttle:
    """The allowed request rate of one API and its pause after a 429 (module docstring).

    `wait()` before each attempt (holding a slot), then `answered()` or `refused()` with
    the instant `wait()` returned. Single event loop; no locks needed."""

    def __init__(
        self,
        service: str = "API",
        *,
        max_per_minute: float | None = None,
        deadline: float | None = None,
        notice: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.deadline = deadline
        self.notice = notice
        self.clock = clock
        self.cap: float | None = None
        self.rate: float | None = None  # requests/s allowed; None: not limited
        self.concurrency = 1  # the largest max_concurrency of the clients using it
        self.paused_until = 0.0
        self.paused_seconds = 0.0  # wall time under a pause (overlapping pauses once)
        self.pauses = 0
        self.decreases = 0
        self.lowest: float | None = None
        self._next = 0.0  # the earliest start of the next paced request
        self._decreased_at = -1.0  # requests sent before this say nothing new
        self._step = 0.0  # the additive increase, requests/s per second
        self._grown_at = 0.0
        self._answers: collections.deque[float] = collections.deque()
        self._refusals: collections.deque[float] = collections.deque()
        self._episodes: collections.deque[float] = collections.deque()  # pauses begun
        self._first: float | None = None  # when the first request was sent
        self._latency = 0.0  # moving average of answered requests' time, seconds
        self._noticed_at = -NOTICE_EVERY
        self._noticed_rate: float | None = None
        self._throttled_at: float | None = None  # the first decrease since not throttling
        self.limit(max_per_minute)

    def limit(self, per_minute: float | None) -> None:
        """Cap the rate (a tenant's known limit); None: no cap beyond what 429s teach."""
        if per_minute is None:
            return
        if per_minute <= 0:
            raise ValueError("max_requests_per_minute must be positive")
        self.cap = per_minute / 60
        self.rate = self.cap if self.rate is None else min(self.rate, self.cap)

    # --- before each attempt -----------------------------------------------------------------

    async def wait(self) -> float:
        """Wait for the pause to end and the request's paced start; the send instant."""
        while True:
            now = self.clock()
            if self._first is None:
                self._first = now
            start = max(now, self.paused_until, self._next if self.rate else now)
            if self.deadline is not None and start > self.deadline:
                raise TimeLimit(self._over_deadline(start - now))
            if self.rate:
                self._grow(now, paced=self._next > now)
            if self.rate:  # (unless the increase just lifted it)
                self._next = start + 1 / self.rate
                self._tell(now)
            if start <= now:
                return now
            await asyncio.sleep(start - now)
            if self.clock() >= self.paused_until:  # else a pause began meanwhile: again
                return self.clock()

    def _over_deadline(self, wait: float) -> str:
        left = max(0.0, (self.deadline or 0.0) - self.clock())
        return (
            f"{self.service} is rate-limiting: the next request could start in "
            f"{_seconds(wait, up=True)}, after the run's time limit "
            f"({_seconds(left, up=False)} left); stopped without sending it"
        )

    def _grow(self, now: float, *, paced: bool) -> None:
        """Additive increase, while the rate is what holds requests back."""
        assert self.rate is not None
        if paced and self._grown_at:
            self.rate += self._step * min(now - self._grown_at, 1.0)
            if self.cap is not None:
                self.rate = min(self.rate, self.cap)
            elif self._latency and self.rate > self.concurrency / self._latency:
                self.rate = None  # more than the slots can send: no longer the limit
                self._noticed_rate = self._throttled_at = None
                if self.notice is not None:
                    self.notice(f"{self.service} stopped throttling")
                return
        self._grown_at = now

    # --- after each answer ---------------------------------------------------------------

    def answered(self, sent: float) -> None:
        now = self.clock()
        self._answers.append(now)
        self._latency = 0.9 * self._latency + 0.1 * (now - sent) if self._latency else now - sent
        horizon = now - max(WINDOW, ENOUGH / self.rate if self.rate else 0.0)
        for times in (self._answers, self._refusals, self._episodes):
            while times and times[0] < horizon:
                times.popleft()

    def refused(self, sent: float, retry_after: float | None) -> None:
        """A 429 to a request sent at `sent`: pause every slot; lower the rate once a burst."""
        now = self.clock()
        self._refusals.append(now)
        until = now + (DEFAULT_PAUSE if retry_after is None else retry_after)
        if until > self.paused_until:
            self.paused_seconds += until - max(now, self.paused_until)
            if self.paused_until <= now and until > now:  # Retry-After: 0 is no pause
                self.pauses += 1
                self._episodes.append(now)
            self.paused_until = until
        if sent <= self._decreased_at:
            return  # sent before the last decrease: this burst already lowered the rate
        rate = self._lowered(now)
        if rate is None:
            return  # too soon, or nothing known yet of what the server lets through
        self._decreased_at = now
        self.rate = rate
        self._step = INCREASE * rate
        self._grown_at = 0.0
        self.decreases += 1
        self.lowest = rate if self.lowest is None else min(self.lowest, rate)
        self._tell(now)

    def _lowered(self, now: float) -> float | None:
        """The multiplicative decrease, or None for none.

        When many recent attempts were refused (CROWDED), or a pause follows another
        within the window (a `Retry-After: 0` is no pause), the client is over the
        limit: the base is the rate the server let through lately (answers per second
        over the last WINDOW seconds, pauses included: a server's bucket refills during
        them), followed at once. Otherwise a 429 is a stray one among many answers: it
        lowers an allowed rate already set the same way but at most once every SPACING
        seconds and at most by half, and sets none. None: no decrease."""
        since = self._first if self._first is not None else now
        span = max(MIN_SPAN, min(WINDOW, now - since))
        answers = sum(1 for t in self._answers if t >= now - span)
        refusals = sum(1 for t in self._refusals if t >= now - span)
        # Many refused, or pauses one after another: a limit, not a stray 429.
        crowded = refusals >= CROWDED * (answers + refusals) or (
            sum(1 for t in self._episodes if t >= now - span) >= 2
        )
        if not crowded:
            if self.rate is None or now < self._decreased_at + SPACING:
                return None  # a stray 429 among many answers: the pause says enough
            # the answers may be fewer only because the client had less to send: at most
            # halve on their word
            return max(MIN_RATE, DECREASE * min(self.rate, max(answers / span, self.rate / 2)))
        if answers < FEW:
            return None if self.rate is None else max(MIN_RATE, DECREASE * self.rate)
        recent = answers / span
        return max(MIN_RATE, DECREASE * (recent if self.rate is None else min(self.rate, recent)))

    def _tell(self, now: float) -> None:
        """The progress lines (after each decrease and each paced start): at the first
        decrease that the API throttles, without a figure; after WINDOW seconds without
        a pause, the rate of answers over them - what the server let through, not the
        rate the client tries (that one starts from the server's burst allowance, 36
        requests/s at a limit of 10, and probes above the limit while it increases) -
        and again when that moved by a fifth (at most every NOTICE_EVERY seconds)."""
        if self.notice is None or self.rate is None or not self.decreases:
            return
        if self._throttled_at is None:
            self._throttled_at = now
            self.notice(
                f"{self.service} is throttling: it answered 429 Too Many Requests; pausing "
                "and slowing down to the rate it allows"
            )
            return
        if now - max(self._throttled_at, self.paused_until) < WINDOW:
            return  # a pause in the window would say less than the server lets through
        through = sum(1 for t in self._answers if t >= now - WINDOW) / WINDOW
        last = self._noticed_rate
        if last is not None and (
            now - self._noticed_at < NOTICE_EVERY or abs(through - last) < 0.2 * last
        ):
            return
        self._noticed_at, self._noticed_rate = now, through
        self.notice(f"{self.service} is throttling: about {_rate(through)} requests/s get through")

    # --- what the run record keeps ---------------------------------------------------------

    def may_retry(self, retry_after: float | None, refusals: int, longest: float) -> bool:
        """Whether a request refused `refusals` times may wait for another try: bounded by
        the deadline when there is one (`wait()` stops it there), else by a count and by
        `longest`, the longest Retry-After worth waiting for."""
        if self.deadline is not None:
            return True
        return refusals <= MAX_THROTTLED and (retry_after is None or retry_after <= longest)

    def to_json(self) -> dict[str, Any]:
        return {
            "pauses": self.pauses,
            "paused_seconds": round(self.paused_seconds, 3),
            "decreases": self.decreases,
            "rate_per_second": None if self.rate is None else round(self.rate, 2),
            "lowest_rate_per_second": None if self.lowest is None else round(self.lowest, 2),
            "max_per_minute": None if self.cap is None else round(self.cap * 60, 2),
        }


def _rate(rate: float) -> str:
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


def _seconds(seconds: float, *, up: bool) -> str:
    """`30 s`, `1.4 s`, `less than 0.1 s`: a wait rounded up and what is left rounded down,
    so a wait longer than what is left never reads as equal to it ("1 s ... (1 s left)")."""
    tenths = 1 if seconds >= 10 else 10
    rounded = (math.ceil if up else math.floor)(round(seconds * tenths, 3))
    if rounded <= 0:
        return "less than 0.1 s"
    return f"{rounded} s" if tenths == 1 else f"{rounded / 10:g} s"
