"""Build the `Config` model from mapping documents that passed every check: settings with
their defaults, SKU and customer maps (each with its location, for messages that point at
the mapping), the ledger's lines, and the digest a saved plan records to tell it is stale.
"""

from __future__ import annotations

import hashlib
from typing import Any

from reconciler.config.customer_prices import prices_of
from reconciler.config.entries import as_decimal, entries
from reconciler.config.yamlsource import Document
from reconciler.core.model import (
    CustomerMap,
    LedgerLine,
    Notifications,
    Removal,
    Safety,
    Settings,
    SkuMap,
)

__all__ = ["customer_maps", "digest", "ledger_lines", "settings_of", "sku_maps"]


def settings_of(data: dict[str, Any]) -> Settings:
    """settings.yaml's values, each missing one at its default."""
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


def sku_maps(doc: Document) -> tuple[SkuMap, ...]:
    return tuple(
        SkuMap(
            sku=item["sku"],
            product=item["product"],
            unit_price=as_decimal(item.get("unit_price")),
            unit_cost=as_decimal(item.get("unit_cost")),
            description=item.get("description"),
            location=doc.location((index,)),
        )
        for index, item in entries(doc)
    )


def customer_maps(docs: list[Document]) -> tuple[CustomerMap, ...]:
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
        for index, item in entries(doc)
    )


def ledger_lines(items: list[dict[str, Any]]) -> tuple[LedgerLine, ...]:
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
