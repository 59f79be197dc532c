"""The Midjourney provider: generation tasks and button actions over the midjourney-proxy protocol.

Midjourney has no public API; self-hosted proxies (novicezk/midjourney-proxy, midjourney-proxy-plus,
trueai-org/midjourney-proxy) and relays built on them (new-api, one-hub) speak one protocol (wire-images.md §2):

- submit: ``POST {base}/mj/submit/imagine|blend|describe|action|modal`` → ``{"code", "description", "result"}``;
- poll: ``GET {base}/mj/task/{id}/fetch`` → the task (status, ``"45%"`` progress, ``imageUrl``, ``buttons``);
- speed mode: the path prefix ``/mj-fast``, ``/mj-relax`` or ``/mj-turbo`` (option ``mode``; trueai and one-hub
  honour it, new-api strips it and uses the channel's mode).

Configuration (``[providers.NAME]``, ``type = "midjourney"``): ``base_url`` (required: there is no public host),
``api_key``, and the options ``auth`` (``"bearer"``, the default: ``Authorization: Bearer <key>`` as relays take it;
``"mj-api-secret"``: the ``mj-api-secret`` header of a self-hosted proxy), ``mode``, ``poll_interval`` (seconds,
fixed; default 2 s for the first 30 s, then 5 s — use ≥5 behind new-api, whose copy refreshes every 15 s) and
``cancel`` (``true`` when the proxy has ``POST /mj/task/{id}/cancel``: trueai / plus; otherwise cancel raises
:class:`UnsupportedFeature`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

import attrs

from polyrelay.errors import (
    ConfigError,
    InvalidRequest,
    InvalidUpstreamResponse,
    NotFound,
    UnsupportedFeature,
    redact,
)
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.types.media import Artifact, TaskErrorInfo, TaskRequest, TaskSnapshot, TaskStatus
from polyrelay_midjourney._buttons import (
    ACTION_GRAMMAR,
    MODAL_ACTION,
    NEEDS_MODAL,
    button_map,
    friendly_name,
    is_custom_id,
    normalize_action,
)
from polyrelay_midjourney._errors import CODE_EXISTS, CODE_QUEUED, CODE_SUBMITTED, envelope_error, http_error
from polyrelay_midjourney._request import (
    MODES,
    ActionInputs,
    ImageRef,
    action_inputs,
    modal_prompt,
    plan_submit,
)
from polyrelay_midjourney._wire import (
    ActionRequest,
    BlendRequest,
    DescribeRequest,
    ImagineRequest,
    ListByConditionRequest,
    MjTask,
    ModalRequest,
    SubmitResponse,
    parse_submit,
    parse_task,
    parse_task_list,
    to_wire,
)

if TYPE_CHECKING:
    from polyrelay.transport import HttpResponse, Transport

__all__ = [
    "AUTH_MODES",
    "OPTION_KEYS",
    "STATUS_MAP",
    "MidjourneyProvider",
    "create_provider",
    "parse_progress",
    "snapshot_of",
]

AUTH_MODES = ("bearer", "mj-api-secret")
OPTION_KEYS = frozenset({"auth", "mode", "poll_interval", "cancel"})
#: midjourney-proxy task status → task status. MODAL waits for ``/submit/modal`` input (the ``modal`` action);
#: ``""`` is a new-api row before its first sync with the proxy.
STATUS_MAP: Mapping[str, TaskStatus] = {
    "": "queued",
    "NOT_START": "queued",
    "SUBMITTED": "queued",
    "MODAL": "queued",
    "IN_PROGRESS": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "CANCEL": "canceled",
}
#: Actions whose result is a 2×2 grid (the proxy's ``imageUrls`` then holds the four single images).
GRID_ACTIONS = frozenset(
    {
        "IMAGINE",
        "VARIATION",
        "REROLL",
        "BLEND",
        "HIGH_VARIATION",
        "LOW_VARIATION",
        "PAN",
        "ZOOM",
        "CUSTOM_ZOOM",
        "INPAINT",
    }
)
# Poll cadence (wire-images.md §2.8: 2-5 s against a proxy): quick at first, then settle.
_FAST_POLL, _SLOW_POLL, _FAST_PHASE = 2.0, 5.0, 30.0
_MEDIA_TYPES: Mapping[str, str] = {
    ".png": "image/png",
    ".webp": "image/webp",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
}
_MODAL_DESCRIPTION = "waiting for window confirm"


def create_provider(settings: ProviderSettings, transport: Transport) -> MidjourneyProvider:
    """The :class:`~polyrelay.provider.ProviderSpec` factory: validate the options, build the instance."""
    path = settings.config_path
    for key in settings.options:
        if key not in OPTION_KEYS:
            raise ConfigError(
                f"unknown option {key!r} for provider type 'midjourney'{did_you_mean(key, OPTION_KEYS)}",
                key=f"{path}.{key}",
            )
    base = (settings.base_url or "").strip()
    if not base.startswith(("http://", "https://")):
        raise ConfigError(
            "midjourney needs base_url: the http(s) address of a midjourney-proxy or relay (there is no public API)",
            key=f"{path}.base_url",
        )
    opts = settings.options
    auth = opts.get("auth", "bearer")
    if auth not in AUTH_MODES:
        raise ConfigError(f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}", key=f"{path}.auth")
    mode = opts.get("mode")
    if mode is not None and mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", key=f"{path}.mode")
    every = opts.get("poll_interval")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int | float) or every <= 0):
        raise ConfigError("poll_interval must be a positive number of seconds", key=f"{path}.poll_interval")
    cancel = opts.get("cancel", False)
    if not isinstance(cancel, bool):
        raise ConfigError("cancel must be true or false", key=f"{path}.cancel")
    return MidjourneyProvider(
        settings, transport, auth=auth, mode=mode, poll_every=None if every is None else float(every), cancel=cancel
    )


class MidjourneyProvider:
    """Implements :class:`~polyrelay.provider.TaskProvider` and :class:`~polyrelay.provider.TaskActionProvider`."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        auth: Literal["bearer", "mj-api-secret"] = "bearer",
        mode: str | None = None,
        poll_every: float | None = None,
        cancel: bool = False,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        base = (settings.base_url or "").rstrip("/")
        # Accept the base with or without the /mj root: every path below starts with it.
        self.base_url = base.removesuffix("/mj")
        self.auth = auth
        self.mode = mode
        self.poll_every = poll_every
        self.cancel_enabled = cancel
        self._transport = transport
        self._secrets = settings.secrets()

    def __repr__(self) -> str:
        return f"<MidjourneyProvider {self.name!r} {self.base_url}>"

    # ------------------------------------------------------------------------------------------- TaskProvider

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        """Imagine (default), blend or describe (``params["operation"]``); returns the queued task."""
        plan = plan_submit(attrs.evolve(request, model=ctx.model), provider=self.name)
        inline = [await self._data_uri(ref, ctx) for ref in plan.images]
        body: ImagineRequest | BlendRequest | DescribeRequest
        common: dict[str, Any] = {
            "bot_type": plan.bot_type,
            "account_filter": plan.account_filter,
            "notify_hook": plan.notify_hook,
            "state": plan.state,
        }
        if plan.operation == "imagine":
            assert plan.prompt is not None
            data = tuple(uri for ref, uri in zip(plan.images, inline, strict=True) if ref.data is not None)
            body = ImagineRequest(prompt=plan.prompt, base64_array=data or None, **common)
        elif plan.operation == "blend":
            body = BlendRequest(base64_array=tuple(inline), dimensions=plan.dimensions, **common)
        else:
            body = DescribeRequest(base64=inline[0], **common)
        envelope = await self._submit_call(f"/submit/{plan.operation}", body, ctx, mode=plan.mode)
        return await self._after_submit(envelope, ctx)

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        """``GET /mj/task/{id}/fetch``."""
        return snapshot_of(await self._fetch(upstream_id, ctx))

    async def poll_many(self, upstream_ids: Sequence[str], ctx: CallContext) -> dict[str, TaskSnapshot]:
        """Many tasks in one call (``POST /mj/task/list-by-condition``); ids the proxy does not know are left out."""
        body = to_wire(ListByConditionRequest(ids=tuple(upstream_ids)))
        response = await self._request("POST", "/task/list-by-condition", ctx, json_body=body)
        data = await self._json_or_error(response, ctx)
        return {task.task_id: snapshot_of(task) for task in parse_task_list(data or [], provider=self.name)}

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        """``POST /mj/task/{id}/cancel`` when the proxy has it (option ``cancel = true``)."""
        if not self.cancel_enabled:
            raise UnsupportedFeature(
                "this midjourney-proxy has no cancel endpoint (novicezk, new-api); set the option cancel = true for "
                "proxies that have POST /mj/task/{id}/cancel (trueai, plus)",
                path="task",
                provider=self.name,
            )
        response = await self._request("POST", f"/task/{quote(upstream_id, safe='')}/cancel", ctx, json_body={})
        data = await self._json_or_error(response, ctx)
        if isinstance(data, Mapping) and "status" in data and "id" in data:
            return snapshot_of(parse_task(data, provider=self.name))
        envelope = parse_submit(data, provider=self.name)
        if envelope.code not in (CODE_SUBMITTED, CODE_EXISTS, CODE_QUEUED):
            raise self._envelope_error(envelope, response, ctx)
        return await self.poll(upstream_id, ctx)

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        if self.poll_every is not None:
            return self.poll_every
        if snapshot.raw_status == "MODAL":
            return _SLOW_POLL  # waits for the caller's modal input, not for Midjourney
        return _FAST_POLL if elapsed < _FAST_PHASE else _SLOW_POLL

    # ------------------------------------------------------------------------------------------- actions

    async def action(self, upstream_id: str, action: str, ctx: CallContext, params: Mapping[str, Any]) -> TaskSnapshot:
        """Press a button of a finished task (``"upscale:2"``, ``"variation:1"``, ``"reroll"``, ``"zoom:2x"``,
        ``"pan:left"``, ``"vary:region"`` with ``mask``, ``"zoom:custom"`` with ``zoom``..., or a raw ``MJ::``
        customId), or complete a MODAL task (``"modal"`` with ``prompt`` / ``mask``). Returns the new task."""
        raw = action.strip() if isinstance(action, str) else ""
        name: str | None = None
        if not is_custom_id(raw):
            name = normalize_action(raw)
            if name is None:
                raise InvalidRequest(
                    f"unknown Midjourney action {action!r}; actions: {', '.join(ACTION_GRAMMAR)} "
                    "(or a button customId 'MJ::...')",
                    path="action",
                )
        inputs = action_inputs(name or raw, params)
        if name == MODAL_ACTION:
            return await self._modal(upstream_id, inputs, None, ctx)
        parent = await self._fetch(upstream_id, ctx)
        custom_id = _button_for(parent, name, raw)
        body = ActionRequest(
            task_id=upstream_id,
            custom_id=custom_id,
            enable_remix=inputs.enable_remix,
            choose_same_channel=inputs.choose_same_channel,
            account_filter=inputs.account_filter,
            notify_hook=inputs.notify_hook,
            state=inputs.state,
        )
        envelope = await self._submit_call("/submit/action", body, ctx)
        wants_modal = inputs.has_modal_input and (name in NEEDS_MODAL or bool(inputs.enable_remix) or name is None)
        props = envelope.properties or {}
        if envelope.code == CODE_EXISTS and _is_modal(envelope):
            if wants_modal:
                return await self._modal(_require_id(envelope, self.name), inputs, _str(props.get("finalPrompt")), ctx)
            return _modal_snapshot(_require_id(envelope, self.name), _str(props.get("finalPrompt")))
        snapshot = await self._after_submit(envelope, ctx)
        if wants_modal and envelope.code == CODE_SUBMITTED:
            # new-api rewrites code 21 to 1 for remix modals: look at the new task before giving up on the modal.
            child = await self._fetch(snapshot.upstream_id, ctx)
            if child.status == "MODAL":
                final = child.properties.get("finalPrompt") if child.properties else None
                return await self._modal(child.task_id, inputs, _str(final) or child.prompt, ctx)
        return snapshot

    async def _modal(
        self, upstream_id: str, inputs: ActionInputs, fallback_prompt: str | None, ctx: CallContext
    ) -> TaskSnapshot:
        body = ModalRequest(task_id=upstream_id, prompt=modal_prompt(inputs, fallback_prompt), mask_base64=inputs.mask)
        envelope = await self._submit_call("/submit/modal", body, ctx)
        return await self._after_submit(envelope, ctx)

    # ------------------------------------------------------------------------------------------- wire

    def _url(self, path: str, mode: str | None = None) -> str:
        mode = mode or self.mode
        prefix = f"/mj-{mode}" if mode else ""
        return f"{self.base_url}{prefix}/mj{path}"

    def _headers(self, ctx: CallContext) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        key = self.settings.api_key
        if key:
            if self.auth == "bearer":
                headers["Authorization"] = f"Bearer {key.reveal()}"
            else:
                headers["mj-api-secret"] = key.reveal()
        headers.update(self.settings.headers)
        headers.update(ctx.extra_headers)
        return headers

    async def _request(
        self, method: str, path: str, ctx: CallContext, *, json_body: Any = None, mode: str | None = None
    ) -> HttpResponse:
        return await self._transport.request(
            method,
            self._url(path, mode),
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            json_body=json_body,
            deadline=ctx.deadline,
            secrets=self._secrets,
        )

    async def _json_or_error(self, response: HttpResponse, ctx: CallContext) -> Any:
        if response.status != 200:
            body = await response.read()
            raise http_error(
                response.status,
                body,
                response.headers,
                provider=self.name,
                secrets=self._secrets,
                request_id=response.request_id,
                model=ctx.model,
            )
        body = await response.read()
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError as exc:
            snippet = redact(body[:200].decode("utf-8", "replace"), self._secrets)
            raise InvalidUpstreamResponse(
                f"midjourney-proxy returned a body that is not JSON: {snippet!r}",
                provider=self.name,
                status=response.status,
                request_id=response.request_id,
            ) from exc

    async def _submit_call(self, path: str, body: Any, ctx: CallContext, *, mode: str | None = None) -> SubmitResponse:
        response = await self._request("POST", path, ctx, json_body=to_wire(body), mode=mode)
        data = await self._json_or_error(response, ctx)
        if data is None:
            raise InvalidUpstreamResponse(
                f"midjourney-proxy answered {path} with an empty body",
                provider=self.name,
                request_id=response.request_id,
            )
        envelope = parse_submit(data, provider=self.name)
        if envelope.code not in (CODE_SUBMITTED, CODE_EXISTS, CODE_QUEUED):
            raise self._envelope_error(envelope, response, ctx)
        return envelope

    def _envelope_error(self, envelope: SubmitResponse, response: HttpResponse, ctx: CallContext) -> Exception:
        return envelope_error(
            envelope.code,
            envelope.description,
            envelope.properties,
            status=response.status,
            provider=self.name,
            secrets=self._secrets,
            headers=response.headers,
            request_id=response.request_id,
            model=ctx.model,
            body=to_wire(envelope),
        )

    async def _fetch(self, upstream_id: str, ctx: CallContext) -> MjTask:
        if not upstream_id or "/" in upstream_id:
            raise InvalidRequest(f"not a midjourney-proxy task id: {upstream_id!r}", path="task_id")
        response = await self._request("GET", f"/task/{quote(upstream_id, safe='')}/fetch", ctx)
        data = await self._json_or_error(response, ctx)
        if data is None:
            # novicezk answers an unknown id with 200 and an empty body; trueai with null.
            raise NotFound(
                f"midjourney-proxy has no task {upstream_id!r}",
                provider=self.name,
                status=200,
                code="task_not_found",
                request_id=response.request_id,
            )
        return parse_task(data, provider=self.name)

    async def _after_submit(self, envelope: SubmitResponse, ctx: CallContext) -> TaskSnapshot:
        task_id = _require_id(envelope, self.name)
        props = envelope.properties or {}
        if envelope.code == CODE_EXISTS:
            if _is_modal(envelope):
                return _modal_snapshot(task_id, _str(props.get("finalPrompt")))
            # "Task already exists" (an upscale done before): report the task as it is.
            return await self.poll(task_id, ctx)
        extra: dict[str, Any] = {"submit_code": envelope.code}
        if envelope.description:
            extra["description"] = envelope.description
        if isinstance(props.get("numberOfQueues"), int):
            extra["queue_position"] = props["numberOfQueues"]
        return TaskSnapshot(upstream_id=task_id, status="queued", kind="image", extra=extra)

    async def _data_uri(self, ref: ImageRef, ctx: CallContext) -> str:
        if ref.data is not None:
            return ref.data
        assert ref.url is not None
        # The caller's image URL, fetched without our credentials (they belong to the proxy only).
        response = await self._transport.request(
            "GET", ref.url, provider=self.name, timeouts=ctx.timeouts, deadline=ctx.deadline, secrets=self._secrets
        )
        if response.status != 200:
            response.close()
            raise InvalidRequest(f"could not download the image (HTTP {response.status})", path=ref.path)
        data = await response.read()
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not content_type.startswith("image/"):
            content_type = _MEDIA_TYPES.get(_suffix(ref.url), "")
        if not content_type:
            raise InvalidRequest("the URL did not return an image", path=ref.path)
        return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


# ------------------------------------------------------------------------------------------------ snapshots


def snapshot_of(task: MjTask) -> TaskSnapshot:
    """A midjourney-proxy task object as a :class:`TaskSnapshot`."""
    raw = task.status if task.status is not None else ""
    # An unknown status is reported as running (forward compatible); it shows in raw_status.
    status: TaskStatus = STATUS_MAP.get(raw, "running")
    props = task.properties or {}
    buttons = task.buttons or ()
    extra: dict[str, Any] = {}
    for key, value in (
        ("action", task.action),
        ("prompt", task.prompt),
        ("prompt_en", task.prompt_en),
        ("final_prompt", props.get("finalPrompt")),
        ("description", task.description),
        ("bot_type", task.bot_type or props.get("botType")),
        ("state", task.state or None),
        ("submit_time", task.submit_time or None),
        ("start_time", task.start_time or None),
        ("finish_time", task.finish_time or None),
    ):
        if value is not None:
            extra[key] = value
    if buttons:
        extra["buttons"] = [
            {"custom_id": b.custom_id, "label": b.label, "emoji": b.emoji, "action": friendly_name(b.custom_id)}
            for b in buttons
        ]
    outputs: tuple[Artifact, ...] = ()
    if status == "succeeded":
        outputs = _outputs(task, props)
        if task.action == "DESCRIBE":
            extra["prompts"] = list(_describe_prompts(_str(props.get("finalPrompt")) or ""))
    elif task.image_url:
        extra["preview_url"] = task.image_url
    error = None
    if status == "failed":
        error = TaskErrorInfo(code=None, message=task.fail_reason or "Midjourney reported the task failed")
    actions = tuple(b.custom_id for b in buttons)
    if raw == "MODAL":
        actions = (MODAL_ACTION,)
        extra["needs_input"] = True
    return TaskSnapshot(
        upstream_id=task.task_id,
        status=status,
        kind="image",
        progress=parse_progress(task.progress, raw),
        outputs=outputs,
        error=error,
        raw_status=raw or None,
        actions=actions,
        extra=extra,
    )


def _outputs(task: MjTask, props: Mapping[str, Any]) -> tuple[Artifact, ...]:
    if not task.image_url:
        return ()
    grid = task.action in GRID_ACTIONS
    main = Artifact(
        url=task.image_url,
        media_type=_MEDIA_TYPES.get(_suffix(task.image_url)),
        width=task.image_width,
        height=task.image_height,
        extra={"grid": True} if grid else {},
    )
    singles = tuple(
        Artifact(url=url, media_type=_MEDIA_TYPES.get(_suffix(url)), extra={"grid_index": index})
        for index, url in enumerate(task.split_urls, start=1)
    )
    return (main, *singles)


def parse_progress(value: Any, status: str | None = None) -> float | None:
    """``"45%"`` → 0.45; SUCCESS → 1.0; empty or unreadable → ``None``."""
    if status == "SUCCESS":
        return 1.0
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().removesuffix("%").strip()
    if not text:
        return None
    try:
        percent = float(text)
    except ValueError:
        return None
    return min(1.0, max(0.0, percent / 100.0))


def _describe_prompts(final_prompt: str) -> tuple[str, ...]:
    """The four prompts of a describe result (``1️⃣ ...\\n\\n2️⃣ ...``)."""
    out = []
    for block in final_prompt.split("\n\n"):
        text = block.strip()
        if text[:1].isdigit():
            text = text[1:].lstrip("\ufe0f\u20e3 ").strip()
        if text:
            out.append(text)
    return tuple(out)


def _modal_snapshot(task_id: str, final_prompt: str | None) -> TaskSnapshot:
    extra: dict[str, Any] = {"needs_input": True, "submit_code": CODE_EXISTS}
    if final_prompt:
        extra["final_prompt"] = final_prompt
    return TaskSnapshot(
        upstream_id=task_id, status="queued", kind="image", raw_status="MODAL", actions=(MODAL_ACTION,), extra=extra
    )


def _button_for(parent: MjTask, name: str | None, raw: str) -> str:
    ids = [b.custom_id for b in parent.buttons or ()]
    mapping = button_map(ids)
    if name is not None and name in mapping:
        return mapping[name]
    if name is None and raw in ids:
        return raw
    if mapping:
        available = ", ".join(mapping)
        message = f"task {parent.task_id} does not offer {name or raw!r}; available actions: {available}"
    else:
        message = (
            f"task {parent.task_id} offers no actions (status {parent.status or 'unknown'}; buttons appear when it "
            "has succeeded)"
        )
    raise InvalidRequest(message, path="action")


def _is_modal(envelope: SubmitResponse) -> bool:
    props = envelope.properties or {}
    return (
        props.get("remix") is True
        or props.get("status") == "MODAL"
        or (envelope.description or "").strip().lower() == _MODAL_DESCRIPTION
    )


def _require_id(envelope: SubmitResponse, provider: str) -> str:
    task_id = envelope.task_id
    if task_id is None:
        raise InvalidUpstreamResponse(
            f"midjourney-proxy accepted the submission (code {envelope.code}) without a task id", provider=provider
        )
    return task_id


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _suffix(url: str) -> str:
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    return path[dot:] if dot > path.rfind("/") else ""
