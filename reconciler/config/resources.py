"""Find the JSON Schemas and the example mappings, in a source checkout or an installed wheel.

In git they live at the repository root (schemas/, mappings/: what an MSP sees); the wheel
ships them as the packages reconciler._schemas and reconciler._example (see pyproject.toml).
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from reconciler.core.errors import ReconcileError

_CHECKOUT = Path(__file__).resolve().parents[2]


def _resource_dir(checkout_name: str, package: str) -> Path:
    # pyproject.toml marks a source checkout; without it a stray top-level "schemas" directory
    # in site-packages could be picked up by mistake.
    candidate = _CHECKOUT / checkout_name
    if (_CHECKOUT / "pyproject.toml").is_file() and candidate.is_dir():
        return candidate
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError:
        raise ReconcileError(
            f"the package data {package} is missing; reinstall zerotek-cw-reconciler"
        ) from None
    # These are namespace packages (data only, no __init__.py): importlib.resources would hand
    # back a MultiplexedPath, while __path__ holds the real directories.
    for entry in getattr(module, "__path__", ()):
        if Path(entry).is_dir():
            return Path(entry)
    raise ReconcileError(f"{package} is not on the file system; reinstall zerotek-cw-reconciler")


def schemas_dir() -> Path:
    return _resource_dir("schemas", "reconciler._schemas")


def example_dir() -> Path:
    """The example mappings directory (settings.yaml, skus.yaml, customers.yaml)."""
    return _resource_dir("mappings", "reconciler._example")


def workflows_dir() -> Path:
    """The GitHub Actions workflows (.github/workflows in git, reconciler._example.workflows
    in the wheel) that `init` copies into a new config repository."""
    return _resource_dir(".github/workflows", "reconciler._example.workflows")


def github_dir() -> Path:
    """.github (dependabot.yml) in git, reconciler._example.github in the wheel."""
    return _resource_dir(".github", "reconciler._example.github")


def requirements_dir() -> Path:
    """requirements/ (locked.txt: every runtime dependency at an exact version and hash)."""
    return _resource_dir("requirements", "reconciler._requirements")


# Every schema in schemas/ (a test keeps this list and the directory in step).
SCHEMA_NAMES = (
    "settings",
    "skus",
    "customers",
    "plan",
    "run",
    "discover",
    "report",
    "status",
    "apply",
    "unmapped",
    "managed",
)


def schema_path(name: str) -> Path:
    """`settings`, `settings.schema.json` -> the schema file's path."""
    filename = name if name.endswith(".json") else f"{name}.schema.json"
    path = schemas_dir() / filename
    if not path.is_file():
        raise ReconcileError(f"schema {filename} not found in {path.parent}")
    return path


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema (cached: callers must not mutate it)."""
    path = schema_path(name)
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ReconcileError(f"schema {path} is not valid JSON: {exc}") from None
    return schema
