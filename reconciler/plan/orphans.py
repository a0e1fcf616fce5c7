"""Orphans (DESIGN 13.1): lines the ledger says we manage that no current mapping manages.

octoDNS's ownership processor in our terms: state/managed.json lists every addition the
reconciler wrote or confirmed; a mapping edit (a SKU mapping removed or repointed, a
customer moved to another agreement or removed) leaves such a line billing with nobody
planning it. `with_orphans` adds their removals to a plan, labelled "no longer mapped: was
SKU S of customer C", or with `billing.orphans: keep` one warning with their money. Pure:
the engine reads the agreements (`ledger_agreements`) and hands them in `actual`.

Conservative where the answer is not certain: a line whose customer is still mapped but
has an error this run, or whose agreement has an error, is left alone; a line no longer
active in ConnectWise is simply forgotten at the next apply.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import Decimal

from reconciler.core.model import Config, LedgerLine
from reconciler.core.plan import Action, Change, CustomerPlan, Plan
from reconciler.core.state import ActualState, Addition

NO_LEDGER = (
    "state/managed.json does not exist yet: lines left behind by mapping edits (orphans) "
    "are not detected until the first apply writes it"
)


def orphan_reason(change: Change) -> str:
    """Why an orphan is removed, in the words every surface uses (plan, record, e-mail)."""
    return f"no longer mapped: was SKU {change.sku} of customer {change.customer_id}"


def in_scope(
    config: Config, selection: Sequence[str] | None, agreements: Iterable[int]
) -> list[LedgerLine]:
    """The ledger lines a plan of `selection` (None: everyone) answers for: all of them,
    or the selected customers' and those on the selection's agreements (`--customer C`
    includes C's orphans)."""
    lines = config.ledger or ()
    if selection is None:
        return list(lines)
    chosen, read = set(selection), set(agreements)
    return [line for line in lines if line.customer_id in chosen or line.agreement_id in read]


def removed_customers(config: Config) -> set[str]:
    """Customers the ledger lists whose mapping was removed: `--customer` may still name
    them, and their orphans are all a plan of them holds (DESIGN 13.1)."""
    return {line.customer_id for line in config.ledger or ()} - {c.id for c in config.customers}


def ledger_agreements(
    config: Config, selection: Sequence[str] | None, read: Iterable[int]
) -> list[int]:
    """Agreements whose additions a plan must read for its orphans, beyond those it read
    anyway: at most one read each."""
    seen = set(read)
    return sorted({line.agreement_id for line in in_scope(config, selection, seen)} - seen)


def with_orphans(plan: Plan, config: Config, actual: ActualState) -> Plan:
    """`plan` with its orphans' removals (or the keep warning); its safety is recomputed
    by the caller."""
    if config.ledger is None:
        return plan  # the engine says so once (NO_LEDGER)
    index = _Index(plan, config)
    found = [
        (line, addition)
        for line in in_scope(config, plan.selection, index.by_agreement)
        if (addition := _live_line(line, actual, plan.period.as_of)) is not None
        and not index.still_managed(line)
    ]
    if not found:
        return plan
    changes = [_removal(line, addition, config) for line, addition in found]
    if config.settings.keep_orphans:
        return replace(plan, warnings=(*plan.warnings, _kept(changes, plan.currency)))
    return replace(plan, customers=_attach(plan, config, actual, changes))


def _live_line(line: LedgerLine, actual: ActualState, as_of: dt.date) -> Addition | None:
    for addition in actual.additions.get(line.agreement_id, ()):
        if addition.id == line.addition_id:
            same = addition.product_identifier.casefold() == line.product.casefold()
            live = addition.active_on(as_of) and addition.quantity != 0
            return addition if same and live else None
    return None


class _Index:
    """The plan's customers by id and by agreement, built once (ledgers hold tens of
    thousands of lines)."""

    def __init__(self, plan: Plan, config: Config) -> None:
        self.config = config
        self.planned = {cp.customer_id: cp for cp in plan.customers}
        self.by_agreement: dict[int, list[CustomerPlan]] = defaultdict(list)
        for cp in plan.customers:
            if cp.agreement_id is not None:
                self.by_agreement[cp.agreement_id].append(cp)
        # With a selection, a customer outside it may still map to an agreement by id.
        chosen = set(plan.selection or ())
        self.elsewhere = (
            {c.agreement for c in config.customers if c.id not in chosen}
            if plan.selection is not None
            else set()
        )

    def still_managed(self, line: LedgerLine) -> bool:
        """Some current mapping manages the line (or may: an erroring customer is left
        alone, never guessed about)."""
        own = self.planned.get(line.customer_id)
        if self.config.customer(line.customer_id) is not None and (
            own is None or own.errors or own.agreement_id is None
        ):
            return True  # not planned here, or in error
        on_agreement = self.by_agreement.get(line.agreement_id, [])
        if any(cp.errors for cp in on_agreement):
            return True
        if not on_agreement and line.agreement_id in self.elsewhere:
            return True
        return bool(on_agreement) and line.product in self.config.managed_products


def _removal(line: LedgerLine, addition: Addition, config: Config) -> Change:
    return Change(
        action=Action.REMOVE,
        customer_id=line.customer_id,
        sku=line.sku,
        product=config.owned_products.spelling(line.product) or line.product,
        product_id=addition.product_id,
        agreement_id=line.agreement_id,
        addition_id=addition.id,
        before=addition.quantity,
        after=0,
        unit_price=addition.unit_price or Decimal(0),
        effective_date=addition.effective_date,
        no_charge=addition.no_charge,
        orphan=True,
    )


def _kept(changes: list[Change], currency: str) -> str:
    money = -sum((c.revenue_delta for c in changes), Decimal(0))
    lines = "; ".join(
        f"#{c.addition_id} {c.product} quantity {c.before} on agreement {c.agreement_id} "
        f"(was SKU {c.sku} of customer {c.customer_id})"
        for c in changes
    )
    return (
        f"{len(changes)} line(s) no longer mapped are kept (billing.orphans: keep), billing "
        f"{money:.2f} {currency}/month: {lines}"
    )


def _attach(
    plan: Plan, config: Config, actual: ActualState, changes: list[Change]
) -> tuple[CustomerPlan, ...]:
    """Each removal goes to the customer planned on its agreement (the first, as the
    planner puts a shared agreement's changes), else to its ledger customer's plan (one on
    another agreement when the customer moved: `_named`), else to a plan of its own for a
    customer no longer mapped."""
    by_id = {cp.customer_id: cp for cp in plan.customers}
    lead: dict[int, str] = {}
    for cp in sorted(plan.customers, key=lambda cp: cp.customer_id):
        if cp.agreement_id is not None:
            lead.setdefault(cp.agreement_id, cp.customer_id)
    extra: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        owner = lead.get(change.agreement_id, change.customer_id)
        extra[owner].append(change)
    for owner, found in extra.items():
        cp = by_id.get(owner) or _unmapped_plan(owner, found[0], config, actual)
        found = [_named(change, cp, actual) for change in found]
        by_id[owner] = replace(
            cp,
            changes=tuple(sorted((*cp.changes, *found), key=lambda c: (c.product, c.sku))),
            managed=cp.managed + len(found),
            managed_quantity=cp.managed_quantity + sum(c.before for c in found),
        )
    return tuple(by_id[cid] for cid in sorted(by_id))


def _named(change: Change, cp: CustomerPlan, actual: ActualState) -> Change:
    """A removal shown in the plan of a customer now on another agreement (it moved away
    from this one) names its own agreement: it is shown under the agreement it removes
    from, not under the customer's new one."""
    if change.agreement_id == cp.agreement_id:
        return change
    agreement = actual.agreements.get(change.agreement_id)
    return replace(change, agreement_name=agreement.name if agreement else None)


def _unmapped_plan(cid: str, change: Change, config: Config, actual: ActualState) -> CustomerPlan:
    agreement = actual.agreements.get(change.agreement_id)
    company = next((c.identifier for c in actual.companies.values()
                    if agreement is not None and c.id == agreement.company_id), "")  # fmt: skip
    return CustomerPlan(
        customer_id=cid,
        name=cid,
        company=company,
        agreement_id=change.agreement_id,
        agreement_name=agreement.name if agreement else None,
        warnings=(_removed_warning(cid),),
    )


def _removed_warning(cid: str) -> str:
    return f"customer {cid} is no longer mapped: its lines are removed"


def no_longer_mapped(cp: CustomerPlan) -> bool:
    """A plan of its own for a customer whose mapping was removed (its orphans' removals),
    also when read back from a plan file (it carries its warning)."""
    return _removed_warning(cp.customer_id) in cp.warnings
