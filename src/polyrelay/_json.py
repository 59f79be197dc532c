"""JSON on the hot path: a compact encoder built once, and ``json.loads`` without its per-call wrapping.

``json.dumps(obj, separators=..., ensure_ascii=False)`` builds a new ``JSONEncoder`` on every call;
``json.loads`` type-checks, detects the encoding of bytes and runs two whitespace regexes around the scanner.
Both matter on a path that runs once per request or per stream chunk.
"""

from __future__ import annotations

import json
import json.scanner
from typing import Any, Final

__all__ = ["dumps_bytes", "loads_str"]

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_scan_once: Final = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed: a decoder is the context


def dumps_bytes(obj: Any) -> bytes:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()``."""
    return _ENCODER.encode(obj).encode()


def loads_str(text: str) -> Any:
    """``json.loads(text)``: the scanner alone when the text is exactly one JSON value (the common case), else
    ``json.loads`` itself (surrounding whitespace, or the error it raises)."""
    try:
        value, end = _scan_once(text, 0)
    except (StopIteration, ValueError, RecursionError):
        pass
    else:
        if end == len(text):
            return value
    return json.loads(text)
