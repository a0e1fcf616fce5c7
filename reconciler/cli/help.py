"""Examples shown at the end of each command's --help (tests/cli/test_cli_conventions.py parses
every line against the real command, and tests/e2e/test_first_hour.py runs every one against
the sandbox, so an example cannot drift from the options or the behaviour)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A run id as `apply` names its record (runlog._claim_run_id: UTC start + trigger); a test
# checks the form and runs the example against a run of that id.
EXAMPLE_RUN_ID = "20261115T060003Z-scheduled"

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "": [  # reconcile --help
        ("reconcile demo", "try it with no accounts"),
        ("reconcile init my-config", "start your own config repository"),
        ("reconcile --config-dir my-config validate", ""),
        ("reconcile plan --out plan.json", "what would change, saved"),
        ("reconcile apply plan.json", "make exactly those changes"),
        ("reconcile plan -h", "one command's options and examples"),
    ],
    "init": [
        ("reconcile init billing-config", "scaffold a new config repository"),
        ("reconcile init billing-config --dry-run", "list what it would write, write nothing"),
    ],
    "validate": [
        ("reconcile validate", "every problem as file:line:col on stderr"),
        ("reconcile validate --format github", "annotations in a pull request"),
        ("reconcile validate --format json | jq .errors", "for scripts"),
    ],
    "status": [
        ("reconcile status", "credentials, mappings and the enabled flag"),
        ("reconcile status --config-dir billing-config", ""),
        ("reconcile status --format json", "for scripts (reconcile schema status)"),
    ],
    "activate": [("reconcile activate", "let apply and the scheduled sync write again")],
    "deactivate": [("reconcile deactivate", "apply and the schedule change nothing")],
    "plan": [
        ("reconcile plan", "last billing period, all customers"),
        ("reconcile plan --customer zt-0001 --period current", "one customer, this period"),
        ("reconcile plan --out plan.json", "save it for `reconcile apply plan.json`"),
        ("reconcile plan --format markdown --as-of 2026-11-15", "as the PR comment shows it"),
        ("reconcile plan --if-due --out plan.json", "the daily schedule"),
    ],
    "apply": [
        ("reconcile apply plan.json", "exactly the saved plan (refused if stale)"),
        ("reconcile apply --yes", "plan and apply without asking (CI)"),
        ("reconcile apply --customer zt-0001 --no-email", "one customer, no e-mail"),
    ],
    "show": [
        ("reconcile show plan.json", "re-render a saved plan"),
        ("reconcile show plan.json --format markdown", ""),
        ("reconcile show --config-dir . plan.json", "--config-dir before or after"),
    ],
    "activity": [
        ("reconcile activity", "recent runs, newest first"),
        ("reconcile activity --limit 5", ""),
        (f"reconcile activity {EXAMPLE_RUN_ID}", "one run's details"),
    ],
    "check-unmapped": [
        ("reconcile check-unmapped", "list customers using unmapped SKUs, e-mail them"),
        ("reconcile check-unmapped --no-email", "list only"),
    ],
    "discover": [
        ("reconcile discover", "proposals as YAML, with confidence and reason"),
        ("reconcile discover --write --min-confidence 0.95", "append the surest to mappings/"),
    ],
    "report": [
        ("reconcile report", "under- and over-billed licences, last billing period"),
        ("reconcile report --format csv > report.csv", ""),
    ],
    "schema": [
        ("reconcile schema customers", "JSON Schema of mappings/customers.yaml"),
        ("reconcile schema plan > plan.schema.json", ""),
        ("reconcile schema --config-dir billing-config status", "--config-dir: anywhere"),
    ],
    "sandbox": [
        ("reconcile sandbox", "simulators on a free port; prints the export lines"),
        ("reconcile sandbox --latency-ms 40 --fault-rate 0.1", "slow and flaky"),
        ("reconcile sandbox --latency-ms 40 --rate-limit 1000", "a rate-limited tenant"),
    ],
    "demo": [
        ("reconcile demo", "the whole tour in a temporary directory"),
        ("reconcile demo --dir tour", "put the config and run log in ./tour"),
    ],
}


def epilog(command: str) -> str | None:
    """The Examples section for `command` (click keeps a paragraph starting with \\b as is)."""
    examples = EXAMPLES.get(command)
    if not examples:
        return None
    lines = []
    for line, note in examples:
        lines.append(f"  $ {line}")
        if note:
            lines.append(f"      {note}")
    return "Examples:\n\n\b\n" + "\n".join(lines)


def add_examples(group: Any, commands: Mapping[str, Any]) -> None:
    if group.epilog is None:
        group.epilog = epilog("")
    for name, command in commands.items():
        if command.epilog is None:
            command.epilog = epilog(name)
