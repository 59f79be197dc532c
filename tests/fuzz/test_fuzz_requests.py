"""Fuzzing request structuring: :func:`polyrelay.types._converters.parse_request` on arbitrary JSON.

Whatever the input, the result is a :class:`ChatRequest` or an :class:`InvalidRequest` whose ``path`` names the
offending field (empty only when the body itself is not an object) — never a raw ``TypeError`` / ``KeyError`` /
cattrs error. The path must lead into the input: every step but the last exists there (the last may be a missing
required key). A request that parses serialises back to the JSON it came from.

Inputs: arbitrary JSON; generated OpenAI-shaped requests; and mutations (keys deleted, values nulled or replaced
with other types) of generated requests and of every request body recorded in tests/fixtures/recorded.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from fuzz_support import attrs_state, fuzz, json_values, load_cassettes, mutated
from hypothesis import given
from hypothesis import strategies as st

from polyrelay.errors import InvalidRequest
from polyrelay.types._converters import openai_converter, parse_request, to_json
from polyrelay.types._plain import NOT_PLAIN, plain_request
from polyrelay.types.chat import ChatRequest

RECORDED = Path(__file__).parents[1] / "fixtures" / "recorded"

RECORDED_REQUESTS: list[Any] = [
    i["request"]["parsed_body"]
    for i in load_cassettes(RECORDED)
    if isinstance(i.get("request", {}).get("parsed_body"), dict) and "messages" in i["request"]["parsed_body"]
]

# A path step: a key (``messages``), a list index (``[2]``) or a quoted object key (``["50256"]``).
_PATH_STEP = re.compile(r'([^.\[\]"]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')

# -- generated OpenAI-shaped requests ---------------------------------------------------------------------------

_text = st.text(max_size=8)
_parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": _text | st.fixed_dictionaries({"url": _text}, optional={"detail": _text}),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("input_audio"), "input_audio": st.fixed_dictionaries({"data": _text, "format": _text})}
    ),
    st.fixed_dictionaries(
        {"type": st.just("file"), "file": st.fixed_dictionaries({}, optional={"filename": _text, "file_id": _text})}
    ),
    st.fixed_dictionaries({"type": st.just("refusal"), "refusal": _text}),
    st.fixed_dictionaries({"type": _text, "payload": json_values}),
)
_tool_call = st.fixed_dictionaries(
    {"id": _text, "type": st.just("function"), "function": st.fixed_dictionaries({"name": _text, "arguments": _text})}
)
_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"]),
        "content": st.none() | _text | st.lists(_parts, max_size=3),
    },
    optional={
        "name": _text,
        "tool_calls": st.lists(_tool_call, max_size=2),
        "tool_call_id": _text,
        "refusal": st.none() | _text,
        "reasoning_content": _text,
        "x_vendor": json_values,
    },
)
_tool = st.fixed_dictionaries(
    {
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": _text},
            optional={
                "description": _text,
                "parameters": st.dictionaries(_text, json_values, max_size=2),
                "strict": st.booleans(),
            },
        ),
    }
)
_requests = st.fixed_dictionaries(
    {"model": st.text(min_size=1, max_size=10), "messages": st.lists(_message, min_size=1, max_size=3)},
    optional={
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
        "tools": st.lists(_tool, max_size=2),
        "tool_choice": st.sampled_from(["auto", "none", "required"])
        | st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries({"name": _text})}),
        "parallel_tool_calls": st.booleans(),
        "response_format": st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object"])})
        | st.fixed_dictionaries(
            {
                "type": st.just("json_schema"),
                "json_schema": st.fixed_dictionaries({"name": _text}, optional={"schema": st.just({"type": "object"})}),
            }
        ),
        "n": st.integers(1, 4),
        "stop": _text | st.lists(_text, max_size=3),
        "max_tokens": st.integers(1, 10_000),
        "max_completion_tokens": st.integers(1, 10_000),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "logit_bias": st.dictionaries(st.integers(0, 99).map(str), st.integers(-100, 100), max_size=2),
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(0, 20),
        "seed": st.integers(),
        "user": _text,
        "reasoning_effort": st.sampled_from(["low", "medium", "high"]),
        "modalities": st.lists(st.sampled_from(["text", "audio"]), max_size=2),
        "metadata": st.dictionaries(_text, _text, max_size=2),
    },
)


# -- checks -----------------------------------------------------------------------------------------------------


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for name, index, quoted in _PATH_STEP.findall(path):
        steps.append(int(index) if index else json.loads(quoted) if quoted else name)
    return steps


def check(data: Any) -> ChatRequest | None:
    """Parse ``data``; check the contract of the outcome. Returns the request when it parsed."""
    try:
        request = parse_request(data)
    except InvalidRequest as exc:
        assert exc.message, "an InvalidRequest without a message"
        if not isinstance(data, dict):
            return None  # the root is at fault: an empty path is right
        assert exc.path, f"no path for a problem inside the body: {exc!r}"
        node: Any = data
        steps = _steps(exc.path)
        assert steps, f"unreadable path {exc.path!r}"
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            if isinstance(step, int):
                assert isinstance(node, list) and step < len(node), f"{exc.path!r} does not lead into the input"
            else:
                assert isinstance(node, dict), f"{exc.path!r} does not lead into the input"
                if step not in node:
                    assert last and "required" in exc.message, f"{exc.path!r} names a key the input lacks: {exc!r}"
                    return None
            node = node[step]
        return None
    assert isinstance(request, ChatRequest)
    if plain_request(data) is not NOT_PLAIN:  # it took the fast path: the general converter builds the same
        assert attrs_state(request) == attrs_state(openai_converter().structure(data, ChatRequest))
    return request


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality where 2.0 == 2 (the strict int hook accepts integral floats) and -0.0 == 0."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, abs_tol=0.0)
    return type(a) is type(b) and a == b


def check_round_trip(data: dict[str, Any]) -> None:
    request = check(data)
    if request is not None:
        assert _same_json(to_json(request), data), "a parsed request does not serialise back to its JSON"


# -- properties -------------------------------------------------------------------------------------------------


@fuzz()
@given(json_values)
def test_arbitrary_json_parses_or_raises_invalid_request(data: Any) -> None:
    check(data)


@fuzz()
@given(st.dictionaries(st.sampled_from(["model", "messages", "stream", "tools", "n", "stop", "x"]), json_values))
def test_arbitrary_values_under_known_keys(data: dict[str, Any]) -> None:
    check(data)


@fuzz()
@given(_requests)
def test_generated_requests_parse_and_round_trip(data: dict[str, Any]) -> None:
    assert check(data) is not None
    check_round_trip(data)


@fuzz(2)
@given(st.data())
def test_mutated_generated_requests(data: st.DataObject) -> None:
    original = data.draw(_requests)
    check_round_trip(data.draw(mutated([original])))


def test_recorded_requests_were_found() -> None:
    assert len(RECORDED_REQUESTS) >= 40
    # Plain text conversations take the fast path (so the differential check in check() is not vacuous).
    assert sum(plain_request(r) is not NOT_PLAIN for r in RECORDED_REQUESTS) >= 10


@fuzz(2)
@given(mutated(RECORDED_REQUESTS))
def test_mutated_recorded_requests(data: Any) -> None:
    if isinstance(data, dict):
        check_round_trip(data)
    else:
        check(data)
