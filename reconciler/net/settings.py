"""How an API client talks HTTP, as one value: concurrency, rate limit, timeouts, the size
cap and the retry timing.

`engine.clients` makes one per client, from the config (concurrency, each API's rate limit)
and the caller's timing (`status` probes briefly, tests retry fast), and hands it to the
client's constructor; nothing between re-lists the fields.
"""

from __future__ import annotations

from dataclasses import dataclass

# Per attempt, connect through the last byte of the body: httpx's own timeouts bound each
# read, so a server trickling one byte every few seconds would otherwise never time out.
DEADLINE_SECONDS = 60.0
# Larger answers are refused while they stream in, before they can take the memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class HttpSettings:
    """Values only: the client's transport, statistics and throttle are its own (a value
    shared by several clients must not share a connection pool)."""

    max_concurrency: int = 8  # requests in flight at once, and connections kept open
    max_requests_per_minute: float | None = None  # None: learnt from the API's 429s
    timeout: float = 30.0  # httpx's, per step: connect, each read, each write
    deadline: float = DEADLINE_SECONDS
    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_retries: int = 5  # of a failed attempt (5xx, connection); 429s do not count
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")


DEFAULT_HTTP = HttpSettings()
