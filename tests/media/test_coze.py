"""The Coze provider: workflow runs (stream, sync, async) as tasks, node progress, decoded outputs, errors.

Wire references: coze-dev/coze-py ``cozepy/workflows/runs/__init__.py``, ``runs/run_histories/__init__.py`` and the
stream fixture ``tests/testdata/workflow_run_stream_resp.txt``; the Coze "workflow run" doc page (POST
https://api.coze.cn/v1/workflow/run, body ``{"workflow_id", "parameters", ...}``); as summarised in
wire-video-audio-workflow.md §5.3 and §5.6.
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
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServerError,
    TaskFailed,
    TaskTimeout,
    UnsupportedFeature,
    UpstreamStatusError,
)
from polyrelay.sse import SSEDecoder
from polyrelay.testing._coze import CozeOutcome, CozeUpstream
from polyrelay.testing._faults import Fault
from polyrelay.transport import Transport
from polyrelay.types.chat import ChatRequest, Message
from polyrelay.types.media import Task, TaskRequest
from polyrelay_coze import SPEC
from polyrelay_coze._errors import STATUS_MAP, classified
from polyrelay_coze._provider import CozeProvider, _StreamState, decode_output
from polyrelay_coze._request import build_run
from polyrelay_coze._wire import dump

TOKEN = "pat_Xb2Kq9Lm3NpR7sTv1WyZ0aBcDeFgHiJk"
WORKFLOW = "7561161554420482088"
COVER = "https://cdn.example.com/cover.png"
# Message frames 0, 1, 4 and 5 and the Done frame of coze-py's tests/testdata/workflow_run_stream_resp.txt.
FIXTURE = (
    'id: 0\nevent: Message\ndata: {"content":"msg","node_is_finish":false,"node_seq_id":"0","node_title":"Message"}\n\n'
    'id: 1\nevent: Message\ndata: {"content":"为","node_is_finish":false,"node_seq_id":"1","node_title":"Message"}\n\n'
    'id: 4\nevent: Message\ndata: {"content":"坐不下！","node_is_finish":true,"node_seq_id":"4",'
    '"node_title":"Message"}\n\n'
    'id: 5\nevent: Message\ndata: {"content":"{\\"output\\":\\"为什么小明要带一把尺子去看电影？\\"}","cost":"0.00",'
    '"node_is_finish":true,"node_seq_id":"0","node_title":"","token":0}\n\n'
    "id: 6\nevent: Done\ndata: {}\n\n"
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def upstream() -> AsyncIterator[CozeUpstream]:
    async with CozeUpstream(api_key=TOKEN) as server:
        yield server


@pytest.fixture
async def opened() -> AsyncIterator[list[Media]]:
    made: list[Media] = []
    yield made
    for media in made:
        for provider in media.providers.values():
            assert isinstance(provider, CozeProvider)
            await provider.aclose()


def media_for(
    opened: list[Media], transport: Transport, clock: FakeClock, server: CozeUpstream, **options: Any
) -> Media:
    media = build_media(
        transport, clock, {"coze": (SPEC, settings("coze", "coze", server.base_url, key=TOKEN, **options))}
    )
    opened.append(media)
    return media


def body_of(**kw: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"prompt_input": "input", "bot_id": None, "app_id": None, "is_async": False}
    options.update(kw.pop("options", {}))
    return dump(build_run(TaskRequest(model="coze", **kw), kw.pop("workflow", WORKFLOW), **options))


# -- request translation and decoding --------------------------------------------------------------------------------


def test_the_documented_run_body() -> None:
    # The doc page's example: {"workflow_id": "7561161554420482088", "parameters": {"course_id": "5"}}
    assert body_of(params={"parameters": {"course_id": "5"}}) == {
        "workflow_id": WORKFLOW,
        "parameters": {"course_id": "5"},
    }
    assert body_of(prompt="tell a joke", params={"lang": "en"}, options={"bot_id": "73428668", "is_async": True}) == {
        "workflow_id": WORKFLOW,
        "parameters": {"lang": "en", "input": "tell a joke"},
        "bot_id": "73428668",
        "is_async": True,
    }


@pytest.mark.parametrize(
    ("kw", "path", "error"),
    [
        ({"params": {"bot_id": "1", "app_id": "2"}}, "params.app_id", InvalidRequest),
        ({"params": {"parameters": ["x"]}}, "params.parameters", InvalidRequest),
        ({"params": {"ext": "x"}}, "params.ext", InvalidRequest),
        ({"images": ("https://example.com/a.png",)}, "images", UnsupportedFeature),
    ],
)
def test_bad_input_names_the_field(kw: dict[str, Any], path: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        body_of(prompt="x", **kw)
    assert getattr(info.value, "path", None) == path


def test_a_workflow_id_must_be_a_plain_id() -> None:
    with pytest.raises(InvalidRequest) as info:
        build_run(
            TaskRequest(model="c", prompt="x"),
            "../7404",
            prompt_input="input",
            bot_id=None,
            app_id=None,
            is_async=False,
        )
    assert info.value.path == "model"


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ('{"output":"hello"}', {"output": "hello"}),
        ('{"Output":"{\\"story\\":\\"x\\"}"}', {"story": "x"}),  # the run-history wrapper
        ("plain text", {"output": "plain text"}),
        ("[1, 2]", {"output": [1, 2]}),
        ("", {}),
        (None, {}),
    ],
)
def test_outputs_are_decoded(text: str | None, decoded: dict[str, Any]) -> None:
    assert decode_output(text) == decoded


def test_the_coze_py_stream_fixture_folds_into_a_finished_run() -> None:
    provider = SPEC.factory(settings("coze", "coze", "http://127.0.0.1:1"), Transport())
    assert isinstance(provider, CozeProvider)
    state = _StreamState()
    ends = [provider._apply(state, event) for event in SSEDecoder().feed(FIXTURE.encode())]
    assert ends == [False, False, False, False, True]
    snapshot = provider._stream_snapshot("stream-1", state, "workflow")
    assert snapshot.status == "succeeded"
    assert snapshot.extra["outputs"] == {"output": "为什么小明要带一把尺子去看电影？"}
    assert snapshot.extra["messages"]["Message"] == "msg为坐不下！"
    assert [n["title"] for n in snapshot.extra["nodes"]] == ["Message", "End"]


def test_status_map_and_error_codes() -> None:
    assert dict(STATUS_MAP) == {"Running": "running", "Success": "succeeded", "Fail": "failed"}
    cases: list[tuple[int, type[UpstreamStatusError], int]] = [
        (4000, BadRequest, 400),
        (4200, NotFound, 404),
        (4100, AuthenticationFailed, 401),
        (4013, RateLimited, 429),
        (4019, QuotaExceeded, 402),
        (4999, BadRequest, 400),
        (5000, ServerError, 500),
    ]
    for code, error, status in cases:
        exc = classified(code, "m", status=200, provider="coze")
        assert (type(exc), exc.code, exc.status) == (error, str(code), status)


def test_options_are_validated() -> None:
    for options, key in [
        ({"mode": "websocket"}, "providers.c.mode"),
        ({"bot_id": "1", "app_id": "2"}, "providers.c.app_id"),
        ({"mdoe": "sync"}, "providers.c.mdoe"),
    ]:
        with pytest.raises(ConfigError) as info:
            SPEC.factory(settings("c", "coze", "http://127.0.0.1:1", **options), Transport())
        assert info.value.key == key


# -- streamed runs ---------------------------------------------------------------------------------------------------


async def test_streamed_run_reports_each_node_and_the_decoded_output(
    opened: list[Media], transport: Transport, clock: FakeClock
) -> None:
    async with CozeUpstream(api_key=TOKEN, manual=True) as server:
        media = media_for(opened, transport, clock, server)
        task = await media.tasks.create(model=f"coze/{WORKFLOW}", prompt="a lighthouse story")
        assert (task.status, task.kind, task.model) == ("running", "workflow", WORKFLOW)
        assert task.upstream_id.startswith("stream-")
        request = server.requests[0]
        assert (request.path, request.json) == (
            "/v1/workflow/stream_run",
            {"workflow_id": WORKFLOW, "parameters": {"input": "a lighthouse story"}},
        )
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        seen: list[Task] = []
        async for snapshot in media.tasks.watch(task.id, timeout=60, every_poll=True):
            seen.append(snapshot)
            server.release()
        assert [(t.extra["node"], t.progress) for t in seen[:-1]] == [
            ("Outline", 0.0),
            ("Outline", 0.5),
            ("Narration", 0.5),
            ("Narration", pytest.approx(2 / 3)),
            ("End", 0.75),
        ]
        done = seen[-1]
        assert (done.status, done.progress, done.raw_status) == ("succeeded", 1.0, "Success")
        assert done.extra["outputs"] == {"story": "The keeper climbed the stairs.", "cover": COVER}
        assert done.extra["messages"]["Narration"] == "The keeper climbed the stairs."
        assert [(a.url, a.media_type) for a in done.outputs] == [(COVER, "image/png")]


@pytest.mark.parametrize(
    ("outcome", "code", "text"),
    [
        (CozeOutcome(status="error"), "4000", "Request parameter error"),
        (CozeOutcome(status="interrupt"), "interrupted", "waits for an answer at node 'Question'"),
    ],
)
async def test_error_and_interrupt_events_fail_the_run(
    opened: list[Media],
    transport: Transport,
    clock: FakeClock,
    upstream: CozeUpstream,
    outcome: CozeOutcome,
    code: str,
    text: str,
) -> None:
    upstream.push_outcome(outcome)
    media = media_for(opened, transport, clock, upstream)
    task = await media.tasks.create(model=f"coze/{WORKFLOW}", prompt="x")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=60)
    assert info.value.code == code and text in str(info.value)
    if code == "interrupted":
        failed = await media.tasks.get(task.id)
        assert failed.extra["interrupt"]["event_id"] == "7404830425073352713/2769808280134765896"


async def test_a_broken_stream_fails_the_run(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: CozeUpstream
) -> None:
    upstream.add_fault(Fault.truncate(after_chunks=3))
    media = media_for(opened, transport, clock, upstream)
    task = await media.tasks.create(model=f"coze/{WORKFLOW}", prompt="x")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=60)
    assert info.value.code == "stream_interrupted"
    other = media_for(opened, transport, clock, upstream)  # another process never saw this stream
    with pytest.raises(InvalidRequest) as unknown:
        await other.tasks.get(task.id)
    assert unknown.value.path == "task_id"


# -- sync and async runs ---------------------------------------------------------------------------------------------


async def test_sync_run_is_done_at_submit(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: CozeUpstream
) -> None:
    media = media_for(opened, transport, clock, upstream, mode="sync")
    task = await media.tasks.create(model=f"coze/{WORKFLOW}", prompt="x")
    assert (task.status, task.extra["outputs"]["cover"], task.outputs[0].url) == ("succeeded", COVER, COVER)
    assert task.extra["usage"]["token_count"] == 150
    assert upstream.requests[0].path == "/v1/workflow/run" and "is_async" not in upstream.requests[0].json
    assert (await media.tasks.get(task.id)).status == "succeeded"
    assert len(upstream.requests) == 1  # answered from memory


async def test_async_run_is_polled_through_run_histories(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: CozeUpstream
) -> None:
    media = media_for(opened, transport, clock, upstream, mode="async", app_id="7438")
    task = await media.tasks.create(model=f"coze/{WORKFLOW}", prompt="x")
    assert (task.status, task.raw_status) == ("running", "Running")
    assert upstream.requests[0].json == {
        "workflow_id": WORKFLOW,
        "parameters": {"input": "x"},
        "app_id": "7438",
        "is_async": True,
    }
    upstream.add_fault(Fault.status_code(503), times=1)
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=60, on_progress=seen.append)
    assert [t.raw_status for t in seen] == ["Running", "Success"]
    assert done.extra["outputs"]["story"] == "The keeper climbed the stairs."
    polls = [r.path for r in upstream.requests[1:]]
    assert polls == [f"/v1/workflows/{WORKFLOW}/run_histories/{task.upstream_id}"] * 4  # a 503, then three
    assert all(3.0 <= s <= 3.6 for s in clock.sleeps[1:])


async def test_async_failure_and_timeout(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: CozeUpstream
) -> None:
    upstream.push_outcome(CozeOutcome(status="fail", error_code=5000, error_message="node LLM timed out"))
    upstream.push_outcome(CozeOutcome(running_polls=10_000))
    media = media_for(opened, transport, clock, upstream, mode="async")
    failing = await media.tasks.create(model=f"coze/{WORKFLOW}", prompt="x")
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(failing.id, timeout=60)
    assert info.value.code == "5000" and "node LLM timed out" in str(info.value)
    slow = await media.tasks.create(model=f"coze/{WORKFLOW}", prompt="x")
    with pytest.raises(TaskTimeout):
        await media.tasks.wait(slow.id, timeout=30)
    with pytest.raises(UnsupportedFeature):
        await media.tasks.cancel(slow.id)


async def test_envelope_errors_are_classified_with_the_log_id(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: CozeUpstream
) -> None:
    media = media_for(opened, transport, clock, upstream, mode="sync")
    with pytest.raises(NotFound) as info:
        await media.tasks.create(model="coze/7000000000000000000", prompt="x")  # not published: code 4200 in a 200
    assert (info.value.code, info.value.status) == ("4200", 404) and info.value.request_id
    with pytest.raises(NotFound):  # the stream endpoint answers the same envelope instead of a stream
        await media_for(opened, transport, clock, upstream).tasks.create(model="coze/7000000000000000000", prompt="x")
    async with CozeUpstream(api_key="pat_the-right-one") as other:
        wrong = media_for(opened, transport, clock, other, mode="sync")
        with pytest.raises(AuthenticationFailed) as auth:
            await wrong.tasks.create(model=f"coze/{WORKFLOW}", prompt="x")
        assert auth.value.code == "4100"
        assert TOKEN not in str(auth.value) and TOKEN not in repr(auth.value) and TOKEN not in repr(wrong.providers)


async def test_chat_bridge_answers_with_the_output_file(
    opened: list[Media], transport: Transport, clock: FakeClock, upstream: CozeUpstream
) -> None:
    media = media_for(opened, transport, clock, upstream)
    completion = await media.bridge.complete(
        ChatRequest(model=f"coze/{WORKFLOW}", messages=(Message(role="user", content="a lighthouse story"),))
    )
    content = completion.choices[0].message.content or ""
    assert content.startswith(f"![image]({COVER})\n\ntask_id: task_")
