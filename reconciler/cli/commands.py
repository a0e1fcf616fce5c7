"""The whole `reconcile` command set, and its console entry point `main`.

Each command module registers its commands on cli.application's `app` when imported; this
module imports every one of them, once, so the graph runs one way (command modules import
cli.application, never each other nor this module). The order of the commands in --help
is cli.application's WORKFLOW_ORDER, not the order of these imports.
"""

from __future__ import annotations

from reconciler.cli import (  # noqa: F401 - imported to register their commands
    ci_commands,
    demo_commands,
    insight_commands,
    setup_commands,
    sync_commands,
)
from reconciler.cli.application import app
from reconciler.secure.scrub import guard_process_output

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point (`reconcile`, `python -m reconciler`)."""
    guard_process_output()  # also what the interpreter prints (a traceback) is guarded
    app(prog_name="reconcile")
