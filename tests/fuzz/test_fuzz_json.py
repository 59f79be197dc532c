"""polyrelay's JSON parsing (orjson where its result is exactly json.loads', else json.loads) against json.loads.

For any text or bytes, ``loads_str`` / ``loads_bytes`` return what ``json.loads`` returns (same types, same values,
same key order; integers beyond 64 bits stay integers) or fail where it fails, with a ``ValueError`` or
``RecursionError`` as it does.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fuzz_support import fuzz
from hypothesis import given
from hypothesis import strategies as st

from polyrelay._json import loads_bytes, loads_str

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
