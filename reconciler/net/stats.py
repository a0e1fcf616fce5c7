"""What the API clients sent and received during one command: `RequestStats` per API and
`Traffic`, the set of them a command keeps (the run record's `requests`, `-v` and the
benchmarks), with their JSON form."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.net.throttle import Throttle


@dataclass
class RequestStats:
    """What the clients of one API sent and received during one command: the run record's
    `requests`, `-v` and the benchmarks. Clients made through one `Clients` share it.

    A few additions per request, never a list per request (10,000-customer runs send tens
    of thousands). `by_kind` counts every attempt, retries included, by method and route
    pattern (`GET finance/agreements/{id}/additions`): never a raw URL (ids, query
    conditions with names from the APIs) and never a header (credentials). Bytes are of
    request and response bodies as sent and received on the wire."""

    by_method: Counter[str] = field(default_factory=Counter)  # logical requests by method
    retries: int = 0
    longest_url: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)  # attempts, retries included
    status_429: int = 0
    wait_seconds: float = 0.0  # slept in back-off and Retry-After before retries
    request_seconds: float = 0.0  # summed over attempts (concurrent ones overlap)
    bytes_received: int = 0
    bytes_sent: int = 0
    throttle: Throttle | None = None  # the API's rate, set by the first client made

    @property
    def requests(self) -> int:
        """Logical requests (a request retried three times counts once)."""
        return sum(self.by_method.values())

    @property
    def attempts(self) -> int:
        """Requests sent, retries included."""
        return sum(self.by_kind.values())

    def to_json(self) -> dict[str, Any]:
        """As the run record holds it (schemas/run.schema.json, `api_requests`)."""
        return {
            "requests": self.attempts,
            "by_kind": dict(sorted(self.by_kind.items())),
            "retries": self.retries,
            "status_429": self.status_429,
            "wait_seconds": round(self.wait_seconds, 3),
            "request_seconds": round(self.request_seconds, 3),
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
            "throttle": (self.throttle or Throttle()).to_json(),
        }


# The APIs a run talks to, as the run record names them.
APIS = ("connectwise", "zerotek")


class Traffic:
    """Request statistics per API for one command (one `RequestStats` per API, shared by
    every client of that API the command makes, and with it one `Throttle`).

    `notice` gets the throttles' progress lines ("ConnectWise is throttling: about 9.8
    requests/s get through"); `deadline` (a `time.monotonic()` instant: the run's time limit) bounds
    their waiting."""

    def __init__(
        self, *, notice: Callable[[str], None] | None = None, deadline: float | None = None
    ) -> None:
        self.apis: dict[str, RequestStats] = {}
        self.notice = notice
        self.deadline = deadline

    def of(self, api: str) -> RequestStats:
        stats = self.apis.get(api)
        if stats is None:
            throttle = Throttle(notice=self.notice, deadline=self.deadline)
            stats = self.apis[api] = RequestStats(throttle=throttle)
        return stats

    def to_json(self) -> dict[str, dict[str, Any]]:
        """Every API in APIS, with zeros when one was not contacted: stable keys."""
        return {name: self.of(name).to_json() for name in APIS}
