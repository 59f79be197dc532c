"""Test helpers for polyrelay and for applications that use it.

- Simulated upstreams: real HTTP servers on 127.0.0.1 speaking each provider's wire protocol, with fault injection
  (:class:`Fault`: any status with ``Retry-After``, no response, slow first byte / first token, a stall mid-stream,
  malformed JSON, a truncated stream, a stream without ``[DONE]``, an in-band error event, a connection reset).
  ``async with OpenAIUpstream() as up: ... up.base_url``.
- :class:`FakeProvider`: a scriptable in-process provider (no HTTP) for unit tests of routing logic.

Names are resolved on first access so importing this module stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    # framework
    "Fault": "polyrelay.testing._faults",
    "FaultKind": "polyrelay.testing._faults",
    "SimulatedUpstream": "polyrelay.testing._server",
    "RecordedRequest": "polyrelay.testing._server",
    # chat upstreams
    "OpenAIUpstream": "polyrelay.testing._openai",
    "ScriptedReply": "polyrelay.testing._openai",
    "ScriptedToolCall": "polyrelay.testing._openai",
    "GeminiUpstream": "polyrelay.testing._gemini",
    "ScriptedBlock": "polyrelay.testing._gemini",
    "AnthropicUpstream": "polyrelay.testing._anthropic",
    "AnthropicReply": "polyrelay.testing._anthropic",
    "ReplyText": "polyrelay.testing._anthropic",
    "ReplyThinking": "polyrelay.testing._anthropic",
    "ReplyRedactedThinking": "polyrelay.testing._anthropic",
    "ReplyToolUse": "polyrelay.testing._anthropic",
    # media upstreams
    "OpenAIImagesUpstream": "polyrelay.testing._openai_images",
    "tiny_png": "polyrelay.testing._openai_images",
    "parse_form": "polyrelay.testing._openai_images",
    "FluxUpstream": "polyrelay.testing._flux",
    "FluxOutcome": "polyrelay.testing._flux",
    "ReplicateUpstream": "polyrelay.testing._replicate",
    "ReplicateOutcome": "polyrelay.testing._replicate",
    "IdeogramUpstream": "polyrelay.testing._ideogram",
    "MidjourneyUpstream": "polyrelay.testing._midjourney",
    "RunwayUpstream": "polyrelay.testing._runway",
    "RunwayRelayUpstream": "polyrelay.testing._runway_relay",
    "RunwayRelayOutcome": "polyrelay.testing._runway_relay",
    "LumaUpstream": "polyrelay.testing._luma",
    "LumaRelayUpstream": "polyrelay.testing._luma",
    "KlingUpstream": "polyrelay.testing._kling",
    "SunoNewApiUpstream": "polyrelay.testing._suno",
    "SunoApiUpstream": "polyrelay.testing._suno",
    "DifyUpstream": "polyrelay.testing._dify",
    "CozeUpstream": "polyrelay.testing._coze",
    # in-process fake
    "FakeProvider": "polyrelay.testing._fake",
    "fake_spec": "polyrelay.testing._fake",
    "Reply": "polyrelay.testing._fake",
    "FakeCall": "polyrelay.testing._fake",
    "Step": "polyrelay.testing._fake",
    "hang": "polyrelay.testing._fake",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'polyrelay.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
