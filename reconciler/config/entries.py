"""The entries of a list mapping file as the checks and the model read them: the items
that are mappings, with their index (items with schema errors included: the checks run
beside the schema's), and a YAML number as the exact decimal written."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from reconciler.config.yamlsource import Document


def entries(doc: Document | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, item) for each mapping item of a list file; nothing for any other file."""
    if doc is None or not isinstance(doc.data, list):
        return
    for index, item in enumerate(doc.data):
        if isinstance(item, dict):
            yield index, item


def as_decimal(value: Any) -> Decimal | None:
    """A price or cost as written (None when absent)."""
    # str() first: Decimal(0.1) would carry the float's binary error onto invoices.
    return None if value is None else Decimal(str(value))
