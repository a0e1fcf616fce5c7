"""ConnectWise query language: `conditions=`, `fields=` and `orderBy=`, parsed strictly.

Grammar (keywords case-insensitive, field names case-sensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := operand ("and" operand)*
    operand    := "(" expr ")" | comparison
    comparison := path ("=" | "!=" | "<" | "<=" | ">" | ">=") value
                | path ["not"] "in" "(" value ("," value)* ")"
                | path ["not"] ("like" | "contains") string
    path       := name ("/" name)*          e.g. company/id, product/identifier, _info/lastUpdated
    value      := string | number | true | false | null | "[" datetime "]"
    string     := '"' chars '"'             inside: \\" for a quote, \\\\ for a backslash

Decisions where the real API is undocumented, erring strict so a client that passes here
also passes there: strings take double quotes only; the only escapes are \\" and \\\\ (a
doubled "" or any other backslash sequence is a 400); a value must match the field's type
(no "250" for an id, dates only in brackets). Like ConnectWise's SQL Server backend, string
comparisons ignore case, `like` takes % and _ wildcards, and a null field never satisfies a
comparison with a non-null value (not even != or not in). Unknown fields are a 400.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, NamedTuple

Schema = dict[str, Any]  # field -> "int" | "float" | "str" | "bool" | "date" | nested Schema
Record = dict[str, Any]
Predicate = Callable[[Record], bool]


class KeyLookup(NamedTuple):
    """A non-negated `path in (...)` or `path = value`: a record can only match when its
    comparable `path` value (`_comparer(ftype, path)`) is one of `values`."""

    ftype: str
    path: str
    values: frozenset[Any]


class Compiled(NamedTuple):
    """A compiled `conditions=`: `test` decides each record; `lookup`, when there is one,
    narrows the records worth testing (lookup.py answers it from an index)."""

    test: Predicate
    lookup: KeyLookup | None = None


class QueryError(ValueError):
    """A malformed query parameter; `field` names the offending field when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


_TOKEN = re.compile(
    r"""(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<date>\[[^\]]*\])
      | (?P<number>-?\d+(?:\.\d+)?(?![\w/]))
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "like", "contains"}
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _tokenize(text: str) -> list[tuple[str, Any, int]]:
    tokens: list[tuple[str, Any, int]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return tokens
        m = _TOKEN.match(text, pos)
        if m is None:
            raise QueryError(f"unexpected character {text[pos]!r} at position {pos + 1}")
        kind = m.lastgroup or ""
        raw = m.group(kind)
        start = pos + 1
        if kind == "string":
            tokens.append(("value", _unescape(raw, start), start))
        elif kind == "date":
            tokens.append(("value", _parse_date(raw[1:-1], start), start))
        elif kind == "number":
            tokens.append(("value", float(raw) if "." in raw else int(raw), start))
        elif kind == "word" and raw.lower() in _LITERALS:
            tokens.append(("value", _LITERALS[raw.lower()], start))
        elif kind == "word" and raw.lower() in _KEYWORDS:
            tokens.append((raw.lower(), raw.lower(), start))
        elif kind == "word":
            tokens.append(("path", raw, start))
        else:
            tokens.append((raw if kind == "punct" else "op", raw, start))
        pos = m.end()


def _unescape(raw: str, where: int) -> str:
    body = raw[1:-1]
    if "\\" not in body:  # the usual case; a chunked `in (...)` holds hundreds of strings
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]  # the token regex guarantees a character follows
            if nxt not in '"\\':
                raise QueryError(
                    f"invalid escape \\{nxt} in string at position {where}: "
                    'only \\" and \\\\ are allowed'
                )
            out.append(nxt)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z?)?$")


def _parse_date(text: str, where: int) -> dt.datetime:
    m = _DATE.match(text.strip())
    try:
        if m is None:
            raise ValueError
        return dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2) or '00:00:00'}+00:00")
    except ValueError:
        raise QueryError(
            f"invalid date [{text}] at position {where}: expected [YYYY-MM-DDTHH:MM:SSZ]"
        ) from None


def record_date(value: Any) -> dt.datetime | None:
    """A stored ConnectWise date string as an aware datetime (None when absent/garbled)."""
    if not isinstance(value, str):
        return None
    m = _DATE.match(value)
    if m is None:
        return None
    return dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2) or '00:00:00'}+00:00")


def _field_type(schema: Schema, path: str) -> str:
    node: Any = schema
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            raise QueryError(f"unknown field {path!r}", field=path)
        node = node[part]
    if isinstance(node, dict):
        raise QueryError(f"{path!r} is an object; compare one of its fields", field=path)
    return str(node)


def _get(record: Record, path: str) -> Any:
    node: Any = record
    for part in path.split("/"):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _comparer(ftype: str, path: str) -> Callable[[Record], Any]:
    """`_comparable(ftype, _get(r, path))` as one closure specialised to the path's depth:
    a chunked `identifier in (...)` query scans every company per request (10,000 at
    the benchmark's scale), so this runs millions of times."""
    parts = path.split("/")
    if ftype == "date" or len(parts) > 2:
        return lambda r: _comparable(ftype, _get(r, path))
    if len(parts) == 1:
        (key,) = parts
        if ftype == "str":
            return lambda r: v.casefold() if isinstance(v := r.get(key), str) else None
        return lambda r: r.get(key)
    outer, inner = parts
    if ftype == "str":

        def nested_text(r: Record) -> Any:
            node = r.get(outer)
            v = node.get(inner) if isinstance(node, dict) else None
            return v.casefold() if isinstance(v, str) else None

        return nested_text

    def nested(r: Record) -> Any:
        node = r.get(outer)
        return node.get(inner) if isinstance(node, dict) else None

    return nested


_TYPE_OK: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "date": lambda v: isinstance(v, dt.datetime),
}


def _check_type(ftype: str, value: Any, path: str) -> Any:
    """The literal as the comparable form of the field's type, or a QueryError."""
    if value is None:
        return None
    if not _TYPE_OK[ftype](value):
        expected = {"str": "a quoted string", "date": "a [date]", "bool": "true or false"}
        raise QueryError(
            f"{path} expects {expected.get(ftype, 'a number')}, got {value!r}", field=path
        )
    return value.casefold() if ftype == "str" else value


def _comparable(ftype: str, value: Any) -> Any:
    if value is None:
        return None
    if ftype == "str":
        return value.casefold() if isinstance(value, str) else None
    if ftype == "date":
        return record_date(value)
    return value


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.DOTALL)


class _Parser:
    def __init__(self, text: str, schema: Schema) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.schema = schema

    def peek(self) -> tuple[str, Any, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, *kinds: str) -> tuple[str, Any, int]:
        tok = self.peek()
        if tok is None or tok[0] not in kinds:
            where = f"at position {tok[2]}" if tok else "at the end"
            found = repr(tok[1]) if tok else "nothing"
            raise QueryError(f"expected {' or '.join(kinds)} {where}, found {found}")
        self.i += 1
        return tok

    def parse(self) -> Compiled:
        compiled = self.expr()
        if self.peek() is not None:
            tok = self.tokens[self.i]
            raise QueryError(f"unexpected {tok[1]!r} at position {tok[2]}")
        return compiled

    def expr(self) -> Compiled:
        parts = [self.and_expr()]
        while (tok := self.peek()) and tok[0] == "or":
            self.i += 1
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        tests = [p.test for p in parts]
        return Compiled(lambda r: any(t(r) for t in tests))

    def and_expr(self) -> Compiled:
        parts = [self.operand()]
        while (tok := self.peek()) and tok[0] == "and":
            self.i += 1
            parts.append(self.operand())
        if len(parts) == 1:
            return parts[0]
        tests = [p.test for p in parts]
        # every part must hold, so any part's lookup narrows the whole: take the tightest
        lookups = [p.lookup for p in parts if p.lookup is not None]
        tightest = min(lookups, key=lambda k: len(k.values), default=None)
        return Compiled(lambda r: all(t(r) for t in tests), tightest)

    def operand(self) -> Compiled:
        if (tok := self.peek()) and tok[0] == "(":
            self.i += 1
            inner = self.expr()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Compiled:
        path = self.take("path")[1]
        ftype = _field_type(self.schema, path)
        negate = False
        if (tok := self.peek()) and tok[0] == "not":
            self.i += 1
            negate = True
        kind, op, _ = self.take(
            *(("in", "like", "contains") if negate else ("op", "in", "like", "contains"))
        )
        if kind == "in":
            self.take("(")
            values = {_check_type(ftype, self.take("value")[1], path)}
            while self.take(",", ")")[0] == ",":
                values.add(_check_type(ftype, self.take("value")[1], path))
            values.discard(None)
            listed = frozenset(values)
            value_of = _comparer(ftype, path)

            def member(r: Record) -> bool:
                v = value_of(r)
                return v is not None and ((v in listed) != negate)

            return Compiled(member, None if negate else KeyLookup(ftype, path, listed))
        value = self.take("value")[1]
        if kind in ("like", "contains"):
            if ftype != "str" or not isinstance(value, str):
                raise QueryError(f"{kind} needs a string field and a quoted string", field=path)
            if kind == "like":
                rx = _like(value.casefold())
                test: Callable[[str], bool] = lambda v: rx.fullmatch(v) is not None  # noqa: E731
            else:
                needle = value.casefold()
                test = lambda v: needle in v  # noqa: E731

            text_of = _comparer(ftype, path)

            def text(r: Record) -> bool:
                v = text_of(r)
                return v is not None and (test(v) != negate)

            return Compiled(text)
        literal = _check_type(ftype, value, path)
        fn = _OPS[op]
        if literal is None:
            if op not in ("=", "!=", "<>"):
                raise QueryError(f"null only compares with = or !=, not {op}", field=path)
            want_null = op == "="
            return Compiled(lambda r: (_get(r, path) is None) == want_null)
        if ftype == "bool" and op not in ("=", "!=", "<>"):
            raise QueryError(f"{path} is a flag: use = or !=", field=path)

        compared = _comparer(ftype, path)

        def compare(r: Record) -> bool:
            v = compared(r)
            return v is not None and fn(v, literal)

        lookup = KeyLookup(ftype, path, frozenset([literal])) if op == "=" else None
        return Compiled(compare, lookup)


_cache: dict[tuple[int, str], Compiled] = {}
_EVERYTHING = Compiled(lambda r: True)


def compile_conditions(text: str | None, schema: Schema) -> Compiled:
    """The query as a predicate over records (plus its key lookup, if it has one); raises
    QueryError for bad syntax, fields or types.

    Compiled queries are cached: a client pages through one query many times."""
    if text is None or not text.strip():
        return _EVERYTHING
    key = (id(schema), text)
    compiled = _cache.get(key)
    if compiled is None:
        if len(_cache) > 1024:
            _cache.clear()
        compiled = _cache[key] = _Parser(text, schema).parse()
    return compiled


def parse_fields(text: str | None) -> list[list[str]] | None:
    """`fields=id,company/id` -> [["id"], ["company", "id"]]; None when not given."""
    if text is None or not text.strip():
        return None
    return [p.strip().split("/") for p in text.split(",") if p.strip()]


def trim(record: Record, fields: list[list[str]] | None) -> Record:
    """Keep only the listed fields (nested paths keep their enclosing objects); without
    `fields=` everything is returned, `_info` included."""
    if fields is None:
        return record
    out: Record = {}
    for path in fields:
        if len(path) == 1:  # the usual `fields=id,name`: no enclosing objects to build
            if path[0] in record:
                out[path[0]] = record[path[0]]
            continue
        src: Any = record
        dst = out
        for depth, part in enumerate(path):
            if not isinstance(src, dict) or part not in src:
                break
            if depth == len(path) - 1:
                dst[part] = src[part]
            else:
                if not isinstance(src[part], dict):
                    break
                dst = dst.setdefault(part, {})
            src = src[part]
    return out


def order_key(text: str | None, schema: Schema) -> list[tuple[str, str, bool]]:
    """`orderBy=name asc, id desc` -> [(path, type, descending)]; QueryError when bad."""
    if text is None or not text.strip():
        return []
    keys = []
    for part in text.split(","):
        words = part.split()
        if (
            not words
            or len(words) > 2
            or (len(words) == 2 and words[1].lower() not in ("asc", "desc"))
        ):
            raise QueryError(f"orderBy expects 'field [asc|desc]', got {part.strip()!r}")
        keys.append(
            (
                words[0],
                _field_type(schema, words[0]),
                len(words) == 2 and words[1].lower() == "desc",
            )
        )
    return keys


def sort_records(records: list[Record], keys: list[tuple[str, str, bool]]) -> list[Record]:
    for path, ftype, desc in reversed(keys):  # stable sorts, last key first

        def key(r: Record, path: str = path, ftype: str = ftype) -> tuple[bool, Any]:
            v = _comparable(ftype, _get(r, path))
            return (v is not None, v if v is not None else 0)  # nulls first, as SQL Server

        records = sorted(records, key=key, reverse=desc)
    return records
