"""A simulated Black Forest Labs API: ``POST /v1/{model}`` → ``{id, polling_url}``, ``GET /v1/get_result?id=``,
``GET /v1/credits``, and the result images at ``GET /delivery/{id}/sample.png``.

Shapes follow docs.bfl.ai and a real run log (wire-images.md §3.4–3.6): submit answers
``{"id", "polling_url", "cost", "input_mp", "output_mp"}``; get_result answers
``{"id", "status", "result", "progress", "details", "preview"}`` with ``Pending`` (progress rising over several
polls), then the scripted outcome: ``Ready`` (``result.sample`` is a URL of a tiny PNG, plus ``prompt``, ``seed``,
``start_time``, ``end_time``, ``duration``), ``Request Moderated``, ``Content Moderated``, ``Error``, ``Failed``.
An unknown id answers ``Task not found``. Validation errors are FastAPI 422 bodies; auth is ``x-key``.

**Second origin.** Real BFL returns polling URLs on other hosts (``api.us1.bfl.ai``). A second
``FluxUpstream(share_state_with=primary)`` is another server (another port, hence another origin) that serves the
primary's tasks; point ``primary.polling_origin`` (and/or ``delivery_origin``) at it. Its ``api_key=None``
default accepts polls without a key, like BFL's get_result::

    async with FluxUpstream() as api, FluxUpstream(share_state_with=api) as regional:
        api.polling_origin = regional.origin
        ...  # regional.requests shows whether x-key was sent there
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
from aiohttp import web

from polyrelay.testing._openai_images import tiny_png
from polyrelay.testing._server import Handler, IncomingCall, RecordedRequest, SimulatedUpstream

__all__ = ["FLUX_MODELS", "FluxOutcome", "FluxUpstream"]

#: Models the simulator accepts at ``POST /v1/{model}`` (others get 404 ``{"detail": "Not Found"}``).
FLUX_MODELS = frozenset(
    {
        "flux-pro-1.1",
        "flux-pro-1.1-ultra",
        "flux-pro",
        "flux-dev",
        "flux-kontext-pro",
        "flux-kontext-max",
        "flux-pro-1.0-fill",
        "flux-pro-1.0-expand",
        "flux-2-pro",
        "flux-2-max",
        "flux-2-flex",
        "flux-2-klein-4b",
        "flux-2-klein-9b",
    }
)
OutcomeKind = Literal["ready", "request_moderated", "content_moderated", "error", "failed"]
_TERMINAL: Mapping[str, str] = {
    "ready": "Ready",
    "request_moderated": "Request Moderated",
    "content_moderated": "Content Moderated",
    "error": "Error",
    "failed": "Failed",
}
_DELIVERY_PREFIX = "/delivery/"
_NOT_FOUND = "Task not found"


@attrs.frozen(kw_only=True)
class FluxOutcome:
    """How one submitted task goes: ``pending_polls`` polls answer ``Pending``, then ``kind``."""

    kind: OutcomeKind = "ready"
    pending_polls: int = 2
    #: Report progress while pending (``null`` otherwise, as BFL often does).
    progress: bool = True
    details: Any = None


@attrs.define
class _FluxTask:
    id: str
    model: str
    prompt: str
    seed: int
    outcome: FluxOutcome
    created: float
    polls: int = 0


@attrs.define
class _State:
    tasks: dict[str, _FluxTask] = attrs.field(factory=dict)
    images: dict[str, bytes] = attrs.field(factory=dict)


class FluxUpstream(SimulatedUpstream):
    """Simulated ``https://api.bfl.ai/v1`` (see the module docstring)."""

    name = "flux"
    base_path = "/v1"

    def __init__(
        self,
        *,
        outcome: FluxOutcome | None = None,
        share_state_with: FluxUpstream | None = None,
        blocked_words: Sequence[str] = ("forbidden",),
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if share_state_with is not None and api_key == "test-key":
            api_key = None  # a polling cluster: get_result does not check the key
        super().__init__(api_key=api_key, host=host, port=port)
        self.outcome = outcome or FluxOutcome()
        self.blocked_words = tuple(w.lower() for w in blocked_words)
        self._state: _State = share_state_with._state if share_state_with is not None else _State()
        self._pushed: deque[FluxOutcome] = deque()
        #: Origin written into ``polling_url`` (default: this server).
        self.polling_origin: str | None = None
        #: Origin of ``result.sample`` URLs (default: this server).
        self.delivery_origin: str | None = None

    def push_outcome(self, outcome: FluxOutcome) -> None:
        """Script the next submitted task (FIFO) before the default ``outcome``."""
        self._pushed.append(outcome)

    def task_ids(self) -> list[str]:
        """Ids of the tasks submitted so far."""
        return list(self._state.tasks)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("GET", "/v1/get_result", self._get_result),
            ("GET", "/v1/credits", self._credits),
            ("GET", _DELIVERY_PREFIX + "{id}/sample.png", self._delivery),
            ("POST", "/v1/{model}", self._submit),
        )

    async def _credits(self, call: IncomingCall) -> web.StreamResponse:
        return await self._send_json(call, {"credits": 1000.0})

    async def _submit(self, call: IncomingCall) -> web.StreamResponse:
        model = call.request.match_info["model"]
        if model not in FLUX_MODELS:
            return await self._send_json(call, {"detail": "Not Found"}, status=404)
        body = call.recorded.json
        if not isinstance(body, dict):
            return await self._send_json(call, _validation("body", "field required", "value_error.missing"), status=422)
        prompt = body.get("prompt")
        if model != "flux-pro-1.0-expand" and not isinstance(prompt, str):
            return await self._send_json(
                call, _validation("prompt", "field required", "value_error.missing"), status=422
            )
        for dim in ("width", "height"):
            value = body.get(dim)
            if value is not None and (not isinstance(value, int) or value % 16):
                return await self._send_json(
                    call, _validation(dim, "ensure this value is a multiple of 16", "value_error"), status=422
                )
        outcome = self._pushed.popleft() if self._pushed else self.outcome
        text = prompt if isinstance(prompt, str) else ""
        if any(word in text.lower() for word in self.blocked_words):
            outcome = FluxOutcome(
                kind="request_moderated", pending_polls=0, details={"Moderation Reasons": ["Derivative Works Filter"]}
            )
        task_id = str(uuid.uuid4())
        seed = body.get("seed")
        self._state.tasks[task_id] = _FluxTask(
            id=task_id,
            model=model,
            prompt=text,
            seed=seed if isinstance(seed, int) else 1601288383,
            outcome=outcome,
            created=time.time(),
        )
        origin = self.polling_origin or self.origin
        return await self._send_json(
            call,
            {
                "id": task_id,
                "polling_url": f"{origin}/v1/get_result?id={task_id}",
                "cost": 4.0,
                "input_mp": 0.0,
                "output_mp": 1.0,
            },
        )

    async def _get_result(self, call: IncomingCall) -> web.StreamResponse:
        task_id = call.request.query.get("id", "")
        task = self._state.tasks.get(task_id)
        if task is None:
            return await self._send_json(call, _result(task_id, _NOT_FOUND))
        task.polls += 1
        outcome = task.outcome
        if task.polls <= outcome.pending_polls:
            progress = round(task.polls / (outcome.pending_polls + 1), 2) if outcome.progress else None
            return await self._send_json(call, _result(task_id, "Pending", progress=progress))
        status = _TERMINAL[outcome.kind]
        if outcome.kind != "ready":
            return await self._send_json(call, _result(task_id, status, details=outcome.details))
        self._state.images[task_id] = tiny_png(2, 2, (0, 128, 255))
        origin = self.delivery_origin or self.origin
        now = time.time()
        result = {
            "start_time": task.created,
            "end_time": now,
            "duration": round(now - task.created, 3),
            "prompt": f"{task.prompt}, highly detailed",
            "seed": task.seed,
            "sample": f"{origin}{_DELIVERY_PREFIX}{task_id}/sample.png?se=2030-01-01T00%3A00%3A00Z&sig=simulated",
        }
        return await self._send_json(call, _result(task_id, status, result=result))

    async def _delivery(self, call: IncomingCall) -> web.StreamResponse:
        data = self._state.images.get(call.request.match_info["id"])
        if data is None:
            return await self._send_json(call, "<Error><Code>BlobNotFound</Code></Error>", status=404)
        return await self._send_json(call, data, content_type="image/png")

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith(_DELIVERY_PREFIX):
            return self.api_key  # signed delivery URLs need no key
        return request.headers.get("x-key")

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        return 403, {"detail": "Not authenticated - Invalid Authentication"}

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        if status == 429:
            return {"detail": "You have reached the maximum number of active tasks. Wait for tasks to finish."}
        if status == 402:
            return {"detail": "Insufficient credits"}
        return {"detail": f"simulated {status} error"}

    def _request_model(self, recorded: RecordedRequest) -> str | None:
        segment = recorded.path.rsplit("/", 1)[-1]
        return segment if recorded.method == "POST" else None


def _validation(field: str, msg: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": ["body", field], "msg": msg, "type": kind}]}


def _result(
    task_id: str, status: str, *, result: Any = None, progress: float | None = None, details: Any = None
) -> dict[str, Any]:
    return {
        "id": task_id,
        "status": status,
        "result": result,
        "progress": progress,
        "details": details,
        "preview": None,
    }
