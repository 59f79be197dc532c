"""A simulated Kling API (``https://api-singapore.klingai.com``): ``POST /v1/videos/text2video``,
``/v1/videos/image2video``, ``/v1/videos/multi-image2video``, ``/v1/images/generations``, their
``GET <path>/{task_id}`` queries, and output files at ``GET /delivery/{id}/{file}``.

Per the official doc copies (wire-video-audio-workflow.md §3.1–3.5): every answer is the envelope
``{"code", "message", "request_id", "data"}``; tasks go ``submitted`` → ``processing`` (one step per query) → the
scripted outcome: ``succeed`` (``task_result.videos[{id, url, duration: "5.1"}]`` or ``images[{index, url}]``) or
``failed`` (``task_status_msg``); timestamps in milliseconds. A task queried on another path family is 404
(code 1203), as Kling keeps families apart.

**Auth.** ``Authorization: Bearer <JWT>``: the token must be HS256 over ``header.claims`` with ``secret_key``,
``iss`` must be ``access_key``, ``nbf <= now < exp`` on the server's ``clock`` (default ``time.time``); failures
answer 401 with code 1002 (bad token), 1003 (not yet valid) or 1004 (expired); a missing header 1001. Every
token seen is in :attr:`KlingUpstream.tokens`. With ``relay_key`` set, that plain bearer key is accepted instead
(new-api / DMXAPI relays). Status faults get a Kling envelope with the code documented for that status.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs
from aiohttp import web

from polyrelay.testing._openai_images import tiny_png
from polyrelay.testing._runway import TINY_MP4
from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream

__all__ = ["KlingOutcome", "KlingUpstream", "decode_jwt"]

_FAMILIES: Mapping[str, str] = {
    "/v1/videos/text2video": "video",
    "/v1/videos/image2video": "video",
    "/v1/videos/multi-image2video": "video",
    "/v1/images/generations": "image",
}
#: Error code sent for an HTTP status fault (the documented pairing, §3.5).
_STATUS_CODES: Mapping[int, int] = {
    400: 1201,
    401: 1000,
    403: 1103,
    404: 1203,
    429: 1302,
    500: 5000,
    503: 5001,
    504: 5002,
}
_DELIVERY_PREFIX = "/delivery/"
_VALID = "valid"


@attrs.frozen(kw_only=True)
class KlingOutcome:
    """How one task goes: ``submitted_polls`` queries answer ``submitted``, ``processing_polls`` ``processing``."""

    status: Literal["succeed", "failed"] = "succeed"
    submitted_polls: int = 1
    processing_polls: int = 2
    task_status_msg: str = "Failure to pass the risk control system"


@attrs.define
class _Task:
    id: str
    path: str
    body: dict[str, Any]
    outcome: KlingOutcome
    created_at: int
    polls: int = 0
    status: str = "submitted"


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, str]:
    """``(header, claims, signature, signing input)`` of a compact JWT; :class:`ValueError` if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three segments")
    try:
        header, claims, signature = (base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts)
        return json.loads(header), json.loads(claims), signature, f"{parts[0]}.{parts[1]}"
    except (binascii.Error, ValueError) as exc:
        raise ValueError("undecodable JWT") from exc


class KlingUpstream(SimulatedUpstream):
    """Simulated Kling API (see the module docstring)."""

    name = "kling"
    base_path = ""

    def __init__(
        self,
        *,
        access_key: str = "test-access-key",
        secret_key: str = "test-secret-key-0123456789",
        relay_key: str | None = None,
        outcome: KlingOutcome | None = None,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=_VALID, host=host, port=port)
        self.access_key = access_key
        self.secret_key = secret_key
        self.relay_key = relay_key
        self.clock = clock
        self.outcome = outcome or KlingOutcome()
        self._pushed: deque[KlingOutcome] = deque()
        self.tasks: dict[str, _Task] = {}
        #: Every bearer token presented, in order.
        self.tokens: list[str] = []

    def push_outcome(self, outcome: KlingOutcome) -> None:
        """Script the next created task (FIFO) before the default ``outcome``."""
        self._pushed.append(outcome)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        routes: list[tuple[str, str, Handler]] = [("GET", _DELIVERY_PREFIX + "{id}/{file}", self._delivery)]
        for path in _FAMILIES:
            routes.append(("POST", path, self._create))
            routes.append(("GET", path + "/{task_id}", self._query))
        return routes

    async def _create(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        path = call.request.path
        if not isinstance(body, dict):
            return await self._envelope_error(call, 400, 1200, "invalid request body")
        if path == "/v1/videos/image2video" and not body.get("image"):
            return await self._envelope_error(call, 400, 1201, "image is required")
        if path == "/v1/videos/text2video" and not body.get("prompt"):
            return await self._envelope_error(call, 400, 1201, "prompt is required")
        image = body.get("image")
        if isinstance(image, str) and image.startswith("data:"):
            return await self._envelope_error(call, 400, 1201, "image must be a URL or raw base64")
        outcome = self._pushed.popleft() if self._pushed else self.outcome
        task = _Task(
            id=base64.urlsafe_b64encode(uuid.uuid4().bytes[:12]).decode().rstrip("="),
            path=path,
            body=body,
            outcome=outcome,
            created_at=int(self.clock() * 1000),
        )
        self.tasks[task.id] = task
        return await self._ok(call, self._data(task))

    async def _query(self, call: IncomingCall) -> web.StreamResponse:
        task_id = call.request.match_info["task_id"]
        task = self.tasks.get(task_id)
        family = call.request.path.rsplit("/", 1)[0]
        if task is None or task.path != family:
            return await self._envelope_error(call, 404, 1203, "task not found")
        if task.status in ("submitted", "processing"):
            self._advance(task)
        return await self._ok(call, self._data(task))

    async def _delivery(self, call: IncomingCall) -> web.StreamResponse:
        if call.request.match_info["file"].endswith(".mp4"):
            return await self._send_json(call, TINY_MP4, content_type="video/mp4")
        return await self._send_json(call, tiny_png(2, 2, (0, 90, 90)), content_type="image/png")

    # ----------------------------------------------------------------------------------------- lifecycle

    def _advance(self, task: _Task) -> None:
        task.polls += 1
        outcome = task.outcome
        if task.polls <= outcome.submitted_polls:
            task.status = "submitted"
        elif task.polls <= outcome.submitted_polls + outcome.processing_polls:
            task.status = "processing"
        else:
            task.status = outcome.status

    def _data(self, task: _Task) -> dict[str, Any]:
        data: dict[str, Any] = {
            "task_id": task.id,
            "task_status": task.status,
            "task_info": {"external_task_id": task.body.get("external_task_id", "")},
            "created_at": task.created_at,
            "updated_at": task.created_at + 1000 * task.polls,
        }
        if task.status == "failed":
            data["task_status_msg"] = task.outcome.task_status_msg
        if task.status == "succeed":
            data["final_unit_deduction"] = "1"
            origin = f"{self.origin}{_DELIVERY_PREFIX}{task.id}"
            if _FAMILIES[task.path] == "image":
                count = task.body.get("n") or 1
                data["task_result"] = {
                    "images": [{"index": i, "url": f"{origin}/image-{i}.png"} for i in range(int(count))]
                }
            else:
                video = {"id": f"{task.id}-v", "url": f"{origin}/raw_video_1.mp4", "duration": "5.1"}
                data["task_result"] = {"videos": [video]}
        return data

    async def _ok(self, call: IncomingCall, data: Any) -> web.StreamResponse:
        return await self._send_json(
            call, {"code": 0, "message": "SUCCEED", "request_id": uuid.uuid4().hex, "data": data}
        )

    async def _envelope_error(self, call: IncomingCall, status: int, code: int, message: str) -> web.StreamResponse:
        return await self._send_json(
            call, {"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": None}, status=status
        )

    # ----------------------------------------------------------------------------------------- auth hooks

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith(_DELIVERY_PREFIX):
            return _VALID
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        token = token.strip()
        self.tokens.append(token)
        if self.relay_key is not None:
            return _VALID if hmac.compare_digest(token, self.relay_key) else token
        return _VALID if self._token_problem(token) is None else token

    def _token_problem(self, token: str) -> tuple[int, str] | None:
        try:
            header, claims, signature, signing_input = decode_jwt(token)
        except ValueError:
            return 1002, "Authorization is invalid"
        expected = hmac.new(self.secret_key.encode(), signing_input.encode(), hashlib.sha256).digest()
        if header.get("alg") != "HS256" or not hmac.compare_digest(signature, expected):
            return 1002, "Authorization is invalid"
        if claims.get("iss") != self.access_key:
            return 1000, "authentication failed"
        now = self.clock()
        if not isinstance(claims.get("nbf"), int) or now < claims["nbf"]:
            return 1003, "token is not yet valid"
        if not isinstance(claims.get("exp"), int) or now >= claims["exp"]:
            return 1004, "token has expired"
        return None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        if presented is None:
            code, message = 1001, "Authorization is empty"
        elif self.relay_key is not None:
            code, message = 1002, "Authorization is invalid"
        else:
            code, message = self._token_problem(presented) or (1002, "Authorization is invalid")
        return 401, {"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": None}

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        code = _STATUS_CODES.get(status, 5000 if status >= 500 else 1200)
        return {"code": code, "message": f"simulated {status} error", "request_id": uuid.uuid4().hex, "data": None}
