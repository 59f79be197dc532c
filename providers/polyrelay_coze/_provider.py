"""The Coze provider: workflow runs as ``kind = "workflow"`` tasks (wire-video-audio-workflow.md §5.3, §5.6).

``Authorization: Bearer <personal access token or OAuth token>`` (it needs the ``run`` permission); the model is
the workflow id (``coze/7404830425073352713``). Request mapping: :mod:`polyrelay_coze._request`. Hosts:
``https://api.coze.com`` (default) or ``https://api.coze.cn`` via ``base_url``.

**Modes** (option ``mode``, or ``params["mode"]``):

- ``stream`` (default): ``POST /v1/workflow/stream_run``; a background consumer (:mod:`polyrelay_coze._live`)
  follows the events. ``Message`` events are node output: each node title seen is a node, finished when a message
  says ``node_is_finish``; ``progress`` = nodes finished / (nodes seen + 1), never decreasing, ``extra["node"]`` =
  the latest node title, ``extra["nodes"]`` all of them, ``extra["messages"]`` each node's text. ``Done`` ends the
  run: ``extra["outputs"]`` = the last finished message (the End node's output JSON) decoded. ``Error`` fails it
  (code = Coze's ``error_code``); ``Interrupt`` (a question node waits for an answer; resuming is not supported
  here) fails it with code ``interrupted`` and ``extra["interrupt"]``. A stream run has no Coze id to poll: its
  upstream id (``stream-…``) is known only to this process; if the stream breaks the run is failed with code
  ``stream_interrupted``.
- ``sync``: ``POST /v1/workflow/run`` answers the finished run (``data`` = the output JSON *string*, decoded).
- ``async``: the same with ``is_async`` (paid plans); the task is polled with ``GET
  /v1/workflows/{workflow_id}/run_histories/{execute_id}`` (Running / Success / Fail) from any process.

**Outputs.** ``extra["outputs"]`` holds the decoded output (a JSON object; anything else as ``{"output": value}``;
the ``{"Output": "<JSON string>"}`` wrapper seen in run histories is unwrapped); media URLs in it become artifacts
(:mod:`polyrelay_coze._outputs`). Coze cannot cancel a workflow run. **Cadence**: 3 s between ``run_histories``
polls (option ``poll_interval``); 0.25 s between polls of a followed stream.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import attrs

from polyrelay.errors import ConfigError, InvalidRequest, InvalidUpstreamResponse, Secret, UnsupportedFeature
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.sse import ServerSentEvent
from polyrelay.transport import HttpResponse, Transport
from polyrelay.types.media import TaskKind, TaskRequest, TaskSnapshot, TaskStatus
from polyrelay.workflows.live import LiveRun, LiveRuns
from polyrelay.workflows.outputs import artifacts_in
from polyrelay_coze._errors import STATUS_MAP, classified, code_of, failure_info, raise_for_response
from polyrelay_coze._request import build_run, check_workflow_id
from polyrelay_coze._wire import (
    ErrorEvent,
    HistoryAnswer,
    InterruptEvent,
    MessageEvent,
    RunAnswer,
    dump,
    parse,
)

__all__ = ["CozeProvider", "build", "decode_output"]

DEFAULT_BASE_URL = "https://api.coze.com"
DEFAULT_POLL_INTERVAL = 3.0
DEFAULT_LIVE_POLL_WAIT = 5.0
LIVE_POLL_INTERVAL = 0.25
MODES = frozenset({"stream", "sync", "async"})
_OPTIONS = frozenset({"mode", "bot_id", "app_id", "prompt_input", "poll_interval", "live_poll_wait"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_LOCAL = ("stream-", "sync-")
#: The End node's title when Coze leaves it empty (its final message often has ``node_title: ""``).
_END = "End"


def build(settings: ProviderSettings, transport: Transport) -> CozeProvider:
    """The provider factory: validates the instance's options."""
    options = dict(settings.options)
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key in options:
        if key not in _OPTIONS:
            raise ConfigError(f"unknown option for a coze provider{did_you_mean(key, _OPTIONS)}", key=prefix + key)
    mode = options.get("mode", "stream")
    if mode not in MODES:
        raise ConfigError(f"must be one of {sorted(MODES)}, got {mode!r}", key=prefix + "mode")
    for name in ("bot_id", "app_id", "prompt_input"):
        value = options.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError("must be a non-empty string", key=prefix + name)
    if options.get("bot_id") and options.get("app_id"):
        raise ConfigError("give bot_id or app_id, not both", key=prefix + "app_id")
    seconds: dict[str, float] = {}
    for name, default_seconds in (("poll_interval", DEFAULT_POLL_INTERVAL), ("live_poll_wait", DEFAULT_LIVE_POLL_WAIT)):
        number = options.get(name, default_seconds)
        if isinstance(number, bool) or not isinstance(number, int | float) or not 0 < number <= 3600:
            raise ConfigError(f"must be a number of seconds (0-3600], got {number!r}", key=prefix + name)
        seconds[name] = float(number)
    return CozeProvider(
        settings,
        transport,
        mode=mode,
        bot_id=options.get("bot_id"),
        app_id=options.get("app_id"),
        prompt_input=options.get("prompt_input", "input"),
        poll_interval=seconds["poll_interval"],
        live_poll_wait=seconds["live_poll_wait"],
    )


def decode_output(text: str | None) -> dict[str, Any]:
    """A Coze output string as an object: JSON objects as they are (one ``{"Output": "<JSON>"}`` wrapper
    removed), other JSON values and plain text as ``{"output": value}``."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"output": text}
    if isinstance(value, dict) and set(value) == {"Output"} and isinstance(value["Output"], str):
        try:
            inner = json.loads(value["Output"])
        except ValueError:
            return {"output": value["Output"]}
        value = inner
    return value if isinstance(value, dict) else {"output": value}


@attrs.define
class _StreamState:
    nodes: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    messages: dict[str, str] = attrs.field(factory=dict)
    finished: int = 0
    progress: float = 0.0
    node: str | None = None
    last_finished: str | None = None
    status: TaskStatus = "running"
    raw: str = "Running"
    error_code: str | None = None
    error: str | None = None
    interrupt: dict[str, Any] | None = None
    debug_url: str | None = None
    usage: Mapping[str, Any] | None = None


class CozeProvider:
    """A :class:`~polyrelay.provider.TaskProvider` for Coze workflows (see the module docstring)."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        mode: str = "stream",
        bot_id: str | None = None,
        app_id: str | None = None,
        prompt_input: str = "input",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        live_poll_wait: float = DEFAULT_LIVE_POLL_WAIT,
    ) -> None:
        self.name = settings.name
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.mode = mode
        self.bot_id = bot_id
        self.app_id = app_id
        self.prompt_input = prompt_input
        self.interval = poll_interval
        self.live_poll_wait = live_poll_wait
        self._settings = settings
        self._transport = transport
        self._key: Secret | None = settings.api_key
        self._secrets = settings.secrets()
        self._live = LiveRuns()

    def __repr__(self) -> str:
        return f"CozeProvider(name={self.name!r}, base_url={self.base_url!r}, mode={self.mode!r})"

    async def aclose(self) -> None:
        """Stop following streamed runs (the router calls this when it closes)."""
        await self._live.aclose()

    # -- TaskProvider -------------------------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        params = dict(request.params)
        mode = params.pop("mode", self.mode)
        if mode not in MODES:
            raise InvalidRequest(f"must be one of {sorted(MODES)}, got {mode!r}", path="params.mode")
        body = build_run(
            attrs.evolve(request, params=params),
            ctx.model,
            prompt_input=self.prompt_input,
            bot_id=self.bot_id,
            app_id=self.app_id,
            is_async=mode == "async",
        )
        kind: TaskKind = request.kind or "workflow"
        streaming = mode == "stream"
        response = await self._transport.request(
            "POST",
            f"{self.base_url}/v1/workflow/{'stream_run' if streaming else 'run'}",
            provider=self.name,
            # A streamed run is followed after submit returns: no per-attempt total, no call deadline on its reads.
            timeouts=attrs.evolve(ctx.timeouts, total=None) if streaming else ctx.timeouts,
            headers=self._headers(ctx),
            json_body=dump(body),
            deadline=None if streaming else ctx.deadline,
            secrets=self._secrets,
        )
        if response.status != 200 or "text/event-stream" not in response.headers.get("Content-Type", ""):
            async with response:
                if response.status != 200:
                    await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
                data = await response.json()
            return self._run_answer(data, kind, mode, ctx)
        run = LiveRun(self._stream_snapshot(f"stream-{uuid.uuid4().hex}", _StreamState(), kind))
        self._live.start(run, self._follow(run, kind, response, ctx))
        return run.snapshot

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        live = self._live.get(upstream_id)
        if live is not None:
            return await live.next_snapshot(self.live_poll_wait)
        if not _ID.match(upstream_id):
            raise InvalidRequest("the task id does not carry a Coze execute id", path="task_id")
        if upstream_id.startswith(_LOCAL):
            raise InvalidRequest(
                "this Coze run was streamed by another process (or forgotten); only async runs can be polled "
                "from anywhere (mode = 'async')",
                path="task_id",
            )
        workflow_id = check_workflow_id(ctx.model)
        response = await self._transport.request(
            "GET",
            f"{self.base_url}/v1/workflows/{workflow_id}/run_histories/{upstream_id}",
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            data = await response.json() if response.status == 200 else None
            if response.status != 200:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
        code, msg, logid = code_of(data)
        if code != 0:
            raise classified(
                code,
                msg,
                status=200,
                provider=self.name,
                request_id=logid,
                model=ctx.model,
                body=data,
                secrets=self._secrets,
            )
        answer = parse(data, HistoryAnswer, provider=self.name, what="run history")
        if not answer.data:
            raise InvalidUpstreamResponse("Coze returned an empty run history", provider=self.name)
        history = answer.data[0]
        status = STATUS_MAP.get(history.execute_status, "running")
        extra: dict[str, Any] = {"execute_id": history.execute_id}
        if history.debug_url:
            extra["debug_url"] = history.debug_url
        if history.usage:
            extra["usage"] = dict(history.usage)
        if status == "succeeded":
            return self._done(upstream_id, "workflow", history.execute_status, decode_output(history.output), extra)
        if status == "failed":
            error = failure_info(history.error_code, history.error_message, self._secrets)
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="failed",
                kind="workflow",
                error=error,
                raw_status=history.execute_status,
                extra=extra,
            )
        return TaskSnapshot(
            upstream_id=upstream_id, status="running", kind="workflow", raw_status=history.execute_status, extra=extra
        )

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        raise UnsupportedFeature("Coze cannot cancel a workflow run", path="task_id", provider=self.name)

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        return LIVE_POLL_INTERVAL if self._live.is_following(snapshot.upstream_id) else self.interval

    # -- non-streamed answers -----------------------------------------------------------------------------------

    def _run_answer(self, data: Any, kind: TaskKind, mode: str, ctx: CallContext) -> TaskSnapshot:
        code, msg, logid = code_of(data)
        if code != 0:
            raise classified(
                code,
                msg,
                status=200,
                provider=self.name,
                request_id=logid,
                model=ctx.model,
                body=data,
                secrets=self._secrets,
            )
        answer = parse(data, RunAnswer, provider=self.name, what="run answer")
        extra: dict[str, Any] = {}
        if answer.debug_url:
            extra["debug_url"] = answer.debug_url
        if answer.usage:
            extra["usage"] = dict(answer.usage)
        if mode == "async":
            if not answer.execute_id:
                raise InvalidUpstreamResponse("Coze started an async run without an execute_id", provider=self.name)
            extra["execute_id"] = answer.execute_id
            return TaskSnapshot(
                upstream_id=answer.execute_id, status="running", kind=kind, raw_status="Running", extra=extra
            )
        upstream_id = answer.execute_id or f"sync-{uuid.uuid4().hex}"
        snapshot = self._done(upstream_id, kind, "Success", decode_output(answer.data), extra)
        run = LiveRun(snapshot)
        run.update(snapshot, done=True)
        self._live.remember(run)
        return snapshot

    def _done(
        self, upstream_id: str, kind: TaskKind, raw: str, outputs: dict[str, Any], extra: dict[str, Any]
    ) -> TaskSnapshot:
        return TaskSnapshot(
            upstream_id=upstream_id,
            status="succeeded",
            kind=kind,
            progress=1.0,
            outputs=artifacts_in(outputs),
            raw_status=raw,
            extra={**extra, "outputs": outputs},
        )

    # -- streaming ----------------------------------------------------------------------------------------------

    async def _follow(self, run: LiveRun, kind: TaskKind, response: HttpResponse, ctx: CallContext) -> None:
        state = _StreamState()
        events: AsyncGenerator[ServerSentEvent, None] = response.iter_sse()
        try:
            async for sse in events:
                terminal = self._apply(state, sse)
                run.update(self._stream_snapshot(run.upstream_id, state, kind), done=terminal)
                if terminal:
                    return
            state.status, state.raw, state.error_code = "failed", "Interrupted", "stream_interrupted"
            state.error = "Coze's stream ended before Done"
            run.update(self._stream_snapshot(run.upstream_id, state, kind), done=True)
        except Exception as exc:
            state.status, state.raw, state.error_code = "failed", "Interrupted", "stream_interrupted"
            state.error = f"Coze's stream broke: {exc}"
            run.update(self._stream_snapshot(run.upstream_id, state, kind), done=True)
            raise
        finally:
            await events.aclose()
            response.close()

    def _apply(self, state: _StreamState, sse: ServerSentEvent) -> bool:
        """Fold one event into ``state``; True when the run is over."""
        kind = sse.event
        if kind == "Message":
            message = parse(sse.json(), MessageEvent, provider=self.name, what="Message event")
            title = message.node_title or _END
            node = state.nodes.setdefault(title, {"title": title, "status": "running"})
            state.messages[title] = state.messages.get(title, "") + message.content
            if message.node_is_finish:
                if node["status"] == "running":
                    node["status"] = "succeeded"
                    state.finished += 1
                state.last_finished = state.messages[title] if title != _END else message.content
            if message.usage:
                state.usage = message.usage
            state.node = title
            state.progress = max(state.progress, state.finished / (len(state.nodes) + 1))
        elif kind == "Error":
            error = parse(sse.json(), ErrorEvent, provider=self.name, what="Error event")
            state.status, state.raw = "failed", "Fail"
            state.error_code = str(error.error_code) if error.error_code not in (None, "") else "workflow_failed"
            state.error = error.error_message or "Coze reported an error"
            return True
        elif kind == "Interrupt":
            interrupt = parse(sse.json(), InterruptEvent, provider=self.name, what="Interrupt event")
            data = interrupt.interrupt_data
            state.status, state.raw, state.error_code = "failed", "Interrupt", "interrupted"
            state.error = f"the workflow waits for an answer at node {interrupt.node_title!r} (resume is not supported)"
            state.interrupt = {
                "event_id": data.event_id if data else None,
                "type": data.type if data else None,
                "node_title": interrupt.node_title,
            }
            return True
        elif kind == "Done":
            done = sse.json()
            if isinstance(done, Mapping) and isinstance(done.get("debug_url"), str):
                state.debug_url = done["debug_url"]
            if state.status == "running":
                state.status, state.raw = "succeeded", "Success"
            return True
        return False

    def _stream_snapshot(self, upstream_id: str, state: _StreamState, kind: TaskKind) -> TaskSnapshot:
        extra: dict[str, Any] = {}
        if state.node is not None:
            extra["node"] = state.node
        if state.nodes:
            extra["nodes"] = [dict(n) for n in state.nodes.values()]
            extra["messages"] = dict(state.messages)
        if state.debug_url:
            extra["debug_url"] = state.debug_url
        if state.usage:
            extra["usage"] = dict(state.usage)
        if state.interrupt is not None:
            extra["interrupt"] = state.interrupt
        if state.status == "succeeded":
            return self._done(upstream_id, kind, state.raw, decode_output(state.last_finished), extra)
        if state.status == "failed":
            error = failure_info(state.error_code, state.error, self._secrets)
            return TaskSnapshot(
                upstream_id=upstream_id, status="failed", kind=kind, error=error, raw_status=state.raw, extra=extra
            )
        return TaskSnapshot(
            upstream_id=upstream_id,
            status="running",
            kind=kind,
            progress=state.progress,
            raw_status=state.raw,
            extra=extra,
        )

    # -- helpers ------------------------------------------------------------------------------------------------

    def _headers(self, ctx: CallContext) -> dict[str, str]:
        headers = dict(self._settings.headers)
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        headers.update(ctx.extra_headers)
        return headers
