"""The chat-provider contract, run against every installed provider type that declares the ``chat`` capability.

Each is configured exactly as a user would (``Router.from_config`` with ``type = "<name>"``), pointed at the
simulated upstream that speaks its wire protocol, and must: answer a basic chat; stream with a role prelude, content,
a finish reason and a usage chunk when asked; and map 401 / 429 (with Retry-After) / 500 onto the error tree.
A new chat provider type without a simulated upstream here fails the suite on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from polyrelay.errors import AuthenticationFailed, DeadlineExceeded, RateLimited, ServerError
from polyrelay.registry import ProviderRegistry
from polyrelay.router import Router
from polyrelay.testing import AnthropicUpstream, Fault, GeminiUpstream, OpenAIUpstream, ScriptedReply, SimulatedUpstream

REGISTRY = ProviderRegistry()
CHAT_TYPES = sorted(n for n in REGISTRY.names() if "chat" in REGISTRY.get(n).capabilities)
ANSWER = "The quick brown fox jumps over the lazy dog."

#: provider type → (simulated upstream class, upstream model id)
SIMULATORS: dict[str, tuple[type[SimulatedUpstream], str]] = {
    "anthropic": (AnthropicUpstream, "claude-sonnet-4-5"),
    "gemini": (GeminiUpstream, "gemini-2.5-flash"),
}


def _simulator(ptype: str) -> tuple[type[SimulatedUpstream], str]:
    if ptype in SIMULATORS:
        return SIMULATORS[ptype]
    if REGISTRY.get(ptype).factory.__module__.startswith("polyrelay_openai"):
        return OpenAIUpstream, "some-model"
    raise AssertionError(f"chat provider type {ptype!r} has no simulated upstream in the contract suite")


def test_every_builtin_chat_type_is_covered() -> None:
    assert {"openai", "anthropic", "gemini", "deepseek", "mistral", "openrouter"} <= set(CHAT_TYPES)
    for t in CHAT_TYPES:
        _simulator(t)


@pytest.fixture(params=CHAT_TYPES)
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Router, SimulatedUpstream, str]]:
    ptype: str = request.param
    cls, model = _simulator(ptype)
    kw: dict[str, Any] = {"reply": ScriptedReply(content=ANSWER, chunk_size=7)}
    async with cls(**kw) as upstream:
        cfg = {
            "providers": {"p": {"type": ptype, "base_url": upstream.base_url, "api_key": "test-key"}},
            "models": {"m": {"targets": [f"p/{model}"]}},
            "policy": {"retry": {"max_attempts": 1}, "deadline": 20},
        }
        async with Router.from_config(cfg) as router:
            yield router, upstream, ptype


#: Rows whose upstream takes no ``stream_options`` (its usage rides on the finish chunk, which the OpenAI simulator
#: only sends when asked): the usage chunk is checked in their recorded-traffic tests instead.
NO_STREAM_OPTIONS = frozenset({"mistral", "zhipu"})

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say the pangram."}]


async def test_basic_chat(setup: tuple[Router, SimulatedUpstream, str]) -> None:
    router, _up, ptype = setup
    resp = await router.chat.completions.create(model="m", messages=MSGS, max_tokens=100)
    assert resp.choices[0].message.content == ANSWER, ptype
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert resp.meta is not None and resp.meta.provider == "p"


async def test_stream(setup: tuple[Router, SimulatedUpstream, str]) -> None:
    router, _up, ptype = setup
    stream = await router.chat.completions.create(
        model="m", messages=MSGS, max_tokens=100, stream=True, stream_options={"include_usage": True}
    )
    chunks = []
    async with stream:
        async for c in stream:
            chunks.append(c)
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant", ptype
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == ANSWER
    assert [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason] == ["stop"]
    if ptype not in NO_STREAM_OPTIONS:
        assert chunks[-1].choices == () and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
        assert stream.usage is not None


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.status_code(401), AuthenticationFailed),
        (Fault.status_code(429, retry_after=2), RateLimited),
        (Fault.status_code(500), ServerError),
    ],
)
async def test_error_mapping(
    setup: tuple[Router, SimulatedUpstream, str], fault: Fault, expected: type[Exception]
) -> None:
    router, up, ptype = setup
    up.add_fault(fault, times=None)
    with pytest.raises(expected) as info:
        await router.chat.completions.create(model="m", messages=MSGS, max_tokens=100)
    err = info.value
    assert getattr(err, "provider", None) == "p", ptype
    if isinstance(err, RateLimited):
        assert err.retry_after == 2.0
    assert "test-key" not in str(err) and "test-key" not in repr(err)


async def test_a_hanging_upstream_ends_at_the_calls_deadline(setup: tuple[Router, SimulatedUpstream, str]) -> None:
    """Whether the provider enforces ctx.deadline itself (``enforces_deadline``) or the router's own timer does."""
    router, up, ptype = setup
    up.add_fault(Fault.no_response(), times=None)
    async with asyncio.timeout(10):  # a guard against a hang, not a timing assertion
        with pytest.raises(DeadlineExceeded) as info:
            await router.chat.completions.create(model="m", messages=MSGS, max_tokens=100, timeout=0.2)
    assert getattr(info.value, "provider", None) == "p", ptype
