"""The OpenAI-format converters (built once, on first use) and the typed parse entry points."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeVar

import cattrs

from polyrelay.errors import InvalidRequest, InvalidUpstreamResponse
from polyrelay.serde import WireConverter, first_error
from polyrelay.types.chat import (
    ChatRequest,
    ContentPart,
    FilePart,
    ImagePart,
    ImageURL,
    InputAudioPart,
    NamedToolChoice,
    RefusalPart,
    TextPart,
    ToolChoice,
    UnknownPart,
)
from polyrelay.types.completion import ChatCompletion, ChatCompletionChunk

T = TypeVar("T")

_PART_TYPES: Mapping[str, type[Any]] = {
    "text": TextPart,
    "image_url": ImagePart,
    "input_audio": InputAudioPart,
    "file": FilePart,
    "refusal": RefusalPart,
}


def _build(detailed: bool) -> WireConverter:
    w = WireConverter(detailed=detailed)
    c = w.c

    def structure_part(v: Any, _: Any) -> Any:
        if not isinstance(v, Mapping):
            raise TypeError(f"a content part must be an object, got {type(v).__name__}")
        t = v.get("type")
        if not isinstance(t, str):
            raise ValueError("a content part needs a string 'type'")
        cls = _PART_TYPES.get(t)
        if cls is None:
            return UnknownPart(type=t, data=dict(v))
        return c.structure(v, cls)

    parts_t = tuple[ContentPart, ...]
    c.register_structure_hook(ContentPart, structure_part)
    c.register_unstructure_hook(UnknownPart, lambda p: dict(p.data))

    def structure_content(v: Any, _: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, list | tuple):
            return c.structure(v, parts_t)
        raise TypeError(f"content must be a string, a list of parts or null, got {type(v).__name__}")

    c.register_structure_hook(str | parts_t | None, structure_content)

    image_inner = c.get_structure_hook(ImageURL)

    def structure_image_url(v: Any, _: Any) -> ImageURL:
        if isinstance(v, str):  # the bare-string form relays send
            return ImageURL(url=v, bare=True)
        return image_inner(v, ImageURL)  # type: ignore[no-any-return]

    c.register_structure_hook(ImageURL, structure_image_url)
    image_unst = c.get_unstructure_hook(ImageURL)
    c.register_unstructure_hook(ImageURL, lambda u: u.url if u.bare and u.detail is None else image_unst(u))

    def structure_tool_choice(v: Any, _: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        return c.structure(v, NamedToolChoice)

    c.register_structure_hook(ToolChoice | None, structure_tool_choice)

    def structure_stop(v: Any, _: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, list | tuple) and all(isinstance(s, str) for s in v):
            return tuple(v)
        raise TypeError("stop must be a string or a list of strings")

    c.register_structure_hook(str | tuple[str, ...] | None, structure_stop)

    def structure_str(v: Any, _: Any) -> str:
        if not isinstance(v, str):
            raise TypeError(f"expected a string, got {type(v).__name__}")
        return v

    def structure_int(v: Any, _: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                return int(v)
            raise TypeError(f"expected an integer, got {type(v).__name__}")
        return v

    def structure_float(v: Any, _: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"expected a number, got {type(v).__name__}")
        return float(v)

    def structure_bool(v: Any, _: Any) -> bool:
        if not isinstance(v, bool):
            raise TypeError(f"expected true or false, got {type(v).__name__}")
        return v

    # Strict scalars: cattrs would happily turn 5 into "5" or "yes" into True; OpenAI would reject them.
    c.register_structure_hook(str, structure_str)
    c.register_structure_hook(int, structure_int)
    c.register_structure_hook(float, structure_float)
    c.register_structure_hook(bool, structure_bool)
    c.register_structure_hook(Any, lambda v, _: v)
    return w


@functools.cache
def openai_converter() -> WireConverter:
    """The detailed converter: validates with field paths (user input, error rendering)."""
    return _build(detailed=True)


@functools.cache
def fast_openai_converter() -> WireConverter:
    """Same hooks without per-field error bookkeeping, for the hot path of upstream responses."""
    return _build(detailed=False)


def parse_request(data: Mapping[str, Any]) -> ChatRequest:
    """Structure an OpenAI request body; raise :class:`InvalidRequest` naming the field path on bad input."""
    if not isinstance(data, Mapping):
        raise InvalidRequest("the request must be a JSON object", path="")
    for key in ("model", "messages"):
        if key not in data:
            raise InvalidRequest("is required", path=key)
    try:
        return openai_converter().structure(data, ChatRequest)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        path, msg = first_error(exc)
        raise InvalidRequest(msg, path=path) from exc


def _parse_upstream(data: Any, cls: type[T], provider: str) -> T:
    try:
        return fast_openai_converter().structure(data, cls)
    except Exception as fast_exc:  # noqa: BLE001 - every structuring failure is an invalid upstream response
        try:
            openai_converter().structure(data, cls)
        except Exception as exc:  # noqa: BLE001
            path, msg = first_error(exc)
            raise InvalidUpstreamResponse(
                f"invalid upstream response: {path or cls.__name__}: {msg}", provider=provider
            ) from exc
        raise InvalidUpstreamResponse(f"invalid upstream response: {fast_exc}", provider=provider) from fast_exc


def parse_completion(data: Any, *, provider: str = "") -> ChatCompletion:
    return _parse_upstream(data, ChatCompletion, provider)


def parse_chunk(data: Any, *, provider: str = "") -> ChatCompletionChunk:
    return _parse_upstream(data, ChatCompletionChunk, provider)


def to_json(obj: Any) -> Any:
    """Unstructure any OpenAI-format model to JSON-compatible data."""
    return openai_converter().unstructure(obj)
