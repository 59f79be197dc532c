"""A simulated relay exposing the reverse-engineered Runway web API (wire-video-audio-workflow.md §1.7).

``POST /runway/pro/generate`` and ``POST /runway/pro/img2video`` (which needs ``image``) take ``{prompt, ratio,
style, model, options: {seconds, motion_vector}}`` and answer ``{"code": 200, "msg": "成功", "data": {"task_id"},
"exec_time"}``. ``POST /runway/feed {task_id}`` advances the task one step per poll through the scripted
:class:`RunwayRelayOutcome`.

Two flavours (``flavor``):

- ``"classic"``: ``data`` is ``{task_id, status: "0" | "1" | "2" | "3", video_url, poster, last_frame, msg, refund,
  create_time, update_time}`` (times as Unix-second strings); errors are ``{"code": <status>, "msg"}``.
- ``"comet"`` (CometAPI): ``{"code": "success", "data": {task_id, action, status: QUEUED | IN_PROGRESS | SUCCESS |
  FAILURE, progress: "40%", fail_reason, data: <official Runway task object>}}``; errors are new-api's
  ``{"code": "<snake_code>", "message", "data": null}``, and a fresh task may answer ``task_not_exist`` (HTTP 400)
  for ``missing_polls`` polls.

Auth is ``Authorization: Bearer``. Video URLs point at tiny MP4s on this server.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

import attrs
from aiohttp import web

from polyrelay.testing._runway import TINY_MP4
from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream

__all__ = ["RunwayRelayOutcome", "RunwayRelayUpstream"]

_DELIVERY_PREFIX = "/delivery/"
Flavor = Literal["classic", "comet"]


@attrs.frozen(kw_only=True)
class RunwayRelayOutcome:
    """How one task goes: ``missing_polls`` polls answer ``task_not_exist`` (comet flavour), ``queued_polls`` the
    queued state, ``running_polls`` the running state, then ``state``."""

    state: Literal["succeeded", "failed"] = "succeeded"
    missing_polls: int = 0
    queued_polls: int = 1
    running_polls: int = 1
    failure_msg: str = "生成失败，积分已退还"


@attrs.define
class _Task:
    id: str
    body: dict[str, Any]
    outcome: RunwayRelayOutcome
    created: int
    polls: int = 0
    phase: str = "queued"


class RunwayRelayUpstream(SimulatedUpstream):
    """Simulated relay root (``base_url`` is the origin); see the module docstring."""

    name = "runway-relay"
    base_path = ""

    def __init__(
        self,
        *,
        flavor: Flavor = "classic",
        outcome: RunwayRelayOutcome | None = None,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.flavor: Flavor = flavor
        self.outcome = outcome or RunwayRelayOutcome()
        self._pushed: deque[RunwayRelayOutcome] = deque()
        self.tasks: dict[str, _Task] = {}

    def push_outcome(self, outcome: RunwayRelayOutcome) -> None:
        """Script the next created task (FIFO) before the default ``outcome``."""
        self._pushed.append(outcome)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/runway/pro/generate", self._generate),
            ("POST", "/runway/pro/img2video", self._img2video),
            ("POST", "/runway/feed", self._feed),
            ("GET", _DELIVERY_PREFIX + "{name}", self._delivery),
        )

    async def _generate(self, call: IncomingCall) -> web.StreamResponse:
        return await self._create(call, needs_image=False)

    async def _img2video(self, call: IncomingCall) -> web.StreamResponse:
        return await self._create(call, needs_image=True)

    async def _create(self, call: IncomingCall, *, needs_image: bool) -> web.StreamResponse:
        body = call.recorded.json
        problem = self._validate(body, needs_image=needs_image)
        if problem:
            return await self._send_error(call, 400, body=self._envelope_error(400, problem))
        assert isinstance(body, dict)
        outcome = self._pushed.popleft() if self._pushed else self.outcome
        task = _Task(id=str(uuid.uuid4()), body=body, outcome=outcome, created=int(time.time()))
        self.tasks[task.id] = task
        code: Any = "success" if self.flavor == "comet" else 200
        return await self._send_json(
            call, {"code": code, "msg": "成功", "data": {"task_id": task.id}, "exec_time": 0.21}
        )

    def _validate(self, body: Any, *, needs_image: bool) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return "prompt 不能为空"
        if body.get("ratio", "16:9") not in ("16:9", "9:16", "1:1", "4:3", "21:9"):
            return "ratio 参数错误"
        if body.get("model", "gen3") not in ("gen2", "gen3"):
            return "model 参数错误"
        if needs_image and not isinstance(body.get("image"), str):
            return "image 不能为空"
        seconds = (body.get("options") or {}).get("seconds", 5)
        return None if seconds in (5, 10) else "seconds 参数错误"

    async def _feed(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        task = self.tasks.get(body.get("task_id", "")) if isinstance(body, dict) else None
        if task is not None:
            task.polls += 1
        if task is None or task.polls <= task.outcome.missing_polls:
            return await self._send_error(call, 400, body=self._envelope_error(400, "task_not_exist", "task_not_exist"))
        self._advance(task)
        payload = self._comet_body(task) if self.flavor == "comet" else self._classic_body(task)
        code: Any = "success" if self.flavor == "comet" else 200
        return await self._send_json(call, {"code": code, "msg": "成功", "data": payload, "exec_time": 0.05})

    async def _delivery(self, call: IncomingCall) -> web.StreamResponse:
        return await self._send_json(call, TINY_MP4, content_type="video/mp4")

    # ----------------------------------------------------------------------------------------- lifecycle

    def _advance(self, task: _Task) -> None:
        seen = task.polls - task.outcome.missing_polls
        if seen <= task.outcome.queued_polls:
            task.phase = "queued"
        elif seen <= task.outcome.queued_polls + task.outcome.running_polls:
            task.phase = "running"
        else:
            task.phase = task.outcome.state

    def _video(self, task: _Task) -> str:
        return f"{self.origin}{_DELIVERY_PREFIX}{task.id}.mp4"

    def _classic_body(self, task: _Task) -> dict[str, Any]:
        status = {"queued": "0", "running": "1", "failed": "2", "succeeded": "3"}[task.phase]
        done = task.phase == "succeeded"
        return {
            "task_id": task.id,
            "status": status,
            "prompt": task.body.get("prompt"),
            "prompt_en": task.body.get("prompt"),
            "video_url": self._video(task) if done else "",
            "poster": f"{self.origin}{_DELIVERY_PREFIX}{task.id}.jpg" if done else "",
            "last_frame": f"{self.origin}{_DELIVERY_PREFIX}{task.id}-last.jpg" if done else "",
            "msg": task.outcome.failure_msg if task.phase == "failed" else "",
            "point": "10",
            "refund": "1" if task.phase == "failed" else "0",
            "create_time": str(task.created),
            "update_time": str(int(time.time())),
        }

    def _comet_body(self, task: _Task) -> dict[str, Any]:
        status = {"queued": "QUEUED", "running": "IN_PROGRESS", "failed": "FAILURE", "succeeded": "SUCCESS"}
        official = {"queued": "PENDING", "running": "RUNNING", "failed": "FAILED", "succeeded": "SUCCEEDED"}
        inner: dict[str, Any] = {"id": task.id, "status": official[task.phase], "createdAt": "2025-11-11T21:48:50.448Z"}
        if task.phase == "running":
            inner["progress"] = 0.4
        if task.phase == "succeeded":
            inner["output"] = [self._video(task)]
        if task.phase == "failed":
            inner.update(failure=task.outcome.failure_msg, failureCode="INTERNAL.BAD_OUTPUT.CODE01")
        return {
            "task_id": task.id,
            "action": "IMAGE_TO_VIDEO" if "image" in task.body else "TEXT_TO_VIDEO",
            "status": status[task.phase],
            "progress": {"queued": "0%", "running": "40%"}.get(task.phase, "100%"),
            "fail_reason": task.outcome.failure_msg if task.phase == "failed" else "",
            "data": inner,
        }

    # ----------------------------------------------------------------------------------------- hooks

    def _envelope_error(self, status: int, message: str, code: str = "invalid_request") -> dict[str, Any]:
        if self.flavor == "comet":
            return {"code": code, "message": message, "data": None}
        return {"code": status, "msg": message}

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith(_DELIVERY_PREFIX):
            return self.api_key
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest.strip() else None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        return 401, self._envelope_error(401, "无效的令牌", "invalid_api_key")

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        return self._envelope_error(status, f"simulated {status} error", "upstream_error")
