"""Plans for people: Terraform-like text, Markdown for pull requests, JSON for machines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal

import typer

from reconciler.core.model import Action, Change, CustomerPlan, Plan, Removal
from reconciler.core.money import display
from reconciler.core.money import optional as money_optional
from reconciler.core.vocabulary import PLAN_MARKER
from reconciler.plan import planfile
from reconciler.plan.baseline import Comparison, CustomerComparison, Labelled
from reconciler.plan.orphans import no_longer_mapped, orphan_reason
from reconciler.secure.untrusted import html as h
from reconciler.secure.untrusted import json_dumps
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
    return f"{what}{_why(c, t)}  {_money_note(c, currency)}"


def _why(c: Change, escape: Callable[[str], str]) -> str:
    return f" — {escape(orphan_reason(c))}" if c.orphan else ""


def _money_note(c: Change, currency: str) -> str:
    if c.no_charge:
        return f"[no charge @ {display(c.unit_price, currency=currency)}]"
    if c.repriced:  # the new price is on the line already
        return f"[{money(c.revenue_delta, currency)}/month]"
    price = display(c.unit_price, currency=currency)
    return f"[{money(c.revenue_delta, currency)}/month @ {price}]"


def _price_cell(c: Change) -> str:
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


def _heading(cp: CustomerPlan) -> str:
    agreement = (
        "agreement unresolved"
        if cp.agreement_id is None
        else f"agreement {cp.agreement_id}"
        if cp.agreement_name is None  # a removed customer's: its agreement was not read
        else f"agreement {cp.agreement_id} '{t(cp.agreement_name)}'"
    )
    who = t(cp.customer_id) if cp.name == cp.customer_id else f"{t(cp.customer_id)} {t(cp.name)}"
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
        out.append("")
        out.append(style(_heading(cp), bold=True))
        for c in cp.changes:
            what = describe_change(c, plan)
            line = f"  {_SIGN[c.action]} {what}"
            out.append(style(line, fg=_COLOUR[c.action]))
        for e in cp.errors:
            out.append(style(f"  ! error: {t(e)} (customer left untouched)", fg="red", bold=True))
        for w in cp.warnings:
            out.append(style(f"  ? warning: {t(w)}", fg="yellow"))
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


def markdown(plan: Plan) -> str:
    """A pull-request comment: summary table, then a collapsible section per customer."""
    out = [
        PLAN_MARKER,
        "### reconcile plan",
        "",
        _period_line(plan),
        "",
        "| | count |",
        "|---|---:|",
        f"| ➕ add | {plan.count(Action.ADD)} |",
        f"| 🔄 update | {plan.count(Action.UPDATE)} |",
        f"| ➖ remove | {plan.count(Action.REMOVE)} |",
        f"| ❌ customers with errors | {sum(1 for cp in plan.customers if cp.errors)} |",
        f"| 💲 revenue change / month | {money(plan.revenue_delta, plan.currency)} |",
        "",
    ]
    if plan.unsafe:
        out.append("> [!CAUTION]")
        out.append("> **Unsafe plan**: `apply` refuses it without `--force`.")
        out.extend(f"> - {md(r)}" for r in plan.unsafe_reasons)
        out.append("")
    if not plan.changes and plan.has_errors:
        out.append("**No changes planned**, but customers with errors could not be compared.")
        out.append("")
    elif not plan.changes:
        out.append("**No changes.** ConnectWise matches ZeroTek usage.")
        out.append("")
    for cp in plan.customers:
        if not (cp.changes or cp.errors or cp.warnings):
            continue
        flag = "❌ " if cp.errors else ""
        # <summary> starts an HTML block: raw HTML until a blank line, so HTML escaping here
        out.append(
            f"<details><summary>{flag}<b>{h(cp.customer_id)}</b> {h(cp.name)} — "
            f"{len(cp.changes)} change(s), {money(cp.revenue_delta, plan.currency)}/month</summary>"
        )
        out.append("")
        agreement = md(cp.agreement_name or "")
        out.append(f"Company {md(cp.company)}, agreement {cp.agreement_id} {agreement}")
        out.append("")
        if cp.changes:
            cur = plan.currency
            out.append(
                f"| | product | SKU | before | after | effective | unit price ({cur}) "
                f"| revenue/month ({cur}) |"
            )
            out.append("|---|---|---|---:|---:|---|---:|---:|")
            for c in cp.changes:
                out.append(
                    f"| {c.action.value}{_why(c, md)} | {md(c.product)} | {md(c.sku)} | "
                    f"{c.before} | {c.after} | {_effective(c)} | {_price_cell(c)} | "
                    f"{money(c.revenue_delta)} |"
                )
            out.append("")
        out.extend(f"- ❌ {md(e)}" for e in cp.errors)
        out.extend(f"- ⚠️ {md(w)}" for w in cp.warnings)
        out.append("")
        out.append("</details>")
        out.append("")
    if plan.warnings:
        out.append("**Warnings**")
        out.append("")
        out.extend(f"- ⚠️ {md(w)}" for w in plan.warnings)
        out.append("")
    out.append(summary_line(plan))
    return "\n".join(out) + "\n"


def _effective(c: Change) -> str:
    """When the change bills from: an add's effectiveDate (the as-of day, or the
    agreement's later billStartDate); updates and removals act on the existing addition."""
    if c.action is Action.ADD and c.effective_date is not None:
        return c.effective_date.isoformat()
    return ""


def _period_line(plan: Plan) -> str:
    return (
        f"Period **{plan.period.kind.value}** {plan.period.start}..{plan.period.end} "
        f"(as of {plan.period.as_of}) · removal policy `{plan.removal.value}`"
    )


def _compared_rows(
    rows: tuple[tuple[CustomerComparison, tuple[Labelled, ...]], ...], currency: str
) -> list[str]:
    out = [
        "| customer | | product | SKU | before | after | effective | "
        f"unit price ({currency}) | revenue/month ({currency}) |",
        "|---|---|---|---|---:|---:|---|---:|---:|",
    ]
    for cc, labelled in rows:
        cp = cc.customer
        who = f"**{md(cp.customer_id)}** {md(cp.name)}"
        for x in labelled:
            c = x.change
            # A dropped line is a change the base branch's next sync would make and this
            # one no longer does: its effect on the invoice is the opposite of the change.
            action = f"no longer {c.action.value}" if x.cause == "dropped" else c.action.value
            out.append(
                f"| {who} | {action}{_why(c, md)} | {md(c.product)} | {md(c.sku)} | "
                f"{c.before} | {c.after} | {_effective(c)} | {_price_cell(c)} | "
                f"{money(x.revenue_delta)} |"
            )
    out.append("")
    return out


def markdown_compared(cmp: Comparison, note: str | None = None) -> str:
    """The pull-request comment with a baseline (12.7): what THIS pull request does to the
    invoices first, with its own monthly delta, then the drift the next sync corrects anyway."""
    plan = cmp.head
    out = [PLAN_MARKER, "### reconcile plan", "", _period_line(plan), ""]
    if plan.unsafe:
        out.append("> [!CAUTION]")
        out.append("> **Unsafe plan**: `apply` refuses it without `--force`.")
        out.extend(f"> - {md(r)}" for r in plan.unsafe_reasons)
        out.append("")
    out += ["#### This pull request", ""]
    if note:
        out += ["> [!NOTE]", f"> {md(note)}", ""]
    own = cmp.of("change", "dropped")
    if not own:
        out += ["Merging it changes nothing in ConnectWise by itself.", ""]
    else:
        count = sum(len(found) for _, found in own)
        out += [
            f"Monthly revenue change of merging it: "
            f"**{money(cmp.pull_request_delta, plan.currency)}** "
            f"({count} change(s) for {len(own)} customer(s)).",
            "",
            *_compared_rows(own, plan.currency),
        ]
    out += ["#### Drift", ""]
    drift = cmp.of("drift")
    if not drift:
        out += ["None: apart from this pull request, ConnectWise matches ZeroTek usage.", ""]
    else:
        count = sum(len(found) for _, found in drift)
        out += [
            f"The next sync makes these with or without this pull request: "
            f"**{money(cmp.delta('drift'), plan.currency)}**/month ({count} change(s) for "
            f"{len(drift)} customer(s)).",
            "",
            "<details><summary>Drift by customer</summary>",
            "",
            *_compared_rows(drift, plan.currency),
            "</details>",
            "",
        ]
    flagged = [cp for cp in plan.customers if cp.errors or cp.warnings]
    if flagged:
        out += ["#### Errors and warnings", ""]
        for cp in flagged:
            out.extend(f"- ❌ **{md(cp.customer_id)}** {md(e)}" for e in cp.errors)
            out.extend(f"- ⚠️ **{md(cp.customer_id)}** {md(w)}" for w in cp.warnings)
        out.append("")
    if plan.warnings:
        out += ["**Warnings**", ""]
        out.extend(f"- ⚠️ {md(w)}" for w in plan.warnings)
        out.append("")
    out.append(summary_line(plan))
    return "\n".join(out) + "\n"


def json_compared(cmp: Comparison, note: str | None = None) -> str:
    """`plan --format json --baseline`: the head plan, every change with its `cause`, the
    dropped ones listed in their customer, and the totals of the comparison."""
    data = planfile.plan_to_dict(cmp.head)
    entries = {c["id"]: c for c in data["customers"]}
    for cc in cmp.customers:
        entry = entries.get(cc.customer.customer_id)
        if entry is None:  # mapped only on the base branch: all its changes are dropped
            only = replace(cmp.baseline, customers=(cc.customer,))
            entry = planfile.plan_to_dict(only)["customers"][0]
            data["customers"].append(entry)
        entry["changes"] = [
            {**planfile.change_to_dict(x.change), "cause": _cause(x)} for x in cc.labelled
        ]
    counts = {cause: sum(len(cc.of(cause)) for cc in cmp.customers)
              for cause in ("change", "drift", "dropped")}  # fmt: skip
    data["baseline"] = {
        "pull_request_revenue_delta": money_optional(cmp.pull_request_delta),
        "drift_revenue_delta": money_optional(cmp.delta("drift")),
        **counts,
        "note": note,
    }
    return json_dumps(data, indent=2) + "\n"


def _cause(x: Labelled) -> str:
    """An orphan's removal this pull request causes says why (DESIGN 13.1): `unmapped` is
    a `change` of its own kind; counted with the changes in `baseline`."""
    return "unmapped" if x.change.orphan and x.cause == "change" else x.cause


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
