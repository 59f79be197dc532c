"""Simulated Suno relays: new-api's ``/suno/*`` task API (:class:`SunoNewApiUpstream`) and a gcui-art/suno-api
deployment (:class:`SunoApiUpstream`). Shapes per wire-video-audio-workflow.md §4.1–4.2.

**new-api** (Calcium-Ion/new-api ``dto/suno.go``, ``relay/channel/task/suno``; Suno-API ``router.go``): ``POST
/suno/submit/music`` and ``/suno/submit/lyrics`` answer ``{"code": "success", "message": "", "data": "<task id>"}``;
``GET /suno/fetch/{id}`` answers ``{"code": "success", "data": <task>}`` and ``POST /suno/fetch {"ids"}`` a list.
A song goes SUBMITTED → QUEUED → IN_PROGRESS (progress ``"40%"``, ``"80%"``; clips ``streaming`` with playable
stream URLs) → SUCCESS (two ``complete`` clips with ``audio_url``, ``video_url``, ``image_url``,
``metadata.duration``) or FAILURE (``fail_reason``), one step per fetch. Lyrics are SUCCESS at once (Suno-API
waits for them). With ``payload_only=True`` the single fetch answers only the task's ``data`` (the clips), as a
Suno-API backend does. Auth ``Authorization: Bearer``; errors ``{"code": "<snake_code>", "message", "data": null}``.

**gcui-art/suno-api** (``src/app/api/*/route.ts``): ``POST /api/generate`` / ``/api/custom_generate`` answer the
two AudioInfo clips (``submitted``); ``GET /api/get?ids=a,b`` advances each: ``queued`` → ``streaming`` →
``complete`` (or ``error`` with ``error_message``); ``POST /api/generate_lyrics`` answers ``{text, title,
status: "complete"}``. No API key; when ``cookie`` is set the ``Cookie`` header must match. Errors ``{"error"}``.

Audio, video and cover files are served at ``/delivery/{clip id}.{mp3,mp4,jpeg}``.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
from aiohttp import web

from polyrelay.testing._openai_images import tiny_png
from polyrelay.testing._runway import TINY_MP3, TINY_MP4
from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream

__all__ = ["LYRICS_TEXT", "SunoApiUpstream", "SunoNewApiUpstream", "SunoOutcome"]

_DELIVERY_PREFIX = "/delivery/"
LYRICS_TEXT = "[Verse]\nNeon rain on the window\n[Chorus]\nWe keep on running"


@attrs.frozen(kw_only=True)
class SunoOutcome:
    """How one song goes: ``queued_polls`` fetches before it starts, ``running_polls`` while clips stream."""

    status: Literal["complete", "error"] = "complete"
    queued_polls: int = 2
    running_polls: int = 2
    error_message: str = "Unable to generate lyrics: the description contains an artist name"
    title: str = "Neon Rain"
    duration: float = 187.4


@attrs.define
class _Song:
    task_id: str
    clip_ids: list[str]
    body: dict[str, Any]
    outcome: SunoOutcome
    action: str = "MUSIC"
    polls: int = 0
    submit_time: int = 1_717_000_000


class _SunoBase(SimulatedUpstream):
    def __init__(self, *, outcome: SunoOutcome | None, api_key: str | None, host: str, port: int) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.outcome = outcome or SunoOutcome()
        self._pushed: deque[SunoOutcome] = deque()
        self.songs: dict[str, _Song] = {}

    def push_outcome(self, outcome: SunoOutcome) -> None:
        """Script the next song (FIFO) before the default ``outcome``."""
        self._pushed.append(outcome)

    def _new_song(self, body: dict[str, Any], action: str = "MUSIC") -> _Song:
        outcome = self._pushed.popleft() if self._pushed else self.outcome
        song = _Song(
            task_id=str(uuid.uuid4()),
            clip_ids=[str(uuid.uuid4()), str(uuid.uuid4())],
            body=body,
            outcome=outcome,
            action=action,
        )
        self.songs[song.task_id] = song
        return song

    def _clip_status(self, song: _Song) -> str:
        outcome = song.outcome
        if song.polls == 0:
            return "submitted"
        if song.polls <= outcome.queued_polls:
            return "queued"
        if song.polls <= outcome.queued_polls + outcome.running_polls:
            return "streaming"
        return outcome.status

    def _clip(self, song: _Song, index: int) -> dict[str, Any]:
        clip_id = song.clip_ids[index]
        status = self._clip_status(song)
        done = status == "complete"
        delivery = f"{self.origin}{_DELIVERY_PREFIX}{clip_id}"
        body = song.body
        audio_url = ""
        if done:
            audio_url = f"{delivery}.mp3"
        elif status == "streaming":
            audio_url = f"https://audiopipe.suno.ai/?item_id={clip_id}"
        return {
            "id": clip_id,
            "status": status,
            "title": body.get("title") or song.outcome.title,
            "audio_url": audio_url,
            "video_url": f"{delivery}.mp4" if done else "",
            "image_url": f"{delivery}.jpeg" if status in ("streaming", "complete") else None,
            "image_large_url": f"{delivery}.jpeg" if done else None,
            "model_name": "chirp-v3",
            "major_model_version": "v3",
            "created_at": "2024-06-01T12:00:00.000Z",
            "metadata": {
                "tags": body.get("tags") or "synthwave, dreamy",
                "prompt": body.get("prompt") or LYRICS_TEXT,
                "gpt_description_prompt": body.get("gpt_description_prompt"),
                "type": "gen",
                "duration": song.outcome.duration if done else None,
                "error_type": "moderation" if status == "error" else None,
                "error_message": song.outcome.error_message if status == "error" else None,
            },
        }

    async def _delivery(self, call: IncomingCall) -> web.StreamResponse:
        name = call.request.match_info["name"]
        if name.endswith(".mp3"):
            return await self._send_json(call, TINY_MP3, content_type="audio/mpeg")
        if name.endswith(".mp4"):
            return await self._send_json(call, TINY_MP4, content_type="video/mp4")
        return await self._send_json(call, tiny_png(2, 2, (120, 0, 120)), content_type="image/png")


class SunoNewApiUpstream(_SunoBase):
    """new-api's Suno task API (see the module docstring)."""

    name = "suno-newapi"
    base_path = ""

    def __init__(
        self,
        *,
        outcome: SunoOutcome | None = None,
        payload_only: bool = False,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(outcome=outcome, api_key=api_key, host=host, port=port)
        self.payload_only = payload_only

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/suno/submit/music", self._submit_music),
            ("POST", "/suno/submit/lyrics", self._submit_lyrics),
            ("GET", "/suno/fetch/{id}", self._fetch_one),
            ("POST", "/suno/fetch", self._fetch_batch),
            ("GET", _DELIVERY_PREFIX + "{name}", self._delivery),
        )

    async def _submit_music(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        if not isinstance(body, dict) or not (body.get("prompt") or body.get("gpt_description_prompt")):
            return await self._error(call, 400, "invalid_request", "prompt or gpt_description_prompt is required")
        if body.get("continue_clip_id") and not body.get("task_id"):
            return await self._error(call, 400, "invalid_request", "task id is empty")
        return await self._ok(call, self._new_song(body).task_id)

    async def _submit_lyrics(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        if not isinstance(body, dict) or not body.get("prompt"):
            return await self._error(call, 400, "invalid_request", "prompt is required")
        song = self._new_song(body, action="LYRICS")
        song.polls = 10_000  # Suno-API waits for lyrics: the task is finished when it is created
        return await self._ok(call, song.task_id)

    async def _fetch_one(self, call: IncomingCall) -> web.StreamResponse:
        song = self.songs.get(call.request.match_info["id"])
        if song is None:
            return await self._error(call, 404, "task_not_exist", "task_not_exist")
        self._step(song)
        task = self._task(song)
        return await self._ok(call, task["data"] if self.payload_only else task)

    async def _fetch_batch(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            return await self._error(call, 400, "invalid_request", "ids is required")
        out = []
        for task_id in ids:
            song = self.songs.get(task_id) if isinstance(task_id, str) else None
            if song is not None:
                self._step(song)
                out.append(self._task(song))
        return await self._ok(call, out)

    def _step(self, song: _Song) -> None:
        if song.action == "MUSIC":
            song.polls += 1

    def _task(self, song: _Song) -> dict[str, Any]:
        if song.action == "LYRICS":
            data: Any = {"id": song.task_id, "status": "complete", "title": "Neon Rain", "text": LYRICS_TEXT}
            return {"task_id": song.task_id, "action": "LYRICS", "status": "SUCCESS", "fail_reason": "",
                    "submit_time": song.submit_time, "start_time": song.submit_time,
                    "finish_time": song.submit_time + 20, "progress": "100%", "data": data}  # fmt: skip
        clip_status = self._clip_status(song)
        status, progress = {
            "submitted": ("SUBMITTED", "0%"),
            "queued": ("QUEUED", "0%"),
            "complete": ("SUCCESS", "100%"),
            "error": ("FAILURE", "100%"),
        }.get(clip_status, ("IN_PROGRESS", ""))
        if status == "IN_PROGRESS":
            step = song.polls - song.outcome.queued_polls
            progress = f"{80 * step // max(1, song.outcome.running_polls)}%"
        return {
            "task_id": song.task_id,
            "action": "MUSIC",
            "status": status,
            "fail_reason": song.outcome.error_message if status == "FAILURE" else "",
            "submit_time": song.submit_time,
            "start_time": song.submit_time + 5 if status != "SUBMITTED" else 0,
            "finish_time": song.submit_time + 60 if status in ("SUCCESS", "FAILURE") else 0,
            "progress": progress,
            "data": [self._clip(song, 0), self._clip(song, 1)] if clip_status != "submitted" else [],
        }

    async def _ok(self, call: IncomingCall, data: Any) -> web.StreamResponse:
        return await self._send_json(call, {"code": "success", "message": "", "data": data})

    async def _error(self, call: IncomingCall, status: int, code: str, message: str) -> web.StreamResponse:
        return await self._send_json(call, {"code": code, "message": message, "data": None}, status=status)

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith(_DELIVERY_PREFIX):
            return self.api_key
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest.strip() else None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        return 401, {"code": "unauthorized", "message": "invalid token", "data": None}

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        code = {429: "too_many_requests", 403: "quota_not_enough", 404: "task_not_exist"}.get(status, "internal_error")
        return {"code": code, "message": f"simulated {status} error", "data": None}


class SunoApiUpstream(_SunoBase):
    """A gcui-art/suno-api deployment (see the module docstring)."""

    name = "suno-api"
    base_path = ""

    def __init__(
        self,
        *,
        outcome: SunoOutcome | None = None,
        cookie: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(outcome=outcome, api_key=cookie, host=host, port=port)
        self._by_clip: dict[str, _Song] = {}

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/api/generate", self._generate),
            ("POST", "/api/custom_generate", self._custom_generate),
            ("POST", "/api/generate_lyrics", self._generate_lyrics),
            ("GET", "/api/get", self._get),
            ("GET", _DELIVERY_PREFIX + "{name}", self._delivery),
        )

    async def _generate(self, call: IncomingCall) -> web.StreamResponse:
        return await self._create(call, ("prompt",))

    async def _custom_generate(self, call: IncomingCall) -> web.StreamResponse:
        return await self._create(call, ("prompt", "tags", "title"))

    async def _create(self, call: IncomingCall, required: tuple[str, ...]) -> web.StreamResponse:
        body = call.recorded.json
        missing = [name for name in required if not isinstance(body, dict) or not body.get(name)]
        if missing:
            return await self._send_json(call, {"error": f"{', '.join(missing)} is required"}, status=400)
        assert isinstance(body, dict)
        song = self._new_song(body)
        for clip_id in song.clip_ids:
            self._by_clip[clip_id] = song
        return await self._send_json(call, [self._info(song, 0), self._info(song, 1)])

    async def _generate_lyrics(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        if not isinstance(body, dict) or not body.get("prompt"):
            return await self._send_json(call, {"error": "prompt is required"}, status=400)
        return await self._send_json(call, {"text": LYRICS_TEXT, "title": "Neon Rain", "status": "complete"})

    async def _get(self, call: IncomingCall) -> web.StreamResponse:
        ids = [i for i in call.request.query.get("ids", "").split(",") if i]
        songs: list[_Song] = []
        for clip_id in ids:
            song = self._by_clip.get(clip_id)
            if song is not None and song not in songs:
                songs.append(song)
        for song in songs:
            song.polls += 1
        out = []
        for clip_id in ids:
            song = self._by_clip.get(clip_id)
            if song is not None:
                out.append(self._info(song, song.clip_ids.index(clip_id)))
        return await self._send_json(call, out)

    def _info(self, song: _Song, index: int) -> dict[str, Any]:
        clip = self._clip(song, index)
        meta = clip["metadata"]
        return {
            "id": clip["id"],
            "title": clip["title"],
            "image_url": clip["image_url"],
            "lyric": meta["prompt"],
            "audio_url": clip["audio_url"],
            "video_url": clip["video_url"],
            "created_at": clip["created_at"],
            "model_name": clip["model_name"],
            "status": clip["status"],
            "gpt_description_prompt": meta["gpt_description_prompt"],
            "prompt": meta["prompt"],
            "type": meta["type"],
            "tags": meta["tags"],
            "negative_tags": song.body.get("negative_tags"),
            "duration": str(meta["duration"]) if meta["duration"] is not None else None,
            "error_message": meta["error_message"],
        }

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith(_DELIVERY_PREFIX):
            return self.api_key
        return request.headers.get("Cookie")

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        return 401, {"error": "Unauthorized: the Suno session cookie is invalid or expired"}

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        if status == 402:
            return {"error": "Payment required"}
        return {"error": f"simulated {status} error"}

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        return {"access-control-allow-origin": "*"}
