"""A run record written as its JSON text in pieces (one per customer), scrubbed of
credentials: what `runlog` writes, so a 10,000-customer record never exists whole as a dict
tree, a string and bytes at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from reconciler.records.record import RunRecord
from reconciler.records.recordjson import customer_json
from reconciler.secure.scrub import Scrubber
from reconciler.secure.untrusted import json_dumps


class RecordStream:
    """A record's JSON text in pieces (one per customer), scrubbed of credentials, so a
    10,000-customer record never exists whole as a dict tree, a string and bytes at once.
    After iteration: `size` in bytes, and whether any piece held a credential."""

    _HOLE = "@@customers@@"

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.size = 0
        self.scrubbed = False
        self._scrubber = Scrubber()
        self._hash = hashlib.sha256()

    def digest(self) -> str:
        """files.content_digest of what was streamed (so no re-read of the file)."""
        return self._hash.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        head = self.record.to_json(customers=False)
        head["customers"] = self._HOLE
        before, after = self._dumps(head).split(f'"customers":"{self._HOLE}"', 1)
        yield self._bytes(before + '"customers":[')
        for i, customer in enumerate(self.record.customers):
            text = self._dumps(customer_json(customer))
            yield self._bytes(text if i == 0 else "," + text)
        yield self._bytes("]" + after + "\n")

    def _dumps(self, value: dict[str, Any]) -> str:
        text = json_dumps(value, separators=(",", ":"))
        if self._scrubber.holds_secret(text):
            self.scrubbed = True
            text = json_dumps(self._scrubber.tree(value), separators=(",", ":"))
        return text

    def _bytes(self, text: str) -> bytes:
        data = text.encode("utf-8")
        self.size += len(data)
        self._hash.update(data)
        return data
