"""`reconcile demo`: the whole job end to end against the embedded sandbox, no accounts.

It runs the same code paths a user's `plan` and `apply` run (the commands' own functions,
hence the engine), against the loopback simulators, on a temporary copy of the example
mappings. The sandbox is injected as the engine's clients (`Clients(environ=...)`): the
process environment is neither read for credentials nor changed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

import typer

from reconciler.cli import term
from reconciler.cli.applying import ApplyOptions, run_apply
from reconciler.cli.planning import PlanOptions, run_plan
from reconciler.config.resources import example_dir
from reconciler.core.model import PeriodKind
from reconciler.engine import history
from reconciler.engine.clients import Clients
from reconciler.engine.interface import ApplyRequest, PlanRequest, resolve_max_duration
from reconciler.records import runview
from reconciler.sandbox import Sandbox, default_fixture

# The sandbox's fixture is built around this day (its usage history ends here), so the
# demo is the same on any date.
DEMO_AS_OF = dt.date(2026, 11, 24)


def _bold(text: str) -> None:
    typer.secho(text, bold=True, color=term.use_color(sys.stdout))


def _step(title: str) -> None:
    _bold(f"\n==> {title}\n")


def run_demo(keep_dir: Path | None = None) -> int:
    with contextlib.ExitStack() as stack:
        if keep_dir is None:
            # Kept afterwards: the demo prints paths (the run record) that must still exist.
            root = Path(tempfile.mkdtemp(prefix="reconcile-demo-"))
        else:
            root = keep_dir
            if (root / "mappings").exists():
                existing = root / "mappings"
                typer.echo(f"error: {existing} already exists; pick another --dir", err=True)
                return 1
        shutil.copytree(example_dir(), root / "mappings")
        sandbox = stack.enter_context(Sandbox(default_fixture()))
        clients = Clients(environ=sandbox.env())  # sandbox URLs and demo keys; no SMTP

        _bold("reconcile demo")
        typer.echo(
            f"A ConnectWise + ZeroTek sandbox is running on {sandbox.cw_url.split('/v4')[0]}.\n"
            f"Config directory: {root} (a copy of the example mappings).\n"
            f"Today is pretended to be {DEMO_AS_OF}; the scheduled sync bills the last "
            "billing period."
        )
        last = PeriodKind.LAST_BILLING_PERIOD
        seconds = resolve_max_duration(None, clients.environ)
        plan = PlanOptions(PlanRequest(period=last, as_of=DEMO_AS_OF, max_duration=seconds))
        _step("1. reconcile plan  (read-only: what would change)")
        run_plan(root, plan, clients)
        _step("2. reconcile apply --yes  (write, verify, record the run)")
        request = ApplyRequest(period=last, as_of=DEMO_AS_OF, trigger="manual",
                               command="reconcile demo", max_duration=seconds)  # fmt: skip
        code = run_apply(root, ApplyOptions(request, yes=True), clients)
        writes = sandbox.stats.writes
        _step("3. reconcile plan  (again: converged, nothing to do)")
        run_plan(root, plan, clients)
        _step("4. reconcile activity  (the sync log, runs/INDEX.md)")
        typer.echo(runview.render_runs_text(history.list_runs(root, 5)))
        typer.echo(
            f"\nConnectWise received {writes} writes; the additions of products that are not "
            "mapped (MSP-HELPDESK) and the excluded SKU were left alone.\n"
            "Per-customer errors would not stop the others; unsafe plans need --force.\n"
        )
        _bold("What to try next")
        typer.echo(
            "  reconcile sandbox                 run the simulators and point the CLI at them\n"
            "  reconcile init my-config          scaffold your own mappings + workflows\n"
            "  reconcile --config-dir my-config validate\n"
            "  reconcile demo --dir DIR          put the demo's config and run log in DIR"
        )
        typer.echo(f"\nThe demo's config and run log are in {root} (delete it when done).")
        return code
    return 0
