"""A simulated Luma Dream Machine API (``https://api.lumalabs.ai/dream-machine/v1``) and the relays' ``/luma``
variant.

Official (lumalabs/lumaai-api ``openapi.yaml``; wire-video-audio-workflow.md §2.2–2.5): ``POST
/generations/video`` (and the legacy ``POST /generations``) and ``POST /generations/image`` answer **201** with a
Generation (``state: "queued"``); ``GET /generations/{id}`` advances it one step per poll: ``queued`` →
``dreaming`` (with ``assets.progress_video`` after the first dreaming poll) → the scripted outcome: ``completed``
(``assets.video`` or ``assets.image``, URLs of tiny files on this server) or ``failed`` (``failure_reason``).
``DELETE /generations/{id}`` answers 204; the generation is gone afterwards (404). Errors are ``{"detail": ...}``;
auth is ``Authorization: Bearer``. Keyframe image URLs must be http(s) URLs (a ``data:`` URI gets a 400).

Relay (:class:`LumaRelayUpstream`, base ``/luma``, §2.6): ``POST /luma/generations`` with ``user_prompt`` →
``{id, prompt, state: "pending", video: null, ...}``; ``GET /luma/generations/{id}`` → ``pending`` →
``processing`` → ``completed`` (``video: {url, width, height, download_url}``) or ``failed``.
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
from polyrelay.testing._runway import TINY_MP4
from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream

__all__ = ["LumaOutcome", "LumaRelayUpstream", "LumaUpstream"]

_DELIVERY_PREFIX = "/delivery/"


@attrs.frozen(kw_only=True)
class LumaOutcome:
    """How one generation goes: ``queued_polls`` polls answer the queued state, ``running_polls`` the running
    state, then ``state``."""

    state: Literal["completed", "failed"] = "completed"
    queued_polls: int = 1
    running_polls: int = 2
    failure_reason: str = "400: prompt not allowed because advanced moderation failed"


@attrs.define
class _Generation:
    id: str
    kind: str
    body: dict[str, Any]
    outcome: LumaOutcome
    created_at: str
    polls: int = 0
    state: str = "queued"
    deleted: bool = False


class LumaUpstream(SimulatedUpstream):
    """Simulated ``https://api.lumalabs.ai/dream-machine/v1`` (see the module docstring)."""

    name = "luma"
    base_path = "/dream-machine/v1"
    #: State names: (queued, running, completed, failed).
    states: tuple[str, str, str, str] = ("queued", "dreaming", "completed", "failed")

    def __init__(
        self,
        *,
        outcome: LumaOutcome | None = None,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.outcome = outcome or LumaOutcome()
        self._pushed: deque[LumaOutcome] = deque()
        self.generations: dict[str, _Generation] = {}

    def push_outcome(self, outcome: LumaOutcome) -> None:
        """Script the next created generation (FIFO) before the default ``outcome``."""
        self._pushed.append(outcome)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        base = self.base_path
        return (
            ("POST", f"{base}/generations/video", self._create_video),
            ("POST", f"{base}/generations", self._create_video),
            ("POST", f"{base}/generations/image", self._create_image),
            ("GET", f"{base}/generations/{{id}}", self._get),
            ("DELETE", f"{base}/generations/{{id}}", self._delete),
            ("GET", _DELIVERY_PREFIX + "{name}", self._delivery),
        )

    async def _create_video(self, call: IncomingCall) -> web.StreamResponse:
        return await self._create(call, "video")

    async def _create_image(self, call: IncomingCall) -> web.StreamResponse:
        return await self._create(call, "image")

    async def _create(self, call: IncomingCall, kind: str) -> web.StreamResponse:
        body = call.recorded.json
        if not isinstance(body, dict):
            return await self._send_error(call, 400, body={"detail": "Invalid request body"})
        problem = self._validate(body)
        if problem:
            return await self._send_error(call, 400, body={"detail": problem})
        outcome = self._pushed.popleft() if self._pushed else self.outcome
        generation = _Generation(
            id=str(uuid.uuid4()), kind=kind, body=body, outcome=outcome, created_at=_now(), state=self.states[0]
        )
        self.generations[generation.id] = generation
        return await self._send_json(call, self._body(generation), status=201)

    def _validate(self, body: dict[str, Any]) -> str | None:
        if not isinstance(body.get("model"), str):
            return "model is required"
        frames = body.get("keyframes") or {}
        for name, frame in frames.items() if isinstance(frames, dict) else ():
            url = frame.get("url") if isinstance(frame, dict) else None
            if isinstance(url, str) and not url.startswith(("https://", "http://")):
                return f"keyframes.{name}.url: must be a URL"
        return None

    async def _get(self, call: IncomingCall) -> web.StreamResponse:
        generation = self.generations.get(call.request.match_info["id"])
        if generation is None or generation.deleted:
            return await self._send_error(call, 404, body={"detail": "Generation not found"})
        if generation.state in self.states[:2]:
            self._advance(generation)
        return await self._send_json(call, self._body(generation))

    async def _delete(self, call: IncomingCall) -> web.StreamResponse:
        generation = self.generations.get(call.request.match_info["id"])
        if generation is None or generation.deleted:
            return await self._send_error(call, 404, body={"detail": "Generation not found"})
        generation.deleted = True
        return web.Response(status=204)

    async def _delivery(self, call: IncomingCall) -> web.StreamResponse:
        name = call.request.match_info["name"]
        if name.endswith(".mp4"):
            return await self._send_json(call, TINY_MP4, content_type="video/mp4")
        return await self._send_json(call, tiny_png(2, 2, (10, 10, 200)), content_type="image/png")

    # ----------------------------------------------------------------------------------------- lifecycle

    def _advance(self, generation: _Generation) -> None:
        generation.polls += 1
        outcome = generation.outcome
        queued, running, completed, failed = self.states
        if generation.polls <= outcome.queued_polls:
            generation.state = queued
        elif generation.polls <= outcome.queued_polls + outcome.running_polls:
            generation.state = running
        else:
            generation.state = completed if outcome.state == "completed" else failed

    def _asset(self, generation: _Generation, suffix: str) -> str:
        return f"{self.origin}{_DELIVERY_PREFIX}{generation.id}{suffix}"

    def _body(self, g: _Generation) -> dict[str, Any]:
        assets: dict[str, Any] = {}
        if g.state == "dreaming" and g.polls > g.outcome.queued_polls + 1:
            assets["progress_video"] = self._asset(g, "-progress.mp4")
        if g.state == "completed":
            assets[g.kind] = self._asset(g, ".mp4" if g.kind == "video" else ".jpg")
        return {
            "id": g.id,
            "generation_type": g.kind,
            "state": g.state,
            "failure_reason": g.outcome.failure_reason if g.state == "failed" else None,
            "created_at": g.created_at,
            "assets": assets or None,
            "model": g.body.get("model"),
            "request": g.body,
        }

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith(_DELIVERY_PREFIX):
            return self.api_key
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest.strip() else None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        return 401, {"detail": "Invalid API key is provided"}

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        return {"detail": f"simulated {status} error"}

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        return {"x-request-id": uuid.uuid4().hex}


class LumaRelayUpstream(LumaUpstream):
    """The relays' ``/luma/generations`` format (see the module docstring). Base URL ``{origin}/luma``."""

    name = "luma-relay"
    base_path = "/luma"
    states = ("pending", "processing", "completed", "failed")

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/luma/generations", self._create_video),
            ("GET", "/luma/generations/{id}", self._get),
            ("GET", _DELIVERY_PREFIX + "{name}", self._delivery),
        )

    def _validate(self, body: dict[str, Any]) -> str | None:
        return None if isinstance(body.get("user_prompt"), str) else "user_prompt is required"

    def _body(self, g: _Generation) -> dict[str, Any]:
        video = None
        if g.state == "completed":
            url = self._asset(g, ".mp4")
            video = {"url": url, "width": 1360, "height": 752, "download_url": url + "?download=1"}
        return {
            "id": g.id,
            "prompt": g.body.get("user_prompt"),
            "state": g.state,
            "created_at": g.created_at,
            "video": video,
            "thumbnail": None,
            "last_frame": None,
            "liked": None,
            "estimate_wait_seconds": None if g.state == "completed" else 30,
            "failure_reason": g.outcome.failure_reason if g.state == "failed" else None,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
