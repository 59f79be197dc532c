"""Model-name resolution, request validation, policy levels, provider instances and the result's meta."""

from __future__ import annotations

import sys
import types
from typing import Any

import attrs
import pytest

from polyrelay.errors import ConfigError, DeadlineExceeded, InvalidRequest, ServerError
from polyrelay.provider import ProviderSettings
from polyrelay.registry import ProviderRegistry
from polyrelay.router import Router
from polyrelay.testing._fake import FakeProvider, Reply, fake_spec, hang
from polyrelay.types.chat import Message
from polyrelay.types.completion import CallWarning, ResponseMeta, Usage

from .conftest import USER, Build, fake, route, t


async def test_exact_name_goes_to_its_target_and_meta_says_who_answered(make: Build) -> None:
    r = make([route("fast", t("a", "gpt-x"))])
    resp = await r.chat.completions.create(model="fast", messages=USER)
    call = fake(r, "a").calls[0]
    assert (call.ctx.model, call.ctx.requested_model, call.request.model) == ("gpt-x", "fast", "fast")
    assert resp.meta is not None
    assert (resp.meta.provider, resp.meta.model, resp.meta.requested_model) == ("a", "gpt-x", "fast")
    assert [a.outcome for a in resp.meta.attempts] == ["success"]
    assert resp.model == "gpt-x"  # the OpenAI JSON is the upstream's, untouched


async def test_alias_resolves_to_the_same_route(make: Build) -> None:
    r = make([route("gpt-4o", t("a", "gpt-4o-2024"), aliases=("4o", "omni"))])
    resp = await r.chat.completions.create(model="omni", messages=USER)
    assert resp.meta is not None and resp.meta.model == "gpt-4o-2024"
    assert resp.meta.requested_model == "omni"


async def test_glob_pattern_fills_the_model_template(make: Build) -> None:
    r = make([route("claude-*", t("b", "relay/{model}"), is_pattern=True)])
    await r.chat.completions.create(model="claude-3-5-sonnet", messages=USER)
    assert fake(r, "b").calls[0].ctx.model == "relay/claude-3-5-sonnet"


async def test_exact_name_wins_over_a_pattern(make: Build) -> None:
    r = make([route("claude-*", t("b", "{model}"), is_pattern=True), route("claude-opus", t("a", "opus"))])
    resp = await r.chat.completions.create(model="claude-opus", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "a"


async def test_direct_provider_model_keeps_slashes_in_the_model(make: Build) -> None:
    r = make([])
    resp = await r.chat.completions.create(model="c/openrouter/anthropic/claude-3", messages=USER)
    assert fake(r, "c").calls[0].ctx.model == "openrouter/anthropic/claude-3"
    assert resp.meta is not None and resp.meta.provider == "c"


async def test_unknown_model_is_an_invalid_request_with_a_suggestion(make: Build) -> None:
    r = make([route("fast", t("a", "x"))])
    with pytest.raises(InvalidRequest) as ei:
        await r.chat.completions.create(model="fsat", messages=USER)
    assert ei.value.path == "model"
    assert "did you mean 'fast'" in str(ei.value)
    with pytest.raises(InvalidRequest):
        await r.chat.completions.create(model="nope/x", messages=USER)  # not a configured provider


async def test_invalid_request_fails_before_any_network_call(make: Build) -> None:
    r = make([route("fast", t("a", "x"))])
    with pytest.raises(InvalidRequest) as ei:
        await r.chat.completions.create(model="fast", messages=[{"role": "robot", "content": "hi"}])
    assert ei.value.path.startswith("messages[0]")
    with pytest.raises(InvalidRequest) as ei:
        await r.chat.completions.create(model="fast", messages=USER, temperature="hot")
    assert ei.value.path == "temperature"
    with pytest.raises(InvalidRequest) as ei:
        await r.chat.completions.create(model="fast", messages=USER, stream="yes")  # type: ignore[call-overload]
    assert ei.value.path == "stream"
    assert fake(r, "a").calls == []


async def test_per_call_policy_is_validated_naming_the_key(make: Build) -> None:
    r = make([route("fast", t("a", "x"))])
    with pytest.raises(InvalidRequest) as ei:
        await r.chat.completions.create(model="fast", messages=USER, policy={"retry": {"max_atempts": 2}})
    assert ei.value.path == "policy.retry.max_atempts"
    assert "max_attempts" in str(ei.value)
    with pytest.raises(InvalidRequest) as ei:
        await r.chat.completions.create(model="fast", messages=USER, policy={"strategy": "fastest"})
    assert ei.value.path == "policy.strategy"
    with pytest.raises(InvalidRequest) as ei:
        await r.chat.completions.create(model="fast", messages=USER, timeout=-1)
    assert ei.value.path == "timeout"
    assert fake(r, "a").calls == []


@pytest.mark.parametrize(
    ("call_policy", "expected_attempts"),
    [(None, 3), ({"retry": {"max_attempts": 2}}, 2)],
)
async def test_policy_levels_merge_global_model_target_call(
    make: Build, call_policy: dict[str, Any] | None, expected_attempts: int
) -> None:
    r = make(
        [
            route(
                "fast",
                t("a", "x", policy={"retry": {"max_attempts": 3}}),
                policy={"retry": {"max_attempts": 4, "backoff_initial": 0.01}},
            )
        ],
        policy={"retry": {"max_attempts": 5}},
    )
    fake(r, "a").default = ServerError("boom", status=500)
    with pytest.raises(ServerError):
        await r.chat.completions.create(model="fast", messages=USER, policy=call_policy)
    assert len(fake(r, "a").calls) == expected_attempts


def test_config_errors_name_the_key() -> None:
    reg = ProviderRegistry([fake_spec()], entry_points=False)
    prov = {"a": ProviderSettings(name="a", type="fake")}
    with pytest.raises(ConfigError) as ei:
        Router(providers=prov, models=[route("m", t("aa", "x"))], registry=reg)
    assert ei.value.key == 'models."m".targets[0].provider'
    assert "did you mean 'a'" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        Router(providers=prov, models=[route("m", t("a", "x"), fallbacks=("mm",))], registry=reg)
    assert ei.value.key == 'models."m".fallbacks[0]'
    with pytest.raises(ConfigError) as ei:
        Router(providers=prov, models=[route("m", t("a", "x"), policy={"retry": {"max_attempts": 0}})], registry=reg)
    assert ei.value.key == 'models."m".policy.retry.max_attempts'
    with pytest.raises(ConfigError) as ei:
        Router(providers=prov, models=[route("m", t("a", "x")), route("n", t("a", "y"), aliases=("m",))], registry=reg)
    with pytest.raises(ConfigError) as ei:
        Router(providers={"a": ProviderSettings(name="a", type="fak")}, registry=reg)
    assert ei.value.key == "providers.a.type"
    assert "did you mean 'fake'" in str(ei.value)


async def test_provider_instance_is_created_once_lazily() -> None:
    made: list[str] = []
    base = fake_spec()

    def factory(settings: ProviderSettings, transport: object) -> FakeProvider:
        made.append(settings.name)
        return FakeProvider(settings, transport)

    spec = type(base)(name="fake", factory=factory)
    reg = ProviderRegistry([spec], entry_points=False)
    async with Router(
        providers={"a": ProviderSettings(name="a", type="fake")}, models=[route("m", t("a", "x"))], registry=reg
    ) as r:
        assert made == []
        await r.chat.completions.create(model="m", messages=USER)
        await r.chat.completions.create(model="m", messages=USER)
        assert made == ["a"]
        assert r.provider("a") is r.provider("a")
        assert len(fake(r, "a").calls) == 2


async def test_openai_sdk_style_arguments(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    await r.chat.completions.create(
        model="m",
        messages=[Message(role="system", content="Be brief."), {"role": "user", "content": "Hi"}],
        temperature=0.2,
        extra_body={"top_k": 3},
        extra_headers={"X-Trace": "t-1"},
    )
    call = fake(r, "a").calls[0]
    assert [m.role for m in call.request.messages] == ["system", "user"]
    assert call.request.temperature == 0.2
    assert call.request.extra["top_k"] == 3
    assert call.ctx.extra_headers == {"X-Trace": "t-1"}
    with pytest.raises(InvalidRequest) as ei:
        await r.chat.completions.create(model="m", messages=USER, extra_query={"a": "b"})
    assert ei.value.path == "extra_query"


async def test_timeout_keyword_is_the_calls_deadline(make: Build) -> None:
    r = make([route("m", t("a", "x"))], policy={"timeouts": {"first_byte": None}})
    fake(r, "a").default = hang()
    with pytest.raises(DeadlineExceeded):
        await r.chat.completions.create(model="m", messages=USER, timeout=0.05)
    call = fake(r, "a").calls[0]
    assert call.ctx.deadline is not None
    assert call.ctx.deadline - call.started_at <= 0.05
    assert call.released


async def test_meta_keeps_provider_warnings_and_request_id(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    warn = CallWarning(setting="seed", message="seed is not supported")
    usage = Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7)
    fake(r, "a").push(Reply(content="ok", warnings=(warn,), request_id="req-1", usage=usage))
    resp = await r.chat.completions.create(model="m", messages=USER, seed=3)
    assert resp.meta is not None
    assert resp.meta.warnings == (warn,)
    assert resp.meta.request_id == "req-1"
    assert resp.usage == usage


@pytest.mark.parametrize("fresh", [False, True])
async def test_the_callers_completion_is_a_copy_unless_the_provider_declares_fresh_results(
    make: Build, fresh: bool
) -> None:
    """Without ``fresh_results`` the provider's object is left as it was (a provider may hand one object out more
    than once); with it the router writes the attempts into the provider's new object instead of copying it."""
    r = make([route("m", t("a", "x"))])
    provider = fake(r, "a")
    returned: list[Any] = []
    chat = provider.chat

    async def recording_chat(request: Any, ctx: Any) -> Any:
        completion = await chat(request, ctx)
        meta = ResponseMeta(provider="a", model=ctx.model, requested_model=ctx.requested_model, request_id="req-1")
        returned.append(attrs.evolve(completion, meta=meta))
        return returned[-1]

    provider.chat = recording_chat  # type: ignore[method-assign]
    if fresh:
        provider.fresh_results = True  # type: ignore[attr-defined]
    provider.push(Reply(content="ok"))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None
    assert [(a.provider, a.outcome) for a in resp.meta.attempts] == [("a", "success")]
    assert (resp.meta.requested_model, resp.meta.request_id) == ("m", "req-1")
    assert (resp is returned[0]) is fresh
    if not fresh:
        assert returned[0].meta.attempts == ()
        assert resp == returned[0]


async def test_closed_router_refuses_calls(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    await r.aclose()
    with pytest.raises(RuntimeError):
        await r.chat.completions.create(model="m", messages=USER)


async def test_from_config_delegates_to_load_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    reg = ProviderRegistry([fake_spec()], entry_points=False)

    def load_config(source: Any, *, env: Any = None) -> Any:
        seen["source"], seen["env"] = source, env
        return types.SimpleNamespace(
            providers={"a": ProviderSettings(name="a", type="fake")},
            models=(route("m", t("a", "x")),),
            policy=r_policy,
            limits=None,
        )

    from polyrelay.policy import Policy

    r_policy = Policy().merged({"retry": {"max_attempts": 1}})
    module = types.ModuleType("polyrelay.config")
    module.load_config = load_config  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "polyrelay.config", module)
    async with Router.from_config({"any": "thing"}, env={"K": "v"}, registry=reg) as r:
        assert seen == {"source": {"any": "thing"}, "env": {"K": "v"}}
        assert r.policy.retry.max_attempts == 1
        resp = await r.chat.completions.create(model="m", messages=USER)
        assert resp.meta is not None and resp.meta.provider == "a"
