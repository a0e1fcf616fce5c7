"""How a run's request statistics read: text (`activity RUN_ID`, `-v` on plan and apply)
and Markdown (the run's twin under runs/, which the sync workflow puts in the job summary).

Pure functions of the JSON form (`net.stats.Traffic.to_json()`, a run record's `requests`). Run
files live in git and may be hand-edited, so every value is checked and every name escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.secure.untrusted import markdown as md
from reconciler.secure.untrusted import plain as t

NAMES = {"connectwise": "ConnectWise", "zerotek": "ZeroTek"}


def _api_name(key: object) -> str:
    return NAMES.get(key, str(key)) if isinstance(key, str) else "?"


def _int(value: object) -> str:
    return f"{value:,}" if type(value) is int else "?"


def seconds(value: object) -> str:
    if type(value) not in (int, float):
        return "?"
    x = float(value)  # type: ignore[arg-type]
    return f"{x:.2f} s" if x < 10 else f"{x:,.1f} s"


def size(value: object) -> str:
    """Bytes as people read them (1,000-based: kB, MB)."""
    if type(value) is not int:
        return "?"
    n = int(value)
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:,.1f} MB"


def _apis(requests: object) -> list[tuple[str, Mapping[str, Any]]]:
    if not isinstance(requests, Mapping):
        return []
    return [(_api_name(k), v) for k, v in requests.items() if isinstance(v, Mapping)]


def _kinds(api: Mapping[str, Any]) -> list[tuple[str, object]]:
    kinds = api.get("by_kind")
    return (
        sorted(((str(k), n) for k, n in kinds.items()), key=lambda kv: kv[0])
        if isinstance(kinds, Mapping)
        else []
    )


def _per_second(value: object) -> str:
    if value is None:
        return "not limited"
    if type(value) not in (int, float):
        return "?"
    x = float(value)  # type: ignore[arg-type]
    return f"{x:.1f}/s" if x < 10 else f"{x:,.0f}/s"


def _per_minute(value: object) -> str:
    if value is None:
        return "none"
    if type(value) not in (int, float):
        return "?"
    return f"{float(value):,.0f}/min"  # type: ignore[arg-type]


def _throttle(api: Mapping[str, Any]) -> str:
    """One line about the API's throttle (DESIGN 13.9); empty when it never acted."""
    th = api.get("throttle")
    if not isinstance(th, Mapping):
        return ""
    if not th.get("pauses") and not th.get("decreases") and th.get("max_per_minute") is None:
        return ""
    cap = th.get("max_per_minute")
    return (
        f"throttled: paused {_int(th.get('pauses'))} times ({seconds(th.get('paused_seconds'))}), "
        f"rate lowered {_int(th.get('decreases'))} times (lowest "
        f"{_per_second(th.get('lowest_rate_per_second'))}), at the end "
        f"{_per_second(th.get('rate_per_second'))}"
        + (f"; capped at {_per_minute(cap)}" if cap is not None else "")
    )


def text_lines(requests: object, *, by_kind: bool = True) -> list[str]:
    """Per API: requests, retries and 429s; waits, time and bytes; (by_kind) its requests
    by kind. Fits 80 columns."""
    out = []
    for name, api in _apis(requests):
        out += [
            t(
                f"{name}: {_int(api.get('requests'))} requests ({_int(api.get('retries'))} "
                f"retries, {_int(api.get('status_429'))} rate-limited with 429)"
            ),
            f"  waited {seconds(api.get('wait_seconds'))} before retries, "
            f"{seconds(api.get('request_seconds'))} in requests; "
            f"{size(api.get('bytes_received'))} received, {size(api.get('bytes_sent'))} sent",
        ]
        throttle = _throttle(api)
        if throttle:
            out.append("  " + throttle)
        if by_kind:
            kinds = _kinds(api)
            width = max((len(k) for k, _ in kinds), default=0)
            out += [f"  {t(k).ljust(width)}  {_int(n)}" for k, n in kinds]
    return out


def markdown(requests: object) -> list[str]:
    """The `## Requests` section of a run's Markdown; nothing when none were recorded."""
    apis = _apis(requests)
    if not apis:
        return []
    header = "| API | Requests | Retries | 429s | Waited | Time in requests | Received | Sent |"
    out = ["## Requests", "", header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, api in apis:
        cells = [
            md(name),
            _int(api.get("requests")),
            _int(api.get("retries")),
            _int(api.get("status_429")),
            seconds(api.get("wait_seconds")),
            seconds(api.get("request_seconds")),
            size(api.get("bytes_received")),
            size(api.get("bytes_sent")),
        ]
        out.append("| " + " | ".join(cells) + " |")
    throttled = [(name, api["throttle"]) for name, api in apis if _throttle(api)]
    if throttled:
        out += [
            "",
            "| API | Paused | Paused for | Rate lowered | Lowest rate | Rate at the end | Cap |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        out += [
            f"| {md(name)} | {_int(th.get('pauses'))} | {seconds(th.get('paused_seconds'))} "
            f"| {_int(th.get('decreases'))} | {_per_second(th.get('lowest_rate_per_second'))} "
            f"| {_per_second(th.get('rate_per_second'))} "
            f"| {_per_minute(th.get('max_per_minute'))} |"
            for name, th in throttled
        ]
    rows = [(name, k, n) for name, api in apis for k, n in _kinds(api)]
    if rows:
        out += ["", "| API | Request | Sent |", "| --- | --- | ---: |"]
        out += [f"| {md(name)} | {md(k)} | {_int(n)} |" for name, k, n in rows]
    return [*out, ""]
