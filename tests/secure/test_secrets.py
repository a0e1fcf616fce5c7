"""Credentials never leak (DESIGN 12.6), whatever their shape.

1. A credential holding a line break, a NUL or a non-ASCII character is refused before any
   request, naming the variable and never the value; a refused `apply` is still recorded
   and e-mailed (without the value).
2. Against a hostile server that echoes every request header back in its error bodies (as
   JSON, Python repr, URL-encoded and plain text), valid credentials with quote, backslash,
   slash, plus, percent, ampersand and angle-bracket characters appear in no output, run
   record, plan file, e-mail or PR comment, in any of those forms.
"""

from __future__ import annotations

import base64
import html
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import clirun
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from clirun import run as invoke
from runlog_samples import SmtpServer, run_smtp
from typer.testing import Result

from reconciler.sandbox import Sandbox
from reconciler.secure import scrub

AS_OF = ["--as-of", "2026-11-24"]


def forms(value: str) -> set[str]:
    """The shapes a leaked value could take in what we write."""
    found = {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value),
        html.escape(value),
    }
    return {f for f in found if len(f) >= 6}


def everything_written(config_dir: Path, results: list[Result], smtp: SmtpServer) -> str:
    texts = [r.stdout + "\n" + r.stderr for r in results]
    texts += [p.read_text(encoding="utf-8") for p in config_dir.rglob("*") if p.is_file()]
    for mail in smtp.sink.received:
        texts += [mail.raw.decode("utf-8", "replace"), mail.text, mail.html, mail.subject]
    return "\n".join(texts)


# --- 1. refused before any request --------------------------------------------------------------

BAD = "mark{n}-line\nbreak-Zürich-✓"  # the OS cannot put a NUL into the environment: see below
API_VARS = ("CW_COMPANY_ID", "CW_PUBLIC_KEY", "CW_PRIVATE_KEY", "CW_CLIENT_ID", "ZEROTEK_API_TOKEN")


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    with run_smtp() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.mark.parametrize("name", API_VARS)
def test_a_bad_api_credential_is_refused_before_any_request(
    name: str,
    sandbox: Sandbox,
    config_dir: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = BAD.format(n=API_VARS.index(name))
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("CI", "true")  # in CI the refused apply is recorded (and checked below)
    results = [
        invoke(config_dir, "plan", *AS_OF),
        invoke(config_dir, "apply", "--yes", *AS_OF),
        invoke(config_dir, "check-unmapped", *AS_OF, "--no-email"),
    ]
    assert sandbox.stats.total == 0  # not one request left with the bad value
    for result in results:
        assert result.exit_code == 1, result.output
        assert name in result.stderr and "refused" in result.stderr
    # status checks each service on its own: the one with the bad value is not contacted
    results.append(invoke(config_dir, "status"))
    assert results[-1].exit_code == 1 and name in results[-1].stdout
    cw_requests = sum(n for kind, n in sandbox.stats.requests.items() if "zt-" not in kind)
    assert (sandbox.stats.total - cw_requests if name.startswith("ZEROTEK") else cw_requests) == 0
    # the refused apply is a failed run, recorded and e-mailed, naming the variable only
    record = json.loads(next((config_dir / "runs").rglob("*-manual.json")).read_text())
    assert record["outcome"] == "failed" and name in record["error"]
    assert len(smtp.sink.received) == 1 and name in smtp.sink.received[0].text
    written = everything_written(config_dir, results, smtp)
    assert f"mark{API_VARS.index(name)}" not in written


def test_a_bad_smtp_password_is_refused_before_any_request(
    sandbox: Sandbox, config_dir: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", BAD.format(n=7))
    result = invoke(config_dir, "apply", "--yes", *AS_OF)
    assert result.exit_code == 1 and "SMTP_PASSWORD" in result.stderr
    assert sandbox.stats.total == 0 and not smtp.sink.received
    assert "mark7" not in result.output


def test_a_bad_github_token_is_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EchoServer() as server:
        plan = tmp_path / "plan.md"
        plan.write_text("<!-- reconcile:plan -->\nplan\n")
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        monkeypatch.setenv("GITHUB_TOKEN", BAD.format(n=8))
        result = clirun.invoke("pr-comment", "--file", str(plan), "--repo", "msp/cfg", "--pr", "1")
        assert result.exit_code == 1 and "GITHUB_TOKEN" in result.stderr
        assert server.requests == []
        assert "mark8" not in result.output


def test_nul_and_every_credential_variable_are_checked() -> None:
    """NUL cannot reach os.environ (the OS refuses it), so the check is shown directly."""
    for name in scrub.CREDENTIAL_VARS:
        env = {name: "mark9-\x00-Zürich"}
        with pytest.raises(scrub.CredentialError, match=f"^{name} contains a line break|"
                           f"^{name} contains a NUL"):  # fmt: skip
            scrub.check_credentials(environ=env)
    with pytest.raises(scrub.CredentialError) as err:
        scrub.check_credentials(environ={"CW_PRIVATE_KEY": "mark9\n\x00é"})
    assert "mark9" not in str(err.value)


# --- 2. a hostile server echoing request headers ------------------------------------------------

GOOD = {
    "CW_COMPANY_ID": "co-Ident\"ity'1",
    "CW_PUBLIC_KEY": "pub/Key+%41&<2>",
    "CW_PRIVATE_KEY": "pr!v\"K\\ey/+%41&<x>'=3",
    "CW_CLIENT_ID": 'client-ID"{4}/+&%20 x',
    "ZEROTEK_API_TOKEN": 'zt_tok\\en/"5"+%2F&<y>',
    "SMTP_PASSWORD": 'smtp-Pass"6\\/+%&<z>',
    "GITHUB_TOKEN": 'ghs_tok"7\\/+%3D&<w>',
}


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (the reconciler stops at the first refusal) is not
    this test's business: socketserver would print that BrokenPipeError's traceback to
    stderr, which CliRunner captures as the command's output."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class EchoServer:
    """Answers every request with an error whose body quotes all request headers: JSON in
    ConnectWise's error shape under /cw, plain text under /zt, GitHub's shape elsewhere."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.zerotek_ok = False  # True: ZeroTek answers an empty usage list instead
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests.append(f"{self.command} {self.path}")
                headers = dict(self.headers.items())
                text = (
                    f"raw {' '.join(headers.values())} | repr {headers!r} | "
                    f"json {json.dumps(headers)} | url {urlencode(headers)}"
                )
                if self.path.startswith("/zt") and outer.zerotek_ok:
                    doc = {"data": [], "next_cursor": None}
                    status, body, kind = 200, json.dumps(doc).encode(), "application/json"
                elif self.path.startswith("/zt"):
                    status, body, kind = 400, text.encode(), "text/plain"
                else:
                    errors = [{"code": "x", "message": json.dumps(headers), "field": text}]
                    doc = {"code": "Bad", "message": text, "errors": errors}
                    status, body, kind = 403, json.dumps(doc).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> EchoServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_credentials_echoed_by_a_hostile_server_appear_nowhere(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def smtp_auth(server: object, session: object, envelope: object, mechanism: str,
                  auth_data: object) -> AuthResult:  # fmt: skip
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.password.decode() == GOOD["SMTP_PASSWORD"]
        )
        return AuthResult(success=ok)

    with (
        EchoServer() as server,
        run_smtp(authenticator=smtp_auth, auth_require_tls=False) as smtp,
    ):
        env = {
            **GOOD,
            **smtp.env(SMTP_USERNAME="mailer"),
            "CW_API_URL": f"{server.url}/cw",
            "ZEROTEK_API_URL": f"{server.url}/zt",
            "GITHUB_API_URL": server.url,
            "GITHUB_ACTIONS": "true",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        server.zerotek_ok = True  # so ConnectWise's echo is the one shown
        results = [
            invoke(config_dir, "plan", *AS_OF, "--out", str(config_dir / "plan.json")),
            invoke(config_dir, "apply", "--yes", *AS_OF),
        ]
        server.zerotek_ok = False
        results += [invoke(config_dir, "status"), invoke(config_dir, "check-unmapped", *AS_OF)]
        (config_dir / "plan.md").write_text("<!-- reconcile:plan -->\n" + "\n".join(GOOD.values()))
        results.append(
            invoke(
                config_dir,
                "pr-comment",
                "--file",
                str(config_dir / "plan.md"),
                "--repo",
                "msp/cfg",
                "--pr",
                "1",
            )
        )
        mails = list(smtp.sink.received)
    assert len(server.requests) >= 5
    assert all(r.exit_code == 1 for r in results), [r.output for r in results]
    shown = "".join(r.stdout + r.stderr for r in results)
    assert "[CW_CLIENT_ID redacted]" in shown and "[ZEROTEK_API_TOKEN redacted]" in shown, shown
    assert "[GITHUB_TOKEN redacted]" in results[-1].stderr  # the echoes were shown, scrubbed
    assert mails and "redacted]" in mails[0].text  # the failed apply's e-mail, scrubbed

    (config_dir / "plan.md").unlink()  # our own input file, not something we wrote
    written = everything_written(config_dir, results, smtp)
    basic = base64.b64encode(
        f"{GOOD['CW_COMPANY_ID']}+{GOOD['CW_PUBLIC_KEY']}:{GOOD['CW_PRIVATE_KEY']}".encode()
    ).decode()
    for name, value in {**GOOD, "basic auth": basic.rstrip("=")}.items():
        for form in forms(value):
            assert form not in written, (name, form)


def test_a_credential_in_a_zerotek_name_never_reaches_the_csv_report(
    sandbox: Sandbox, config_dir: Path
) -> None:
    """CSV doubles a quote inside a quoted cell (`a""b`), a form the scrubber did not
    know: an unmapped ZeroTek customer named with a credential holding a quote was
    printed by `report --format csv` as it was. Parsed back, no cell may hold it."""
    import csv
    import io

    secret = 'smtp"Pass-7'
    for key, customer in list(sandbox.zt_customers.items()):
        sandbox.zt_customers[key] = {**customer, "name": f"Co {secret} x"}
    result = invoke(config_dir, "report", "--format", "csv", *AS_OF, env={"SMTP_PASSWORD": secret})
    assert result.exit_code == 0, result.output
    cells = [cell for row in csv.reader(io.StringIO(result.stdout)) for cell in row]
    assert any("[SMTP_PASSWORD redacted]" in cell for cell in cells)
    assert not any("Pass-7" in cell for cell in cells), result.stdout
