"""The one retry policy of every HTTP client here: how long to wait before the next attempt
(exponential backoff with full jitter, or the server's `Retry-After`), and the longest
`Retry-After` worth waiting for."""

from __future__ import annotations

import datetime as dt
import email.utils
import random

# Retry-After beyond this is treated as "come back much later": better to fail the run
# clearly than to sleep for an hour inside a CI job.
MAX_RETRY_AFTER = 120.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def retry_delay(attempt: int, retry_after: float | None, base: float, maximum: float) -> float:
    """The one retry policy (every HTTP client here): exponential backoff with full jitter,
    or the server's `Retry-After` plus at most a second of jitter, so concurrent retries
    do not stampede."""
    jitter = random.uniform(0, min(maximum, base * 2**attempt))
    if retry_after is None:
        return jitter
    return retry_after + min(jitter, 1.0)
