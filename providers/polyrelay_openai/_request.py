"""ChatRequest → the JSON body one OpenAI-compatible upstream accepts.

The body starts as the caller's request exactly (``to_json``: every OpenAI field and every unknown key in
``extra``, which is how callers send vendor parameters), with ``model`` replaced by the upstream model id. Then the
row's quirks are applied; each removed setting is reported as a :class:`CallWarning`, never silently.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from typing import Any

import attrs

from polyrelay.types._converters import to_json
from polyrelay.types.chat import ChatRequest
from polyrelay.types.completion import CallWarning
from polyrelay_openai._rows import REASONING_KEYS, CompatRow

__all__ = ["WireRequest", "alnum9_id", "build_request"]

_ALNUM = string.ascii_letters + string.digits
_ALNUM9 = re.compile(r"[A-Za-z0-9]{9}")


@attrs.define
class WireRequest:
    """A translated request: the body, the warnings for what was dropped, and the tool-call ids that were
    remapped (upstream id → the caller's id) so responses can be mapped back. Made once per attempt and only read:
    a plain (not frozen) class, whose ``__init__`` is plain stores."""

    body: dict[str, Any]
    warnings: tuple[CallWarning, ...]
    ids_back: Mapping[str, str]


def alnum9_id(tool_id: str) -> str:
    """A deterministic 9-character ``[A-Za-z0-9]`` id for ``tool_id`` (itself if it already is one).

    Deterministic so the same caller id maps to the same upstream id in every turn of a conversation, with no
    state kept between calls.
    """
    if _ALNUM9.fullmatch(tool_id):
        return tool_id
    n = int.from_bytes(hashlib.sha256(tool_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        n, r = divmod(n, len(_ALNUM))
        chars.append(_ALNUM[r])
    return "".join(chars)


def _warn(warnings: list[CallWarning], row: CompatRow, setting: str, why: str = "") -> None:
    message = f"{row.name} does not support {setting!r}; it was not sent" + (f" ({why})" if why else "")
    warnings.append(CallWarning(type="unsupported-setting", setting=setting, message=message))


def build_request(request: ChatRequest, row: CompatRow, *, model: str, stream: bool, base_url: str) -> WireRequest:
    """Translate ``request`` for ``row``. ``model`` is the upstream model id; ``stream`` the call's mode."""
    body: dict[str, Any] = to_json(request)
    body["model"] = model
    warnings: list[CallWarning] = []

    if stream:
        body["stream"] = True
        if not row.stream_options:
            # This upstream rejects the key; it sends usage on the finish chunk without being asked.
            body.pop("stream_options", None)
    else:
        if body.get("stream"):
            body["stream"] = False
        body.pop("stream_options", None)  # OpenAI rejects stream_options without stream

    for key in row.drop_params:
        if key in body:
            del body[key]
            _warn(warnings, row, key)
    if row.single_choice and body.get("n") not in (None, 1):
        del body["n"]
        _warn(warnings, row, "n", "only one choice per request")
    for old, new in row.rename_params.items() if row.rename_params else ():
        if old in body:
            value = body.pop(old)
            if new in body:
                _warn(warnings, row, old, f"{new!r} was given too and is sent instead")
            else:
                body[new] = value
    choice = body.get("tool_choice")
    if (
        choice is not None
        and row.tool_choices is not None
        and not (isinstance(choice, str) and choice in row.tool_choices)
    ):
        del body["tool_choice"]
        _warn(warnings, row, "tool_choice", f"accepted: {', '.join(row.tool_choices)}")
    fmt = body.get("response_format")
    if not row.json_schema and isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        body["response_format"] = {"type": "json_object"}
        warnings.append(
            CallWarning(
                setting="response_format",
                message=f"{row.name} does not support json_schema; sent as json_object (the schema is not enforced)",
            )
        )

    ids_back: dict[str, str] = {}
    messages = body.get("messages")
    if isinstance(messages, list):
        _messages(messages, row, warnings, ids_back, base_url)
    return WireRequest(body, tuple(warnings), ids_back)


def _messages(
    messages: list[Any], row: CompatRow, warnings: list[CallWarning], ids_back: dict[str, str], base_url: str
) -> None:
    named = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        if row.drop_message_name and "name" in message:
            del message["name"]
            named = True
        if message.get("role") == "assistant":
            _replay_reasoning(message, row)
        if row.tool_id_rule == "alnum9":
            _remap_ids(message, ids_back)
    if named:
        _warn(warnings, row, "messages[].name")
    if (
        messages
        and isinstance(messages[-1], dict)
        and messages[-1].get("role") == "assistant"
        and row.prefill_flag
        and row.prefill_supported(base_url)
    ):
        # A trailing assistant message is a prefill: tell the upstream to continue it rather than answer anew.
        messages[-1].setdefault(row.prefill_flag, True)


def _replay_reasoning(message: dict[str, Any], row: CompatRow) -> None:
    if row.replay == "keep":
        return
    value: str | None = None
    for key in ("reasoning_content", row.replay_field, *row.reasoning_fields):
        candidate = message.get(key)
        if isinstance(candidate, str):
            value = candidate
            break
    for key in REASONING_KEYS:
        if key not in row.replay_extra:
            message.pop(key, None)
    if row.replay == "tool_turns":
        if message.get("tool_calls"):
            # DeepSeek / Moonshot thinking mode: a tool-call turn must carry its reasoning back (400 otherwise).
            message[row.replay_field] = value if value is not None else ""
    elif row.replay == "always" and value is not None:
        message[row.replay_field] = value


def _remap_ids(message: dict[str, Any], ids_back: dict[str, str]) -> None:
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                new = alnum9_id(call["id"])
                if new != call["id"]:
                    ids_back[new] = call["id"]
                    call["id"] = new
    tid = message.get("tool_call_id")
    if isinstance(tid, str):
        new = alnum9_id(tid)
        if new != tid:
            ids_back[new] = tid
            message["tool_call_id"] = new
