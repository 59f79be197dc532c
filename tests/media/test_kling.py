"""The Kling provider: the HS256 JWT, request translation, the error-code table and the lifecycle over loopback.

Wire references: Kling's official API doc copies (WHQ25/rawgenai ``docs/research/kling/common-info.md``,
``text-to-video.md``, ``image-to-video.md``, ``image-generation.md``; inference-sh/grid ``api/klingai/docs``) and
QuantumNous/new-api ``relay/channel/task/kling/adaptor.go``, as summarised in wire-video-audio-workflow.md §3
(3.1 hosts and JWT, 3.2 envelope, 3.3 endpoints, 3.5 error codes, 3.7 mapping).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from media_harness import FakeClock, Media, build_media, open_transport, settings

from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    ContentPolicyViolation,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Secret,
    ServerError,
    TaskFailed,
    TaskTimeout,
    UnsupportedFeature,
    UpstreamStatusError,
)
from polyrelay.provider import CallContext
from polyrelay.testing._faults import Fault
from polyrelay.testing._kling import KlingOutcome, KlingUpstream
from polyrelay.testing._runway import TINY_MP4
from polyrelay.transport import Timeouts, Transport
from polyrelay.types.media import Task, TaskRequest
from polyrelay_kling import SPEC
from polyrelay_kling._errors import KLING_CODES, STATUS_MAP, error_for_code
from polyrelay_kling._jwt import KlingToken
from polyrelay_kling._provider import KlingProvider, build
from polyrelay_kling._request import build_call
from polyrelay_kling._wire import Envelope, TaskData, dump, parse

AK = "AFyHE9bF8Kg7nTLm3A5TYFJh9Ra8cFHD"
SK = "bYg7m3eJkA9e4HnCFaPrT3TkrbMeDdQy"
START = "https://example.com/frames/start.png"
END = "https://example.com/frames/end.png"
T0 = 1_722_769_557


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def upstream() -> AsyncIterator[KlingUpstream]:
    async with KlingUpstream(access_key=AK, secret_key=SK) as server:
        yield server


def media_for(transport: Transport, clock: FakeClock, server: KlingUpstream) -> Media:
    cfg = settings("kl", "kling", server.base_url, key=None, access_key=AK, secret_key=Secret(SK))
    return build_media(
        transport, clock, {"kl": (SPEC, cfg)}, {"kling": [("kl", "kling-v1-6")], "kling-image": [("kl", "kling-v2")]}
    )


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """The stdlib decode a verifier does: (header, claims, signature, signing input)."""
    head, claims, signature = (base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split("."))
    return json.loads(head), json.loads(claims), signature, token.rsplit(".", 1)[0].encode()


def body_of(**kw: Any) -> tuple[str, dict[str, Any]]:
    kw.setdefault("prompt", "A cat dancing on the beach at sunset")
    call = build_call(TaskRequest(model="kling", **kw), "kling-v1-6")
    return call.path, dump(call.body)


# -- the JWT (§3.1) --------------------------------------------------------------------------------------------------


def test_the_token_is_an_hs256_jwt_with_the_documented_claims() -> None:
    now = [float(T0)]
    token = KlingToken(AK, Secret(SK), clock=lambda: now[0]).token()
    header, claims, signature, signing_input = decode(token)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims == {"iss": AK, "exp": T0 + 1800, "nbf": T0 - 5}
    assert hmac.compare_digest(signature, hmac.new(SK.encode(), signing_input, hashlib.sha256).digest())
    assert not hmac.compare_digest(signature, hmac.new(b"another secret", signing_input, hashlib.sha256).digest())
    assert "=" not in token  # unpadded base64url segments


def test_the_token_is_reused_until_five_minutes_before_expiry_then_renewed() -> None:
    now = [float(T0)]
    signer = KlingToken(AK, Secret(SK), clock=lambda: now[0])
    first = signer.token()
    now[0] = T0 + 1800 - 301  # 301 s left: still good
    assert signer.token() == first
    now[0] = T0 + 1800 - 299  # under 5 minutes left: a new one
    renewed = signer.token()
    assert renewed != first
    assert decode(renewed)[1] == {"iss": AK, "exp": T0 + 1800 - 299 + 1800, "nbf": T0 + 1800 - 299 - 5}
    signer.invalidate()
    assert signer.token() == renewed  # same second, same claims: the same token again, freshly signed


def test_the_secret_never_shows_in_reprs_or_config_errors() -> None:
    signer = KlingToken(AK, Secret(SK))
    provider = SPEC.factory(
        settings("kl", "kling", "http://127.0.0.1:1", key=None, access_key=AK, secret_key=SK), Transport()
    )
    assert SK not in repr(signer) and SK not in repr(provider) and SK not in str(signer.secret_key)
    with pytest.raises(ConfigError) as info:
        SPEC.factory(settings("kl", "kling", "http://127.0.0.1:1", key=None, secret_key=SK), Transport())
    assert info.value.key == "providers.kl.access_key" and SK not in str(info.value)


# -- configuration -----------------------------------------------------------------------------------------------


def test_regions_and_credentials() -> None:
    def make(base_url: str | None = None, key: str | None = None, **options: Any) -> KlingProvider:
        cfg = attrs.evolve(settings("kl", "kling", "", key=key, **options), base_url=base_url)
        return build(cfg, Transport())

    assert make(access_key=AK, secret_key=SK).base_url == "https://api-singapore.klingai.com"
    assert make(access_key=AK, secret_key=SK, region="beijing").base_url == "https://api-beijing.klingai.com"
    assert make(access_key=AK, secret_key=SK, region="legacy").base_url == "https://api.klingai.com"
    ak_sk = make(key=f"{AK}|{SK}")  # new-api's "AK|SK" channel key
    assert ak_sk.token is not None and ak_sk.token.access_key == AK
    assert make("https://relay.example.com/kling", key="sk-relay-key-123456").token is None  # plain relay key
    for options, key in [
        ({"access_key": AK, "secret_key": SK, "region": "mars"}, "providers.kl.region"),
        ({"access_key": AK}, "providers.kl.secret_key"),
        ({}, "providers.kl.access_key"),
        ({"access_key": AK, "secret_key": SK, "regoin": "beijing"}, "providers.kl.regoin"),
    ]:
        with pytest.raises(ConfigError) as info:
            make(**options)
        assert info.value.key == key
    with pytest.raises(ConfigError) as info:
        make("https://api-beijing.klingai.com", access_key=AK, secret_key=SK, region="beijing")
    assert info.value.key == "providers.kl.region"


# -- request translation (§3.3) ------------------------------------------------------------------------------------


def test_text2video_body_is_the_documented_shape() -> None:
    # §3.3: model_name, prompt, negative_prompt, cfg_scale, mode, aspect_ratio, duration as a string, camera_control
    path, body = body_of(
        negative_prompt="blurry",
        aspect_ratio="16:9",
        duration=5,
        params={"mode": "std", "cfg_scale": 0.5, "camera_control": {"type": "simple", "config": {"zoom": 5}}},
    )
    assert path == "/v1/videos/text2video"
    assert body == {
        "model_name": "kling-v1-6",
        "prompt": "A cat dancing on the beach at sunset",
        "negative_prompt": "blurry",
        "aspect_ratio": "16:9",
        "duration": "5",
        "mode": "std",
        "cfg_scale": 0.5,
        "camera_control": {"type": "simple", "config": {"zoom": 5}},
    }


def test_image2video_takes_urls_or_raw_base64_and_an_end_frame() -> None:
    path, body = body_of(images=("data:image/png;base64,iVBORw0KGgo=", END), duration=10)
    assert path == "/v1/videos/image2video"
    assert (body["image"], body["image_tail"], body["duration"]) == ("iVBORw0KGgo=", END, "10")


def test_image_generation_multi_image_and_video_extend() -> None:
    call = build_call(TaskRequest(model="k", prompt="a fox", kind="image", n=4, size="1024x768"), "kling-v2")
    assert (call.path, call.kind) == ("/v1/images/generations", "image")
    assert dump(call.body) == {"model_name": "kling-v2", "prompt": "a fox", "aspect_ratio": "4:3", "n": 4}
    path, body = body_of(images=(START, END, START))
    assert path == "/v1/videos/multi-image2video" and body["image_list"] == [
        {"image": START},
        {"image": END},
        {"image": START},
    ]
    path, body = body_of(params={"task": "video-extend", "video_id": "vid-1"})
    assert (path, body) == (
        "/v1/videos/video-extend",
        {"prompt": "A cat dancing on the beach at sunset", "video_id": "vid-1"},
    )


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"aspect_ratio": "4:3"}, "aspect_ratio"),  # video takes 16:9, 9:16, 1:1
        ({"duration": 7.5}, "duration"),
        ({"n": 2}, "n"),
        ({"kind": "image", "n": 10}, "n"),
        ({"kind": "audio"}, "kind"),
        ({"params": {"task": "lip-sync"}}, "params.task"),
        ({"params": {"task": "video-extend"}}, "params.video_id"),
        ({"images": ("data:image/png,rawbytes",)}, "images"),
    ],
)
def test_bad_input_names_the_field(kw: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        body_of(**kw)
    assert info.value.path == path


def test_the_documented_succeed_answer_parses() -> None:
    # §3.2 envelope + §8's real succeed pair: task id CjI17WevH1IAAAAAAHmgsw, duration "5.1", raw_video_1.mp4.
    envelope = parse(
        {
            "code": 0,
            "message": "SUCCEED",
            "request_id": "CjikY2gHPbcAAAAABI5n9g",
            "data": {
                "task_id": "CjI17WevH1IAAAAAAHmgsw",
                "task_status": "succeed",
                "task_status_msg": "",
                "created_at": 1722769557708,
                "updated_at": 1722769640000,
                "task_result": {
                    "videos": [
                        {
                            "id": "a1b2",
                            "url": "https://cdn.klingai.com/bs2/upload-kling-api/raw_video_1.mp4",
                            "duration": "5.1",
                        }
                    ]
                },
                "final_unit_deduction": "1",
            },
        },
        Envelope,
        provider="kl",
        what="answer",
    )
    data = parse(envelope.data, TaskData, provider="kl", what="task")
    assert data.task_result is not None and data.task_result.videos is not None
    assert (data.task_status, data.task_result.videos[0].duration, data.created_at) == ("succeed", "5.1", 1722769557708)


def test_task_statuses_map() -> None:
    assert dict(STATUS_MAP) == {
        "submitted": "queued",
        "processing": "running",
        "succeed": "succeeded",
        "failed": "failed",
    }


# -- the error-code table (§3.5) --------------------------------------------------------------------------------------

DOCUMENTED: list[tuple[int, int, type[UpstreamStatusError], bool]] = [
    (1000, 401, AuthenticationFailed, True),
    (1001, 401, AuthenticationFailed, False),
    (1002, 401, AuthenticationFailed, False),
    (1003, 401, AuthenticationFailed, True),
    (1004, 401, AuthenticationFailed, True),
    (1100, 429, PermissionDenied, False),
    (1101, 429, QuotaExceeded, False),
    (1102, 429, QuotaExceeded, False),
    (1103, 403, PermissionDenied, False),
    (1200, 400, BadRequest, False),
    (1201, 400, BadRequest, False),
    (1202, 404, NotFound, False),
    (1203, 404, NotFound, False),
    (1300, 400, ContentPolicyViolation, False),
    (1301, 400, ContentPolicyViolation, False),
    (1302, 429, RateLimited, True),
    (1303, 429, RateLimited, True),
    (1304, 429, PermissionDenied, False),
    (5000, 500, ServerError, True),
    (5001, 503, Overloaded, True),
    (5002, 504, ServerError, True),
]


@pytest.mark.parametrize(("code", "status", "error", "retryable"), DOCUMENTED)
def test_error_codes_map_onto_the_error_tree(
    code: int, status: int, error: type[UpstreamStatusError], retryable: bool
) -> None:
    exc = error_for_code(code, "msg", status=status, provider="kl")
    assert (type(exc), exc.retryable, exc.status, exc.code) == (error, retryable, status, str(code))
    in_200 = error_for_code(code, "msg", status=200, provider="kl")  # an error envelope inside an HTTP 200
    assert (type(in_200), in_200.status) == (error, status)


def test_the_table_is_complete_and_unknown_codes_fall_back_to_their_family() -> None:
    assert sorted(KLING_CODES) == [code for code, *_ in DOCUMENTED]
    assert type(error_for_code(1399, "new policy", status=400, provider="kl")) is ContentPolicyViolation
    assert type(error_for_code(5099, "new", status=500, provider="kl")) is ServerError
    assert type(error_for_code(None, "no envelope", status=502, provider="kl")) is ServerError


# -- lifecycle over loopback ---------------------------------------------------------------------------------------


async def test_text2video_lifecycle_with_a_verified_jwt(
    transport: Transport, clock: FakeClock, upstream: KlingUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="kling", prompt="a cat", aspect_ratio="16:9", duration=5)
    assert (task.status, task.raw_status, task.upstream_id.split(":")[0]) == ("queued", "submitted", "text2video")
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=600, on_progress=seen.append)
    assert [t.raw_status for t in seen] == ["submitted", "processing", "succeed"]
    task_id = task.upstream_id.split(":", 1)[1]
    assert [r.path for r in upstream.requests] == ["/v1/videos/text2video"] + [f"/v1/videos/text2video/{task_id}"] * 4
    assert len(set(upstream.tokens)) == 1  # one cached token for every call
    header, claims, _sig, _input = decode(upstream.tokens[0])
    assert header["alg"] == "HS256" and claims["iss"] == AK
    (artifact,) = done.outputs
    assert (artifact.media_type, artifact.duration, artifact.extra["id"]) == ("video/mp4", 5.1, f"{task_id}-v")
    assert done.extra["final_unit_deduction"] == "1"
    provider = media.providers["kl"]
    assert isinstance(provider, KlingProvider)
    assert await provider.download(artifact.url or "", media.make_ctx(media.resolve("kling")[0])) == TINY_MP4


async def test_image_generation_returns_every_image(
    transport: Transport, clock: FakeClock, upstream: KlingUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="kling-image", prompt="a fox", kind="image", n=2)
    done = await media.tasks.wait(task.id, timeout=600)
    assert [a.extra["index"] for a in done.outputs] == [0, 1] and done.kind == "image"
    assert upstream.requests[-1].path.startswith("/v1/images/generations/")


async def test_failed_task_raises_task_failed_with_task_status_msg(
    transport: Transport, clock: FakeClock, upstream: KlingUpstream
) -> None:
    upstream.push_outcome(KlingOutcome(status="failed"))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="kling", prompt="a cat", images=START)
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=600)
    assert info.value.code == "task_failed" and "risk control" in str(info.value)


async def test_cancel_is_unsupported_and_timeout_leaves_the_task(
    transport: Transport, clock: FakeClock, upstream: KlingUpstream
) -> None:
    upstream.push_outcome(KlingOutcome(processing_polls=1000))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="kling", prompt="a cat")
    with pytest.raises(UnsupportedFeature):
        await media.tasks.cancel(task.id)
    with pytest.raises(TaskTimeout):
        await media.tasks.wait(task.id, timeout=30)
    assert (await media.tasks.get(task.id)).status == "running"


async def test_transient_poll_errors_and_in_band_rate_limits_are_retried(
    transport: Transport, clock: FakeClock, upstream: KlingUpstream
) -> None:
    upstream.add_fault(
        Fault.status_code(
            200,
            body={"code": 1303, "message": "parallel task over resource pack limit", "request_id": "r", "data": None},
        )
    )
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="kling", prompt="a cat")
    upstream.add_fault(Fault.status_code(500), times=1)
    upstream.add_fault(Fault.status_code(503), times=1)
    done = await media.tasks.wait(task.id, timeout=600)
    assert done.status == "succeeded"
    assert len(upstream.requests) == 2 + 2 + 4  # a throttled submit and the real one, two failed polls, four polls


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [(1102, 429, QuotaExceeded), (1301, 400, ContentPolicyViolation), (1103, 403, PermissionDenied)],
)
async def test_error_envelopes_are_classified_over_http(
    transport: Transport, clock: FakeClock, upstream: KlingUpstream, code: int, status: int, error: type[Exception]
) -> None:
    upstream.add_fault(Fault.status_code(status, body={"code": code, "message": "nope", "request_id": "rq-1"}))
    media = media_for(transport, clock, upstream)
    with pytest.raises(error) as info:
        await media.tasks.create(model="kling", prompt="a cat")
    assert getattr(info.value, "code", None) == str(code) and getattr(info.value, "request_id", None) == "rq-1"
    assert len(upstream.requests) == 1  # not retried


async def test_a_rejected_token_is_re_signed(transport: Transport) -> None:
    provider_now = [float(T0)]
    server_now = [float(T0 + 1805)]  # the first token (exp T0+1800) is already expired for the server
    async with KlingUpstream(access_key=AK, secret_key=SK, clock=lambda: server_now[0]) as server:
        cfg = settings("kl", "kling", server.base_url, key=None, access_key=AK, secret_key=SK)
        provider = build(cfg, transport, clock=lambda: provider_now[0])
        ctx = CallContext(model="kling-v1-6", timeouts=Timeouts())
        with pytest.raises(AuthenticationFailed) as info:
            await provider.submit(TaskRequest(model="kling", prompt="a cat"), ctx)
        assert (info.value.code, info.value.retryable) == ("1004", True)
        provider_now[0] = T0 + 10  # without the re-sign, the cached token (1790 s left) would be sent again
        snapshot = await provider.submit(TaskRequest(model="kling", prompt="a cat"), ctx)
        assert snapshot.status == "queued"
        assert len(server.tokens) == 2 and server.tokens[0] != server.tokens[1]
        assert decode(server.tokens[1])[1]["exp"] == T0 + 10 + 1800


async def test_a_wrong_secret_is_an_auth_error_without_the_secret(transport: Transport, clock: FakeClock) -> None:
    async with KlingUpstream(access_key=AK, secret_key="the-server-secret-9876") as server:
        cfg = settings("kl", "kling", server.base_url, key=None, access_key=AK, secret_key=Secret(SK))
        media = build_media(transport, clock, {"kl": (SPEC, cfg)}, {"kling": [("kl", "kling-v1-6")]})
        with pytest.raises(AuthenticationFailed) as info:
            await media.tasks.create(model="kling", prompt="a cat")
        assert info.value.code == "1002"
        for text in (str(info.value), repr(info.value), repr(cfg), repr(media.providers["kl"])):
            assert SK not in text


async def test_relay_mode_sends_the_plain_key(transport: Transport, clock: FakeClock) -> None:
    async with KlingUpstream(relay_key="sk-relay-0123456789") as relay:
        cfg = settings("rk", "kling", relay.base_url, key="sk-relay-0123456789")
        media = build_media(transport, clock, {"rk": (SPEC, cfg)}, {"kling": [("rk", "kling-v1")]})
        task = await media.tasks.create(model="kling", prompt="a cat")
        assert task.status == "queued" and relay.tokens == ["sk-relay-0123456789"]
