"""The removal method is decided once (model.Plan.removal_of): what `plan` shows for each
removal is exactly the request the sandbox receives on the wire from `apply`, for every
`billing.removal` policy, also for an addition that starts after the as-of day (a cancel
ConnectWise would refuse, so quantity 0)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import world_edits
from clirun import run
from conftest import set_setting

from reconciler.sandbox import Sandbox

REMOVE = re.compile(r"- remove (\S+) \((\S+)\) #(\d+) quantity (\d+) \(([^)]*)\)")


def removals(output: str) -> dict[int, str]:
    """addition id -> the method the plan shows for its removal."""
    return {int(m.group(3)): m.group(5) for m in REMOVE.finditer(output)}


def expected_request(shown: str, as_of: str) -> tuple[str, Any]:
    """What the shown words promise on the wire: (HTTP method, JSON body or None)."""
    if shown == "cancel":
        value = f"{as_of}T00:00:00Z"
        return "PATCH", [{"op": "replace", "path": "cancelledDate", "value": value}]
    if shown == "set quantity 0" or shown.startswith("set quantity 0: it starts "):
        return "PATCH", [{"op": "replace", "path": "quantity", "value": 0}]
    if shown == "delete":
        return "DELETE", None
    raise AssertionError(f"a removal method nobody expects: {shown!r}")


def sent(sb: Sandbox, since: int, addition_id: int) -> list[tuple[str, Any]]:
    return [
        (method, json.loads(body) if body else None)
        for method, path, body in sb.write_requests[since:]
        if path.rstrip("/").endswith(f"/additions/{addition_id}")
    ]


def plan_then_apply(sb: Sandbox, config_dir: Path, as_of: str, *args: str) -> dict[int, str]:
    """Plan, apply the same, and check every shown removal against the wire. Returns what
    was shown."""
    options = ["--as-of", as_of, *args]
    planned = run(config_dir, "plan", *options)
    assert planned.exit_code == 0, planned.output
    shown = removals(planned.output)
    before = len(sb.write_requests)
    applied = run(config_dir, "apply", "--yes", "--no-email", *options)
    assert applied.exit_code == 0, applied.output
    assert removals(applied.output) == shown  # apply shows the plan it applies
    for addition_id, how in shown.items():
        assert sent(sb, before, addition_id) == [expected_request(how, as_of)], how
    return shown


@pytest.mark.parametrize(
    ("policy", "words"),
    [("cancel", "cancel"), ("zero", "set quantity 0"), ("delete", "delete")],
)
def test_each_policy_is_shown_as_it_is_sent(
    policy: str, words: str, sandbox: Sandbox, config_dir: Path
) -> None:
    set_setting(config_dir, "removal", policy)
    shown = plan_then_apply(sandbox, config_dir, "2026-11-24")
    assert list(shown.values()) == [words]  # the example world has one removal


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ("cancel", "set quantity 0: it starts 2026-12-01, after today"),
        ("zero", "set quantity 0"),
        ("delete", "delete"),
    ],
)
def test_an_addition_that_has_not_started(
    policy: str, words: str, sandbox: Sandbox, config_dir: Path
) -> None:
    """Globex's additions start at its billStartDate, 2026-12-01: removed on 2026-11-25."""
    assert run(config_dir, "apply", "--yes", "--no-email", "--as-of", "2026-11-24").exit_code == 0
    set_setting(config_dir, "removal", policy)
    world_edits.set_users(sandbox, "zt-0006", "OKTA-SSO", 0)
    shown = plan_then_apply(sandbox, config_dir, "2026-11-25", "--customer", "zt-0006")
    assert list(shown.values()) == [words]
    again = run(config_dir, "plan", "--as-of", "2026-11-25", "--customer", "zt-0006")
    assert "No changes." in again.output  # removed, whichever way
