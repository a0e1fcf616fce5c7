"""Plans for people: Terraform-like text, Markdown for pull requests, JSON for machines; how
one change reads (shared with `baseline_render`, the plan against the base branch), and the plain
tables of the e-mails and check-unmapped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import NamedTuple

import typer

from reconciler.core.model import Removal
from reconciler.core.money import display
from reconciler.core.plan import Action, Change, CustomerPlan, Plan
from reconciler.core.vocabulary import PLAN_MARKER
from reconciler.plan import planfile
from reconciler.plan.orphans import no_longer_mapped, orphan_reason
from reconciler.secure.untrusted import html as h
from reconciler.secure.untrusted import markdown as md
from reconciler.secure.untrusted import plain as t

_SIGN = {Action.ADD: "+", Action.UPDATE: "~", Action.REMOVE: "-"}
_COLOUR = {Action.ADD: "green", Action.UPDATE: "yellow", Action.REMOVE: "red"}


def money(value: Decimal, currency: str | None = None) -> str:
    """A signed delta, exact (see reconciler.core.money), with the currency named."""
    return display(value, signed=True, currency=currency)


_REMOVAL_WORDS = {
    Removal.CANCEL: "cancel",
    Removal.ZERO: "set quantity 0",
    Removal.DELETE: "delete",
}


def describe_change(c: Change, plan: Plan) -> str:
    """One change in words; a removal names the method `apply` will use (Plan.removal_of)."""
    currency = plan.currency
    if c.action is Action.ADD:
        what = f"add {t(c.product)} ({t(c.sku)}) quantity {c.after}"
        if c.effective_date:
            what += f", effective {c.effective_date.isoformat()}"
    elif c.action is Action.UPDATE:
        what = f"update {t(c.product)} ({t(c.sku)}) #{c.addition_id} {update_words(c)}"
    else:
        method = plan.removal_of(c)
        how = _REMOVAL_WORDS[method]
        if method is not plan.removal and c.effective_date is not None:  # cancel -> zero
            how += f": it starts {c.effective_date.isoformat()}, after today"
        what = f"remove {t(c.product)} ({t(c.sku)}) #{c.addition_id} quantity {c.before} ({how})"
    return f"{what}{why(c, t)}  {_money_note(c, currency)}"


def why(c: Change, escape: Callable[[str], str]) -> str:
    return f" — {escape(orphan_reason(c))}" if c.orphan else ""


def _money_note(c: Change, currency: str) -> str:
    if c.no_charge:
        return f"[no charge @ {display(c.unit_price, currency=currency)}]"
    if c.repriced:  # the new price is on the line already
        return f"[{money(c.revenue_delta, currency)}/month]"
    price = display(c.unit_price, currency=currency)
    return f"[{money(c.revenue_delta, currency)}/month @ {price}]"


def price_cell(c: Change) -> str:
    shown = price_words(c) if c.repriced else display(c.unit_price)
    return f"{shown} (no charge)" if c.no_charge else shown


def price_words(c: Change) -> str:
    """`4.00 → 4.25` of a repriced line (DESIGN 13.4); `none` when it had no price."""
    before = "none" if c.price_before is None else display(c.price_before)
    return f"{before} → {display(c.unit_price)}"


def update_words(c: Change) -> str:
    """What an update changes, quantity and price together: `quantity 40 → 42`,
    `price 4.00 → 4.25`, or `quantity 40 → 42, price 4.00 → 4.25` (one PATCH)."""
    parts = [f"quantity {c.before} → {c.after}"] if c.before != c.after else []
    if c.repriced:
        parts.append(f"price {price_words(c)}")
    return ", ".join(parts)


def summary_line(plan: Plan) -> str:
    errors = sum(1 for cp in plan.customers if cp.errors)
    # A removed customer's orphans are a plan of their own, counted like every customer
    # (as the JSON summary and the run record count it) and said to be one.
    removed = sum(1 for cp in plan.customers if no_longer_mapped(cp))
    line = (
        f"Plan: {plan.count(Action.ADD)} to add, {plan.count(Action.UPDATE)} to update, "
        f"{plan.count(Action.REMOVE)} to remove across "
        f"{sum(1 for cp in plan.customers if cp.changes)} of {len(plan.customers)} customers"
        f"{f' ({removed} no longer mapped)' if removed else ''}; "
        f"revenue {money(plan.revenue_delta, plan.currency)}/month"
    )
    if errors:
        line += f"; {errors} customer{'s' if errors != 1 else ''} with errors"
    return line


class _Shown(NamedTuple):
    """A customer's changes written to one agreement, shown under that agreement."""

    agreement_id: int | None
    agreement_name: str | None
    changes: tuple[Change, ...]


def _by_agreement(cp: CustomerPlan) -> list[_Shown]:
    """The customer's changes by the agreement they are written to: its own agreement's
    first (always, even with none), then each other one by id: an orphan left on the
    agreement the customer moved away from (DESIGN 13.1) is shown under that agreement."""
    own = _Shown(cp.agreement_id, cp.agreement_name, cp.changes)
    elsewhere = sorted({c.agreement_id for c in cp.changes} - {cp.agreement_id})
    if not elsewhere:
        return [own]
    groups = [
        own._replace(changes=tuple(c for c in cp.changes if c.agreement_id == own.agreement_id))
    ]
    for agreement_id in elsewhere:
        changes = tuple(c for c in cp.changes if c.agreement_id == agreement_id)
        groups.append(_Shown(agreement_id, changes[0].agreement_name, changes))
    return groups


def _heading(cp: CustomerPlan, where: _Shown) -> str:
    agreement = (
        "agreement unresolved"
        if where.agreement_id is None
        else f"agreement {where.agreement_id}"
        if where.agreement_name is None  # not read: a removed (or moved) customer's old one
        else f"agreement {where.agreement_id} '{t(where.agreement_name)}'"
    )
    who = t(cp.customer_id) if cp.name == cp.customer_id else f"{t(cp.customer_id)} {t(cp.name)}"
    if where.agreement_id != cp.agreement_id:
        # An orphan on the agreement the customer left (13.1): it may be another company's,
        # which the plan does not know, so the customer's company is not put beside it.
        return f"{who}, former {agreement}"
    return f"{who} → {t(cp.company)}, {agreement}" if cp.company else f"{who}, {agreement}"


def text(plan: Plan, *, color: bool = False, verbose: bool = False) -> str:
    """Terraform-style plan. Customers without changes, errors or warnings are summarised."""

    def style(s: str, **kw: object) -> str:
        return typer.style(s, **kw) if color else s  # type: ignore[arg-type]

    out = [style(f"Period: {plan.period}  (as of {plan.period.as_of.isoformat()})", bold=True)]
    quiet = 0
    for cp in plan.customers:
        if not (cp.changes or cp.errors or cp.warnings or verbose):
            quiet += 1
            continue
        out += _customer_text(cp, plan, style)
    if quiet:
        out.append("")
        out.append(f"{quiet} customer{'s' if quiet != 1 else ''} already up to date.")
    if plan.warnings:
        out.append("")
        out.extend(style(f"? warning: {t(w)}", fg="yellow") for w in plan.warnings)
    if plan.unsafe:
        out.append("")
        out.append(style("UNSAFE PLAN: apply refuses it without --force:", fg="red", bold=True))
        out.extend(style(f"  - {t(r)}", fg="red") for r in plan.unsafe_reasons)
    out.append("")
    if not plan.changes and plan.has_errors:
        # Not "matches": the customers with errors were not compared at all.
        failed = sum(1 for cp in plan.customers if cp.errors)
        out.append(
            style(
                f"No changes planned, but {failed} customer(s) could not be planned (errors "
                "above): ConnectWise may not match ZeroTek usage for them.",
                fg="red",
                bold=True,
            )
        )
    elif not plan.changes:
        out.append(style("No changes. ConnectWise matches ZeroTek usage.", fg="green", bold=True))
    out.append(style(summary_line(plan), bold=True))
    return "\n".join(out) + "\n"


def _customer_text(cp: CustomerPlan, plan: Plan, style: Callable[..., str]) -> list[str]:
    """A customer under its heading: its changes, errors and warnings; then the changes it
    writes to another agreement, under that agreement's heading."""

    def change(c: Change) -> str:
        return style(f"  {_SIGN[c.action]} {describe_change(c, plan)}", fg=_COLOUR[c.action])

    own, *elsewhere = _by_agreement(cp)
    out = ["", style(_heading(cp, own), bold=True), *(change(c) for c in own.changes)]
    for e in cp.errors:
        out.append(style(f"  ! error: {t(e)} (customer left untouched)", fg="red", bold=True))
    for w in cp.warnings:
        out.append(style(f"  ? warning: {t(w)}", fg="yellow"))
    for where in elsewhere:
        out += ["", style(_heading(cp, where), bold=True), *(change(c) for c in where.changes)]
    return out


def markdown(plan: Plan) -> str:
    """A pull-request comment: summary table, then a collapsible section per customer."""
    out = [PLAN_MARKER, "### reconcile plan", "", period_line(plan), ""]
    out += [*_counts_table(plan), *caution(plan), *_nothing_to_do(plan)]
    for cp in plan.customers:
        if cp.changes or cp.errors or cp.warnings:
            out += _customer_details(cp, plan)
    out += plan_warnings(plan)
    out.append(summary_line(plan))
    return "\n".join(out) + "\n"


def _counts_table(plan: Plan) -> list[str]:
    return [
        "| | count |",
        "|---|---:|",
        f"| ➕ add | {plan.count(Action.ADD)} |",
        f"| 🔄 update | {plan.count(Action.UPDATE)} |",
        f"| ➖ remove | {plan.count(Action.REMOVE)} |",
        f"| ❌ customers with errors | {sum(1 for cp in plan.customers if cp.errors)} |",
        f"| 💲 revenue change / month | {money(plan.revenue_delta, plan.currency)} |",
        "",
    ]


def caution(plan: Plan) -> list[str]:
    if not plan.unsafe:
        return []
    return [
        "> [!CAUTION]",
        "> **Unsafe plan**: `apply` refuses it without `--force`.",
        *(f"> - {md(r)}" for r in plan.unsafe_reasons),
        "",
    ]


def _nothing_to_do(plan: Plan) -> list[str]:
    if not plan.changes and plan.has_errors:
        return ["**No changes planned**, but customers with errors could not be compared.", ""]
    if not plan.changes:
        return ["**No changes.** ConnectWise matches ZeroTek usage.", ""]
    return []


def _customer_details(cp: CustomerPlan, plan: Plan) -> list[str]:
    """A customer's collapsible section: its agreement, its changes, errors and warnings."""
    flag = "❌ " if cp.errors else ""
    # <summary> starts an HTML block: raw HTML until a blank line, so HTML escaping here
    own, *elsewhere = _by_agreement(cp)
    out = [
        f"<details><summary>{flag}<b>{h(cp.customer_id)}</b> {h(cp.name)} — "
        f"{len(cp.changes)} change(s), {money(cp.revenue_delta, plan.currency)}/month</summary>",
        "",
        _agreement_line(cp, own),
        "",
    ]
    if own.changes:
        out += _changes_table(own.changes, plan.currency)
    out.extend(f"- ❌ {md(e)}" for e in cp.errors)
    out.extend(f"- ⚠️ {md(w)}" for w in cp.warnings)
    for where in elsewhere:  # an orphan on the agreement the customer moved away from
        out += [""] if out[-1] else []
        out += [_agreement_line(cp, where), "", *_changes_table(where.changes, plan.currency)]
    return [*out, "", "</details>", ""]


def _agreement_line(cp: CustomerPlan, where: _Shown) -> str:
    name = md(where.agreement_name or "")
    if where.agreement_id != cp.agreement_id:  # see _heading
        return f"Former agreement {where.agreement_id} {name}".rstrip()
    return f"Company {md(cp.company)}, agreement {where.agreement_id} {name}"


def _changes_table(changes: Sequence[Change], cur: str) -> list[str]:
    out = [
        f"| | product | SKU | before | after | effective | unit price ({cur}) "
        f"| revenue/month ({cur}) |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for c in changes:
        out.append(
            f"| {c.action.value}{why(c, md)} | {md(c.product)} | {md(c.sku)} | "
            f"{c.before} | {c.after} | {effective(c)} | {price_cell(c)} | "
            f"{money(c.revenue_delta)} |"
        )
    return [*out, ""]


def plan_warnings(plan: Plan) -> list[str]:
    if not plan.warnings:
        return []
    return ["**Warnings**", "", *(f"- ⚠️ {md(w)}" for w in plan.warnings), ""]


def effective(c: Change) -> str:
    """When the change bills from: an add's effectiveDate (the as-of day, or the
    agreement's later billStartDate); updates and removals act on the existing addition."""
    if c.action is Action.ADD and c.effective_date is not None:
        return c.effective_date.isoformat()
    return ""


def period_line(plan: Plan) -> str:
    return (
        f"Period **{plan.period.kind.value}** {plan.period.start}..{plan.period.end} "
        f"(as of {plan.period.as_of}) · removal policy `{plan.removal.value}`"
    )


def json_text(plan: Plan) -> str:
    return planfile.dumps(plan, pretty=True)  # on a terminal or in a PR: people read it


def render(plan: Plan, fmt: str, *, color: bool = False) -> str:
    if fmt == "markdown":
        return markdown(plan)
    if fmt == "json":
        return json_text(plan)
    return text(plan, color=color)


# --- plain tables (e-mails, check-unmapped) ---


def text_table(rows: Sequence[Sequence[object]], indent: str = "  ") -> list[str]:
    """Columns padded to their widest cell (e-mails, check-unmapped)."""
    cells = [[t(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))] if cells else []
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


UNMAPPED_HEADER = ("Customer", "Customer id", "SKU", "Users")


def unmapped_text(rows: Sequence[tuple[str, str, str, int]]) -> str:
    table = [(name, cid, sku, str(users)) for cid, name, sku, users in rows]
    return "\n".join(text_table([UNMAPPED_HEADER, *table]))


def unmapped_markdown(rows: Sequence[tuple[str, str, str, int]], period: object) -> str:
    """The list for a job summary: a Markdown table (names escaped), never a code fence a
    name could close."""
    out = ["## Unmapped SKUs", ""]
    if not rows:
        return "\n".join([*out, "No unmapped SKUs in use.", ""])
    out += [f"Customers using ZeroTek SKUs that have no ConnectWise mapping ({period}):", ""]
    out += ["| Customer | Customer id | SKU | Users |", "|---|---|---|---:|"]
    out += [f"| {md(name)} | {md(c)} | {md(sku)} | {md(n)} |" for c, name, sku, n in rows]
    return "\n".join([*out, ""])
