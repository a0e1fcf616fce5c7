"""reconciler.net.slots: a semaphore whose waiters are served by priority, then arrival."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.net import slots
from reconciler.net.slots import Slots


def test_never_more_holders_than_slots() -> None:
    async def go() -> int:
        gate = Slots(3)
        holding = peak = 0

        async def one(level: int) -> None:
            nonlocal holding, peak
            with slots.priority(level):
                async with gate:
                    holding += 1
                    peak = max(peak, holding)
                    await asyncio.sleep(0.001)
                    holding -= 1

        await asyncio.gather(*(one(i % 3) for i in range(60)))
        return peak

    assert asyncio.run(go()) == 3


def test_waiters_are_served_by_priority_then_arrival() -> None:
    async def go() -> list[str]:
        gate = Slots(1)
        served: list[str] = []
        await gate.acquire()  # held: everyone below waits

        async def one(name: str, level: int) -> None:
            with slots.priority(level):
                async with gate:
                    served.append(name)

        tasks = []
        for name, level in [
            ("b1", slots.BACKGROUND), ("n1", slots.NORMAL), ("u1", slots.URGENT),
            ("b2", slots.BACKGROUND), ("u2", slots.URGENT), ("n2", slots.NORMAL),
        ]:  # fmt: skip
            tasks.append(asyncio.create_task(one(name, level)))
            await asyncio.sleep(0)  # queued in this order
        gate.release()
        await asyncio.gather(*tasks)
        return served

    assert asyncio.run(go()) == ["u1", "u2", "n1", "n2", "b1", "b2"]


def test_a_cancelled_waiter_takes_no_slot_and_loses_none() -> None:
    async def go() -> bool:
        gate = Slots(1)
        await gate.acquire()
        gone = asyncio.create_task(gate.acquire())
        later = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        gate.release()  # passes to `later`, skipping the cancelled waiter
        await asyncio.wait_for(later, 1)
        gate.release()
        await asyncio.wait_for(gate.acquire(), 1)  # and the slot is free again after
        return True

    assert asyncio.run(go())


def test_a_waiter_cancelled_just_after_it_was_granted_passes_the_slot_on() -> None:
    async def go() -> bool:
        gate = Slots(1)
        await gate.acquire()
        granted = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        gate.release()  # the slot is handed to `granted`...
        granted.cancel()  # ...which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await granted
        await asyncio.wait_for(gate.acquire(), 1)  # the slot was not lost with it
        return True

    assert asyncio.run(go())


def test_priority_is_the_tasks_own() -> None:
    async def go() -> tuple[int, int]:
        seen: list[int] = []

        async def child() -> None:
            seen.append(slots._priority.get())

        with slots.priority(slots.BACKGROUND):
            await asyncio.create_task(child())  # a task made inside inherits it
        await asyncio.create_task(child())  # and the block's end restores the default
        return seen[0], seen[1]

    assert asyncio.run(go()) == (slots.BACKGROUND, slots.NORMAL)


def test_zero_slots_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)
