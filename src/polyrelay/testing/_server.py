"""The simulated-upstream server framework: a real HTTP server on 127.0.0.1 that plays one provider's API.

:class:`SimulatedUpstream` owns everything that is the same for every provider: the aiohttp server and its
lifecycle, recording each request, the fault queue, the outage switch, and the generic faults (``reset``,
``no_response``, ``slow_first_byte``, ``status``). It also drives every body a subclass sends, which is where the
body faults happen: :meth:`~SimulatedUpstream._send_json` for one-piece bodies and
:meth:`~SimulatedUpstream._send_stream` for SSE streams (``slow_first_token``, ``stall``, ``truncate``,
``malformed``, ``no_done``, ``error_event``), so a subclass only describes its wire format.

Writing a subclass (see :mod:`polyrelay.testing._openai` for a complete one):

- set :attr:`~SimulatedUpstream.name` and :attr:`~SimulatedUpstream.base_path`;
- return the endpoints from :meth:`~SimulatedUpstream._routes` as ``(method, path, handler)``, where a handler
  takes an :class:`IncomingCall` and returns what one of the ``_send_*`` helpers returns;
- say where the key is and how a bad key is rejected: :meth:`~SimulatedUpstream._presented_key` and
  :meth:`~SimulatedUpstream._auth_failure`;
- give the error envelope: :meth:`~SimulatedUpstream._error_body` (and :meth:`~SimulatedUpstream._error_headers`);
- optionally :meth:`~SimulatedUpstream._response_headers` (request ids) and
  :meth:`~SimulatedUpstream._request_model` (for ``add_fault(model=...)`` when the model is not ``body["model"]``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

import attrs
from aiohttp import web
from multidict import CIMultiDict

from polyrelay.testing._faults import Fault

__all__ = [
    "Handler",
    "IncomingCall",
    "RecordedRequest",
    "SimulatedUpstream",
    "StreamEvent",
    "StreamEventKind",
    "sse_data",
]

#: Where an event sits in a stream; the stream faults use it to find their place.
#: ``prelude``: before any model output (OpenAI's role chunk, Anthropic's ``message_start``).
#: ``content``: carries model output (text, reasoning, tool-call fragments); ``after_chunks`` counts these.
#: ``end``: after the output (finish chunk, usage chunk). ``done``: the end-of-stream marker ``no_done`` leaves out.
StreamEventKind = Literal["prelude", "content", "end", "done"]

# Faults that change how a body is delivered; the others are handled before the handler runs.
_BODY_FAULTS = frozenset({"slow_first_token", "stall", "malformed", "truncate", "no_done", "error_event"})
# How long close() lets held handlers finish after waking them, before cancelling them.
_CLOSE_GRACE_SECONDS = 1.0
# Headers and query parameters that carry credentials; masked in reprs so test output never shows a key.
_CREDENTIAL_NAMES = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key", "key", "proxy-authorization"})
# Requests carry images and audio as base64; aiohttp's 1 MiB default would reject them with a bare 413.
_MAX_REQUEST_BYTES = 64 * 1024 * 1024


def _masked_repr(items: Mapping[str, str]) -> str:
    shown = {name: "***" if name.lower() in _CREDENTIAL_NAMES else value for name, value in items.items()}
    return repr(shown)


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request as the simulated upstream received it (also requests that got a fault)."""

    method: str
    #: URL path, e.g. ``/v1/chat/completions``.
    path: str
    query: Mapping[str, str] = attrs.field(repr=_masked_repr)
    #: Case-insensitive.
    headers: Mapping[str, str] = attrs.field(repr=_masked_repr)
    body: bytes
    #: The body parsed as JSON, ``None`` when it is empty or not JSON.
    json: Any
    #: ``loop.time()`` when the request arrived.
    received_at: float


@attrs.frozen(kw_only=True)
class IncomingCall:
    """What a subclass's handler gets: the live request, its record and the fault it drew (if any)."""

    request: web.Request
    recorded: RecordedRequest
    fault: Fault | None


@attrs.frozen(kw_only=True)
class StreamEvent:
    """One encoded SSE event, e.g. ``b"data: {...}\\n\\n"``, and its place in the stream."""

    data: bytes
    kind: StreamEventKind = "content"


Handler = Callable[[IncomingCall], Awaitable[web.StreamResponse]]


def sse_data(payload: Any) -> bytes:
    """Encode ``payload`` as one ``data:`` SSE event (compact JSON, like the real APIs); ``str`` is sent as is."""
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return b"data: " + text.encode() + b"\n\n"


@attrs.define
class _FaultRule:
    fault: Fault
    remaining: int | None
    model: str | None
    path: str | None


class SimulatedUpstream:
    """A provider API served over real HTTP on 127.0.0.1, with recorded requests and injectable faults.

    Use it as an async context manager (or call :meth:`start` and :meth:`close`)::

        async with OpenAIUpstream() as upstream:
            upstream.add_fault(Fault.status_code(503))
            ...  # point a client at upstream.base_url
            assert len(upstream.requests) == 1

    Each request is recorded, then: while :meth:`set_down` is on it gets a 503; otherwise it draws the first
    queued fault that matches it (FIFO), then the key is checked, then the endpoint answers.
    """

    #: Short provider name, e.g. ``"openai"``.
    name: ClassVar[str] = "simulated"
    #: Path prefix of the API, appended to :attr:`origin` to make :attr:`base_url`, e.g. ``"/v1"``.
    base_path: ClassVar[str] = ""

    def __init__(self, *, api_key: str | None = "test-key", host: str = "127.0.0.1", port: int = 0) -> None:
        """``api_key=None`` accepts any (or no) key. ``port=0`` picks a free port at :meth:`start`."""
        self.api_key = api_key
        #: Every request received, in order.
        self.requests: list[RecordedRequest] = []
        self._host = host
        self._port = port
        self._bound_port: int | None = None
        self._rules: list[_FaultRule] = []
        self._down = False
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._handlers: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        where = self.origin if self._bound_port is not None else "not started"
        return f"<{type(self).__name__} {self.name} {where}>"

    # ----------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind and start serving. Raises :class:`RuntimeError` if already started."""
        if self._runner is not None:
            raise RuntimeError(f"{self!r} is already started")
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        for method, path, handler in self._routes():
            app.router.add_route(method, path, self._wrap(handler))
        # Catch-all last, so unknown paths are recorded and answered in the upstream's own envelope.
        app.router.add_route("*", "/{tail:.*}", self._wrap(self._unknown_route))
        # handler_cancellation: a handler holding a request (no_response, stall) ends when the client leaves.
        runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True)
        self._closing = asyncio.Event()
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving. Held requests (``no_response``, ``stall``, ...) are dropped at once. Idempotent."""
        runner = self._runner
        if runner is None:
            return
        self._runner = None
        self._closing.set()
        held = {task for task in self._handlers if not task.done()}
        if held:
            _done, stuck = await asyncio.wait(held, timeout=_CLOSE_GRACE_SECONDS)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=_CLOSE_GRACE_SECONDS)
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.close()

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``. Raises :class:`RuntimeError` before :meth:`start`.

        It stays valid after :meth:`close`, so a closed upstream doubles as a refused connection.
        """
        if self._bound_port is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() or use 'async with'")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._bound_port}"

    @property
    def base_url(self) -> str:
        """The API's base URL, what a client is configured with, e.g. ``http://127.0.0.1:PORT/v1``."""
        return self.origin + self.base_path

    # ----------------------------------------------------------------------------------------- scenario controls

    def add_fault(
        self, fault: Fault, *, times: int | None = 1, model: str | None = None, path: str | None = None
    ) -> None:
        """Queue ``fault`` for the next ``times`` matching requests (``None``: all of them until
        :meth:`clear_faults`).

        ``model`` matches the request's model, ``path`` the exact URL path (e.g. ``"/v1/chat/completions"``).
        A request draws the oldest queued fault that matches it.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, got {times!r}")
        self._rules.append(_FaultRule(fault=fault, remaining=times, model=model, path=path))

    def clear_faults(self) -> None:
        """Forget every queued fault."""
        self._rules.clear()

    def set_down(self, down: bool) -> None:
        """Outage switch: while down, every request gets a 503 in the upstream's envelope (queued faults wait)."""
        self._down = down

    # ----------------------------------------------------------------------------------------- subclass hooks

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        """The endpoints: ``(method, path, handler)``."""
        return ()

    def _presented_key(self, request: web.Request) -> str | None:
        """The API key the request carries, ``None`` when it carries none."""
        return None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        """Status and body for a missing (``presented is None``) or wrong key."""
        return 401, self._error_body(call, 401)

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        """The upstream's own error body for ``status`` (used by ``status`` faults, outages, 404s)."""
        return {"error": {"code": status, "message": f"simulated {status} error"}}

    def _error_headers(self, call: IncomingCall, status: int) -> Mapping[str, str]:
        """Extra headers the upstream sends with an error of ``status`` (e.g. rate-limit headers)."""
        return {}

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        """Headers on every response (request ids, versions); called once per response."""
        return {}

    def _request_model(self, recorded: RecordedRequest) -> str | None:
        """The model a request is for, for ``add_fault(model=...)``. Default: the JSON body's ``model``."""
        body = recorded.json
        if isinstance(body, dict):
            model = body.get("model")
            if isinstance(model, str):
                return model
        return None

    async def _unknown_route(self, call: IncomingCall) -> web.StreamResponse:
        """Answer a request to a path no route serves. Default: a 404 in the upstream's envelope."""
        return await self._send_error(call, 404)

    # ----------------------------------------------------------------------------------------- helpers for handlers

    async def _send_json(
        self,
        call: IncomingCall,
        payload: Any,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> web.StreamResponse:
        """Send a one-piece body (JSON-encoded unless ``bytes``/``str``, sent as is), applying the call's body fault.

        ``malformed``: the body is cut in half (not JSON). ``truncate``: the connection drops mid-body.
        ``slow_first_token`` and ``stall``: headers go out at once, the body ``delay`` seconds later.
        ``error_event`` on a 200: the body is the upstream's error body instead (an error inside a 200).
        """
        fault = call.fault
        kind = fault.kind if fault is not None else None
        if kind == "error_event" and status == 200:
            payload = self._in_band_error(call)
        data = _encode(payload)
        all_headers = self._headers_for(call, headers, content_type)
        if kind == "malformed":
            data = data[: max(1, len(data) // 2)]
        if kind not in ("truncate", "slow_first_token", "stall"):
            return web.Response(status=status, body=data, headers=all_headers)
        assert fault is not None
        response = web.StreamResponse(status=status, headers=all_headers)
        response.content_length = len(data)
        await response.prepare(call.request)
        if kind == "truncate":
            await response.write(data[: len(data) // 2])
            self._drop(call)
            return response
        if not await self._hold(fault.delay):
            self._drop(call)
            return response
        await response.write(data)
        await response.write_eof()
        return response

    async def _send_error(
        self, call: IncomingCall, status: int, *, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> web.StreamResponse:
        """Send an error response: ``body`` or the upstream's envelope for ``status``, plus its error headers.

        A ``str``/``bytes`` body goes out verbatim as ``text/html`` (an edge proxy's error page).
        """
        payload = self._error_body(call, status) if body is None else body
        merged = {**self._error_headers(call, status), **(headers or {})}
        content_type = "text/html; charset=utf-8" if isinstance(payload, str | bytes) else "application/json"
        return await self._send_json(call, payload, status=status, headers=merged, content_type=content_type)

    async def _send_stream(
        self,
        call: IncomingCall,
        events: Sequence[StreamEvent],
        *,
        error_event: bytes | None = None,
        chunk_delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
        content_type: str = "text/event-stream; charset=utf-8",
    ) -> web.StreamResponse:
        """Stream ``events`` (status 200), applying the call's stream fault at its place.

        ``error_event`` is the encoded in-band error for the ``error_event`` fault (default: ``sse_data`` of the
        fault's body or the upstream's 500 error body). ``chunk_delay`` seconds pass between events.
        """
        fault = call.fault if call.fault is not None and call.fault.kind in _BODY_FAULTS else None
        response = web.StreamResponse(status=200, headers=self._headers_for(call, headers, content_type))
        if fault is not None and fault.kind == "no_done":
            response.force_close()
        await response.prepare(call.request)
        trigger = _trigger_index(events, fault)
        for index in range(len(events) + 1):
            if fault is not None and index == trigger:
                if fault.kind in ("slow_first_token", "stall"):
                    if not await self._hold(fault.delay):
                        self._drop(call)
                        return response
                elif fault.kind == "truncate":
                    self._drop(call)
                    return response
                elif fault.kind == "malformed":
                    await response.write(_cut_event(events[min(index, len(events) - 1)].data if events else b""))
                    await response.write_eof()
                    return response
                elif fault.kind == "error_event":
                    await response.write(error_event or sse_data(self._in_band_error(call)))
                    await response.write_eof()
                    return response
            if index == len(events):
                break
            event = events[index]
            if event.kind == "done" and fault is not None and fault.kind == "no_done":
                continue
            if chunk_delay > 0 and index > 0 and not await self._hold(chunk_delay):
                self._drop(call)
                return response
            await response.write(event.data)
        await response.write_eof()
        return response

    def _in_band_error(self, call: IncomingCall) -> Any:
        """The error payload for an ``error_event`` fault: the fault's body, else the upstream's 500 body."""
        if call.fault is not None and call.fault.body is not None:
            return call.fault.body
        return self._error_body(call, 500)

    async def _hold(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (``None``: forever). Returns ``False`` when cut short because the server is closing."""
        if self._closing.is_set():
            return False
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            return True
        return False

    def _drop(self, call: IncomingCall, *, reset: bool = False) -> None:
        """Drop the connection: a FIN after what was already written, or with ``reset`` an immediate RST."""
        transport = call.request.transport
        if transport is None or transport.is_closing():
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER with a zero timeout turns close() into a TCP RST, like a crashed peer or a middlebox.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()

    # ----------------------------------------------------------------------------------------- internals

    def _wrap(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            task = asyncio.current_task()
            if task is not None:
                self._handlers.add(task)
            try:
                return await self._dispatch(request, handler)
            except ConnectionError:
                # The client left mid-response; aiohttp notices the dead transport and closes quietly.
                return web.Response()
            finally:
                if task is not None:
                    self._handlers.discard(task)

        return handle

    async def _dispatch(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            body=body,
            json=_parse_json(body),
            received_at=asyncio.get_running_loop().time(),
        )
        self.requests.append(recorded)
        if self._down:
            return await self._send_error(IncomingCall(request=request, recorded=recorded, fault=None), 503)
        call = IncomingCall(request=request, recorded=recorded, fault=self._take_fault(recorded))
        fault = call.fault
        if fault is not None:
            if fault.kind == "reset":
                self._drop(call, reset=True)
                return web.Response()
            if fault.kind == "no_response":
                await self._hold(None)
                self._drop(call)
                return web.Response()
            if fault.kind == "slow_first_byte" and not await self._hold(fault.delay):
                self._drop(call)
                return web.Response()
            if fault.kind == "status":
                return await self._send_error(call, fault.status, body=fault.body)
        if self.api_key is not None:
            presented = self._presented_key(request)
            if presented is None or not _same_key(presented, self.api_key):
                status, payload = self._auth_failure(call, presented)
                return await self._send_json(call, payload, status=status)
        return await handler(call)

    def _take_fault(self, recorded: RecordedRequest) -> Fault | None:
        model = self._request_model(recorded)
        for rule in self._rules:
            if rule.model is not None and rule.model != model:
                continue
            if rule.path is not None and rule.path != recorded.path:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
            return rule.fault
        return None

    def _headers_for(self, call: IncomingCall, extra: Mapping[str, str] | None, content_type: str) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict(self._response_headers(call))
        headers["Content-Type"] = content_type
        headers.update(extra or {})
        fault = call.fault
        if fault is not None:
            if fault.retry_after is not None:
                headers["Retry-After"] = _format_retry_after(fault.retry_after)
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = str(fault.retry_after_ms)
            headers.update(fault.headers)
        return headers


def _trigger_index(events: Sequence[StreamEvent], fault: Fault | None) -> int | None:
    """Index of the event before which a positional stream fault fires (``len(events)``: at the very end)."""
    if fault is None or fault.kind == "no_done":
        return None
    content = [index for index, event in enumerate(events) if event.kind == "content"]
    if not content:
        # Nothing to count: fire where content would have started.
        return next((index for index, event in enumerate(events) if event.kind != "prelude"), len(events))
    wanted = 0 if fault.kind == "slow_first_token" else fault.after_chunks
    if wanted == 0:
        return content[0]
    return content[min(wanted, len(content)) - 1] + 1


def _cut_event(event: bytes) -> bytes:
    """``event`` with its last line cut in half: a ``data:`` line whose JSON never closes."""
    # Normalise CRLF framing (Gemini) first, so the cut lands inside the JSON whatever the line ends.
    event = event.replace(b"\r\n", b"\n")
    lines = event.rstrip(b"\n").split(b"\n") if event else [b'data: {"id":"simulated-malformed"}']
    last = lines[-1]
    lines[-1] = last[: max(len(b"data: {"), len(last) // 2)]
    return b"\n".join(lines) + b"\n\n"


def _encode(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, ensure_ascii=False).encode()


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _same_key(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
