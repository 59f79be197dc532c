"""polyrelay's JSON (orjson where its result is exactly the stdlib's, else the stdlib) against the stdlib.

For any text or bytes, ``loads_str`` / ``loads_bytes`` return what ``json.loads`` returns (same types, same values,
same key order; integers beyond 64 bits stay integers) or fail where it fails, with a ``ValueError`` or
``RecursionError`` as it does. For any value, ``dumps_bytes`` returns bytes that ``json.loads`` reads as it reads
``json.dumps``' text of the value (NaN stays NaN, big integers stay integers), or raises what ``json.dumps`` raises.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fuzz_support import fuzz
from hypothesis import given
from hypothesis import strategies as st

from polyrelay._json import dumps_bytes, loads_bytes, loads_str

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond int64 orjson would answer with a float
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)
_texts = st.builds(
    lambda v, ascii_, spaced: json.dumps(v, ensure_ascii=ascii_, separators=(", ", ": ") if spaced else (",", ":")),
    _values,
    st.booleans(),
    st.booleans(),
)


def _outcome(f: Any, arg: Any) -> tuple[str, Any]:
    try:
        value = f(arg)
    except (ValueError, RecursionError) as exc:
        return "error", ValueError if isinstance(exc, ValueError) else RecursionError
    # json.dumps shows types and values exactly (1 vs 1.0 vs true, -0.0, NaN, lone surrogates, key order).
    return "ok", json.dumps(value, ensure_ascii=True)


def _same(arg: Any, ours: Any) -> None:
    expected = _outcome(json.loads, arg)
    got = _outcome(ours, arg)
    assert got[0] == expected[0], (arg, got, expected)
    if expected[0] == "ok":
        assert got == expected, arg


@fuzz(2)
@given(_texts)
def test_json_texts_parse_as_json_loads_parses_them(text: str) -> None:
    _same(text, loads_str)
    _same(text.encode(), loads_bytes)


@fuzz(2)
@given(st.text(alphabet=st.sampled_from('{}[],:"\\ 0123456789.-+eEtrufalsnNIiy\ufeff\ud800'), max_size=40))
def test_json_like_garbage_fails_or_parses_like_json_loads(text: str) -> None:
    _same(text, loads_str)
    _same(text.encode("utf-8", "surrogatepass"), loads_bytes)


@fuzz()
@given(st.binary(max_size=64))
def test_arbitrary_bytes_fail_or_parse_like_json_loads(data: bytes) -> None:
    _same(data, loads_bytes)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 123456789012345678901234567890}',
        '{"id": "chatcmpl-12345678901234567890123", "n": 1}',
        '{"text": "a: 12345678901234567890123", "b": [1.5, -123456789012345678901234]}',
        "12345678901234567890123",
        "\t-12345678901234567890123",
        "[1,\n-99999999999999999999]",
        "[-9223372036854775809, 18446744073709551616]",
        "[1e400, NaN, -Infinity]",
        '"\\ud800"',
        "\ufeff{}",
        " [1] ",
        "[" * 2000 + "]" * 2000,
    ],
)
def test_the_cases_orjson_reads_differently(text: str) -> None:
    _same(text, loads_str)
    _same(text.encode("utf-8", "surrogatepass"), loads_bytes)


def test_big_integers_stay_integers() -> None:
    value = loads_bytes(b'{"seed": 123456789012345678901234567890, "n": 1}')
    assert value == {"seed": 123456789012345678901234567890, "n": 1}
    assert isinstance(value["seed"], int)
    assert math.isinf(loads_str("1e400"))


class _Str(str):
    pass


class _Int(int):
    pass


class _Dict(dict[str, Any]):
    pass


_encodable = st.recursive(
    _scalars | st.builds(_Str, st.text(max_size=5)) | st.builds(_Int, st.integers()),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
        | st.dictionaries(st.integers(-5, 5) | st.booleans() | st.none(), inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3).map(_Dict)
    ),
    max_leaves=30,
)


def _dump_outcome(f: Any, value: Any) -> tuple[str, Any]:
    try:
        data = f(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return "error", type(exc)
    # Parsed back and shown exactly (types, values, NaN, key order): the text itself may differ (1e-05 / 1e-5).
    return "ok", json.dumps(json.loads(data), ensure_ascii=True)


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@fuzz(2)
@given(_encodable)
def test_dumps_bytes_says_what_json_dumps_says(value: Any) -> None:
    assert _dump_outcome(dumps_bytes, value) == _dump_outcome(_stdlib_dumps, value)


@pytest.mark.parametrize(
    "value",
    [
        {"temperature": math.nan},
        [math.inf, -math.inf, 1e-05, 1e16, -0.0],
        {"seed": 2**64, "n": -(2**63) - 1},
        {1: "a", False: "b", None: "c", 2.5: "d"},
        {"content": "\ud800"},
        {"content": "the word null in a string"},
        _Dict(a=_Str("x"), b=_Int(3)),
        [[[]]] * 3,
    ],
)
def test_the_values_orjson_writes_differently(value: Any) -> None:
    assert _dump_outcome(dumps_bytes, value) == _dump_outcome(_stdlib_dumps, value)


def test_unencodable_values_raise_as_json_dumps_does() -> None:
    import datetime

    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for value in ({"when": datetime.datetime(2026, 1, 1)}, {"set": {1, 2}}, cyclic, {"b": b"x"}):
        assert _dump_outcome(dumps_bytes, value) == _dump_outcome(_stdlib_dumps, value)
        assert _dump_outcome(dumps_bytes, value)[0] == "error"


def test_deeper_than_orjson_goes_is_encoded_by_the_stdlib() -> None:
    value: Any = []
    for _ in range(400):  # orjson stops at 255 levels
        value = [value]
    assert json.loads(dumps_bytes(value)) == value


@pytest.mark.parametrize("size", [10, 200, 5000, 100_000])
def test_encoded_bodies_take_the_memory_of_their_length(size: int) -> None:
    """orjson's output bytes keep the buffer they were written in (64 KB for a 5 KB body): a request body is held
    until its answer arrives, so with many calls in flight that would multiply memory. dumps_bytes returns bytes
    of their own size."""
    import tracemalloc

    body = {"model": "m", "messages": [{"role": "user", "content": "x" * size}]}
    tracemalloc.start()
    try:
        kept = [dumps_bytes(body) for _ in range(50)]
        allocated, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert allocated / len(kept) < len(kept[0]) + 256
