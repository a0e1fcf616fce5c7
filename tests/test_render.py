from plan_builders import addition, config, customer, state, usage

from reconciler import render
from reconciler.model import Safety, Settings
from reconciler.planner import plan


def _plan(**settings):
    cfg = config(customer("zt-1"), customer("zt-2", company="GHOST"), settings=Settings(**settings))
    actual = state(addition(1, "ZT-OKTA-SSO", 40), addition(2, "ZT-OKTA-MFA", 5))
    return plan(cfg, usage({"zt-1": {"OKTA-SSO": 42, "OKTA-WF": 2}}), actual)


def test_text_is_terraform_like_and_plain_without_a_tty() -> None:
    out = render.text(_plan())
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert (
        "  + add ZT-OKTA-WF (OKTA-WF) quantity 2, effective 2026-11-24  [+13.00/month @ 6.50]"
        in lines
    )
    assert "  ~ update ZT-OKTA-SSO (OKTA-SSO) #1 quantity 40 → 42  [+8.00/month @ 4.00]" in lines
    assert (
        "  - remove ZT-OKTA-MFA (OKTA-MFA) #2 quantity 5 (cancel)  [-20.00/month @ 4.00]" in lines
    )
    assert "  ! error: ConnectWise company 'GHOST' not found (customer left untouched)" in lines
    assert lines[-1] == (
        "Plan: 1 to add, 1 to update, 1 to remove across 1 of 2 customers; "
        "revenue +1.00/month; 1 customer with errors"
    )
    assert "\x1b[" in render.text(_plan(), color=True)


def test_no_changes_says_so() -> None:
    cfg = config(customer("zt-1"))
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 40}}), state(addition(1, "ZT-OKTA-SSO", 40)))
    out = render.text(p)
    assert "No changes. ConnectWise matches ZeroTek usage." in out
    assert "1 customer already up to date." in out


def test_markdown_has_marker_table_and_details() -> None:
    md = render.markdown(_plan(safety=Safety(min_existing=1, max_removal_percent=10)))
    assert md.startswith("<!-- reconcile:plan -->\n")
    assert "| ➕ add | 1 |" in md and "| 💲 revenue change / month | +1.00 |" in md
    assert "<details><summary><b>zt-1</b>" in md and "</details>" in md
    assert "> **Unsafe plan**" in md
    assert "| update | `ZT-OKTA-SSO` | OKTA-SSO | 40 | 42 | 4.00 | +8.00 |" in md


def test_markdown_escapes_table_breakers() -> None:
    cfg = config(customer("zt-1"))
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 1}}), state())
    p = p.__class__(**{**p.__dict__, "warnings": ("a | b <script>",)})
    assert "a \\| b &lt;script&gt;" in render.markdown(p)
