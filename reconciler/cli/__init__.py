"""`reconcile`, the command line: parse, prompt, print. No orchestration, no API calls:
every command hands its work to `reconciler.engine` (or a pure layer) and renders the
result. `application` builds the Typer app (errors -> exit codes, root options); the
`*_commands` modules register the commands on it (setup, sync, insight, CI helpers, the
no-account demo) and `commands` gathers them with `main`; `planning`, `applying` and their
neighbours run `plan` and `apply`. Heavy imports happen inside the commands so
`reconcile --help` stays fast.

Imports: anything in the package. Nothing imports it.
"""

from typing import Any

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): `reconciler.cli:main` and `from reconciler.cli import app` load the
    # commands, while `import reconciler.cli.term` from a sibling does not drag them in.
    if name in __all__:
        from reconciler.cli import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
