"""reconciler.engine.collector: the garbage-collector settings of a sync."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.config.loader import load_config
from reconciler.core.model import PeriodKind
from reconciler.engine import collector
from reconciler.engine.interface import PlanRequest
from reconciler.engine.manager import SyncEngine
from reconciler.plan import planner
from reconciler.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def default_collector() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_quiet_freezes_what_exists_and_collects_the_young_less_often() -> None:
    existing = [object() for _ in range(3)]
    with collector.quiet():
        assert gc.get_threshold() == (collector.YOUNG, 10, 10)
        assert gc.get_freeze_count() > 0
        with collector.quiet():  # nested: the outer one stays in charge
            pass
        assert gc.get_threshold()[0] == collector.YOUNG and gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
    del existing


def test_cycles_are_still_collected_inside() -> None:
    class Node:
        pass

    with collector.quiet():
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        gone = weakref.ref(a)
        del a, b
        # Objects that stay alive count towards a collection (freed ones do not).
        kept = [[] for _ in range(collector.YOUNG * 2)]
        assert gone() is None
        del kept


def test_a_switched_off_collector_stays_off() -> None:
    gc.set_threshold(0)
    with collector.quiet():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0


def test_a_plan_is_made_with_the_quiet_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []
    real = planner.preparing  # the bulk of planning (finish: the directory's few changes)

    def spy(*args: object, **kwargs: object) -> object:
        seen.append((gc.get_threshold()[0], gc.get_freeze_count()))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(planner, "preparing", spy)
    with Sandbox() as sb:
        engine = SyncEngine(load_config(REPO), None)
        monkeypatch.setattr(engine, "clients", engine.clients.__class__(sb.env()))
        engine.plan(PlanRequest(None, PeriodKind.LAST_BILLING_PERIOD, None, None, None))
    assert seen and seen[0][0] == collector.YOUNG and seen[0][1] > 0
    assert gc.get_threshold()[0] == 700 and gc.get_freeze_count() == 0
