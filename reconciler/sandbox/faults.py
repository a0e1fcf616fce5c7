"""Request counters and injected faults (see server.py for what each fault does)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter


class Stats:
    """Requests received by kind ("GET companies", "POST additions", ...), committed writes,
    faults injected by kind, and body bytes received and sent. Every request counts,
    faulted or not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.writes = 0
        self.bytes_in = 0  # request bodies received
        self.bytes_out = 0  # response bodies sent

    def __getitem__(self, kind: str) -> int:
        return self.requests[kind]

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.writes = 0
            self.bytes_in = self.bytes_out = 0

    def _count(self, kind: str, body_bytes: int = 0) -> None:
        with self._lock:
            self.requests[kind] += 1
            self.bytes_in += body_bytes

    def _sent(self, body_bytes: int) -> None:
        with self._lock:
            self.bytes_out += body_bytes

    def _fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def _write(self) -> int:
        with self._lock:
            self.writes += 1
            return self.writes

    def __repr__(self) -> str:
        return f"Stats(total={self.total}, writes={self.writes}, requests={dict(self.requests)})"


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.configure()

    def configure(
        self,
        *,
        error_500: float = 0.0,
        error_429: float = 0.0,
        drop: float = 0.0,
        lost_write: float = 0.0,
        retry_after: int = 1,
        seed: int = 0,
        methods: set[str] | frozenset[str] | list[str] | None = None,
    ) -> None:
        rates = {"drop": drop, "500": error_500, "429": error_429, "lost_write": lost_write}
        if any(not 0 <= p <= 1 for p in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("fault probabilities must be within 0..1 and sum to at most 1")
        if retry_after < 0:
            raise ValueError("retry_after must be >= 0 seconds")
        with self._lock:
            self.rates = rates
            self.retry_after = int(retry_after)
            self.methods = frozenset(m.upper() for m in methods) if methods else None
            self._rng = random.Random(seed)

    def draw(self, method: str) -> str | None:
        if self.methods is not None and method not in self.methods:
            return None
        with self._lock:
            r = self._rng.random()
            for kind, p in self.rates.items():
                if r < p:
                    return kind
                r -= p
        return None


class RateLimit:
    """A hidden token bucket per API, as a rate-limited tenant has: `per_minute` requests a
    minute, bursts of up to `burst` (default: one second's worth, at least 1). A request
    finding the bucket empty is refused; `take` says how long until the next token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.configure(None)

    def configure(self, per_minute: float | None, *, burst: float | None = None) -> None:
        if per_minute is not None and per_minute <= 0:
            raise ValueError("the rate limit must be positive (requests per minute)")
        if burst is not None and burst < 1:
            raise ValueError("the burst must be at least 1 request")
        with self._lock:
            self.per_minute = per_minute
            rate = (per_minute or 0) / 60
            self.burst = burst if burst is not None else max(1.0, rate)
            # Buckets start full; a changed limit keeps what is left, capped by the new burst.
            self._buckets: dict[str, tuple[float, float]] = getattr(self, "_buckets", {})
            self._buckets = {
                api: (min(tokens, self.burst), last)
                for api, (tokens, last) in self._buckets.items()
            }

    def take(self, api: str, now: float | None = None) -> float | None:
        """None when a token was taken (the request may proceed), else the seconds until
        one will be there."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.per_minute is None:
                return None
            rate = self.per_minute / 60
            tokens, last = self._buckets.get(api, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[api] = (tokens - 1, now)
                return None
            self._buckets[api] = (tokens, now)
            return (1 - tokens) / rate
