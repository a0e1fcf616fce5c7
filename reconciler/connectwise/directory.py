"""Read ConnectWise's whole directory: every company, agreement and catalog item.

`discover` needs candidates the mappings do not name yet, so unlike `state.read_state`
(which asks only for mapped identifiers) it lists everything: ceil(n/1000) pages per list
(DESIGN 4: `page`/`pageSize`, `fields=` trimming the payload), the three lists concurrently.
"""

from __future__ import annotations

import asyncio
from typing import Any

from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.payload import (
    AGREEMENT_FIELDS,
    AGREEMENTS,
    CATALOG,
    CATALOG_FIELDS,
    COMPANIES,
    COMPANY_FIELDS,
    agreement,
    catalog_item,
    company,
)
from reconciler.core.state import Directory

# The agreement type ("Managed Services", "Licensing") helps tell a licensing agreement
# from a helpdesk contract; it is read only here.
DIRECTORY_AGREEMENT_FIELDS = f"{AGREEMENT_FIELDS},type/name"


def _type_name(row: dict[str, Any]) -> str | None:
    kind = row.get("type")
    name = kind.get("name") if isinstance(kind, dict) else None
    return name if isinstance(name, str) else None


async def read_directory(client: ConnectWiseClient) -> Directory:
    company_rows, agreement_rows, catalog_rows = await asyncio.gather(
        client.get_all(COMPANIES, fields=COMPANY_FIELDS),
        client.get_all(AGREEMENTS, fields=DIRECTORY_AGREEMENT_FIELDS),
        client.get_all(CATALOG, fields=CATALOG_FIELDS),
    )
    agreements = tuple(agreement(r, AGREEMENTS) for r in agreement_rows)
    types = {
        a.id: name
        for a, row in zip(agreements, agreement_rows, strict=True)
        if (name := _type_name(row))
    }
    return Directory(
        companies=tuple(company(r) for r in company_rows),
        agreements=agreements,
        agreement_types=types,
        catalog=tuple(catalog_item(r) for r in catalog_rows),
    )
