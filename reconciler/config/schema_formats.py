"""What the schemas' formats and types mean here, for both validators (jsonschema, which
explains, and fastjsonschema, which answers yes/no fast): an e-mail address, an IANA time
zone, an absolute URL, and an integer (a Python int: 1.0 in YAML is a float someone wrote).
"""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

# Deliberately simple: catches the typos people make (missing @, spaces, no domain dot)
# without pretending to implement RFC 5322.
EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


@cache
def timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_timezone(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type keyword reports non-strings
    if value in timezones():
        return True
    if timezones():
        return False
    try:  # no tz database listing (some Windows installs): ask zoneinfo directly
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def is_email(value: object) -> bool:
    return not isinstance(value, str) or EMAIL.fullmatch(value) is not None


def is_url(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return bool(parts.scheme and parts.hostname)


# The same checks for fastjsonschema (which would otherwise reject these unknown formats).
FAST_FORMATS = {"email": is_email, "iana-timezone": is_timezone, "uri": is_url}


def format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("email")(is_email)
    checker.checks("iana-timezone")(is_timezone)
    # The stock "uri" check silently passes unless rfc3987 is installed.
    checker.checks("uri")(is_url)
    return checker


# JSON Schema counts 1.0 and 1e308 as integers; in a YAML mapping they are floats someone
# JSON Schema counts 1.0 and 1e308 as integers; in a YAML mapping they are floats someone
# wrote (an agreement id of 1e308 is a typo, not agreement 10^308), so only ints are integers.
TYPES = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
)
