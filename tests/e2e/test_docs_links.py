"""Every relative link in the README and docs/ leads somewhere: the file (or directory)
exists, and a `#fragment` names a heading of the target page as GitHub anchors it.

The README is a front door to docs/ (DESIGN 13.8), and pages move and get renamed; a
link that 404s on GitHub is found here instead. Links are read with markdown-it-py (what
renders as a link, not what looks like one: code spans and fences are skipped), and
anchors are made the way GitHub makes them (github-slugger: lower case, punctuation and
symbols dropped, spaces to hyphens, `-1`, `-2` for repeats).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md", *ROOT.glob("docs/*.md")])

_md = MarkdownIt("commonmark").enable("table")


def slug(text: str) -> str:
    """GitHub's anchor for a heading whose rendered text is `text`."""
    kept = (
        c
        for c in text.lower()
        if c in "-_ " or unicodedata.category(c)[0] in "LNM"  # letters, digits, marks
    )
    return "".join(kept).replace(" ", "-")


def _inline_text(inline: Token) -> str:
    return "".join(t.content for t in inline.children or [] if t.type in ("text", "code_inline"))


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    tokens = _md.parse(page.read_text(encoding="utf-8"))
    for opening, inline in pairwise(tokens):
        if opening.type != "heading_open":
            continue
        base = slug(_inline_text(inline))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of every link and image in `page`; the line is where its block starts."""
    for block in _md.parse(page.read_text(encoding="utf-8")):
        line = block.map[0] + 1 if block.map else 0
        for token in block.children or []:
            target = token.attrGet("href") if token.type == "link_open" else None
            if token.type == "image":
                target = token.attrGet("src")
            if isinstance(target, str):
                yield line, target


def broken(page: Path, root: Path) -> list[str]:
    """What is wrong with the relative links of `page`, one line each."""
    problems = []
    for line, target in links(page):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # http(s), mailto: not ours to check offline
        where = f"{page.relative_to(root)}:{line}: {target}"
        dest = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not dest.exists():
            problems.append(f"{where}: no such file")
        elif root.resolve() not in [dest, *dest.parents]:
            problems.append(f"{where}: outside the repository")
        elif parts.fragment and dest.suffix == ".md" and parts.fragment not in anchors(dest):
            problems.append(f"{where}: no heading with anchor #{parts.fragment} in {dest.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken(page, ROOT) == []


def test_the_readme_links_every_docs_page() -> None:
    linked = {target.split("#")[0] for _, target in links(ROOT / "README.md")}
    assert {f"docs/{p.name}" for p in ROOT.glob("docs/*.md")} <= linked


def test_anchors_follow_github() -> None:
    assert slug("Procedure 1: credentials") == "procedure-1-credentials"
    assert slug("What are we not billing? `reconcile report`") == (
        "what-are-we-not-billing-reconcile-report"
    )
    assert slug("10,000 customers, idle (2026-11-26)") == "10000-customers-idle-2026-11-26"
    assert slug("The sandbox: a supported feature, not a Python API") == (
        "the-sandbox-a-supported-feature-not-a-python-api"
    )


def test_broken_links_and_anchors_are_found(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("# A\n\n## Two words\n\n## Two words\n")
    (tmp_path / "outside.md").write_text("# Outside\n")
    page = root / "README.md"
    page.write_text(
        "# Top\n\n"
        "[ok](docs/a.md#two-words) [ok](docs/a.md#two-words-1) [ok](#top) [ok](docs/)\n"
        "[web](https://example.com/x#y) `[code](nowhere.md)`\n\n"
        "[gone](docs/b.md)\n\n"
        "[bad anchor](docs/a.md#three-words)\n\n"
        "![img](missing.png) [here](#nope) [out](../outside.md)\n"
    )
    assert broken(page, root) == [
        "README.md:6: docs/b.md: no such file",
        "README.md:8: docs/a.md#three-words: no heading with anchor #three-words in a.md",
        "README.md:10: missing.png: no such file",
        "README.md:10: #nope: no heading with anchor #nope in README.md",
        "README.md:10: ../outside.md: outside the repository",
    ]
