"""The Router's media surface over loopback: router.images, router.tasks and the chat bridge, configured like a user
would (Router.from_config), with failover from a failing Flux to Replicate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from polyrelay.errors import AllTargetsFailed, InvalidRequest, NotFound
from polyrelay.router import Router
from polyrelay.testing import Fault, FluxUpstream, OpenAIUpstream, ReplicateOutcome, ReplicateUpstream

KEY = "test-key"


class Sleeps:
    """Injected sleep: records what the router asked for and returns at once (no timed behaviour in tests)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream]]:
    async with FluxUpstream() as flux, ReplicateUpstream() as rep, OpenAIUpstream() as chat:
        yield flux, rep, chat


def _config(flux: FluxUpstream, rep: ReplicateUpstream, chat: OpenAIUpstream, **policy: Any) -> dict[str, Any]:
    return {
        "providers": {
            "bfl": {"type": "flux", "base_url": flux.base_url, "api_key": KEY},
            "rep": {"type": "replicate", "base_url": rep.base_url, "api_key": KEY, "wait": 1},
            "oa": {"type": "openai", "base_url": chat.base_url, "api_key": KEY},
        },
        "models": {
            "flux-pro": {"targets": ["bfl/flux-pro-1.1", "rep/black-forest-labs/flux-1.1-pro"]},
            "chat": {"targets": ["oa/gpt-4o"]},
        },
        "policy": {"retry": {"max_attempts": 2}, **policy},
    }


async def test_images_generate_fails_over_from_flux_to_replicate(
    servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream],
) -> None:
    flux, rep, chat = servers
    flux.add_fault(Fault.status_code(503), times=None)
    sleeps = Sleeps()
    async with Router.from_config(_config(flux, rep, chat), sleep=sleeps) as router:
        resp = await router.images.generate(model="flux-pro", prompt="a lighthouse at dusk", size="1024x1024")
    assert resp.meta is not None and resp.meta.provider == "rep"
    assert resp.data and resp.data[0].url and resp.data[0].url.startswith(rep.origin)
    assert len([r for r in flux.requests if r.method == "POST"]) == 2  # retried once, then failed over
    assert any(r.method == "POST" for r in rep.requests)


async def test_tasks_create_wait_and_get_by_id(servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream]) -> None:
    flux, rep, chat = servers
    sleeps = Sleeps()
    async with Router.from_config(_config(flux, rep, chat), sleep=sleeps) as router:
        task = await router.tasks.create(model="flux-pro", prompt="a red fox")
        assert task.provider == "bfl" and not task.done
        seen: list[float | None] = []
        done = await router.tasks.wait(task.id, timeout=60, on_progress=lambda t: seen.append(t.progress))
        assert done.status == "succeeded" and done.outputs and done.outputs[0].url
        assert sleeps.calls, "polling waited through the injected sleep"
    # Another router with the same config can poll the task by its id.
    async with Router.from_config(_config(flux, rep, chat), sleep=sleeps) as other:
        again = await other.tasks.get(task.id)
        assert again.status == "succeeded" and again.upstream_id == task.upstream_id


async def test_chat_bridge_non_stream_and_stream(
    servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream],
) -> None:
    flux, rep, chat = servers
    rep.push_outcome(ReplicateOutcome(processing_polls=3))
    flux.add_fault(Fault.status_code(503), times=None)
    sleeps = Sleeps()
    async with Router.from_config(_config(flux, rep, chat), sleep=sleeps) as router:
        assert router.is_media_model("flux-pro") and not router.is_media_model("chat")
        resp = await router.chat.completions.create(
            model="flux-pro", messages=[{"role": "user", "content": "a lighthouse"}]
        )
        content = resp.choices[0].message.content or ""
        assert content.startswith("![image](") and "\n\ntask_id: task_" in content
        assert resp.choices[0].finish_reason == "stop"

        stream = await router.chat.completions.create(
            model="flux-pro", messages=[{"role": "user", "content": "a lighthouse"}], stream=True
        )
        async with stream:
            pieces = [c.choices[0].delta.content or "" for c in [x async for x in stream] if c.choices]
        text = "".join(pieces)
        assert text.startswith("task_id: task_")
        assert "status: running" in text and "status: succeeded" in text
        assert "![image](" in text
        assert stream.meta is not None and stream.meta.provider == "rep"
        # The chat model still goes to the chat provider.
        plain = await router.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        assert plain.meta is not None and plain.meta.provider == "oa"


async def test_media_bad_input_and_unknown_ids(servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream]) -> None:
    flux, rep, chat = servers
    async with Router.from_config(_config(flux, rep, chat)) as router:
        with pytest.raises(InvalidRequest) as e1:
            await router.images.generate(model="flux-pro", prompt="x", size="7x7")
        assert e1.value.path == "size"
        with pytest.raises(InvalidRequest) as e2:
            await router.tasks.get("task_not-a-real-id")
        assert e2.value.path == "task_id"
        with pytest.raises(InvalidRequest) as e3:
            await router.tasks.create(model="flux-pr", prompt="x")
        assert e3.value.path == "model" and "did you mean 'flux-pro'" in str(e3.value)
    assert not flux.requests and not rep.requests  # nothing reached the network


async def test_wait_is_also_an_async_iterator(servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream]) -> None:
    flux, rep, chat = servers
    sleeps = Sleeps()
    async with Router.from_config(_config(flux, rep, chat), sleep=sleeps) as router:
        task = await router.tasks.create(model="flux-pro", prompt="a red fox")
        seen: list[str] = []
        snapshots = [
            t async for t in router.tasks.wait(task.id, timeout=60, on_progress=lambda t: seen.append(t.status))
        ]
    assert snapshots[-1].status == "succeeded" and snapshots[-1].outputs
    assert [t.status for t in snapshots] == seen
    assert all(t.id == task.id for t in snapshots)


async def test_an_expired_task_id_gets_a_clear_error(
    servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream],
) -> None:
    from polyrelay.tasks import TaskRef, encode_task_id

    flux, rep, chat = servers
    gone = encode_task_id(
        TaskRef(provider="rep", model="black-forest-labs/flux-1.1-pro", upstream_id="expired0prediction",
                kind="image", created=0.0, requested_model="flux-pro")
    )  # fmt: skip
    async with Router.from_config(_config(flux, rep, chat), sleep=Sleeps()) as router:
        with pytest.raises(NotFound) as info:
            await router.tasks.get(gone)
    assert "expired upstream, was deleted, or never existed" in str(info.value)
    assert info.value.provider == "rep" and info.value.status == 404
    assert any(r.path.endswith("/predictions/expired0prediction") for r in rep.requests)


# -- the router's circuit breaker and concurrency limit, at submission --------------------------------------------

GUARD = 10.0  # so a broken wait fails the test instead of hanging it (not a timing assertion)


def _posts(server: FluxUpstream | ReplicateUpstream) -> int:
    return sum(1 for r in server.requests if r.method == "POST")


async def test_a_target_whose_circuit_opened_is_skipped_at_submission(
    servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream],
) -> None:
    flux, rep, chat = servers
    flux.set_down(True)
    config = _config(flux, rep, chat, circuit={"consecutive_failures": 2, "cooldown": 60})
    async with Router.from_config(config, sleep=Sleeps()) as router:
        first = await router.images.generate(model="flux-pro", prompt="a lighthouse at dusk")
        assert first.meta is not None and first.meta.provider == "rep"
        assert _posts(flux) == 2 and router.circuit("bfl/flux-pro-1.1").state == "open"
        second = await router.images.generate(model="flux-pro", prompt="a harbour at dawn")
        task = await router.tasks.create(model="flux-pro", prompt="a pier at noon")
    assert second.meta is not None and second.meta.provider == "rep" and task.provider == "rep"
    assert _posts(flux) == 2  # skipped while open: not one more request


async def test_when_every_circuit_is_open_the_first_to_close_is_tried(
    servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream],
) -> None:
    flux, rep, chat = servers
    flux.set_down(True)
    rep.set_down(True)
    config = _config(flux, rep, chat, circuit={"consecutive_failures": 2, "cooldown": 60})
    async with Router.from_config(config, sleep=Sleeps()) as router:
        with pytest.raises(AllTargetsFailed):
            await router.tasks.create(model="flux-pro", prompt="a lighthouse")
        assert router.circuit("bfl/flux-pro-1.1").state == "open"  # opened first: its cooldown ends first
        assert router.circuit("rep/black-forest-labs/flux-1.1-pro").state == "open"
        flux.set_down(False)
        rep_posts = _posts(rep)
        task = await router.tasks.create(model="flux-pro", prompt="a lighthouse")
        assert task.provider == "bfl" and _posts(rep) == rep_posts
        assert router.circuit("bfl/flux-pro-1.1").state == "closed"  # the probe succeeded


async def test_a_target_at_its_concurrency_limit_moves_a_submission_on(
    servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream],
) -> None:
    flux, rep, chat = servers
    flux.add_fault(Fault.slow_first_byte(0.5), times=1)
    config = _config(flux, rep, chat, max_concurrency=1, queue="fail")
    async with Router.from_config(config, sleep=Sleeps()) as router:
        async with asyncio.timeout(GUARD):
            slow = asyncio.create_task(router.tasks.create(model="flux-pro", prompt="a lighthouse"))
            while _posts(flux) == 0:  # noqa: ASYNC110 - the first submission, holding Flux's only slot, arrives
                await asyncio.sleep(0.01)
            moved = await router.tasks.create(model="flux-pro", prompt="a harbour")
            held = await slow
        assert moved.provider == "rep" and held.provider == "bfl"
        assert _posts(flux) == 1
        again = await router.tasks.create(model="flux-pro", prompt="a pier")  # the slot is free again
    assert again.provider == "bfl"


async def test_retries_on_a_target_stop_when_its_circuit_opens(
    servers: tuple[FluxUpstream, ReplicateUpstream, OpenAIUpstream],
) -> None:
    flux, rep, chat = servers
    flux.set_down(True)
    config = _config(flux, rep, chat, retry={"max_attempts": 3}, circuit={"consecutive_failures": 1, "cooldown": 60})
    async with Router.from_config(config, sleep=Sleeps()) as router:
        task = await router.tasks.create(model="flux-pro", prompt="a lighthouse")
    assert task.provider == "rep"
    assert _posts(flux) == 1  # the first failure opened the circuit: no second attempt there (3 without a breaker)
