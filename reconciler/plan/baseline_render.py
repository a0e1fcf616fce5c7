"""`plan --baseline` for people (DESIGN 12.7): the pull-request comment that puts what THIS
pull request does to the invoices first, then the drift the next sync corrects anyway
(`markdown_compared`), and the JSON with every change's `cause` (`json_compared`). The
comparison itself is `baseline.compare` (pure); a change reads as in `render`.
"""

from __future__ import annotations

from dataclasses import replace

from reconciler.core.money import optional as money_optional
from reconciler.core.vocabulary import PLAN_MARKER
from reconciler.plan import planfile
from reconciler.plan.baseline import Comparison, CustomerComparison, Labelled
from reconciler.plan.render import (
    caution,
    effective,
    money,
    period_line,
    plan_warnings,
    price_cell,
    summary_line,
    why,
)
from reconciler.secure.untrusted import json_dumps
from reconciler.secure.untrusted import markdown as md


def _rows(
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
                f"| {who} | {action}{why(c, md)} | {md(c.product)} | {md(c.sku)} | "
                f"{c.before} | {c.after} | {effective(c)} | {price_cell(c)} | "
                f"{money(x.revenue_delta)} |"
            )
    out.append("")
    return out


def markdown_compared(cmp: Comparison, note: str | None = None) -> str:
    """The pull-request comment with a baseline (12.7): what THIS pull request does to the
    invoices first, with its own monthly delta, then the drift the next sync corrects anyway."""
    plan = cmp.head
    out = [PLAN_MARKER, "### reconcile plan", "", period_line(plan), "", *caution(plan)]
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
            *_rows(own, plan.currency),
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
            *_rows(drift, plan.currency),
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
    out += plan_warnings(plan)
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
