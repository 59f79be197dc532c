"""The Suno provider over the new-api relay format and gcui-art/suno-api: translation, statuses, lifecycle.

Wire references (Suno has no official API): Calcium-Ion/new-api ``Suno.md``, ``dto/suno.go``,
``relay/channel/task/suno``; Suno-API/Suno-API ``router.go``, ``entity/po/task*.go``, ``common/errs.go``;
gcui-art/suno-api ``src/app/api/*/route.ts``, ``src/app/docs/swagger-suno-api.json``; as summarised in
wire-video-audio-workflow.md §4 (4.1 new-api format, 4.2 gcui, 4.4 mapping).
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
from polyrelay.testing._faults import Fault
from polyrelay.testing._runway import TINY_MP3
from polyrelay.testing._suno import LYRICS_TEXT, SunoApiUpstream, SunoNewApiUpstream, SunoOutcome
from polyrelay.transport import Transport
from polyrelay.types.chat import ChatRequest, Message
from polyrelay.types.media import Task, TaskRequest
from polyrelay_suno import SPEC
from polyrelay_suno._errors import CLIP_STATUS_MAP, TASK_STATUS_MAP, clip_status, envelope_error
from polyrelay_suno._provider import SunoProvider
from polyrelay_suno._request import build_call
from polyrelay_suno._wire import TaskDto, dump, parse

KEY = "sk-relay-0123456789abcdefghij"
COOKIE = "__client=eyJhbGciOiJSUzI1NiJ9.session-cookie-value"
DESCRIPTION = "a synthwave song about neon rain"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def newapi() -> AsyncIterator[SunoNewApiUpstream]:
    async with SunoNewApiUpstream(api_key=KEY) as server:
        yield server


@pytest.fixture
async def gcui() -> AsyncIterator[SunoApiUpstream]:
    async with SunoApiUpstream(cookie=COOKIE) as server:
        yield server


def newapi_media(transport: Transport, clock: FakeClock, server: SunoNewApiUpstream, **options: Any) -> Media:
    return build_media(
        transport,
        clock,
        {"relay": (SPEC, settings("relay", "suno", server.base_url, key=KEY, **options))},
        {"suno": [("relay", "chirp-v3-5")], "suno-lyrics": [("relay", "suno_lyrics")]},
    )


def gcui_media(transport: Transport, clock: FakeClock, server: SunoApiUpstream) -> Media:
    cfg = settings("gcui", "suno", server.base_url, key=None, format="suno-api", cookie=COOKIE)
    return build_media(transport, clock, {"gcui": (SPEC, cfg)}, {"suno": [("gcui", "chirp-v3-5")]})


def call_of(model: str = "chirp-v3-5", fmt: Any = "newapi", **kw: Any) -> tuple[str, dict[str, Any]]:
    kw.setdefault("prompt", DESCRIPTION)
    call = build_call(TaskRequest(model="suno", **kw), model, fmt)
    return call.path, dump(call.body)


# -- request translation (§4.1, §4.2) --------------------------------------------------------------------------------


def test_newapi_inspiration_mode_body() -> None:
    # §4.1 SunoSubmitReq: gpt_description_prompt (inspiration mode), mv, make_instrumental
    assert call_of("suno-v3.5", params={"instrumental": True}) == (
        "/suno/submit/music",
        {"gpt_description_prompt": DESCRIPTION, "mv": "chirp-v3-5", "make_instrumental": True},
    )
    assert call_of("suno_music")[1] == {"gpt_description_prompt": DESCRIPTION}  # new-api's pseudo-model: no mv


def test_newapi_custom_mode_and_continuation() -> None:
    # §4.1: prompt = lyrics in custom mode, with title and tags; continue_clip_id/continue_at/task_id pass through
    _, body = call_of(
        params={"lyrics": LYRICS_TEXT, "title": "Neon Rain", "continue_clip_id": "c1", "continue_at": 120.5,
                "task_id": "t1"},
    )  # fmt: skip
    assert body == {
        "prompt": LYRICS_TEXT,
        "mv": "chirp-v3-5",
        "title": "Neon Rain",
        "tags": DESCRIPTION,  # the request's prompt is the style when no tags are given
        "continue_clip_id": "c1",
        "continue_at": 120.5,
        "task_id": "t1",
    }


def test_lyrics_requests() -> None:
    assert call_of(kind="audio", params={"lyrics_only": True}) == ("/suno/submit/lyrics", {"prompt": DESCRIPTION})
    assert call_of("suno_lyrics") == ("/suno/submit/lyrics", {"prompt": DESCRIPTION})
    assert call_of(fmt="suno-api", params={"task": "lyrics"}) == ("/api/generate_lyrics", {"prompt": DESCRIPTION})


def test_gcui_generate_and_custom_generate_bodies() -> None:
    # §4.2: /api/generate {prompt, make_instrumental, model, wait_audio}; /api/custom_generate adds tags, title,
    # negative_tags (prompt = lyrics).
    assert call_of(fmt="suno-api") == (
        "/api/generate",
        {"prompt": DESCRIPTION, "make_instrumental": False, "model": "chirp-v3-5", "wait_audio": False},
    )
    path, body = call_of(
        fmt="suno-api", negative_prompt="metal", params={"lyrics": LYRICS_TEXT, "title": "Neon", "tags": "synthwave"}
    )
    assert (path, body) == (
        "/api/custom_generate",
        {"prompt": LYRICS_TEXT, "make_instrumental": False, "model": "chirp-v3-5", "wait_audio": False,
         "tags": "synthwave", "negative_tags": "metal", "title": "Neon"},
    )  # fmt: skip


def test_settings_that_do_not_apply_warn() -> None:
    call = build_call(
        TaskRequest(model="s", prompt="x", duration=30, seed=1, negative_prompt="n"), "chirp-v4", "newapi"
    )
    assert sorted(w.setting or "" for w in call.warnings) == ["duration", "negative_prompt", "seed"]


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"images": ("https://example.com/a.png",)}, "images"),
        ({"kind": "video"}, "kind"),
        ({"prompt": None, "params": {"lyrics_only": True}}, "prompt"),
        ({"prompt": None, "params": {"title": "x"}}, "prompt"),
        ({"params": {"lyrics": ""}}, "params.lyrics"),
        ({"params": {"instrumental": "yes"}}, "params.instrumental"),
    ],
)
def test_bad_input_names_the_field(kw: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        call_of(**kw)
    assert info.value.path == path


def test_status_tables_and_clip_status_derivation() -> None:
    assert dict(TASK_STATUS_MAP) == {
        "NOT_START": "queued",
        "SUBMITTED": "queued",
        "QUEUED": "queued",
        "IN_PROGRESS": "running",
        "SUCCESS": "succeeded",
        "FAILURE": "failed",
        "UNKNOWN": "failed",
    }
    assert dict(CLIP_STATUS_MAP) == {
        "submitted": "queued",
        "queued": "queued",
        "streaming": "running",
        "complete": "succeeded",
        "error": "failed",
    }
    # §4.1: equal statuses win, otherwise the clip that is not complete wins.
    assert clip_status(["complete", "complete"]) == "complete"
    assert clip_status(["complete", "streaming"]) == "streaming"
    assert clip_status(["error", "complete"]) == "error"
    assert clip_status([]) == "submitted"


def test_the_documented_task_dto_parses() -> None:
    # §4.1 dto.TaskDto with a MUSIC clip as Suno-API stores it.
    task = parse(
        {
            "task_id": "6a9c0d5e-1f1e-4c2b-9f43-2a1c0b1c9d77",
            "action": "MUSIC",
            "status": "IN_PROGRESS",
            "fail_reason": "",
            "submit_time": 1717000000,
            "start_time": 1717000005,
            "finish_time": 0,
            "progress": "40%",
            "data": [{"id": "c1", "status": "streaming", "metadata": {"duration": None}}],
        },
        TaskDto,
        provider="relay",
        what="task",
    )
    assert (task.status, task.progress, task.data[0]["status"]) == ("IN_PROGRESS", "40%", "streaming")


@pytest.mark.parametrize(
    ("code", "status", "error", "reported"),
    [
        ("invalid_request", 400, BadRequest, 400),
        ("quota_not_enough", 403, QuotaExceeded, 403),
        ("task_not_exist", 400, NotFound, 400),
        ("fail_to_fetch_task", 500, ServerError, 500),
        ("too_many_requests", 429, RateLimited, 429),
        ("quota_not_enough", 200, QuotaExceeded, 403),  # an error envelope inside an HTTP 200
        ("something_new", 200, ServerError, 500),
        ("something_new", 422, BadRequest, 422),
    ],
)
def test_envelope_codes_map_onto_the_error_tree(
    code: str, status: int, error: type[UpstreamStatusError], reported: int
) -> None:
    exc = envelope_error(code, "msg", status=status, provider="relay")
    assert (type(exc), exc.status, exc.code) == (error, reported, code)


def test_options_are_validated() -> None:
    for options, key in [
        ({"format": "sunoapi"}, "providers.s.format"),
        ({"fetch": "post"}, "providers.s.fetch"),
        ({"formt": "newapi"}, "providers.s.formt"),
    ]:
        with pytest.raises(ConfigError) as info:
            SPEC.factory(settings("s", "suno", "http://127.0.0.1:1", **options), Transport())
        assert info.value.key == key


# -- new-api lifecycle ---------------------------------------------------------------------------------------------


async def test_newapi_song_with_progress_and_two_clips(
    transport: Transport, clock: FakeClock, newapi: SunoNewApiUpstream
) -> None:
    media = newapi_media(transport, clock, newapi)
    task = await media.tasks.create(model="suno", prompt=DESCRIPTION)
    assert (task.status, task.kind) == ("queued", "audio")
    assert newapi.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=600, on_progress=seen.append)
    assert [(t.raw_status, t.progress) for t in seen] == [
        ("QUEUED", None),
        ("IN_PROGRESS", 0.4),
        ("IN_PROGRESS", 0.8),
        ("SUCCESS", 1.0),
    ]
    assert [r.path for r in newapi.requests[1:]] == [f"/suno/fetch/{task.upstream_id}"] * 5
    assert all(5.0 <= s <= 6.0 for s in clock.sleeps)
    assert len(done.outputs) == 2
    first = done.outputs[0]
    assert (first.media_type, first.title, first.duration) == ("audio/mpeg", "Neon Rain", 187.4)
    assert first.extra["image_url"].endswith(".jpeg") and first.extra["video_url"].endswith(".mp4")
    assert first.extra["lyrics"] == LYRICS_TEXT
    provider = media.providers["relay"]
    assert isinstance(provider, SunoProvider)
    assert await provider.download(first.url or "", media.make_ctx(media.resolve("suno")[0])) == TINY_MP3


async def test_newapi_lyrics_task(transport: Transport, clock: FakeClock, newapi: SunoNewApiUpstream) -> None:
    media = newapi_media(transport, clock, newapi)
    task = await media.tasks.create(model="suno-lyrics", prompt="neon rain")
    assert newapi.requests[0].path == "/suno/submit/lyrics" and task.upstream_id.startswith("lyrics:")
    done = await media.tasks.wait(task.id, timeout=600)
    (lyrics,) = done.outputs
    assert (lyrics.media_type, lyrics.title, lyrics.extra["text"], lyrics.url) == (
        "text/plain",
        "Neon Rain",
        LYRICS_TEXT,
        None,
    )


async def test_a_suno_api_backend_that_returns_only_clips(transport: Transport, clock: FakeClock) -> None:
    async with SunoNewApiUpstream(api_key=KEY, payload_only=True) as backend:
        media = newapi_media(transport, clock, backend)
        task = await media.tasks.create(model="suno", prompt=DESCRIPTION)
        seen = [t.raw_status async for t in media.tasks.watch(task.id, timeout=600)]
        assert seen == ["queued", "streaming", "complete"]


async def test_batch_fetch_option(transport: Transport, clock: FakeClock, newapi: SunoNewApiUpstream) -> None:
    media = newapi_media(transport, clock, newapi, fetch="batch")
    task = await media.tasks.create(model="suno", prompt=DESCRIPTION)
    done = await media.tasks.wait(task.id, timeout=600)
    assert done.status == "succeeded"
    fetch = newapi.requests[1]
    assert (fetch.method, fetch.path, fetch.json) == (
        "POST",
        "/suno/fetch",
        {"ids": [task.upstream_id], "action": "MUSIC"},
    )


async def test_newapi_failure_raises_task_failed_with_the_reason(
    transport: Transport, clock: FakeClock, newapi: SunoNewApiUpstream
) -> None:
    newapi.push_outcome(SunoOutcome(status="error"))
    media = newapi_media(transport, clock, newapi)
    task = await media.tasks.create(model="suno", prompt=DESCRIPTION)
    with pytest.raises(TaskFailed) as info:
        await media.tasks.wait(task.id, timeout=600)
    assert info.value.code == "generation_failed" and "artist name" in str(info.value)


async def test_newapi_errors(transport: Transport, clock: FakeClock, newapi: SunoNewApiUpstream) -> None:
    media = newapi_media(transport, clock, newapi)
    newapi.add_fault(Fault.status_code(200, body={"code": "quota_not_enough", "message": "quota", "data": None}))
    with pytest.raises(QuotaExceeded):
        await media.tasks.create(model="suno", prompt=DESCRIPTION)
    newapi.add_fault(Fault.status_code(401, body={"code": "unauthorized", "message": f"bad token {KEY}"}))
    with pytest.raises(AuthenticationFailed) as auth:
        await media.tasks.create(model="suno", prompt=DESCRIPTION)
    assert KEY not in str(auth.value) and KEY not in repr(auth.value)
    with pytest.raises(BadRequest) as info:
        await media.tasks.create(model="suno", prompt=DESCRIPTION, continue_clip_id="c1")
    assert "task id is empty" in str(info.value)


async def test_transient_poll_errors_timeout_and_cancel(
    transport: Transport, clock: FakeClock, newapi: SunoNewApiUpstream
) -> None:
    newapi.push_outcome(SunoOutcome(running_polls=1000))
    media = newapi_media(transport, clock, newapi)
    task = await media.tasks.create(model="suno", prompt=DESCRIPTION)
    newapi.add_fault(Fault.status_code(500), times=2)
    with pytest.raises(TaskTimeout):
        await media.tasks.wait(task.id, timeout=60)
    assert (await media.tasks.get(task.id)).status == "running"
    with pytest.raises(UnsupportedFeature):
        await media.tasks.cancel(task.id)


async def test_chat_bridge_answers_with_both_clips(
    transport: Transport, clock: FakeClock, newapi: SunoNewApiUpstream
) -> None:
    media = newapi_media(transport, clock, newapi)
    completion = await media.bridge.complete(
        ChatRequest(model="suno", messages=(Message(role="user", content=DESCRIPTION),))
    )
    content = completion.choices[0].message.content or ""
    lines = content.split("\n")
    assert [line.split("](")[0] for line in lines[:2]] == ["[audio", "[audio"]
    assert lines[2] == "" and lines[3].startswith("task_id: task_")


# -- gcui-art/suno-api lifecycle ------------------------------------------------------------------------------------


async def test_gcui_song_with_synthesized_progress(
    transport: Transport, clock: FakeClock, gcui: SunoApiUpstream
) -> None:
    media = gcui_media(transport, clock, gcui)
    task = await media.tasks.create(model="suno", prompt=DESCRIPTION)
    assert (task.status, task.progress) == ("queued", 0.0)
    create = gcui.requests[0]
    assert (create.path, create.headers["Cookie"]) == ("/api/generate", COOKIE)
    assert create.json == {
        "prompt": DESCRIPTION,
        "make_instrumental": False,
        "model": "chirp-v3-5",
        "wait_audio": False,
    }
    seen: list[Task] = []
    done = await media.tasks.wait(task.id, timeout=600, on_progress=seen.append)
    assert [(t.raw_status, t.progress) for t in seen] == [("queued", 0.1), ("streaming", 0.5), ("complete", 1.0)]
    ids = task.upstream_id.removeprefix("clips:")
    assert all(r.path == "/api/get" and r.query["ids"] == ids for r in gcui.requests[1:])
    assert [a.duration for a in done.outputs] == [187.4, 187.4]
    assert all(a.media_type == "audio/mpeg" and a.extra["video_url"] for a in done.outputs)


async def test_gcui_lyrics_are_done_at_submit(transport: Transport, clock: FakeClock, gcui: SunoApiUpstream) -> None:
    media = gcui_media(transport, clock, gcui)
    task = await media.tasks.create(model="suno", prompt="neon rain", lyrics_only=True)
    assert task.status == "succeeded" and task.outputs[0].extra["text"] == LYRICS_TEXT
    assert (await media.tasks.get(task.id)).status == "succeeded"  # answered from memory
    assert len(gcui.requests) == 1
    other = gcui_media(transport, clock, gcui)  # another process: the lyrics are gone
    with pytest.raises(UnsupportedFeature):
        await other.tasks.get(task.id)


async def test_gcui_failure_and_errors(transport: Transport, clock: FakeClock, gcui: SunoApiUpstream) -> None:
    gcui.push_outcome(SunoOutcome(status="error", running_polls=0))
    media = gcui_media(transport, clock, gcui)
    task = await media.tasks.create(model="suno", prompt=DESCRIPTION)
    with pytest.raises(TaskFailed) as failed:
        await media.tasks.wait(task.id, timeout=600)
    assert "artist name" in str(failed.value)
    with pytest.raises(BadRequest) as info:  # custom mode without a title
        await media.tasks.create(model="suno", prompt="synthwave", lyrics=LYRICS_TEXT)
    assert "title is required" in str(info.value)
    gcui.add_fault(Fault.status_code(402), times=None)
    with pytest.raises(QuotaExceeded):
        await media.tasks.create(model="suno", prompt=DESCRIPTION)


async def test_gcui_wrong_cookie_is_an_auth_error_without_the_cookie(transport: Transport, clock: FakeClock) -> None:
    async with SunoApiUpstream(cookie="__client=the-right-one") as server:
        media = gcui_media(transport, clock, server)
        with pytest.raises(AuthenticationFailed) as info:
            await media.tasks.create(model="suno", prompt=DESCRIPTION)
        for text in (str(info.value), repr(info.value), repr(media.providers["gcui"])):
            assert COOKIE not in text
