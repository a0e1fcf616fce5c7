"""How an e-mail's body is written: plain-text lines and HTML parts side by side
(`MailBody`), the HTML document and tables around them, and the closing hint every report-like
e-mail ends with. Everything from data is escaped for its sink here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler.plan.render import text_table
from reconciler.secure.untrusted import html as _e
from reconciler.secure.untrusted import plain

REPORT_HINT = "What is and is not billed, valued: run `reconcile report`."


def html_doc(title: str, parts: Sequence[str]) -> str:
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>'
        f"{_e(title)}</title></head>\n"
        '<body style="font-family: sans-serif; font-size: 14px">\n'
        f"{body}\n</body></html>\n"
    )


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cell = 'style="border: 1px solid #ccc; padding: 2px 6px; text-align: left"'
    head = "".join(f"<th {cell}>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td {cell}>{_e(c)}</td>" for c in row) + "</tr>\n" for row in rows
    )
    return f'<table style="border-collapse: collapse">\n<tr>{head}</tr>\n{body}</table>'


@dataclass
class MailBody:
    """An e-mail's body in its two renderings, written side by side: plain-text lines and
    HTML parts (`html_doc` wraps them)."""

    text: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def table(self, title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.text += [f"{title}:", *text_table([header, *rows]), ""]
        self.parts += [f"<h3>{_e(title)}</h3>", html_table(header, rows)]

    def notes(self, title: str, column: str, notes: Sequence[tuple[str, str]]) -> None:
        """Errors or warnings, each with whose it is; nothing when there are none."""
        if notes:
            self.text += [f"{title}:", *(f"  {plain(who)}: {plain(msg)}" for who, msg in notes), ""]
            self.parts += [f"<h3>{_e(title)}</h3>", html_table(("Customer", column), notes)]

    def listing(
        self, intro: str, header: Sequence[str], rows: Sequence[Sequence[str]], advice: str
    ) -> None:
        """A table between the sentence that says what it lists and what to do about it."""
        self.text += [intro, "", *text_table([header, *rows]), "", advice, ""]
        self.parts += [f"<p>{_e(intro)}</p>", html_table(header, rows), f"<p>{_e(advice)}</p>"]

    def lines(self, lines: Sequence[str]) -> None:
        """Lines of text, one paragraph in HTML."""
        self.text += lines
        self.parts.append("<p>" + "<br>\n".join(_e(line) for line in lines) + "</p>")

    def plain_text(self) -> str:
        return "\n".join(self.text) + "\n"
