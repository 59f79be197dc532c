"""Fast paths of ``parse_completion``, ``parse_chunk`` and ``parse_request`` for the plain shapes.

Most answers are one plain shape: choices whose message is text (no tool calls, no logprobs) and a usage object of
integers; most stream chunks are text deltas; most requests are text messages with a few scalar settings.
:func:`plain_completion`, :func:`plain_chunk` and :func:`plain_request` build exactly what the general converter
builds for such bodies (the same field values, ``extra`` and ``explicit_nulls``), with each object made by
``object.__new__`` and its slots set directly: the keyword ``__init__`` of frozen attrs classes and cattrs'
per-field dispatch are most of the general path's cost. Anything else (a wrong type, a float where an int belongs,
tool calls, content parts, a missing required key) returns :data:`NOT_PLAIN`, and the caller takes the general
path, which also produces the error message. ``tests/fuzz/`` checks that both paths agree (mutated recorded
responses and chunks; arbitrary request JSON).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from polyrelay._twins import twin as make_twin
from polyrelay.types.chat import ROLES, ChatRequest, Message, StreamOptions
from polyrelay.types.completion import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    CompletionTokensDetails,
    PromptTokensDetails,
    Usage,
)

__all__ = ["NOT_PLAIN", "plain_chunk", "plain_completion", "plain_request"]

#: Returned when the body is not of the plain shape (``None`` is a legitimate value of optional fields).
NOT_PLAIN: Final = object()
_REQUIRED: Final = object()
_NO_NULLS: frozenset[str] = frozenset()

_Check = Callable[[Any], Any]
_new = object.__new__

# A field's check, as the source of an expression on ``v`` that is true when ``v`` is NOT plain. Nested objects and
# arrays are built by their own builders (``v`` is replaced by what they return).
_STR = "v.__class__ is not str"
_OPT_STR = "v is not None and v.__class__ is not str"
_INT = "v.__class__ is not int"  # a bool's class is bool; a float (which the general path accepts) goes there
_OPT_INT = "v is not None and v.__class__ is not int"
_NULL = "v is not None"
_ASSISTANT = "v.__class__ is not str or v != 'assistant'"
_OPT_BOOL = "v is not None and v.__class__ is not bool"
_ROLE = "v.__class__ is not str or v not in ROLES"
_ACCEPT_NULL = frozenset({_OPT_STR, _OPT_INT, _NULL, _OPT_BOOL})
# An optional field's check once its value is known not to be null.
_NON_NULL = {_OPT_STR: _STR, _OPT_INT: _INT, _NULL: "True", _OPT_BOOL: "v.__class__ is not bool"}


def _float(v: Any) -> Any:
    # The general path's float: any JSON number but a boolean, as a float.
    c = v.__class__
    return v if c is float else float(v) if c is int else NOT_PLAIN


def _array(build: _Check) -> _Check:
    def check(v: Any) -> Any:
        if v.__class__ is not list:
            return NOT_PLAIN
        out = []
        for item in v:
            obj = build(item)
            if obj is NOT_PLAIN:
                return NOT_PLAIN
            out.append(obj)
        return tuple(out)

    return check


def _builder(cls: type, spec: tuple[tuple[str, Any, str | _Check, bool], ...], rare: tuple[str, ...] = ()) -> _Check:
    """A builder of ``cls`` from a JSON object whose known keys pass their checks. ``spec`` lists every wire field
    in declaration order as ``(name, default or _REQUIRED, check, optional)``: ``check`` is an expression from
    above, or a builder; ``optional`` fields (and only they) take ``null``, default to ``None``, and set a bit of a
    mask when ``null`` is given explicitly, from which ``explicit_nulls`` is looked up (no scan of the values).
    ``rare`` names optional fields usually absent: runs of two to six consecutive ones are skipped together when
    none of their keys is in the object (one C-level check instead of a lookup per field; each is still stored,
    as None). The builder is generated as straight-line code, like attrs and cattrs generate theirs; the spec is
    checked against the class once, here."""
    fields = attrs.fields(cls)
    names = tuple(name for name, _, _, _ in spec)
    wire = tuple(f.name for f in fields if f.name not in ("extra", "explicit_nulls") and f.metadata.get("wire", True))
    if wire != names or hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__} changed: update its fast path in {__name__}")
    if any(f.validator is not None or f.converter is not None for f in fields):
        raise TypeError(f"{cls.__name__} has validators or converters: update its fast path in {__name__}")
    by_name = {f.name: f for f in fields}
    for name, default, _, _ in spec:
        f = by_name[name]
        expected = _REQUIRED if f.default is attrs.NOTHING else f.default
        if expected is not default and expected != default:
            raise TypeError(f"{cls.__name__}.{name}'s default changed: update its fast path in {__name__}")
    for f in fields:
        if not f.metadata.get("wire", True) and f.default is not None:
            raise TypeError(f"{cls.__name__}.{f.name} must default to None for {__name__}")
    nullable = [name for name, _, _, optional in spec if optional]
    for name, default, check, optional in spec:
        if optional is not (check in _ACCEPT_NULL if isinstance(check, str) else optional) or (
            optional and default is not None
        ):
            raise TypeError(f"{cls.__name__}.{name}: optional fields take null, default to None and only they do")
    bit = {name: 1 << k for k, name in enumerate(nullable)}
    nulls_by_mask: dict[int, frozenset[str]] = {}

    def nulls_of(mask: int) -> frozenset[str]:
        # The explicit nulls for one combination of null fields; the few combinations met are kept.
        nulls = frozenset(name for name in nullable if mask & bit[name])
        if len(nulls_by_mask) < 256:
            nulls_by_mask[mask] = nulls
        return nulls

    twin = make_twin(cls)
    ns: dict[str, Any] = {
        "NULLS": nulls_by_mask,
        "nulls_of": nulls_of,
        "NO": NOT_PLAIN,
        "REQ": _REQUIRED,
        "new": _new,
        "cls": cls,
        "twin": twin,
        "known": frozenset(names),
        "NO_NULLS": _NO_NULLS,
        "ROLES": ROLES,
    }

    def store(name: str, value: str) -> str:
        # A plain store on the twin; through the slot descriptor of the frozen class otherwise.
        if twin is not None:
            return f"    obj.{name} = {value}"
        ns[f"set_{name}"] = getattr(cls, name).__set__
        return f"    set_{name}(obj, {value})"

    lines = [
        "def build(d):",
        "    if d.__class__ is not dict:",
        "        return NO",
        f"    obj = new({'twin' if twin else 'cls'})",
    ]
    lines.append("    m = 0")
    if not set(rare) <= set(nullable):
        raise TypeError(f"{cls.__name__}: only optional fields can be rare")
    groups: dict[int, tuple[str, ...]] = {}
    run: list[str] = []
    for k, (name, _, _, _) in enumerate([*spec, ("", None, "", False)]):
        if name in rare and len(run) < 6:
            run.append(name)
            continue
        if len(run) >= 2:
            groups[k - len(run)] = tuple(run)
        run = [name] if name in rare else []
    group_end = -1
    for i, (name, default, check, optional) in enumerate(spec):
        if i in groups:
            members = groups[i]
            group_end = i + len(members) - 1
            ns[f"group{i}"] = frozenset(members)
            lines.append(f"    if group{i}.isdisjoint(d):")
            lines += ["    " + store(member, "None") for member in members]
            lines.append("    else:")
        start = len(lines)
        if isinstance(check, str):
            if optional:
                check = _NON_NULL[check]  # the code below checks only values that are not null
            checking = ["return NO"] if check == "True" else [f"if {check}:", "    return NO"]
        else:
            ns[f"build{i}"] = check
            checking = [f"v = build{i}(v)", "if v is NO:", "    return NO"]
        if optional:
            # Absent: None. Null: None, and recorded in explicit_nulls (bit by bit: no scan of the values after).
            lines += [f"    v = d.get({name!r})", "    if v is None:", f"        if {name!r} in d:"]
            lines += [f"            m |= {bit[name]}", "    else:"]
            lines += [" " * 8 + line for line in checking]
        elif isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # attrs.Factory is a class at runtime
            ns[f"factory{i}"] = default.factory
            lines += [f"    v = d.get({name!r}, REQ)", "    if v is REQ:", f"        v = factory{i}()", "    else:"]
            lines += [" " * 8 + line for line in checking]
        else:
            if default is _REQUIRED:
                lines += [f"    v = d.get({name!r}, REQ)", "    if v is REQ:", "        return NO"]
            else:
                ns[f"default{i}"] = [] if default == () else default  # what the JSON holds when the key is absent
                lines.append(f"    v = d.get({name!r}, default{i})")
            lines += [" " * 4 + line for line in checking]
        lines.append(store(name, "v"))
        if i <= group_end:  # this field's code goes under its group's else
            lines[start:] = ["    " + line for line in lines[start:]]
    lines += [
        store("extra", "{} if known.issuperset(d) else {k: v for k, v in d.items() if k not in known}"),
        "    nulls = NO_NULLS if not m else NULLS.get(m) or nulls_of(m)",
    ]
    for name in getattr(cls, "DEFAULTED", ()):
        lines += [f"    if {name!r} not in d:", f"        nulls = nulls.union(({'-' + name!r},))"]
    lines.append(store("explicit_nulls", "nulls"))
    for f in fields:
        if not f.metadata.get("wire", True):
            lines.append(store(f.name, "None"))
    if twin is not None:
        lines.append("    obj.__class__ = cls")
    lines.append("    return obj")
    exec(compile("\n".join(lines), f"<polyrelay plain {cls.__name__}>", "exec"), ns)
    build: _Check = ns["build"]
    return build


_prompt_details = _builder(
    PromptTokensDetails,
    (
        ("cached_tokens", None, _OPT_INT, True),
        ("audio_tokens", None, _OPT_INT, True),
        ("cache_write_tokens", None, _OPT_INT, True),
    ),
)
_completion_details = _builder(
    CompletionTokensDetails,
    (
        ("reasoning_tokens", None, _OPT_INT, True),
        ("audio_tokens", None, _OPT_INT, True),
        ("accepted_prediction_tokens", None, _OPT_INT, True),
        ("rejected_prediction_tokens", None, _OPT_INT, True),
    ),
)
_usage = _builder(
    Usage,
    (
        ("prompt_tokens", 0, _INT, False),
        ("completion_tokens", 0, _INT, False),
        ("total_tokens", 0, _INT, False),
        ("prompt_tokens_details", None, _prompt_details, True),
        ("completion_tokens_details", None, _completion_details, True),
    ),
)
_message = _builder(
    ChatCompletionMessage,
    (
        ("role", "assistant", _ASSISTANT, False),
        ("content", None, _OPT_STR, True),
        ("refusal", None, _OPT_STR, True),
        ("tool_calls", None, _NULL, True),
        ("reasoning_content", None, _OPT_STR, True),
    ),
    rare=("tool_calls", "reasoning_content"),
)
_choice = _builder(
    Choice,
    (
        ("index", 0, _INT, False),
        ("message", _REQUIRED, _message, False),
        ("finish_reason", None, _OPT_STR, True),
        ("logprobs", None, _NULL, True),
    ),
)
_completion = _builder(
    ChatCompletion,
    (
        ("id", _REQUIRED, _STR, False),
        ("object", "chat.completion", _STR, False),
        ("created", 0, _INT, False),
        ("model", "", _STR, False),
        ("choices", (), _array(_choice), False),
        ("usage", None, _usage, True),
        ("system_fingerprint", None, _OPT_STR, True),
        ("service_tier", None, _OPT_STR, True),
    ),
)


_message_in = _builder(
    Message,
    (
        ("role", _REQUIRED, _ROLE, False),
        ("content", None, _OPT_STR, True),
        ("name", None, _OPT_STR, True),
        ("tool_calls", None, _NULL, True),
        ("tool_call_id", None, _OPT_STR, True),
        ("refusal", None, _OPT_STR, True),
        ("reasoning_content", None, _OPT_STR, True),
    ),
    rare=("name", "tool_calls", "tool_call_id", "refusal", "reasoning_content"),
)
_stream_options = _builder(StreamOptions, (("include_usage", None, _OPT_BOOL, True),))
_REQUEST_SPEC: Final[tuple[tuple[str, Any, str | _Check, bool], ...]] = (
    ("model", _REQUIRED, _STR, False),
    ("messages", _REQUIRED, _array(_message_in), False),
    ("stream", None, _OPT_BOOL, True),
    ("stream_options", None, _stream_options, True),
    ("tools", None, _NULL, True),
    ("tool_choice", None, _NULL, True),
    ("parallel_tool_calls", None, _OPT_BOOL, True),
    ("response_format", None, _NULL, True),
    ("n", None, _OPT_INT, True),
    ("stop", None, _NULL, True),
    ("max_tokens", None, _OPT_INT, True),
    ("max_completion_tokens", None, _OPT_INT, True),
    ("temperature", None, _float, True),
    ("top_p", None, _float, True),
    ("presence_penalty", None, _float, True),
    ("frequency_penalty", None, _float, True),
    ("logit_bias", None, _NULL, True),
    ("logprobs", None, _OPT_BOOL, True),
    ("top_logprobs", None, _OPT_INT, True),
    ("seed", None, _OPT_INT, True),
    ("user", None, _OPT_STR, True),
    ("reasoning_effort", None, _OPT_STR, True),
    ("modalities", None, _NULL, True),
)
# A request usually sets a few of its many optional fields.
_request = _builder(ChatRequest, _REQUEST_SPEC, rare=tuple(name for name, _, _, optional in _REQUEST_SPEC if optional))


_delta = _builder(
    ChoiceDelta,
    (
        ("role", None, _OPT_STR, True),
        ("content", None, _OPT_STR, True),
        ("reasoning_content", None, _OPT_STR, True),
        ("refusal", None, _OPT_STR, True),
        ("tool_calls", None, _NULL, True),
    ),
    rare=("reasoning_content", "refusal", "tool_calls"),
)
_chunk_choice = _builder(
    ChunkChoice,
    (
        ("index", 0, _INT, False),
        ("delta", attrs.Factory(ChoiceDelta), _delta, False),
        ("finish_reason", None, _OPT_STR, True),
        ("logprobs", None, _NULL, True),
    ),
)
_chunk = _builder(
    ChatCompletionChunk,
    (
        ("id", _REQUIRED, _STR, False),
        ("object", "chat.completion.chunk", _STR, False),
        ("created", 0, _INT, False),
        ("model", "", _STR, False),
        ("choices", (), _array(_chunk_choice), False),
        ("usage", None, _NULL, True),
        ("system_fingerprint", None, _OPT_STR, True),
        ("service_tier", None, _OPT_STR, True),
    ),
)


# The builders themselves (a wrapper would be one more call on every response, chunk and request).
#: ``plain_chunk(data)``: the :class:`ChatCompletionChunk` the general converter would build from ``data``, or
#: :data:`NOT_PLAIN` (a chunk carrying usage, tool calls or logprobs is not plain).
plain_chunk: Final = _chunk
#: ``plain_completion(data)``: the :class:`ChatCompletion` the general converter would build, or :data:`NOT_PLAIN`.
plain_completion: Final = _completion
#: ``plain_request(data)``: the :class:`ChatRequest` the general converter would build, or :data:`NOT_PLAIN`.
plain_request: Final = _request
