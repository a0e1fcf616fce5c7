""" "Did you mean" for identifiers the plan checks against what ConnectWise or ZeroTek
returned (issue 28): the closest candidate by rapidfuzz's normalised similarity, case and
punctuation aside. Candidates are what the plan already read, never an extra request.

rapidfuzz is imported on first use: only an error needs it, and `reconcile --help` must
stay light (benchmarks/import_time.py)."""

from __future__ import annotations

from collections.abc import Iterable

CUTOFF = 70.0  # 0..100: `ACEM` ~ `ACME` scores 75, unrelated words far below


def nearest(word: str, candidates: Iterable[str], cutoff: float = CUTOFF) -> str | None:
    """The candidate closest to `word`, if close enough (never `word` itself)."""
    from rapidfuzz import fuzz, process, utils

    choices = [c for c in dict.fromkeys(candidates) if c != word]
    if not choices:
        return None
    found = process.extractOne(
        word, choices, scorer=fuzz.ratio, processor=utils.default_process, score_cutoff=cutoff
    )
    return None if found is None else str(found[0])


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = CUTOFF) -> str:
    """`; did you mean 'X'?` to end a message with, or '' when nothing is close."""
    near = nearest(word, candidates, cutoff)
    return f"; did you mean '{near}'?" if near is not None else ""
