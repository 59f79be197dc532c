"""The Runway provider: request translation, task states, failure codes, and the lifecycle over loopback.

Wire references: runwayml/sdk-python (``src/runwayml/types/*_create_params.py``, ``task_retrieve_response.py``,
``lib/polling.py``), https://docs.dev.runwayml.com/api-details/errors and /errors/task-failures, as summarised in
wire-video-audio-workflow.md §1 (1.1 headers, 1.2 endpoints, 1.3 bodies, 1.4 task object, 1.5 errors, 1.6 polling).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from media_harness import FakeClock, Media, build_media, open_transport, settings

from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    ContentPolicyViolation,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    TaskFailed,
    TaskTimeout,
    UnsupportedFeature,
    UpstreamStatusError,
)
from polyrelay.testing._faults import Fault
from polyrelay.testing._runway import TINY_MP4, RunwayOutcome, RunwayUpstream
from polyrelay.transport import Transport
from polyrelay.types.chat import ChatRequest, Message
from polyrelay.types.media import Task, TaskRequest
from polyrelay_runway import SPEC
from polyrelay_runway._errors import STATUS_MAP, classify_failure, failure_error
from polyrelay_runway._provider import RunwayProvider
from polyrelay_runway._request import build_call, select_endpoint
from polyrelay_runway._wire import CreateTaskBody, TaskObject, converter, dump, parse

KEY = "key_" + "0123456789abcdef" * 8  # the documented key shape: key_ + 128 hex characters
IMAGE = "https://example.com/assets/bunny.jpg"
IMAGE_2 = "https://example.com/assets/bunny-end.jpg"
VIDEO = "https://example.com/assets/clip.mp4"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def upstream() -> AsyncIterator[RunwayUpstream]:
    async with RunwayUpstream(api_key=KEY) as server:
        yield server


def media_for(transport: Transport, clock: FakeClock, server: RunwayUpstream, **options: Any) -> Media:
    return build_media(
        transport,
        clock,
        {"rw": (SPEC, settings("rw", "runway", server.base_url, key=KEY, **options))},
        {"runway-video": [("rw", "gen4_turbo")], "runway-image": [("rw", "gen4_image")]},
    )


def body_of(model: str, **kw: Any) -> tuple[str, dict[str, Any]]:
    kw.setdefault("prompt", "A bunny hops through a meadow")
    call = build_call(TaskRequest(model="runway", **kw), model)
    return call.endpoint, dump(call.body)


# -- request translation (§1.2, §1.3) ------------------------------------------------------------------------------


def test_image_to_video_body_is_the_documented_shape() -> None:
    # §1.3: {"model", "promptImage": url, "promptText", "ratio": "1280:720", "duration": 5|10, "seed"}
    endpoint, body = body_of("gen4_turbo", images=(IMAGE,), size="1280x720", duration=5, seed=42)
    assert endpoint == "image_to_video"
    assert body == {
        "model": "gen4_turbo",
        "promptText": "A bunny hops through a meadow",
        "promptImage": IMAGE,
        "ratio": "1280:720",
        "duration": 5,
        "seed": 42,
    }


def test_two_images_become_first_and_last_keyframes() -> None:
    # §1.3: promptImage as [{"uri", "position": "first"}, {"uri", "position": "last"}] (gen3a_turbo)
    _, body = body_of("gen3a_turbo", images=(IMAGE, IMAGE_2), params={"ratio": "1280:768"})
    assert body["promptImage"] == [{"uri": IMAGE, "position": "first"}, {"uri": IMAGE_2, "position": "last"}]
    assert body["ratio"] == "1280:768"


def test_text_to_image_takes_reference_images_with_tags_and_an_image_ratio() -> None:
    # §1.3: {model: "gen4_image", promptText, ratio "1920:1080", referenceImages: [{uri, tag}]}
    endpoint, body = body_of("gen4_image", images=(IMAGE,), aspect_ratio="16:9", params={"reference_tags": ["bunny"]})
    assert endpoint == "text_to_image"
    assert body == {
        "model": "gen4_image",
        "promptText": "A bunny hops through a meadow",
        "referenceImages": [{"uri": IMAGE, "tag": "bunny"}],
        "ratio": "1920:1080",
    }


def test_video_to_video_upscale_and_act_two_bodies() -> None:
    endpoint, body = body_of("gen4_aleph", params={"video": VIDEO}, images=(IMAGE,), aspect_ratio="16:9")
    assert endpoint == "video_to_video"
    assert body == {
        "model": "gen4_aleph",
        "promptText": "A bunny hops through a meadow",
        "videoUri": VIDEO,
        "references": [{"type": "image", "uri": IMAGE}],
        "ratio": "1280:720",
    }
    assert body_of("upscale_v1", params={"video": VIDEO}) == (
        "video_upscale",
        {"model": "upscale_v1", "videoUri": VIDEO},
    )
    endpoint, body = body_of("act_two", images=(IMAGE,), params={"reference_video": VIDEO, "body_control": True})
    assert endpoint == "character_performance"
    assert body == {
        "model": "act_two",
        "character": {"type": "image", "uri": IMAGE},
        "reference": {"type": "video", "uri": VIDEO},
        "bodyControl": True,
    }


def test_audio_endpoints() -> None:
    # sound_effect_create_params.py: {model: "eleven_text_to_sound_v2", promptText, duration (float), loop}
    assert body_of("eleven_text_to_sound_v2", prompt="rain on a tin roof", duration=2.5, params={"loop": True}) == (
        "sound_effect",
        {"model": "eleven_text_to_sound_v2", "promptText": "rain on a tin roof", "duration": 2.5, "loop": True},
    )
    # text_to_speech_create_params.py: voice {"type": "runway-preset", "presetId": "Maya"}
    assert body_of("eleven_multilingual_v2", prompt="Hello!", params={"voice": "Maya"}) == (
        "text_to_speech",
        {
            "model": "eleven_multilingual_v2",
            "promptText": "Hello!",
            "voice": {"presetId": "Maya", "type": "runway-preset"},
        },
    )


@pytest.mark.parametrize(
    ("model", "kw", "endpoint"),
    [
        ("gen4_turbo", {"images": (IMAGE,)}, "image_to_video"),
        ("gen4.5", {}, "text_to_video"),
        ("veo3.1", {"kind": "video"}, "text_to_video"),
        ("gen4.5", {"params": {"video": VIDEO}}, "video_to_video"),
        ("gen4_image_turbo", {}, "text_to_image"),
        ("some_new_image_model", {"kind": "image"}, "text_to_image"),
        ("some_new_audio_model", {"kind": "audio"}, "sound_effect"),
        ("some_new_audio_model", {"kind": "audio", "params": {"voice": "Maya"}}, "text_to_speech"),
        ("gen4_turbo", {"params": {"task": "video_upscale"}}, "video_upscale"),
    ],
)
def test_endpoint_selection(model: str, kw: dict[str, Any], endpoint: str) -> None:
    assert select_endpoint(TaskRequest(model="runway", prompt="x", **kw), model) == endpoint


def test_unknown_params_are_camel_cased_and_unsupported_settings_warn() -> None:
    call = build_call(
        TaskRequest(
            model="runway",
            prompt="a cat",
            negative_prompt="blur",
            params={"content_moderation": {"public_figure_threshold": "low"}},
        ),
        "gen4_image",
    )
    assert dump(call.body)["contentModeration"] == {"public_figure_threshold": "low"}
    assert "negativePrompt" not in dump(call.body)
    assert [w.setting for w in call.warnings] == ["negative_prompt"]


@pytest.mark.parametrize(
    ("model", "kw", "path"),
    [
        ("gen4_turbo", {"images": (IMAGE,), "n": 2}, "n"),
        ("gen4_turbo", {"images": (IMAGE,), "aspect_ratio": "5:4"}, "aspect_ratio"),
        ("gen4_turbo", {"images": (IMAGE,), "duration": 5.5}, "duration"),
        ("gen4_turbo", {"images": (IMAGE,), "seed": 2**32}, "seed"),
        ("gen4_turbo", {"images": (IMAGE, IMAGE, IMAGE)}, "images"),
        ("gen4_aleph", {}, "params.video"),
        ("act_two", {"images": (IMAGE,)}, "params.reference_video"),
        ("gen4_image", {"kind": "video"}, "kind"),
        ("gen4_turbo", {"params": {"task": "lip_sync"}}, "params.task"),
        ("eleven_multilingual_v2", {"params": {"voice": 3}}, "params.voice"),
    ],
)
def test_bad_input_names_the_field(model: str, kw: dict[str, Any], path: str) -> None:
    kw.setdefault("prompt", "x")
    with pytest.raises(InvalidRequest) as info:
        build_call(TaskRequest(model="runway", **kw), model)
    assert info.value.path == path
    if path == "n":
        assert isinstance(info.value, UnsupportedFeature)


def test_create_body_round_trips_through_the_converter() -> None:
    _, body = body_of("gen3a_turbo", images=(IMAGE, IMAGE_2), duration=10, params={"watermark": False})
    assert dump(converter().structure(body, CreateTaskBody)) == body


# -- task objects, statuses and failure codes (§1.4, §1.8) ---------------------------------------------------------


def test_the_documented_succeeded_task_parses() -> None:
    # §1.4 / litellm's docstring sample: ISO createdAt with ms, output URLs on cloudfront with a _jwt query.
    task = parse(
        {
            "id": "17f20503-6c24-4c16-946b-35dbbce2af2f",
            "status": "SUCCEEDED",
            "createdAt": "2025-11-11T21:48:50.448Z",
            "output": ["https://dnznrvs05pmza.cloudfront.net/abc.mp4?_jwt=eyJhbGciOi"],
        },
        TaskObject,
        provider="rw",
        what="task",
    )
    assert (task.status, task.created_at, task.output) == (
        "SUCCEEDED",
        "2025-11-11T21:48:50.448Z",
        ("https://dnznrvs05pmza.cloudfront.net/abc.mp4?_jwt=eyJhbGciOi",),
    )


def test_statuses_map_throttled_to_queued() -> None:
    assert dict(STATUS_MAP) == {
        "PENDING": "queued",
        "THROTTLED": "queued",
        "RUNNING": "running",
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "CANCELLED": "canceled",
    }


@pytest.mark.parametrize(
    ("failure_code", "code", "error", "retryable"),
    [
        ("SAFETY.INPUT.TEXT", "content_policy_violation", ContentPolicyViolation, False),
        ("SAFETY.OUTPUT.VIDEO", "content_policy_violation", ContentPolicyViolation, False),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", "content_policy_violation", ContentPolicyViolation, False),
        ("INTERNAL.BAD_OUTPUT.CODE01", "bad_output", ServerError, True),
        ("INTERNAL", "internal_error", ServerError, True),
        ("INPUT_PREPROCESSING.INTERNAL", "internal_error", ServerError, True),
        ("ASSET.INVALID", "invalid_input", BadRequest, False),
        ("SOMETHING.NEW", "task_failed", UpstreamStatusError, False),
        (None, "task_failed", UpstreamStatusError, False),
    ],
)
def test_failure_codes_map_onto_the_error_tree(
    failure_code: str | None, code: str, error: type[UpstreamStatusError], retryable: bool
) -> None:
    failure = classify_failure(failure_code)
    assert (failure.code, failure.error, failure.retryable) == (code, error, retryable)
    exc = failure_error("it failed", failure_code, provider="rw")
    assert type(exc) is error and exc.retryable is retryable and exc.provider == "rw"


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        SPEC.factory(settings("rw", "runway", "http://127.0.0.1:1/v1", versoin="2024-11-06"), Transport())
    assert info.value.key == "providers.rw.versoin" and "version" in str(info.value)
    with pytest.raises(ConfigError) as info:
        SPEC.factory(settings("rw", "runway", "http://127.0.0.1:1/v1", version="latest"), Transport())
    assert info.value.key == "providers.rw.version"


# -- lifecycle over loopback ---------------------------------------------------------------------------------------


async def test_submit_progress_and_success(transport: Transport, clock: FakeClock, upstream: RunwayUpstream) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE, aspect_ratio="16:9")
    assert (task.status, task.kind, task.raw_status) == ("queued", "video", "PENDING")
    submit = upstream.requests[0]
    assert (submit.method, submit.path) == ("POST", "/v1/image_to_video")
    assert submit.headers["Authorization"] == f"Bearer {KEY}"
    assert submit.headers["X-Runway-Version"] == "2024-11-06"
    assert submit.json == {"model": "gen4_turbo", "promptText": "a bunny", "promptImage": IMAGE, "ratio": "1280:720"}
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=600, on_progress=seen.append)
    assert [(t.status, t.progress) for t in seen] == [
        ("queued", None),
        ("running", 0.25),
        ("running", 0.5),
        ("running", 0.75),
        ("succeeded", 1.0),
    ]
    assert all(r.path == f"/v1/tasks/{task.upstream_id}" for r in upstream.requests[1:])
    assert all(r.headers["X-Runway-Version"] == "2024-11-06" for r in upstream.requests)
    assert clock.sleeps and all(5.0 <= s <= 6.0 for s in clock.sleeps)  # 5 s cadence plus up to 20 % jitter
    (artifact,) = done.outputs
    assert artifact.media_type == "video/mp4" and (artifact.url or "").startswith(upstream.origin)
    provider = media.providers["rw"]
    assert isinstance(provider, RunwayProvider)
    assert await provider.download(artifact.url or "", media.make_ctx(media.resolve("runway-video")[0])) == TINY_MP4


async def test_throttled_is_queued_and_text_to_image_yields_an_image(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    upstream.push_outcome(RunwayOutcome(pending_polls=0, throttled_polls=2, running_polls=1))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway-image", prompt="a red square", aspect_ratio="1:1")
    assert upstream.requests[0].path == "/v1/text_to_image" and task.kind == "image"
    first = await media.tasks.get(task.id)
    assert (first.status, first.raw_status, first.extra.get("throttled")) == ("queued", "THROTTLED", True)
    done = await media.tasks.wait(task.id, timeout=600)
    assert done.outputs[0].media_type == "image/png"


async def test_safety_failure_raises_task_failed_with_the_content_policy_code(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    upstream.push_outcome(RunwayOutcome(status="FAILED", running_polls=1))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway-video", prompt="something forbidden", images=IMAGE)
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=600)
    assert info.value.code == "content_policy_violation" and info.value.task_id == task.id
    assert "flagged by our content moderation" in str(info.value) and "SAFETY.INPUT.TEXT" in str(info.value)
    failed = await media.tasks.get(task.id)
    assert failed.extra["failure_code"] == "SAFETY.INPUT.TEXT" and failed.extra["retryable"] is False


async def test_internal_failure_is_marked_retryable(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    upstream.push_outcome(
        RunwayOutcome(
            status="FAILED", failure="An unexpected error occurred.", failure_code="INTERNAL.BAD_OUTPUT.CODE01"
        )
    )
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE)
    failed = [t async for t in media.tasks.watch(task.id, timeout=600)][-1]
    assert failed.status == "failed" and failed.error is not None
    assert (failed.error.code, failed.extra["retryable"]) == ("bad_output", True)


async def test_cancel_deletes_the_task(transport: Transport, clock: FakeClock, upstream: RunwayUpstream) -> None:
    upstream.push_outcome(RunwayOutcome(running_polls=100))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE)
    assert (await media.tasks.get(task.id)).status == "queued"
    canceled = await media.tasks.cancel(task.id)
    assert (canceled.status, canceled.raw_status) == ("canceled", "CANCELLED")
    delete = upstream.requests[-1]
    assert (delete.method, delete.path) == ("DELETE", f"/v1/tasks/{task.upstream_id}")
    assert delete.headers["X-Runway-Version"] == "2024-11-06"
    assert (await media.tasks.get(task.id)).status == "canceled"
    await media.tasks.cancel(task.id)  # deleting the finished task
    with pytest.raises(NotFound):
        await media.tasks.get(task.id)


async def test_timeout_raises_task_timeout_and_the_task_lives_on(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    upstream.push_outcome(RunwayOutcome(running_polls=1000))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE)
    with pytest.raises(TaskTimeout) as info:
        await media.tasks.wait(task.id, timeout=30)
    assert info.value.task_id == task.id
    assert (await media.tasks.get(task.id)).status == "running"


async def test_transient_poll_errors_are_retried_without_losing_the_task(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE)
    upstream.add_fault(Fault.status_code(502), times=1)
    upstream.add_fault(Fault.reset(), times=1)
    upstream.add_fault(Fault.status_code(503), times=1)
    done = await media.tasks.wait(task.id, timeout=600)
    assert done.status == "succeeded"
    assert len(upstream.requests) == 1 + 3 + 5  # submit, three failed polls, the task's five polls


async def test_submit_retries_a_429_and_honours_retry_after(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    upstream.add_fault(Fault.status_code(429, retry_after=3))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE)
    assert task.status == "queued" and len(upstream.tasks) == 1
    assert clock.sleeps[0] >= 3.0


async def test_validation_errors_name_the_field(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    upstream.add_fault(
        Fault.status_code(
            400,
            body={
                "error": "Validation of body failed",
                "issues": [{"path": ["ratio"], "message": "Invalid enum value"}],
            },
        )
    )
    media = media_for(transport, clock, upstream)
    with pytest.raises(BadRequest) as info:
        await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE)
    assert "ratio: Invalid enum value" in str(info.value) and info.value.status == 400


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationFailed), (404, NotFound), (429, RateLimited)])
async def test_http_errors_are_classified(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream, status: int, error: type[Exception]
) -> None:
    upstream.add_fault(Fault.status_code(status), times=None)
    media = media_for(transport, clock, upstream)
    with pytest.raises(error):
        await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE)


async def test_the_key_never_appears_in_errors_or_reprs(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    upstream.add_fault(Fault.status_code(401, body={"error": f"Invalid API key {KEY}"}))
    media = media_for(transport, clock, upstream)
    with pytest.raises(AuthenticationFailed) as info:
        await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE)
    for text in (str(info.value), repr(info.value), repr(media.providers["rw"]), repr(upstream.requests[0])):
        assert KEY not in text and KEY[:12] not in text


async def test_bad_input_fails_before_any_request(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.create(model="runway-video", prompt="a bunny", images=IMAGE, duration=4.5)
    assert info.value.path == "duration"
    assert upstream.requests == []


async def test_chat_bridge_streams_progress_lines_and_the_video_link(
    transport: Transport, clock: FakeClock, upstream: RunwayUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    request = ChatRequest(
        model="runway-video",
        messages=(Message(role="user", content="a bunny hops"),),
        stream=True,
        extra={"aspect_ratio": "16:9", "task": "text_to_video"},
    )
    pieces = [c.choices[0].delta.content for c in [chunk async for chunk in media.bridge.stream(request)] if c.choices]
    text = [p for p in pieces if p]
    assert text[0].startswith("task_id: task_")
    assert text[1:] == [
        "status: queued\n",
        "status: running 25%\n",
        "status: running 50%\n",
        "status: running 75%\n",
        "status: succeeded\n",
        f"\n[video]({next(iter(upstream.tasks.values())).output[0]})\n",  # type: ignore[index]
    ]
    assert upstream.requests[0].path == "/v1/text_to_video"
    assert upstream.requests[0].json == {"model": "gen4_turbo", "promptText": "a bunny hops", "ratio": "1280:720"}
