"""``polyrelay demo``: an offline tour on the built-in simulated upstreams (real HTTP on 127.0.0.1, no keys).

It shows, in a few readable lines each: a routed chat, a streamed chat, a failover from a failing target to a
healthy one, a circuit opening and closing, and media tasks (an image made through failover with a progress bar, a
video with a progress bar, a song).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from polyrelay.hooks import CircuitEvent, FailoverEvent, RetryEvent, RouterHooks

__all__ = ["run_demo"]

_KEY = "demo-key-not-a-secret"


class _Out:
    def __init__(self, color: bool) -> None:
        self.color = color

    def _c(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def title(self, text: str) -> None:
        print("\n" + self._c("1", f"== {text}"))

    def line(self, text: str) -> None:
        print("   " + text)

    def ok(self, text: str) -> None:
        print("   " + self._c("32", "✓ ") + text)

    def warn(self, text: str) -> None:
        print("   " + self._c("33", "! ") + text)

    def bar(self, label: str, progress: float | None, status: str) -> None:
        p = 0.0 if progress is None else max(0.0, min(1.0, progress))
        filled = int(p * 24)
        text = f"   {label:<10} [{'#' * filled}{'.' * (24 - filled)}] {p * 100:5.1f}% {status:<10}"
        if sys.stdout.isatty():
            print("\r" + text, end="", flush=True)
        else:
            print(text)

    def end_bar(self) -> None:
        if sys.stdout.isatty():
            print()


class _Narrator(RouterHooks):
    """Prints the router's retry, failover and circuit events as they happen."""

    def __init__(self, out: _Out) -> None:
        self.out = out
        self.quiet = False

    def on_retry(self, event: RetryEvent) -> None:
        if not self.quiet:
            self.out.warn(
                f"{event.provider}/{event.model}: {type(event.error).__name__}, retrying in {event.sleep * 1000:.0f} ms"
            )

    def on_failover(self, event: FailoverEvent) -> None:
        if not self.quiet:
            why = type(event.error).__name__ if event.error is not None else event.reason
            self.out.warn(f"{event.provider}/{event.model}: failing over ({event.reason}: {why})")

    def on_circuit_change(self, event: CircuitEvent) -> None:
        self.out.warn(f"circuit {event.target}: {event.old} -> {event.new} ({event.reason})")


def _ms(t0: float) -> str:
    return f"{(time.perf_counter() - t0) * 1000:.0f} ms"


async def run_demo(*, color: bool = False) -> int:
    """Run the tour; returns the process exit status."""
    from polyrelay.router import Router
    from polyrelay.testing import Fault, OpenAIUpstream, ScriptedReply

    out = _Out(color)
    narrator = _Narrator(out)
    print("polyrelay demo: simulated upstreams on 127.0.0.1, real HTTP, no keys, nothing leaves this machine.")
    async with (
        OpenAIUpstream(api_key=_KEY, reply=ScriptedReply(content="Hello from the primary upstream!")) as primary,
        OpenAIUpstream(api_key=_KEY, reply=ScriptedReply(content="Hello from the backup upstream!")) as backup,
    ):
        config: dict[str, Any] = {
            "providers": {
                "primary": {"type": "openai", "base_url": primary.base_url, "api_key": _KEY},
                "backup": {"type": "openai", "base_url": backup.base_url, "api_key": _KEY},
            },
            "models": {"gpt-4o": {"targets": ["primary/gpt-4o", "backup/gpt-4o"]}},
            "policy": {
                "deadline": 10,
                "retry": {"max_attempts": 2, "backoff_initial": 0.05, "backoff_max": 0.2},
                "circuit": {"consecutive_failures": 3, "cooldown": 1.0, "min_calls": 100},
                "timeouts": {"first_byte": 2, "idle": 2},
            },
        }
        msgs = [{"role": "user", "content": "Say hello."}]
        async with Router.from_config(config, hooks=[narrator]) as router:
            out.title("1. A routed chat: model gpt-4o -> targets primary, backup")
            t0 = time.perf_counter()
            resp = await router.chat.completions.create(model="gpt-4o", messages=msgs)
            assert resp.meta is not None
            out.ok(
                f"{resp.choices[0].message.content!r}  answered by {resp.meta.provider}/{resp.meta.model} "
                f"in {_ms(t0)}; usage {resp.usage.total_tokens if resp.usage else '?'} tokens"
            )

            out.title("2. A streamed chat")
            stream = await router.chat.completions.create(
                model="gpt-4o", messages=msgs, stream=True, stream_options={"include_usage": True}
            )
            pieces: list[str] = []
            async with stream:
                async for chunk in stream:
                    for ch in chunk.choices:
                        if ch.delta.content:
                            pieces.append(ch.delta.content)
            out.line(" | ".join(pieces))
            usage = stream.usage
            out.ok(
                f"{len(pieces)} content chunks from {stream.provider}; usage on the final chunk: "
                f"{usage.total_tokens if usage else '?'} tokens"
            )

            out.title("3. Failover: the primary answers 503 Service Unavailable")
            primary.add_fault(Fault.status_code(503), times=None)
            t0 = time.perf_counter()
            resp = await router.chat.completions.create(model="gpt-4o", messages=msgs)
            assert resp.meta is not None
            out.ok(f"{resp.choices[0].message.content!r} from {resp.meta.provider} in {_ms(t0)}")
            for a in resp.meta.attempts:
                out.line(
                    f"attempt {a.provider}/{a.model}: {a.outcome}"
                    + (f" ({a.error_type}, status {a.status})" if a.error_type else "")
                    + f" {a.latency * 1000:.0f} ms"
                )

            out.title("4. Circuit breaking: the primary stays down, then recovers")
            narrator.quiet = True
            for _ in range(3):
                resp = await router.chat.completions.create(model="gpt-4o", messages=msgs)
            hits = len(primary.requests)
            for _ in range(5):
                resp = await router.chat.completions.create(model="gpt-4o", messages=msgs)
            assert resp.meta is not None
            out.ok(
                f"5 calls while open: served by {resp.meta.provider}, primary received "
                f"{len(primary.requests) - hits} requests (skipped, not probed each time)"
            )
            primary.clear_faults()
            out.line("primary recovers; waiting for the 1 s cooldown ...")
            await _sleep(1.1)
            resp = await router.chat.completions.create(model="gpt-4o", messages=msgs)
            assert resp.meta is not None
            out.ok(
                f"probe succeeded: answered by {resp.meta.provider}; circuit {router.circuit('primary/gpt-4o').state}"
            )
            narrator.quiet = False

    for section in _MEDIA_SECTIONS:
        await section(out)
    print("\ndone.")
    return 0


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def _media_demo(out: _Out) -> None:
    import asyncio

    from polyrelay.router import Router
    from polyrelay.testing import (
        Fault,
        FluxUpstream,
        ReplicateOutcome,
        ReplicateUpstream,
        RunwayUpstream,
        SunoNewApiUpstream,
    )

    async def quick_sleep(seconds: float) -> None:
        # The simulated upstreams advance one step per poll; the demo shortens the providers' real poll cadence
        # (BFL 0.5 s, Replicate 1 s, Runway 5 s, Suno 5 s) so the tour takes seconds.
        await asyncio.sleep(min(seconds, 0.12))

    async with (
        FluxUpstream(api_key=_KEY) as flux,
        ReplicateUpstream(api_key=_KEY) as replicate,
        RunwayUpstream(api_key=_KEY) as runway,
        SunoNewApiUpstream(api_key=_KEY) as suno,
    ):
        replicate.push_outcome(ReplicateOutcome(starting_polls=1, processing_polls=6))
        config: dict[str, Any] = {
            "providers": {
                "bfl": {"type": "flux", "base_url": flux.base_url, "api_key": _KEY},
                "replicate": {"type": "replicate", "base_url": replicate.base_url, "api_key": _KEY, "wait": 1},
                "runway": {"type": "runway", "base_url": runway.base_url, "api_key": _KEY},
                "suno": {"type": "suno", "base_url": suno.base_url, "api_key": _KEY},
            },
            "models": {
                "flux-pro": {"targets": ["bfl/flux-pro-1.1", "replicate/black-forest-labs/flux-1.1-pro"]},
                "video": {"targets": ["runway/gen4_turbo"]},
                "song": {"targets": ["suno/chirp-v4"]},
            },
            "policy": {"retry": {"max_attempts": 2, "backoff_initial": 0.05, "backoff_max": 0.1}},
        }
        async with Router.from_config(config, sleep=quick_sleep) as router:
            out.title("5. An image through failover: Flux answers 503, Replicate makes it")
            flux.add_fault(Fault.status_code(503), times=None)
            task = await router.tasks.create(model="flux-pro", prompt="a lighthouse at dusk, oil painting")
            flux_posts = sum(1 for r in flux.requests if r.method == "POST")
            out.warn(f"bfl/flux-pro-1.1: {flux_posts} submissions answered 503 (retried once, then failed over)")
            out.line(f"submitted to {task.provider}/{task.model}: {task.id[:40]}...")
            done = await router.tasks.wait(
                task.id, timeout=60, on_progress=lambda t: out.bar("image", t.progress, t.status)
            )
            out.end_bar()
            out.ok(f"{done.status}: {done.outputs[0].url if done.outputs else '(no output)'}")

            out.title("6. A video task (Runway image_to_video) with progress")
            task = await router.tasks.create(
                model="video",
                prompt="the lighthouse beam sweeps the sea",
                images=("https://example.com/lh.jpg",),
                aspect_ratio="16:9",
            )
            done = await router.tasks.wait(
                task.id, timeout=60, on_progress=lambda t: out.bar("video", t.progress, t.status)
            )
            out.end_bar()
            out.ok(f"{done.status}: [video]({done.outputs[0].url if done.outputs else '?'})")

            out.title("7. A song (Suno through a new-api relay), via the chat bridge")
            stream = await router.chat.completions.create(
                model="song", messages=[{"role": "user", "content": "a synthwave song about rain"}], stream=True
            )
            async with stream:
                async for chunk in stream:
                    for ch in chunk.choices:
                        text = (ch.delta.content or "").strip()
                        if text:
                            for line in text.splitlines():
                                if line.strip():
                                    out.line(line if len(line) < 100 else line[:97] + "...")


_MEDIA_SECTIONS: list[Callable[[_Out], Awaitable[None]]] = [_media_demo]
