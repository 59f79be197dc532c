"""A simulated midjourney-proxy (the protocol of novicezk/trueai midjourney-proxy and the relays; wire-images.md §2).

Served under ``/mj`` and the speed-mode roots ``/mj-fast/mj``, ``/mj-relax/mj``, ``/mj-turbo/mj``:

- ``POST /mj/submit/imagine|blend|describe|action|modal`` → ``{"code", "description", "result", "properties"}``
  with the proxy's codes: 1 submitted, 21 "Waiting for window confirm" (Vary Region / Custom Zoom / remix go to
  ``MODAL``), 22 queued, 23 queue full, 24 banned prompt (``properties.promptEn`` / ``bannedWord``), 3 parent task
  missing (HTTP 404, as trueai answers), 4 validation error;
- ``GET /mj/task/{id}/fetch`` and ``POST /mj/task/list-by-condition``: each read moves an unfinished task one step
  along ``NOT_START → SUBMITTED → IN_PROGRESS (progress_steps) → SUCCESS | FAILURE``, so a test sees progress
  without waiting; finished grids carry the Discord buttons (U1–U4, 🔄, V1–V4; an upscale gets Vary / Zoom / Pan /
  Upscale-HD buttons) and, with ``split_images``, trueai's ``imageUrls``;
- ``POST /mj/task/{id}/cancel`` only with ``supports_cancel=True`` (trueai / plus);
- result images (``/attachments/...png?ex=&is=&hm=``, shaped like Discord CDN links) serve a tiny PNG, no auth.

Two dialects: the proxy (default: ``mj-api-secret`` header, a wrong secret gets 401 with an empty body, an unknown
task id 200 with an empty body) and, with ``relay=True``, new-api (``Authorization: Bearer``, ``result`` as a JSON
number, codes 21/22 rewritten to 1 except for Vary Region / Custom Zoom, errors as HTTP 400
``{"description", "type": "upstream_error", "code"}``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from aiohttp import web

from polyrelay.testing._ideogram import tiny_png
from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream

__all__ = ["MidjourneyUpstream", "ScriptedCode", "SimulatedTask"]

_ROOTS = ("", "/mj-fast", "/mj-relax", "/mj-turbo")
_BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
_DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")
_GRID_ACTIONS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND", "HIGH_VARIATION", "LOW_VARIATION", "PAN", "ZOOM",
                           "CUSTOM_ZOOM", "INPAINT"})  # fmt: skip
_UNFINISHED = frozenset({"NOT_START", "SUBMITTED", "IN_PROGRESS"})
# The proxy's own (Chinese) validation messages, as its source returns them.
_PROMPT_EMPTY = "prompt不能为空"  # "prompt must not be empty"
_BASE64_BAD = "base64格式错误"  # "base64 format error"
_PARAM_BAD = "参数错误"  # "parameter error"
_TASK_MISSING = "关联任务不存在或已失效"  # "the referenced task does not exist or has expired"
_BANNED = "可能包含敏感词"  # "may contain sensitive words"
_QUEUE_FULL = "Queue is full, please try again later"
_MODAL_WAIT = "Waiting for window confirm"
_DEFAULT_FAIL_REASON = "[Invalid parameter] Invalid value"
_FIRST_ID = 1_748_339_029_401_828
_PNG = tiny_png()


@attrs.frozen(kw_only=True)
class ScriptedCode:
    """A submit answer forced by :meth:`MidjourneyUpstream.push_submit_code`. Codes 1 and 22 still create the task."""

    code: int
    description: str | None = None
    properties: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.define
class SimulatedTask:
    """One task in the simulator's store (tests may inspect or change it)."""

    id: str
    action: str
    prompt: str
    status: str = "NOT_START"
    progress: str = "0%"
    description: str = ""
    state: str = ""
    bot_type: str = "MID_JOURNEY"
    mode: str | None = None
    parent_id: str | None = None
    submit_time: int = 0
    start_time: int | None = None
    finish_time: int | None = None
    image_url: str | None = None
    image_urls: list[str] = attrs.field(factory=list)
    fail_reason: str | None = None
    final_prompt: str | None = None
    message_hash: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    buttons: list[dict[str, Any]] = attrs.field(factory=list)
    #: Remaining (status, progress) steps, applied one per read.
    steps: deque[tuple[str, str]] = attrs.field(factory=deque)
    #: FAILURE reason to end with (``None``: SUCCESS).
    will_fail: str | None = None
    #: What the MODAL task waits for: ``INPAINT``, ``CUSTOM_ZOOM`` or a remixed action.
    modal_for: str | None = None
    #: Everything ``/submit/modal`` received.
    modal_input: dict[str, Any] | None = None


class MidjourneyUpstream(SimulatedUpstream):
    """Simulated midjourney-proxy / relay. ``api_key`` is the ``mj-api-secret`` (or the relay token).

    ``banned_words``: a prompt containing one gets code 24. ``fail_words``: the task runs, then ends in FAILURE.
    ``queue_size``: with that many unfinished tasks, a submit gets code 23. ``progress_steps``: the IN_PROGRESS
    percentages a task passes through (one per read).
    """

    name = "midjourney"
    base_path = ""

    def __init__(
        self,
        *,
        relay: bool = False,
        banned_words: Sequence[str] = ("nude",),
        fail_words: Sequence[str] = ("fail-me",),
        fail_reason: str = _DEFAULT_FAIL_REASON,
        queue_size: int | None = None,
        progress_steps: Sequence[int] = (15, 45, 80),
        split_images: bool = True,
        supports_cancel: bool = False,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.relay = relay
        self.banned_words = tuple(w.lower() for w in banned_words)
        self.fail_words = tuple(w.lower() for w in fail_words)
        self.fail_reason = fail_reason
        self.queue_size = queue_size
        self.progress_steps = tuple(progress_steps)
        self.split_images = split_images
        self.supports_cancel = supports_cancel
        #: The task store, by id.
        self.tasks: dict[str, SimulatedTask] = {}
        self._scripted: deque[ScriptedCode] = deque()
        self._ids = itertools.count(_FIRST_ID)

    def push_submit_code(self, code: int, description: str | None = None, **properties: Any) -> None:
        """Answer the next submit (any ``/submit/*``) with ``code`` (FIFO). 1 and 22 still create the task."""
        self._scripted.append(ScriptedCode(code=code, description=description, properties=properties))

    def finish(self, task_id: str) -> SimulatedTask:
        """Run a task to its end at once (SUCCESS, or FAILURE for ``fail_words``)."""
        task = self.tasks[task_id]
        while task.status in _UNFINISHED:
            self._advance(task)
        return task

    # ----------------------------------------------------------------------------------------- routes

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        routes: list[tuple[str, str, Handler]] = []
        for root in _ROOTS:
            base = f"{root}/mj"
            routes += [
                ("POST", f"{base}/submit/imagine", self._imagine),
                ("POST", f"{base}/submit/blend", self._blend),
                ("POST", f"{base}/submit/describe", self._describe),
                ("POST", f"{base}/submit/action", self._action),
                ("POST", f"{base}/submit/modal", self._modal),
                ("GET", f"{base}/task/{{id}}/fetch", self._fetch),
                ("POST", f"{base}/task/list-by-condition", self._list),
            ]
            if self.supports_cancel:
                routes.append(("POST", f"{base}/task/{{id}}/cancel", self._cancel))
        routes.append(("GET", "/attachments/{channel}/{task}/{file}", self._attachment))
        return routes

    # ----------------------------------------------------------------------------------------- submit endpoints

    async def _imagine(self, call: IncomingCall) -> web.StreamResponse:
        body = _object(call)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return await self._reply(call, 4, _PROMPT_EMPTY)
        images = body.get("base64Array") or []
        if not isinstance(images, list) or not all(_data_url(i) for i in images):
            return await self._reply(call, 4, _BASE64_BAD)
        bot_type = body.get("botType", "MID_JOURNEY")
        if bot_type not in _BOT_TYPES:
            return await self._reply(call, 4, _PARAM_BAD)
        banned = self._banned(prompt)
        if banned is not None:
            return await self._reply(call, 24, _BANNED, properties={"promptEn": prompt, "bannedWord": banned})
        return await self._create(call, "IMAGINE", prompt, f"/imagine {prompt}", body, bot_type=bot_type)

    async def _blend(self, call: IncomingCall) -> web.StreamResponse:
        body = _object(call)
        images = body.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5 or not all(_data_url(i) for i in images):
            return await self._reply(call, 4, _BASE64_BAD)
        dimensions = body.get("dimensions", "SQUARE")
        if dimensions not in _DIMENSIONS:
            return await self._reply(call, 4, _PARAM_BAD)
        return await self._create(call, "BLEND", "", f"/blend {len(images)} images {dimensions}", body)

    async def _describe(self, call: IncomingCall) -> web.StreamResponse:
        body = _object(call)
        if not _data_url(body.get("base64")):
            return await self._reply(call, 4, _BASE64_BAD)
        return await self._create(call, "DESCRIBE", "", "/describe image.png", body)

    async def _action(self, call: IncomingCall) -> web.StreamResponse:
        body = _object(call)
        parent_id, custom_id = body.get("taskId"), body.get("customId")
        if not isinstance(parent_id, str) or not isinstance(custom_id, str) or not custom_id:
            return await self._reply(call, 4, _PARAM_BAD)
        parent = self.tasks.get(parent_id)
        if parent is None:
            return await self._reply(call, 3, _TASK_MISSING, status=404)
        if parent.status != "SUCCESS":
            return await self._reply(call, 4, "task_status_not_success")
        if custom_id not in {b["customId"] for b in parent.buttons}:
            return await self._reply(call, 4, f"unknown_action:{custom_id}")
        action, index = _child_action(custom_id)
        if action is None:
            return await self._reply(call, 4, f"unknown_action:{custom_id}")
        prompt = parent.final_prompt or parent.prompt
        if parent.action == "DESCRIBE":  # PicReader::N: imagine the N-th described prompt
            prompt = _described_prompts(parent.final_prompt or "")[int(index) - 1]
        remix = body.get("enableRemix") is True and action in ("PAN", "VARIATION", "REROLL")
        modal_for = action if action in ("INPAINT", "CUSTOM_ZOOM") or remix else None
        if modal_for is not None:
            task = self._new_task(action, prompt, parent=parent, body=body, mode=_mode_of(call.recorded.path))
            task.status, task.modal_for = "MODAL", modal_for
            props = {"finalPrompt": prompt, "remix": True}
            # new-api keeps 21 only for Vary Region / Custom Zoom; a remix modal then looks like a plain submit.
            rewritten = self.relay and modal_for not in ("INPAINT", "CUSTOM_ZOOM")
            return await self._reply(call, 1 if rewritten else 21, _MODAL_WAIT, result=task.id, properties=props)
        return await self._create(call, action, prompt, f"/{action.lower()} {parent.id} {index}", body, parent=parent)

    async def _modal(self, call: IncomingCall) -> web.StreamResponse:
        body = _object(call)
        task_id = body.get("taskId")
        task = self.tasks.get(task_id) if isinstance(task_id, str) else None
        if task is None:
            return await self._reply(call, 3, _TASK_MISSING, status=404)
        if task.status != "MODAL":
            return await self._reply(call, 4, "task_status_not_modal")
        prompt = body.get("prompt") or task.prompt
        mask = body.get("maskBase64")
        if task.modal_for == "INPAINT" and not _data_url(mask):
            return await self._reply(call, 4, _BASE64_BAD)
        if task.modal_for == "CUSTOM_ZOOM" and "--zoom" not in prompt:
            return await self._reply(call, 4, _PARAM_BAD)
        task.modal_input = dict(body)
        task.prompt = task.final_prompt = prompt
        task.status = "SUBMITTED"
        self._schedule(task)
        return await self._reply(call, 1, "Submit success", result=task.id)

    async def _create(
        self,
        call: IncomingCall,
        action: str,
        prompt: str,
        description: str,
        body: Mapping[str, Any],
        *,
        bot_type: str = "MID_JOURNEY",
        parent: SimulatedTask | None = None,
    ) -> web.StreamResponse:
        scripted = self._scripted.popleft() if self._scripted else None
        if scripted is not None and scripted.code not in (1, 22):
            return await self._reply(call, scripted.code, scripted.description, properties=dict(scripted.properties))
        unfinished = sum(1 for t in self.tasks.values() if t.status in _UNFINISHED)
        if self.queue_size is not None and unfinished >= self.queue_size:
            return await self._reply(call, 23, _QUEUE_FULL, properties={"discordInstanceId": "1118138338562560102"})
        task = self._new_task(
            action,
            prompt,
            parent=parent,
            body=body,
            mode=_mode_of(call.recorded.path),
            bot_type=bot_type,
            description=description,
        )
        self._schedule(task)
        props: dict[str, Any] = {"discordInstanceId": "1118138338562560102"}
        if scripted is not None and scripted.code == 22:
            props["numberOfQueues"] = scripted.properties.get("numberOfQueues", 1)
            ahead = props["numberOfQueues"]
            return await self._reply(call, 22, scripted.description or f"排队中，前面还有{ahead}个任务", result=task.id,
                                     properties=props)  # fmt: skip  # "queued, N tasks ahead"
        return await self._reply(call, 1, "Submit success", result=task.id, properties=props)

    def _new_task(
        self,
        action: str,
        prompt: str,
        *,
        parent: SimulatedTask | None,
        body: Mapping[str, Any],
        mode: str | None,
        bot_type: str | None = None,
        description: str = "",
    ) -> SimulatedTask:
        task = SimulatedTask(
            id=str(next(self._ids)),
            action=action,
            prompt=prompt,
            description=description or "Submit success",
            state=str(body.get("state") or ""),
            bot_type=bot_type or (parent.bot_type if parent is not None else "MID_JOURNEY"),
            mode=mode,
            parent_id=parent.id if parent is not None else None,
            submit_time=_now_ms(),
            final_prompt=prompt or None,
        )
        if action == "DESCRIBE":
            task.final_prompt = "\n\n".join(
                f"{n}\ufe0f\u20e3 {text} --ar 5:4"
                for n, text in enumerate(("Cat", "A cat on a sofa", "Cat portrait", "Sleeping cat"), start=1)
            )
        if any(word in prompt.lower() for word in self.fail_words):
            task.will_fail = self.fail_reason
        self.tasks[task.id] = task
        return task

    def _schedule(self, task: SimulatedTask) -> None:
        steps: deque[tuple[str, str]] = deque()
        if task.status != "SUBMITTED":
            steps.append(("SUBMITTED", "0%"))
        steps.extend(("IN_PROGRESS", f"{p}%") for p in self.progress_steps)
        steps.append(("FAILURE", "") if task.will_fail else ("SUCCESS", "100%"))
        task.steps = steps

    # ----------------------------------------------------------------------------------------- task endpoints

    async def _fetch(self, call: IncomingCall) -> web.StreamResponse:
        task = self.tasks.get(call.request.match_info["id"])
        if task is None:
            if self.relay:
                body = {"description": "task_no_found", "type": "upstream_error", "code": 4}
                return await self._send_json(call, body, status=400)
            return await self._send_json(call, b"")  # novicezk: 200 with an empty body
        self._advance(task)
        return await self._send_json(call, self._task_json(task))

    async def _list(self, call: IncomingCall) -> web.StreamResponse:
        ids = _object(call).get("ids")
        if not isinstance(ids, list):
            return await self._reply(call, 4, _PARAM_BAD)
        out = []
        for task_id in ids:
            task = self.tasks.get(task_id) if isinstance(task_id, str) else None
            if task is not None:  # unknown ids are simply left out
                self._advance(task)
                out.append(self._task_json(task))
        return await self._send_json(call, out)

    async def _cancel(self, call: IncomingCall) -> web.StreamResponse:
        task = self.tasks.get(call.request.match_info["id"])
        if task is None:
            return await self._reply(call, 3, _TASK_MISSING, status=404)
        if task.status in _UNFINISHED or task.status == "MODAL":
            task.status, task.progress, task.steps = "CANCEL", "", deque()
            task.finish_time = _now_ms()
        return await self._send_json(call, self._task_json(task))

    async def _attachment(self, call: IncomingCall) -> web.StreamResponse:
        if call.request.match_info["task"] not in self.tasks:
            return await self._send_json(call, b"", status=404)
        return await self._send_json(call, _PNG, content_type="image/png")

    # ----------------------------------------------------------------------------------------- task lifecycle

    def _advance(self, task: SimulatedTask) -> None:
        if task.status not in _UNFINISHED or not task.steps:
            return
        status, progress = task.steps.popleft()
        task.status, task.progress = status, progress
        if status == "IN_PROGRESS":
            task.start_time = task.start_time or _now_ms()
            task.image_url = self._attachment_url(task, f"preview_{progress.rstrip('%')}")
        elif status == "FAILURE":
            task.fail_reason, task.finish_time, task.image_url = task.will_fail, _now_ms(), None
        elif status == "SUCCESS":
            task.finish_time = _now_ms()
            self._complete(task)

    def _complete(self, task: SimulatedTask) -> None:
        stem = f"{task.id}_{task.message_hash[:8]}"
        task.image_url = self._attachment_url(task, stem if task.action != "DESCRIBE" else "described")
        h = task.message_hash
        if task.action in _GRID_ACTIONS:
            if self.split_images:
                task.image_urls = [self._attachment_url(task, f"{stem}_{i}") for i in range(1, 5)]
            task.buttons = [_button(f"MJ::JOB::upsample::{i}::{h}", label=f"U{i}") for i in range(1, 5)]
            task.buttons.append(_button(f"MJ::JOB::reroll::0::{h}::SOLO", emoji="🔄"))
            task.buttons += [_button(f"MJ::JOB::variation::{i}::{h}", label=f"V{i}") for i in range(1, 5)]
        elif task.action in ("UPSCALE", "UPSCALE_HD"):
            task.buttons = [
                _button(f"MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO", label="Upscale (Subtle)"),
                _button(f"MJ::JOB::upsample_v6_2x_creative::1::{h}::SOLO", label="Upscale (Creative)"),
                _button(f"MJ::JOB::high_variation::1::{h}::SOLO", label="Vary (Strong)", emoji="🪄"),
                _button(f"MJ::JOB::low_variation::1::{h}::SOLO", label="Vary (Subtle)", emoji="🪄"),
                _button(f"MJ::Inpaint::1::{h}::SOLO", label="Vary (Region)", emoji="🖌️"),
                _button(f"MJ::Outpaint::50::1::{h}::SOLO", label="Zoom Out 2x", emoji="🔍"),
                _button(f"MJ::Outpaint::75::1::{h}::SOLO", label="Zoom Out 1.5x", emoji="🔍"),
                _button(f"MJ::CustomZoom::{h}", label="Custom Zoom", emoji="🔍"),
                _button(f"MJ::JOB::pan_left::1::{h}::SOLO", emoji="⬅️"),
                _button(f"MJ::JOB::pan_right::1::{h}::SOLO", emoji="➡️"),
                _button(f"MJ::JOB::pan_up::1::{h}::SOLO", emoji="⬆️"),
                _button(f"MJ::JOB::pan_down::1::{h}::SOLO", emoji="⬇️"),
            ]
        elif task.action == "DESCRIBE":
            task.buttons = [_button(f"MJ::Job::PicReader::{i}", label=str(i)) for i in range(1, 5)]
            task.buttons.append(_button(f"MJ::Picread::Retry::{h}", emoji="🔄"))

    def _attachment_url(self, task: SimulatedTask, stem: str) -> str:
        return (
            f"{self.origin}/attachments/1118138338562560102/{task.id}/{stem}.png"
            f"?ex={int(time.time()) + 86400:x}&is={int(time.time()):x}&hm={task.message_hash.replace('-', '')}"
        )

    def _task_json(self, task: SimulatedTask) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": task.id,
            "action": task.action,
            "status": task.status,
            "prompt": task.prompt,
            "promptEn": task.prompt,
            "description": task.description,
            "state": task.state,
            "submitTime": task.submit_time,
            "startTime": task.start_time,
            "finishTime": task.finish_time,
            "imageUrl": task.image_url,
            "progress": task.progress,
            "failReason": task.fail_reason,
            "properties": {
                "botType": task.bot_type,
                "finalPrompt": task.final_prompt,
                "messageHash": task.message_hash,
                "discordInstanceId": "1118138338562560102",
            },
            "buttons": task.buttons,
        }
        if task.mode is not None:
            out["mode"] = task.mode
        if task.image_urls and task.status == "SUCCESS":
            out["imageUrls"] = [{"url": url, "thumbnail": url} for url in task.image_urls]
        return out

    def _banned(self, prompt: str) -> str | None:
        lowered = prompt.lower()
        return next((word for word in self.banned_words if word in lowered), None)

    # ----------------------------------------------------------------------------------------- replies and hooks

    async def _reply(
        self,
        call: IncomingCall,
        code: int,
        description: str | None,
        *,
        result: str | None = None,
        properties: Mapping[str, Any] | None = None,
        status: int = 200,
    ) -> web.StreamResponse:
        if self.relay:
            if code not in (1, 21, 22):
                # new-api: failures are HTTP 400 (429 for its group overload), with the upstream code kept.
                body = {"description": f"{description or ''} {result or ''}".strip(), "type": "upstream_error",
                        "code": code}  # fmt: skip
                return await self._send_json(call, body, status=429 if code == 30 else 400)
            if code == 22:
                code = 1
        payload: dict[str, Any] = {"code": code, "description": description or "", "properties": dict(properties or {})}
        if result is not None:
            payload["result"] = int(result) if self.relay else result
        return await self._send_json(call, payload, status=status)

    def _presented_key(self, request: web.Request) -> str | None:
        if request.method == "GET" and request.path.startswith("/attachments/"):
            # Result images are public CDN-style links: no credentials are needed (or sent).
            return self.api_key
        if self.relay:
            scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                return rest.strip()
            if request.headers.get("Authorization") in (None, "", "midjourney-proxy"):
                # new-api falls back to the mj-api-secret header when Authorization is empty.
                return request.headers.get("mj-api-secret")
            return None
        return request.headers.get("mj-api-secret")

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        if self.relay:
            return 401, {"error": {"message": "无效的令牌", "type": "new_api_error"}}  # "invalid token"
        return 401, b""  # novicezk: a wrong secret is a bare 401

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        if self.relay:
            return {"description": f"upstream answered HTTP {status}", "type": "upstream_error", "code": 5}
        # Spring Boot's default error body (the Java proxy).
        reasons = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                   503: "Service Unavailable", 404: "Not Found"}  # fmt: skip
        return {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime()),
            "status": status,
            "error": reasons.get(status, "Error"),
            "path": call.recorded.path,
        }


def _object(call: IncomingCall) -> dict[str, Any]:
    body = call.recorded.json
    return dict(body) if isinstance(body, dict) else {}


def _data_url(value: Any) -> bool:
    if not isinstance(value, str) or not value.startswith("data:image/"):
        return False
    header, sep, payload = value.partition(",")
    if not sep or not header.endswith(";base64"):
        return False
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _child_action(custom_id: str) -> tuple[str | None, str]:
    """The action a button starts, and its index."""
    parts = custom_id.split("::")
    if parts[:2] == ["MJ", "JOB"] and len(parts) >= 4:
        kind, index = parts[2], parts[3]
        if kind == "upsample":
            return "UPSCALE", index
        if kind.startswith("upsample_"):
            return "UPSCALE_HD", index
        if kind == "variation":
            return "VARIATION", index
        if kind == "reroll":
            return "REROLL", index
        if kind in ("high_variation", "low_variation"):
            return kind.upper(), index
        if kind.startswith("pan_"):
            return "PAN", index
        return None, index
    if parts[:2] == ["MJ", "Inpaint"]:
        return "INPAINT", "1"
    if parts[:2] == ["MJ", "CustomZoom"]:
        return "CUSTOM_ZOOM", "1"
    if parts[:2] == ["MJ", "Outpaint"]:
        return "ZOOM", parts[2] if len(parts) > 2 else "50"
    if parts[:3] == ["MJ", "Job", "PicReader"] and len(parts) >= 4:
        return "IMAGINE", parts[3]
    return None, ""


def _described_prompts(final_prompt: str) -> list[str]:
    out = []
    for block in final_prompt.split("\n\n"):
        text = block.strip()[1:].lstrip("\ufe0f\u20e3 ").strip()
        out.append(text)
    return out or [""]


def _button(custom_id: str, *, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


def _mode_of(path: str) -> str | None:
    """The speed mode a request's root asks for (``/mj-relax/mj/...`` → ``RELAX``)."""
    for root in _ROOTS[1:]:
        if path.startswith(root + "/"):
            return root.removeprefix("/mj-").upper()
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)
