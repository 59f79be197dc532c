"""The Dify provider: workflow runs as tasks with streamed node progress, outputs, stop and polling fallback.

Wire references: langgenius/dify ``web/app/components/develop/template/template_workflow.en.mdx`` (POST
/workflows/run blocking and streaming events, GET /workflows/run/{id}, POST /workflows/tasks/{task_id}/stop),
Calcium-Ion/new-api ``relay/channel/dify``, and the relay example at aiznt.apifox.cn/api-362118657 (a ``model``
field, Dify file objects in the outputs), as summarised in wire-video-audio-workflow.md §5.1, §5.2, §5.6.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from media_harness import FakeClock, Media, build_media, open_transport, settings

from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    RateLimited,
    TaskFailed,
    TaskTimeout,
    UnsupportedFeature,
    UpstreamStatusError,
)
from polyrelay.testing._dify import DifyOutcome, DifyUpstream
from polyrelay.testing._faults import Fault
from polyrelay.transport import Transport
from polyrelay.types.chat import ChatRequest, Message
from polyrelay.types.media import Task, TaskRequest
from polyrelay.workflows.outputs import artifacts_in
from polyrelay_dify import SPEC
from polyrelay_dify._errors import STATUS_MAP, classified
from polyrelay_dify._provider import DifyProvider
from polyrelay_dify._request import build_run
from polyrelay_dify._wire import StreamEvent, converter, dump, parse

KEY = "app-9fKq2xLm3NpR7sTv1WyZ0aBc"
STEPS = [
    ("Start", 0.0),
    ("Start", 0.5),
    ("Write the script", 0.5),
    ("Write the script", 2 / 3),
    ("Render the poster", 2 / 3),
    ("Render the poster", 0.75),
    ("End", 0.75),
    ("End", 0.8),
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def upstream() -> AsyncIterator[DifyUpstream]:
    async with DifyUpstream(api_key=KEY) as server:
        yield server


@pytest.fixture
async def opened() -> AsyncIterator[list[Media]]:
    """Media whose providers are closed at the end (they follow streamed runs in background tasks)."""
    made: list[Media] = []
    yield made
    for media in made:
        for provider in media.providers.values():
            assert isinstance(provider, DifyProvider)
            await provider.aclose()


def media_for(
    opened: list[Media], transport: Transport, clock: FakeClock, server: DifyUpstream, **options: Any
) -> Media:
    media = build_media(
        transport,
        clock,
        {"dify": (SPEC, settings("dify", "dify", server.base_url, key=KEY, **options))},
        {"story-flow": [("dify", "story-flow")]},
    )
    opened.append(media)
    return media


def run_body(**kw: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "response_mode": "streaming",
        "user": "polyrelay",
        "prompt_input": "query",
        "send_model": False,
    }
    options.update(kw.pop("options", {}))
    return dump(build_run(TaskRequest(model="flow", **kw), "story-flow", **options))


# -- request translation (§5.1, §5.2) -------------------------------------------------------------------------------


def test_the_relay_example_body() -> None:
    # §5.1: {"model": "workflow-test", "inputs": {...}, "response_mode": "blocking", "user": "..."}
    body = dump(
        build_run(
            TaskRequest(model="flow", params={"inputs": {"topic": "tides"}}),
            "workflow-test",
            response_mode="blocking",
            user="abc-123",
            prompt_input="query",
            send_model=True,
        )
    )
    assert body == {
        "inputs": {"topic": "tides"},
        "response_mode": "blocking",
        "user": "abc-123",
        "model": "workflow-test",
    }


def test_inputs_merge_params_prompt_and_generic_fields_and_images_become_files() -> None:
    body = run_body(
        prompt="a lighthouse story",
        images=("https://example.com/ref.png",),
        aspect_ratio="16:9",
        params={"inputs": {"query": "explicit wins"}, "style": "noir", "user": "end-user-7"},
    )
    assert body == {
        "inputs": {"query": "explicit wins", "style": "noir", "aspect_ratio": "16:9"},
        "response_mode": "streaming",
        "user": "end-user-7",
        "files": [{"type": "image", "transfer_method": "remote_url", "url": "https://example.com/ref.png"}],
    }
    assert run_body(prompt="hi")["inputs"] == {"query": "hi"}
    assert run_body(prompt="hi", options={"prompt_input": "topic"})["inputs"] == {"topic": "hi"}


@pytest.mark.parametrize(
    ("kw", "path", "error"),
    [
        ({"images": ("data:image/png;base64,iVBORw0KGgo=",)}, "images[0]", UnsupportedFeature),
        ({"params": {"inputs": ["x"]}}, "params.inputs", InvalidRequest),
        ({"params": {"response_mode": "sse"}}, "params.response_mode", InvalidRequest),
        ({"params": {"user": ""}}, "params.user", InvalidRequest),
        ({"params": {"files": "f"}}, "params.files", InvalidRequest),
    ],
)
def test_bad_input_names_the_field(kw: dict[str, Any], path: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        run_body(prompt="x", **kw)
    assert getattr(info.value, "path", None) == path


def test_file_objects_and_media_urls_in_outputs_become_artifacts() -> None:
    # §5.1: the relay's video output as a Dify file object; plus a relative tool-file URL and plain strings.
    outputs = {
        "video": {
            "dify_model_identity": "__dify__file__",
            "type": "video",
            "transfer_method": "tool_file",
            "filename": "clip.mp4",
            "extension": ".mp4",
            "mime_type": "video/mp4",
            "size": 2048,
            "url": "https://files.example.com/clip.mp4?sign=x",
        },
        "frames": [{"url": "/files/tools/f1.png", "transfer_method": "tool_file", "mime_type": "image/png"}],
        "cover": "https://cdn.example.com/cover.jpg",
        "summary": "see https://example.com/page for details",
        "link": "https://example.com/page",
    }
    found = artifacts_in(outputs, base_url="https://dify.example.com/v1")
    assert [(a.url, a.media_type, a.title, a.extra["path"]) for a in found] == [
        ("https://files.example.com/clip.mp4?sign=x", "video/mp4", "clip.mp4", "video"),
        ("https://dify.example.com/files/tools/f1.png", "image/png", None, "frames[0]"),
        ("https://cdn.example.com/cover.jpg", "image/jpeg", None, "cover"),
    ]
    assert found[0].extra["size"] == 2048 and found[0].extra["type"] == "video"


def test_status_map_and_error_codes() -> None:
    assert dict(STATUS_MAP) == {
        "running": "running",
        "succeeded": "succeeded",
        "partial-succeeded": "succeeded",
        "failed": "failed",
        "stopped": "canceled",
        "paused": "running",
    }
    cases: list[tuple[int, str, type[UpstreamStatusError]]] = [
        (400, "invalid_param", BadRequest),
        (400, "provider_quota_exceeded", QuotaExceeded),
        (404, "workflow_not_found", NotFound),
        (401, "unauthorized", AuthenticationFailed),
        (429, "too_many_requests", RateLimited),
        (400, "something_new", BadRequest),
    ]
    for status, code, error in cases:
        exc = classified(status, code, "m", provider="dify")
        assert (type(exc), exc.code, exc.status) == (error, code, status)


def test_the_documented_stream_event_parses_and_round_trips() -> None:
    # §5.2 node_finished event.
    data = {
        "event": "node_finished",
        "task_id": "5ad4cb98-f0c7-4085-b384-88c403be6290",
        "workflow_run_id": "5ad498-f0c7-4085-b384-88cbe6290",
        "data": {
            "id": "n1",
            "node_id": "dfjasklfjdslag",
            "node_type": "start",
            "title": "Start",
            "index": 0,
            "status": "succeeded",
            "elapsed_time": 0.324,
        },
    }
    event = parse(data, StreamEvent, provider="dify", what="event")
    assert converter().unstructure(event) == data


def test_options_are_validated() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"response_mode": "sse"}, "providers.d.response_mode"),
        ({"user": ""}, "providers.d.user"),
        ({"send_model": "yes"}, "providers.d.send_model"),
        ({"respons_mode": "blocking"}, "providers.d.respons_mode"),
        ({"live_poll_wait": 0}, "providers.d.live_poll_wait"),
    ]
    for options, key in cases:
        with pytest.raises(ConfigError) as info:
            SPEC.factory(settings("d", "dify", "http://127.0.0.1:1/v1", **options), Transport())
        assert info.value.key == key


# -- streamed runs over loopback -------------------------------------------------------------------------------------


async def test_streamed_run_reports_each_node_and_the_outputs(
    opened: list[Media], transport: Transport, clock: FakeClock
) -> None:
    async with DifyUpstream(api_key=KEY, manual=True) as server:
        media = media_for(opened, transport, clock, server)
        task = await media.tasks.create(model="story-flow", prompt="a lighthouse story")
        assert (task.status, task.kind, task.progress) == ("running", "workflow", 0.0)
        run_id, task_id = task.upstream_id.split(":")
        assert server.requests[0].json == {
            "inputs": {"query": "a lighthouse story"},
            "response_mode": "streaming",
            "user": "polyrelay",
        }
        assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"
        server.release()
        seen: list[Task] = []
        async for snapshot in media.tasks.watch(task.id, timeout=60, every_poll=True):
            seen.append(snapshot)
            server.release()  # one more event per poll: every node shows up, in order
        assert [t.extra["node"] for t in seen[:-1]] == [n for n, _ in STEPS]
        assert [t.progress for t in seen[:-1]] == pytest.approx([p for _, p in STEPS])
        assert all(t.status == "running" for t in seen[:-1])
        done = seen[-1]
        assert (done.status, done.progress, done.extra["workflow_run_id"], done.extra["task_id"]) == (
            "succeeded",
            1.0,
            run_id,
            task_id,
        )
        assert [n["title"] for n in done.extra["nodes"]] == [n for n, _ in STEPS[::2]]
        assert {n["status"] for n in done.extra["nodes"]} == {"succeeded"}
        assert done.extra["outputs"]["text"] == "A lighthouse keeper finds a message in a bottle."
        (poster,) = done.outputs
        assert (poster.media_type, poster.title) == ("image/png", "poster.png")
        assert (poster.url or "").startswith(f"{server.origin}/files/tools/")
        assert [r.path for r in server.requests] == ["/v1/workflows/run"]  # polls were answered from the stream


async def test_failed_node_fails_the_run(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: DifyUpstream
) -> None:
    upstream.push_outcome(DifyOutcome(status="failed"))
    media = media_for(opened, transport, clock, upstream)
    task = await media.tasks.create(model="story-flow", prompt="x")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=60)
    assert info.value.code == "workflow_failed" and "quota exhausted" in str(info.value)
    final = await media.tasks.get(task.id)
    assert [n["status"] for n in final.extra["nodes"]] == ["succeeded", "succeeded", "failed"]


async def test_an_error_event_mid_stream_fails_the_run_with_its_code(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: DifyUpstream
) -> None:
    upstream.add_fault(Fault.error_event(after_chunks=1))
    media = media_for(opened, transport, clock, upstream)
    task = await media.tasks.create(model="story-flow", prompt="x")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=60)
    assert info.value.code == "provider_quota_exceeded" and "quota is exhausted" in str(info.value)


async def test_a_broken_stream_falls_back_to_polling_the_run(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: DifyUpstream
) -> None:
    upstream.add_fault(Fault.truncate(after_chunks=2), path="/v1/workflows/run")
    media = media_for(opened, transport, clock, upstream)
    task = await media.tasks.create(model="story-flow", prompt="x")
    run_id = task.upstream_id.split(":")[0]
    upstream.add_fault(Fault.status_code(503), path=f"/v1/workflows/run/{run_id}")
    snapshots = [await media.tasks.get(task.id) for _ in range(6)]  # stream events, then HTTP polls
    polled = [r for r in upstream.requests if r.method == "GET"]
    assert polled and all(r.path == f"/v1/workflows/run/{run_id}" for r in polled)
    assert len(polled) >= 2  # the 503 was retried
    assert snapshots[-1].status == "running" and snapshots[-1].extra["workflow_run_id"] == run_id
    assert [n["title"] for n in snapshots[-1].extra["nodes"]] == ["Start", "Write the script"]


async def test_stop_cancels_a_running_workflow(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: DifyUpstream
) -> None:
    upstream.push_outcome(DifyOutcome(status="hold", hold_after=2))
    media = media_for(opened, transport, clock, upstream)
    task = await media.tasks.create(model="story-flow", prompt="x")
    for _ in range(10):  # follow the run until it holds after two nodes
        current = await media.tasks.get(task.id)
        if len(current.extra.get("nodes", ())) == 2 and current.progress == pytest.approx(2 / 3):
            break
    canceled = await media.tasks.cancel(task.id)
    assert (canceled.status, canceled.raw_status) == ("canceled", "stopped")
    stop = upstream.requests[-1]
    task_id = task.upstream_id.split(":")[1]
    assert (stop.method, stop.path, stop.json) == ("POST", f"/v1/workflows/tasks/{task_id}/stop", {"user": "polyrelay"})


async def test_timeout_while_the_workflow_holds(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: DifyUpstream
) -> None:
    upstream.push_outcome(DifyOutcome(status="hold", hold_after=1))
    media = media_for(opened, transport, clock, upstream, live_poll_wait=0.01)
    task = await media.tasks.create(model="story-flow", prompt="x")
    with pytest.raises(TaskTimeout) as info:
        await media.tasks.wait(task.id, timeout=2)
    assert info.value.task_id == task.id
    assert clock.sleeps and all(0.25 <= s <= 0.3 for s in clock.sleeps[:-1])  # the followed-run cadence


async def test_blocking_mode_finishes_at_submit_and_polls_over_http(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: DifyUpstream
) -> None:
    media = media_for(opened, transport, clock, upstream, response_mode="blocking", send_model=True, user="svc")
    task = await media.tasks.create(model="story-flow", topic="tides")
    assert (task.status, task.progress) == ("succeeded", 1.0)
    assert upstream.requests[0].json == {
        "inputs": {"topic": "tides"},
        "response_mode": "blocking",
        "user": "svc",
        "model": "story-flow",
    }
    assert task.extra["outputs"]["poster"]["filename"] == "poster.png" and len(task.outputs) == 1
    again = await media.tasks.get(task.id)
    assert again.status == "succeeded" and upstream.requests[-1].path.startswith("/v1/workflows/run/")


async def test_http_errors_are_classified_without_the_key(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: DifyUpstream
) -> None:
    media = media_for(opened, transport, clock, upstream)
    upstream.add_fault(
        Fault.status_code(400, body={"code": "invalid_param", "message": "query is required", "status": 400})
    )
    with pytest.raises(BadRequest) as bad:
        await media.tasks.create(model="story-flow", prompt="x")
    assert (bad.value.code, "query is required" in str(bad.value)) == ("invalid_param", True)
    upstream.add_fault(Fault.status_code(401, body={"code": "unauthorized", "message": f"bad key {KEY}"}))
    with pytest.raises(AuthenticationFailed) as auth:
        await media.tasks.create(model="story-flow", prompt="x")
    assert KEY not in str(auth.value) and KEY not in repr(auth.value) and KEY not in repr(media.providers["dify"])


async def test_chat_bridge_streams_progress_lines_and_the_output_file(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: DifyUpstream
) -> None:
    media = media_for(opened, transport, clock, upstream)
    request = ChatRequest(
        model="story-flow", messages=(Message(role="user", content="a lighthouse story"),), stream=True
    )
    pieces = [c.choices[0].delta.content for c in [chunk async for chunk in media.bridge.stream(request)] if c.choices]
    text = [p for p in pieces if p]
    assert text[0].startswith("task_id: task_") and text[1] == "status: running 0%\n"
    assert text[-2] == "status: succeeded\n"
    assert re.fullmatch(rf"\n!\[image\]\({re.escape(upstream.origin)}/files/tools/\w+\.png\?[^)]+\)\n", text[-1])
    running = [re.fullmatch(r"status: running (\d+)%(?: \((.+)\))?\n", line) for line in text[1:-2]]
    assert all(running), text  # only running lines
    percents = [int(m.group(1)) for m in running if m]
    assert percents == sorted(percents)  # never backwards
    assert any(m.group(2) for m in running if m), text  # the running node's title is named
