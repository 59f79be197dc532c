"""The Flux provider: request/response translation and the task lifecycle over loopback against FluxUpstream.

Wire references: docs.bfl.ai (https://docs.bfl.ai/api-reference — endpoints, ``ResultResponse``, statuses,
"use the returned polling_url"; https://docs.bfl.ai/quick_start/generating_images — the 0.5 s polling loop), as
summarised in wire-images.md §3 (3.1 hosts and polling URLs on other hosts, 3.3 parameters, 3.4 submit response,
3.5 get_result statuses and the real ``Ready`` sample from a relay run log, 3.6 errors, §10 credential hygiene).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from media_harness import API_KEY, FakeClock, Media, build_media, open_transport, settings

from polyrelay.errors import (
    ConfigError,
    InvalidRequest,
    InvalidUpstreamResponse,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    TaskFailed,
    TaskTimeout,
    UnsupportedFeature,
)
from polyrelay.testing._faults import Fault
from polyrelay.testing._flux import FluxOutcome, FluxUpstream
from polyrelay.testing._openai_images import tiny_png
from polyrelay.transport import Transport
from polyrelay.types.media import Task, TaskRequest
from polyrelay_flux import SPEC
from polyrelay_flux._provider import FluxProvider
from polyrelay_flux._request import build_body
from polyrelay_flux._wire import GenerationBody, ResultResponse, dump, parse

PNG_URI = "data:image/png;base64,iVBORw0KGgo="
# The real Ready body of wire-images.md §3.5 (relay run log; URL shortened, ids as published).
READY_SAMPLE: dict[str, Any] = {
    "id": "38b4e501-0000-4000-8000-000000000000",
    "status": "Ready",
    "result": {
        "start_time": 1764253858.84,
        "prompt": "A cat on a windowsill, upsampled",
        "seed": 1601288383,
        "sample": "https://bfldeliveryprodeu4.blob.core.windows.net/results/x_sample.jpeg?se=2025-11-27&sig=abc",
    },
    "progress": None,
    "details": None,
    "preview": None,
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def upstream() -> AsyncIterator[FluxUpstream]:
    async with FluxUpstream() as server:
        yield server


def media_for(transport: Transport, clock: FakeClock, server: FluxUpstream, **options: Any) -> Media:
    return build_media(
        transport,
        clock,
        {"bfl": (SPEC, settings("bfl", "flux", server.base_url, **options))},
        {"flux": [("bfl", "flux-pro-1.1")]},
    )


def req(**kw: Any) -> TaskRequest:
    kw.setdefault("prompt", "a lighthouse at dusk")
    return TaskRequest(model="flux", **kw)


def body_of(request: TaskRequest, model: str = "flux-pro-1.1") -> dict[str, Any]:
    body, _warnings = build_body(request, model, provider="bfl")
    return dump(body)


# -- request translation ---------------------------------------------------------------------------------------


def test_size_becomes_width_and_height() -> None:
    assert body_of(req(size="1024x768", seed=42)) == {
        "prompt": "a lighthouse at dusk",
        "width": 1024,
        "height": 768,
        "seed": 42,
    }


def test_aspect_ratio_becomes_about_one_megapixel_on_width_height_models() -> None:
    body = body_of(req(aspect_ratio="16:9"))
    assert (body["width"], body["height"]) == (1376, 768)
    assert body["width"] % 32 == 0 and body["height"] % 32 == 0


def test_ultra_takes_the_aspect_ratio_and_size_is_reduced_to_one_with_a_warning() -> None:
    assert body_of(req(aspect_ratio="21:9"), "flux-pro-1.1-ultra")["aspect_ratio"] == "21:9"
    body, warnings = build_body(req(size="1920x1080"), "flux-pro-1.1-ultra", provider="bfl")
    assert dump(body)["aspect_ratio"] == "16:9"
    assert [w.setting for w in warnings] == ["size"]


@pytest.mark.parametrize(
    ("model", "request_kw", "path"),
    [
        ("flux-pro-1.1", {"size": "1000x1000"}, "size"),  # not a multiple of 32
        ("flux-pro-1.1", {"size": "2048x1024"}, "size"),  # above 1440
        ("flux-pro-1.1-ultra", {"aspect_ratio": "4:1"}, "aspect_ratio"),  # beyond 21:9
        ("flux-kontext-pro", {"aspect_ratio": "3:1"}, "aspect_ratio"),  # beyond 7:3
        ("flux-2-pro", {"size": "2560x2048"}, "size"),  # above 4 MP
        ("flux-pro-1.1", {"n": 2}, "n"),
        ("flux-pro-1.1", {"params": {"steps": 20}}, "steps"),  # only flux-pro / flux-dev take steps
        ("flux-dev", {"params": {"guidance": 9}}, "guidance"),
        ("flux-pro", {"params": {"interval": 5}}, "interval"),
        ("flux-pro-1.1", {"params": {"safety_tolerance": 7}}, "safety_tolerance"),
        ("flux-pro-1.1", {"params": {"output_format": "webp"}}, "output_format"),
        ("flux-pro-1.1", {"images": ("https://example.com/a.png",)}, "images[0]"),  # image_prompt is base64 only
        ("flux-kontext-pro", {"images": (PNG_URI,) * 5}, "images"),
        ("flux-pro-1.0-fill", {}, "images"),
        ("flux-pro-1.1", {"size": "1024x1024", "aspect_ratio": "1:1"}, "aspect_ratio"),
    ],
)
def test_bad_input_names_the_field(model: str, request_kw: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        build_body(req(**request_kw), model, provider="bfl")
    assert info.value.path == path


def test_input_images_map_per_model() -> None:
    kontext = body_of(req(images=(PNG_URI, "https://example.com/b.png")), "flux-kontext-pro")
    assert kontext["input_image"] == "iVBORw0KGgo="  # base64 without the data: prefix
    assert kontext["input_image_2"] == "https://example.com/b.png"
    assert body_of(req(images=(PNG_URI,)))["image_prompt"] == "iVBORw0KGgo="
    fill = body_of(req(images=(PNG_URI,), params={"mask": PNG_URI}), "flux-pro-1.0-fill")
    assert (fill["image"], fill["mask"]) == ("iVBORw0KGgo=", "iVBORw0KGgo=")


def test_openai_only_settings_are_dropped_with_warnings_and_unknown_params_pass_through() -> None:
    request = req(negative_prompt="blur", params={"quality": "hd", "style": "vivid", "new_bfl_knob": 3, "raw": True})
    body, warnings = build_body(request, "flux-pro-1.1-ultra", provider="bfl")
    assert dump(body) == {"prompt": "a lighthouse at dusk", "raw": True, "new_bfl_knob": 3}
    assert sorted(w.setting or "" for w in warnings) == ["negative_prompt", "quality", "style"]


def test_unknown_models_get_the_generic_mapping_without_range_checks() -> None:
    assert body_of(req(size="1000x700", params={"steps": 99}), "flux-3-preview") == {
        "prompt": "a lighthouse at dusk",
        "width": 1000,
        "height": 700,
        "steps": 99,
    }


def test_video_kind_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        build_body(req(kind="video"), "flux-pro-1.1", provider="bfl")
    assert info.value.path == "kind"


# -- response translation -------------------------------------------------------------------------------------


def provider(base_url: str = "https://api.bfl.ai/v1", **options: Any) -> FluxProvider:
    built = SPEC.factory(settings("bfl", "flux", base_url, **options), Transport())
    assert isinstance(built, FluxProvider)
    return built


def test_the_documented_ready_body_becomes_a_succeeded_snapshot() -> None:
    snapshot = provider()._snapshot("up", parse(READY_SAMPLE, ResultResponse, provider="bfl", what="x"))
    assert snapshot.status == "succeeded"
    (artifact,) = snapshot.outputs
    assert artifact.url == READY_SAMPLE["result"]["sample"]
    assert artifact.media_type == "image/jpeg"
    assert artifact.extra == {
        "expires_in": 600,
        "revised_prompt": "A cat on a windowsill, upsampled",
        "seed": 1601288383,
    }


@pytest.mark.parametrize(
    ("status", "task_status", "code"),
    [
        ("Pending", "running", None),
        ("Request Moderated", "failed", "content_policy_violation"),
        ("Content Moderated", "failed", "content_policy_violation"),
        ("Error", "failed", "upstream_error"),
        ("Failed", "failed", "upstream_error"),
        ("Task not found", "failed", "task_not_found"),
        ("SomethingNew", "running", None),
    ],
)
def test_statuses_map(status: str, task_status: str, code: str | None) -> None:
    body = {"id": "x", "status": status, "result": None, "progress": None, "details": {"reason": "r"}}
    snapshot = provider()._snapshot("up", parse(body, ResultResponse, provider="bfl", what="x"))
    assert snapshot.status == task_status
    assert snapshot.raw_status == status
    assert (snapshot.error.code if snapshot.error else None) == code


def test_progress_accepts_fractions_and_percentages() -> None:
    p = provider()
    for raw, expected in ((0.4, 0.4), (40, 0.4), (None, None)):
        body = {"id": "x", "status": "Pending", "progress": raw}
        assert p._snapshot("up", parse(body, ResultResponse, provider="bfl", what="x")).progress == expected


def test_ready_without_a_sample_is_an_invalid_response() -> None:
    body = {"id": "x", "status": "Ready", "result": {"prompt": "p"}}
    with pytest.raises(InvalidUpstreamResponse):
        provider()._snapshot("up", parse(body, ResultResponse, provider="bfl", what="x"))


def test_generation_body_round_trips_through_the_converter() -> None:
    body = GenerationBody(prompt="p", width=1024, height=768, extra={"x": 1})
    assert dump(body) == {"prompt": "p", "width": 1024, "height": 768, "x": 1}


# -- configuration -----------------------------------------------------------------------------------------------


def test_unknown_option_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        provider(foreign_poling="refuse")
    assert info.value.key == "providers.bfl.foreign_poling"
    assert "foreign_polling" in str(info.value)


def test_bad_foreign_polling_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        provider(foreign_polling="sometimes")
    assert info.value.key == "providers.bfl.foreign_polling"


# -- lifecycle over loopback -------------------------------------------------------------------------------------


async def test_submit_progress_and_success(transport: Transport, clock: FakeClock, upstream: FluxUpstream) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="flux", prompt="a lighthouse", size="1024x768", safety_tolerance=2)
    assert task.status == "queued" and task.provider == "bfl" and task.model == "flux-pro-1.1"
    submit = upstream.requests[0]
    assert (submit.method, submit.path) == ("POST", "/v1/flux-pro-1.1")
    assert submit.headers["x-key"] == API_KEY
    assert submit.json == {"prompt": "a lighthouse", "width": 1024, "height": 768, "safety_tolerance": 2}
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=60, on_progress=seen.append)
    assert done.status == "succeeded" and done.id == task.id
    assert [(t.status, t.progress) for t in seen] == [("running", 0.33), ("running", 0.67), ("succeeded", 1.0)]
    assert [r.path for r in upstream.requests[1:]] == ["/v1/get_result"] * 3
    assert clock.sleeps and all(0.5 <= s <= 0.6 for s in clock.sleeps)  # 0.5 s cadence plus jitter
    (artifact,) = done.outputs
    assert artifact.extra["revised_prompt"] == "a lighthouse, highly detailed"
    provider_ = media.providers["bfl"]
    assert isinstance(provider_, FluxProvider)
    ctx = media.make_ctx(media.resolve("flux")[0])
    assert await provider_.download(artifact.url or "", ctx) == tiny_png(2, 2, (0, 128, 255))


async def test_moderated_request_fails_with_content_policy_code(
    transport: Transport, clock: FakeClock, upstream: FluxUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="flux", prompt="something forbidden")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=60)
    assert info.value.code == "content_policy_violation"
    assert "Derivative Works Filter" in str(info.value)
    assert info.value.task_id == task.id


async def test_error_status_fails_the_task(transport: Transport, clock: FakeClock, upstream: FluxUpstream) -> None:
    upstream.push_outcome(FluxOutcome(kind="error", pending_polls=1, details={"error": "GPU fell over"}))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=60)
    assert info.value.code == "upstream_error"
    assert "GPU fell over" in str(info.value)


async def test_timeout_raises_task_timeout_and_the_task_can_be_polled_later(
    transport: Transport, clock: FakeClock, upstream: FluxUpstream
) -> None:
    upstream.push_outcome(FluxOutcome(pending_polls=1000))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    with pytest.raises(TaskTimeout) as info:
        await media.tasks.wait(task.id, timeout=3)
    assert info.value.task_id == task.id
    assert clock.now - 1_700_000_000.0 == pytest.approx(3.0)  # the last poll happened at the deadline, not after
    assert (await media.tasks.get(task.id)).status == "running"


async def test_a_transient_poll_error_is_retried_without_losing_the_task(
    transport: Transport, clock: FakeClock, upstream: FluxUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    upstream.add_fault(Fault.status_code(503), times=2, path="/v1/get_result")
    done = await media.tasks.wait(task.id, timeout=60)
    assert done.status == "succeeded"
    statuses = [r.path for r in upstream.requests]
    assert statuses.count("/v1/get_result") == 5  # two 503s, then the three polls of the task


async def test_submit_retries_429_then_succeeds(transport: Transport, clock: FakeClock, upstream: FluxUpstream) -> None:
    upstream.add_fault(Fault.status_code(429, retry_after=2))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    assert task.status == "queued"
    assert len(upstream.task_ids()) == 1
    assert clock.sleeps[0] >= 2.0  # Retry-After honoured


@pytest.mark.parametrize(("status", "error"), [(402, QuotaExceeded), (403, PermissionDenied), (429, RateLimited)])
async def test_http_errors_are_classified(
    transport: Transport, clock: FakeClock, upstream: FluxUpstream, status: int, error: type[Exception]
) -> None:
    upstream.add_fault(Fault.status_code(status), times=None)
    media = media_for(transport, clock, upstream)
    with pytest.raises(error):
        await media.tasks.create(model="flux", prompt="a lighthouse")


async def test_cancel_is_unsupported(transport: Transport, clock: FakeClock, upstream: FluxUpstream) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    with pytest.raises(UnsupportedFeature):
        await media.tasks.cancel(task.id)


async def test_bad_input_fails_before_any_request(
    transport: Transport, clock: FakeClock, upstream: FluxUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.create(model="flux", prompt="a lighthouse", size="1000x1000")
    assert info.value.path == "size"
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.create(model="flux")
    assert info.value.path == "prompt"
    assert upstream.requests == []


# -- credentials and polling origins ----------------------------------------------------------------------------


@pytest.fixture
async def regional(upstream: FluxUpstream) -> AsyncIterator[FluxUpstream]:
    """A second origin serving the primary's tasks (like api.us1.bfl.ai), also hosting the result files."""
    async with FluxUpstream(share_state_with=upstream) as server:
        upstream.polling_origin = server.origin
        upstream.delivery_origin = server.origin
        yield server


async def test_polling_a_foreign_origin_never_sends_the_key(
    transport: Transport, clock: FakeClock, upstream: FluxUpstream, regional: FluxUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    assert task.upstream_id.startswith(regional.origin)
    done = await media.tasks.wait(task.id, timeout=60)
    image = await media.images.download(done.outputs[0].url or "", provider="bfl")
    assert image.startswith(b"\x89PNG")
    assert upstream.requests[0].headers["x-key"] == API_KEY
    assert len(regional.requests) == 4  # three polls and the download
    assert all("x-key" not in r.headers for r in regional.requests)


async def test_refuse_mode_fails_at_submit_without_polling(
    transport: Transport, clock: FakeClock, upstream: FluxUpstream, regional: FluxUpstream
) -> None:
    media = media_for(transport, clock, upstream, foreign_polling="refuse")
    with pytest.raises(InvalidUpstreamResponse) as info:
        await media.tasks.create(model="flux", prompt="a lighthouse")
    assert info.value.code == "foreign_polling_url" and not info.value.retryable
    assert regional.requests == []
    assert len(upstream.requests) == 1  # not retried


async def test_rewrite_mode_polls_the_configured_origin_with_the_key(
    transport: Transport, clock: FakeClock, upstream: FluxUpstream, regional: FluxUpstream
) -> None:
    media = media_for(transport, clock, upstream, foreign_polling="rewrite")
    task = await media.tasks.create(model="flux", prompt="a lighthouse")
    await media.tasks.wait(task.id, timeout=60)
    polls = [r for r in upstream.requests if r.path == "/v1/get_result"]
    assert len(polls) == 3 and all(r.headers["x-key"] == API_KEY for r in polls)
    assert regional.requests == []


async def test_trusted_hosts_only_match_https(transport: Transport, clock: FakeClock, upstream: FluxUpstream) -> None:
    p = provider(upstream.base_url, trusted_hosts=["*.bfl.ai"])
    assert p._poll_target("https://api.us1.bfl.ai/v1/get_result?id=1") == (
        "https://api.us1.bfl.ai/v1/get_result?id=1",
        True,
    )
    assert p._poll_target("http://api.us1.bfl.ai/v1/get_result?id=1")[1] is False
    assert p._poll_target("https://evil.example/v1/get_result?id=1")[1] is False
    assert p._poll_target("https://bfl.ai.evil.example/get_result?id=1")[1] is False
    assert p._poll_target("abc")[0] == f"{upstream.base_url}/get_result?id=abc"


async def test_keys_echoed_by_the_upstream_never_reach_the_error(transport: Transport, clock: FakeClock) -> None:
    key = "bfl-secret-0123456789abcdef"
    async with FluxUpstream(api_key=key) as server:
        server.add_fault(Fault.status_code(403, body={"detail": f"key {key} lacks permission for flux-pro-1.1"}))
        media = build_media(
            transport,
            clock,
            {"bfl": (SPEC, settings("bfl", "flux", server.base_url, key=key))},
            {"flux": [("bfl", "flux-pro-1.1")]},
        )
        with pytest.raises(PermissionDenied) as info:
            await media.tasks.create(model="flux", prompt="a lighthouse")
    error = info.value
    assert "lacks permission" in str(error)
    assert key not in str(error) and key not in repr(error) and key not in repr(error.body)
    assert key not in repr(media.providers["bfl"])
