"""Coze workflow API wire models (coze-dev/coze-py ``cozepy/workflows/runs/__init__.py``,
``runs/run_histories/__init__.py``; wire-video-audio-workflow.md §5.3) and their one converter (snake_case)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs

from polyrelay.errors import InvalidUpstreamResponse
from polyrelay.serde import WireConverter, first_error
from polyrelay.serde import explicit_nulls_field as _nulls
from polyrelay.serde import extra_field as _extra

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class RunBody:
    """``POST /v1/workflow/run`` and ``/v1/workflow/stream_run`` (the latter without ``is_async``)."""

    workflow_id: str
    parameters: Mapping[str, Any] | None = None
    bot_id: str | None = None
    app_id: str | None = None
    ext: Mapping[str, Any] | None = None
    is_async: bool | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RunAnswer:
    """The run answer: ``data`` is a JSON *string* of the End node's output (sync runs); async runs answer only
    ``execute_id`` (and ``debug_url``). ``code != 0`` is an error whatever the HTTP status."""

    code: int
    msg: str | None = None
    data: str | None = None
    execute_id: str | None = None
    debug_url: str | None = None
    usage: Mapping[str, Any] | None = None
    detail: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RunHistory:
    """One ``run_histories`` record: ``execute_status`` Running | Success | Fail, ``output`` usually a JSON string."""

    execute_id: str
    execute_status: str
    output: str | None = None
    error_code: int | str | None = None
    error_message: str | None = None
    debug_url: str | None = None
    usage: Mapping[str, Any] | None = None
    run_mode: int | None = None
    create_time: int | None = None
    update_time: int | None = None
    logid: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class HistoryAnswer:
    code: int
    msg: str | None = None
    data: tuple[RunHistory, ...] = ()
    detail: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class MessageEvent:
    """``event: Message``: a piece of a node's output. The End node's last message carries the output JSON."""

    content: str = ""
    node_title: str | None = None
    node_seq_id: str | None = None
    node_is_finish: bool | None = None
    content_type: str | None = None
    ext: Mapping[str, Any] | None = None
    usage: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ErrorEvent:
    error_code: int | str | None = None
    error_message: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class InterruptData:
    event_id: str | None = None
    type: int | None = None
    data: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class InterruptEvent:
    """``event: Interrupt``: a question node waits for input (resume with ``/v1/workflow/stream_resume``)."""

    interrupt_data: InterruptData | None = None
    node_title: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The Coze wire converter (built once)."""
    conv = WireConverter()
    conv.register_structure_hook(int | str | None, _int_or_str)
    return conv


def _int_or_str(value: Any, _: Any) -> int | str | None:
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"expected an integer or a string, got {type(value).__name__}")


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from Coze: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: RunBody) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
