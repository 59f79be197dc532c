"""Dify workflow API wire models (langgenius/dify ``template_workflow.en.mdx``; wire-video-audio-workflow.md §5.2)
and their one converter (snake_case)."""

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
class FileInput:
    """A file input: ``{"type": "image"|"document"|..., "transfer_method": "remote_url", "url"}``."""

    type: str
    transfer_method: str
    url: str | None = None
    upload_file_id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RunRequest:
    """``POST /workflows/run``: ``inputs``, ``response_mode`` and ``user`` are required. ``model`` is the relay
    variant's extra field (a relay maps it to one app key)."""

    inputs: Mapping[str, Any]
    response_mode: str
    user: str
    files: tuple[FileInput, ...] | None = None
    model: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RunData:
    """A run: ``data`` of the blocking answer and of ``workflow_finished``; also ``GET /workflows/run/{id}``
    (whose ``inputs`` is a JSON string and whose id is ``id``)."""

    id: str
    status: str
    workflow_id: str | None = None
    outputs: Any = None
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    inputs: Any = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class BlockingResponse:
    workflow_run_id: str
    task_id: str
    data: RunData
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class NodeData:
    """``data`` of ``node_started`` / ``node_finished``: ``id`` is this execution, ``node_id`` the graph node."""

    id: str
    node_id: str | None = None
    node_type: str | None = None
    title: str | None = None
    index: int | None = None
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class StreamEvent:
    """One ``data:`` line of a streamed run: ``event`` names it; ``data`` depends on the event. In-band errors
    (``event: "error"``) carry ``status``, ``code`` and ``message`` at the top level."""

    event: str
    task_id: str | None = None
    workflow_run_id: str | None = None
    data: Any = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The Dify wire converter (built once)."""
    return WireConverter()


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from Dify: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: RunRequest) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
