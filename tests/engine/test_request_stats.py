"""Request statistics (issue 17): counted in the HTTP layer, kept in the run record, shown
by `activity RUN_ID`, the run's Markdown (the job summary) and `-v`.

Against the loopback sandbox (a real HTTP server injecting 429s, 500s and dropped
connections): every figure must equal what the sandbox's own request log counted."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import clirun
import jsonschema
import pytest

from reconciler.config.loader import load_config
from reconciler.config.resources import load_schema
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.core.errors import ReconcileError
from reconciler.engine.clients import Clients
from reconciler.engine.interface import ApplyRequest
from reconciler.engine.manager import SyncEngine
from reconciler.net.settings import HttpSettings
from reconciler.records import runview
from reconciler.records.record import RunRecord
from reconciler.sandbox import Sandbox
from reconciler.usage.zerotek import ZeroTekClient

AS_OF = dt.date(2026, 11, 24)
RETRY = HttpSettings(backoff_base=0.01, backoff_max=0.05, max_retries=12)
# The sandbox's kinds ("GET additions/{id}", "GET zt-usage") for our route patterns.
SANDBOX_KIND = {
    "company/companies": "companies",
    "finance/agreements": "agreements",
    "procurement/catalog": "catalog",
    "finance/agreements/{id}/additions": "additions",
    "finance/agreements/{id}/additions/{id}": "additions/{id}",
    "v1/customers": "zt-customers",
    "v1/usage": "zt-usage",
    "v1/customers/{id}/usage": "zt-customer-usage",
}


def as_sandbox_kinds(requests: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for api in requests.values():
        for kind, n in api["by_kind"].items():
            method, route = kind.split(" ", 1)
            key = f"{method} {SANDBOX_KIND[route]}"
            out[key] = out.get(key, 0) + n
    return out


def apply(config_dir: Path, sb: Sandbox) -> RunRecord:
    engine = SyncEngine(load_config(config_dir), Clients(environ=sb.env(), http=RETRY))
    outcome = engine.apply(ApplyRequest(as_of=AS_OF, send_email=False))
    assert outcome.exit_code == 0
    return RunRecord.from_json(json.loads(outcome.record_path.read_text()))


def check_equals_sandbox_log(
    requests: dict[str, Any], sb: Sandbox, *, all_retried: bool = True
) -> None:
    cw, zt = requests["connectwise"], requests["zerotek"]
    assert as_sandbox_kinds(requests) == dict(sb.stats.requests)
    assert cw["requests"] + zt["requests"] == sb.stats.total
    assert cw["requests"] == sum(cw["by_kind"].values())
    if all_retried:  # else the last fault of a request that ran out of retries is not
        assert cw["retries"] + zt["retries"] == sb.stats.faults.total()
    assert cw["status_429"] + zt["status_429"] == sb.stats.faults["429"]
    assert cw["bytes_sent"] + zt["bytes_sent"] == sb.stats.bytes_in
    assert cw["bytes_received"] + zt["bytes_received"] == sb.stats.bytes_out
    assert zt["bytes_sent"] == 0  # ZeroTek is only read
    assert cw["request_seconds"] > 0 and zt["request_seconds"] > 0


# 429s on every method (POST is retried after a 429: it was refused, not processed); 500s
# and dropped connections on reads only (a POST answered so has an unknown outcome and is
# re-read, not retried, so it would not count as a retry).
FAULTS = {
    "429s": {"error_429": 0.2},
    "500s-drops-429s": {"error_500": 0.1, "drop": 0.1, "error_429": 0.1, "methods": {"GET"}},
}


@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
@pytest.mark.parametrize("seed", [1, 2])
def test_the_run_record_counts_what_the_sandbox_received(
    sandbox: Sandbox, config_dir: Path, faults: dict[str, Any], seed: int
) -> None:
    sandbox.configure_faults(**faults, retry_after=0, seed=seed)
    record = apply(config_dir, sandbox)
    assert record.requests is not None
    assert sandbox.stats.faults.total() > 0, "the seed must inject some faults"
    check_equals_sandbox_log(record.requests, sandbox)
    jsonschema.validate(record.to_json(), load_schema("run"))


def test_kinds_are_route_patterns_never_urls_or_credentials(
    sandbox: Sandbox, config_dir: Path
) -> None:
    record = apply(config_dir, sandbox)
    assert record.requests is not None
    kinds = [k for api in record.requests.values() for k in api["by_kind"]]
    assert "GET finance/agreements/{id}/additions" in kinds
    assert "POST finance/agreements/{id}/additions" in kinds
    text = json.dumps(record.requests)
    for leak in ("?", "conditions", "1001", "http", sandbox.private_key, sandbox.zerotek_token):
        assert leak not in text


def test_time_waiting_covers_every_retry_after(sandbox: Sandbox, config_dir: Path) -> None:
    # Seed 31 makes the first request drawn a 429; each 429 asks for a 1 s wait.
    sandbox.configure_faults(error_429=0.05, retry_after=1, seed=31)
    record = apply(config_dir, sandbox)
    assert record.requests is not None
    n = sandbox.stats.faults["429"]
    assert n >= 1
    waited = sum(api["wait_seconds"] for api in record.requests.values())
    # Retry-After plus at most backoff_max of jitter per retry (summed: concurrent waits
    # overlap, so this may exceed the run's own duration), plus scheduling slack.
    assert n * 1.0 <= waited <= n * (1.0 + RETRY.backoff_max + 0.05)
    check_equals_sandbox_log(record.requests, sandbox)


def test_a_run_that_fails_on_429s_records_them(sandbox: Sandbox, config_dir: Path) -> None:
    sandbox.configure_faults(error_429=1.0, retry_after=0)
    engine = SyncEngine(
        load_config(config_dir),
        Clients(environ={**sandbox.env(), "CI": "true"}, http=replace(RETRY, max_retries=2)),
    )
    with pytest.raises(ReconcileError):  # the read failed: recorded, then raised
        engine.apply(ApplyRequest(as_of=AS_OF, send_email=False))
    (path,) = (config_dir / "runs").glob("*/*/*.json")
    record = json.loads(path.read_text())
    assert record["outcome"] == "failed"
    requests = record["requests"]
    jsonschema.validate(record, load_schema("run"))
    # The first read to run out of retries stops the run; the other three reads running
    # beside it are cut short: a request of theirs in flight counts as sent (the server
    # may not have read it yet) and its answer as never received. So at most 3 apart.
    sent = as_sandbox_kinds(requests)
    assert set(sent) == set(sandbox.stats.requests)
    assert all(sent[kind] >= n for kind, n in sandbox.stats.requests.items())
    assert sum(sent.values()) - sandbox.stats.total <= 3
    got_429 = requests["connectwise"]["status_429"] + requests["zerotek"]["status_429"]
    assert sandbox.stats.faults["429"] - 3 <= got_429 <= sandbox.stats.faults["429"]
    assert got_429 >= 3  # the failed read's own: max_retries 2, so three 429s
    assert "## Requests" in path.with_suffix(".md").read_text()


def test_route_patterns() -> None:
    assert ConnectWiseClient.route(ConnectWiseClient, "/finance/agreements/12/additions/9") == (  # type: ignore[arg-type]
        "finance/agreements/{id}/additions/{id}"
    )
    assert ConnectWiseClient.route(ConnectWiseClient, "/finance/agreements/count") == (  # type: ignore[arg-type]
        "finance/agreements/count"
    )
    assert ZeroTekClient.route(ZeroTekClient, "/v1/customers/acme%2F01%20x/usage") == (  # type: ignore[arg-type]
        "v1/customers/{id}/usage"
    )


# --- older records, rendering --------------------------------------------------------------


def test_records_without_requests_still_load_validate_and_render(
    sandbox: Sandbox, config_dir: Path
) -> None:
    record = apply(config_dir, sandbox).to_json()
    del record["requests"]  # as written before request statistics were recorded
    jsonschema.validate(record, load_schema("run"))
    old = RunRecord.from_json(record)
    assert old.requests is None
    assert "## Requests" not in runview.render_run(old)
    assert "requests:" not in runview.render_run_text(old)


def test_hand_edited_requests_render_as_data(sandbox: Sandbox, config_dir: Path) -> None:
    record = apply(config_dir, sandbox).to_json()
    record["requests"] = {"connectwise": {"requests": "lots", "by_kind": {"GET [x](http://e)": 1}}}
    shown = RunRecord.from_json(record)
    markdown = runview.render_run(shown)
    assert "[x](http://e)" not in markdown and "| ? |" in markdown
    assert "? requests" in runview.render_run_text(shown)


# --- the CLI: -v, activity RUN_ID, the Markdown twin --------------------------------------


def test_verbose_apply_activity_and_markdown_show_the_requests(
    sandbox: Sandbox, config_dir: Path
) -> None:
    root = ["--config-dir", str(config_dir)]
    quiet = clirun.invoke(*root, "plan", "--as-of", "2026-11-24")
    assert quiet.exit_code == 0 and "Requests:" not in quiet.stderr
    sandbox.stats.reset()
    args = ["apply", "--yes", "--no-email", "--as-of", "2026-11-24"]
    applied = clirun.invoke("-v", *root, *args)
    assert applied.exit_code == 0, applied.output
    cw = sum(n for kind, n in sandbox.stats.requests.items() if " zt-" not in kind)
    assert f"ConnectWise: {cw} requests (0 retries, 0 rate-limited with 429)" in applied.stderr
    posts = sandbox.stats["POST additions"]
    assert posts and re.search(
        rf"\n +POST finance/agreements/\{{id\}}/additions +{posts}\n", applied.stderr
    )
    assert "Requests:" not in applied.stdout
    (path,) = (config_dir / "runs").glob("*/*/*.json")
    shown = clirun.invoke(*root, "activity", path.stem)
    assert f"ConnectWise: {cw} requests" in shown.stdout
    twin = path.with_suffix(".md").read_text()
    assert f"| ConnectWise | {cw} | 0 | 0 |" in twin

    plan_v = clirun.invoke("-v", *root, "plan", "--as-of", "2026-11-24")
    assert plan_v.exit_code == 0 and "ZeroTek: 2 requests" in plan_v.stderr
    assert "Requests:" not in plan_v.stdout
