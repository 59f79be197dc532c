"""One OpenAI tool-calling conversation (two rounds) through the OpenAI, Gemini and Anthropic simulated upstreams:
the normalized results have the same shape; and a conversation started on Gemini fails over to Anthropic in the
middle, with its tool history translated (the Anthropic simulator rejects unpaired tool_use/tool_result)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from polyrelay.router import Router
from polyrelay.testing import (
    AnthropicUpstream,
    GeminiUpstream,
    OpenAIUpstream,
    ScriptedReply,
    ScriptedToolCall,
    SimulatedUpstream,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
CALL = ScriptedReply(content=None, tool_calls=(ScriptedToolCall("get_weather", '{"city": "Paris"}'),))
FINAL = ScriptedReply(content="It is sunny in Paris, 21 degrees.")
USER = {"role": "user", "content": "What's the weather in Paris?"}

KINDS: dict[str, tuple[type[SimulatedUpstream], str, str]] = {
    "openai": (OpenAIUpstream, "openai", "gpt-4o"),
    "gemini": (GeminiUpstream, "gemini", "gemini-2.5-flash"),
    "anthropic": (AnthropicUpstream, "anthropic", "claude-sonnet-4-5"),
}


async def _conversation(router: Router, model: str) -> tuple[Any, ...]:
    r1 = await router.chat.completions.create(model=model, messages=[USER], tools=TOOLS)
    msg1 = r1.choices[0].message
    assert msg1.tool_calls, model
    call = msg1.tool_calls[0]
    history: list[dict[str, Any]] = [
        USER,
        msg1.to_dict(),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21, "sky": "sunny"})},
    ]
    r2 = await router.chat.completions.create(model=model, messages=history, tools=TOOLS)
    return (
        r1.choices[0].finish_reason,
        call.type,
        call.function.name,
        json.loads(call.function.arguments),
        bool(call.id),
        r2.choices[0].finish_reason,
        r2.choices[0].message.content,
        r2.choices[0].message.tool_calls,
        r1.usage is not None and r2.usage is not None,
    )


@pytest.fixture
async def upstreams() -> AsyncIterator[dict[str, SimulatedUpstream]]:
    async with OpenAIUpstream() as o, GeminiUpstream() as g, AnthropicUpstream() as a:
        yield {"openai": o, "gemini": g, "anthropic": a}


def _config(ups: dict[str, SimulatedUpstream]) -> dict[str, Any]:
    return {
        "providers": {
            kind: {"type": ptype, "base_url": ups[kind].base_url, "api_key": "test-key"}
            for kind, (_cls, ptype, _m) in KINDS.items()
        },
        "models": {
            **{f"{kind}-model": {"targets": [f"{kind}/{m}"]} for kind, (_c, _p, m) in KINDS.items()},
            "assistant": {"targets": ["gemini/gemini-2.5-flash", "anthropic/claude-sonnet-4-5"]},
        },
        "policy": {"retry": {"max_attempts": 1}},
    }


async def test_same_conversation_same_shape_everywhere(upstreams: dict[str, SimulatedUpstream]) -> None:
    results = {}
    async with Router.from_config(_config(upstreams)) as router:
        for kind in KINDS:
            up: Any = upstreams[kind]
            up.push_reply(CALL)
            up.push_reply(FINAL)
            results[kind] = await _conversation(router, f"{kind}-model")
    expected = (
        "tool_calls", "function", "get_weather", {"city": "Paris"}, True,
        "stop", "It is sunny in Paris, 21 degrees.", None, True,
    )  # fmt: skip
    assert results == {kind: expected for kind in KINDS}
    # Each upstream really received the tool result in its own format.
    assert "functionResponse" in json.dumps(upstreams["gemini"].requests[-1].json)
    assert "tool_result" in json.dumps(upstreams["anthropic"].requests[-1].json)
    assert '"role":"tool"' in json.dumps(upstreams["openai"].requests[-1].json, separators=(",", ":"))


async def test_failover_from_gemini_to_anthropic_mid_conversation(upstreams: dict[str, SimulatedUpstream]) -> None:
    gemini: Any = upstreams["gemini"]
    anthropic: Any = upstreams["anthropic"]
    gemini.push_reply(CALL)
    anthropic.push_reply(FINAL)
    async with Router.from_config(_config(upstreams)) as router:
        r1 = await router.chat.completions.create(model="assistant", messages=[USER], tools=TOOLS)
        assert r1.meta is not None and r1.meta.provider == "gemini"
        msg1 = r1.choices[0].message
        assert msg1.tool_calls
        gemini.set_down(True)  # Gemini fails for the rest of the conversation
        history = [
            USER,
            msg1.to_dict(),
            {"role": "tool", "tool_call_id": msg1.tool_calls[0].id, "content": '{"temp_c": 21}'},
        ]
        r2 = await router.chat.completions.create(model="assistant", messages=history, tools=TOOLS)
    assert r2.meta is not None and r2.meta.provider == "anthropic"
    assert [a.outcome for a in r2.meta.attempts] == ["error", "success"]
    assert r2.choices[0].message.content == "It is sunny in Paris, 21 degrees."
    sent = anthropic.requests[-1].json
    tool_use = next(
        b for m in sent["messages"] for b in m["content"] if isinstance(b, dict) and b["type"] == "tool_use"
    )
    tool_result = next(
        b for m in sent["messages"] for b in m["content"] if isinstance(b, dict) and b["type"] == "tool_result"
    )
    assert tool_use["name"] == "get_weather" and tool_use["input"] == {"city": "Paris"}
    assert tool_result["tool_use_id"] == tool_use["id"]


async def test_fault_free_gemini_is_tried_first(upstreams: dict[str, SimulatedUpstream]) -> None:
    # Sanity for the failover test: with Gemini healthy the second round stays on Gemini.
    gemini: Any = upstreams["gemini"]
    gemini.push_reply(CALL)
    gemini.push_reply(FINAL)
    async with Router.from_config(_config(upstreams)) as router:
        out = await _conversation(router, "assistant")
    assert out[6] == "It is sunny in Paris, 21 degrees."
    assert not upstreams["anthropic"].requests
