"""Hostile names end to end (DESIGN 12.6): names from ConnectWise (agreement names), ZeroTek
(customer names, SKUs) and the mappings (customer names) flow through plan (text, Markdown,
JSON), apply (run record, its Markdown twin, INDEX.md, both e-mails through a real SMTP
server), activity and check-unmapped, all with GITHUB_ACTIONS=true, against the sandbox.

Asserted: no printed line can act as a workflow command; no Markdown link, image, mention,
HTML, heading, list, fence or line break comes from a name (parsed with markdown-it-py);
e-mail headers hold none of it and the HTML part has only our tags; JSON round-trips every
name exactly."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import clirun
import pytest
import yaml
from markdown_it import MarkdownIt
from runlog_samples import SmtpServer, run_smtp
from typer.testing import Result

from reconciler.sandbox import Sandbox, default_fixture
from reconciler.sandbox.records import Fixture
from reconciler.secure.untrusted import ZWSP

AS_OF = ["--as-of", "2026-11-24"]
LONG = "Northwind " + "`~*_[]<>" * 1249  # 10,002 characters

# mapping names (customers.yaml), by ZeroTek customer id
NAMES = {
    "zt-0001": "::add-mask::Acme",
    "zt-0002": "O'Brien\r\n::error file=x,line=1::forged\u2028::notice::u2028",
    "zt-0003": "Big [link](http://x) ![img](http://x/i.png) @org/team <b>bold</b> www.x.com",
    "zt-0004": "Contoso \u202eevil\u202c zero\u200dwidth\u200b \u2066iso\u2069",
    "zt-0005": LONG,
    "zt-0006": "```\n# heading\n- list\n<!-- comment -->\n",
    "zt-0007": "Initech ##[warning]legacy {{ secrets.TOKEN }} ${{ x }} #12 :smile: `tick`",
}
# ConnectWise agreement names (the mappings name these agreements by id)
AGREEMENTS = {
    1001: "Acme\n::warning title=pwned::injected",
    1004: "Contoso <!-- --> {{ x }} ```\n::error::ending\u2028[l](http://e)",
}
# ZeroTek: an unmapped customer with usage and an unmapped SKU in use
ZT_UNMAPPED_NAME = "::warning::Unmapped\n@channel ![x](http://t/p.gif)"
ZT_SKU = "::add-mask::PAM\r\n[x](http://y)"
HOSTILE = [*NAMES.values(), *AGREEMENTS.values(), ZT_UNMAPPED_NAME, ZT_SKU]


def hostile_fixture() -> Fixture:
    fx = default_fixture()
    fx.agreements = [
        {**a, "name": AGREEMENTS.get(a["id"], a["name"])} for a in fx.agreements
    ]  # additions keep their own agreementId, so they still belong
    fx.zerotek_customers = [
        {**c, "name": ZT_UNMAPPED_NAME if c["id"] == "zt-0099" else NAMES.get(c["id"], c["name"])}
        for c in fx.zerotek_customers
    ]
    fx.assignments = [a._replace(sku=ZT_SKU) if a.sku == "OKTA-PAM" else a for a in fx.assignments]
    return fx


def hostile_mappings(config_dir: Path) -> None:
    path = config_dir / "mappings" / "customers.yaml"
    customers = yaml.safe_load(path.read_text(encoding="utf-8"))
    ids = {"zt-0001": 1001, "zt-0003": 1003, "zt-0005": 1005, "zt-0007": 1007}
    for c in customers:
        c["name"] = NAMES[c["id"]]
        c["agreement"] = ids.get(c["id"], c["agreement"])
    # JSON is YAML: every escape (\r, \u2028, \u202e) reads back exactly
    path.write_text(json.dumps(customers, indent=2), encoding="utf-8")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> Iterator[tuple[Path, SmtpServer]]:
    hostile_mappings(config_dir)
    with Sandbox(hostile_fixture()) as sb, run_smtp() as smtp:
        for name, value in {**sb.env(), **smtp.env()}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        yield config_dir, smtp


def run(config_dir: Path, *args: str) -> Result:
    result = clirun.run(config_dir, *args)
    assert_no_forged_commands(result.stdout)
    assert_no_forged_commands(result.stderr)
    return result


# --- GitHub Actions ------------------------------------------------------------------------------


def acts_as_command(line: str) -> bool:
    """Would the runner run `line`? It trims leading whitespace (and its culture-aware
    comparison may skip invisible characters); `##[` works anywhere in a line."""
    i = 0
    while i < len(line) and (not line[i].isprintable() or line[i].isspace()):
        i += 1
    return line.startswith("::", i) or "##[" in line


def assert_no_forged_commands(output: str) -> None:
    for line in re.split(r"\r\n|[\r\n]", output):
        assert not acts_as_command(line), line


# --- Markdown ------------------------------------------------------------------------------------

MD = MarkdownIt("gfm-like")
OUR_LINK = re.compile(r"\.\./\.\./INDEX\.md|\d{4}/\d\d/\d{8}T\d{6}Z-manual\.md")
OUR_HTML = re.compile(r"</?details>|<summary>|</summary>|</?b>|<!-- reconcile:plan -->")


# The runs/INDEX.md charts: built from dates and numbers only, never from data.
OUR_CHART = re.compile(
    r'xychart-beta\n    title "[A-Za-z ()]+"\n'
    r'    x-axis \[("\d{1,2} [A-Z][a-z]{2} \d{4}"(, )?)+\]\n'
    r'    y-axis "[A-Za-z ]+" 0 --> [\d.]+\n    (bar|line) \[[\d., ]+\]\n'
)


def assert_markdown_inert(markdown: str, headings: set[str]) -> None:
    for token in MD.parse(markdown):
        if token.type == "fence" and token.info == "mermaid":  # our own INDEX charts
            assert OUR_CHART.fullmatch(token.content), token.content
            continue
        assert token.type not in ("fence", "code_block", "hr"), token
        if token.type == "html_block":  # only ours: the <details>/<summary> frame
            assert "<" not in OUR_HTML.sub("", token.content), token.content
        if token.type == "heading_open":
            assert token.tag in ("h1", "h2", "h3")
        for child in token.children or ():
            assert child.type not in ("image", "html_inline"), child
            if child.type == "link_open":  # our own: run pages <-> the Activity page
                assert OUR_LINK.fullmatch(str(child.attrs["href"])), child
            if child.type == "code_inline":  # our own: the removal policy, `apply --force`
                assert child.content in ("cancel", "zero", "delete", "--force", "reconcile"), child
            assert child.type != "hardbreak", child
            if child.type == "text":
                assert not re.search(r"(?<![\w])@[A-Za-z0-9]", child.content), child.content
                assert not re.search(r"#\d", child.content), child.content
                assert ":smile:" not in child.content
    found = {
        MD.parse(markdown)[i + 1].content
        for i, t in enumerate(MD.parse(markdown))
        if t.type == "heading_open"
    }
    assert found <= headings, found - headings


def rendered_text(markdown: str) -> str:
    """What a reader sees: text tokens, and the text of our HTML blocks (<summary>)."""
    parts = []
    for token in MD.parse(markdown):
        if token.type == "html_block":
            parts.append(html.unescape(OUR_HTML.sub("", token.content)))
        parts.extend(child.content for child in token.children or ())
    return "".join(parts).replace(ZWSP, "")


# --- e-mail --------------------------------------------------------------------------------------

MAIL_TAGS = {"html", "head", "meta", "title", "body", "p", "strong", "br", "h3", "table", "tr"}
MAIL_TAGS |= {"th", "td", "code"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.tags.add(tag)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def assert_mail_inert(smtp: SmtpServer) -> None:
    assert smtp.sink.received
    for mail in smtp.sink.received:
        headers = {k.lower() for k in mail.message}
        assert headers <= {"subject", "from", "to", "date", "message-id", "mime-version"} | {
            "content-type",
            "content-transfer-encoding",
        }, headers
        header_block = mail.raw.split(b"\r\n\r\n", 1)[0].decode()
        for fragment in ("pwned", "::", "Acme", "Contoso", "http", "@channel", "PAM", "Initech"):
            assert fragment not in header_block, (fragment, header_block)
        parser = _Tags()
        parser.feed(mail.html)
        assert parser.tags <= MAIL_TAGS and not parser.comments, parser.tags
        # the text part's line breaks are ours: no name's tail starts a line of its own
        tails = ("::warning title=pwned", "::error file=x", "::notice::u2028", "# heading")
        tails += ("- list", "::error::ending", "[l](http://e)", "@channel", "[x](http://y)")
        for line in mail.text.splitlines():
            assert not line.lstrip().startswith(tails), line


# --- the flow ------------------------------------------------------------------------------------


def test_hostile_names_stay_text_through_every_output(world: tuple[Path, SmtpServer]) -> None:
    config_dir, smtp = world

    text = run(config_dir, "plan", *AS_OF)
    assert text.exit_code == 0, text.output
    assert "Acme ::warning title=pwned::injected" in text.stdout  # shown, on one line
    assert "<U+202E>evil<U+202C>" in text.stdout  # the override is visible, not obeyed
    assert "##\\[warning]legacy" in text.stdout

    md = run(config_dir, "plan", *AS_OF, "--format", "markdown")
    assert md.exit_code == 0, md.output
    assert_markdown_inert(md.stdout, {"reconcile plan"})
    shown = rendered_text(md.stdout)
    assert "Big [link](http://x) ![img](http://x/i.png) @org/team <b>bold</b>" in shown
    assert LONG in shown

    js = run(config_dir, "plan", *AS_OF, "--format", "json")
    assert js.exit_code == 0, js.output
    plan = json.loads(js.stdout)
    assert {c["id"]: c["name"] for c in plan["customers"]} == NAMES  # exact round trip
    agreements = {c["agreement"]["id"]: c["agreement"]["name"] for c in plan["customers"]}
    assert agreements[1001] == AGREEMENTS[1001] and agreements[1004] == AGREEMENTS[1004]
    warnings = "\n".join(plan["warnings"] + [w for c in plan["customers"] for w in c["warnings"]])
    assert ZT_UNMAPPED_NAME in warnings and ZT_SKU in warnings

    applied = run(config_dir, "apply", "--yes", *AS_OF)
    assert applied.exit_code == 0, applied.output
    runs = sorted((config_dir / "runs").rglob("*-manual.json"))
    assert len(runs) == 1
    record = json.loads(runs[0].read_text(encoding="utf-8"))
    assert {c["id"]: c["name"] for c in record["customers"]} == NAMES
    assert_no_forged_commands(runs[0].read_text(encoding="utf-8"))
    run_md = runs[0].with_suffix(".md").read_text(encoding="utf-8")
    assert_markdown_inert(
        run_md, {f"Sync run {record['run_id']}", "Changes", "Warnings", "E-mails", "Requests"}
    )
    shown = rendered_text(run_md)  # each name whole, on one line: no break came from data
    assert "Acme ::warning title=pwned::injected" in shown
    assert "O'Brien ::error file=x,line=1::forged ::notice::u2028" in shown
    assert "``` # heading - list <!-- comment --> " in shown
    index = (config_dir / "runs" / "INDEX.md").read_text(encoding="utf-8")
    assert_markdown_inert(index, {"Activity"})

    kinds = sorted(str(m.message["Subject"]) for m in smtp.sink.received)
    assert len(kinds) == 2, kinds  # sync outcome + agreement ending (Contoso, 2026-12-10)
    assert_mail_inert(smtp)
    ending = next(m for m in smtp.sink.received if "end" in str(m.message["Subject"]))
    assert "Contoso &lt;!-- --&gt;" in ending.html
    outcome = next(m for m in smtp.sink.received if m is not ending)
    assert "Acme ::warning title=pwned::injected (#1001)" in outcome.text

    listing = run(config_dir, "activity")
    assert listing.exit_code == 0
    detail = run(config_dir, "activity", record["run_id"])
    assert detail.exit_code == 0 and "::add-mask::Acme" in detail.stdout
    as_json = run(config_dir, "activity", record["run_id"], "--format", "json")
    assert json.loads(as_json.stdout)["customers"][0]["name"] == NAMES["zt-0001"]

    smtp.sink.received.clear()
    summary = config_dir / "summary.md"
    unmapped = run(config_dir, "check-unmapped", *AS_OF, "--summary", str(summary))
    assert unmapped.exit_code == 0, unmapped.output
    assert "::add-mask::PAM [x](http://y)" in unmapped.stdout
    assert_markdown_inert(summary.read_text(encoding="utf-8"), {"Unmapped SKUs"})
    assert "::add-mask::PAM [x](http://y)" in rendered_text(summary.read_text(encoding="utf-8"))
    assert len(smtp.sink.received) == 1
    assert_mail_inert(smtp)


def test_the_console_script_guards_its_own_process(world: tuple[Path, SmtpServer]) -> None:
    """The real process (not CliRunner): the guard is installed by `main()`."""
    import os
    import subprocess
    import sys

    config_dir, _ = world
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", *AS_OF, "--config-dir", str(config_dir)],
        capture_output=True, text=True, encoding="utf-8", env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Acme ::warning title=pwned::injected" in proc.stdout
    assert_no_forged_commands(proc.stdout)
    assert_no_forged_commands(proc.stderr)
    raw = "\n".join(HOSTILE)  # what printing the names raw would have produced
    assert any(acts_as_command(line) for line in raw.splitlines())
