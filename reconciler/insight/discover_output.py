"""`discover` output: YAML ready to paste, JSON, and `--write` (append, then validate).

Names come from ZeroTek and ConnectWise, so they are data: in YAML they are emitted as
double-quoted scalars with every control, format and line-separator character escaped, and
in comments such characters are replaced, so no name can end a comment or start a key.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from reconciler.config.loader import CUSTOMERS_DIR, CUSTOMERS_FILE, SKUS_FILE, load_config
from reconciler.core.errors import ConfigError, ReconcileError
from reconciler.core.files import atomic_write
from reconciler.insight.discover import CustomerProposal, Discovery, SkuProposal
from reconciler.secure.untrusted import json_dumps

DISCOVERED_FILE = f"{CUSTOMERS_DIR}/discovered.yaml"

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._-]*\Z")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"}
_UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def yaml_string(value: str) -> str:
    """A YAML scalar that reads back as exactly `value` (a string, never a bool/number)."""
    if _PLAIN.match(value) and value.casefold() not in _YAML_WORDS:
        return value
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif unicodedata.category(ch) in _UNSAFE or ch in "\x85\u2028\u2029":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")  # fmt: skip
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def comment_text(value: str) -> str:
    """`value` safe inside a `# ...` comment: one line, nothing invisible."""
    return "".join(
        "?" if unicodedata.category(ch) in _UNSAFE or ch in "\x85\u2028\u2029" else ch
        for ch in value
    )


def _users(users: dict[str, int]) -> str:
    return ", ".join(f"{s} {n}" for s, n in users.items()) or "no usage in the window"


def customer_yaml(p: CustomerProposal, *, today: str | None = None) -> str:
    """One list item (with its comment lines) for customers.yaml."""
    head = f"# confidence {p.confidence:.2f}: {p.reason}"
    if today:
        head = (
            f"# added by `reconcile discover` on {today}, confidence {p.confidence:.2f}: {p.reason}"
        )
    assert p.company is not None and p.agreement is not None
    lines = [
        comment_text(head),
        comment_text(f"# usage: {_users(p.users)}"),
        f"- id: {yaml_string(p.customer_id)}",
        f"  name: {yaml_string(p.name)}",
        f"  company: {yaml_string(p.company.identifier)}",
        f"  agreement: {p.agreement.id}" + comment_text(f"  # {p.agreement.name}"),
    ]
    return "\n".join(lines) + "\n"


def sku_yaml(p: SkuProposal, *, today: str | None = None) -> str:
    head = f"# confidence {p.confidence:.2f}: {p.reason}"
    if today:
        head = (
            f"# added by `reconcile discover` on {today}, confidence {p.confidence:.2f}: {p.reason}"
        )
    assert p.product is not None
    return (
        "\n".join(
            [
                comment_text(head),
                comment_text(f"# in use: {p.users} users at {p.customers} customer(s)"),
                f"- sku: {yaml_string(p.sku)}",
                f"  product: {yaml_string(p.product.identifier)}",
            ]
        )
        + "\n"
    )


def _unproposed(p: CustomerProposal | SkuProposal) -> str:
    if isinstance(p, CustomerProposal):
        what = f"{p.customer_id} {p.name!r} ({_users(p.users)})"
    else:
        what = f"SKU {p.sku} ({p.users} users at {p.customers} customer(s))"
    return comment_text(f"# not proposed: {what}: {p.reason}") + "\n"


def render_yaml(d: Discovery, min_confidence: float) -> str:
    """Two YAML documents (customers, then SKUs) ready to paste into the mapping files."""
    start, end = d.window
    out = [
        "# reconcile discover: proposed mappings for unmapped ZeroTek customers and SKUs",
        f"# usage window {start.isoformat()}..{end.isoformat()}; `--write` appends those at "
        f"confidence >= {min_confidence:.2f}",
    ]
    if d.skipped_inactive:
        out.append(f"# {d.skipped_inactive} inactive ZeroTek customer(s) skipped")
    out += ["---", f"# for {CUSTOMERS_FILE}"]
    proposed = [p for p in d.customers if p.proposed]
    if not proposed:
        out.append("[]  # no customer proposals")
    out += [customer_yaml(p).rstrip("\n") for p in proposed]
    out += [_unproposed(p).rstrip("\n") for p in d.customers if not p.proposed]
    out += ["---", f"# for {SKUS_FILE}"]
    skus = [p for p in d.skus if p.proposed]
    if not skus:
        out.append("[]  # no SKU proposals")
    out += [sku_yaml(p).rstrip("\n") for p in skus]
    out += [_unproposed(p).rstrip("\n") for p in d.skus if not p.proposed]
    return "\n".join(out) + "\n"


def as_json(d: Discovery, min_confidence: float) -> dict[str, Any]:
    def customer(p: CustomerProposal) -> dict[str, Any]:
        return {
            "id": p.customer_id,
            "name": p.name,
            "users": p.users,
            "confidence": p.confidence,
            "reason": p.reason,
            "writable": p.proposed and p.confidence >= min_confidence,
            "company": None
            if p.company is None
            else {"id": p.company.id, "identifier": p.company.identifier, "name": p.company.name},
            "agreement": None
            if p.agreement is None
            else {"id": p.agreement.id, "name": p.agreement.name},
            "candidates": list(p.candidates),
        }

    def sku(p: SkuProposal) -> dict[str, Any]:
        return {
            "sku": p.sku,
            "users": p.users,
            "customers": p.customers,
            "confidence": p.confidence,
            "reason": p.reason,
            "writable": p.proposed and p.confidence >= min_confidence,
            "product": None
            if p.product is None
            else {
                "id": p.product.id,
                "identifier": p.product.identifier,
                "description": p.product.description,
            },
        }

    return {
        "window": {"start": d.window[0].isoformat(), "end": d.window[1].isoformat()},
        "min_confidence": min_confidence,
        "skipped_inactive": d.skipped_inactive,
        "customers": [customer(p) for p in d.customers],
        "skus": [sku(p) for p in d.skus],
    }


def render_json(d: Discovery, min_confidence: float) -> str:
    return json_dumps(as_json(d, min_confidence), indent=2) + "\n"


# --- --write ---------------------------------------------------------------------------------


def _append_target(config_dir: Path) -> str:
    """customers.yaml when it exists, else mappings/customers/discovered.yaml."""
    if (config_dir / CUSTOMERS_FILE).exists():
        return CUSTOMERS_FILE
    return DISCOVERED_FILE


def write_proposals(
    config_dir: Path, d: Discovery, min_confidence: float, today: str
) -> dict[str, int]:
    """Append the proposals at or above `min_confidence`; existing bytes stay as they are.

    Then validate the whole config. If it does not validate, every file is put back as it
    was (byte for byte) and the problems are raised: nothing half-written."""
    customers = [p for p in d.customers if p.proposed and p.confidence >= min_confidence]
    skus = [p for p in d.skus if p.proposed and p.confidence >= min_confidence]
    additions: dict[str, list[str]] = {}
    if customers:
        additions[_append_target(config_dir)] = [customer_yaml(p, today=today) for p in customers]
    if skus:
        additions[SKUS_FILE] = [sku_yaml(p, today=today) for p in skus]
    originals: dict[str, bytes | None] = {}
    try:
        for rel, items in additions.items():
            path = config_dir / rel
            before = path.read_bytes() if path.exists() else None
            originals[rel] = before
            text = "".join("\n" + item for item in items)
            if before is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                body = ("# ZeroTek customers mapped by `reconcile discover`.\n" + text).encode()
            else:
                sep = b"" if before.endswith(b"\n") or not before else b"\n"
                body = before + sep + text.encode()
            atomic_write(path, body)
        load_config(config_dir)
    except ConfigError:
        _restore(config_dir, originals)
        raise
    except OSError as exc:
        _restore(config_dir, originals)
        raise ReconcileError(f"cannot write the mappings: {exc}") from None
    return {rel: len(items) for rel, items in additions.items()}


def _restore(config_dir: Path, originals: dict[str, bytes | None]) -> None:
    for rel, before in originals.items():
        path = config_dir / rel
        if before is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, before)
