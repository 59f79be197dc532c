"""BFL wire models (docs.bfl.ai OpenAPI; wire-images.md §3) and their one converter."""

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
class GenerationBody:
    """``POST /v1/{model}``. Only the fields set are sent; unknown provider params ride in ``extra``."""

    prompt: str | None = None
    width: int | None = None
    height: int | None = None
    aspect_ratio: str | None = None
    seed: int | None = None
    prompt_upsampling: bool | None = None
    safety_tolerance: int | None = None
    output_format: str | None = None
    raw: bool | None = None
    steps: int | None = None
    guidance: float | None = None
    interval: float | None = None
    image_prompt: str | None = None
    image_prompt_strength: float | None = None
    input_image: str | None = None
    input_image_2: str | None = None
    input_image_3: str | None = None
    input_image_4: str | None = None
    input_image_5: str | None = None
    input_image_6: str | None = None
    input_image_7: str | None = None
    input_image_8: str | None = None
    image: str | None = None
    mask: str | None = None
    top: int | None = None
    bottom: int | None = None
    left: int | None = None
    right: int | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


#: Body fields a caller may set through ``params`` (everything else in params goes to ``extra`` verbatim).
BODY_FIELDS: frozenset[str] = frozenset(
    a.name for a in attrs.fields(GenerationBody) if a.name not in ("extra", "explicit_nulls")
)


@attrs.frozen(kw_only=True)
class SubmitResponse:
    """``{"id", "polling_url", "cost", "input_mp", "output_mp"}``."""

    id: str
    polling_url: str | None = None
    cost: float | None = None
    input_mp: float | None = None
    output_mp: float | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Result:
    """``result`` of a ``Ready`` task: ``sample`` is the signed image URL (valid 10 minutes)."""

    sample: str | None = None
    prompt: str | None = None
    seed: int | None = None
    start_time: float | None = None
    end_time: float | None = None
    duration: float | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ResultResponse:
    """``GET get_result``: ``{id, status, result, progress, details, preview}`` (``state`` on some gateways)."""

    id: str | None = None
    status: str | None = None
    state: str | None = None
    result: Result | None = None
    progress: float | None = None
    details: Any = None
    preview: Any = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The BFL wire converter (built once)."""
    return WireConverter()


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from BFL: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: GenerationBody) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
