"""polyrelay's own CPU per call, with no network: ``router.chat.completions.create`` over a stub HTTP session.

    python bench/own_cost.py            # best of 5 x 20,000 sequential calls
    python bench/own_cost.py --profile  # and a cProfile table of one more batch

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


async def _main(calls: int, profile: bool) -> None:
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
    await router.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    asyncio.run(_main(args.calls, args.profile))


if __name__ == "__main__":
    main()
