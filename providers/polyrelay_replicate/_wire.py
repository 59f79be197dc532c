"""Replicate wire models (replicate.com/docs/reference/http; wire-images.md §4) and their one converter."""

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
class PredictionRequest:
    """``POST /v1/models/{owner}/{name}/predictions`` (no ``version``) or ``POST /v1/predictions``."""

    input: Mapping[str, Any]
    version: str | None = None
    webhook: str | None = None
    webhook_events_filter: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class PredictionUrls:
    get: str | None = None
    cancel: str | None = None
    stream: str | None = None
    web: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Prediction:
    """The prediction object (create, get and cancel all return it)."""

    id: str
    status: str
    model: str | None = None
    version: str | None = None
    input: Any = None
    output: Any = None
    """A URI string, a list of URIs, a list of text tokens, any JSON, or null."""
    error: Any = None
    """A string, or (some gateways) ``{"detail": ...}``."""
    logs: str | None = None
    metrics: Mapping[str, Any] | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    urls: PredictionUrls | None = None
    data_removed: bool | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The Replicate wire converter (built once)."""
    return WireConverter()


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from Replicate: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: PredictionRequest) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
