"""The Luma provider (official Dream Machine API and the relay format): translation, states, lifecycle.

Wire references: lumalabs/lumaai-api ``openapi.yaml`` (Generation, error ``{"detail": ...}``), lumalabs/lumaai-python
``resources/generations/*.py``, https://docs.lumalabs.ai/docs/api, as summarised in wire-video-audio-workflow.md §2
(2.2 endpoints, 2.3 video/image requests, 2.4 Generation object, 2.5 errors, 2.6 relay format, 2.7 mapping).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from media_harness import FakeClock, Media, build_media, open_transport, settings

from polyrelay.errors import (
    AuthenticationFailed,
    ConfigError,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    TaskFailed,
    TaskTimeout,
    UnsupportedFeature,
)
from polyrelay.testing._faults import Fault
from polyrelay.testing._luma import LumaOutcome, LumaRelayUpstream, LumaUpstream
from polyrelay.testing._runway import TINY_MP4
from polyrelay.transport import Transport
from polyrelay.types.media import Task, TaskRequest
from polyrelay_luma import SPEC
from polyrelay_luma._errors import RELAY_STATUS_MAP, STATUS_MAP
from polyrelay_luma._provider import LumaProvider
from polyrelay_luma._request import build_call, build_relay_call
from polyrelay_luma._wire import Generation, VideoRequest, converter, dump, parse

KEY = "luma-0123456789abcdef0123456789abcdef"
START = "https://example.com/frames/start.jpg"
END = "https://example.com/frames/end.jpg"
GENERATION_ID = "d1968551-6113-4b46-b567-09210c2e79b0"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def upstream() -> AsyncIterator[LumaUpstream]:
    async with LumaUpstream(api_key=KEY) as server:
        yield server


def media_for(transport: Transport, clock: FakeClock, server: LumaUpstream, **options: Any) -> Media:
    return build_media(
        transport,
        clock,
        {"luma": (SPEC, settings("luma", "luma", server.base_url, key=KEY, **options))},
        {"ray": [("luma", "ray-2")], "photon": [("luma", "photon-1")]},
    )


def req(**kw: Any) -> TaskRequest:
    kw.setdefault("prompt", "A teddy bear in sunglasses playing electric guitar")
    return TaskRequest(model="ray", **kw)


# -- request translation (§2.3) ------------------------------------------------------------------------------------


def test_video_request_is_the_documented_shape() -> None:
    # §2.3: model, prompt, aspect_ratio, loop, duration "5s", resolution, keyframes frame0 image / frame1 generation.
    call = build_call(
        req(
            aspect_ratio="16:9",
            duration=5,
            images=(START,),
            params={"loop": False, "resolution": "720p", "frame1": GENERATION_ID},
        ),
        "ray-2",
    )
    assert call.path == "/generations/video" and call.kind == "video"
    assert dump(call.body) == {
        "model": "ray-2",
        "prompt": "A teddy bear in sunglasses playing electric guitar",
        "aspect_ratio": "16:9",
        "duration": "5s",
        "keyframes": {
            "frame0": {"type": "image", "url": START},
            "frame1": {"type": "generation", "id": GENERATION_ID},
        },
        "loop": False,
        "resolution": "720p",
    }


def test_two_images_are_start_and_end_frames_and_concepts_become_keys() -> None:
    call = build_call(req(images=(START, END), params={"concepts": ["dolly_zoom"]}), "ray-flash-2")
    body = dump(call.body)
    assert body["keyframes"] == {"frame0": {"type": "image", "url": START}, "frame1": {"type": "image", "url": END}}
    assert body["concepts"] == [{"key": "dolly_zoom"}]


def test_size_is_reduced_to_an_aspect_ratio() -> None:
    assert dump(build_call(req(size="1920x1080"), "ray-2").body)["aspect_ratio"] == "16:9"


def test_photon_models_make_images_with_image_refs() -> None:
    call = build_call(req(images=(START,), aspect_ratio="1:1", params={"image_weight": 0.8}), "photon-1")
    assert (call.path, call.kind) == ("/generations/image", "image")
    assert dump(call.body) == {
        "model": "photon-1",
        "prompt": "A teddy bear in sunglasses playing electric guitar",
        "aspect_ratio": "1:1",
        "image_ref": [{"url": START, "weight": 0.8}],
    }


def test_seed_and_negative_prompt_are_dropped_with_warnings() -> None:
    call = build_call(req(seed=7, negative_prompt="blur"), "ray-2")
    assert "seed" not in dump(call.body)
    assert sorted(w.setting or "" for w in call.warnings) == ["negative_prompt", "seed"]


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"images": ("data:image/png;base64,iVBORw0KGgo=",)}, "images[0]"),
        ({"images": (START, END, START)}, "images"),
        ({"aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"size": "1000x1000", "aspect_ratio": "16:9"}, "size"),
        ({"size": "1000x700"}, "size"),
        ({"duration": 4.5}, "duration"),
        ({"n": 2}, "n"),
        ({"params": {"frame0": 5}}, "params.frame0"),
        ({"params": {"concepts": [3]}}, "params.concepts"),
        ({"kind": "audio"}, "kind"),
    ],
)
def test_bad_input_names_the_field(kw: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        build_call(req(**kw), "ray-2")
    assert info.value.path == path


def test_the_documented_generation_parses_and_round_trips() -> None:
    # §2.4 Generation object.
    data = {
        "id": GENERATION_ID,
        "generation_type": "video",
        "state": "completed",
        "failure_reason": None,
        "created_at": "2023-06-01T12:00:00Z",
        "assets": {"video": "https://storage.cdn-luma.com/dream_machine/abc/video.mp4"},
        "model": "ray-2",
        "request": {"prompt": "A teddy bear", "model": "ray-2"},
    }
    generation = parse(data, Generation, provider="luma", what="generation")
    assert generation.assets is not None and generation.assets.video is not None
    assert converter().unstructure(generation) == data
    body = dump(build_call(req(images=(START,)), "ray-2").body)
    assert dump(converter().structure(body, VideoRequest)) == body


def test_state_tables() -> None:
    assert dict(STATUS_MAP) == {"queued": "queued", "dreaming": "running", "completed": "succeeded", "failed": "failed"}
    assert dict(RELAY_STATUS_MAP) == {
        "pending": "queued",
        "processing": "running",
        "completed": "succeeded",
        "failed": "failed",
    }


def test_relay_request_uses_the_web_app_fields() -> None:
    # §2.6: {user_prompt, expand_prompt, aspect_ratio, loop, image_url, image_end_url, notify_hook, model_name, ...}
    call = build_relay_call(
        req(images=(START, "data:image/png;base64,iVBORw0KGgo="), params={"expand_prompt": True}, aspect_ratio="16:9"),
        "ray-v2",
    )
    assert call.path == "/generations"
    assert dump(call.body) == {
        "user_prompt": "A teddy bear in sunglasses playing electric guitar",
        "aspect_ratio": "16:9",
        "image_url": START,
        "image_end_url": "data:image/png;base64,iVBORw0KGgo=",
        "model_name": "ray-v2",
        "expand_prompt": True,
    }


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        SPEC.factory(settings("luma", "luma", "http://127.0.0.1:1", format="reverse"), Transport())
    assert info.value.key == "providers.luma.format"
    with pytest.raises(ConfigError) as info:
        SPEC.factory(settings("luma", "luma", "http://127.0.0.1:1", pol_interval=3), Transport())
    assert info.value.key == "providers.luma.pol_interval" and "poll_interval" in str(info.value)


# -- lifecycle over loopback ---------------------------------------------------------------------------------------


async def test_video_generation_lifecycle(transport: Transport, clock: FakeClock, upstream: LumaUpstream) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="ray", prompt="a teddy bear", images=START, duration=5)
    assert (task.status, task.kind, task.raw_status) == ("queued", "video", "queued")
    submit = upstream.requests[0]
    assert (submit.method, submit.path) == ("POST", "/dream-machine/v1/generations/video")
    assert submit.headers["Authorization"] == f"Bearer {KEY}"
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=600, on_progress=seen.append)
    assert [(t.status, t.raw_status) for t in seen] == [
        ("queued", "queued"),
        ("running", "dreaming"),
        ("succeeded", "completed"),
    ]
    assert [r.path for r in upstream.requests[1:]] == [f"/dream-machine/v1/generations/{task.upstream_id}"] * 4
    assert all(5.0 <= s <= 6.0 for s in clock.sleeps)
    (artifact,) = done.outputs
    assert artifact.media_type == "video/mp4"
    provider = media.providers["luma"]
    assert isinstance(provider, LumaProvider)
    assert await provider.download(artifact.url or "", media.make_ctx(media.resolve("ray")[0])) == TINY_MP4


async def test_progress_video_is_exposed_while_dreaming(
    transport: Transport, clock: FakeClock, upstream: LumaUpstream
) -> None:
    upstream.push_outcome(LumaOutcome(running_polls=3))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="ray", prompt="a teddy bear")
    polls = [await media.tasks.get(task.id) for _ in range(3)]
    assert [p.raw_status for p in polls] == ["queued", "dreaming", "dreaming"]
    assert "progress_video" not in polls[1].extra and polls[2].extra["progress_video"].endswith("-progress.mp4")


async def test_image_generation(transport: Transport, clock: FakeClock, upstream: LumaUpstream) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="photon", prompt="a teddy bear", aspect_ratio="3:4")
    assert upstream.requests[0].path == "/dream-machine/v1/generations/image" and task.kind == "image"
    done = await media.tasks.wait(task.id, timeout=600)
    assert done.outputs[0].media_type == "image/jpeg"


async def test_failed_generation_raises_task_failed_with_the_reason(
    transport: Transport, clock: FakeClock, upstream: LumaUpstream
) -> None:
    upstream.push_outcome(LumaOutcome(state="failed"))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="ray", prompt="something")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=600)
    assert info.value.code == "generation_failed" and "advanced moderation failed" in str(info.value)


async def test_cancel_deletes_the_generation(transport: Transport, clock: FakeClock, upstream: LumaUpstream) -> None:
    upstream.push_outcome(LumaOutcome(running_polls=50))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="ray", prompt="a teddy bear")
    canceled = await media.tasks.cancel(task.id)
    assert canceled.status == "canceled"
    assert (upstream.requests[-1].method, upstream.requests[-1].path) == (
        "DELETE",
        f"/dream-machine/v1/generations/{task.upstream_id}",
    )
    with pytest.raises(NotFound):
        await media.tasks.get(task.id)


async def test_timeout_and_transient_poll_errors(
    transport: Transport, clock: FakeClock, upstream: LumaUpstream
) -> None:
    upstream.push_outcome(LumaOutcome(running_polls=500))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="ray", prompt="a teddy bear")
    upstream.add_fault(Fault.status_code(503), times=2)
    upstream.add_fault(Fault.truncate(), times=1)
    with pytest.raises(TaskTimeout):
        await media.tasks.wait(task.id, timeout=60)
    assert (await media.tasks.get(task.id)).status == "running"  # still there after the errors and the timeout


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationFailed), (429, RateLimited), (503, Overloaded)])
async def test_http_errors_are_classified_with_the_detail_message(
    transport: Transport, clock: FakeClock, upstream: LumaUpstream, status: int, error: type[Exception]
) -> None:
    upstream.add_fault(Fault.status_code(status, body={"detail": f"nope {KEY}"}), times=None)
    media = media_for(transport, clock, upstream)
    with pytest.raises(error) as info:
        await media.tasks.create(model="ray", prompt="a teddy bear")
    assert "nope" in str(info.value) and KEY not in str(info.value) and KEY not in repr(info.value)


async def test_bad_input_fails_before_any_request(
    transport: Transport, clock: FakeClock, upstream: LumaUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.create(model="ray", prompt="x", images="data:image/png;base64,iVBORw0KGgo=")
    assert info.value.path == "images[0]" and upstream.requests == []


async def test_relay_format_lifecycle(transport: Transport, clock: FakeClock) -> None:
    async with LumaRelayUpstream(api_key=KEY) as relay:
        media = build_media(
            transport,
            clock,
            {"lr": (SPEC, settings("lr", "luma", relay.base_url, key=KEY, format="relay"))},
            {"luma-relay": [("lr", "ray-v2")]},
        )
        task = await media.tasks.create(model="luma-relay", prompt="a teddy bear", images=START)
        assert (task.status, task.raw_status) == ("queued", "pending")
        assert (relay.requests[0].path, relay.requests[0].json) == (
            "/luma/generations",
            {"user_prompt": "a teddy bear", "image_url": START, "model_name": "ray-v2"},
        )
        done = await media.tasks.wait(task.id, timeout=600)
        (artifact,) = done.outputs
        assert (artifact.width, artifact.height, artifact.media_type) == (1360, 752, "video/mp4")
        assert relay.requests[-1].path == f"/luma/generations/{task.upstream_id}"
        with pytest.raises(UnsupportedFeature):
            await media.tasks.cancel(task.id)
