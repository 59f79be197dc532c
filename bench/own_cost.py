"""polyrelay's own CPU per call, with no network: ``router.chat.completions.create`` over a stub HTTP session.

    python bench/own_cost.py            # best of 5 x 20,000 sequential calls
    python bench/own_cost.py --profile  # and a cProfile table of one more batch
    python bench/own_cost.py --counts   # and deterministic counts: bytecodes and Python calls per call (by
                                        # function, sys.settrace), tracked objects a call holds while it waits

The Router (one OpenAI target, default policy) runs as in production down to the transport, whose aiohttp session
is replaced by a stub that answers every request at once with a recorded-shape response (the benchmark fake
upstream's 649-byte completion and headers). What is left is exactly polyrelay's share of a call: argument
parsing and validation, routing, circuit and concurrency bookkeeping, the wire body and its encoding, the transport's
timeout and response handling, JSON parsing, the typed completion and its metadata. It needs no harness and moves
by a few percent between runs (the harness's loopback numbers move by 10-20 % on a busy machine), so it is the
number to watch while optimising; the harness (``bench/run.sh``) says what it means under load.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from polyrelay import Router
from polyrelay.errors import Secret
from polyrelay.provider import ProviderSettings
from polyrelay.routes import ModelRoute, Target

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello in a short sentence."},
]
BODY = (
    b'{"id":"chatcmpl-724300000000000dc259","object":"chat.completion","created":1795998203,"model":"gpt-4o",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 '
    b'tok9 tok10 tok11 tok12 tok13 tok14 tok15 ","refusal":null,"annotations":[]},"logprobs":null,'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":22,"completion_tokens":16,"total_tokens":38,'
    b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":'
    b'{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},'
    b'"service_tier":"default","system_fingerprint":"fp_fake0001"}'
)
HEADERS = CIMultiDictProxy(
    CIMultiDict(
        [
            ("x-request-id", "chatcmpl-724300000000000dc259"),
            ("openai-processing-ms", "0"),
            ("openai-version", "2020-10-01"),
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-limit-tokens", "30000000"),
            ("x-ratelimit-remaining-tokens", "29999900"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(BODY))),
        ]
    )
)


class _Content:
    """The part of aiohttp's StreamReader the transport reads: the whole body is already there."""

    __slots__ = ("_body",)

    def __init__(self) -> None:
        self._body = BODY

    def read_nowait(self, n: int = -1) -> bytes:
        body, self._body = self._body, b""
        return body

    def is_eof(self) -> bool:
        return not self._body

    at_eof = is_eof

    def exception(self) -> None:
        return None


class _Response:
    __slots__ = ("closed", "content")
    status = 200
    headers = HEADERS
    url = "http://upstream.invalid/v1/chat/completions"

    def __init__(self) -> None:
        self.content = _Content()
        self.closed = False

    def release(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


class _Session:
    closed = False

    async def request(self, method: str, url: Any, **kw: Any) -> _Response:
        assert isinstance(kw["data"], bytes)  # the encoded body, as aiohttp would get it
        return _Response()

    async def close(self) -> None:
        pass


def _count_bytecodes(run: Any) -> None:
    """Bytecodes executed and Python-level calls made per call, by function (``sys.settrace`` opcode events):
    exact and repeatable, unlike timings; the time per bytecode varies, so it guides rather than measures."""
    counts: Counter[str] = Counter()
    entered: Counter[str] = Counter()

    def tracer(frame: FrameType, event: str, _arg: Any) -> Any:
        frame.f_trace_opcodes = True
        code = frame.f_code
        key = f"{code.co_qualname} ({code.co_filename.rsplit('/', 1)[-1]})"
        if event == "call":
            entered[key] += 1  # a coroutine's resumption counts too
        elif event == "opcode":
            counts[key] += 1
        return tracer

    n = 10
    sys.settrace(tracer)
    try:
        run(n)
    finally:
        sys.settrace(None)
    total, entries = sum(counts.values()) / n, sum(entered.values()) / n
    print(f"bytecodes per call: {total:.0f}, Python function entries: {entries:.0f}")
    for key, value in counts.most_common(25):
        print(f"  {value / n:6.0f} {entered[key] / n:4.0f}x  {key}")


async def _in_flight_objects(router: Router, create: Any) -> int:
    """Tracked objects one call holds while it waits for its answer: what every garbage collection walks for each
    call in flight (the stub session parks 64 calls, then answers them)."""
    import gc

    gate = asyncio.get_running_loop().create_future()
    session: Any = router.transport._session
    answer: Callable[..., Awaitable[_Response]] = session.request

    async def parked(method: str, url: Any, **kw: Any) -> _Response:
        await gate
        return await answer(method, url, **kw)

    session.request = parked
    gc.collect()
    before = len(gc.get_objects())
    calls = [asyncio.ensure_future(create(model="bench", messages=MESSAGES)) for _ in range(64)]
    await asyncio.sleep(0)
    gc.collect()
    held = (len(gc.get_objects()) - before) // 64
    gate.set_result(None)
    await asyncio.gather(*calls)
    session.request = answer
    return held


async def _main(calls: int, profile: bool, counts: bool) -> None:
    settings = ProviderSettings(name="p", type="openai", base_url="http://upstream.invalid/v1", api_key=Secret("sk-x"))
    router = Router(
        providers={"p": settings}, models=[ModelRoute(name="bench", targets=(Target(provider="p", model="gpt-4o"),))]
    )
    router.transport._session = _Session()  # type: ignore[assignment]  # the stub stands in for aiohttp's session
    create = router.chat.completions.create
    for _ in range(2000):  # warm-up: lazy imports, provider creation, caches
        resp = await create(model="bench", messages=MESSAGES)
    assert resp.choices[0].message.content is not None and resp.meta is not None
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(calls):
            await create(model="bench", messages=MESSAGES)
        best = min(best, (time.perf_counter() - t) / calls * 1e6)
    print(f"polyrelay's own cost per call (Router + OpenAI provider, stub session): {best:.1f} us (best of 5)")
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            await create(model="bench", messages=MESSAGES)
        prof.disable()
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(30)
    if counts:

        def run(n: int) -> None:
            # Driven by hand, not by the event loop, so only the calls themselves are traced.
            for _ in range(n):
                coro = create(model="bench", messages=MESSAGES)
                try:
                    coro.send(None)
                except StopIteration:
                    continue
                raise RuntimeError("the stub session never waits: the call should have finished")

        _count_bytecodes(run)
        held = await _in_flight_objects(router, create)
        print(f"tracked objects a call holds while it waits (with its task and the stub's coroutine): {held}")
    await router.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--counts", action="store_true")
    args = ap.parse_args()
    asyncio.run(_main(args.calls, args.profile, args.counts))


if __name__ == "__main__":
    main()
