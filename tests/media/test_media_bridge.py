"""The chat bridge: chat completions for media models, streamed (progress lines, then markdown) and not.

The exact format is the one documented in polyrelay.bridge (and wire-images.md §8 for the relay conventions).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from media_harness import FakeClock, Media, build_media, open_transport, settings

from polyrelay.bridge import chat_to_task_request, render_markdown, status_line
from polyrelay.errors import InvalidRequest, TaskFailed, UnsupportedFeature
from polyrelay.testing._flux import FluxOutcome, FluxUpstream
from polyrelay.testing._openai_images import tiny_png
from polyrelay.testing._replicate import ReplicateUpstream
from polyrelay.transport import Transport
from polyrelay.types._converters import parse_request
from polyrelay.types.chat import ChatRequest
from polyrelay.types.completion import ChatCompletionChunk
from polyrelay.types.media import Artifact, Task
from polyrelay_flux import SPEC as FLUX
from polyrelay_replicate import SPEC as REPLICATE

PNG_URI = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()


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


def media_for(transport: Transport, clock: FakeClock, flux: FluxUpstream) -> Media:
    return build_media(
        transport,
        clock,
        {"bfl": (FLUX, settings("bfl", "flux", flux.base_url))},
        {"flux": [("bfl", "flux-pro-1.1")], "kontext": [("bfl", "flux-kontext-pro")]},
    )


def chat(model: str = "flux", content: Any = "a lighthouse at dusk", **extra: Any) -> ChatRequest:
    return parse_request(
        {
            "model": model,
            "messages": [
                {"role": "system", "content": "You draw."},
                {"role": "user", "content": "an older prompt"},
                {"role": "assistant", "content": "![image](https://old)"},
                {"role": "user", "content": content},
            ],
            **extra,
        }
    )


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- request mapping -------------------------------------------------------------------------------------------


def test_the_last_user_message_is_the_prompt_and_its_images_the_references() -> None:
    request = chat(
        "kontext",
        [
            {"type": "text", "text": "make it night"},
            {"type": "image_url", "image_url": {"url": PNG_URI}},
            {"type": "text", "text": "with stars"},
        ],
        aspect_ratio="16:9",
        safety_tolerance=2,
        seed=7,
    )
    task = chat_to_task_request(request)
    assert task.prompt == "make it night\nwith stars"
    assert task.images == (PNG_URI,)
    assert (task.aspect_ratio, task.seed, task.params) == ("16:9", 7, {"safety_tolerance": 2})


@pytest.mark.parametrize(
    ("request_", "error", "path"),
    [
        ({"model": "flux", "messages": [{"role": "system", "content": "x"}]}, InvalidRequest, "messages"),
        ({"model": "flux", "messages": [{"role": "user", "content": "  "}]}, InvalidRequest, "messages[0].content"),
        ({"model": "flux", "n": 2, "messages": [{"role": "user", "content": "x"}]}, UnsupportedFeature, "n"),
        (
            {
                "model": "flux",
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}
                ],
            },
            UnsupportedFeature,
            "messages[0].content[0]",
        ),
    ],
)
def test_bad_chat_requests(request_: dict[str, Any], error: type[Exception], path: str) -> None:
    with pytest.raises(error) as info:
        chat_to_task_request(parse_request(request_))
    assert getattr(info.value, "path", None) == path


def test_markdown_per_media_type() -> None:
    task = Task(
        id="task_x",
        model="m",
        provider="p",
        kind="video",
        status="succeeded",
        upstream_id="u",
        outputs=(
            Artifact(url="https://h/a.png", media_type="image/png"),
            Artifact(url="https://h/b.mp4", media_type="video/mp4"),
            Artifact(url="https://h/c.mp3", media_type="audio/mpeg"),
            Artifact(url="https://h/d.bin", media_type="application/zip"),
            Artifact(url="https://h/e"),  # no type: the task's kind
            Artifact(extra={"text": "no url"}),
        ),
    )
    assert render_markdown(task) == (
        "![image](https://h/a.png)\n[video](https://h/b.mp4)\n[audio](https://h/c.mp3)\n[file](https://h/d.bin)\n"
        "[video](https://h/e)\nno url"
    )


def test_text_outputs_and_workflow_outputs() -> None:
    lyrics = Task(
        id="t",
        model="m",
        provider="suno",
        kind="audio",
        status="succeeded",
        upstream_id="u",
        outputs=(Artifact(media_type="text/plain", title="Night Drive", extra={"text": "la la"}),),
    )
    assert render_markdown(lyrics) == "**Night Drive**\n\nla la"
    workflow = Task(
        id="t",
        model="m",
        provider="dify",
        kind="workflow",
        status="succeeded",
        upstream_id="u",
        extra={"outputs": {"answer": "42"}},
    )
    assert render_markdown(workflow) == '```json\n{\n  "answer": "42"\n}\n```'
    empty = Task(id="t", model="m", provider="p", kind="image", status="succeeded", upstream_id="u")
    assert render_markdown(empty) == "(no output)"


def test_status_line_names_the_running_node() -> None:
    running = Task(
        id="t",
        model="m",
        provider="dify",
        kind="workflow",
        status="running",
        upstream_id="u",
        progress=2 / 3,
        extra={"node": "Render the poster"},
    )
    assert status_line(running) == "status: running 67% (Render the poster)\n"
    done = attrs.evolve(running, status="succeeded", progress=1.0)
    assert status_line(done) == "status: succeeded\n"


# -- over loopback ---------------------------------------------------------------------------------------------------


async def test_non_streaming_returns_markdown_and_the_task_id(
    transport: Transport, clock: FakeClock, flux: FluxUpstream
) -> None:
    media = media_for(transport, clock, flux)
    assert media.bridge.handles("flux")
    completion = await media.bridge.complete(chat())
    content = completion.choices[0].message.content or ""
    image_line, blank, id_line = content.split("\n")
    assert image_line.startswith("![image](") and "/delivery/" in image_line
    assert blank == ""
    task_id = id_line.removeprefix("task_id: ")
    assert (await media.tasks.get(task_id)).status == "succeeded"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "flux"
    assert completion.usage is not None and completion.usage.total_tokens == 0
    assert completion.meta is not None and completion.meta.provider == "bfl"
    assert flux.requests[0].json == {"prompt": "a lighthouse at dusk"}


async def test_streaming_progress_lines_then_markdown(
    transport: Transport, clock: FakeClock, flux: FluxUpstream
) -> None:
    media = media_for(transport, clock, flux)
    request = chat(stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in media.bridge.stream(request)]
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    lines = text_of(chunks).split("\n")
    assert lines[0].startswith("task_id: task_")
    assert lines[1:5] == ["status: queued", "status: running 33%", "status: running 67%", "status: succeeded"]
    assert lines[5] == ""
    assert lines[6].startswith("![image](") and lines[7] == ""
    finish, usage = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason == "stop" and finish.choices[0].delta.content is None
    assert usage.choices == () and usage.usage is not None and usage.usage.total_tokens == 0
    assert {c.id for c in chunks} == {chunks[0].id} and all(c.model == "flux" for c in chunks)


async def test_streaming_sends_keepalives_while_nothing_changes(
    transport: Transport, clock: FakeClock, flux: FluxUpstream
) -> None:
    flux.push_outcome(FluxOutcome(pending_polls=8, progress=False))
    media = media_for(transport, clock, flux)
    chunks = [c async for c in media.bridge.stream(chat(stream=True))]
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].finish_reason is None]
    assert contents.count("") >= 3  # the opening chunk plus keepalives (keepalive = 1 s, polls every 0.5-1 s)
    assert text_of(chunks).count("status: running") == 1


async def test_streaming_a_failure_reports_then_raises(
    transport: Transport, clock: FakeClock, flux: FluxUpstream
) -> None:
    media = media_for(transport, clock, flux)
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(TaskFailed) as info:
        async for chunk in media.bridge.stream(chat(content="something forbidden", stream=True)):
            chunks.append(chunk)
    assert info.value.code == "content_policy_violation"
    assert "status: failed: the prompt or input image was flagged" in text_of(chunks)
    assert all(c.choices[0].finish_reason is None for c in chunks if c.choices)


async def test_non_streaming_failure_raises(transport: Transport, clock: FakeClock, flux: FluxUpstream) -> None:
    flux.push_outcome(FluxOutcome(kind="error", pending_polls=1))
    media = media_for(transport, clock, flux)
    with pytest.raises(TaskFailed):
        await media.bridge.complete(chat())


async def test_input_errors_raise_before_anything_is_submitted(
    transport: Transport, clock: FakeClock, flux: FluxUpstream
) -> None:
    media = media_for(transport, clock, flux)
    with pytest.raises(InvalidRequest) as info:  # a chat-level problem: raised by stream() itself
        media.bridge.stream(
            parse_request({"model": "flux", "stream": True, "messages": [{"role": "system", "content": "x"}]})
        )
    assert info.value.path == "messages"
    stream = media.bridge.stream(chat(size="1000x1000", stream=True))
    with pytest.raises(InvalidRequest) as info:  # a provider-level problem: raised before the first chunk
        await anext(stream)
    assert info.value.path == "size"
    assert flux.requests == []


async def test_reference_images_reach_the_upstream(transport: Transport, clock: FakeClock, flux: FluxUpstream) -> None:
    media = media_for(transport, clock, flux)
    await media.bridge.complete(
        chat("kontext", [{"type": "text", "text": "night"}, {"type": "image_url", "image_url": {"url": PNG_URI}}])
    )
    assert flux.requests[0].json["input_image"] == PNG_URI.split(",", 1)[1]


async def test_only_media_models_are_handled(transport: Transport, clock: FakeClock) -> None:
    async with ReplicateUpstream() as replicate:
        media = build_media(
            transport, clock, {"rep": (REPLICATE, settings("rep", "replicate", replicate.base_url))}, {}
        )
        assert media.bridge.handles("rep/owner/model")
        assert not media.bridge.handles("nowhere/model")
