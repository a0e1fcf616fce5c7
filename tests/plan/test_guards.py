"""Guards against silent mistakes (DESIGN 13.2), replayed from issue 24 against the
sandbox: a one-letter typo in a SKU id, and a bulk usage read that silently drops a
customer. Ground truth is the sandbox's own state."""

from __future__ import annotations

import json
import re
from pathlib import Path

import world_edits
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.sandbox import Sandbox
from reconciler.sandbox.wire import Request, Response, json_response

AS_OF = ["--as-of", "2026-11-24"]
APPLY = ["apply", "--yes", "--no-email", *AS_OF]


def run(config_dir: Path, *args: str):
    result = CliRunner().invoke(app, ["--config-dir", str(config_dir), *args])
    assert "Traceback" not in result.output, result.output
    return result


def rename_sku(config_dir: Path, old: str, new: str) -> None:
    skus = config_dir / "mappings" / "skus.yaml"
    text, n = re.subn(rf"^- sku: {old}$", f"- sku: {new}", skus.read_text(), flags=re.M)
    assert n == 1
    skus.write_text(text)


def cancelled(sb: Sandbox) -> list[int]:
    return [a["id"] for a in sb.additions(1001) if a.get("cancelledDate")]


def test_a_one_letter_typo_in_a_sku_is_unsafe_with_did_you_mean(sandbox, config_dir):
    # Found: `sku: OKTA-MFAA` passed validate, the plan was "safe" and apply cancelled
    # Acme's MFA line; fixing the typo re-added it as a new addition.
    rename_sku(config_dir, "OKTA-MFA", "OKTA-MFAA")
    assert run(config_dir, "validate").exit_code == 0
    plan = json.loads(run(config_dir, "plan", "--format", "json", *AS_OF).stdout)
    (reason,) = [r for r in plan["unsafe_reasons"] if "OKTA-MFAA" in r]
    assert "reported by no ZeroTek customer" in reason
    assert "zt-0001 #9002 quantity 42" in reason and "126.00 USD/month" in reason
    assert reason.endswith("did you mean OKTA-MFA?")
    result = run(config_dir, *APPLY)
    assert result.exit_code == 3, result.output
    assert sandbox.write_requests == [] and 9002 not in cancelled(sandbox)


def test_a_silent_sku_billed_to_two_customers_is_unsafe_without_a_close_one(sandbox, config_dir):
    rename_sku(config_dir, "OKTA-SSO", "LEGACY-SSO-2019")
    plan = json.loads(run(config_dir, "plan", "--format", "json", *AS_OF).stdout)
    (reason,) = [r for r in plan["unsafe_reasons"] if "LEGACY-SSO-2019" in r]
    assert "did you mean" not in reason and "ZT-OKTA-SSO" in reason
    forced = run(config_dir, *APPLY, "--force")  # a deliberate retirement goes through
    assert forced.exit_code == 0, forced.output
    assert 9001 in cancelled(sandbox)


def test_one_customer_leaving_a_sku_is_an_ordinary_removal(sandbox, config_dir):
    world_edits.set_users(sandbox, "zt-0007", "OKTA-WF", 0)  # others still use OKTA-WF
    world_edits.set_users(sandbox, "zt-0006", "OKTA-WF", 0)  # now nobody does: one line
    plan = json.loads(run(config_dir, "plan", "--format", "json", *AS_OF).stdout)
    removals = [ch for c in plan["customers"] for ch in c["changes"] if ch["action"] == "remove"]
    assert [ch["product"] for ch in removals if ch["product"] == "ZT-OKTA-WF"] == ["ZT-OKTA-WF"]
    assert not any("reported by no ZeroTek customer" in r for r in plan["unsafe_reasons"])


def test_within_one_edit() -> None:
    from reconciler.plan.guards import within_one_edit

    assert within_one_edit("okta-mfa", "okta-mfaa") and within_one_edit("okta-mfaa", "okta-mfa")
    assert within_one_edit("okta-sso", "okta-ss0") and within_one_edit("a", "")
    assert not within_one_edit("okta-mfa", "otka-mfa") and not within_one_edit("abc", "a")


# --- the second opinion ----------------------------------------------------------------------


def _drop_from_bulk(sb: Sandbox, customer: str) -> None:
    """A bulk usage page that silently lost one customer's rows (the directory still lists
    it): what a short page or a lost cursor looks like."""

    def lossy(req: Request, resp: Response) -> Response:
        if req.method == "GET" and req.path.endswith("/v1/usage") and resp.status == 200:
            body = json.loads(resp.body)
            body["data"] = [r for r in body["data"] if r["customer_id"] != customer]
            return json_response(200, body)
        return resp

    sb.on_response = lossy


def test_a_customer_dropped_by_the_bulk_read_loses_nothing(sandbox, config_dir):
    # Found: the bulk read leaving Contoso out planned its line for removal.
    _drop_from_bulk(sandbox, "zt-0004")
    result = run(config_dir, "plan", "--format", "json", *AS_OF)
    plan = json.loads(result.stdout)
    contoso = next(c for c in plan["customers"] if c["id"] == "zt-0004")
    assert contoso["changes"] == []
    assert any("the reads disagree" in e for e in contoso["errors"]), contoso
    assert result.exit_code == 1
    applied = run(config_dir, *APPLY)
    assert applied.exit_code == 1
    assert [a["quantity"] for a in sandbox.additions(1004) if not a.get("cancelledDate")] == [25]


def test_the_second_opinion_confirms_a_customer_who_really_left(sandbox, config_dir):
    world_edits.set_users(sandbox, "zt-0004", "OKTA-SSO", 0)
    asked: list[str] = []
    sandbox.log = asked.append
    plan = json.loads(run(config_dir, "plan", "--format", "json", *AS_OF).stdout)
    contoso = next(c for c in plan["customers"] if c["id"] == "zt-0004")
    assert [ch["action"] for ch in contoso["changes"]] == ["remove"] and contoso["errors"] == []
    again = [line for line in asked if "/v1/customers/" in line and "/usage" in line]
    assert len(again) == 1 and "/v1/customers/zt-0004/usage" in again[0]  # only it
