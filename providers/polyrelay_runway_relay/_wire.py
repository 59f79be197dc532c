"""Wire models of the relays' Runway web API (wire-video-audio-workflow.md §1.7) and their one converter.

Submit and feed answers come in an envelope ``{"code", "msg", "data", "exec_time"}`` whose ``code`` is ``200``
(an int) on the classic relays and ``"success"`` (a string) on CometAPI's new-api flavour; the provider reads the
envelope by hand (the code's type varies) and structures ``data`` with these classes. The wire is snake_case,
except the official Runway task object nested in the CometAPI wrapper, of which only snake-safe fields are typed
(``createdAt`` / ``failureCode`` stay in ``extra``).
"""

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
class GenerateOptions:
    """``options``: ``seconds`` 5 | 10 and the camera ``motion_vector`` ``{x, y, z, r, bg_x_pan, bg_y_pan}``."""

    seconds: int | None = None
    motion_vector: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class GenerateRequest:
    """``POST /runway/pro/generate`` (text) and ``POST /runway/pro/img2video`` (with ``image``)."""

    prompt: str
    ratio: str | None = None
    style: str | None = None
    model: str | None = None
    image: str | None = None
    callback_url: str | None = None
    options: GenerateOptions | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class SubmitData:
    """``data`` of a submit answer."""

    task_id: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class FeedTask:
    """``data`` of a classic ``/runway/feed`` answer: ``status`` "0" queued, "1" running, "2" failed (refunded,
    ``refund: "1"``), "3" succeeded with ``video_url``. Times are Unix-second strings."""

    task_id: str
    status: str
    state: str | None = None
    prompt: str | None = None
    video_url: str | None = None
    poster: str | None = None
    last_frame: str | None = None
    msg: str | None = None
    refund: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RunwayTaskObject:
    """The official Runway task object (§1.4) that the CometAPI wrapper nests in ``data.data``."""

    id: str | None = None
    status: str | None = None
    output: tuple[str, ...] | None = None
    failure: str | None = None
    progress: float | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class WrappedTask:
    """``data`` of a CometAPI (new-api) ``/runway/feed`` answer: ``status`` QUEUED | IN_PROGRESS | SUCCESS |
    FAILURE, ``progress`` ``"40%"``, ``fail_reason``, the upstream task in ``data``."""

    task_id: str
    status: str
    action: str | None = None
    progress: str | None = None
    fail_reason: str | None = None
    data: RunwayTaskObject | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The relay Runway wire converter (snake_case; built once)."""
    return WireConverter()


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from the Runway relay: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: GenerateRequest) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
