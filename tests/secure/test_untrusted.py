"""The untrusted-text sinks (reconciler.secure.untrusted) and the credential scrubber, unit by unit.

The Markdown escaper is checked the strong way: for any text, what markdown-it-py (GFM-like:
tables, strikethrough, linkify) renders from the escaped text is that text, literally, in
every place the reconciler puts names (paragraph start, after text, list item, table cell,
quote) — with no token but text."""

from __future__ import annotations

import gc
import html
import io
import json
import re
import sys
from urllib.parse import quote, quote_plus

import pytest
from conftest import examples
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from reconciler.secure import scrub, untrusted
from reconciler.secure.untrusted import ZWSP, OutputGuard, defuse_commands, markdown, plain

MD = MarkdownIt("gfm-like")  # commonmark + table + strikethrough + linkify (linkify-it-py)

# Where the reconciler places escaped text, and how to find it again in the rendering.
PLACES = {
    "paragraph": ("{}", "", ""),
    "within text": ("x {} y", "x ", " y"),
    "list item": ("- {}", "", ""),
    "table cell": ("| h | i |\n|---|---|\n| {} | z |", "hi", "z"),
    "quote": ("> - {}", "", ""),
}

HOSTILE = [
    "Acme\n::warning title=pwned::injected",
    "::add-mask::Acme",
    "Acme\r\n::error::x\rmore",
    "a\u2028b\u2029c\x85d",
    "zero\u200bwidth\u200d\u200cjoiners\ufeff",
    "rtl \u202eevil\u202c \u2066iso\u2069",
    "`code` ``double`` ```",
    "```\nfence\n```",
    "<!-- comment -->",
    "{{ template }} ${{ expr }}",
    "[link](http://x) [ref][1] <http://auto>",
    "![img](http://x/y.png)",
    "@org/team and @someone, mail me@example.com",
    "www.example.com http://example.com/x?a=b&c=d",
    "#12 GH-3 owner/repo#4 :smile: :+1:",
    "<script>alert(1)</script> <b>bold</b> &amp; &#x41;",
    "*em* _em_ **strong** ~~strike~~ ~sub~",
    "- item",
    "1. item",
    "# heading",
    "> quote",
    "    indented code",
    "| cell | break |",
    "===",
    "---",
    "\\",
    "trailing  ",
    "   ",
    "x" * 10_000,
    "$x^2$ $$y$$",
    "<U+202E>",
]


def expected(text: str) -> str:
    """The documented rendering: `plain` (line breaks -> space, invisibles -> <U+XXXX>)."""
    return plain(text)


def rendered_inline(source: str) -> tuple[str, set[str]]:
    """The concatenated text of every inline token, and the set of inline token types."""
    text, kinds = [], set()
    for token in MD.parse(source):
        for child in token.children or ():
            kinds.add(child.type)
            text.append(child.content)
    return "".join(text), kinds


def check_markdown(value: str) -> None:
    escaped = markdown(value)
    assert "\n" not in escaped and "\r" not in escaped
    for place, (template, prefix, suffix) in PLACES.items():
        text, kinds = rendered_inline(template.format(escaped))
        assert kinds <= {"text"}, (place, kinds)
        assert text.startswith(prefix) and text.endswith(suffix), place
        # our only additions are zero-width spaces (data's own became <U+200B>)
        inner = text[len(prefix) : len(text) - len(suffix)]
        assert inner.replace(ZWSP, "") == expected(value), place


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_markdown_renders_hostile_text_literally(value: str) -> None:
    check_markdown(value)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
@example("http://x.example")
@example("a@b.co")
@example(" - x")
def test_markdown_renders_any_text_literally(value: str) -> None:
    check_markdown(value)


_MD_ALPHABET = st.sampled_from([*list("`*_[]()<>!#@:|\\&;-+=.~^$ \n\tax1/"), "\u2028", "www."])


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(_MD_ALPHABET, max_size=40).map("".join))
def test_markdown_renders_any_punctuation_soup_literally(value: str) -> None:
    check_markdown(value)


def test_markdown_defuses_github_text_filters() -> None:
    # Mentions, issue references and emoji are found by GitHub in the rendered text.
    text, _ = rendered_inline(markdown("@org/team #12 x:smile: 10:15"))
    assert not re.search(r"(?<![\w])@[A-Za-z0-9]", text)
    assert not re.search(r"#\d", text)
    assert ":smile:" not in text
    assert "10:15" in text  # times keep their colons untouched


def test_plain_collapses_breaks_and_shows_invisibles() -> None:
    assert plain("a\r\nb\nc\rd\u2028e\tf") == "a b c d e f"
    assert plain("x\u202ey\u200dz\x00\x1b\ud800") == ("x<U+202E>y<U+200D>z<U+0000><U+001B><U+D800>")
    assert plain("Café Zürich 👍 日本") == "Café Zürich 👍 日本"


def test_html_escapes_and_stays_on_one_line() -> None:
    assert untrusted.html('<a href="x">\'&\n') == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp; "


def test_json_round_trips_exactly_and_has_nothing_a_log_reads_as_a_command() -> None:
    data = {"names": [*HOSTILE, "##[warning]legacy", "a\ud800b", "x\u2028y"]}
    text = untrusted.json_dumps(data, indent=2)
    assert json.loads(text) == data
    assert "##[" not in text and "\u2028" not in text
    text.encode("utf-8")  # a lone surrogate would not encode
    assert defuse_commands(text) == text  # nothing for the log guard to touch


def test_headers_refuse_control_characters() -> None:
    assert untrusted.header("[reconcile] Sync succeeded") == "[reconcile] Sync succeeded"
    for bad in ("a\nBcc: x@y", "a\rb", "a\x00"):
        with pytest.raises(ValueError):
            untrusted.header(bad)


# --- workflow commands ------------------------------------------------------------------------

COMMAND_LIKE = [
    "::warning title=pwned::injected",
    "  ::add-mask::Acme",
    "\t::error::x",
    "\u3000::error::ideographic space",
    "\u200b::error::zero width first",
    "\u00a0\u2003::stop-commands::tok",
]


def acts_as_command(line: str) -> bool:
    """How the runner reads a line (trimmed; invisible characters possibly ignored)."""
    stripped = "".join(ch for ch in line if ch.isprintable() and not ch.isspace())
    return stripped.startswith("::") or "##[" in line


@pytest.mark.parametrize("line", COMMAND_LIKE)
def test_defuse_commands_escapes_command_lines(line: str) -> None:
    assert acts_as_command(line)
    out = defuse_commands(line)
    assert not acts_as_command(out)
    assert out.replace("\\", "", 1) == line  # only one visible backslash added


def test_defuse_commands_splits_where_the_runner_splits() -> None:
    out = defuse_commands("ok\r::warning::x\nfine ##[error]y\n")
    assert out == "ok\r\\::warning::x\nfine ##\\[error]y\n"
    assert not any(acts_as_command(line) for line in re.split(r"[\r\n]", out))


def test_guard_scrubs_and_defuses_whole_lines_and_passes_meant_commands() -> None:
    inner = io.StringIO()
    guard = OutputGuard(inner, workflow=True, scrub=lambda s: s.replace("s3cret", "***"))
    guard.write(":")
    guard.write(":warning::half")  # a command split across two writes is still caught
    guard.write(" s3c")
    guard.write("ret\n")
    guard.command("::error file=a.yaml::meant")
    guard.write("tail ::x")
    assert inner.getvalue() == "\\::warning::half ***\n::error file=a.yaml::meant\n"
    guard.finish()
    assert inner.getvalue().endswith("tail ::x")
    with pytest.raises(TypeError):
        guard.write(b"bytes")  # type: ignore[arg-type]


def test_guard_outside_github_actions_only_scrubs() -> None:
    inner = io.StringIO()
    guard = OutputGuard(inner, workflow=False, scrub=lambda s: s)
    guard.write("::warning::shown as is locally\n")
    assert inner.getvalue() == "::warning::shown as is locally\n"


def test_guard_outliving_its_stream_finalizes_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found on Python 3.14, which reports what io's finalizer raises: CliRunner closes its
    # buffer after each command, and the guard's own finalizing flush then raised
    # "I/O operation on closed file" (hundreds of warnings per test run).
    reported: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))
    inner = io.StringIO()
    guard = OutputGuard(inner, workflow=False, scrub=lambda s: s)
    guard.write("a partial line")
    inner.close()
    guard.flush()  # no reader left: nothing to do, nothing raised
    del guard
    gc.collect()
    assert reported == []


# --- credentials -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("tok\nen", "line break"),
        ("tok\ren", "line break"),
        ("tok\x00en", "NUL"),
        ("tok\x07en", "control character"),
        ("tokén", "non-ASCII"),
        ("tok\u2028en", "non-ASCII"),
    ],
)
def test_check_credentials_names_the_variable_never_the_value(value: str, why: str) -> None:
    for name in scrub.CREDENTIAL_VARS:
        with pytest.raises(scrub.CredentialError) as err:
            scrub.check_credentials(environ={"CW_PUBLIC_KEY": "fine-value", name: value})
        message = str(err.value)
        assert message.startswith(name) and why in message
        assert "tok" not in message and "fine-value" not in message


def test_check_credentials_accepts_printable_ascii_and_unset() -> None:
    scrub.check_credentials(environ={"CW_PRIVATE_KEY": "a b/c+d=e\"f'g\\h%", "SMTP_PASSWORD": ""})


SECRET = "Pr1v/\"ate\\key+%41&<x>'"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        repr(SECRET),
        json.dumps(SECRET),
        json.dumps({"h": f"Basic {SECRET}"}),
        "https://x/?k=" + quote(SECRET, safe=""),
        "k=" + quote_plus(SECRET),
        "k=" + re.sub("%..", lambda m: m.group().lower(), quote(SECRET, safe="")),
        html.escape(SECRET),
        markdown(SECRET),
    ],
)
def test_scrubber_removes_every_form(form: str) -> None:
    env = {"CW_PRIVATE_KEY": SECRET}
    text = f"before {form} after"
    out = scrub.scrub(text, environ=env)
    assert "[CW_PRIVATE_KEY redacted]" in out
    assert "Pr1v" not in out


def test_scrubber_removes_the_basic_auth_pair() -> None:
    env = {"CW_COMPANY_ID": "acme_co", "CW_PUBLIC_KEY": "pubKEY123", "CW_PRIVATE_KEY": "privKEY456"}
    token = scrub.basic_auth_token("acme_co+pubKEY123", "privKEY456")
    out = scrub.scrub(f"Authorization: Basic {token}", environ=env)
    assert token.rstrip("=") not in out


def test_chart_labels_keep_only_what_mermaid_cannot_misread() -> None:
    hostile = 'zt-1"] --> x\n%%{init}%% ACME/ü.b_c\u200b'
    assert untrusted.chart_label(hostile) == "zt-1 -- xinit ACME/.b_c"
    assert untrusted.chart_label(hostile, 4) == "zt-1"
    assert untrusted.chart_label('"]') == ""
