"""Secrets and API roots from the environment.

Secrets never come from files and never appear in a repr or a message: errors name the
missing variables, never their values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from reconciler.config.urls import insecure_url_reason
from reconciler.core.errors import ReconcileError
from reconciler.secure.scrub import CW_VARS, check_credentials

CW_CREDENTIAL_VARS = CW_VARS
ZEROTEK_TOKEN_VAR = "ZEROTEK_API_TOKEN"
API_CREDENTIAL_VARS = (*CW_VARS, ZEROTEK_TOKEN_VAR)


@dataclass(frozen=True)
class CWCredentials:
    company_id: str
    public_key: str = field(repr=False)
    private_key: str = field(repr=False)
    client_id: str = field(repr=False)

    @property
    def username(self) -> str:
        return f"{self.company_id}+{self.public_key}"


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _missing(names: tuple[str, ...], env: Mapping[str, str]) -> list[str]:
    return [n for n in names if not env.get(n, "").strip()]


def cw_credentials_from_env(environ: Mapping[str, str] | None = None) -> CWCredentials:
    env = _environ(environ)
    check_credentials(CW_CREDENTIAL_VARS, env)
    missing = _missing(CW_CREDENTIAL_VARS, env)
    if missing:
        raise ReconcileError(
            "ConnectWise credentials missing: set the environment variable"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        )
    company, public, private, client = (env[n].strip() for n in CW_CREDENTIAL_VARS)
    return CWCredentials(company, public, private, client)


def zerotek_token_from_env(environ: Mapping[str, str] | None = None) -> str:
    env = _environ(environ)
    check_credentials((ZEROTEK_TOKEN_VAR,), env)
    if _missing((ZEROTEK_TOKEN_VAR,), env):
        raise ReconcileError(
            f"ZeroTek credentials missing: set the environment variable {ZEROTEK_TOKEN_VAR}"
        )
    return env[ZEROTEK_TOKEN_VAR].strip()


def check_api_url(url: str, origin: str) -> str:
    """Refuse anything but https, except plain http to a loopback host (the sandbox):
    credentials must never cross a network in clear."""
    reason = insecure_url_reason(url)
    if reason is None:
        parts = urlsplit(url)
        if not parts.hostname:
            reason = f"{url!r} has no host"
        elif parts.username or parts.password:
            reason = "the URL must not embed credentials"
    if reason:
        raise ReconcileError(f"{origin}: {reason}")
    return url.rstrip("/")


def resolve_api_url(
    setting_url: str, env_name: str, environ: Mapping[str, str] | None = None
) -> str:
    """The environment overrides settings.yaml; an insecure settings URL is refused even
    when overridden (DESIGN 11: it would be used the day the variable is unset)."""
    env = _environ(environ)
    if setting_url:
        section = {"CW_API_URL": "connectwise", "ZEROTEK_API_URL": "zerotek"}.get(env_name)
        check_api_url(setting_url, f"settings.yaml {section or 'api'}.api_url")
    override = env.get(env_name, "").strip()
    if override:
        return check_api_url(override, env_name)
    if not setting_url:
        raise ReconcileError(f"no API URL: set {env_name} or the api_url in settings.yaml")
    return setting_url.rstrip("/")
