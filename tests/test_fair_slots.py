"""service.fair_slots: decoding slots taken by users in turn (its module docstring says why)."""

from __future__ import annotations

import asyncio

import pytest

from service.fair_slots import FairSlots


async def _served(slots: FairSlots, arrivals: list[str]) -> list[str]:
    """The order in which ``arrivals`` (keys, one waiter each, in this order) get a slot, while the one
    slot is first held by someone else."""
    order: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with slots.hold("holder"):
            await release.wait()

    async def waiter(name: str) -> None:
        async with slots.hold(name.split("-")[0]):
            order.append(name)
            await asyncio.sleep(0)

    holder = asyncio.create_task(first())
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(waiter(name)) for name in arrivals]
    await asyncio.sleep(0)
    assert slots.waiting() == len(arrivals)
    release.set()
    await asyncio.gather(holder, *waiters)
    return order


def test_users_take_the_slot_in_turn_each_in_arrival_order() -> None:
    order = asyncio.run(_served(FairSlots(1), ["a-1", "a-2", "a-3", "a-4", "b-1", "c-1", "b-2"]))
    # first come, first served gave a-1..a-4 before b-1: a flood held everyone behind all of it
    assert order == ["a-1", "b-1", "c-1", "a-2", "b-2", "a-3", "a-4"]


def test_a_cancelled_waiter_gives_up_its_place_and_a_granted_one_its_slot() -> None:
    async def scenario() -> list[str]:
        slots, order = FairSlots(1), []
        gate = asyncio.Event()

        async def hold(name: str, wait: asyncio.Event | None = None) -> None:
            async with slots.hold(name):
                order.append(name)
                if wait is not None:
                    await wait.wait()

        first = asyncio.create_task(hold("x", gate))
        await asyncio.sleep(0)
        gone, granted, last = (asyncio.create_task(hold(name)) for name in ("gone", "granted", "last"))
        await asyncio.sleep(0)
        gone.cancel()  # cancelled while waiting: its place goes
        await asyncio.sleep(0)
        assert slots.waiting() == 2
        gate.set()
        await asyncio.sleep(0)  # x releases: "granted" is granted ...
        granted.cancel()  # ... and cancelled before it runs: the slot passes on, not lost
        await asyncio.wait_for(asyncio.gather(first, last), 5)  # a lost slot: "last" waits for ever
        with pytest.raises(asyncio.CancelledError):
            await gone
        return order

    order = asyncio.run(scenario())
    assert order[0] == "x" and order[-1] == "last" and "gone" not in order
