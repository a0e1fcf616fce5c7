"""`plan --baseline DIR`: the base branch's config directory, loaded to compare a pull
request's plan with. Whatever of it does not load is said in a note, never an error: a
first pull request has no base mappings, and one that repairs broken mappings has base
mappings that do not load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.config.loader import load_config, load_settings_only
from reconciler.core.errors import ConfigError
from reconciler.core.model import Config, Settings


@dataclass(frozen=True)
class Baseline:
    """The base branch's config (None: it does not load), and what to say about it."""

    config: Config | None
    notes: list[str]


def load_baseline(directory: Path) -> Baseline:
    """The base branch's config, or None and why it could not be used."""
    if not (directory / "mappings").is_dir():
        note = f"--baseline {directory}: no mappings/ there; every change is shown as new"
        return Baseline(None, [note])
    try:
        return Baseline(load_config(directory), [])
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else "unknown problem"
        note = (
            f"--baseline {directory}: the base branch's mappings do not load ({first}); "
            "every change is shown as this pull request's"
        )
        return Baseline(None, [note])


def base_settings(base: Config | None, directory: Path) -> Settings | None:
    """The base branch's settings: from its config, else its settings.yaml alone (mappings
    being repaired by this pull request), else None (no settings there)."""
    if base is not None:
        return base.settings
    try:
        return load_settings_only(directory)
    except ConfigError:
        return None
