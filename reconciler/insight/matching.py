"""Name matching for `discover`: normalise company names, score them, choose agreements.

Pure functions. The scores are deliberately conservative: a proposal is written to the
mappings only at or above 0.9, so anything short of "the same name once legal suffixes,
punctuation, case, accents and common abbreviations are set aside" must score below that.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from reconciler.core.state import Agreement

# Legal-form words, dropped from the END of a name only ("Co-operative Bank" keeps its
# "co"; "Johnson & Johnson & Co" loses it).
LEGAL_SUFFIXES = frozenset(
    {
        *("inc", "incorporated", "llc", "llp", "lp", "pllc", "plc", "ltd", "limited"),
        *("corp", "corporation", "co", "company", "cos", "gmbh", "ag", "kg", "ug", "mbh"),
        *("sa", "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as", "aps", "pty"),
        *("pte", "kk", "sl", "sro", "sp"),
    }
)
# Multi-token suffixes after punctuation is removed: "S.A.", "Pty Ltd", "GmbH & Co. KG".
_SUFFIX_PAIRS = frozenset({("s", "a"), ("b", "v"), ("n", "v"), ("l", "l", "c"), ("p", "c")})

# Abbreviations MSPs and their customers use interchangeably with the full word.
ABBREVIATIONS = {
    "intl": "international",
    "int'l": "international",
    "mfg": "manufacturing",
    "svc": "services",
    "svcs": "services",
    "serv": "services",
    "service": "services",
    "tech": "technology",
    "technologies": "technology",
    "assoc": "associates",
    "assn": "association",
    "grp": "group",
    "mgmt": "management",
    "mgt": "management",
    "sys": "systems",
    "system": "systems",
    "natl": "national",
    "dept": "department",
    "univ": "university",
    "hosp": "hospital",
    "med": "medical",
    "bros": "brothers",
    "dist": "distribution",
    "solns": "solutions",
    "sols": "solutions",
    "ctr": "center",
    "centre": "center",
    "hldgs": "holdings",
    "hldg": "holdings",
    "holding": "holdings",
    "partner": "partners",
    "ptnrs": "partners",
    "engr": "engineering",
    "eng": "engineering",
    "amer": "america",
    "saint": "st",
    "mt": "mount",
}
_STOPWORDS = frozenset({"the", "and", "of"})

# Agreement names / types that look like they bill licences (what the additions are).
_LICENSING = re.compile(
    r"okta|zerotek|identity|licen[cs]|subscription|saas|software|sso|\bmfa\b|\biam\b|cloud",
    re.IGNORECASE,
)
_DEAD = {"cancelled", "canceled", "expired", "inactive", "closed"}


# Letters NFKD does not decompose into a base letter + mark.
_LETTERS = str.maketrans(
    {"ß": "ss", "ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ı": "i", "þ": "th"}
)


@lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, casefolded."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold().translate(_LETTERS)


@lru_cache(maxsize=200_000)  # company names are scored against many customers
def tokens(name: str) -> tuple[str, ...]:
    """The words that identify a company: folded, `&`/`+` read as "and", punctuation
    dropped, abbreviations expanded, stop words and trailing legal forms removed."""
    text = fold(name).replace("&", " and ").replace("+", " and ")
    text = text.replace("'", "").replace("’", "")  # O'Brien = OBrien, Int'l = Intl
    words = [w for w in re.split(r"[^0-9a-z]+", text) if w]
    words = [ABBREVIATIONS.get(w, w) for w in words]
    changed = True
    while changed and len(words) > 1:
        changed = False
        for size in (3, 2):
            if len(words) > size and tuple(words[-size:]) in _SUFFIX_PAIRS:
                del words[-size:]
                changed = True
        if len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
            words.pop()
            changed = True
    kept = [w for w in words if w not in _STOPWORDS]
    return tuple(kept or words)


def normalise(name: str) -> str:
    return " ".join(tokens(name))


def acronym(words: Sequence[str]) -> str:
    return "".join(w[0] for w in words if w)


@dataclass(frozen=True)
class NameScore:
    score: float  # 0..1
    how: str  # why, in words


def score_names(a: str, b: str) -> NameScore:
    """How alike two company names are, 0..1, and why.

    1.0 identical ignoring case; 0.98 identical once normalised (legal suffixes,
    punctuation, accents, abbreviations); otherwise the rapidfuzz similarity of the
    normalised words, where word order does not matter (token_sort_ratio) but extra or
    missing words do: "Acme" vs "Acme Health Partners" must not look like the same company.
    A small typo ("Globx") still scores above 0.9; an added word does not."""
    if fold(a).strip() == fold(b).strip():
        return NameScore(1.0, "same name")
    ta, tb = tokens(a), tokens(b)
    na, nb = " ".join(ta), " ".join(tb)
    if na == nb:
        return NameScore(0.98, "same name once legal form, punctuation and case are set aside")
    if sorted(ta) == sorted(tb):
        return NameScore(0.96, "same words in another order")
    if "".join(ta) == "".join(tb):
        return NameScore(0.96, "same name with different spacing")
    # Acronym of the other's words ("IBM" ~ "International Business Machines"): plausible
    # but never certain, so it stays below the write threshold.
    for short, long in ((ta, tb), (tb, ta)):
        if len(short) == 1 and len(long) >= 3 and short[0] == acronym(long):
            return NameScore(0.8, "acronym of the other name")
    sort = fuzz.token_sort_ratio(na, nb) / 100
    plain = fuzz.ratio(na.replace(" ", ""), nb.replace(" ", "")) / 100
    best = max(sort, plain)
    # Word sets that differ in a whole word (not a typo in one) cap the score below 0.9.
    # A typo is plausible but so is a different company one letter away ("Globex" /
    # "Globix"): proposed, never written without a human. A whole word more or less is
    # weaker still.
    best = min(best, 0.89 if _typo_only(ta, tb) else 0.85)
    return NameScore(round(best, 3), "similar name")


def _typo_only(ta: Sequence[str], tb: Sequence[str]) -> bool:
    """Same number of words, each differing from its partner by at most a small edit."""
    if len(ta) != len(tb):
        return False
    for x, y in zip(sorted(ta), sorted(tb), strict=True):
        if x != y and (fuzz.ratio(x, y) < 80 or min(len(x), len(y)) < 4):
            return False
    return True


# --- agreements ------------------------------------------------------------------------------


def agreement_is_live(agreement: Agreement, today: dt.date) -> bool:
    """Never propose a cancelled, expired or inactive agreement, nor one already ended."""
    status = (agreement.status or "").casefold()
    if agreement.cancelled or status in _DEAD:
        return False
    return agreement.no_ending_date or agreement.end_date is None or agreement.end_date >= today


def looks_like_licensing(agreement: Agreement, type_name: str | None) -> bool:
    return bool(_LICENSING.search(agreement.name) or (type_name and _LICENSING.search(type_name)))


@dataclass(frozen=True)
class AgreementChoice:
    agreement: Agreement | None
    factor: float  # multiplies the name score
    reason: str
    candidates: tuple[Agreement, ...] = ()  # the tied ones, when no single choice


def choose_agreement(
    agreements: Iterable[Agreement],
    today: dt.date,
    *,
    types: dict[int, str] | None = None,
    taken: dict[int, str] | None = None,
) -> AgreementChoice:
    """The agreement a new customer's additions should go to, or why there is none.

    `taken`: agreement id -> the customer id already billing into it; such an agreement
    cannot be proposed (the customers would have to be marked shared, changing an existing
    mapping), so it is named in the reason instead."""
    types = types or {}
    taken = taken or {}
    every = sorted(agreements, key=lambda a: a.id)
    live = [a for a in every if agreement_is_live(a, today)]
    if not live:
        dead = f" ({len(every)} cancelled, expired or inactive)" if every else ""
        return AgreementChoice(None, 0.0, f"the company has no active agreement{dead}")
    free = [a for a in live if a.id not in taken]
    if not free:
        used = ", ".join(f"{a.id} (billing {taken[a.id]})" for a in live)
        return AgreementChoice(None, 0.0, f"its active agreements are already mapped: {used}")
    if len(free) == 1:
        note = (
            "the company's only active agreement"
            if len(live) == 1
            else "the company's only unmapped active one"
        )
        return AgreementChoice(free[0], 1.0, note)
    licensing = [a for a in free if looks_like_licensing(a, types.get(a.id))]
    if len(licensing) == 1:
        return AgreementChoice(
            licensing[0],
            0.97,
            f"the only licensing-looking agreement of {len(free)} active ones",
        )
    tied = tuple(licensing or free)
    names = ", ".join(f"{a.id} {a.name!r}" for a in tied)
    return AgreementChoice(
        None, 0.0, f"{len(tied)} active agreements could take it ({names}): pick one", tied
    )
