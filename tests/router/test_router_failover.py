"""Failover: targets in order, fallback chains, the opt-in context-window and content-policy maps, final errors."""

from __future__ import annotations

import pytest

from polyrelay.errors import (
    AllTargetsFailed,
    ContentPolicyViolation,
    ContextWindowExceeded,
    Overloaded,
    ServerError,
    UnsupportedFeature,
)
from polyrelay.testing._fake import Reply
from polyrelay.types.completion import Usage

from .conftest import USER, Build, fake, route, t

ONE_TRY = {"retry": {"max_attempts": 1}}


def tried(resp_or_attempts: object) -> list[str]:
    attempts = getattr(getattr(resp_or_attempts, "meta", None), "attempts", resp_or_attempts)
    return [f"{a.provider}/{a.model}" for a in attempts]  # type: ignore[attr-defined]


async def test_targets_then_fallbacks_depth_first_each_once(make: Build) -> None:
    r = make(
        [
            route("m1", t("a", "x"), t("b", "x"), fallbacks=("m2", "m3")),
            route("m2", t("c", "y"), fallbacks=("m1", "m4")),  # the cycle back to m1 is ignored
            route("m3", t("d", "w")),
            route("m4", t("c", "z")),
        ],
        policy=ONE_TRY,
    )
    for p in ("a", "b"):
        fake(r, p).default = ServerError("down", status=500)
    fake(r, "c").push(ServerError("down", status=500), model="y")
    fake(r, "c").push(ServerError("down", status=500), model="z")
    resp = await r.chat.completions.create(model="m1", messages=USER)
    assert tried(resp) == ["a/x", "b/x", "c/y", "c/z", "d/w"]
    assert resp.meta is not None and (resp.meta.provider, resp.meta.model) == ("d", "w")


async def test_usage_and_meta_name_the_fallback_that_answered(make: Build) -> None:
    r = make([route("main", t("a", "big"), fallbacks=("spare",)), route("spare", t("b", "small"))], policy=ONE_TRY)
    fake(r, "a").push(Overloaded("busy", status=503))
    usage = Usage(prompt_tokens=11, completion_tokens=3, total_tokens=14)
    fake(r, "b").push(Reply(content="from the spare", usage=usage))
    resp = await r.chat.completions.create(model="main", messages=USER)
    assert resp.meta is not None
    assert (resp.meta.provider, resp.meta.model, resp.meta.requested_model) == ("b", "small", "main")
    assert resp.usage == usage  # only the attempt that answered
    first = resp.meta.attempts[0]
    assert (first.outcome, first.error_type, first.status) == ("error", "Overloaded", 503)
    assert first.latency >= 0


async def test_a_target_shared_by_two_models_is_tried_once(make: Build) -> None:
    r = make([route("m", t("a", "x"), fallbacks=("n",)), route("n", t("a", "x"), t("b", "y"))], policy=ONE_TRY)
    fake(r, "a").default = ServerError("down", status=500)
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert tried(resp) == ["a/x", "b/y"]


async def test_all_targets_failed_lists_every_error_in_order(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy=ONE_TRY)
    fake(r, "a").default = ServerError("a down", status=500)
    fake(r, "b").default = Overloaded("b busy", status=503)
    with pytest.raises(AllTargetsFailed) as ei:
        await r.chat.completions.create(model="m", messages=USER)
    assert [type(e) for e in ei.value.errors] == [ServerError, Overloaded]
    assert ei.value.model == "m"


async def test_a_single_target_raises_its_own_error(make: Build) -> None:
    r = make([route("m", t("a", "x"))], policy=ONE_TRY)
    fake(r, "a").default = Overloaded("busy", status=503)
    with pytest.raises(Overloaded):
        await r.chat.completions.create(model="m", messages=USER)


async def test_context_window_error_goes_only_to_the_context_fallback(make: Build) -> None:
    r = make(
        [
            route("small", t("a", "s1"), t("b", "s2"), fallbacks=("other",), context_window_fallbacks=("large",)),
            route("other", t("c", "o")),
            route("large", t("d", "l")),
        ]
    )
    fake(r, "a").push(ContextWindowExceeded("too long", status=400, code="context_length_exceeded"))
    resp = await r.chat.completions.create(model="small", messages=USER)
    assert tried(resp) == ["a/s1", "d/l"]
    assert fake(r, "b").calls == [] and fake(r, "c").calls == []
    assert len(fake(r, "a").calls) == 1  # never retried on the same model


async def test_context_window_error_without_the_opt_in_is_raised_at_once(make: Build) -> None:
    r = make([route("small", t("a", "s1"), t("b", "s2"), fallbacks=("other",)), route("other", t("c", "o"))])
    fake(r, "a").push(ContextWindowExceeded("too long", status=400, code="context_length_exceeded"))
    with pytest.raises(ContextWindowExceeded):
        await r.chat.completions.create(model="small", messages=USER)
    assert fake(r, "b").calls == [] and fake(r, "c").calls == []


async def test_context_fallbacks_chain_on_through_larger_models(make: Build) -> None:
    r = make(
        [
            route("s", t("a", "8k"), context_window_fallbacks=("m",)),
            route("m", t("b", "32k"), context_window_fallbacks=("l", "s")),  # "s" is already visited
            route("l", t("c", "128k")),
        ]
    )
    fake(r, "a").push(ContextWindowExceeded("too long", status=400))
    fake(r, "b").push(ContextWindowExceeded("still too long", status=400))
    resp = await r.chat.completions.create(model="s", messages=USER)
    assert tried(resp) == ["a/8k", "b/32k", "c/128k"]


async def test_content_policy_fallback_is_opt_in(make: Build) -> None:
    r = make(
        [
            route("strict", t("a", "x"), t("b", "y"), content_policy_fallbacks=("lenient",)),
            route("lenient", t("c", "z")),
        ]
    )
    fake(r, "a").push(ContentPolicyViolation("flagged", status=400))
    resp = await r.chat.completions.create(model="strict", messages=USER)
    assert tried(resp) == ["a/x", "c/z"]
    assert fake(r, "b").calls == []


async def test_unsupported_feature_moves_to_a_target_that_can(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))])
    fake(r, "a").push(UnsupportedFeature("audio input", path="messages[0].content[1]", provider="a"))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "b"


async def test_unsupported_everywhere_is_the_callers_error(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))])
    for p in ("a", "b"):
        fake(r, p).push(UnsupportedFeature("audio input", path="messages[0].content[1]", provider=p))
    with pytest.raises(UnsupportedFeature) as ei:
        await r.chat.completions.create(model="m", messages=USER)
    assert ei.value.path == "messages[0].content[1]"
