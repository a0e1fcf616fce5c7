"""One SKU, one spelling (DESIGN 13.3): how usage sources name and count SKUs.

ZeroTek and the CSV export are typed by people: `ZT-OKTA-SSO`, `zt-okta-sso` and
`"ZT-OKTA-SSO "` are one SKU. Compared exactly they were billed twice (two rows summed into
one product) or not at all (a trailing space reads as an unmapped SKU, and the line in use
is cancelled). Every source therefore keys SKUs by `sku_key` and keeps the first trimmed
spelling for display. Two API rows for one customer that are one SKU this way are never
summed: the source contradicts itself, so that customer is an error (`Usage.problems`).
"""

from __future__ import annotations


def sku_key(sku: str) -> str:
    """The identity of a SKU: surrounding spaces dropped, case ignored."""
    return sku.strip().casefold()


class SkuRows:
    """A usage source's rows for many customers, checked for one SKU in two spellings."""

    __slots__ = ("_spelling", "problems", "users")

    def __init__(self) -> None:
        self.users: dict[str, dict[str, int]] = {}  # customer -> first spelling -> users
        self.problems: dict[str, str] = {}  # customer -> why its usage is not trusted
        self._spelling: dict[tuple[str, str], str] = {}

    def add(self, customer: str, sku: str, users: int) -> None:
        """One API row. Rows with 0 users still take part in the duplicate check (ZeroTek
        listing a SKU twice is a contradiction whatever the counts)."""
        shown = sku.strip()
        key = (customer, sku_key(sku))
        first = self._spelling.get(key)
        if first is not None:
            self.problems.setdefault(
                customer,
                f"ZeroTek lists SKU {first!r} and {sku!r} for this customer: one SKU in two "
                "spellings (case or surrounding spaces); its users are never summed. Fix it "
                "in ZeroTek; this customer is left untouched",
            )
            return
        self._spelling[key] = shown
        if users > 0:
            self.users.setdefault(customer, {})[shown] = users

    def result(self) -> dict[str, dict[str, int]]:
        return {c: s for c, s in self.users.items() if s}
