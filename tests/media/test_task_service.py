"""TaskService: task ids, failover at submit, polling (watch / wait), resubmission, over loopback upstreams."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import pytest
from media_harness import POLICY, FakeClock, Media, build_media, open_transport, settings

from polyrelay.errors import (
    AllTargetsFailed,
    DeadlineExceeded,
    InvalidRequest,
    Overloaded,
    TaskFailed,
    UnsupportedFeature,
)
from polyrelay.provider import CallContext
from polyrelay.tasks import TASK_ID_PREFIX, TaskRef, decode_task_id, encode_task_id
from polyrelay.testing._faults import Fault
from polyrelay.testing._flux import FluxOutcome, FluxUpstream
from polyrelay.testing._openai_images import OpenAIImagesUpstream
from polyrelay.testing._replicate import ReplicateOutcome, ReplicateUpstream
from polyrelay.transport import Transport
from polyrelay.types.media import Task, TaskRequest, TaskSnapshot
from polyrelay_flux import SPEC as FLUX
from polyrelay_openai_images import SPEC as OPENAI_IMAGES
from polyrelay_replicate import SPEC as REPLICATE

REF = TaskRef(
    provider="bfl",
    model="flux-pro-1.1",
    upstream_id="https://api.us1.bfl.ai/v1/get_result?id=38b4e501",
    kind="image",
    created=1_700_000_000.25,
    requested_model="flux",
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def flux() -> AsyncIterator[FluxUpstream]:
    async with FluxUpstream() as server:
        yield server


@pytest.fixture
async def replicate() -> AsyncIterator[ReplicateUpstream]:
    async with ReplicateUpstream() as server:
        yield server


# A guard so a broken deadline fails the test instead of hanging it (not a timing assertion).
GUARD = 10.0


def media_for(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream, **kw: Any
) -> Media:
    return build_media(
        transport,
        clock,
        {
            "bfl": (FLUX, settings("bfl", "flux", flux.base_url)),
            "rep": (REPLICATE, settings("rep", "replicate", replicate.base_url, wait=0)),
        },
        {"flux": [("bfl", "flux-pro-1.1"), ("rep", "black-forest-labs/flux-1.1-pro")]},
        **kw,
    )


# -- task ids ------------------------------------------------------------------------------------------------------


def test_task_ids_round_trip_and_are_opaque_urlsafe_strings() -> None:
    task_id = encode_task_id(REF)
    assert task_id.startswith(TASK_ID_PREFIX)
    assert set(task_id[len(TASK_ID_PREFIX) :]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert decode_task_id(task_id) == REF
    assert encode_task_id(REF) == task_id  # stable: the same task always has the same id


def _id_of(payload: Any) -> str:
    raw = json.dumps(payload).encode()
    return TASK_ID_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "job_abc",
        "task_",
        "task_!!!not-base64!!!",
        _id_of([1, 2]),
        _id_of({"v": 2, "p": "bfl", "m": "m", "u": "u", "k": "image", "t": 0}),
        _id_of({"v": 1, "p": "", "m": "m", "u": "u", "k": "image", "t": 0}),
        _id_of({"v": 1, "p": "bfl", "m": "m", "u": "u", "k": "hologram", "t": 0}),
        _id_of({"v": 1, "p": "bfl", "m": "m", "u": "u", "k": "image", "t": "yesterday"}),
        "task_" + "A" * 5000,
    ],
)
def test_malformed_task_ids_name_task_id(bad: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_task_id(bad)
    assert info.value.path == "task_id"
    assert "not a polyrelay task id" in str(info.value)


async def test_task_ids_of_unknown_providers_fail_before_any_request(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    media = media_for(transport, clock, flux, replicate)
    foreign = encode_task_id(TaskRef(provider="elsewhere", model="m", upstream_id="u", kind="image", created=0))
    for call in (media.tasks.get, media.tasks.cancel, lambda i: media.tasks.wait(i, timeout=5)):
        with pytest.raises(InvalidRequest) as info:
            await call(foreign)
        assert info.value.path == "task_id" and "'elsewhere'" in str(info.value)
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.get("task_garbage")
    assert info.value.path == "task_id"
    assert flux.requests == [] and replicate.requests == []


async def test_another_service_with_the_same_config_can_poll_a_task(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    first = media_for(transport, clock, flux, replicate)
    task = await first.tasks.create(model="flux", prompt="a lighthouse")
    second = media_for(transport, clock, flux, replicate)  # e.g. another process
    done = await second.tasks.wait(task.id, timeout=60)
    assert done.status == "succeeded" and done.id == task.id and done.created_at == task.created_at


# -- failover at submit -----------------------------------------------------------------------------------------


async def test_flux_503_fails_over_to_replicate(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    flux.add_fault(Fault.status_code(503), times=None)
    media = media_for(transport, clock, flux, replicate)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    assert task.provider == "rep" and task.model == "black-forest-labs/flux-1.1-pro"
    assert len(flux.requests) == 3  # retried on Flux per policy (3 attempts), then failed over
    assert len(replicate.requests) == 1
    done = await media.tasks.wait(task.id, timeout=60)
    assert done.status == "succeeded"


async def test_a_retry_sleep_that_would_cross_the_deadline_fails_over_instead(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    # Flux asks for 2 s, the call has 1 s: no sleep, no second attempt there; Replicate answers within the budget.
    flux.add_fault(Fault.status_code(503, retry_after=2), times=None)
    media = media_for(transport, clock, flux, replicate, policy=attrs.evolve(POLICY, deadline=1.0))
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    assert task.provider == "rep"
    assert len(flux.requests) == 1 and clock.sleeps == []
    assert len(replicate.requests) == 1


class WallClock:
    """The real clock, for a deadline that real time has to run out."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(seconds)


async def test_a_submission_past_its_deadline_tries_no_further_target(
    transport: Transport, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    # Flux never answers: the transport gives up at the call's deadline, and the deadline is spent for Replicate.
    flux.add_fault(Fault.slow_first_byte(30.0), times=None)
    clock: Any = WallClock()
    media = media_for(transport, clock, flux, replicate, policy=attrs.evolve(POLICY, deadline=0.3))
    async with asyncio.timeout(GUARD):
        with pytest.raises(DeadlineExceeded) as info:
            await media.tasks.create(model="flux", prompt="a lighthouse")
    assert "ran out after 1 of 2 targets of 'flux'" in info.value.message
    assert isinstance(info.value.__cause__, DeadlineExceeded)  # the transport's, on Flux
    assert len(flux.requests) == 1 and replicate.requests == []


async def test_without_a_deadline_retries_follow_the_retry_policy_alone(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    flux.add_fault(Fault.status_code(503, retry_after=2), times=None)
    media = media_for(transport, clock, flux, replicate, policy=attrs.evolve(POLICY, deadline=None))
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    assert task.provider == "rep"
    assert len(flux.requests) == 3 and len(clock.sleeps) == 2 and min(clock.sleeps) >= 2


async def test_every_target_failing_is_all_targets_failed(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    flux.set_down(True)
    replicate.set_down(True)
    media = media_for(transport, clock, flux, replicate)
    with pytest.raises(AllTargetsFailed) as info:
        await media.tasks.create(model="flux", prompt="a lighthouse")
    assert [type(e) for e in info.value.errors] == [Overloaded, Overloaded]
    assert info.value.model == "flux"


async def test_input_the_first_target_rejects_is_raised_at_once(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    media = media_for(transport, clock, flux, replicate)
    with pytest.raises(InvalidRequest) as info:  # like the router: a bad request is not retried elsewhere
        await media.tasks.create(model="flux", prompt="a lighthouse", size="1000x1000")  # Flux needs multiples of 32
    assert info.value.path == "size"
    assert flux.requests == [] and replicate.requests == []


async def test_an_unsupported_request_moves_to_the_next_target(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    media = media_for(transport, clock, flux, replicate)
    task = await media.tasks.create(model="flux", prompt="a lighthouse", kind="video")  # Flux makes images only
    assert task.provider == "rep" and task.kind == "video"
    assert flux.requests == []


async def test_upstream_bad_requests_are_raised_at_once(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    from polyrelay.errors import BadRequest

    flux.add_fault(Fault.status_code(422, body={"detail": [{"loc": ["body", "seed"], "msg": "bad", "type": "x"}]}))
    media = media_for(transport, clock, flux, replicate)
    with pytest.raises(BadRequest) as info:
        await media.tasks.create(model="flux", prompt="a lighthouse")
    assert "seed: bad" in str(info.value)
    assert replicate.requests == []


async def test_input_every_target_rejects_raises_the_first_invalid_request(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    media = build_media(
        transport,
        clock,
        {
            "bfl": (FLUX, settings("bfl", "flux", flux.base_url)),
            "bfl2": (FLUX, settings("bfl2", "flux", flux.base_url)),
        },
        {"flux": [("bfl", "flux-pro-1.1"), ("bfl2", "flux-dev")]},
    )
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.create(model="flux", prompt="a lighthouse", n=4)
    assert info.value.path == "n"
    assert flux.requests == []


async def test_models_without_task_targets_are_unsupported(transport: Transport, clock: FakeClock) -> None:
    async with OpenAIImagesUpstream() as server:
        media = build_media(
            transport, clock, {"oai": (OPENAI_IMAGES, settings("oai", "openai-images", server.base_url))}
        )
        with pytest.raises(UnsupportedFeature) as info:
            await media.tasks.create(model="oai/dall-e-3", prompt="x")
        assert info.value.path == "model"
        assert not media.tasks.handles("oai/dall-e-3")


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"prompt": "  "}, "prompt"),
        ({"prompt": "x", "n": 0}, "n"),
        ({"prompt": "x", "size": "big"}, "size"),
        ({"prompt": "x", "aspect_ratio": "wide"}, "aspect_ratio"),
        ({"prompt": "x", "duration": -1}, "duration"),
        ({"prompt": "x", "seed": 1.5}, "seed"),
        ({"prompt": "x", "images": ["file:///etc/passwd"]}, "images[0]"),
        ({"prompt": "x", "kind": "hologram"}, "kind"),
    ],
)
async def test_generic_checks_run_before_any_request(
    transport: Transport,
    clock: FakeClock,
    flux: FluxUpstream,
    replicate: ReplicateUpstream,
    kw: dict[str, Any],
    path: str,
) -> None:
    media = media_for(transport, clock, flux, replicate)
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.create(model="flux", **kw)
    assert info.value.path == path
    assert flux.requests == [] and replicate.requests == []


# -- polling -------------------------------------------------------------------------------------------------------


async def test_watch_yields_changes_and_every_poll_on_request(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    flux.push_outcome(FluxOutcome(pending_polls=3, progress=False))
    flux.push_outcome(FluxOutcome(pending_polls=3, progress=False))
    media = media_for(transport, clock, flux, replicate)
    first = await media.tasks.create(model="flux", prompt="a")
    changes = [t.status async for t in media.tasks.watch(first.id, timeout=60)]
    assert changes == ["running", "succeeded"]  # three identical Pending polls collapse into one snapshot
    second = await media.tasks.create(model="flux", prompt="b")
    every = [t.status async for t in media.tasks.watch(second.id, timeout=60, every_poll=True)]
    assert every == ["running", "running", "running", "succeeded"]


async def test_async_progress_callbacks_are_awaited(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    media = media_for(transport, clock, flux, replicate)
    task = await media.tasks.create(model="flux", prompt="a")
    seen: list[str] = []

    async def record(t: Task) -> None:
        seen.append(t.status)

    await media.tasks.wait(task.id, timeout=60, on_progress=record)
    assert seen == ["running", "running", "succeeded"]


async def test_persistent_poll_errors_end_in_the_error(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    media = media_for(transport, clock, flux, replicate)
    media.tasks.max_poll_errors = 4
    task = await media.tasks.create(model="flux", prompt="a")
    flux.add_fault(Fault.status_code(503), times=None, path="/v1/get_result")
    with pytest.raises(Overloaded):
        await media.tasks.wait(task.id, timeout=600)
    assert sum(r.path == "/v1/get_result" for r in flux.requests) == 4


async def test_a_non_retryable_poll_error_is_raised_at_once(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    from polyrelay.errors import PermissionDenied

    media = media_for(transport, clock, flux, replicate)
    task = await media.tasks.create(model="flux", prompt="a")
    flux.add_fault(Fault.status_code(403), path="/v1/get_result")
    with pytest.raises(PermissionDenied):
        await media.tasks.wait(task.id, timeout=60)
    assert sum(r.path == "/v1/get_result" for r in flux.requests) == 1


async def test_a_bad_timeout_is_invalid(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    media = media_for(transport, clock, flux, replicate)
    task = await media.tasks.create(model="flux", prompt="a")
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.wait(task.id, timeout=0)
    assert info.value.path == "timeout"


# -- resubmission -----------------------------------------------------------------------------------------------


async def test_a_failed_task_is_resubmitted_to_the_next_target(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    flux.push_outcome(FluxOutcome(kind="error", pending_polls=0))
    media = media_for(transport, clock, flux, replicate, resubmit=True)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    assert task.provider == "bfl"
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=60, on_progress=seen.append)
    assert done.provider == "rep" and done.status == "succeeded" and done.id != task.id
    assert [(t.provider, t.status) for t in seen][:2] == [("bfl", "failed"), ("rep", "queued")]
    assert replicate.requests[0].json["input"]["prompt"] == "a lighthouse"


async def test_without_resubmission_a_failed_task_raises(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    flux.push_outcome(FluxOutcome(kind="error", pending_polls=0))
    media = media_for(transport, clock, flux, replicate)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    with pytest.raises(TaskFailed):
        await media.tasks.wait(task.id, timeout=60)
    assert replicate.requests == []


async def test_resubmission_failing_everywhere_raises_task_failed(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    flux.push_outcome(FluxOutcome(kind="error", pending_polls=0))
    replicate.push_outcome(ReplicateOutcome(status="failed", starting_polls=0, processing_polls=0))
    media = media_for(transport, clock, flux, replicate, resubmit=True)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=60)
    assert info.value.provider == "rep"


# -- follow-up actions -------------------------------------------------------------------------------------------


class ButtonsProvider:
    """An in-memory TaskActionProvider (Midjourney-like buttons) to drive TaskService.action."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, str, dict[str, Any]]] = []

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        return TaskSnapshot(upstream_id="1001", status="succeeded", actions=("MJ::JOB::upsample::1::abc",))

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        return TaskSnapshot(upstream_id=upstream_id, status="succeeded")

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        raise UnsupportedFeature("no cancel", path="task_id")

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        return 1.0

    async def action(self, upstream_id: str, action: str, ctx: CallContext, params: Mapping[str, Any]) -> TaskSnapshot:
        self.actions.append((upstream_id, action, dict(params)))
        return TaskSnapshot(upstream_id="1002", status="queued")


async def test_actions_start_a_new_task_on_the_same_provider(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    buttons = ButtonsProvider()
    media = Media(transport=transport, clock=clock, providers={"mj": buttons}, routes={"mj": [("mj", "midjourney")]})
    task = await media.tasks.create(model="mj", prompt="a castle")
    assert task.actions == ("MJ::JOB::upsample::1::abc",)
    follow_up = await media.tasks.action(task.id, action="MJ::JOB::upsample::1::abc", mask="m")
    assert buttons.actions == [("1001", "MJ::JOB::upsample::1::abc", {"mask": "m"})]
    assert (follow_up.provider, follow_up.upstream_id, follow_up.status) == ("mj", "1002", "queued")
    assert follow_up.id != task.id and decode_task_id(follow_up.id).requested_model == "mj"
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.action(task.id, action="")
    assert info.value.path == "action"


async def test_providers_without_actions_refuse_them(
    transport: Transport, clock: FakeClock, flux: FluxUpstream, replicate: ReplicateUpstream
) -> None:
    media = media_for(transport, clock, flux, replicate)
    task = await media.tasks.create(model="flux", prompt="a")
    with pytest.raises(UnsupportedFeature) as info:
        await media.tasks.action(task.id, action="upscale")
    assert info.value.path == "action"
