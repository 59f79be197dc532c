"""A simulated Coze workflow API (``https://api.coze.com``): ``POST /v1/workflow/run`` (sync, or async with
``is_async``), ``GET /v1/workflows/{workflow_id}/run_histories/{execute_id}``, ``POST /v1/workflow/stream_run``.

Shapes follow coze-dev/coze-py (``cozepy/workflows/runs``, ``run_histories``, and the stream fixture
``tests/testdata/workflow_run_stream_resp.txt``; wire-video-audio-workflow.md §5.3). Answers are the envelope
``{"code": 0, "msg", ...}`` with HTTP 200 also for errors (``code`` 4000 bad parameters, 4200 workflow not
published for ids in ``unpublished``; a bad token answers 401 with code 4100); the ``x-tt-logid`` header carries
the log id. A sync run answers ``data`` = the End node's output as a JSON *string*; an async run answers
``execute_id``, its history reads ``Running`` for ``running_polls`` polls, then ``Success`` (``output`` a JSON
string) or ``Fail`` (``error_code``, ``error_message``).

A stream sends, for each message node of the scripted graph, its content in ``Message`` events (the last with
``node_is_finish: true``), then the End node's output JSON as the final ``Message`` (``node_title`` empty, as in
the coze-py fixture), then ``Done``, ``step_delay`` seconds apart (tiny by default); the ``error`` outcome sends
``Error`` after ``error_after`` nodes, ``interrupt`` a question node's message and ``Interrupt``. With ``manual``
each event after the first waits for :meth:`CozeUpstream.release`. The ``truncate`` fault drops the stream after
``after_chunks`` events.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
from aiohttp import web

from polyrelay.testing._openai_images import tiny_png
from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream

__all__ = ["CozeOutcome", "CozeUpstream"]


@attrs.frozen(kw_only=True)
class CozeOutcome:
    status: Literal["success", "fail", "error", "interrupt"] = "success"
    #: Message nodes and the chunks each streams.
    nodes: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("Outline", ("Once upon ", "a tide")),
        ("Narration", ("The keeper ", "climbed the stairs.")),
    )
    output: Mapping[str, Any] = attrs.field(
        factory=lambda: {"story": "The keeper climbed the stairs.", "cover": "https://cdn.example.com/cover.png"}
    )
    running_polls: int = 2
    error_code: int = 4000
    error_message: str = "Request parameter error"
    error_after: int = 1


@attrs.define(eq=False)
class _Run:
    execute_id: str
    workflow_id: str
    outcome: CozeOutcome
    polls: int = 0


class CozeUpstream(SimulatedUpstream):
    """Simulated Coze workflow API (see the module docstring)."""

    name = "coze"
    base_path = ""

    def __init__(
        self,
        *,
        outcome: CozeOutcome | None = None,
        unpublished: Sequence[str] = ("7000000000000000000",),
        step_delay: float = 0.002,
        manual: bool = False,
        api_key: str | None = "pat_test-token",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.outcome = outcome or CozeOutcome()
        self.unpublished = frozenset(unpublished)
        self.step_delay = step_delay
        self.manual = manual
        self._tokens = asyncio.Semaphore(0)
        self._pushed: deque[CozeOutcome] = deque()
        self.runs: dict[str, _Run] = {}

    def push_outcome(self, outcome: CozeOutcome) -> None:
        """Script the next run (FIFO) before the default ``outcome``."""
        self._pushed.append(outcome)

    def release(self, events: int = 1) -> None:
        """Let ``events`` more stream events out (``manual`` mode)."""
        for _ in range(events):
            self._tokens.release()

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/v1/workflow/run", self._run),
            ("POST", "/v1/workflow/stream_run", self._stream_run),
            ("GET", "/v1/workflows/{workflow_id}/run_histories/{execute_id}", self._history),
            ("GET", "/files/{name}", self._file),
        )

    def _check(self, body: Any) -> tuple[int, str] | None:
        if not isinstance(body, dict) or not isinstance(body.get("workflow_id"), str):
            return 4000, "Request parameter error: workflow_id is required"
        if body.get("bot_id") and body.get("app_id"):
            return 4000, "Request parameter error: bot_id and app_id cannot both be set"
        if body["workflow_id"] in self.unpublished:
            return 4200, "The workflow is not published"
        parameters = body.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            return 4000, "Request parameter error: parameters must be an object"
        return None

    async def _run(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        problem = self._check(body)
        if problem is not None:
            return await self._envelope(call, {"code": problem[0], "msg": problem[1]})
        assert isinstance(body, dict)
        outcome = self._pushed.popleft() if self._pushed else self.outcome
        run = _Run(
            execute_id=str(7_400_000_000_000_000_000 + len(self.runs)), workflow_id=body["workflow_id"], outcome=outcome
        )
        self.runs[run.execute_id] = run
        debug_url = f"https://www.coze.com/work_flow?execute_id={run.execute_id}"
        if body.get("is_async"):
            return await self._envelope(
                call, {"code": 0, "msg": "Success", "execute_id": run.execute_id, "debug_url": debug_url}
            )
        if outcome.status != "success":
            return await self._envelope(call, {"code": outcome.error_code, "msg": outcome.error_message})
        return await self._envelope(
            call,
            {
                "code": 0,
                "msg": "Success",
                "data": json.dumps(dict(outcome.output)),
                "debug_url": debug_url,
                "execute_id": run.execute_id,
                "usage": {"input_count": 50, "output_count": 100, "token_count": 150},
            },
        )

    async def _history(self, call: IncomingCall) -> web.StreamResponse:
        info = call.request.match_info
        run = self.runs.get(info["execute_id"])
        if run is None or run.workflow_id != info["workflow_id"]:
            return await self._envelope(call, {"code": 4000, "msg": "execute record not found"})
        run.polls += 1
        record: dict[str, Any] = {
            "execute_id": run.execute_id,
            "execute_status": "Running",
            "bot_id": "0",
            "connector_id": "1024",
            "connector_uid": "user",
            "run_mode": 2,
            "logid": "log",
            "create_time": 1717000000,
            "update_time": 1717000000 + run.polls,
            "output": "",
            "error_code": 0,
            "error_message": "",
            "debug_url": f"https://www.coze.com/work_flow?execute_id={run.execute_id}",
        }
        if run.polls > run.outcome.running_polls:
            if run.outcome.status == "success":
                record.update(
                    execute_status="Success",
                    output=json.dumps(dict(run.outcome.output)),
                    usage={"input_count": 50, "output_count": 100, "token_count": 150},
                )
            else:
                record.update(
                    execute_status="Fail", error_code=run.outcome.error_code, error_message=run.outcome.error_message
                )
        return await self._envelope(call, {"code": 0, "msg": "", "data": [record]})

    async def _stream_run(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        problem = self._check(body)
        if problem is not None:
            return await self._envelope(call, {"code": problem[0], "msg": problem[1]})
        outcome = self._pushed.popleft() if self._pushed else self.outcome
        response = web.StreamResponse(status=200, headers=self._headers_for(call, None, "text/event-stream"))
        await response.prepare(call.request)
        fault = call.fault
        sent = 0

        async def send(event: str, data: Any) -> bool:
            nonlocal sent
            if fault is not None and fault.kind == "truncate" and sent == fault.after_chunks:
                self._drop(call)
                return False
            if sent:
                released = await self._gate() if self.manual else True
                if not released or not await self._hold(self.step_delay):
                    self._drop(call)
                    return False
            await response.write(
                f"id: {sent}\nevent: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
            )
            sent += 1
            return True

        for index, (title, chunks) in enumerate(outcome.nodes):
            if outcome.status == "error" and index == outcome.error_after:
                if await send("Error", {"error_code": outcome.error_code, "error_message": outcome.error_message}):
                    await response.write_eof()
                return response
            for seq, chunk in enumerate(chunks):
                message = {
                    "content": chunk,
                    "node_is_finish": seq == len(chunks) - 1,
                    "node_seq_id": str(seq),
                    "node_title": title,
                }
                if not await send("Message", message):
                    return response
        if outcome.status == "interrupt":
            question = {
                "content": "Which city?",
                "content_type": "text",
                "node_is_finish": True,
                "node_seq_id": "0",
                "node_title": "Question",
            }
            interrupt = {
                "interrupt_data": {"data": "", "event_id": "7404830425073352713/2769808280134765896", "type": 2},
                "node_title": "Question",
            }
            if not (await send("Message", question) and await send("Interrupt", interrupt)):
                return response
        else:
            final = {
                "content": json.dumps(dict(outcome.output), ensure_ascii=False),
                "cost": "0.00",
                "node_is_finish": True,
                "node_seq_id": "0",
                "node_title": "",
                "token": 0,
            }
            if not await send("Message", final):
                return response
        if await send("Done", {"debug_url": "https://www.coze.com/work_flow?execute_id=7400000000000000001"}):
            await response.write_eof()
        return response

    async def _file(self, call: IncomingCall) -> web.StreamResponse:
        return await self._send_json(call, tiny_png(1, 1), content_type="image/png")

    async def _gate(self) -> bool:
        token = asyncio.ensure_future(self._tokens.acquire())
        hold = asyncio.ensure_future(self._hold(None))
        done, pending = await asyncio.wait({token, hold}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return token in done

    async def _envelope(self, call: IncomingCall, body: dict[str, Any], status: int = 200) -> web.StreamResponse:
        logid = uuid.uuid4().hex
        body.setdefault("detail", {"logid": logid})
        return await self._send_json(call, body, status=status, headers={"x-tt-logid": logid})

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith("/files/"):
            return self.api_key
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest.strip() else None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        return 401, {"code": 4100, "msg": "authentication is invalid", "detail": {"logid": uuid.uuid4().hex}}

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        code = {400: 4000, 401: 4100, 429: 4013}.get(status, 5000)
        return {"code": code, "msg": f"simulated {status} error", "detail": {"logid": uuid.uuid4().hex}}

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        return {"x-tt-logid": uuid.uuid4().hex}
