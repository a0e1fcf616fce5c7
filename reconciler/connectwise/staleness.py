"""The just-in-time staleness read (DESIGN 13.7): just before the first write to an
agreement its managed additions are read, once, and compared with the plan's state snapshot;
a customer whose agreement moved since the plan is skipped as stale, nothing written."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.state import read_additions
from reconciler.core.model import ManagedProducts
from reconciler.plan import drift, planfile


class Freshness:
    """One read per agreement, shared by every customer writing to it."""

    def __init__(
        self,
        cw: ConnectWiseClient,
        products: ManagedProducts,
        as_of: dt.date,
        expected: Mapping[str, Any] | None,
    ) -> None:
        self.cw = cw
        self.products = products
        self.as_of = as_of
        self.expected = expected  # the plan's state snapshot (planfile.snapshot)
        self._reads: dict[int, asyncio.Task[str | None]] = {}

    async def check(self, agreement_id: int) -> str | None:
        """Once per agreement, before its first write: None when its managed additions are
        still what the plan was made against, else why the customer is skipped."""
        task = self._reads.get(agreement_id)
        if task is None:
            task = asyncio.ensure_future(self._reread(agreement_id))
            self._reads[agreement_id] = task
        return await task

    async def _reread(self, agreement_id: int) -> str | None:
        saved = (self.expected or {}).get("agreements", {}).get(str(agreement_id))
        if saved is None:
            return None
        current = await read_additions(self.cw, agreement_id, managed=self.products)
        now = planfile.additions_snapshot(current, self.products, self.as_of)
        if now == saved["additions"]:
            return None
        moved = "; ".join(drift.additions(agreement_id, saved["additions"], now, limit=3))
        return f"stale: {moved}; skipped, nothing written. Run `reconcile plan` again"
