"""Load mappings/ (settings, SKUs, customers) into a validated `Config`: where the files
are, reading them (each checked against its schema as it is read), and the entry points
`load_config`, `validate_config` and `load_settings_only`. The checks across entries are in
crosscheck, building the model in build.

Every problem in every file is collected before anything is reported: a reviewer fixing a
pull request should see all of them in one run, not one per push.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.config import build, schema, yamlhints, yamlsource
from reconciler.config.crosscheck import check_customers, check_skus
from reconciler.config.entries import entries
from reconciler.config.schema_formats import is_url
from reconciler.config.urls import insecure_url_reason
from reconciler.config.yamlsource import Document
from reconciler.core.errors import ConfigError, Problem
from reconciler.core.files import inside
from reconciler.core.model import Config, Location, Settings

MAPPINGS = "mappings"
SETTINGS_FILE = "mappings/settings.yaml"
SKUS_FILE = "mappings/skus.yaml"
CUSTOMERS_FILE = "mappings/customers.yaml"
CUSTOMERS_DIR = "mappings/customers"

_EXPECTED = {
    "settings": "a mapping of settings (see schemas/settings.schema.json)",
    "skus": "a list of SKU mappings (see schemas/skus.schema.json)",
    "customers": "a list of customer mappings (see schemas/customers.schema.json)",
    "managed": "the list of managed additions (see `reconcile schema managed`)",
}
LEDGER_FILE = "state/managed.json"


# --- reading -----------------------------------------------------------------------------------


@dataclass
class _Files:
    """What was read from mappings/, with every problem found so far."""

    settings: Document | None = None
    skus: Document | None = None
    customers: list[Document] = field(default_factory=list)
    ledger: list[dict[str, Any]] | None = None  # state/managed.json, when it exists
    raw: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes (digest)
    problems: list[Problem] = field(default_factory=list)


def customer_files(config_dir: Path) -> list[str]:
    """mappings/customers.yaml and/or every mappings/customers/*.yaml, in reading order."""
    names = []
    if (config_dir / CUSTOMERS_FILE).exists():
        names.append(CUSTOMERS_FILE)
    split = config_dir / CUSTOMERS_DIR
    if split.is_dir():
        names += sorted(
            f"{CUSTOMERS_DIR}/{p.name}"
            for p in split.iterdir()
            if p.suffix in {".yaml", ".yml"} and p.is_file()
        )
    return names


Progress = Callable[[str, int, int], None]
"""Progress of a long read: (what is being done, done so far, total), e.g. for a tty bar."""


def _read_one(
    config_dir: Path, rel: str, kind: str, files: _Files, progress: Progress | None = None
) -> Document | None:
    path = config_dir / rel
    if path.exists() and not inside(config_dir, path):
        # A symlink out of the repository: never read (its content would be quoted in
        # errors, and what is reviewed would not be what is applied).
        files.problems.append(
            Problem(
                Location(rel),
                "resolves outside the config directory (a symlink?); "
                "mapping files must be inside it",
            )
        )
        return None
    try:
        raw = yamlsource.read_limited(path)
    except FileNotFoundError:
        files.problems.append(Problem(Location(rel), f"file not found, expected {_EXPECTED[kind]}"))
        return None
    except OSError as exc:
        files.problems.append(Problem(Location(rel), f"cannot read: {exc.strerror}"))
        return None
    except ValueError as exc:
        files.problems.append(Problem(Location(rel), str(exc)))
        return None
    files.raw[rel] = raw
    read_progress: Callable[[int], None] | None = None
    check_progress: Callable[[int], None] | None = None
    if progress is not None:
        lines = raw.count(b"\n") + 1
        report = progress  # bound here: the closures below outlive this branch

        def read_progress(done: int) -> None:
            report(f"reading {rel}", done, lines)

    try:
        doc = yamlsource.read(yamlsource.decode(raw, rel), rel, _EXPECTED[kind], read_progress)
    except ConfigError as exc:
        files.problems.extend(exc.problems)
        return None
    if read_progress is not None:
        read_progress(lines)
    # Structural problems (a duplicate key, an alias) do not stop the schema checks: the
    # README promises every problem in one run.
    files.problems.extend(doc.problems)
    if progress is not None and isinstance(doc.data, list):
        items, report_check = len(doc.data), progress

        def check_progress(done: int) -> None:
            report_check(f"checking {rel}", done, items)

    files.problems.extend(yamlhints.comment_hints(schema.validate(doc, kind, check_progress), raw))
    return doc


def _read(config_dir: Path, progress: Progress | None = None) -> _Files:
    files = _Files()
    mappings = config_dir / MAPPINGS
    if not mappings.is_dir():
        what = "is not a directory" if mappings.exists() else "directory not found"
        files.problems.append(
            Problem(
                Location(MAPPINGS),
                f"{what} in {config_dir.resolve()}: expected {SETTINGS_FILE}, {SKUS_FILE} and "
                f"{CUSTOMERS_FILE} (run `reconcile init` to create them, or pass --config-dir)",
            )
        )
        return files
    files.settings = _read_one(config_dir, SETTINGS_FILE, "settings", files)
    files.skus = _read_one(config_dir, SKUS_FILE, "skus", files)
    names = customer_files(config_dir)
    if not names:
        files.problems.append(
            Problem(
                Location(CUSTOMERS_FILE),
                f"file not found, expected {_EXPECTED['customers']} "
                f"(or any number of {CUSTOMERS_DIR}/*.yaml files)",
            )
        )
    for rel in names:
        doc = _read_one(config_dir, rel, "customers", files, progress)
        if doc is not None:
            files.customers.append(doc)
    _read_ledger(config_dir, files)
    return files


def _read_ledger(config_dir: Path, files: _Files) -> None:
    """state/managed.json, when it exists. Machine-written and tens of thousands of lines:
    parsed as JSON and checked item by item at speed; only a file that fails is read again
    like the mapping files (JSON is YAML), so each problem gets its line and column."""
    path = config_dir / LEDGER_FILE
    if not path.exists():
        return
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        data = None
    if data is not None and schema.items_valid("managed", data):
        files.raw[LEDGER_FILE] = path.read_bytes()
        files.ledger = data
        return
    doc = _read_one(config_dir, LEDGER_FILE, "managed", files)
    if doc is not None and isinstance(doc.data, list):
        files.ledger = [item for _, item in entries(doc)]


# --- the entry points --------------------------------------------------------------------------


def _check_urls(doc: Document | None) -> list[Problem]:
    """settings.yaml's API roots: https://, or plain http:// to a loopback host only."""
    if doc is None or not isinstance(doc.data, dict):
        return []
    problems = []
    for section in ("connectwise", "zerotek"):
        block = doc.data.get(section)
        url = block.get("api_url") if isinstance(block, dict) else None
        if isinstance(url, str) and is_url(url):
            reason = insecure_url_reason(url)
            if reason:
                where = doc.location((section, "api_url"))
                problems.append(Problem(where, f"{section}.api_url: {reason}"))
    return problems


def _problems(files: _Files) -> list[Problem]:
    """Every problem: those found reading, then those across entries and files, sorted."""
    return sorted(
        set(
            files.problems
            + _check_urls(files.settings)
            + check_skus(files.skus)
            + check_customers(files.customers, files.skus)
        )
    )


def validate_config(config_dir: Path) -> list[Problem]:
    """Every problem in the config directory's mappings, sorted by file and line ([] = valid)."""
    return _problems(_read(Path(config_dir)))


def load_config(config_dir: Path, progress: Progress | None = None) -> Config:
    """The validated configuration; raises ConfigError listing every problem found."""
    config_dir = Path(config_dir)
    files = _read(config_dir, progress)
    problems = _problems(files)
    if problems:
        raise ConfigError(problems)
    assert files.settings is not None and files.skus is not None
    return Config(
        config_dir=config_dir,
        settings=build.settings_of(files.settings.data),
        skus=build.sku_maps(files.skus),
        customers=build.customer_maps(files.customers),
        digest=build.digest(files.raw),
        ledger=None if files.ledger is None else build.ledger_lines(files.ledger),
    )


def load_settings_only(config_dir: Path) -> Settings:
    """settings.yaml alone (for `status`/`activate`, which must work while mappings are broken)."""
    files = _Files()
    doc = _read_one(Path(config_dir), SETTINGS_FILE, "settings", files)
    problems = files.problems + _check_urls(doc)
    if problems or doc is None:
        raise ConfigError(problems)
    return build.settings_of(doc.data)
