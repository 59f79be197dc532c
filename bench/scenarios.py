"""Resilience scenarios with real time on loopback: each fault of the router issue, its outcome and timings.

    .venv/bin/python bench/scenarios.py

Uses the simulated OpenAI upstreams from polyrelay.testing (a primary and a healthy backup, plus a large-context
model for the context-window fallback). Timings are wall-clock on this machine; the test suite checks the same
behaviours deterministically (tests/router/), this script shows what they cost in real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from polyrelay import PolyrelayError, Router, StreamInterrupted
from polyrelay.testing import Fault, OpenAIUpstream, ScriptedReply

KEY = "bench-key"
ANSWER = "one two three four five six seven eight nine ten eleven twelve"
MSGS = [{"role": "user", "content": "count"}]


def _config(primary: OpenAIUpstream, backup: OpenAIUpstream, big: OpenAIUpstream, **policy: Any) -> dict[str, Any]:
    base_policy: dict[str, Any] = {
        "deadline": 10,
        "retry": {"max_attempts": 3, "backoff_initial": 0.2, "backoff_max": 2.0, "max_retry_after": 5},
        "timeouts": {"first_byte": 1.0, "idle": 0.5},
        "first_token_timeout": 0.5,
        "circuit": {"consecutive_failures": 3, "cooldown": 2.0, "min_calls": 1000},
    }
    for k, v in policy.items():
        if isinstance(v, dict) and isinstance(base_policy.get(k), dict):
            base_policy[k] = {**base_policy[k], **v}
        else:
            base_policy[k] = v
    return {
        "providers": {
            "primary": {"type": "openai", "base_url": primary.base_url, "api_key": KEY},
            "backup": {"type": "openai", "base_url": backup.base_url, "api_key": KEY},
            "big": {"type": "openai", "base_url": big.base_url, "api_key": KEY},
        },
        "models": {
            "m": {
                "targets": ["primary/gpt-4o", "backup/gpt-4o"],
                "context_window_fallbacks": ["long"],
                "content_policy_fallbacks": [],
            },
            "single": {"targets": ["primary/gpt-4o"]},
            "long": {"targets": ["big/gpt-4.1"]},
        },
        "policy": base_policy,
    }


def _arrivals(up: OpenAIUpstream, t0: float) -> str:
    return ", ".join(f"{r.received_at - t0:.2f}s" for r in up.requests) or "-"


async def _scenario(
    name: str, run: Callable[[Router, OpenAIUpstream, OpenAIUpstream, OpenAIUpstream], Awaitable[str]], **policy: Any
) -> None:
    reply = ScriptedReply(content=ANSWER, chunk_size=4)
    async with (
        OpenAIUpstream(api_key=KEY, reply=reply) as primary,
        OpenAIUpstream(api_key=KEY, reply=reply) as backup,
        OpenAIUpstream(api_key=KEY, reply=ScriptedReply(content="long context answer")) as big,
    ):
        router = Router.from_config(_config(primary, backup, big, **policy))
        async with router:
            t0 = time.perf_counter()
            try:
                outcome = await run(router, primary, backup, big)
            except PolyrelayError as exc:
                outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
            took = time.perf_counter() - t0
            print(f"| {name} | {outcome} | {took:.2f}s |")


def _who(resp: Any) -> str:
    attempts = " → ".join(
        f"{a.provider}:{a.outcome}{'(' + a.error_type + ')' if a.error_type else ''}" for a in resp.meta.attempts
    )
    return f"answered by {resp.meta.provider} [{attempts}]"


async def main() -> None:
    loop = asyncio.get_running_loop()
    print("| scenario | outcome | wall time |")
    print("|---|---|---|")

    async def s429_retry_after(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.status_code(429, retry_after=1), times=1)
        t0 = loop.time()
        resp = await r.chat.completions.create(model="m", messages=MSGS)
        gap = p.requests[1].received_at - p.requests[0].received_at
        return f"{_who(resp)}; gap between attempts {gap:.2f}s (Retry-After: 1); arrivals {_arrivals(p, t0)}"

    await _scenario("429 with Retry-After: 1", s429_retry_after)

    async def s429_persistent(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.status_code(429), times=None)
        t0 = loop.time()
        resp = await r.chat.completions.create(model="m", messages=MSGS)
        first_sec = sum(1 for q in p.requests if q.received_at - t0 < 1.0)
        return f"{_who(resp)}; {len(p.requests)} primary attempts, {first_sec} in the first second"

    await _scenario("429 persistent, no Retry-After", s429_persistent)

    async def s500_once(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.status_code(500), times=1)
        resp = await r.chat.completions.create(model="m", messages=MSGS)
        return _who(resp)

    await _scenario("500 once, then healthy", s500_once)

    async def s503(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.status_code(503), times=None)
        return _who(await r.chat.completions.create(model="m", messages=MSGS))

    await _scenario("503 persistent", s503)

    async def sreset(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.reset(), times=None)
        return _who(await r.chat.completions.create(model="m", messages=MSGS))

    await _scenario("connection reset before headers", sreset)

    async def snoresp(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.no_response(), times=None)
        return _who(await r.chat.completions.create(model="m", messages=MSGS)) + " (first_byte timeout 1 s)"

    await _scenario("no response at all", snoresp)

    async def snoresp_single(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.no_response(), times=None)
        await r.chat.completions.create(model="single", messages=MSGS, policy={"deadline": 3})
        return "unexpected success"

    await _scenario("no response, single target, deadline 3 s", snoresp_single)

    async def sslow_token(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.slow_first_token(3.0), times=None)
        stream = await r.chat.completions.create(model="m", messages=MSGS, stream=True)
        async with stream:
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return f"streamed {len(text)} chars from {stream.provider} (first_token_timeout 0.5 s)"

    await _scenario("slow first token (3 s)", sslow_token)

    async def scut(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.truncate(after_chunks=3), times=None)
        stream = await r.chat.completions.create(model="m", messages=MSGS, stream=True)
        got = ""
        try:
            async with stream:
                async for c in stream:
                    got += "".join(ch.delta.content or "" for ch in c.choices)
        except StreamInterrupted as exc:
            return f"StreamInterrupted after {len(got)} chars, partial={exc.partial!r}"
        return f"unexpected success: {got!r}"

    await _scenario("stream cut mid-answer (default)", scut)

    async def scut_continue(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.truncate(after_chunks=3), times=None)
        stream = await r.chat.completions.create(model="m", messages=MSGS, stream=True)
        chunks = []
        async with stream:
            async for c in stream:
                chunks.append(c)
        from polyrelay.stream import is_restart

        restarted = any(is_restart(c) for c in chunks)
        after = chunks[[i for i, c in enumerate(chunks) if is_restart(c)][-1] + 1 :] if restarted else chunks
        text = "".join(ch.delta.content or "" for c in after for ch in c.choices)
        return (
            f"whole answer {'(after a restart marker) ' if restarted else ''}"
            f"{'ok' if text == ANSWER else 'MISMATCH'} from {stream.provider}"
        )

    await _scenario("stream cut, stream_recovery=continue", scut_continue, stream_recovery="continue")

    async def sstall(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.stall(after_chunks=3, delay=30), times=None)
        stream = await r.chat.completions.create(model="m", messages=MSGS, stream=True)
        try:
            async with stream:
                async for _c in stream:
                    pass
        except StreamInterrupted as exc:
            return f"StreamInterrupted (idle timeout 0.5 s), partial={exc.partial!r}"
        return "unexpected success"

    await _scenario("stream stall mid-answer", sstall)

    async def smalformed(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.malformed(after_chunks=0), times=None)
        stream = await r.chat.completions.create(model="m", messages=MSGS, stream=True)
        async with stream:
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return f"{'whole answer' if text == ANSWER else 'MISMATCH'} from {stream.provider} (bad chunk before content)"

    await _scenario("malformed chunk", smalformed)

    async def snodone(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(Fault.no_done(), times=None)
        stream = await r.chat.completions.create(
            model="m", messages=MSGS, stream=True, stream_options={"include_usage": True}
        )
        async with stream:
            async for _c in stream:
                pass
        u = stream.usage
        return f"finalised by {stream.provider} with usage {u.total_tokens if u else None} tokens"

    await _scenario("stream without [DONE]", snodone)

    async def scontext(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(
            Fault.status_code(
                400,
                body={"error": {"message": "This model's maximum context length is 128000 tokens.",
                                "type": "invalid_request_error", "param": "messages",
                                "code": "context_length_exceeded"}},
            ),
            times=None,
        )  # fmt: skip
        resp = await r.chat.completions.create(model="m", messages=MSGS)
        return f"{_who(resp)}; backup untouched: {not b.requests}"

    await _scenario("context length exceeded", scontext)

    async def spolicy(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.add_fault(
            Fault.status_code(
                400,
                body={"error": {"message": "Your request was rejected by the safety system: violence.",
                                "type": "invalid_request_error", "param": None, "code": "content_policy_violation"}},
            ),
            times=None,
        )  # fmt: skip
        await r.chat.completions.create(model="m", messages=MSGS)
        return "unexpected success"

    await _scenario("content-policy rejection", spolicy)

    async def sdown(r: Router, p: OpenAIUpstream, b: OpenAIUpstream, g: OpenAIUpstream) -> str:
        p.set_down(True)
        served: dict[str, int] = {}
        t0 = loop.time()
        back_at = None
        while loop.time() - t0 < 9.0:
            if p.requests and loop.time() - t0 >= 5.0:
                p.set_down(False)
            resp = await r.chat.completions.create(model="m", messages=MSGS)
            assert resp.meta is not None
            served[resp.meta.provider] = served.get(resp.meta.provider, 0) + 1
            if back_at is None and loop.time() - t0 >= 5.0 and resp.meta.provider == "primary":
                back_at = loop.time() - t0
            await asyncio.sleep(0.1)
        down_hits = sum(1 for q in p.requests if q.received_at - t0 < 5.0)
        return (
            f"served {served}; primary got {down_hits} requests while down for 5 s (probes only); "
            f"back on primary at {back_at:.1f}s (recovered at 5.0 s, cooldown 2 s)"
            if back_at
            else f"served {served}; never back on primary"
        )

    await _scenario("primary down 5 s, then recovers", sdown)


if __name__ == "__main__":
    asyncio.run(main())
