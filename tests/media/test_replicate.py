"""The Replicate provider: request/response translation and the prediction lifecycle against ReplicateUpstream.

Wire references: the HTTP API reference (https://replicate.com/docs/reference/http — create by model / by version,
``Prefer: wait``, get, cancel, problem-details errors) as summarised in wire-images.md §4, and recorded traffic:
the VCR cassettes of replicate/replicate-python (Apache-2.0) ``tests/cassettes/predictions-get.yaml``,
``predictions-cancel.yaml`` and ``test_models_predictions_create_blocking[True-True].yaml`` and
``run__invalid-token.yaml`` (bodies below, logs shortened).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from media_harness import API_KEY, FakeClock, Media, build_media, open_transport, settings

from polyrelay.errors import AuthenticationFailed, ConfigError, InvalidRequest, RateLimited, TaskFailed
from polyrelay.testing._faults import Fault
from polyrelay.testing._replicate import ReplicateOutcome, ReplicateUpstream
from polyrelay.transport import Timeouts, Transport
from polyrelay.types.media import Task, TaskRequest
from polyrelay_replicate import SPEC
from polyrelay_replicate._provider import ReplicateProvider
from polyrelay_replicate._request import build_body, route_for
from polyrelay_replicate._wire import Prediction, dump, parse

VERSION = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
# predictions-get.yaml: GET /v1/predictions/vgcm4plb7tgzlyznry5d5jkgvu (200).
RECORDED_GET: dict[str, Any] = {
    "completed_at": "2023-08-16T18:57:12.170420Z",
    "created_at": "2023-08-16T18:57:08.394251Z",
    "error": None,
    "id": "vgcm4plb7tgzlyznry5d5jkgvu",
    "input": {"seed": 42069, "width": 512, "height": 512, "prompt": "a studio photo of a rainbow colored corgi"},
    "logs": "Using seed: 42069\nPrompt: a studio photo of a rainbow colored corgi\ntxt2img mode\n"
    "  0%|          | 0/50 [00:00<?, ?it/s]\n  4%|\u258d         | 2/50 [00:00<00:02, 16.47it/s]\n"
    "100%|\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588| 50/50 [00:02<00:00, 17.09it/s]",
    "metrics": {"predict_time": 3.804328},
    "output": ["https://replicate.delivery/pbxt/9inf36wjsEWuQ6XTf84iezPftv9QZdePfGySnU5tUai3BOrWE/out-0.png"],
    "started_at": "2023-08-16T18:57:08.366092Z",
    "status": "succeeded",
    "urls": {
        "get": "https://api.replicate.com/v1/predictions/vgcm4plb7tgzlyznry5d5jkgvu",
        "cancel": "https://api.replicate.com/v1/predictions/vgcm4plb7tgzlyznry5d5jkgvu/cancel",
    },
    "version": "a00d0b7dcbb9c3fbb34ba87d2d5b46c56969c84a628bf778a7fdaec30b1b99c5",
    "webhook_completed": None,
}
# predictions-cancel.yaml: POST /v1/predictions (version) → 201 starting, then POST .../cancel → 200 canceled.
RECORDED_CREATE_REQUEST: dict[str, Any] = {
    "input": {"prompt": "a studio photo of a rainbow colored corgi", "width": 512, "height": 512, "seed": 42069},
    "version": VERSION,
}
RECORDED_CANCELED: dict[str, Any] = {
    "completed_at": "2024-04-22T11:15:15.504128Z",
    "created_at": "2024-04-22T11:15:15.329000Z",
    "error": None,
    "id": "hdwst0bb05rgp0cf0p29mzk2am",
    "input": {"seed": 42069, "width": 512, "height": 512, "prompt": "a studio photo of a rainbow colored corgi"},
    "logs": None,
    "metrics": {"predict_time": 0.128148, "total_time": 0.175128},
    "output": None,
    "started_at": "2024-04-22T11:15:15.375980Z",
    "status": "canceled",
    "urls": {
        "get": "https://api.replicate.com/v1/predictions/hdwst0bb05rgp0cf0p29mzk2am",
        "cancel": "https://api.replicate.com/v1/predictions/hdwst0bb05rgp0cf0p29mzk2am/cancel",
    },
    "model": "stability-ai/sdxl",
    "version": VERSION,
    "webhook_completed": None,
}
# test_models_predictions_create_blocking[True-True].yaml: 201 with Prefer: wait, status still "processing".
RECORDED_BLOCKING_201: dict[str, Any] = {
    "id": "jp9nrd1g2hrj20cjb2vrb55mkr",
    "model": "meta/meta-llama-3-8b-instruct",
    "version": "dp-a557b7387b4940df25b23f779dc534c4",
    "input": {"prompt": "Please write a haiku about llamas"},
    "logs": "",
    "output": [
        "\n\n",
        "Fuzzy",
        ", gentle",
        " beasts",
        "\nSoft",
        "ly grazing",
        ", quiet",
        " eyes\n",
        "Llama",
        "'s gentle",
        " charm",
        "",
    ],
    "data_removed": False,
    "error": None,
    "status": "processing",
    "created_at": "2024-10-04T18:07:33.396Z",
    "urls": {
        "cancel": "https://api.replicate.com/v1/predictions/jp9nrd1g2hrj20cjb2vrb55mkr/cancel",
        "get": "https://api.replicate.com/v1/predictions/jp9nrd1g2hrj20cjb2vrb55mkr",
        "stream": "https://streaming-api.svc.rno2.c.replicate.net/v1/streams/b4yonjrmynb65tnkucuqc4duawdekslfzexk5itc",
    },
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def upstream() -> AsyncIterator[ReplicateUpstream]:
    async with ReplicateUpstream() as server:
        yield server


def media_for(transport: Transport, clock: FakeClock, server: ReplicateUpstream, **options: Any) -> Media:
    return build_media(
        transport,
        clock,
        {"rep": (SPEC, settings("rep", "replicate", server.base_url, **options))},
        {"schnell": [("rep", "black-forest-labs/flux-schnell")], "sdxl": [("rep", f"stability-ai/sdxl:{VERSION}")]},
    )


def provider(**options: Any) -> ReplicateProvider:
    built = SPEC.factory(settings("rep", "replicate", "https://api.replicate.com/v1", **options), Transport())
    assert isinstance(built, ReplicateProvider)
    return built


# -- request translation ---------------------------------------------------------------------------------------


def test_models_route_by_name_or_version() -> None:
    assert route_for("black-forest-labs/flux-schnell").path == "/models/black-forest-labs/flux-schnell/predictions"
    by_version = route_for(f"stability-ai/sdxl:{VERSION}")
    assert (by_version.path, by_version.version) == ("/predictions", VERSION)
    assert route_for(VERSION).version == VERSION


@pytest.mark.parametrize("model", ["flux-schnell", "a/b/c", "owner/name:notahash", "../x/predictions"])
def test_malformed_model_ids_are_refused(model: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        route_for(model)
    assert info.value.path == "model"


def test_the_recorded_create_body_is_reproduced() -> None:
    request = TaskRequest(model="sdxl", prompt="a studio photo of a rainbow colored corgi", size="512x512", seed=42069)
    body, warnings = build_body(request, route_for(f"stability-ai/sdxl:{VERSION}"), image_key="input_image")
    assert dump(body) == RECORDED_CREATE_REQUEST
    assert warnings == ()


def test_generic_input_mapping() -> None:
    request = TaskRequest(
        model="m",
        prompt="p",
        n=3,
        aspect_ratio="16:9",
        negative_prompt="blurry",
        images=("https://example.com/a.png", "data:image/png;base64,AAAA"),
        params={"go_fast": True, "webhook": "https://hooks.example/x", "quality": "hd", "mask": "https://m/x.png"},
    )
    body, warnings = build_body(request, route_for("o/n"), image_key="image")
    assert dump(body) == {
        "input": {
            "prompt": "p",
            "num_outputs": 3,
            "aspect_ratio": "16:9",
            "negative_prompt": "blurry",
            "image": "https://example.com/a.png",
            "image_2": "data:image/png;base64,AAAA",
            "go_fast": True,
            "mask": "https://m/x.png",
        },
        "webhook": "https://hooks.example/x",
    }
    assert [w.setting for w in warnings] == ["quality"]


# -- response translation -------------------------------------------------------------------------------------


def test_the_recorded_succeeded_prediction() -> None:
    snapshot = provider()._snapshot(
        parse(RECORDED_GET, Prediction, provider="rep", what="x"), kind=None, outputs_complete=False, warnings=()
    )
    assert (snapshot.status, snapshot.progress, snapshot.kind) == ("succeeded", 1.0, "image")
    (artifact,) = snapshot.outputs
    assert artifact.url == RECORDED_GET["output"][0]
    assert artifact.media_type == "image/png"
    assert snapshot.extra["metrics"] == {"predict_time": 3.804328}


def test_the_recorded_canceled_prediction() -> None:
    snapshot = provider()._snapshot(
        parse(RECORDED_CANCELED, Prediction, provider="rep", what="x"), kind=None, outputs_complete=False, warnings=()
    )
    assert (snapshot.status, snapshot.outputs, snapshot.error) == ("canceled", (), None)


def test_a_blocking_201_with_output_counts_as_finished() -> None:
    prediction = parse(RECORDED_BLOCKING_201, Prediction, provider="rep", what="x")
    done = provider()._snapshot(prediction, kind="image", outputs_complete=True, warnings=())
    assert (done.status, done.raw_status) == ("succeeded", "processing")
    (artifact,) = done.outputs
    assert artifact.extra["text"] == "\n\nFuzzy, gentle beasts\nSoftly grazing, quiet eyes\nLlama's gentle charm"
    polled = provider()._snapshot(prediction, kind=None, outputs_complete=False, warnings=())
    assert polled.status == "running"


def test_progress_comes_from_the_last_tqdm_line() -> None:
    body = {**RECORDED_GET, "status": "processing", "logs": RECORDED_GET["logs"].rsplit("\n", 1)[0]}
    snapshot = provider()._snapshot(
        parse(body, Prediction, provider="rep", what="x"), kind=None, outputs_complete=False, warnings=()
    )
    assert (snapshot.status, snapshot.progress, snapshot.outputs) == ("running", 0.04, ())


@pytest.mark.parametrize(
    ("error", "message"), [("boom", "boom"), ({"detail": "NSFW content detected"}, "NSFW content detected")]
)
def test_failed_predictions_carry_the_error(error: Any, message: str) -> None:
    body = {**RECORDED_GET, "status": "failed", "output": None, "error": error}
    snapshot = provider()._snapshot(
        parse(body, Prediction, provider="rep", what="x"), kind=None, outputs_complete=False, warnings=()
    )
    assert snapshot.status == "failed"
    assert snapshot.error is not None and snapshot.error.message == message


def test_aborted_is_a_failure() -> None:
    body = {**RECORDED_CANCELED, "status": "aborted"}
    snapshot = provider()._snapshot(
        parse(body, Prediction, provider="rep", what="x"), kind=None, outputs_complete=False, warnings=()
    )
    assert snapshot.status == "failed" and snapshot.error is not None and snapshot.error.code == "aborted"


def test_a_single_url_and_data_urls_are_outputs() -> None:
    body = {**RECORDED_GET, "output": "data:image/webp;base64,UklGRg=="}
    snapshot = provider()._snapshot(
        parse(body, Prediction, provider="rep", what="x"), kind=None, outputs_complete=False, warnings=()
    )
    assert [(a.url, a.media_type) for a in snapshot.outputs] == [("data:image/webp;base64,UklGRg==", "image/webp")]


def test_wait_option_is_validated() -> None:
    with pytest.raises(ConfigError) as info:
        provider(wait=61)
    assert info.value.key == "providers.rep.wait"
    with pytest.raises(ConfigError) as info:
        provider(wiat=5)
    assert "did you mean 'wait'" in str(info.value)


def test_prefer_wait_leaves_a_margin_below_the_first_byte_timeout() -> None:
    from polyrelay.provider import CallContext

    p = provider()
    assert p._wait_seconds(CallContext(model="o/n", timeouts=Timeouts(first_byte=120))) == 60
    assert p._wait_seconds(CallContext(model="o/n", timeouts=Timeouts(first_byte=20))) == 15
    assert p._wait_seconds(CallContext(model="o/n", timeouts=Timeouts(first_byte=3))) == 0


# -- lifecycle over loopback -------------------------------------------------------------------------------------


async def test_prefer_wait_returns_a_finished_prediction_without_polling(
    transport: Transport, clock: FakeClock, upstream: ReplicateUpstream
) -> None:
    upstream.push_outcome(ReplicateOutcome(finishes_within_wait=True, status_at_201="processing", output="string"))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="schnell", prompt="a corgi")
    assert task.status == "succeeded"
    (create,) = upstream.requests
    assert create.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert create.headers["Prefer"] == "wait=25"  # first_byte 30 s minus the 5 s margin
    assert create.headers["Authorization"] == f"Bearer {API_KEY}"
    assert create.json == {"input": {"prompt": "a corgi"}}
    assert (await media.tasks.wait(task.id, timeout=10)).outputs == task.outputs
    image = await media.images.download(task.outputs[0].url or "", provider="rep")
    assert image.startswith(b"\x89PNG")


async def test_polling_with_progress_from_logs(
    transport: Transport, clock: FakeClock, upstream: ReplicateUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="sdxl", prompt="a corgi", n=2)
    assert task.status == "queued"
    assert upstream.requests[0].json == {"input": {"prompt": "a corgi", "num_outputs": 2}, "version": VERSION}
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=60, on_progress=seen.append)
    assert [(t.status, t.progress) for t in seen] == [
        ("queued", None),
        ("running", 0.3),
        ("running", 0.65),
        ("succeeded", 1.0),
    ]
    assert len(done.outputs) == 2
    assert all(r.path == f"/v1/predictions/{task.upstream_id}" for r in upstream.requests[1:])


async def test_a_failed_prediction_raises_task_failed(
    transport: Transport, clock: FakeClock, upstream: ReplicateUpstream
) -> None:
    upstream.push_outcome(ReplicateOutcome(status="failed", error="CUDA out of memory"))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="schnell", prompt="a corgi")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=60)
    assert info.value.code == "prediction_failed"
    assert "CUDA out of memory" in str(info.value)


async def test_cancel(transport: Transport, clock: FakeClock, upstream: ReplicateUpstream) -> None:
    upstream.push_outcome(ReplicateOutcome(processing_polls=50))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="schnell", prompt="a corgi")
    canceled = await media.tasks.cancel(task.id)
    assert canceled.status == "canceled" and canceled.id == task.id
    assert upstream.requests[-1].method == "POST"
    assert upstream.requests[-1].path == f"/v1/predictions/{task.upstream_id}/cancel"
    assert (await media.tasks.wait(task.id, timeout=5)).status == "canceled"


async def test_unauthenticated_is_classified(transport: Transport, clock: FakeClock) -> None:
    async with ReplicateUpstream(api_key="another-key") as server:
        media = media_for(transport, clock, server)
        with pytest.raises(AuthenticationFailed) as info:
            await media.tasks.create(model="schnell", prompt="a corgi")
    assert "You did not pass a valid authentication token" in str(info.value)
    assert len(server.requests) == 1  # not retried


async def test_throttling_is_retried_after_retry_after(
    transport: Transport, clock: FakeClock, upstream: ReplicateUpstream
) -> None:
    upstream.add_fault(Fault.status_code(429, retry_after=1))
    media = media_for(transport, clock, upstream)
    task = await media.tasks.create(model="schnell", prompt="a corgi")
    assert task.status == "queued"
    assert clock.sleeps[0] >= 1.0


async def test_throttling_everywhere_ends_in_rate_limited(
    transport: Transport, clock: FakeClock, upstream: ReplicateUpstream
) -> None:
    upstream.add_fault(Fault.status_code(429, retry_after=1), times=None)
    media = media_for(transport, clock, upstream)
    with pytest.raises(RateLimited) as info:
        await media.tasks.create(model="schnell", prompt="a corgi")
    assert info.value.retry_after == 1.0
    assert "Expected available in 1 second" in str(info.value)
    assert len(upstream.requests) == 3


async def test_forged_prediction_ids_do_not_reach_the_network(
    transport: Transport, clock: FakeClock, upstream: ReplicateUpstream
) -> None:
    from polyrelay.tasks import TaskRef, encode_task_id

    media = media_for(transport, clock, upstream)
    forged = encode_task_id(TaskRef(provider="rep", model="o/n", upstream_id="../../models", kind="image", created=0.0))
    with pytest.raises(InvalidRequest) as info:
        await media.tasks.get(forged)
    assert info.value.path == "task_id"
    assert upstream.requests == []
