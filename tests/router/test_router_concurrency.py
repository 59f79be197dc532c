"""Per-target concurrency limits: the FIFO queue, failing fast, and slots coming back on every path."""

from __future__ import annotations

import asyncio

import pytest

from polyrelay.concurrency import Slots, TargetBusy
from polyrelay.errors import AllTargetsFailed
from polyrelay.testing._fake import Reply, hang

from .conftest import USER, Build, fake, route, t, until


async def test_slots_queue_is_first_in_first_out() -> None:
    s = Slots()
    await s.acquire(1, mode="wait", max_wait=None, target="t")
    order: list[int] = []

    async def waiter(n: int) -> None:
        await s.acquire(1, mode="wait", max_wait=None, target="t")
        order.append(n)
        s.release()

    tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert s.waiting == 3
    s.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert s.in_flight == 0


async def test_slots_fail_fast_or_time_out() -> None:
    s = Slots()
    assert s.try_acquire(1)
    with pytest.raises(TargetBusy):
        await s.acquire(1, mode="fail", max_wait=None, target="t")
    with pytest.raises(TargetBusy):
        await s.acquire(1, mode="wait", max_wait=0.01, target="t")
    assert s.waiting == 0 and s.in_flight == 1


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    s = Slots()
    assert s.try_acquire(1)
    first = asyncio.create_task(s.acquire(1, mode="wait", max_wait=None, target="t"))
    second = asyncio.create_task(s.acquire(1, mode="wait", max_wait=None, target="t"))
    await asyncio.sleep(0)
    s.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs: the slot must go to `second`
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 1)
    assert s.in_flight == 1


async def test_fail_mode_fails_over_to_the_next_target(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"max_concurrency": 1, "queue": "fail"})
    fake(r, "a").push(hang())
    stuck = asyncio.create_task(r.chat.completions.create(model="m", messages=USER))
    await until(lambda: r.in_flight("a/x") > 0)
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "b"
    assert (resp.meta.attempts[0].outcome, resp.meta.attempts[0].error_type) == ("skipped", "TargetBusy")
    assert len(fake(r, "a").calls) == 1
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    assert r.in_flight("a/x") == 0


async def test_wait_mode_queues_for_the_target(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"max_concurrency": 1, "queue": "wait"})
    a = fake(r, "a")
    a.push(lambda req, ctx: Reply(content="first", delay=0.05))
    first = asyncio.create_task(r.chat.completions.create(model="m", messages=USER))
    await until(lambda: r.in_flight("a/x") > 0)
    second = await r.chat.completions.create(model="m", messages=USER)
    assert (await first).choices[0].message.content == "first"
    assert second.meta is not None and second.meta.provider == "a"  # it waited instead of failing over
    assert fake(r, "b").calls == []
    assert a.calls[1].started_at >= a.calls[0].started_at + 0.05


async def test_queue_timeout_then_fail_over(make: Build) -> None:
    r = make(
        [route("m", t("a", "x"), t("b", "y"))],
        policy={"max_concurrency": 1, "queue": "wait", "queue_timeout": 0.02},
    )
    fake(r, "a").push(hang())
    stuck = asyncio.create_task(r.chat.completions.create(model="m", messages=USER))
    await until(lambda: r.in_flight("a/x") > 0)
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "b"
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)


async def test_busy_everywhere_is_all_targets_failed(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"max_concurrency": 1, "queue": "fail"})
    fake(r, "a").push(hang())
    fake(r, "b").push(hang())
    stuck = [asyncio.create_task(r.chat.completions.create(model="m", messages=USER)) for _ in range(2)]
    await until(lambda: r.in_flight("a/x") + r.in_flight("b/y") == 2)
    with pytest.raises(AllTargetsFailed) as ei:
        await r.chat.completions.create(model="m", messages=USER)
    assert all(isinstance(e, TargetBusy) for e in ei.value.errors)
    for task in stuck:
        task.cancel()
    await asyncio.gather(*stuck, return_exceptions=True)
    assert r.in_flight("a/x") == r.in_flight("b/y") == 0


async def test_per_target_limit(make: Build) -> None:
    r = make(
        [route("m", t("a", "x", policy={"max_concurrency": 1, "queue": "fail"}), t("b", "y"))],
    )
    fake(r, "a").push(hang())
    stuck = asyncio.create_task(r.chat.completions.create(model="m", messages=USER))
    await until(lambda: r.in_flight("a/x") > 0)
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "b"
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
