"""`reconcile status`: is the integration set up and active?

Procedure 1: credentials, checked live and read-only against both systems, each with a
verdict saying what to fix. Procedure 2: the mappings are valid and map at least one
customer. Then the `enabled` flag decides active / inactive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.config.loader import load_config, load_settings_only
from reconciler.core.errors import ConfigError, ReconcileError
from reconciler.core.model import Config, Settings
from reconciler.engine.clients import connectwise_client, zerotek_client
from reconciler.net.errors import ApiError
from reconciler.net.http import HttpApi
from reconciler.net.settings import HttpSettings
from reconciler.secure.untrusted import plain
from reconciler.usage.zerotek import CUSTOMERS

CREDENTIALS = "procedure 1 (credentials)"
MAPPINGS = "procedure 2 (mappings)"


@dataclass(frozen=True)
class Check:
    procedure: str
    name: str
    ok: bool
    verdict: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatusReport:
    checks: tuple[Check, ...]
    enabled: bool | None  # None: settings.yaml unreadable

    @property
    def ok(self) -> bool:
        """Every check passed (a deactivated integration is still a healthy setup)."""
        return all(c.ok for c in self.checks)

    @property
    def state(self) -> str:
        failed = list(dict.fromkeys(c.procedure for c in self.checks if not c.ok))
        if failed:
            names = ", ".join(c.name for c in self.checks if not c.ok)
            return f"inactive: {' and '.join(failed)} failed ({names})"
        if not self.enabled:
            return "inactive: integration is deactivated (reconcile activate)"
        return "active"


async def check_status(
    config_dir: Path, environ: Mapping[str, str] | None = None, *, timeout: float = 10.0
) -> StatusReport:
    config: Config | None = None
    settings: Settings | None = None
    try:
        config = load_config(config_dir)
        settings = config.settings
        mappings = _mappings_check(config)
    except ConfigError as exc:
        mappings = Check(
            MAPPINGS,
            "mappings",
            False,
            f"invalid: {len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}",
            # one line each: the excerpt under a syntax error is for validate's terminal
            tuple(f"{p.location}: {p.message}" for p in exc.problems),
        )
        try:
            settings = load_settings_only(config_dir)
        except ConfigError:
            settings = None  # the URLs may still come from the environment
    cw, zt = await asyncio.gather(
        _connectwise_check(settings, environ, timeout),
        _zerotek_check(settings, environ, timeout),
    )
    return StatusReport((cw, zt, mappings), settings.enabled if settings else None)


def _mappings_check(config: Config) -> Check:
    if not config.customers:
        return Check(MAPPINGS, "mappings", False, "no customers mapped (customers.yaml)")
    if not config.skus:
        return Check(MAPPINGS, "mappings", False, "no SKUs mapped (skus.yaml)")
    return Check(
        MAPPINGS,
        "mappings",
        True,
        f"ok ({len(config.customers)} customers, {len(config.skus)} SKUs)",
    )


async def _connectwise_check(
    settings: Settings | None, environ: Mapping[str, str] | None, timeout: float
) -> Check:
    name = "ConnectWise"
    try:
        client = connectwise_client(settings, environ, _probe_http(timeout))
    except ReconcileError as exc:
        return Check(CREDENTIALS, name, False, str(exc))
    fields: dict[str, str | int] = {"pageSize": 1, "fields": "id"}
    return await _probe(client, "/company/companies", fields, name, client.base_url)


async def _zerotek_check(
    settings: Settings | None, environ: Mapping[str, str] | None, timeout: float
) -> Check:
    name = "ZeroTek"
    if settings is not None and settings.usage_source != "zerotek":
        return Check(CREDENTIALS, name, True, f"not used (usage.source: {settings.usage_source})")
    try:
        client = zerotek_client(settings, environ, _probe_http(timeout))
    except ReconcileError as exc:
        return Check(CREDENTIALS, name, False, str(exc))
    return await _probe(client, CUSTOMERS, None, name, client.base_url)


def _probe_http(timeout: float) -> HttpSettings:
    # A setup check answers fast or says why: one retry, short back-off.
    return HttpSettings(timeout=timeout, max_retries=1, backoff_base=0.2)


async def _probe(
    client: HttpApi, path: str, params: dict[str, str | int] | None, name: str, url: str
) -> Check:
    """One read-only request, its failure translated into what to fix."""
    async with client:
        try:
            await client.request("GET", path, params=params)
        except ApiError as exc:
            return Check(CREDENTIALS, name, False, _verdict(exc, client, url))
    return Check(CREDENTIALS, name, True, f"ok ({url})")


def _verdict(exc: ApiError, client: HttpApi, url: str) -> str:
    if exc.auth_rejected:
        return (
            f"{client.service} credentials rejected ({exc.status}): check "
            f"{client.credential_hint.replace('/', ', ')}"
        )
    if exc.unreachable:
        return f"host unreachable: {url}: {exc.message}"
    if exc.status == 404:
        return (
            f"wrong URL or credentials: {url} answered 404 on GET {exc.path}; "
            f"check {client.url_hint} and the credentials"
        )
    return str(exc)


def status_json(report: StatusReport) -> dict[str, object]:
    """The stable shape of `status --format json` (schemas/status.schema.json)."""
    return {
        "ok": report.ok,
        "state": report.state,
        "enabled": report.enabled,
        "checks": [
            {
                "procedure": c.procedure,
                "name": c.name,
                "ok": c.ok,
                "verdict": c.verdict,
                "details": list(c.details),
            }
            for c in report.checks
        ],
    }


def render_status(report: StatusReport) -> str:
    lines: list[str] = []
    for procedure in (CREDENTIALS, MAPPINGS):
        lines.append(procedure[0].upper() + procedure[1:] + ":")
        for check in report.checks:
            if check.procedure == procedure:
                lines.append(f"  {check.name}: {plain(check.verdict)}")
                lines.extend(f"    {plain(d)}" for d in check.details)
    enabled = {True: "true", False: "false", None: "unknown"}[report.enabled]
    lines.append(f"Enabled: {enabled}")
    lines.append(f"Status: {report.state}")
    return "\n".join(lines)
