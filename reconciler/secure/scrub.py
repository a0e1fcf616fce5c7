"""Credentials: checked before any request, scrubbed from everything we write (DESIGN 12.6).

Every credential variable is listed once, here. `check_credentials` refuses a value that
could not travel in an HTTP header or an SMTP login as given (CR, LF, NUL or any other
control character, non-ASCII), naming the variable and never the value. `scrub` replaces
every credential in a text — raw, as Python `repr` and JSON would escape it, URL-encoded,
HTML-, Markdown- and CSV-escaped, and the base64 of ConnectWise's Basic-auth pair — before the
text reaches stdout, stderr, a run record, a plan file, an e-mail or a PR comment.

The only place that removes secrets: the HTTP clients (server text in errors), the GitHub
client, the chat webhook, the run log, the e-mails and the guarded process streams all call
`scrub`/`Scrubber`, passing the values they hold that the environment may not (a client's
own key); none replaces a secret by hand. The ConnectWise client builds its Basic token with
`basic_auth_token`, so the base64 form removed is the form sent.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import html
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

from reconciler.core.errors import ReconcileError
from reconciler.secure.untrusted import OutputGuard, in_github_actions, json_dumps, markdown, plain
from reconciler.secure.untrusted import html as html_text

CW_VARS = ("CW_COMPANY_ID", "CW_PUBLIC_KEY", "CW_PRIVATE_KEY", "CW_CLIENT_ID")
# RECONCILE_WEBHOOK_URL: a chat webhook's URL is its credential (reconciler.notify.chat).
CREDENTIAL_VARS = (
    *CW_VARS,
    "ZEROTEK_API_TOKEN",
    "SMTP_PASSWORD",
    "GITHUB_TOKEN",
    "RECONCILE_WEBHOOK_URL",
)
# Shorter values would garble ordinary text ("ab" everywhere) and are no real credential.
MIN_SECRET_LEN = 4
# Values known to be public (the sandbox's demo credentials, printed as `export` lines for
# a shell to eval): never redacted, even when the environment holds them as credentials.
_PUBLIC: set[str] = set()


def declare_public(*values: str) -> None:
    """Mark `values` as public: the scrubber leaves them (DESIGN 13.5: `reconcile sandbox`
    prints its demo credentials; redacting them would break the shell that evals them)."""
    _PUBLIC.update(values)


class CredentialError(ReconcileError):
    """A credential variable holds a value we refuse to send."""


def credential_problem(value: str) -> str | None:
    """Why `value` cannot be sent as given, in words that never quote it."""
    if "\r" in value or "\n" in value:
        return "contains a line break (CR or LF)"
    if "\0" in value:
        return "contains a NUL character"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "contains a control character"
    if not value.isascii():
        return "contains a non-ASCII character"
    return None


def check_credentials(
    names: Iterable[str] = CREDENTIAL_VARS, environ: Mapping[str, str] | None = None
) -> None:
    """Refuse every set credential among `names` that could not be sent as it is. Called
    before any request, so a bad value never reaches an HTTP library's error message."""
    env = os.environ if environ is None else environ
    bad = [(n, why) for n in names if (why := credential_problem(env.get(n) or ""))]
    if bad:
        raise CredentialError(
            "; ".join(f"{name} {why}" for name, why in bad)
            + ": refused before any request (the value is not shown; set it again without "
            "line breaks, control or non-ASCII characters)"
        )


# --- the scrubber ----------------------------------------------------------------------------


def _forms(value: str) -> set[str]:
    """The shapes a value takes in the texts we write."""
    found = {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        json_dumps(value)[1:-1],  # ours: "##[" written as "##\u005b"
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        html.escape(value),
        html.escape(value, quote=False),
        plain(value),
        html_text(value),
        markdown(value),
    }
    found.add(value.replace('"', '""'))  # a quoted CSV cell (report --format csv)
    backslashed = value.replace("\\", "\\\\")
    found |= {backslashed, backslashed.replace("'", "\\'")}  # repr's other quoting choices
    found |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in found}
    return {f for f in found if len(f) >= MIN_SECRET_LEN}


def basic_auth_token(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


@lru_cache(maxsize=16)
def _labels(secrets: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Every form of every secret -> its label, longest form first."""
    labels: dict[str, str] = {}
    for label, value in secrets:
        for form in _forms(value):
            labels.setdefault(form, label)
    return dict(sorted(labels.items(), key=lambda item: -len(item[0])))


def _env_secrets(env: Mapping[str, str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name in CREDENTIAL_VARS:
        raw = env.get(name) or ""
        for value in {raw, raw.strip()}:
            if len(value) >= MIN_SECRET_LEN and value not in _PUBLIC:
                found.append((f"[{name} redacted]", value))
    company, public, private = (env.get(n, "").strip() for n in CW_VARS[:3])
    if company and public and private and not {company, public, private} <= _PUBLIC:
        token = basic_auth_token(f"{company}+{public}", private)
        found += [("[CW_PRIVATE_KEY redacted]", token.rstrip("="))]
    return found


class Scrubber:
    """Replaces every credential form in a text; built once per environment snapshot.

    Substring tests (C speed) decide whether a text holds any form at all; only then does a
    regex of the forms present replace them, longest first."""

    def __init__(self, extra: Iterable[str] = (), environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        secrets = _env_secrets(env) + [("***", v) for v in extra if len(v) >= MIN_SECRET_LEN]
        self._labels = _labels(tuple(secrets)) if secrets else {}

    def _present(self, text: str, forms: Iterable[str] | None = None) -> list[str]:
        return [form for form in (self._labels if forms is None else forms) if form in text]

    def __call__(self, text: str, forms: Iterable[str] | None = None) -> str:
        present = self._present(text, forms) if self._labels else None
        if not present:
            return text
        pattern = re.compile("|".join(map(re.escape, present)))
        return pattern.sub(lambda m: self._labels[m.group()], text)

    def holds_secret(self, text: str) -> bool:
        """Whether `text` holds any form of any credential (C-speed substring tests)."""
        return any(form in text for form in self._labels)

    def tree(self, value: Any) -> Any:
        """Every string (keys too) of a JSON-like structure. One test over its JSON text
        first: a 10,000-customer run record is walked only when it holds a credential,
        and then only for the forms of the credentials it holds."""
        if not self._labels:
            return value
        found = self._present(json.dumps(value, ensure_ascii=False, default=str))
        if not found:
            return value
        labels = {self._labels[f] for f in found}
        forms = [f for f, label in self._labels.items() if label in labels]
        return self._tree(value, forms)

    def _tree(self, value: Any, forms: list[str]) -> Any:
        if isinstance(value, str):
            return self(value, forms)
        if isinstance(value, dict):
            return {self._tree(k, forms): self._tree(v, forms) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._tree(v, forms) for v in value]
        return value


def scrub(text: str, extra: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> str:
    """`text` with every credential (the environment's, plus `extra` values a client holds)
    replaced by `[NAME redacted]` (`***` for an extra value not in the environment)."""
    return Scrubber(extra, environ)(text)


def scrub_tree(value: Any, extra: Iterable[str] = ()) -> Any:
    return Scrubber(extra).tree(value)


def shorten(text: object, limit: int, extra: Iterable[str] = (), *, mark: str = "…") -> str:
    """The one way untrusted or API text is cut to `limit` characters for a message
    (DESIGN 13.5): credentials are scrubbed from the whole text FIRST, then it is made one
    line, then cut. Cutting first would leave a credential's first characters, which the
    scrubber no longer recognises, in the message."""
    whole = " ".join(scrub(str(text), extra).split())
    return whole if len(whole) <= limit else whole[: max(0, limit - len(mark))] + mark


# --- the process's streams -------------------------------------------------------------------
# Here, not in untrusted: the guard (untrusted.OutputGuard) takes the scrubber as a
# parameter, so untrusted never imports this module (no import cycle).


@contextlib.contextmanager
def guarded_output() -> Iterator[None]:
    """Guard sys.stdout and sys.stderr for the duration (idempotent: nested calls reuse the
    guard in place)."""
    if isinstance(sys.stdout, OutputGuard) and isinstance(sys.stderr, OutputGuard):
        yield
        return
    workflow = in_github_actions()
    saved = sys.stdout, sys.stderr
    out = OutputGuard(sys.stdout, workflow=workflow, scrub=scrub)
    err = OutputGuard(sys.stderr, workflow=workflow, scrub=scrub)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        out.finish()
        err.finish()
        sys.stdout, sys.stderr = saved


def guard_process_output() -> None:
    """For the console script: guard the process's streams until it exits, so even a
    traceback printed by the interpreter passes through the scrubber and the guard."""
    if isinstance(sys.stdout, OutputGuard):
        return
    workflow = in_github_actions()
    out = OutputGuard(sys.stdout, workflow=workflow, scrub=scrub)
    err = OutputGuard(sys.stderr, workflow=workflow, scrub=scrub)
    sys.stdout, sys.stderr = out, err
    atexit.register(err.finish)
    atexit.register(out.finish)
