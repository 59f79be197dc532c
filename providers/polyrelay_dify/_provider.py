"""The Dify provider: workflow runs as ``kind = "workflow"`` tasks (wire-video-audio-workflow.md §5.2, §5.6).

``Authorization: Bearer app-…`` (one key per app: the key selects the workflow; the model name is only sent, as
``model``, with the relay option ``send_model``). Request mapping: :mod:`polyrelay_dify._request`.

**Streaming** (``response_mode = "streaming"``, the default; Dify Cloud cuts blocking calls after 100 s):
``submit`` opens the event stream and returns once ``workflow_started`` names the run; a background consumer
(:mod:`polyrelay_dify._live`) follows the rest. Each ``node_started`` / ``node_finished`` updates the snapshot:
``progress`` = nodes finished / (nodes seen + 1), never decreasing (the +1 stands for the part of the graph the
stream has not announced yet; 1.0 only at the end), ``extra["node"]`` = the title of the node the latest event
was about, ``extra["nodes"]`` = every node so far (``title``, ``node_type``, ``status``). ``workflow_finished``
ends the run; an in-band ``error`` event fails it (before ``workflow_started`` it is raised from ``submit``).
``ping`` and other events are ignored. ``poll`` on a followed run waits up to ``live_poll_wait`` seconds for the
next change instead of calling Dify; if the stream breaks, polls fall back to ``GET /workflows/run/{id}``.

**Blocking** (``response_mode = "blocking"``): the answer is the finished run, so the task is done at submit.

**Statuses.** running → running, succeeded (and partial-succeeded) → succeeded, failed → failed (``error``),
stopped → canceled, paused (waiting for human input, not resumable here) → running with ``extra["paused"]``.
**Outputs.** ``extra["outputs"]`` holds the structured outputs; file objects and media URLs in them also become
artifacts (:mod:`polyrelay_dify._outputs`). **Cancel** = ``POST /workflows/tasks/{task_id}/stop`` (the upstream
id is ``"<workflow_run_id>:<task_id>"`` so any process can stop or poll the run), then a poll.
**Cadence**: 3 s between HTTP polls (option ``poll_interval``); 0.25 s between polls of a followed run.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from typing import Any

import attrs

from polyrelay.errors import ConfigError, InvalidRequest, InvalidUpstreamResponse, Secret, StreamInterrupted
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.sse import ServerSentEvent
from polyrelay.transport import HttpResponse, Transport
from polyrelay.types.media import TaskKind, TaskRequest, TaskSnapshot, TaskStatus
from polyrelay.workflows.live import LiveRun, LiveRuns
from polyrelay.workflows.outputs import artifacts_in
from polyrelay_dify._errors import STATUS_MAP, classified, failure_info, raise_for_response
from polyrelay_dify._request import RESPONSE_MODES, build_run
from polyrelay_dify._wire import BlockingResponse, NodeData, RunData, StreamEvent, dump, parse

__all__ = ["DifyProvider", "build"]

DEFAULT_BASE_URL = "https://api.dify.ai/v1"
DEFAULT_POLL_INTERVAL = 3.0
DEFAULT_LIVE_POLL_WAIT = 5.0
#: Seconds between polls of a run whose stream is followed (each poll itself waits for the next change).
LIVE_POLL_INTERVAL = 0.25
_OPTIONS = frozenset({"response_mode", "user", "prompt_input", "send_model", "poll_interval", "live_poll_wait"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def build(settings: ProviderSettings, transport: Transport) -> DifyProvider:
    """The provider factory: validates the instance's options."""
    options = dict(settings.options)
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key in options:
        if key not in _OPTIONS:
            raise ConfigError(f"unknown option for a dify provider{did_you_mean(key, _OPTIONS)}", key=prefix + key)
    mode = options.get("response_mode", "streaming")
    if mode not in RESPONSE_MODES:
        raise ConfigError(f"must be one of {sorted(RESPONSE_MODES)}, got {mode!r}", key=prefix + "response_mode")
    for name, default in (("user", "polyrelay"), ("prompt_input", "query")):
        value = options.get(name, default)
        if not isinstance(value, str) or not value:
            raise ConfigError("must be a non-empty string", key=prefix + name)
    send_model = options.get("send_model", False)
    if not isinstance(send_model, bool):
        raise ConfigError("must be true or false", key=prefix + "send_model")
    seconds: dict[str, float] = {}
    for name, default_seconds in (("poll_interval", DEFAULT_POLL_INTERVAL), ("live_poll_wait", DEFAULT_LIVE_POLL_WAIT)):
        number = options.get(name, default_seconds)
        if isinstance(number, bool) or not isinstance(number, int | float) or not 0 < number <= 3600:
            raise ConfigError(f"must be a number of seconds (0-3600], got {number!r}", key=prefix + name)
        seconds[name] = float(number)
    return DifyProvider(
        settings,
        transport,
        response_mode=mode,
        user=options.get("user", "polyrelay"),
        prompt_input=options.get("prompt_input", "query"),
        send_model=send_model,
        poll_interval=seconds["poll_interval"],
        live_poll_wait=seconds["live_poll_wait"],
    )


@attrs.define
class _RunState:
    """What the stream has told us about one run so far."""

    run_id: str | None = None
    task_id: str | None = None
    workflow_id: str | None = None
    status: str = "running"
    nodes: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    finished: int = 0
    progress: float = 0.0
    node: str | None = None
    outputs: Any = None
    error_code: str | None = None
    error: str | None = None
    paused: bool = False
    total_tokens: int | None = None
    total_steps: int | None = None
    elapsed_time: float | None = None

    @property
    def upstream_id(self) -> str:
        return f"{self.run_id}:{self.task_id}"


class DifyProvider:
    """A :class:`~polyrelay.provider.TaskProvider` for Dify workflow apps (see the module docstring)."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        response_mode: str = "streaming",
        user: str = "polyrelay",
        prompt_input: str = "query",
        send_model: bool = False,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        live_poll_wait: float = DEFAULT_LIVE_POLL_WAIT,
    ) -> None:
        self.name = settings.name
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.response_mode = response_mode
        self.user = user
        self.prompt_input = prompt_input
        self.send_model = send_model
        self.interval = poll_interval
        self.live_poll_wait = live_poll_wait
        self._settings = settings
        self._transport = transport
        self._key: Secret | None = settings.api_key
        self._secrets = settings.secrets()
        self._live = LiveRuns()

    def __repr__(self) -> str:
        return f"DifyProvider(name={self.name!r}, base_url={self.base_url!r}, response_mode={self.response_mode!r})"

    async def aclose(self) -> None:
        """Stop following streamed runs (the router calls this when it closes)."""
        await self._live.aclose()

    # -- TaskProvider -------------------------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        body = build_run(
            request,
            ctx.model,
            response_mode=self.response_mode,
            user=self.user,
            prompt_input=self.prompt_input,
            send_model=self.send_model,
        )
        kind: TaskKind = request.kind or "workflow"
        streaming = body.response_mode == "streaming"
        response = await self._transport.request(
            "POST",
            f"{self.base_url}/workflows/run",
            provider=self.name,
            # A streamed run is followed after submit returns: no per-attempt total, no call deadline on its reads
            # (the idle timeout still ends a silent stream; Dify pings every 10 s).
            timeouts=attrs.evolve(ctx.timeouts, total=None) if streaming else ctx.timeouts,
            headers=self._headers(ctx),
            json_body=dump(body),
            deadline=None if streaming else ctx.deadline,
            secrets=self._secrets,
        )
        if response.status != 200:
            async with response:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
        if "text/event-stream" not in response.headers.get("Content-Type", ""):
            async with response:
                blocking = parse(await response.json(), BlockingResponse, provider=self.name, what="run")
            return self._run_snapshot(f"{blocking.workflow_run_id}:{blocking.task_id}", blocking.data, kind)
        return await self._start_stream(response, kind, ctx)

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        run_id, _task_id = self._split(upstream_id)
        live = self._live.get(upstream_id)
        if live is not None and (live.done or not live.ended):
            return await live.next_snapshot(self.live_poll_wait)
        response = await self._transport.request(
            "GET",
            f"{self.base_url}/workflows/run/{run_id}",
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status != 200:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            run = parse(await response.json(), RunData, provider=self.name, what="run")
        kind: TaskKind = live.snapshot.kind if live is not None else "workflow"
        snapshot = self._run_snapshot(upstream_id, run, kind)
        if live is not None and live.snapshot.extra.get("nodes"):  # keep what the broken stream had shown
            snapshot = attrs.evolve(snapshot, extra={**live.snapshot.extra, **snapshot.extra})
        return snapshot

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        _run_id, task_id = self._split(upstream_id)
        response = await self._transport.request(
            "POST",
            f"{self.base_url}/workflows/tasks/{task_id}/stop",
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            json_body={"user": self.user},
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status != 200:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            await response.read()
        return await self.poll(upstream_id, ctx)

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        return LIVE_POLL_INTERVAL if self._live.is_following(snapshot.upstream_id) else self.interval

    # -- streaming ----------------------------------------------------------------------------------------------

    async def _start_stream(self, response: HttpResponse, kind: TaskKind, ctx: CallContext) -> TaskSnapshot:
        events = response.iter_sse()
        state = _RunState()
        terminal = False
        try:
            async for sse in events:
                event = self._event(sse)
                if event.event == "error" and state.run_id is None:
                    raise classified(
                        event.status,
                        event.code,
                        event.message or "",
                        provider=self.name,
                        model=ctx.model,
                        body=sse.data,
                        secrets=self._secrets,
                    )
                terminal = self._apply(state, event)
                if terminal or (state.run_id and state.task_id):
                    break
            else:
                raise StreamInterrupted("Dify's stream ended before the run started", provider=self.name)
        except BaseException:
            await events.aclose()
            response.close()
            raise
        run = LiveRun(self._state_snapshot(state, kind))
        if terminal:
            await events.aclose()
            response.close()
            run.update(run.snapshot, done=True)
            self._live.remember(run)
        else:
            self._live.start(run, self._follow(run, state, kind, events, response))
        return run.snapshot

    async def _follow(
        self,
        run: LiveRun,
        state: _RunState,
        kind: TaskKind,
        events: AsyncGenerator[ServerSentEvent, None],
        response: HttpResponse,
    ) -> None:
        try:
            async for sse in events:
                terminal = self._apply(state, self._event(sse))
                run.update(self._state_snapshot(state, kind), done=terminal)
                if terminal:
                    return
        finally:
            await events.aclose()
            response.close()

    def _event(self, sse: ServerSentEvent) -> StreamEvent:
        return parse(sse.json(), StreamEvent, provider=self.name, what="stream event")

    def _apply(self, state: _RunState, event: StreamEvent) -> bool:
        """Fold one event into ``state``; True when the run is over."""
        kind = event.event
        if kind == "workflow_started":
            data = event.data if isinstance(event.data, dict) else {}
            state.run_id = event.workflow_run_id or data.get("id")
            state.task_id = event.task_id
            state.workflow_id = data.get("workflow_id")
        elif kind in ("node_started", "node_finished"):
            node = parse(event.data, NodeData, provider=self.name, what=kind)
            record = state.nodes.setdefault(
                node.id, {"title": node.title or node.node_id or "", "node_type": node.node_type, "status": "running"}
            )
            if kind == "node_finished" and record["status"] == "running":
                record["status"] = node.status or "succeeded"
                state.finished += 1
            state.node = record["title"]
            state.progress = max(state.progress, state.finished / (len(state.nodes) + 1))
        elif kind in ("workflow_paused", "human_input_required"):
            state.paused = True
        elif kind == "workflow_finished":
            run = parse(event.data, RunData, provider=self.name, what="workflow_finished")
            state.status, state.outputs, state.error = run.status, run.outputs, run.error
            state.total_tokens, state.total_steps, state.elapsed_time = (
                run.total_tokens,
                run.total_steps,
                run.elapsed_time,
            )
            return True
        elif kind == "error":
            state.status, state.error_code = "failed", event.code or "stream_error"
            state.error = event.message or "Dify reported an error in the stream"
            return True
        return False

    # -- snapshots ----------------------------------------------------------------------------------------------

    def _state_snapshot(self, state: _RunState, kind: TaskKind) -> TaskSnapshot:
        status = STATUS_MAP.get(state.status, "running")
        extra: dict[str, Any] = {"workflow_run_id": state.run_id, "task_id": state.task_id}
        if state.node is not None:
            extra["node"] = state.node
        if state.nodes:
            extra["nodes"] = [dict(n) for n in state.nodes.values()]
        if state.paused and status == "running":
            extra["paused"] = True
        for name in ("total_tokens", "total_steps", "elapsed_time"):
            if getattr(state, name) is not None:
                extra[name] = getattr(state, name)
        return self._finish(
            state.upstream_id,
            status,
            state.status,
            kind,
            extra,
            state.outputs,
            state.error_code,
            state.error,
            progress=state.progress,
        )

    def _run_snapshot(self, upstream_id: str, run: RunData, kind: TaskKind) -> TaskSnapshot:
        status = STATUS_MAP.get(run.status, "running")
        run_id, _, task_id = upstream_id.partition(":")
        extra: dict[str, Any] = {"workflow_run_id": run_id, "task_id": task_id}
        if run.status == "paused":
            extra["paused"] = True
        for name in ("total_tokens", "total_steps", "elapsed_time"):
            if getattr(run, name) is not None:
                extra[name] = getattr(run, name)
        outputs = _decoded(run.outputs, self.name)
        return self._finish(upstream_id, status, run.status, kind, extra, outputs, None, run.error, progress=None)

    def _finish(
        self,
        upstream_id: str,
        status: TaskStatus,
        raw: str,
        kind: TaskKind,
        extra: dict[str, Any],
        outputs: Any,
        error_code: str | None,
        error: str | None,
        *,
        progress: float | None,
    ) -> TaskSnapshot:
        if outputs is not None:
            extra["outputs"] = outputs
        if status == "succeeded":
            artifacts = artifacts_in(outputs, base_url=self.base_url)
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="succeeded",
                kind=kind,
                progress=1.0,
                outputs=artifacts,
                raw_status=raw,
                extra=extra,
            )
        if status == "failed":
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="failed",
                kind=kind,
                raw_status=raw,
                extra=extra,
                error=failure_info(error_code, error, self._secrets),
            )
        return TaskSnapshot(
            upstream_id=upstream_id,
            status=status,
            kind=kind,
            raw_status=raw,
            extra=extra,
            progress=progress if status == "running" else None,
        )

    # -- helpers ------------------------------------------------------------------------------------------------

    def _headers(self, ctx: CallContext) -> dict[str, str]:
        headers = dict(self._settings.headers)
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        headers.update(ctx.extra_headers)
        return headers

    def _split(self, upstream_id: str) -> tuple[str, str]:
        # The id comes from a caller-supplied task id: both parts must be plain ids.
        run_id, sep, task_id = upstream_id.partition(":")
        if not sep or not _ID.match(run_id) or not _ID.match(task_id):
            raise InvalidRequest("the task id does not carry a Dify workflow run", path="task_id")
        return run_id, task_id


def _decoded(outputs: Any, provider: str) -> Any:
    """``GET /workflows/run/{id}`` has returned ``outputs`` as a JSON string in some Dify versions."""
    if isinstance(outputs, str):
        try:
            return json.loads(outputs)
        except ValueError as exc:
            raise InvalidUpstreamResponse("Dify returned outputs that are not JSON", provider=provider) from exc
    return outputs
