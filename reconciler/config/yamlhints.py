"""YAML syntax errors in plain words, at the line the user wrote (issue 28).

The parser reports where it gave up, which is often the line *after* the mistake, in its
own terms ("mapping values are not allowed in this context"). For the mistakes people make
by hand (indentation, no space after `:`, an unquoted `:` in a value, a tab, a list item
where a key belongs, an unclosed quote or bracket) this names the cause, points at the line
that holds it and shows that line with a caret under the column. Pure: text in, Problem out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from reconciler.core.errors import Problem
from reconciler.core.vocabulary import Location

_KEY_WITHOUT_SPACE = re.compile(r"^\s*(?:- +)?[^\s:#'\"\[\]{}][^\s:#]*(:)[^\s:/]")
_KEY_VALUE = re.compile(r"^\s*(?:- +)?[^\s:#'\"][^:#]*?:(?:\s|$)")
_BAD_START = re.compile(r"found character '(.)' that cannot start any token")


@dataclass(frozen=True)
class _Hint:
    line: int  # 0-based, as in PyYAML's marks
    col: int  # 0-based
    message: str


def excerpt(lines: list[str], line: int, col: int) -> str:
    """`   3 | text` and a caret under column `col` (both 0-based)."""
    text = lines[line] if 0 <= line < len(lines) else ""
    number = str(line + 1)
    pad = " " * len(number)
    # a tab before the column would move the caret: show it as one space, caret aligned
    shown = text.replace("\t", " ")
    return f"  {number} | {shown}\n  {pad} | {' ' * min(col, len(shown))}^"


def explain(exc: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    """The Problem for a syntax error: the cause in plain words where it is recognised, the
    parser's words otherwise; always the line and a caret."""
    assert exc.problem_mark is not None
    lines = text.splitlines()
    hint = _recognise(exc, lines)
    if hint is None:
        message = f"YAML syntax error: {exc.problem}"
        if exc.context:
            where = ""
            if exc.context_mark is not None and exc.context_mark.line != exc.problem_mark.line:
                where = f" started at line {exc.context_mark.line + 1}"
            message += f" ({exc.context}{where})"
        hint = _Hint(exc.problem_mark.line, exc.problem_mark.column, message)
    return Problem(
        Location(file, hint.line + 1, hint.col + 1),
        hint.message,
        excerpt=excerpt(lines, hint.line, hint.col),
    )


def _line(lines: list[str], number: int) -> str:
    return lines[number] if 0 <= number < len(lines) else ""


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _recognise(exc: yaml.MarkedYAMLError, lines: list[str]) -> _Hint | None:
    mark, context = exc.problem_mark, exc.context_mark
    assert mark is not None
    problem, where = exc.problem or "", exc.context or ""
    if "could not find expected ':'" in problem and context is not None:
        return _no_colon(lines, context.line)
    if "mapping values are not allowed" in problem:
        return _colon_in_value(lines, mark.line, mark.column)
    if any(w in problem for w in ("expected key", "expected <block end>", "'-' indicator")):
        return _misplaced(lines, mark.line)
    bad = _BAD_START.search(problem)
    if bad and bad.group(1) == "\t":
        return _Hint(
            mark.line,
            mark.column,
            "tab character; YAML indents and separates "
            "with spaces only: replace the tab with spaces",
        )
    if bad:
        return _Hint(
            mark.line,
            mark.column,
            f"a plain value cannot start with '{bad.group(1)}'"
            f': put the value in quotes, e.g. key: "{bad.group(1)}..."',
        )
    if "quoted scalar" in where and context is not None:
        return _Hint(
            context.line,
            context.column,
            "this quote is never closed: add the "
            "closing quote (a value with a quote inside goes in the other kind of "
            "quotes)",
        )
    if "flow sequence" in where or "flow mapping" in where:
        opener = "[" if "sequence" in where else "{"
        closer = "]" if opener == "[" else "}"
        at = context if context is not None else mark
        return _Hint(
            at.line,
            at.column,
            f"this '{opener}' is not closed by a '{closer}' on "
            "the same line (or a ',' is missing between items)",
        )
    return None


def _no_colon(lines: list[str], number: int) -> _Hint:
    text = _line(lines, number)
    found = _KEY_WITHOUT_SPACE.match(text)
    if found:
        col = found.start(1)
        body = text.split(" #")[0].rstrip()  # a trailing comment is not part of the word
        key, value = body[:col].strip(), body[col + 1 :].strip()
        return _Hint(
            number,
            col,
            f"missing space after ':' (YAML reads `{body.strip()}` "
            f"as one word, not a key and a value): write `{key}: {value}`",
        )
    return _Hint(
        number,
        _indent(text),
        "this line is neither `key: value` nor a list item "
        "`- ...`: add ': ' after the key, or join it to the line above",
    )


def _colon_in_value(lines: list[str], number: int, col: int) -> _Hint:
    text = _line(lines, number)
    first = _KEY_VALUE.match(text)
    if first is not None and first.end() <= col:
        key = text[: text.index(":")].strip().lstrip("- ").strip()
        value = text[first.end() :].split(" #")[0].strip()
        return _Hint(
            number,
            col,
            f"unquoted ':' in a value: put the value in quotes, e.g. {key}: \"{value}\"",
        )
    above = _previous_content(lines, number)
    if above is not None and _indent(text) > _indent(lines[above]):
        return _Hint(
            number,
            _indent(text),
            f"indented more than line {above + 1} above it: "
            f"keys of one mapping start in the same column ({_indent(lines[above])} "
            "spaces), and a nested mapping needs its parent key to end with ':'",
        )
    return _Hint(
        number,
        col,
        "unexpected ':' here: a value containing ': ' must be quoted, "
        "and a new key must start on its own line",
    )


def _misplaced(lines: list[str], number: int) -> _Hint:
    text = _line(lines, number)
    col = _indent(text)
    if text.strip().startswith("-"):
        return _Hint(
            number,
            col,
            "a list item ('- ') where a key was expected: a list goes "
            "under a key of its own (`key:` on the line above, items indented "
            "below it), and a mapping cannot mix keys and items",
        )
    above = _previous_content(lines, number)
    if above is not None:
        prev = lines[above]
        key_col = _indent(prev) + (len(prev.lstrip(" ")) - len(prev.lstrip(" -")))
        return _Hint(
            number,
            col,
            f"indentation does not match: this line starts at column "
            f"{col + 1}, line {above + 1} above at column {key_col + 1}; keys of one "
            "mapping line up (spaces only)",
        )
    return _Hint(
        number,
        col,
        "a key was expected here: check this line's indentation and "
        "that the line above is complete (`key: value`)",
    )


def _previous_content(lines: list[str], number: int) -> int | None:
    for i in range(number - 1, -1, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i
    return None


_COMMENT_AS_VALUE = re.compile(r":[ \t]+#(.*)$")


def comment_hints(problems: list[Problem], raw: bytes) -> list[Problem]:
    """An unquoted value starting with `#` is a comment, so the key reads as empty: the
    schema's "got an empty value" then gets the cause, the line and a caret."""
    if not any(p.message.endswith("got an empty value") for p in problems):
        return problems
    lines = raw.decode("utf-8", errors="replace").splitlines()
    out = []
    for p in problems:
        line = (p.location.line or 0) - 1
        found = _COMMENT_AS_VALUE.search(_line(lines, line))
        if p.message.endswith("got an empty value") and found:
            key = _line(lines, line)[: found.start()].strip().lstrip("- ").strip()
            meant = "#" + found.group(1).rstrip()
            p = Problem(
                p.location,
                f"{p.message}: an unquoted ' #' starts a comment; quote the value, e.g. "
                f'{key}: "{meant}"',
                excerpt=excerpt(lines, line, found.start() + found.group(0).index("#")),
            )
        out.append(p)
    return out
