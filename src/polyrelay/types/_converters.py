"""The OpenAI-format converters (built once, on first use) and the typed parse entry points."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs

from polyrelay.errors import InvalidRequest, InvalidUpstreamResponse
from polyrelay.serde import WireConverter, first_error, json_kind
from polyrelay.types._plain import NOT_PLAIN, plain_chunk, plain_completion, plain_request
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
from polyrelay.types.completion import ChatCompletion, ChatCompletionChunk, ChoiceDelta, ChunkChoice

T = TypeVar("T")

_PART_TYPES: Mapping[str, type[Any]] = {
    "text": TextPart,
    "image_url": ImagePart,
    "input_audio": InputAudioPart,
    "file": FilePart,
    "refusal": RefusalPart,
}


def _strict_scalars(c: cattrs.Converter) -> None:
    """Strict scalars: cattrs would happily turn 5 into "5" or "yes" into True; OpenAI would reject them."""

    def structure_str(v: Any, _: Any) -> str:
        if not isinstance(v, str):
            raise TypeError(f"expected a string, got {json_kind(v)}")
        return v

    def structure_int(v: Any, _: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                return int(v)
            raise TypeError(f"expected an integer, got {json_kind(v)}")
        return v

    def structure_float(v: Any, _: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"expected a number, got {json_kind(v)}")
        return float(v)

    def structure_bool(v: Any, _: Any) -> bool:
        if not isinstance(v, bool):
            raise TypeError(f"expected true or false, got {json_kind(v)}")
        return v

    c.register_structure_hook(str, structure_str)
    c.register_structure_hook(int, structure_int)
    c.register_structure_hook(float, structure_float)
    c.register_structure_hook(bool, structure_bool)
    c.register_structure_hook(Any, lambda v, _: v)


def _build(detailed: bool) -> WireConverter:
    w = WireConverter(detailed=detailed)
    c = w.c
    # First: hooks fetched below (ImageURL's) are compiled with the scalar hooks registered at that moment.
    _strict_scalars(c)

    def structure_part(v: Any, _: Any) -> Any:
        if not isinstance(v, Mapping):
            raise TypeError(f"a content part must be an object, got {json_kind(v)}")
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
        raise TypeError(f"content must be a string, a list of parts or null, got {json_kind(v)}")

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
    # (A dict first: isinstance against the Mapping ABC is a Python-level call, on every request.)
    if data.__class__ is not dict and not isinstance(data, Mapping):
        raise InvalidRequest("the request must be a JSON object", path="")
    for key in ("model", "messages"):
        if key not in data:
            raise InvalidRequest("is required", path=key)
    request: ChatRequest = plain_request(data)  # the builders are typed Any -> Any: no cast() call needed
    if request is not NOT_PLAIN:
        return request
    try:
        return openai_converter().structure(data, ChatRequest)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        path, msg = first_error(exc)
        raise InvalidRequest(msg, path=path) from exc


def _parse_upstream(data: Any, cls: type[T], provider: str) -> T:
    try:
        return fast_openai_converter().structure(data, cls)
    except Exception as fast_exc:
        try:
            openai_converter().structure(data, cls)
        except Exception as exc:
            path, msg = first_error(exc)
            raise InvalidUpstreamResponse(
                f"invalid upstream response: {path or cls.__name__}: {msg}", provider=provider
            ) from exc
        raise InvalidUpstreamResponse(f"invalid upstream response: {fast_exc}", provider=provider) from fast_exc


def parse_completion(data: Any, *, provider: str = "") -> ChatCompletion:
    completion: ChatCompletion = plain_completion(data)
    if completion is not NOT_PLAIN:
        return completion
    return _parse_upstream(data, ChatCompletion, provider)


def parse_chunk(data: Any, *, provider: str = "") -> ChatCompletionChunk:
    chunk: ChatCompletionChunk = plain_chunk(data)
    if chunk is not NOT_PLAIN:
        return chunk
    return _parse_upstream(data, ChatCompletionChunk, provider)


# -- the keys the text-delta fast path below needs --------------------------------------------------------------

_NO_NULLS: frozenset[str] = frozenset()
_CHUNK_KEYS = frozenset({"id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier"})
_CHOICE_KEYS = frozenset({"index", "delta", "finish_reason", "logprobs"})


def to_json(obj: Any) -> Any:
    """Unstructure any OpenAI-format model to JSON-compatible data."""
    return openai_converter().unstructure(obj)


# -- the bulk of a stream: a bare text delta --------------------------------------------------------------------
# text_delta_chunk builds what parse_chunk builds for the commonest chunk of all (one choice whose delta is only
# {"content": str}), without its general checks: the attrs __init__ with keyword arguments is most of the cost
# there, so the three objects are made with object.__new__ and their slots set directly (none of these classes has
# validators, converters or __attrs_post_init__). The key-dependent parts (explicit_nulls, which keys are extra)
# depend only on the keys and on which of the optional values are null, so they are computed once per shape.


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    # Every field must be set, and nothing the generated __init__ does may be skipped: checked once, at import.
    fields = attrs.fields(cls)
    if tuple(f.name for f in fields) != names or hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__} changed: update its fast path in {__name__}")
    if any(f.validator is not None or f.converter is not None for f in fields):
        raise TypeError(f"{cls.__name__} has validators or converters: update its fast path in {__name__}")
    return tuple(getattr(cls, name).__set__ for name in names)


_DELTA_SLOTS = ("role", "content", "reasoning_content", "refusal", "tool_calls", "extra", "explicit_nulls")
_CHOICE_SLOTS = ("index", "delta", "finish_reason", "logprobs", "extra", "explicit_nulls")
_CHUNK_SLOTS = (
    "id",
    "object",
    "created",
    "model",
    "choices",
    "usage",
    "system_fingerprint",
    "service_tier",
    "extra",
    "explicit_nulls",
    "meta",
)
(_d_role, _d_content, _d_reasoning, _d_refusal, _d_tools, _d_extra, _d_nulls) = _slot_setters(ChoiceDelta, _DELTA_SLOTS)
(_c_index, _c_delta, _c_finish, _c_logprobs, _c_extra, _c_nulls) = _slot_setters(ChunkChoice, _CHOICE_SLOTS)
(_k_id, _k_object, _k_created, _k_model, _k_choices, _k_usage, _k_fp, _k_tier, _k_extra, _k_nulls, _k_meta) = (
    _slot_setters(ChatCompletionChunk, _CHUNK_SLOTS)
)
_new = object.__new__
_SHAPE_CACHE_MAX = 64  # shapes are few in practice; the bound only matters for a hostile upstream
_choice_shapes: dict[tuple[str, ...], tuple[frozenset[str], tuple[str, ...]] | None] = {}
_chunk_shapes: dict[tuple[tuple[str, ...], bool, bool], tuple[frozenset[str], tuple[str, ...]]] = {}


def _choice_shape(keys: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]] | None:
    if "usage" in keys:  # Moonshot's usage inside the choice: the assembler takes it off first
        return None
    # index and delta are not null here; finish_reason and logprobs are null when present.
    nulls = frozenset(k for k in ("finish_reason", "logprobs") if k in keys) or _NO_NULLS
    return nulls, tuple(k for k in keys if k not in _CHOICE_KEYS)


def _chunk_shape(keys: tuple[str, ...], fp_null: bool, tier_null: bool) -> tuple[frozenset[str], tuple[str, ...]]:
    nulls = {k for k, null in (("system_fingerprint", fp_null), ("service_tier", tier_null)) if null and k in keys}
    if "object" not in keys:
        nulls.add("-object")
    return frozenset(nulls) or _NO_NULLS, tuple(k for k in keys if k not in _CHUNK_KEYS)


def text_delta_chunk(data: dict[str, Any], choice: dict[str, Any], content: str) -> ChatCompletionChunk | None:
    """``parse_chunk`` of ``data`` without its ``usage`` key, when its only choice is ``choice`` with the delta
    ``{"content": content}`` and no finish reason; ``None`` when anything else is not plain (use ``parse_chunk``)."""
    index = choice.get("index", 0)
    if index.__class__ is not int or choice.get("finish_reason") is not None or choice.get("logprobs") is not None:
        return None
    ckeys = tuple(choice)
    if ckeys in _choice_shapes:
        cshape = _choice_shapes[ckeys]
    else:
        if len(_choice_shapes) >= _SHAPE_CACHE_MAX:
            _choice_shapes.clear()
        cshape = _choice_shapes[ckeys] = _choice_shape(ckeys)
    if cshape is None:
        return None
    cid = data.get("id")
    obj = data.get("object", "chat.completion.chunk")
    created = data.get("created", 0)
    model = data.get("model", "")
    fingerprint = data.get("system_fingerprint")
    tier = data.get("service_tier")
    if (
        cid.__class__ is not str
        or obj.__class__ is not str
        or created.__class__ is not int
        or model.__class__ is not str
        or not (fingerprint is None or fingerprint.__class__ is str)
        or not (tier is None or tier.__class__ is str)
    ):
        return None
    key = (tuple(data), fingerprint is None, tier is None)
    kshape = _chunk_shapes.get(key)
    if kshape is None:
        if len(_chunk_shapes) >= _SHAPE_CACHE_MAX:
            _chunk_shapes.clear()
        kshape = _chunk_shapes[key] = _chunk_shape(*key)

    delta = _new(ChoiceDelta)
    _d_role(delta, None)
    _d_content(delta, content)
    _d_reasoning(delta, None)
    _d_refusal(delta, None)
    _d_tools(delta, None)
    _d_extra(delta, {})
    _d_nulls(delta, _NO_NULLS)

    ch = _new(ChunkChoice)
    _c_index(ch, index)
    _c_delta(ch, delta)
    _c_finish(ch, None)
    _c_logprobs(ch, None)
    _c_extra(ch, {k: choice[k] for k in cshape[1]} if cshape[1] else {})
    _c_nulls(ch, cshape[0])

    chunk = _new(ChatCompletionChunk)
    _k_id(chunk, cid)
    _k_object(chunk, obj)
    _k_created(chunk, created)
    _k_model(chunk, model)
    _k_choices(chunk, (ch,))
    _k_usage(chunk, None)
    _k_fp(chunk, fingerprint)
    _k_tier(chunk, tier)
    _k_extra(chunk, {k: data[k] for k in kshape[1]} if kshape[1] else {})
    _k_nulls(chunk, kshape[0])
    _k_meta(chunk, None)
    return chunk
