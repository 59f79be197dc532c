"""The midjourney-proxy protocol as typed attrs models, and its one converter (wire-images.md §2).

The protocol is the one novicezk/midjourney-proxy defined and midjourney-proxy-plus, trueai-org/midjourney-proxy and
the relays (new-api, one-hub) expose: submit endpoints answer an envelope ``{"code", "description", "result",
"properties"}``; ``GET /mj/task/{id}/fetch`` answers a task object. Python field names are snake_case; on the wire
they are camelCase (``base64Array``, ``customId``, ``failReason``...).

Relays disagree on a few types, so the parsers here are lenient where the sources are: ``result`` may be a string or
a JSON number (normalised to ``str``); ``imageUrls`` items may be ``{url, thumbnail}`` objects or bare strings.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import attrs

from polyrelay.errors import InvalidUpstreamResponse
from polyrelay.serde import WireConverter, first_error
from polyrelay.serde import explicit_nulls_field as _nulls
from polyrelay.serde import extra_field as _extra

__all__ = [
    "ActionRequest",
    "BlendRequest",
    "Button",
    "DescribeRequest",
    "ImagineRequest",
    "ListByConditionRequest",
    "ModalRequest",
    "MjTask",
    "SubmitResponse",
    "parse_submit",
    "parse_task",
    "parse_task_list",
    "to_wire",
]


# -- requests -----------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ImagineRequest:
    """``POST /mj/submit/imagine``. MJ flags (``--ar``, ``--v``, ``--no``...) live inside ``prompt``."""

    prompt: str
    base64_array: tuple[str, ...] | None = attrs.field(default=None, repr=False)
    bot_type: str | None = None
    account_filter: Mapping[str, Any] | None = None
    notify_hook: str | None = None
    state: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class BlendRequest:
    """``POST /mj/submit/blend``: 2–5 data URLs; ``dimensions`` PORTRAIT (2:3) | SQUARE | LANDSCAPE (3:2)."""

    base64_array: tuple[str, ...] = attrs.field(repr=False)
    dimensions: str | None = None
    bot_type: str | None = None
    account_filter: Mapping[str, Any] | None = None
    notify_hook: str | None = None
    state: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class DescribeRequest:
    """``POST /mj/submit/describe``: one data URL in ``base64``."""

    base64: str = attrs.field(repr=False)
    bot_type: str | None = None
    account_filter: Mapping[str, Any] | None = None
    notify_hook: str | None = None
    state: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ActionRequest:
    """``POST /mj/submit/action``: press button ``custom_id`` of the finished task ``task_id``."""

    task_id: str
    custom_id: str
    enable_remix: bool | None = None
    choose_same_channel: bool | None = None
    account_filter: Mapping[str, Any] | None = None
    notify_hook: str | None = None
    state: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ModalRequest:
    """``POST /mj/submit/modal``: the input a ``MODAL`` task waits for (Vary Region mask, Custom Zoom prompt)."""

    task_id: str
    prompt: str | None = None
    mask_base64: str | None = attrs.field(default=None, repr=False)
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ListByConditionRequest:
    """``POST /mj/task/list-by-condition``."""

    ids: tuple[str, ...]
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


# -- responses ----------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SubmitResponse:
    """The submit envelope. ``result`` is the task id (a string; relays sometimes send a number)."""

    code: int
    description: str | None = None
    result: Any = None
    properties: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()

    @property
    def task_id(self) -> str | None:
        value = self.result
        if isinstance(value, bool) or value is None or value == "":
            return None
        return str(value) if isinstance(value, str | int) else None


@attrs.frozen(kw_only=True)
class Button:
    """A Discord button of a finished task: ``custom_id`` is what ``/submit/action`` takes."""

    custom_id: str
    emoji: str | None = None
    label: str | None = None
    type: int | None = None
    style: int | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class MjTask:
    """A task object (fetch / list-by-condition / notifyHook payload); the field union of the implementations."""

    id: Any
    action: str | None = None
    status: str | None = None
    prompt: str | None = None
    prompt_en: str | None = None
    description: str | None = None
    state: str | None = None
    submit_time: int | None = None
    start_time: int | None = None
    finish_time: int | None = None
    image_url: str | None = None
    image_urls: tuple[Any, ...] | None = None
    image_width: int | None = None
    image_height: int | None = None
    progress: Any = None
    fail_reason: str | None = None
    properties: Mapping[str, Any] | None = None
    buttons: tuple[Button, ...] | None = None
    bot_type: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()

    @property
    def task_id(self) -> str:
        return str(self.id)

    @property
    def split_urls(self) -> tuple[str, ...]:
        """The single images of a grid (trueai ``imageUrls``: ``{url, thumbnail}`` objects or strings)."""
        out: list[str] = []
        for item in self.image_urls or ():
            url = item.get("url") if isinstance(item, Mapping) else item
            if isinstance(url, str) and url:
                out.append(url)
        return tuple(out)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.cache
def _converter() -> WireConverter:
    return WireConverter(rename=_camel)


def to_wire(obj: Any) -> Any:
    """JSON-ready camelCase data of a request model (``None`` fields left out)."""
    return _converter().unstructure(obj)


def _parse(data: Any, cls: type[Any], what: str, provider: str) -> Any:
    try:
        return _converter().structure(data, cls)
    except Exception as exc:  # any structuring failure means the upstream sent something else
        path, msg = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected midjourney-proxy {what} at {path or '<root>'}: {msg}", provider=provider
        ) from exc


def parse_submit(data: Any, *, provider: str = "") -> SubmitResponse:
    """Structure a submit envelope; :class:`InvalidUpstreamResponse` naming the field on failure."""
    out: SubmitResponse = _parse(data, SubmitResponse, "submit response", provider)
    return out


def parse_task(data: Any, *, provider: str = "") -> MjTask:
    """Structure a task object; :class:`InvalidUpstreamResponse` naming the field on failure."""
    if isinstance(data, Mapping) and not isinstance(data.get("id"), str | int):
        raise InvalidUpstreamResponse("midjourney-proxy task without an 'id'", provider=provider)
    out: MjTask = _parse(data, MjTask, "task", provider)
    return out


def parse_task_list(data: Any, *, provider: str = "") -> tuple[MjTask, ...]:
    """Structure a ``list-by-condition`` answer (a JSON array of task objects)."""
    if not isinstance(data, list):
        raise InvalidUpstreamResponse("midjourney-proxy list-by-condition did not return an array", provider=provider)
    return tuple(parse_task(item, provider=provider) for item in data)
