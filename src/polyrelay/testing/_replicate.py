"""A simulated Replicate API: ``POST /v1/models/{owner}/{name}/predictions``, ``POST /v1/predictions`` (with
``version``), ``GET /v1/predictions/{id}``, ``POST /v1/predictions/{id}/cancel``, and output files at
``GET /delivery/{id}/out-{n}.png``.

Prediction objects follow the API reference and the replicate-python VCR cassettes (wire-images.md §4.4, §9):
``starting`` on create, then ``processing`` with tqdm progress lines growing in ``logs``, then the scripted
outcome: ``succeeded`` (``output`` a list of file URLs, or one URL string), ``failed`` (``error`` string).
``Prefer: wait[=N]`` on create: if the outcome says the model finishes within the wait the answer is ``201`` with
the output (status ``succeeded``, or ``processing`` like real file-output models) and ``Preference-Applied``;
otherwise ``202`` with the incomplete prediction and a ``Location`` header. Errors are problem details
(``application/problem+json``); auth is ``Authorization: Bearer`` (``Token`` accepted too).
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import attrs
from aiohttp import web

from polyrelay.testing._openai_images import tiny_png
from polyrelay.testing._server import Handler, IncomingCall, RecordedRequest, SimulatedUpstream

__all__ = ["ReplicateOutcome", "ReplicateUpstream"]

_PROBLEM = "application/problem+json"
_DELIVERY_PREFIX = "/delivery/"
_PREFER = re.compile(r"^wait(?:=([1-9]|[1-9][0-9]|60))?$")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_STEPS = 20


@attrs.frozen(kw_only=True)
class ReplicateOutcome:
    """How one prediction goes: ``processing_polls`` polls answer ``processing``, then ``status``."""

    status: Literal["succeeded", "failed", "canceled", "aborted"] = "succeeded"
    #: Polls answered ``starting`` before ``processing`` (cold boot).
    starting_polls: int = 1
    processing_polls: int = 2
    #: ``"list"``: a list of file URLs (flux-schnell, SDXL); ``"string"``: one URL (flux-1.1-pro).
    output: Literal["list", "string"] = "list"
    error: str = "CUDA out of memory. Tried to allocate 1.50 GiB"
    #: With ``Prefer: wait`` the create call returns the finished prediction (201).
    finishes_within_wait: bool = False
    #: The status a finished-within-wait 201 reports (real file-output models may still say ``processing``).
    status_at_201: Literal["succeeded", "processing"] = "succeeded"


@attrs.define
class _Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    outcome: ReplicateOutcome
    created_at: str
    polls: int = 0
    status: str = "starting"
    output: Any = None
    error: str | None = None
    logs: str = ""
    started_at: str | None = None
    completed_at: str | None = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _tqdm(done: int) -> str:
    pct = done * 100 // _STEPS
    bar = "\u2588" * (pct // 10)
    return f"{pct:3d}%|{bar:<10}| {done}/{_STEPS} [00:00<00:01, 17.20it/s]"


class ReplicateUpstream(SimulatedUpstream):
    """Simulated ``https://api.replicate.com/v1`` predictions (see the module docstring)."""

    name = "replicate"
    base_path = "/v1"

    def __init__(
        self,
        *,
        outcome: ReplicateOutcome | None = None,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.outcome = outcome or ReplicateOutcome()
        self._pushed: deque[ReplicateOutcome] = deque()
        self.predictions: dict[str, _Prediction] = {}
        self._files: dict[str, bytes] = {}

    def push_outcome(self, outcome: ReplicateOutcome) -> None:
        """Script the next created prediction (FIFO) before the default ``outcome``."""
        self._pushed.append(outcome)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/v1/models/{owner}/{name}/predictions", self._create_by_model),
            ("POST", "/v1/predictions", self._create_by_version),
            ("GET", "/v1/predictions/{id}", self._get),
            ("POST", "/v1/predictions/{id}/cancel", self._cancel),
            ("GET", _DELIVERY_PREFIX + "{id}/{file}", self._delivery),
        )

    async def _create_by_model(self, call: IncomingCall) -> web.StreamResponse:
        info = call.request.match_info
        return await self._create(call, f"{info['owner']}/{info['name']}", "dp-" + secrets.token_hex(16))

    async def _create_by_version(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str) or not version:
            return await self._problem(call, 422, "Invalid version or not permitted", "- version: is required")
        return await self._create(call, "replicate/simulated", version)

    async def _create(self, call: IncomingCall, model: str, version: str) -> web.StreamResponse:
        body = call.recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return await self._problem(call, 422, "Input validation failed", "- input: Invalid type. Expected: object")
        outcome = self._pushed.popleft() if self._pushed else self.outcome
        prediction = _Prediction(
            id="".join(secrets.choice(_ID_ALPHABET) for _ in range(26)),
            model=model,
            version=version,
            input=dict(body["input"]),
            outcome=outcome,
            created_at=_now(),
        )
        self.predictions[prediction.id] = prediction
        prefer = call.request.headers.get("Prefer", "").strip()
        match = _PREFER.match(prefer) if prefer else None
        headers: dict[str, str] = {}
        status = 201
        if match is not None:
            headers["Preference-Applied"] = prefer
            if outcome.finishes_within_wait:
                self._finish(prediction)
                if outcome.status_at_201 == "processing" and prediction.status == "succeeded":
                    prediction.status = "processing"  # files all exist; the worker has not reported back yet
            else:
                status = 202
                headers["Location"] = f"{self.base_url}/predictions/{prediction.id}"
        return await self._send_json(call, self._body(prediction), status=status, headers=headers)

    async def _get(self, call: IncomingCall) -> web.StreamResponse:
        prediction = self.predictions.get(call.request.match_info["id"])
        if prediction is None:
            return await self._problem(call, 404, "Not found", "The requested resource could not be found.")
        if prediction.status in ("starting", "processing") and prediction.completed_at is None:
            self._advance(prediction)
        elif prediction.status == "processing":
            prediction.status = "succeeded"  # the 201-with-output case settles on the next read
        return await self._send_json(call, self._body(prediction))

    async def _cancel(self, call: IncomingCall) -> web.StreamResponse:
        prediction = self.predictions.get(call.request.match_info["id"])
        if prediction is None:
            return await self._problem(call, 404, "Not found", "The requested resource could not be found.")
        if prediction.status in ("starting", "processing"):
            prediction.status = "canceled"
            prediction.completed_at = _now()
            prediction.output = None
        return await self._send_json(call, self._body(prediction))

    async def _delivery(self, call: IncomingCall) -> web.StreamResponse:
        info = call.request.match_info
        data = self._files.get(f"{info['id']}/{info['file']}")
        if data is None:
            return await self._send_json(call, "Not Found", status=404)
        return await self._send_json(call, data, content_type="image/png")

    # ----------------------------------------------------------------------------------------- lifecycle

    def _advance(self, prediction: _Prediction) -> None:
        prediction.polls += 1
        outcome = prediction.outcome
        if prediction.polls <= outcome.starting_polls:
            return
        running = prediction.polls - outcome.starting_polls
        if running <= outcome.processing_polls:
            prediction.status = "processing"
            prediction.started_at = prediction.started_at or _now()
            done = _STEPS * running // (outcome.processing_polls + 1)
            prediction.logs = "Using seed: 42069\n" + "\n".join(_tqdm(i) for i in range(0, done + 1, max(1, done)))
            return
        self._finish(prediction)

    def _finish(self, prediction: _Prediction) -> None:
        outcome = prediction.outcome
        prediction.started_at = prediction.started_at or _now()
        prediction.completed_at = _now()
        prediction.status = outcome.status
        if outcome.status == "succeeded":
            prediction.logs = "Using seed: 42069\n" + _tqdm(_STEPS)
            count = prediction.input.get("num_outputs", 1)
            count = count if isinstance(count, int) and count > 0 else 1
            urls = []
            for index in range(count):
                name = f"{prediction.id}/out-{index}.png"
                self._files[name] = tiny_png(3, 3, (0, 200, 0))
                urls.append(f"{self.origin}{_DELIVERY_PREFIX}{name}")
            prediction.output = urls[0] if outcome.output == "string" else urls
        elif outcome.status == "failed":
            prediction.error = outcome.error

    def _body(self, p: _Prediction) -> dict[str, Any]:
        base = f"{self.base_url}/predictions/{p.id}"
        body: dict[str, Any] = {
            "id": p.id,
            "model": p.model,
            "version": p.version,
            "input": p.input,
            "logs": p.logs,
            "output": p.output,
            "data_removed": False,
            "error": p.error,
            "status": p.status,
            "created_at": p.created_at,
            "urls": {"cancel": f"{base}/cancel", "get": base, "web": f"https://replicate.com/p/{p.id}"},
        }
        if p.started_at is not None:
            body["started_at"] = p.started_at
        if p.completed_at is not None:
            body["completed_at"] = p.completed_at
            body["metrics"] = {"predict_time": 3.804328, "total_time": 4.1}
        return body

    async def _problem(self, call: IncomingCall, status: int, title: str, detail: str) -> web.StreamResponse:
        return await self._send_json(
            call, {"title": title, "detail": detail, "status": status}, status=status, content_type=_PROBLEM
        )

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith(_DELIVERY_PREFIX):
            return self.api_key  # replicate.delivery files are public
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        return rest.strip() if scheme.lower() in ("bearer", "token") and rest.strip() else None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        return 401, {
            "title": "Unauthenticated",
            "detail": "You did not pass a valid authentication token",
            "status": 401,
        }

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        if status == 429:
            return {
                "title": "Request was throttled.",
                "detail": "Request was throttled. Expected available in 1 second.",
                "status": 429,
            }
        return {"title": "Simulated error", "detail": f"simulated {status} error", "status": status}

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        return {"ratelimit-remaining": "599", "ratelimit-reset": "1", "x-request-id": secrets.token_hex(8)}

    def _request_model(self, recorded: RecordedRequest) -> str | None:
        parts = recorded.path.strip("/").split("/")
        if len(parts) == 5 and parts[1] == "models":
            return f"{parts[2]}/{parts[3]}"
        body = recorded.json
        version = body.get("version") if isinstance(body, dict) else None
        return version if isinstance(version, str) else None
