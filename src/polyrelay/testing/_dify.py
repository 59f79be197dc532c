"""A simulated Dify workflow app (``https://api.dify.ai/v1``): ``POST /v1/workflows/run`` (blocking or
streaming), ``GET /v1/workflows/run/{workflow_run_id}``, ``POST /v1/workflows/tasks/{task_id}/stop``, and tool
files at ``GET /files/tools/{name}``.

Shapes follow langgenius/dify ``template_workflow.en.mdx`` (wire-video-audio-workflow.md §5.2). A streamed run
sends ``workflow_started``, then ``node_started`` / ``node_finished`` for each node of the scripted graph
(``step_delay`` seconds apart, default tiny, so progress shows quickly), an ``event: ping`` after the first node,
then ``workflow_finished``. Outcomes: ``succeeded`` (outputs with a text and a Dify file object whose ``url`` is
relative, as Dify sends tool files), ``failed`` (the failing node finishes ``failed``, then the run), ``hold``
(stops after ``hold_after`` nodes and waits for a stop or the server closing). Stopping a run ends its stream with
``workflow_finished`` status ``stopped`` (not confirmed against a live instance). Stream faults: ``truncate`` drops
the connection and ``error_event`` sends ``{"event": "error", "status", "code", "message"}`` after
``after_chunks`` nodes. With ``manual=True`` every event after ``workflow_started`` waits for
:meth:`DifyUpstream.release`, so a test can step a run one event at a time. Blocking runs answer the finished run.
Errors are ``{"code", "message", "status"}``; auth ``Authorization: Bearer app-…``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
from aiohttp import web

from polyrelay.testing._openai_images import tiny_png
from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream, sse_data

__all__ = ["DEFAULT_NODES", "DifyOutcome", "DifyUpstream"]

#: The default graph: (title, node_type).
DEFAULT_NODES: tuple[tuple[str, str], ...] = (
    ("Start", "start"),
    ("Write the script", "llm"),
    ("Render the poster", "tool"),
    ("End", "end"),
)


@attrs.frozen(kw_only=True)
class DifyOutcome:
    status: Literal["succeeded", "failed", "hold"] = "succeeded"
    nodes: tuple[tuple[str, str], ...] = DEFAULT_NODES
    #: ``failed``: the index of the node that fails.
    failing_node: int = 2
    error: str = "Node Render the poster run failed: tool invoke error: quota exhausted"
    #: ``hold``: nodes run before the run waits.
    hold_after: int = 2
    text: str = "A lighthouse keeper finds a message in a bottle."


@attrs.define(eq=False)
class _Run:
    id: str
    task_id: str
    inputs: dict[str, Any]
    outcome: DifyOutcome
    created_at: int
    status: str = "running"
    outputs: dict[str, Any] | None = None
    error: str | None = None
    steps: int = 0
    finished_at: int | None = None
    stopped: asyncio.Event = attrs.field(factory=asyncio.Event)


class DifyUpstream(SimulatedUpstream):
    """Simulated Dify workflow API (see the module docstring)."""

    name = "dify"
    base_path = "/v1"

    def __init__(
        self,
        *,
        outcome: DifyOutcome | None = None,
        step_delay: float = 0.002,
        manual: bool = False,
        api_key: str | None = "app-test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.outcome = outcome or DifyOutcome()
        self.step_delay = step_delay
        #: With ``manual`` every stream event after ``workflow_started`` waits for a :meth:`release`.
        self.manual = manual
        self._tokens = asyncio.Semaphore(0)
        self._pushed: deque[DifyOutcome] = deque()
        self.runs: dict[str, _Run] = {}
        self._by_task: dict[str, _Run] = {}

    def push_outcome(self, outcome: DifyOutcome) -> None:
        """Script the next run (FIFO) before the default ``outcome``."""
        self._pushed.append(outcome)

    def release(self, events: int = 1) -> None:
        """Let ``events`` more stream events out (``manual`` mode): a test steps a run one event at a time."""
        for _ in range(events):
            self._tokens.release()

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/v1/workflows/run", self._run),
            ("GET", "/v1/workflows/run/{id}", self._get_run),
            ("POST", "/v1/workflows/tasks/{task_id}/stop", self._stop),
            ("GET", "/files/tools/{name}", self._file),
        )

    async def _run(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), dict):
            return await self._error(call, 400, "invalid_param", "inputs is required in input form")
        if body.get("response_mode") not in ("blocking", "streaming"):
            return await self._error(call, 400, "invalid_param", "response_mode must be blocking or streaming")
        if not isinstance(body.get("user"), str) or not body["user"]:
            return await self._error(call, 400, "invalid_param", "user is required")
        run = _Run(
            id=str(uuid.uuid4()),
            task_id=str(uuid.uuid4()),
            inputs=body["inputs"],
            outcome=self._pushed.popleft() if self._pushed else self.outcome,
            created_at=int(time.time()),
        )
        self.runs[run.id] = run
        self._by_task[run.task_id] = run
        if body["response_mode"] == "blocking":
            for index in range(len(run.outcome.nodes)):
                if not await self._node_outcome(run, index):
                    break
            self._finish(run)
            data = self._run_data(run)
            return await self._send_json(call, {"workflow_run_id": run.id, "task_id": run.task_id, "data": data})
        return await self._stream(call, run)

    async def _stream(self, call: IncomingCall, run: _Run) -> web.StreamResponse:
        headers = self._headers_for(call, None, "text/event-stream; charset=utf-8")
        response = web.StreamResponse(status=200, headers=headers)
        await response.prepare(call.request)
        fault = call.fault
        base = {"task_id": run.task_id, "workflow_run_id": run.id}
        started = {
            "id": run.id,
            "workflow_id": "wf-simulated",
            "sequence_number": 1,
            "inputs": run.inputs,
            "created_at": run.created_at,
        }
        await response.write(sse_data({"event": "workflow_started", **base, "data": started}))

        async def send(payload: Any) -> bool:
            if self.manual and not await self._gate(run):
                self._drop(call)
                return False
            await response.write(sse_data(payload))
            return True

        outcome = run.outcome
        for index, (title, node_type) in enumerate(outcome.nodes):
            if fault is not None and index == fault.after_chunks and fault.kind in ("truncate", "error_event"):
                if fault.kind == "truncate":
                    self._drop(call)
                    return response
                payload = fault.body or {
                    "event": "error",
                    "task_id": run.task_id,
                    "status": 400,
                    "code": "provider_quota_exceeded",
                    "message": "Your quota is exhausted",
                }
                run.status, run.error = "failed", str(payload.get("message"))
                await response.write(sse_data(payload))
                await response.write_eof()
                return response
            holding = outcome.status == "hold" and index == outcome.hold_after
            if holding and not await self._pause(run, None):
                self._drop(call)
                return response
            if run.stopped.is_set():
                break
            node = {
                "id": f"{run.id}-{index}",
                "node_id": f"node-{index}",
                "node_type": node_type,
                "title": title,
                "index": index + 1,
                "predecessor_node_id": f"node-{index - 1}" if index else None,
                "created_at": int(time.time()),
            }
            if not await send({"event": "node_started", **base, "data": node}):
                return response
            if not await self._pause(run, self.step_delay):
                self._drop(call)
                return response
            succeeded = await self._node_outcome(run, index)
            finished = {
                **node,
                "status": "succeeded" if succeeded else "failed",
                "error": None if succeeded else outcome.error,
                "elapsed_time": 0.01,
            }
            if not await send({"event": "node_finished", **base, "data": finished}):
                return response
            if index == 0:
                await response.write(b"event: ping\n\n")
            if not succeeded:
                break
            if not await self._pause(run, self.step_delay):
                self._drop(call)
                return response
        self._finish(run)
        if await send({"event": "workflow_finished", **base, "data": self._run_data(run)}):
            await response.write_eof()
        return response

    async def _get_run(self, call: IncomingCall) -> web.StreamResponse:
        run = self.runs.get(call.request.match_info["id"])
        if run is None:
            return await self._error(call, 404, "not_found", "Workflow run not found")
        data = self._run_data(run)
        data["inputs"] = json.dumps(run.inputs)
        return await self._send_json(call, data)

    async def _stop(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        if not isinstance(body, dict) or not body.get("user"):
            return await self._error(call, 400, "invalid_param", "user is required")
        run = self._by_task.get(call.request.match_info["task_id"])
        if run is None:
            return await self._error(call, 404, "not_found", "Task not found")
        if run.status == "running":
            run.status, run.finished_at = "stopped", int(time.time())
            run.stopped.set()
        return await self._send_json(call, {"result": "success"})

    async def _file(self, call: IncomingCall) -> web.StreamResponse:
        return await self._send_json(call, tiny_png(2, 2, (255, 200, 0)), content_type="image/png")

    # ----------------------------------------------------------------------------------------- lifecycle

    async def _node_outcome(self, run: _Run, index: int) -> bool:
        run.steps = index + 1
        if run.outcome.status == "failed" and index == run.outcome.failing_node:
            run.status, run.error = "failed", run.outcome.error
            return False
        return True

    def _finish(self, run: _Run) -> None:
        if run.status == "running":
            run.status = "succeeded"
            file_id = uuid.uuid4().hex
            run.outputs = {
                "text": run.outcome.text,
                "poster": {
                    "dify_model_identity": "__dify__file__",
                    "id": None,
                    "type": "image",
                    "transfer_method": "tool_file",
                    "remote_url": None,
                    "related_id": file_id,
                    "filename": "poster.png",
                    "extension": ".png",
                    "mime_type": "image/png",
                    "size": 68,
                    "url": f"/files/tools/{file_id}.png?timestamp=1717000000&nonce=abc&sign=def",
                },
            }
        run.finished_at = run.finished_at or int(time.time())

    def _run_data(self, run: _Run) -> dict[str, Any]:
        return {
            "id": run.id,
            "workflow_id": "wf-simulated",
            "status": run.status,
            "outputs": run.outputs,
            "error": run.error,
            "elapsed_time": 0.875,
            "total_tokens": 3562,
            "total_steps": run.steps,
            "created_at": run.created_at,
            "finished_at": run.finished_at,
        }

    async def _pause(self, run: _Run, seconds: float | None) -> bool:
        """Wait ``seconds`` (``None``: until stopped); ``False`` when the server is closing."""
        if run.stopped.is_set():
            return True
        stop = asyncio.ensure_future(run.stopped.wait())
        hold = asyncio.ensure_future(self._hold(seconds))
        done, pending = await asyncio.wait({stop, hold}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return not (hold in done and hold.result() is False)

    async def _gate(self, run: _Run) -> bool:
        """Wait for a released token (``manual`` mode); ``False`` when the server is closing."""
        token = asyncio.ensure_future(self._tokens.acquire())
        hold = asyncio.ensure_future(self._hold(None))
        done, pending = await asyncio.wait({token, hold}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return token in done

    async def _error(self, call: IncomingCall, status: int, code: str, message: str) -> web.StreamResponse:
        return await self._send_json(call, {"code": code, "message": message, "status": status}, status=status)

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith("/files/"):
            return self.api_key  # signed URLs
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest.strip() else None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        return 401, {"code": "unauthorized", "message": "Access token is invalid", "status": 401}

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        code = {400: "invalid_param", 404: "not_found", 429: "too_many_requests"}.get(status, "internal_server_error")
        return {"code": code, "message": f"simulated {status} error", "status": status}

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        return {"x-request-id": uuid.uuid4().hex}
