"""JSON on the hot path: every response body and every stream event is parsed here.

Parsing uses orjson, several times faster than ``json``, wherever its result is exactly what ``json.loads`` would
return; everything else goes to ``json.loads`` itself, so results and errors are the stdlib's:

- orjson rejects what ``json.loads`` accepts by default (``NaN``/``Infinity``, lone surrogate escapes, numbers
  beyond a double, a byte-order mark): on its error the stdlib parses (or raises) instead;
- orjson turns an integer beyond 64 bits into a float, where ``json.loads`` keeps the integer: text where a number
  may start with a run of 19 digits or more (the shortest that can leave int64) is never given to orjson. A number
  starts the text or follows ``:``, ``,``, ``[`` or whitespace, with an optional ``-``; digits inside a string
  (``"chatcmpl-1234..."``) follow something else and do not count, though a string like ``"a: 1234..."`` does
  (the stdlib then parses it: slower, never wrong);
- ``json.loads`` of a ``str`` refuses a byte-order mark that orjson would read: str input reaches orjson as
  UTF-8 bytes, where a BOM is an error for both.

Encoding uses orjson too, where its bytes parse to exactly what the stdlib's would: orjson writes ``NaN`` and
``Infinity`` as ``null`` (silently changing a value), so any output containing ``null`` is encoded again by the
stdlib's C encoder (built once: ``json.dumps`` with non-default arguments builds one per call), as is everything
orjson refuses (integers beyond 64 bits, non-string keys, lone surrogates, cycles, deep nesting) and every subclass
of a JSON type, dataclass and datetime (passed through to the stdlib, which has its own view of them). The text may
differ (``1e-05`` against ``1e-5``, escapes), the value never does. One difference is left: orjson writes an
``enum.Enum`` member as its value and a ``uuid.UUID`` as its string, where the stdlib raises ``TypeError``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

__all__ = ["dumps_bytes", "loads_bytes", "loads_str"]

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# The text mapped to a skeleton: digits to "0", what may precede a number (":", ",", "[" and whitespace) to ":",
# "-" kept, everything else to "x". A number that may leave int64 is then ":" or ":-" followed by 19 zeros, or the
# skeleton starts with one. A C-level translate plus substring searches; a regular expression costs far more.
_SKELETON: Final = bytes(
    ord("0") if 48 <= b <= 57 else ord(":") if chr(b) in ":,[ \t\r\n" else b if b == ord("-") else ord("x")
    for b in range(256)
)
_LONG_RUN: Final = b"0" * 19
_NUMBER_STARTS: Final = (b":" + _LONG_RUN, b":-" + _LONG_RUN)
_TEXT_STARTS: Final = (_LONG_RUN, b"-" + _LONG_RUN)
_orjson_loads: Final = orjson.loads
_orjson_dumps: Final = orjson.dumps
_memoryview: Final = memoryview
_OrjsonError: Final = orjson.JSONDecodeError
# Subclasses (str and int enums, dict and list subclasses), dataclasses and datetimes go to `default` (none given):
# orjson refuses them and the stdlib encodes them, or raises, as it always did.
_DUMPS_OPTIONS: Final = (
    orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
)
_NOT_EXACT: Final = object()


def dumps_bytes(obj: Any) -> bytes:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()``, or bytes that parse to the same
    value (see the module's docstring)."""
    try:
        out: bytes = _orjson_dumps(obj, option=_DUMPS_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        pass
    else:
        if b"null" not in out:  # NaN and Infinity would be there as null
            # orjson's bytes keep the buffer they were written in (4 KB for a small body, 64 KB for a 5 KB one);
            # a request body lives until its answer arrives, so it is copied into one of its own size.
            return bytes(_memoryview(out))
    return _ENCODER.encode(obj).encode()


def _exact_orjson(data: bytes) -> Any:
    """orjson's parse of ``data`` when it is exactly what ``json.loads`` returns, else :data:`_NOT_EXACT`."""
    skeleton = data.translate(_SKELETON)
    if _LONG_RUN not in skeleton or not (
        _NUMBER_STARTS[0] in skeleton or _NUMBER_STARTS[1] in skeleton or skeleton.startswith(_TEXT_STARTS)
    ):
        try:
            return _orjson_loads(data)
        except _OrjsonError:
            pass
    return _NOT_EXACT


def loads_bytes(data: bytes) -> Any:
    """``json.loads(data)``, faster."""
    value = _exact_orjson(data)
    return json.loads(data) if value is _NOT_EXACT else value


def loads_str(text: str) -> Any:
    """``json.loads(text)``, faster."""
    # As UTF-8 bytes for orjson: a lone surrogate makes them invalid (refused), and a BOM is refused by both.
    value = _exact_orjson(text.encode("utf-8", "surrogatepass"))
    return json.loads(text) if value is _NOT_EXACT else value
