"""The relay Runway provider (``type = "runway-relay"``): the reverse-engineered Runway web API Chinese relays
expose, as summarised in wire-video-audio-workflow.md §1.7 (``POST /runway/pro/generate`` / ``img2video``,
``POST /runway/feed``, the classic ``status "0"-"3"`` answer and CometAPI's new-api task wrapper)."""

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
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServerError,
    TaskFailed,
    UnsupportedFeature,
)
from polyrelay.testing._faults import Fault
from polyrelay.testing._runway import TINY_MP4
from polyrelay.testing._runway_relay import RunwayRelayOutcome, RunwayRelayUpstream
from polyrelay.transport import Transport
from polyrelay.types.media import Task, TaskRequest
from polyrelay_runway_relay import SPEC
from polyrelay_runway_relay._errors import envelope_error
from polyrelay_runway_relay._provider import RunwayRelayProvider, build_request
from polyrelay_runway_relay._wire import dump

KEY = "sk-relay0123456789abcdef0123456789abcdef"
IMAGE = "https://example.com/frames/start.jpg"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def upstream() -> AsyncIterator[RunwayRelayUpstream]:
    async with RunwayRelayUpstream(api_key=KEY) as server:
        yield server


def media_for(transport: Transport, clock: FakeClock, server: RunwayRelayUpstream) -> Media:
    return build_media(
        transport,
        clock,
        {"rr": (SPEC, settings("rr", "runway-relay", server.base_url, key=KEY))},
        {"runway": [("rr", "gen3")]},
    )


def req(**kw: Any) -> TaskRequest:
    kw.setdefault("prompt", "一只戴墨镜的泰迪熊在弹电吉他")
    return TaskRequest(model="runway", **kw)


# -- request translation (§1.7) ------------------------------------------------------------------------------------


def test_text_request_is_the_documented_shape() -> None:
    motion = {"x": 0, "y": 0, "z": 0, "r": 0, "bg_x_pan": 0, "bg_y_pan": 0}
    path, body, warnings = build_request(
        req(aspect_ratio="9:16", duration=10, params={"motion_vector": motion, "callback_url": "https://cb.example"}),
        "gen3",
    )
    assert path == "/runway/pro/generate" and warnings == ()
    assert dump(body) == {
        "prompt": "一只戴墨镜的泰迪熊在弹电吉他",
        "ratio": "9:16",
        "style": "cinematic",
        "model": "gen3",
        "callback_url": "https://cb.example",
        "options": {"seconds": 10, "motion_vector": motion},
    }


def test_image_request_uses_img2video_with_the_image_url() -> None:
    path, body, _ = build_request(req(images=(IMAGE,), size="1920x1080", duration=5, params={"style": "anime"}), "gen2")
    assert path == "/runway/pro/img2video"
    assert dump(body) == {
        "prompt": "一只戴墨镜的泰迪熊在弹电吉他",
        "ratio": "16:9",
        "style": "anime",
        "model": "gen2",
        "image": IMAGE,
        "options": {"seconds": 5},
    }


def test_seed_and_negative_prompt_are_dropped_with_warnings() -> None:
    _, body, warnings = build_request(req(seed=7, negative_prompt="blur"), "gen3")
    assert "seed" not in dump(body)
    assert sorted(w.setting or "" for w in warnings) == ["negative_prompt", "seed"]


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"aspect_ratio": "3:4"}, "aspect_ratio"),
        ({"size": "1000x700"}, "size"),
        ({"duration": 8}, "duration"),
        ({"images": ("data:image/png;base64,iVBORw0KGgo=",)}, "images[0]"),
        ({"images": (IMAGE, IMAGE)}, "images"),
        ({"params": {"motion_vector": 3}}, "params.motion_vector"),
        ({"kind": "image"}, "kind"),
        ({"n": 2}, "n"),
    ],
)
def test_bad_input_names_the_field(kw: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        build_request(req(**kw), "gen3")
    assert info.value.path == path


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        SPEC.factory(settings("rr", "runway-relay", "http://127.0.0.1:1", pol_interval=3), Transport())
    assert info.value.key == "providers.rr.pol_interval" and "poll_interval" in str(info.value)
    no_url = settings("rr", "runway-relay", "")
    with pytest.raises(ConfigError) as info:
        SPEC.factory(no_url, Transport())
    assert info.value.key == "providers.rr.base_url"
    assert SPEC.name == "runway-relay" and SPEC.default_base_url is None and SPEC.capabilities == {"tasks"}


# -- lifecycle over loopback ---------------------------------------------------------------------------------------


async def test_classic_lifecycle(transport: Transport, clock: FakeClock, upstream: RunwayRelayUpstream) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway", prompt="a teddy bear", images=IMAGE, aspect_ratio="16:9")
    assert (task.status, task.kind) == ("queued", "video")
    submit = upstream.requests[0]
    assert (submit.method, submit.path) == ("POST", "/runway/pro/img2video")
    assert submit.headers["Authorization"] == f"Bearer {KEY}"
    assert submit.json == {
        "prompt": "a teddy bear",
        "ratio": "16:9",
        "style": "cinematic",
        "model": "gen3",
        "image": IMAGE,
    }
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=600, on_progress=seen.append)
    assert [(t.status, t.raw_status) for t in seen] == [("queued", "0"), ("running", "1"), ("succeeded", "3")]
    assert [(r.path, r.json) for r in upstream.requests[1:]] == [("/runway/feed", {"task_id": task.upstream_id})] * 3
    assert clock.sleeps and all(5.0 <= s <= 6.0 for s in clock.sleeps)
    (artifact,) = done.outputs
    assert artifact.media_type == "video/mp4" and artifact.url is not None
    assert set(artifact.extra) == {"poster", "last_frame"}
    provider = media.providers["rr"]
    assert isinstance(provider, RunwayRelayProvider)
    assert await provider.download(artifact.url, media.make_ctx(media.resolve("runway")[0])) == TINY_MP4


async def test_failed_task_raises_task_failed_with_the_message(
    transport: Transport, clock: FakeClock, upstream: RunwayRelayUpstream
) -> None:
    upstream.push_outcome(RunwayRelayOutcome(state="failed", failure_msg="内容审核未通过"))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway", prompt="something")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=600)
    assert info.value.code == "generation_failed" and "内容审核未通过" in str(info.value)
    failed = await media.tasks.get(task.id)
    assert (failed.raw_status, failed.extra["refund"]) == ("2", "1")


async def test_comet_wrapper_flavour_tolerates_task_not_exist_right_after_submit(
    transport: Transport, clock: FakeClock
) -> None:
    async with RunwayRelayUpstream(
        api_key=KEY, flavor="comet", outcome=RunwayRelayOutcome(missing_polls=2, running_polls=1)
    ) as relay:
        media = media_for(transport, clock, relay)
        task = await media.tasks.create(model="runway", prompt="a teddy bear")
        assert relay.requests[0].path == "/runway/pro/generate"
        seen: list[Task] = []
        done = await media.tasks.wait(task.id, timeout=600, on_progress=seen.append)
        assert [(t.status, t.raw_status) for t in seen] == [
            ("queued", "task_not_exist"),
            ("queued", "QUEUED"),
            ("running", "IN_PROGRESS"),
            ("succeeded", "SUCCESS"),
        ]
        assert seen[2].progress == pytest.approx(0.4) and seen[2].extra["action"] == "TEXT_TO_VIDEO"
        (artifact,) = done.outputs
        assert artifact.url == f"{relay.origin}/delivery/{task.upstream_id}.mp4"


async def test_comet_failure_and_late_task_not_exist(transport: Transport, clock: FakeClock) -> None:
    now = [0.0]
    async with RunwayRelayUpstream(api_key=KEY, flavor="comet") as relay:
        relay.push_outcome(RunwayRelayOutcome(state="failed", failure_msg="INTERNAL.BAD_OUTPUT"))
        relay.push_outcome(RunwayRelayOutcome(missing_polls=5))
        media = media_for(transport, clock, relay)
        # The grace is measured on the provider's own (monotonic) clock.
        cfg = settings("rr", "runway-relay", relay.base_url, key=KEY)
        media.providers["rr"] = RunwayRelayProvider(cfg, transport, clock=lambda: now[0])
        failing = await media.tasks.create(model="runway", prompt="a teddy bear")
        with pytest.raises(TaskFailed) as info:
            await media.tasks.wait(failing.id, timeout=600)
        assert "INTERNAL.BAD_OUTPUT" in str(info.value)
        missing = await media.tasks.create(model="runway", prompt="a teddy bear")
        assert (await media.tasks.get(missing.id)).raw_status == "task_not_exist"
        now[0] += 11.0  # past the grace: task_not_exist is a real NotFound
        with pytest.raises(NotFound) as lost:
            await media.tasks.get(missing.id)
        assert lost.value.code == "task_not_exist"


async def test_transient_poll_503_is_retried(
    transport: Transport, clock: FakeClock, upstream: RunwayRelayUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway", prompt="a teddy bear")
    upstream.add_fault(Fault.status_code(503), times=2, path="/runway/feed")
    done = await media.tasks.wait(task.id, timeout=600)
    assert done.status == "succeeded"
    assert len(upstream.requests) == 1 + 2 + 3  # submit, two 503s, three feed answers


async def test_cancel_is_unsupported(transport: Transport, clock: FakeClock, upstream: RunwayRelayUpstream) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="runway", prompt="a teddy bear")
    with pytest.raises(UnsupportedFeature):
        await media.tasks.cancel(task.id)


async def test_bad_input_fails_before_any_request(
    transport: Transport, clock: FakeClock, upstream: RunwayRelayUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.create(model="runway", prompt="x", aspect_ratio="2:1")
    assert info.value.path == "aspect_ratio"
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.create(model="runway", prompt="x", duration=7)
    assert info.value.path == "duration" and upstream.requests == []


# -- errors --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"code": 401, "msg": f"无效的令牌 {KEY}"}, AuthenticationFailed),
        ({"code": 403, "msg": "该令牌无权使用此模型"}, PermissionDenied),
        ({"code": 429, "msg": "当前分组上游负载已饱和"}, RateLimited),
        ({"code": 500, "msg": "系统繁忙"}, ServerError),
        ({"code": 10001, "msg": "提示词包含敏感词"}, BadRequest),  # free text is never matched
        ({"code": "sensitive_words_detected", "message": "sensitive words"}, ContentPolicyViolation),
        ({"code": "insufficient_user_quota", "message": "quota"}, QuotaExceeded),
    ],
)
async def test_error_envelopes_inside_http_200_are_classified(
    transport: Transport,
    clock: FakeClock,
    upstream: RunwayRelayUpstream,
    body: dict[str, Any],
    error: type[Exception],
) -> None:
    upstream.add_fault(Fault.error_event(body=body), times=None)
    media = media_for(transport, clock, upstream)
    with pytest.raises(error) as info:
        await media.tasks.create(model="runway", prompt="a teddy bear")
    message = str(body.get("msg") or body.get("message")).removesuffix(f" {KEY}")
    assert type(info.value) is error and message in str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(info.value)


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationFailed), (429, RateLimited)])
async def test_http_errors_are_classified_by_status(
    transport: Transport, clock: FakeClock, upstream: RunwayRelayUpstream, status: int, error: type[Exception]
) -> None:
    upstream.add_fault(Fault.status_code(status, body={"code": status, "msg": f"nope {KEY}"}), times=None)
    media = media_for(transport, clock, upstream)
    with pytest.raises(error) as info:
        await media.tasks.create(model="runway", prompt="a teddy bear")
    assert "nope" in str(info.value) and KEY not in str(info.value) and KEY not in repr(info.value)


async def test_wrong_key_is_an_authentication_error_without_the_key(
    transport: Transport, clock: FakeClock, upstream: RunwayRelayUpstream
) -> None:
    wrong = "sk-wrong0123456789abcdef0123456789abcd"
    media = build_media(
        transport, clock, {"rr": (SPEC, settings("rr", "runway-relay", upstream.base_url, key=wrong))}, {}
    )
    provider = media.providers["rr"]
    with pytest.raises(AuthenticationFailed) as info:
        await media.tasks.create(model="rr/gen3", prompt="a teddy bear")
    assert wrong not in str(info.value) and wrong not in repr(info.value) and wrong not in repr(provider)


def test_string_envelope_codes_use_the_core_table() -> None:
    err = envelope_error({"code": "invalid_api_key", "message": "bad"}, status=200, provider="rr")
    assert isinstance(err, AuthenticationFailed) and (err.code, err.status) == ("invalid_api_key", 401)
