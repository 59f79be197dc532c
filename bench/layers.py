"""What costs what: client CPU per request, layer by layer, against the harness's fake upstream.

    /tmp/bench-venv/bin/python bench/layers.py                      # c=64, 30,000 requests, 3 repetitions
    /tmp/bench-venv/bin/python bench/layers.py --concurrency 1 --requests 6000

Each layer adds one piece of polyrelay on top of the previous one, and each runs in a fresh process pinned to CPU 0
(the fake upstream from ``../shared/bench`` on CPU 1, as the harness does), issuing the harness's two-message
request from ``--concurrency`` coroutines:

- ``raw``: the harness's raw aiohttp target (``session.post(json=...)``, ``resp.json()``);
- ``transport``: polyrelay's :class:`~polyrelay.transport.Transport` (shared session, first-byte watchdog,
  typed transport errors) returning the parsed JSON;
- ``provider``: the OpenAI provider's ``chat`` with request validation (``parse_request``): wire body, quirks,
  error classification, typed ``ChatCompletion``, response metadata;
- ``router``: ``router.chat.completions.create`` with one target: call state, attempt record, circuit breaker,
  concurrency slot, deadline, final metadata;
- ``adapter``: the benchmark adapter (two deployments of the model, as ``bench/run.sh`` measures).

Also reported per layer: the time the garbage collector ran, per request, and how many full (generation 2)
collections the measured run triggered.

Then, in this process with warm caches, the pieces' own cost (``timeit``). Needs the harness (``BENCH_DIR``,
default ``../shared/bench``) and a venv with polyrelay installed (see ``bench/run.sh``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
LAYERS = ("raw", "transport", "provider", "router", "adapter")


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {cpu})


# -- one layer, in its own process ------------------------------------------------------------------------------


async def _run_layer(layer: str, base: str, bench_dir: Path, concurrency: int, n: int) -> dict[str, float]:
    sys.path.insert(0, str(bench_dir))
    common = _load(bench_dir / "common.py", "common")
    messages = common.DEFAULT_MESSAGES
    cfg = common.ClientConfig(
        base_url=base,
        model="gpt-4o",
        api_key="sk-bench",
        fallback_base_url=base,
        max_retries=None,
        timeout_s=None,
        max_connections=2048,
    )
    closers: list[Any] = []
    if layer in ("raw", "adapter"):
        mod = _load(bench_dir / "targets" / "raw.py" if layer == "raw" else HERE / "polyrelay_adapter.py", "target")
        client = await mod.create(cfg)
        closers.append(client.aclose)

        async def one() -> Any:
            return await client.complete(messages)

    else:
        from polyrelay import Router
        from polyrelay.errors import Secret
        from polyrelay.provider import CallContext, ProviderSettings
        from polyrelay.routes import ModelRoute, Target
        from polyrelay.transport import PoolLimits, Timeouts, Transport
        from polyrelay.types._converters import parse_request

        settings = ProviderSettings(name="p", type="openai", base_url=base, api_key=Secret("sk-bench"))
        router = Router(
            providers={"p": settings},
            models=[ModelRoute(name="bench", targets=(Target(provider="p", model="gpt-4o"),))],
            limits=PoolLimits(max_connections=2048),
        )
        closers.append(router.aclose)
        if layer == "transport":
            transport = Transport(limits=PoolLimits(max_connections=2048))
            closers.append(transport.aclose)
            timeouts = Timeouts()
            url = base + "/chat/completions"
            headers = {"Authorization": "Bearer sk-bench"}

            async def one() -> Any:
                resp = await transport.request(
                    "POST",
                    url,
                    provider="p",
                    timeouts=timeouts,
                    headers=headers,
                    json_body={"model": "gpt-4o", "messages": messages},
                )
                data = await resp.json()
                resp.close()
                return data["choices"][0]["message"]["content"]

        elif layer == "provider":
            provider: Any = router.provider("p")
            ctx = CallContext(model="gpt-4o", requested_model="bench", timeouts=Timeouts())

            async def one() -> Any:
                request = parse_request({"model": "bench", "messages": messages})
                return (await provider.chat(request, ctx)).choices[0].message.content

        else:
            create = router.chat.completions.create

            async def one() -> Any:
                return (await create(model="bench", messages=messages)).choices[0].message.content

    async def worker(k: int) -> None:
        for _ in range(k):
            await one()

    await asyncio.gather(*(worker(20) for _ in range(concurrency)))  # warm-up: connections, lazy imports
    per = max(1, n // concurrency)
    gc_time = [0.0, 0.0]  # start of the running collection, total
    full = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_time[0] = time.perf_counter()
        else:
            gc_time[1] += time.perf_counter() - gc_time[0]
            full[0] += info["generation"] == 2

    gc.callbacks.append(on_gc)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(per) for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    gc.callbacks.remove(on_gc)
    for close in closers:
        await close()
    total = per * concurrency
    return {"cpu_us": 1e6 * cpu / total, "rps": total / wall, "gc_us": 1e6 * gc_time[1] / total, "full": full[0]}


# -- pieces, warm, in this process -------------------------------------------------------------------------------


def _pieces() -> list[tuple[str, float]]:
    sys.path.insert(0, str(HERE.parent / "providers"))
    from polyrelay._json import dumps_bytes, loads_bytes
    from polyrelay.types._converters import parse_request
    from polyrelay_openai._request import build_request
    from polyrelay_openai._response import normalize_completion
    from polyrelay_openai._rows import ROWS

    row = ROWS["openai"]
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello in a short sentence."},
    ]
    content = "".join(f"tok{i} " for i in range(16))
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 4,
            "completion_tokens": 16,
            "total_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_1",
    }
    request = parse_request({"model": "bench", "messages": messages})
    wire = build_request(request, row, model="gpt-4o", stream=False, base_url="http://x/v1").body
    raw_body = json.dumps(body).encode()

    def us(f: Any) -> float:
        f()
        return min(timeit.repeat(f, number=20_000, repeat=5)) / 20_000 * 1e6

    return [
        (
            "parse_request (validation, typed ChatRequest)",
            us(lambda: parse_request({"model": "b", "messages": messages})),
        ),
        (
            "build_request (wire body, quirks)",
            us(lambda: build_request(request, row, model="m", stream=False, base_url="http://x/v1")),
        ),
        ("JSON encode of the body", us(lambda: dumps_bytes(wire))),
        ("json.loads of the response body (what raw pays)", us(lambda: json.loads(raw_body))),
        ("polyrelay's parse of the same body (orjson where exact)", us(lambda: loads_bytes(raw_body))),
        (
            "normalize_completion (typed ChatCompletion)",
            us(lambda: normalize_completion(body, row, ids_back={}, provider="p")),
        ),
        (
            "create() over a stub provider (router bookkeeping + parse_request of 1 message)",
            asyncio.run(_router_only(body)),
        ),
    ]


async def _router_only(body: dict[str, Any]) -> float:
    """The router's own cost: ``create`` with a provider whose ``chat`` returns a prebuilt completion at once."""
    from polyrelay import Router
    from polyrelay.errors import Secret
    from polyrelay.provider import ProviderSettings
    from polyrelay.routes import ModelRoute, Target
    from polyrelay.types._converters import parse_completion

    settings = ProviderSettings(name="p", type="openai", base_url="http://127.0.0.1:9/v1", api_key=Secret("sk"))
    router = Router(
        providers={"p": settings}, models=[ModelRoute(name="m", targets=(Target(provider="p", model="x"),))]
    )
    completion = parse_completion(body)

    async def chat(_request: object, _ctx: object) -> object:
        return completion

    provider: Any = router.provider("p")
    provider.chat = chat
    messages = [{"role": "user", "content": "hi"}]
    create = router.chat.completions.create
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(20_000):
            await create(model="m", messages=messages)
        best = min(best, (time.perf_counter() - t) / 20_000 * 1e6)
    await router.aclose()
    return best


# -- driver -------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--requests", type=int, default=30_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--layers", default=",".join(LAYERS))
    ap.add_argument("--no-pieces", action="store_true", help="skip the warm per-piece timings")
    ap.add_argument("--bench-dir", default=os.environ.get("BENCH_DIR", str(HERE.parent.parent / "shared" / "bench")))
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_base", help=argparse.SUPPRESS)
    args = ap.parse_args()
    bench_dir = Path(args.bench_dir).resolve()

    if args._worker:
        _pin(0)
        result = asyncio.run(_run_layer(args._worker, args._base, bench_dir, args.concurrency, args.requests))
        print(json.dumps(result))
        return

    upstream = subprocess.Popen(
        [sys.executable, str(bench_dir / "fake_upstream.py"), "--port", "0", "--cpus", "1", "--max-lifetime-s", "900"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert upstream.stdout is not None
        line = upstream.stdout.readline()
        if not line.startswith("READY"):
            raise SystemExit(f"the fake upstream did not start: {line!r}")
        port = json.loads(line.split(" ", 1)[1])["port"]
        base = f"http://127.0.0.1:{port}/v1"
        layers = [x for x in args.layers.split(",") if x]
        samples: dict[str, list[dict[str, float]]] = {x: [] for x in layers}
        for _ in range(args.reps):  # interleaved, so machine noise spreads over every layer
            for layer in layers:
                cmd = [sys.executable, __file__, "--_worker", layer, "--_base", base, "--bench-dir", str(bench_dir)]
                cmd += ["--concurrency", str(args.concurrency), "--requests", str(args.requests)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                samples[layer].append(json.loads(out.strip().splitlines()[-1]))
    finally:
        upstream.terminate()
        upstream.wait()

    print(f"client CPU per request, concurrency {args.concurrency}, {args.requests} requests x {args.reps} runs")
    print(
        f"{'layer':<10} {'cpu us/req (min)':>17} {'median':>8} {'+ vs previous':>14} {'req/s (median)':>15}"
        f" {'gc us/req':>10} {'full gcs':>9}"
    )
    previous: float | None = None
    for layer in layers:
        cpu = [s["cpu_us"] for s in samples[layer]]
        rps = statistics.median(s["rps"] for s in samples[layer])
        best = min(cpu)
        delta = "" if previous is None or layer == "adapter" else f"{best - previous:+.1f}"
        gc_us = statistics.median(s["gc_us"] for s in samples[layer])
        full = statistics.median(s["full"] for s in samples[layer])
        print(
            f"{layer:<10} {best:>17.1f} {statistics.median(cpu):>8.1f} {delta:>14} {rps:>15,.0f}"
            f" {gc_us:>10.1f} {full:>9.0f}"
        )
        if layer != "adapter":
            previous = best
    if args.no_pieces:
        return
    print("\nwarm pieces (this process, best of 5), us per call")
    for name, value in _pieces():
        print(f"  {value:6.2f}  {name}")


if __name__ == "__main__":
    main()
