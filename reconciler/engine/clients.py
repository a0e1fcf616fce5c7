"""The one place the API clients are made: one factory per API.

The engine is handed a `Clients` instead of reading the environment itself, so the demo
and the tests point a whole sync at the sandbox by passing `Clients(environ=sandbox.env())`
(no monkeypatching, no mutation of os.environ), and tests can shorten retry timing with
`http`. `status` uses the same factories with its own, short timeouts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from reconciler.config.env import cw_credentials_from_env, resolve_api_url, zerotek_token_from_env
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.core.model import Config, Settings
from reconciler.net.deadline import RunDeadline
from reconciler.net.settings import DEFAULT_HTTP, HttpSettings
from reconciler.net.stats import RequestStats, Traffic
from reconciler.usage.zerotek import ZeroTekClient


def http_settings(settings: Settings | None, api: str, http: HttpSettings) -> HttpSettings:
    """`http` with the config's concurrency and `api`'s rate limit in place of its own: how
    hard an API may be pressed is settings.yaml's to say."""
    if settings is None:
        return http
    rate = (
        settings.cw_max_requests_per_minute
        if api == ConnectWiseClient.api
        else settings.zerotek_max_requests_per_minute
    )
    return replace(http, max_concurrency=settings.max_concurrency, max_requests_per_minute=rate)


def connectwise_client(
    settings: Settings | None,
    environ: Mapping[str, str] | None = None,
    http: HttpSettings = DEFAULT_HTTP,
    *,
    stats: RequestStats | None = None,
) -> ConnectWiseClient:
    """URL from CW_API_URL (else settings), credentials from CW_* (never from a file)."""
    url = resolve_api_url(settings.cw_api_url if settings else "", "CW_API_URL", environ)
    http = http_settings(settings, ConnectWiseClient.api, http)
    return ConnectWiseClient(url, cw_credentials_from_env(environ), http=http, stats=stats)


def zerotek_client(
    settings: Settings | None,
    environ: Mapping[str, str] | None = None,
    http: HttpSettings = DEFAULT_HTTP,
    *,
    stats: RequestStats | None = None,
) -> ZeroTekClient:
    """URL from ZEROTEK_API_URL (else settings), token from ZEROTEK_API_TOKEN."""
    url = resolve_api_url(settings.zerotek_api_url if settings else "", "ZEROTEK_API_URL", environ)
    http = http_settings(settings, ZeroTekClient.api, http)
    return ZeroTekClient(url, zerotek_token_from_env(environ), http=http, stats=stats)


@dataclass(frozen=True)
class Clients:
    """How a sync reaches ConnectWise and ZeroTek. `environ` None means os.environ;
    `http` is how both clients talk HTTP (retry timing, deadlines, size caps), but for
    concurrency and rate limits, which are the config's; every client made here counts its
    requests into `traffic` (the engine gives each command a fresh one)."""

    environ: Mapping[str, str] | None = None
    http: HttpSettings = DEFAULT_HTTP
    traffic: Traffic = field(default_factory=Traffic, compare=False, repr=False)
    # The run's --max-duration clock (the engine starts one per command): every client
    # made here can ask it how long is left (reconciler.net.deadline).
    deadline: RunDeadline = field(default_factory=RunDeadline.unbounded, compare=False, repr=False)

    def connectwise(self, config: Config) -> ConnectWiseClient:
        stats = self.traffic.of(ConnectWiseClient.api)
        client = connectwise_client(config.settings, self.environ, self.http, stats=stats)
        client.run_deadline = self.deadline
        return client

    def zerotek(self, config: Config) -> ZeroTekClient:
        stats = self.traffic.of(ZeroTekClient.api)
        client = zerotek_client(config.settings, self.environ, self.http, stats=stats)
        client.run_deadline = self.deadline
        return client
