"""Load mappings/ (settings, SKUs, customers) into a validated `Config`.

Every problem in every file is collected before anything is reported: a reviewer fixing a
pull request should see all of them in one run, not one per push.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reconciler.config import schema, yamlhints, yamlsource
from reconciler.config.customer_prices import check_prices, prices_of
from reconciler.config.schema_formats import is_url
from reconciler.config.schema_messages import suggest
from reconciler.config.yamlsource import Document
from reconciler.core.errors import ConfigError, Problem
from reconciler.core.files import inside
from reconciler.core.model import (
    Config,
    CustomerMap,
    LedgerLine,
    Location,
    Notifications,
    Removal,
    Safety,
    Settings,
    SkuMap,
)
from reconciler.core.money import PRICE_PLACES, places
from reconciler.secure.scrub import shorten

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


# --- URLs -------------------------------------------------------------------------------------


def is_loopback_host(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and localhost: the only hosts plain http:// may talk to."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_url_reason(url: str) -> str | None:
    """Why `url` may not be used for API calls (credentials travel with it), else None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"not a valid URL: {url!r}"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if is_loopback_host(host):
            return None
        return (
            f"plain http:// is allowed only for loopback hosts (127.0.0.1, ::1, localhost), "
            f"not {host!r}; use https://"
        )
    return f"expected an https:// URL, got {url!r}"


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
        files.ledger = [item for _, item in _items(doc)]


# --- cross-file checks -------------------------------------------------------------------------


def _items(doc: Document | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """The mapping items of a list file (items with schema errors included, guarded)."""
    if doc is None or not isinstance(doc.data, list):
        return
    for index, item in enumerate(doc.data):
        if isinstance(item, dict):
            yield index, item


def _check_urls(doc: Document | None) -> list[Problem]:
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


_TERMS = ("unit_price", "unit_cost", "description")


def _check_money(doc: Document, index: int, item: dict[str, Any]) -> list[Problem]:
    """At most 4 decimal places: the schema bounds the range, JSON Schema's multipleOf
    cannot test decimals exactly (it divides floats)."""
    problems = []
    for key in ("unit_price", "unit_cost"):
        value = item.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            amount = _money(value)
            if amount is not None and amount.is_finite() and places(amount) > PRICE_PLACES:
                problems.append(
                    Problem(
                        doc.location((index, key)),
                        f"{key}: expected at most {PRICE_PLACES} decimal places, got {value}",
                    )
                )
    return problems


def _short(text: str) -> str:
    return shorten(text, 40, mark="...")


def _check_terms(doc: Document) -> list[Problem]:
    """SKUs billed as one product must agree on its price, cost and description: the
    addition is one line on the invoice, so there is one decision per product."""
    problems = []
    first: dict[tuple[str, str], tuple[Any, Location, str]] = {}
    for index, item in _items(doc):
        product = item.get("product")
        if not isinstance(product, str):
            continue
        for key in _TERMS:
            value = item.get(key)
            money_key = key != "description"
            if (
                value is None
                or isinstance(value, bool)
                or not isinstance(value, (int | float) if money_key else str)
            ):
                continue  # wrong types are schema errors
            where = doc.location((index, key))
            comparable = _money(value) if money_key else value
            shown = str(value) if money_key else repr(value)
            seen = first.setdefault((product.casefold(), key), (comparable, where, shown))
            if seen[1] != where and seen[0] != comparable:
                problems.append(
                    Problem(
                        where,
                        f"{key}: {_short(shown)} here but {_short(seen[2])} at {seen[1]}; "
                        f"SKUs mapped to product '{product}' bill as one addition and must "
                        f"agree on its {key}",
                    )
                )
    return problems


def _check_skus(doc: Document | None) -> list[Problem]:
    if doc is None:
        return []
    problems = _check_terms(doc)
    skus: dict[str, tuple[str, Location]] = {}
    products: dict[str, tuple[str, Location]] = {}
    for index, item in _items(doc):
        problems += _check_money(doc, index, item)
        sku, product = item.get("sku"), item.get("product")
        if isinstance(sku, str):
            where = doc.location((index, "sku"))
            seen = skus.get(sku.casefold())
            if seen is None:
                skus[sku.casefold()] = (sku, where)
            elif seen[0] == sku:
                problems.append(Problem(where, f"duplicate SKU '{sku}' (first at {seen[1]})"))
            else:
                problems.append(
                    Problem(
                        where,
                        f"SKU '{sku}' differs only in case from '{seen[0]}' at {seen[1]}; "
                        "SKUs compare case-insensitively: list each SKU once",
                    )
                )
        if isinstance(product, str) and isinstance(sku, str):
            # Several SKUs may bill one product (their users are summed), but spelled two
            # ways it would be two products here and one in ConnectWise (which ignores case).
            where = doc.location((index, "product"))
            first = products.setdefault(product.casefold(), (product, where))
            if first[0] != product:
                problems.append(
                    Problem(
                        where,
                        f"product '{product}' is spelled '{first[0]}' at {first[1]}; "
                        "ConnectWise ignores case, so spell one product the same way everywhere",
                    )
                )
    return problems


def _check_companies(docs: list[Document]) -> list[Problem]:
    """One spelling per company identifier (ConnectWise ignores case, so `ACME` and `acme`
    are one company: spelled two ways, a shared agreement would be planned in halves), and
    an agreement id under one company only. Locations are worked out only when reported."""
    problems = []
    spellings: dict[str, tuple[str, Document, int]] = {}
    owners: dict[int, tuple[str, Document, int]] = {}
    for doc in docs:
        for index, item in _items(doc):
            company, agreement = item.get("company"), item.get("agreement")
            if not isinstance(company, str):
                continue
            seen = spellings.setdefault(company.casefold(), (company, doc, index))
            if seen[0] != company:
                problems.append(
                    Problem(
                        doc.location((index, "company")),
                        f"company '{company}' differs only in case from '{seen[0]}' at "
                        f"{seen[1].location((seen[2], 'company'))}; ConnectWise ignores case, "
                        "so spell one company the same way everywhere",
                    )
                )
            if isinstance(agreement, int) and not isinstance(agreement, bool):
                owner = owners.setdefault(agreement, (company, doc, index))
                if owner[0].casefold() != company.casefold():
                    problems.append(
                        Problem(
                            doc.location((index, "agreement")),
                            f"agreement {agreement} is mapped under company '{company}' here "
                            f"and under company '{owner[0]}' at "
                            f"{owner[1].location((owner[2], 'agreement'))}; an agreement "
                            "belongs to one company",
                        )
                    )
    return problems


def _check_customers(
    docs: list[Document], known_skus: dict[str, str] | None, products: dict[str, str] | None
) -> list[Problem]:
    problems = _check_companies(docs)
    # (document, index) rather than a Location: locations are only worked out for the few
    # entries that are reported (100,000 customers, ~0 problems).
    ids: dict[str, tuple[Document, int]] = {}
    agreements: dict[tuple[str, int | str], tuple[str, bool, Document, int]] = {}
    for doc in docs:
        for index, item in _items(doc):
            cid = item.get("id")
            if isinstance(cid, str):
                seen = ids.setdefault(cid, (doc, index))
                if seen[0] is not doc or seen[1] != index:
                    where = doc.location((index, "id"))
                    first_id = seen[0].location((seen[1], "id"))
                    problems.append(
                        Problem(where, f"duplicate customer id '{cid}' (first at {first_id})")
                    )
            problems += check_prices(doc, index, item, products)
            excludes = item.get("exclude_skus")
            if known_skus is not None and isinstance(excludes, list):
                for j, sku in enumerate(excludes):
                    if isinstance(sku, str) and sku.casefold() not in known_skus:
                        near = suggest(sku, set(known_skus.values()))
                        hint = f"; did you mean '{near}'?" if near else ""
                        problems.append(
                            Problem(
                                doc.location((index, "exclude_skus", j)),
                                f"exclude_skus: unknown SKU '{sku}', expected a SKU "
                                f"listed in {SKUS_FILE}{hint}",
                            )
                        )
            company, agreement = item.get("company"), item.get("agreement")
            if isinstance(company, str) and isinstance(agreement, int | str):
                shared = item.get("shared_agreement") is True
                key = (company.casefold(), agreement)
                first = agreements.setdefault(key, (str(cid), shared, doc, index))
                if (first[2] is not doc or first[3] != index) and not (shared and first[1]):
                    first_at = first[2].location((first[3], "agreement"))
                    problems.append(
                        Problem(
                            doc.location((index, "agreement")),
                            f"customer '{cid}' bills into the same agreement as customer "
                            f"'{first[0]}' (at {first_at}): company {company}, agreement "
                            f"{agreement!r}; set shared_agreement: true on both if intended",
                        )
                    )
    return problems


# --- building the model ------------------------------------------------------------------------


def _money(value: Any) -> Decimal | None:
    # str() first: Decimal(0.1) would carry the float's binary error onto invoices.
    return None if value is None else Decimal(str(value))


def _settings(data: dict[str, Any]) -> Settings:
    d = Settings()

    def section(name: str) -> dict[str, Any]:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    cw, zt, usage, billing = (section(n) for n in ("connectwise", "zerotek", "usage", "billing"))
    safety, notes = section("safety"), section("notifications")
    return Settings(
        enabled=data.get("enabled", d.enabled),
        cw_api_url=cw.get("api_url", d.cw_api_url),
        max_concurrency=cw.get("max_concurrency", d.max_concurrency),
        zerotek_api_url=zt.get("api_url", d.zerotek_api_url),
        cw_max_requests_per_minute=cw.get("max_requests_per_minute"),
        zerotek_max_requests_per_minute=zt.get("max_requests_per_minute"),
        usage_source=usage.get("source", d.usage_source),
        usage_path=usage.get("path", d.usage_path),
        sync_day=billing.get("sync_day", d.sync_day),
        currency=billing.get("currency", d.currency),
        timezone=billing.get("timezone", d.timezone),
        add_missing=billing.get("add_missing", d.add_missing),
        removal=Removal(billing.get("removal", d.removal.value)),
        keep_orphans=billing.get("orphans", "remove") == "keep",
        reprice=billing.get("reprice", d.reprice),
        safety=Safety(
            max_removal_percent=float(
                safety.get("max_removal_percent", d.safety.max_removal_percent)
            ),
            max_quantity_change_percent=float(
                safety.get("max_quantity_change_percent", d.safety.max_quantity_change_percent)
            ),
            min_existing=safety.get("min_existing", d.safety.min_existing),
            max_quantity=safety.get("max_quantity", d.safety.max_quantity),
            max_price_change_percent=float(
                safety.get("max_price_change_percent", d.safety.max_price_change_percent)
            ),
        ),
        notifications=Notifications(
            administrators=tuple(notes.get("administrators", ())),
            billing=tuple(notes.get("billing", ())),
            agreement_end_warning_days=notes.get(
                "agreement_end_warning_days", d.notifications.agreement_end_warning_days
            ),
        ),
    )


def _sku_maps(doc: Document) -> tuple[SkuMap, ...]:
    return tuple(
        SkuMap(
            sku=item["sku"],
            product=item["product"],
            unit_price=_money(item.get("unit_price")),
            unit_cost=_money(item.get("unit_cost")),
            description=item.get("description"),
            location=doc.location((index,)),
        )
        for index, item in _items(doc)
    )


def _customer_maps(docs: list[Document]) -> tuple[CustomerMap, ...]:
    return tuple(
        CustomerMap(
            id=item["id"],
            name=item["name"],
            company=item["company"],
            agreement=item["agreement"],
            exclude_skus=tuple(item.get("exclude_skus", ())),
            shared_agreement=item.get("shared_agreement", False),
            location=doc.location((index,)),
            prices=prices_of(item),
        )
        for doc in docs
        for index, item in _items(doc)
    )


def _ledger(items: list[dict[str, Any]]) -> tuple[LedgerLine, ...]:
    return tuple(
        LedgerLine(
            item["agreement_id"],
            item["addition_id"],
            item["product"],
            item["customer_id"],
            item["sku"],
            item["run"],
        )
        for item in items
    )


def digest(raw: dict[str, bytes]) -> str:
    """sha256 over (relative path, bytes) of each mapping file, in path order."""
    h = hashlib.sha256()
    for rel in sorted(raw):
        data = raw[rel]
        # Length-prefixed so moving bytes between a name and a body cannot collide.
        h.update(f"{len(rel)}:{rel}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def _problems(files: _Files) -> list[Problem]:
    known = products = None
    if files.skus is not None and isinstance(files.skus.data, list):
        known = {
            item["sku"].casefold(): item["sku"]
            for _, item in _items(files.skus)
            if isinstance(item.get("sku"), str)
        }
        products = {  # a missing product is the schema's error, not an unknown SKU
            item["sku"].casefold(): str(item.get("product") or "")
            for _, item in _items(files.skus)
            if isinstance(item.get("sku"), str)
        }
    return sorted(
        set(
            files.problems
            + _check_urls(files.settings)
            + _check_skus(files.skus)
            + _check_customers(files.customers, known, products)
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
        settings=_settings(files.settings.data),
        skus=_sku_maps(files.skus),
        customers=_customer_maps(files.customers),
        digest=digest(files.raw),
        ledger=None if files.ledger is None else _ledger(files.ledger),
    )


def load_settings_only(config_dir: Path) -> Settings:
    """settings.yaml alone (for `status`/`activate`, which must work while mappings are broken)."""
    files = _Files()
    doc = _read_one(Path(config_dir), SETTINGS_FILE, "settings", files)
    problems = files.problems + _check_urls(doc)
    if problems or doc is None:
        raise ConfigError(problems)
    return _settings(doc.data)
