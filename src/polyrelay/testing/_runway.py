"""A simulated Runway API (``https://api.dev.runwayml.com/v1``): ``POST /v1/<task type>`` → ``{"id"}``,
``GET /v1/tasks/{id}``, ``DELETE /v1/tasks/{id}``, and output files at ``GET /delivery/{id}/{file}``.

Shapes follow runwayml/sdk-python (``task_retrieve_response.py``) and the docs (wire-video-audio-workflow.md
§1.2–1.5): every call needs ``Authorization: Bearer`` and ``X-Runway-Version: 2024-11-06`` (else 400); task
objects are camelCase with ``createdAt``; a task goes ``PENDING`` (and ``THROTTLED`` when scripted), then
``RUNNING`` with ``progress`` rising on each poll, then the scripted outcome: ``SUCCEEDED`` (``output`` URLs of a
tiny file, ``.png`` for ``text_to_image``, ``.mp3`` for audio, else ``.mp4``), ``FAILED`` (``failure`` and
``failureCode``) or ``CANCELLED``. The lifecycle advances one step per poll, so progress appears as fast as the
client polls. ``DELETE`` cancels a running task (it then reads ``CANCELLED``) and deletes a finished one (then 404).
Errors are ``{"error": "..."}``; validation errors add ``issues`` with a ``path``.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import attrs
from aiohttp import web

from polyrelay.testing._openai_images import tiny_png
from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream

__all__ = ["RUNWAY_VERSION", "RunwayOutcome", "RunwayUpstream", "TINY_MP3", "TINY_MP4"]

RUNWAY_VERSION = "2024-11-06"
#: A few bytes that start like an MP4 (``ftyp`` box) / an MP3 (ID3 tag): enough for download tests.
TINY_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 16
TINY_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 8
_TASK_TYPES = (
    "image_to_video",
    "text_to_video",
    "video_to_video",
    "text_to_image",
    "character_performance",
    "video_upscale",
    "sound_effect",
    "text_to_speech",
)
_NEEDS_PROMPT_TEXT = frozenset({"text_to_video", "text_to_image", "sound_effect", "text_to_speech"})
_NEEDS_VIDEO_URI = frozenset({"video_to_video", "video_upscale"})
_DELIVERY_PREFIX = "/delivery/"


@attrs.frozen(kw_only=True)
class RunwayOutcome:
    """How one task goes: ``pending_polls`` PENDING, ``throttled_polls`` THROTTLED, ``running_polls`` RUNNING
    (progress k/(running_polls+1)), then ``status``."""

    status: Literal["SUCCEEDED", "FAILED", "CANCELLED"] = "SUCCEEDED"
    pending_polls: int = 1
    throttled_polls: int = 0
    running_polls: int = 3
    failure: str = "Your prompt was flagged by our content moderation system."
    failure_code: str | None = "SAFETY.INPUT.TEXT"
    outputs: int = 1


@attrs.define
class _Task:
    id: str
    endpoint: str
    body: dict[str, Any]
    outcome: RunwayOutcome
    created_at: str
    polls: int = 0
    status: str = "PENDING"
    progress: float | None = None
    output: list[str] | None = None
    deleted: bool = False


class RunwayUpstream(SimulatedUpstream):
    """Simulated ``https://api.dev.runwayml.com/v1`` (see the module docstring)."""

    name = "runway"
    base_path = "/v1"

    def __init__(
        self,
        *,
        outcome: RunwayOutcome | None = None,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.outcome = outcome or RunwayOutcome()
        self._pushed: deque[RunwayOutcome] = deque()
        self.tasks: dict[str, _Task] = {}
        self._files: dict[str, tuple[bytes, str]] = {}

    def push_outcome(self, outcome: RunwayOutcome) -> None:
        """Script the next created task (FIFO) before the default ``outcome``."""
        self._pushed.append(outcome)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("GET", "/v1/tasks/{id}", self._get),
            ("DELETE", "/v1/tasks/{id}", self._delete),
            ("GET", _DELIVERY_PREFIX + "{id}/{file}", self._delivery),
            ("POST", "/v1/{endpoint}", self._create),
        )

    async def _create(self, call: IncomingCall) -> web.StreamResponse:
        endpoint = call.request.match_info["endpoint"]
        if endpoint not in _TASK_TYPES:
            return await self._send_error(call, 404, body={"error": "Not found"})
        problem = self._validate(call, endpoint)
        if problem is not None:
            return await self._send_json(call, problem, status=400)
        outcome = self._pushed.popleft() if self._pushed else self.outcome
        body = call.recorded.json
        assert isinstance(body, dict)
        task = _Task(id=str(uuid.uuid4()), endpoint=endpoint, body=body, outcome=outcome, created_at=_now())
        self.tasks[task.id] = task
        return await self._send_json(call, {"id": task.id})

    def _validate(self, call: IncomingCall, endpoint: str) -> dict[str, Any] | None:
        version = call.request.headers.get("X-Runway-Version")
        if version is None:
            return {"error": "You must provide a X-Runway-Version header"}
        if version != RUNWAY_VERSION:
            return {"error": f"Invalid API version: {version}"}
        body = call.recorded.json
        if not isinstance(body, dict):
            return {"error": "Invalid JSON body"}
        issues = []
        if not isinstance(body.get("model"), str):
            issues.append({"path": ["model"], "message": "Required"})
        if endpoint in _NEEDS_PROMPT_TEXT and not isinstance(body.get("promptText"), str):
            issues.append({"path": ["promptText"], "message": "Required"})
        if endpoint == "image_to_video" and body.get("promptImage") is None:
            issues.append({"path": ["promptImage"], "message": "Required"})
        if endpoint in _NEEDS_VIDEO_URI and not isinstance(body.get("videoUri"), str):
            issues.append({"path": ["videoUri"], "message": "Required"})
        if issues:
            return {"error": "Validation of body failed", "issues": issues}
        return None

    async def _get(self, call: IncomingCall) -> web.StreamResponse:
        task = self.tasks.get(call.request.match_info["id"])
        if task is None or task.deleted:
            return await self._send_error(call, 404, body={"error": "Task not found"})
        if task.status in ("PENDING", "THROTTLED", "RUNNING"):
            self._advance(task)
        return await self._send_json(call, self._body(task))

    async def _delete(self, call: IncomingCall) -> web.StreamResponse:
        task = self.tasks.get(call.request.match_info["id"])
        if task is None or task.deleted:
            return await self._send_error(call, 404, body={"error": "Task not found"})
        if task.status in ("PENDING", "THROTTLED", "RUNNING"):
            task.status, task.progress = "CANCELLED", None
        else:
            task.deleted = True
        return web.Response(status=204)

    async def _delivery(self, call: IncomingCall) -> web.StreamResponse:
        info = call.request.match_info
        found = self._files.get(f"{info['id']}/{info['file']}")
        if found is None:
            return await self._send_json(call, "Not Found", status=404, content_type="text/plain")
        data, media_type = found
        return await self._send_json(call, data, content_type=media_type)

    # ----------------------------------------------------------------------------------------- lifecycle

    def _advance(self, task: _Task) -> None:
        task.polls += 1
        outcome = task.outcome
        step = task.polls
        if step <= outcome.pending_polls:
            task.status = "PENDING"
            return
        step -= outcome.pending_polls
        if step <= outcome.throttled_polls:
            task.status = "THROTTLED"
            return
        step -= outcome.throttled_polls
        if step <= outcome.running_polls:
            task.status = "RUNNING"
            task.progress = round(step / (outcome.running_polls + 1), 2)
            return
        task.status, task.progress = outcome.status, None
        if outcome.status == "SUCCEEDED":
            name, data, media_type = _output_file(task.endpoint)
            task.output = []
            for index in range(outcome.outputs):
                key = f"{task.id}/{index}-{name}"
                self._files[key] = (data, media_type)
                task.output.append(f"{self.origin}{_DELIVERY_PREFIX}{key}?_jwt=simulated.{index}")

    def _body(self, task: _Task) -> dict[str, Any]:
        body: dict[str, Any] = {"id": task.id, "status": task.status, "createdAt": task.created_at}
        if task.status == "RUNNING":
            body["progress"] = task.progress
        elif task.status == "SUCCEEDED":
            body["output"] = task.output or []
        elif task.status == "FAILED":
            body["failure"] = task.outcome.failure
            if task.outcome.failure_code is not None:
                body["failureCode"] = task.outcome.failure_code
        return body

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith(_DELIVERY_PREFIX):
            return self.api_key  # CDN URLs are signed, not authenticated
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest.strip() else None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        return 401, {"error": "Invalid API key provided."}

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        if status == 429:
            return {"error": "You have exceeded the rate limit for this endpoint."}
        return {"error": f"simulated {status} error"}

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        return {"x-request-id": uuid.uuid4().hex}


def _output_file(endpoint: str) -> tuple[str, bytes, str]:
    if endpoint == "text_to_image":
        return "output.png", tiny_png(2, 2, (200, 40, 40)), "image/png"
    if endpoint in ("sound_effect", "text_to_speech"):
        return "output.mp3", TINY_MP3, "audio/mpeg"
    return "output.mp4", TINY_MP4, "video/mp4"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
