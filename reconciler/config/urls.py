"""Which URLs credentials may travel to: https://, or plain http:// to a loopback host only
(the sandbox). The loader applies it to settings.yaml, `env` to the API roots the
environment gives, the mailer to an SMTP host without TLS.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and localhost: the only hosts plain http:// may talk to."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_url_reason(url: str) -> str | None:
    """Why `url` may not be used for API calls (credentials travel with it), else None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"not a valid URL: {url!r}"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if is_loopback_host(host):
            return None
        return (
            f"plain http:// is allowed only for loopback hosts (127.0.0.1, ::1, localhost), "
            f"not {host!r}; use https://"
        )
    return f"expected an https:// URL, got {url!r}"
