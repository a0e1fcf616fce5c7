"""Text nobody here controls, made safe for each place it is shown (DESIGN 12.6).

Names, identifiers, SKUs, descriptions and API error text come from ConnectWise, ZeroTek
and the mappings. They are data: whatever they contain, they must not become a GitHub
workflow command, Markdown or HTML markup, a line of their own, or an e-mail header. Every
sink calls exactly one function here, at the moment it turns data into output:

==========================  ===================================================================
sink                        function
==========================  ===================================================================
terminal, logs, mail text   `plain`: one line; invisible characters made visible
Markdown (PR comment, job   `markdown`: `plain`, then every ASCII punctuation character
summary, runs/*.md)         backslash-escaped and GitHub's text filters (mentions, issue
                            references, emoji) defused with a zero-width space
HTML (mail, `<summary>`)    `html`: `plain`, then `html.escape`
Mermaid chart labels        `chart_label`: letters, digits, space and `._/-` only
chat (Slack, Teams card)    `slack_text`, `card_text`: `plain`, then each format's escaping
JSON (plan, records)        `json_dumps`: exact round trip; escapes what a log reader could
                            take for a line break or a legacy `##[` command
e-mail headers              `header`: only ever our own fixed text; refuses anything else
GitHub Actions log lines    `OutputGuard` around stdout/stderr with GITHUB_ACTIONS=true
our workflow commands       `command_data`, `command_property`: the runner's escaping
==========================  ===================================================================

The normalisation all text sinks share (`plain`): every line break (CR, LF, CRLF, NEL,
U+2028, U+2029) and tab becomes one space, and every other control or invisible format
character (C0/C1 controls, bidi embeddings/overrides/isolates/marks, zero-width spaces and
joiners, BOM, soft hyphen, lone surrogates) is shown as `<U+XXXX>`, so a right-to-left
override or a zero-width joiner can neither reorder nor hide text. JSON keeps the exact
original string.

This module imports nothing of the reconciler's: the credential scrubber (scrub) uses its
escapers to know every form a secret takes, and scrub.guarded_output installs OutputGuard
with the scrubber, so the two never import each other.
"""

from __future__ import annotations

import contextlib
import functools
import html as _html
import io
import json
import os
import re
import string
import sys
import unicodedata
from collections.abc import Callable
from typing import Any, TextIO

# --- the shared normalisation ----------------------------------------------------------------

_LINE_BREAK = re.compile(r"\r\n|[\r\n\t\x85\u2028\u2029]")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
ZWSP = "\u200b"  # the only invisible character our own output ever contains (see markdown)


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def visible(ch: str) -> str:
    return f"<U+{ord(ch):04X}>"


def plain(value: object) -> str:
    """One line of text for a terminal, a log or a text e-mail: line breaks and tabs are
    one space each; other control and invisible format characters read `<U+XXXX>`."""
    text = str(value)
    if text.isprintable():  # fast path: no line break, tab or invisible character at all
        return text
    text = _LINE_BREAK.sub(" ", text)
    if text.isprintable():  # printable excludes Cc/Cf/Cs/Zl/Zp
        return text
    return "".join(visible(ch) if _invisible(ch) else ch for ch in text)


# --- Markdown --------------------------------------------------------------------------------

# Inert wherever they stand in a line (no CommonMark or GFM construct uses them mid-text), so
# left as they are: runs/*.md is read raw in git diffs, and "ZT-OKTA-SSO" should stay legible.
_MD_INERT = ",;'\"/%?-+="
_MD_LINE_START = "-+="  # ...except first in a line: list items, setext underlines
_MD_ESCAPE = {ch: "\\" + ch for ch in string.punctuation if ch not in _MD_INERT}
# GitHub turns @name, #123 and :emoji: into links/images on the *rendered* text, where a
# backslash escape is already gone; a zero-width space after the trigger character stops it.
for _trigger in "@#":
    _MD_ESCAPE[_trigger] = "\\" + _trigger + ZWSP
_MD_TABLE = str.maketrans(_MD_ESCAPE)
# `:smile:` shortcodes: a colon before a name character, except between digits (10:15).
_EMOJI_COLON = re.compile(r"(?<![0-9])\\:(?=[A-Za-z0-9_+-])")


def markdown(value: object) -> str:
    """See `_markdown`. Strings are cached: a run's Markdown twin escapes the same
    customer, product and SKU names once per change (100,000 calls at 10,000 customers)."""
    return _markdown_text(value) if type(value) is str else _markdown(value)


def _markdown(value: object) -> str:
    """Inline Markdown (GitHub-flavoured) that renders as the literal text of `plain(value)`:
    no emphasis, code, link, image, autolink, mention, issue reference, emoji, HTML, entity,
    table cell break, heading, list or fence can come from it, wherever it is placed.

    Every ASCII punctuation character with a meaning is backslash-escaped (CommonMark lets
    any of them be), which also splits GFM's autolink candidates (`.`, `:`); a zero-width
    space follows `@`, `#` and a `:` that could open an emoji code; leading and trailing
    spaces become entities (`&#32;`) so paragraph and table-cell trimming keep them."""
    text = plain(value).translate(_MD_TABLE)
    if "\\:" in text:
        text = _EMOJI_COLON.sub("\\:" + ZWSP, text)
    if text[:1] in _MD_LINE_START and text:
        text = "\\" + text
    stripped = text.strip()  # any Unicode space: what paragraph and cell trimming remove
    if stripped != text:
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(lead) + len(stripped) :]
        text = "".join(f"&#{ord(ch)};" for ch in lead) + stripped
        text += "".join(f"&#{ord(ch)};" for ch in trail)
    return text


# Mermaid charts in Markdown (report, runs/INDEX.md): inside a ```mermaid fence Markdown
# escaping does not apply, and a quote, bracket or colon would end a label or the chart.
_CHART_UNSAFE = re.compile(r"[^A-Za-z0-9 ._/-]")


def chart_label(value: object, limit: int | None = None) -> str:
    """A Mermaid chart label: only letters, digits, space and `._/-` are kept (at most
    `limit` characters); may come back empty."""
    return _CHART_UNSAFE.sub("", str(value))[:limit]


_markdown_text = functools.lru_cache(maxsize=8192)(_markdown)


# --- HTML ------------------------------------------------------------------------------------


def html(value: object) -> str:
    """Text for an HTML element or attribute (e-mail HTML, the plan's `<summary>` line)."""
    return _html.escape(plain(value), quote=True)


# --- JSON ------------------------------------------------------------------------------------

# Inside JSON strings only (never structural): characters some readers split lines on, lone
# surrogates (not encodable as UTF-8) and the legacy `##[command]` prefix, all as \u escapes.
_JSON_RISKY_CHAR = re.compile(r"[\x85\u2028\u2029\ud800-\udfff]")
_JSON_RISKY = re.compile(r"[\x85\u2028\u2029\ud800-\udfff]|##\[")


def _json_escape(match: re.Match[str]) -> str:
    found = match.group()
    if found == "##[":
        return "##\\u005b"
    return f"\\u{ord(found):04x}"


def json_dumps(value: Any, **options: Any) -> str:
    """`json.dumps(..., ensure_ascii=False)` whose text is safe in a log and whose parse is the
    exact original data (every string round-trips)."""
    options.setdefault("ensure_ascii", False)
    text = json.dumps(value, **options)
    # C-speed scans first (every risky character is non-ASCII): the alternation regex
    # alone took 0.8 s on a 9.5 MB plan.
    if "##[" in text or (not text.isascii() and _JSON_RISKY_CHAR.search(text)):
        return _JSON_RISKY.sub(_json_escape, text)
    return text


# --- chat (reconciler.notify.chat) ---------------------------------------------------------


def slack_text(value: object) -> str:
    """Slack mrkdwn: its own escaping (&, <, >), so no <!channel>, <@user> or <url|label>."""
    return plain(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_CARD_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def card_text(value: object) -> str:
    """A Teams Adaptive Card TextBlock renders a Markdown subset: no link or emphasis."""
    return _CARD_MARKDOWN.sub(r"\\\1", plain(value))


# --- e-mail headers --------------------------------------------------------------------------


def header(value: str) -> str:
    """A header value: data never goes into headers (subjects are our own words, counts and
    dates; addresses come from validated settings), so anything that could fold or end a
    header is a bug, refused rather than sent."""
    if not value.isprintable() or any(ch in value for ch in "\r\n"):
        raise ValueError("e-mail header text with a control character: refused")
    return value


# --- GitHub Actions workflow commands --------------------------------------------------------

# Lines are split where the runner might split them (it reads with .NET ReadLine: CR, LF).
_LOG_LINE = re.compile(r"(\r\n|[\r\n\x0b\x0c\x85\u2028\u2029])")


def _command_start(segment: str) -> int | None:
    """Where `::` begins when the runner would read `segment` as a workflow command (it
    trims leading whitespace; culture-aware comparison may skip invisible characters)."""
    for i, ch in enumerate(segment):
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zs", "Mn", "Me"):
            continue
        return i if segment.startswith("::", i) else None
    return None


# DESIGN 13.5: what data may not put raw into text, CSV or annotation output: C0 controls
# but tab and newline, DEL, C1 controls, and the bidi embeddings/overrides/isolates.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """`text` with each control character (DESIGN 13.5's list) shown as `<U+XXXX>`; tabs
    and line breaks stay (a CSV cell or an annotation encodes them itself). An OSC 52
    clipboard write, a screen clear or a right-to-left override becomes inert text."""
    return _CONTROLS.sub(lambda m: visible(m.group()), text)


def command_data(text: str) -> str:
    """The message of a workflow command we mean (`::error ...::MESSAGE`): control
    characters escaped, then the runner's own escaping, so a line break cannot end the
    command and start another."""
    text = escape_controls(text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def command_property(text: str) -> str:
    """A property value of a workflow command (`file=...`): also `:` and `,`."""
    return command_data(text).replace(":", "%3A").replace(",", "%2C")


def defuse_commands(text: str) -> str:
    """Make `text` inert as workflow commands: a line starting with `::` gets a backslash
    before it, and the legacy `##[` prefix (recognised anywhere in a line) reads `##\\[`."""
    parts = _LOG_LINE.split(text)
    for n in range(0, len(parts), 2):  # even indexes: line contents; odd: the separators
        segment = parts[n].replace("##[", "##\\[")
        start = _command_start(segment)
        if start is not None:
            segment = segment[:start] + "\\" + segment[start:]
        parts[n] = segment
    return "".join(parts)


def in_github_actions(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("GITHUB_ACTIONS", "").strip().lower() == "true"


class OutputGuard(io.TextIOBase):
    """stdout/stderr as the reconciler writes them: every line scrubbed of credentials and,
    under GitHub Actions, defused as a workflow command. Commands the reconciler means go
    through `command()`. Lines are passed on whole (a secret or a `::` is never split across
    two checks); a partial line waits for its end, except on a terminal (prompts)."""

    def __init__(self, inner: TextIO, *, workflow: bool, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self.inner = inner
        self.workflow = workflow
        self._scrub = scrub
        self._pending = ""

    # what click, rich and typer look at
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.inner, "errors", None)

    def isatty(self) -> bool:
        isatty = getattr(self.inner, "isatty", None)
        return bool(isatty and isatty())

    def fileno(self) -> int:
        return self.inner.fileno()

    def writable(self) -> bool:
        return True

    def _clean(self, text: str) -> str:
        text = self._scrub(text)
        return defuse_commands(text) if self.workflow else text

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self._pending += s
        cut = self._pending.rfind("\n") + 1
        if cut:
            whole, self._pending = self._pending[:cut], self._pending[cut:]
            self.inner.write(self._clean(whole))
        if self._pending and self.isatty():
            self._drain()
        return len(s)

    def _drain(self) -> None:
        if self._pending:
            self.inner.write(self._clean(self._pending))
            self._pending = ""

    def flush(self) -> None:
        if getattr(self.inner, "closed", False):
            # Its reader is gone (CliRunner's buffer, a closed pipe): nothing can reach it.
            # io's finalizer flushes too, and Python 3.14 reports what a finalizer raises.
            return
        if self.isatty():
            self._drain()
        self.inner.flush()

    def finish(self) -> None:
        """The end of the output: pass on a last line that had no newline."""
        self._drain()
        with contextlib.suppress(ValueError, OSError):
            self.inner.flush()

    def command(self, line: str) -> None:
        """A workflow command the reconciler means (already escaped by its builder)."""
        if any(ch in line for ch in "\r\n"):
            raise ValueError("a workflow command is one line")
        self._drain()
        self.inner.write(self._scrub(line) + "\n")


def workflow_command(line: str, *, err: bool = False) -> None:
    """Print a workflow command we mean (e.g. `validate --format github` annotations)."""
    stream = sys.stderr if err else sys.stdout
    if isinstance(stream, OutputGuard):
        stream.command(line)
    else:
        stream.write(line + "\n")
