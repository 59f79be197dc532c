"""The Router: one OpenAI-style client over many providers, with routing, retries, failover and circuit breaking.

::

    async with Router(providers={...}, models=[ModelRoute(name="fast", targets=(...), fallbacks=("backup",))]) as r:
        resp = await r.chat.completions.create(model="fast", messages=[{"role": "user", "content": "Hi"}])
        resp.choices[0].message.content
        resp.meta.provider, resp.meta.model, resp.meta.attempts   # who answered, and how

**Model names** resolve, in order, to an exact :class:`~polyrelay.routes.ModelRoute` or one of its aliases, the first
glob ``pattern`` route that matches (``{model}`` in its targets becomes the requested name), or a direct
``"<provider>/<upstream model>"`` for a configured provider (the upstream model may contain ``/``). Anything else is
an :class:`~polyrelay.errors.InvalidRequest` naming ``model``, with a did-you-mean.

**Policy** (:class:`~polyrelay.policy.Policy`) is merged global → model → target → call (``policy=`` on
``create``), each level a partial mapping; the merged policies of configured routes are computed once, here. A few
values are read per call, from the requested model's level (plus the call's overrides): ``deadline``, ``strategy``
(per model of the chain) and ``stream_recovery``. Everything else is per target.

**Errors.** What is retried where, and what fails over, is tabled in :mod:`polyrelay._failover`. A call that only
reached one target raises that target's error (``RateLimited``, ``ServerError``, ...); one that failed over and
still failed raises :class:`~polyrelay.errors.AllTargetsFailed` (``.errors`` has every attempt's error); one that
ran out of budget raises :class:`~polyrelay.errors.DeadlineExceeded`. Context-window and content-policy errors are
raised as they are unless the model opts in to ``context_window_fallbacks`` / ``content_policy_fallbacks``.

**State.** The circuit breakers, in-flight counts, latency averages and provider instances all live on the Router
(no global state). The circuit state is behind :class:`~polyrelay.circuit.CircuitStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import random
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

import attrs

from polyrelay._failover import CallState, Candidate, Engine, ResolvedRoute, new_call
from polyrelay.circuit import CircuitBreaker, CircuitChange, CircuitSnapshot, CircuitStore, InMemoryCircuitStore
from polyrelay.errors import ConfigError, InvalidRequest, Secret
from polyrelay.hooks import CircuitEvent, HookSet, RouterHooks
from polyrelay.policy import Policy, did_you_mean
from polyrelay.provider import CallContext, ChatProvider, ProviderSettings
from polyrelay.registry import ProviderRegistry
from polyrelay.routes import ModelRoute, ResolvedTarget, Target
from polyrelay.stream import ChatStream
from polyrelay.transport import PoolLimits, Transport
from polyrelay.types._converters import parse_request, to_json
from polyrelay.types.chat import ChatRequest, Message
from polyrelay.types.completion import ChatCompletion

if TYPE_CHECKING:
    from polyrelay.bridge import MediaChatBridge, MediaChatStream
    from polyrelay.images import ImagesService
    from polyrelay.tasks import TaskService

__all__ = ["ChatCompletions", "ChatNamespace", "Router"]

# Resolved pattern / direct names are cached; a flood of distinct names must not grow memory without bound.
_MAX_CACHED_NAMES = 4096


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _route_key(route: ModelRoute) -> str:
    return f'models."{route.name}"'


class Router:
    """Routes OpenAI-format chat calls to providers (see the module docs). Use it as an async context manager, or
    call :meth:`aclose` when done."""

    def __init__(
        self,
        *,
        providers: Mapping[str, ProviderSettings],
        models: Sequence[ModelRoute] = (),
        policy: Policy = Policy(),  # noqa: B008 - a frozen value
        registry: ProviderRegistry | None = None,
        limits: PoolLimits | None = None,
        hooks: Sequence[RouterHooks] = (),
        circuit_store: CircuitStore | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """
        Args:
            providers: provider instances by name (``relay`` in ``relay/gpt-4o``).
            models: the routing table.
            policy: the global policy.
            registry: provider types; default: the installed ``polyrelay.providers`` entry points.
            limits: connection pool sizes of the shared HTTP session.
            hooks: metrics/tracing hooks (:class:`~polyrelay.hooks.RouterHooks`).
            circuit_store: where circuit state lives (default: in memory, private to this router).
            sleep: the sleep used between retries (tests inject a recorder).
            clock: monotonic seconds for deadlines, circuit cooldowns and latency (default: the loop's time).
            rng: randomness for backoff jitter and the weighted strategy (tests inject a seeded one).
        """
        self.policy = policy
        self._registry = registry if registry is not None else ProviderRegistry()
        self._providers: dict[str, ProviderSettings] = {}
        for name, settings in providers.items():
            if settings.name != name:
                raise ConfigError(f"the provider's settings are named {settings.name!r}", key=f"providers.{name}.name")
            if settings.type not in self._registry:
                raise ConfigError(
                    f"unknown provider type {settings.type!r}{did_you_mean(settings.type, self._registry.names())}",
                    key=f"{settings.config_path or f'providers.{name}'}.type",
                )
            self._providers[name] = settings
        self.transport = Transport(limits=limits)
        self._clock: Callable[[], float] = clock if clock is not None else _loop_time
        self._hooks = HookSet(hooks)
        self._breaker = CircuitBreaker(
            circuit_store if circuit_store is not None else InMemoryCircuitStore(), self._clock, self._circuit_changed
        )
        self._instances: dict[str, object] = {}
        self._chat_instances: dict[str, ChatProvider] = {}
        self._streams: weakref.WeakSet[ChatStream] = weakref.WeakSet()
        self._closed = False
        self._compile(models)
        self._engine = Engine(
            chain=self._chain,
            expand=self._expand,
            chat_provider=self._chat_provider,
            secrets=self._secrets,
            breaker=self._breaker,
            hooks=self._hooks,
            clock=self._clock,
            clock_is_loop=clock is None,
            sleep=sleep if sleep is not None else asyncio.sleep,
            rng=rng if rng is not None else random.Random(),
        )
        self._sleep = sleep
        self._rng = rng
        self._media: _Media | None = None
        self._media_models: dict[str, bool] = {}
        self.chat = ChatNamespace(self)
        """``router.chat.completions.create(...)``, like the openai SDK."""

    @classmethod
    def from_config(cls, source: Any, **kw: Any) -> Router:
        """Build a router from a config file, text or mapping (see :func:`polyrelay.config.load_config`).

        ``env=`` is passed to the loader (secrets from the environment); other keywords go to :class:`Router`.
        """
        env = kw.pop("env", None)
        config: Any = importlib.import_module("polyrelay.config")
        cfg = config.load_config(source) if env is None else config.load_config(source, env=env)
        kw.setdefault("limits", cfg.limits)
        return cls(providers=cfg.providers, models=cfg.models, policy=cfg.policy, **kw)

    # -- routing table -------------------------------------------------------------------------------------------
    def _compile(self, models: Sequence[ModelRoute]) -> None:
        self._routes: tuple[ModelRoute, ...] = tuple(models)
        self._by_name: dict[str, int] = {}
        self._patterns: list[int] = []
        self._route_policy: list[Policy] = []
        self._target_policy: list[tuple[Policy, ...]] = []
        self._resolved: dict[str, ResolvedRoute] = {}
        self._chains: dict[str, tuple[ResolvedRoute, ...]] = {}
        for idx, route in enumerate(self._routes):
            rkey = _route_key(route)
            if not route.targets:
                raise ConfigError("a model needs at least one target", key=f"{rkey}.targets")
            names = () if route.is_pattern else (route.name, *route.aliases)
            if route.is_pattern:
                self._patterns.append(idx)
            for n in names:
                if n in self._by_name:
                    other = self._routes[self._by_name[n]].name
                    raise ConfigError(f"the name {n!r} is already used by model {other!r}", key=rkey)
                self._by_name[n] = idx
            mp = self.policy.merged(route.policy, key=f"{rkey}.policy")
            self._route_policy.append(mp)
            tps = []
            for i, t in enumerate(route.targets):
                tkey = f"{rkey}.targets[{i}]"
                if t.provider not in self._providers:
                    raise ConfigError(
                        f"unknown provider {t.provider!r}{did_you_mean(t.provider, self._providers)}",
                        key=f"{tkey}.provider",
                    )
                if not t.model:
                    raise ConfigError("a target needs a model", key=f"{tkey}.model")
                if t.weight < 0 or not math.isfinite(t.weight):
                    raise ConfigError(f"must be a finite number >= 0, got {t.weight!r}", key=f"{tkey}.weight")
                tps.append(mp.merged(t.policy, key=f"{tkey}.policy"))
            self._target_policy.append(tuple(tps))
        for route in self._routes:
            for field in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
                for i, name in enumerate(getattr(route, field)):
                    if self._resolve(name) is None:
                        raise ConfigError(
                            f"unknown model {name!r}{did_you_mean(name, self.model_names())}",
                            key=f"{_route_key(route)}.{field}[{i}]",
                        )

    def model_names(self) -> list[str]:
        """Every configured public name and alias (patterns included as written)."""
        return [*self._by_name, *(self._routes[i].name for i in self._patterns)]

    def _build(self, idx: int, name: str) -> ResolvedRoute:
        route = self._routes[idx]
        targets: Sequence[Target] = route.targets_for(name) if route.is_pattern else route.targets
        cands = tuple(
            Candidate(
                key=f"{t.provider}/{t.model}",
                provider=t.provider,
                model=t.model,
                weight=t.weight,
                policy=p,
                route=name if route.is_pattern else route.name,
            )
            for t, p in zip(targets, self._target_policy[idx], strict=True)
        )
        return ResolvedRoute(
            name=name if route.is_pattern else route.name,
            candidates=cands,
            policy=self._route_policy[idx],
            fallbacks=route.fallbacks,
            context_window_fallbacks=route.context_window_fallbacks,
            content_policy_fallbacks=route.content_policy_fallbacks,
        )

    def _resolve(self, name: str) -> ResolvedRoute | None:
        r = self._resolved.get(name)
        if r is not None:
            return r
        idx = self._by_name.get(name)
        if idx is not None:
            r = self._build(idx, name)
        else:
            for pidx in self._patterns:
                if self._routes[pidx].matches(name):
                    r = self._build(pidx, name)
                    break
            else:
                provider, sep, model = name.partition("/")
                if not (sep and model and provider in self._providers):
                    return None
                r = ResolvedRoute(
                    name=name,
                    candidates=(
                        Candidate(key=name, provider=provider, model=model, weight=1.0, policy=self.policy, route=name),
                    ),
                    policy=self.policy,
                )
        if len(self._resolved) >= _MAX_CACHED_NAMES:
            self._resolved.clear()
            self._chains.clear()
        self._resolved[name] = r
        return r

    def _expand(self, names: tuple[str, ...], visited: set[str]) -> list[ResolvedRoute]:
        """The routes for ``names`` and, depth first, their fallbacks; each route once (cycles end here)."""
        out: list[ResolvedRoute] = []

        def visit(name: str) -> None:
            r = self._resolve(name)
            if r is None or r.name in visited:
                return
            visited.add(r.name)
            out.append(r)
            for fb in r.fallbacks:
                visit(fb)

        for n in names:
            visit(n)
        return out

    def _chain(self, name: str) -> tuple[ResolvedRoute, ...]:
        chain = self._chains.get(name)
        if chain is None:
            chain = self._chains[name] = tuple(self._expand((name,), set()))
        return chain

    # -- providers -----------------------------------------------------------------------------------------------
    def provider(self, name: str) -> object:
        """The provider instance ``name`` (created on first use: its spec's factory is called once)."""
        inst = self._instances.get(name)
        if inst is None:
            settings = self._providers.get(name)
            if settings is None:
                raise ConfigError(f"no provider named {name!r}{did_you_mean(name, self._providers)}", key="providers")
            spec = self._registry.get(settings.type)
            inst = self._instances[name] = spec.factory(settings, self.transport)
        return inst

    def _chat_provider(self, name: str) -> ChatProvider:
        p = self._chat_instances.get(name)
        if p is None:
            inst = self.provider(name)
            if not isinstance(inst, ChatProvider):
                settings = self._providers[name]
                raise ConfigError(
                    f"provider type {settings.type!r} does not implement chat completions",
                    key=settings.config_path or f"providers.{name}",
                )
            p = self._chat_instances[name] = inst
        return p

    def _secrets(self, name: str) -> tuple[Secret | str, ...]:
        settings = self._providers.get(name)
        return settings.secrets() if settings is not None else ()

    # -- health --------------------------------------------------------------------------------------------------
    def circuit(self, target: str) -> CircuitSnapshot:
        """The circuit state of ``target`` (``"provider/model"``)."""
        return self._breaker.snapshot(target)

    def in_flight(self, target: str) -> int:
        """Calls in flight to ``target`` right now (streams count until closed)."""
        return self._engine.in_flight(target)

    def _circuit_changed(self, change: CircuitChange) -> None:
        self._hooks.circuit(
            CircuitEvent(
                target=change.target,
                old=change.old,
                new=change.new,
                reason=change.reason,
                open_until=change.open_until,
            )
        )

    # -- calls ---------------------------------------------------------------------------------------------------
    def _prepare(
        self,
        request: ChatRequest,
        *,
        policy: Mapping[str, Any] | None = None,
        stream: bool = False,
        timeout: float | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> CallState:
        """Validate what does not need the network and set up one call (``InvalidRequest`` on any problem)."""
        if self._closed:
            raise RuntimeError("this Router is closed")
        route = self._resolve(request.model)
        if route is None:
            raise InvalidRequest(
                f"unknown model {request.model!r}{did_you_mean(request.model, self.model_names())}", path="model"
            )
        if policy is not None and not isinstance(policy, Mapping):
            raise InvalidRequest(f"must be a mapping of policy keys, got {type(policy).__name__}", path="policy")
        mp = route.policy.merged(policy, key="policy", user=True) if policy else route.policy
        budget = mp.deadline
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
                raise InvalidRequest(f"must be a positive number of seconds, got {timeout!r}", path="timeout")
            budget = float(timeout)
        headers: Mapping[str, str] = {}
        if extra_headers:
            if not isinstance(extra_headers, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in extra_headers.items()
            ):
                raise InvalidRequest("must map header names to string values", path="extra_headers")
            headers = dict(extra_headers)
        now = self._clock()
        return new_call(
            request.model,
            request,
            mp,
            policy or None,
            now + budget if budget is not None else math.inf,
            stream,
            headers,
            now,
        )

    async def complete(
        self,
        request: ChatRequest,
        *,
        policy: Mapping[str, Any] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the openai SDK's name for the call's budget
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatCompletion:
        """Serve an already-parsed request (non-streamed). ``create`` is this plus argument parsing."""
        call = self._prepare(request, policy=policy, timeout=timeout, extra_headers=extra_headers)
        engine = self._engine
        completion, cand = await engine.run(call, engine.chat_attempt_fn)
        return engine.finish_completion(call, cand, completion)

    def stream(
        self,
        request: ChatRequest,
        *,
        policy: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatStream:
        """Serve an already-parsed request as a stream (nothing is sent before the first iteration)."""
        call = self._prepare(request, policy=policy, stream=True, timeout=timeout, extra_headers=extra_headers)
        s = ChatStream(self._engine, call, on_close=self._streams.discard)
        self._streams.add(s)
        return s

    # -- media: tasks, images and the chat bridge -----------------------------------------------------------------
    def resolve_targets(self, model: str) -> list[ResolvedTarget]:
        """Every target ``model`` can use, in failover order (its targets, then its fallbacks' targets), each with
        its merged policy. :class:`~polyrelay.errors.InvalidRequest` naming ``model`` when it is unknown."""
        if self._resolve(model) is None:
            raise InvalidRequest(f"unknown model {model!r}{did_you_mean(model, self.model_names())}", path="model")
        return [
            ResolvedTarget(provider=c.provider, model=c.model, policy=c.policy, route=r.name)
            for r in self._chain(model)
            for c in r.candidates
        ]

    def _media_ctx(self, target: ResolvedTarget) -> CallContext:
        return CallContext(model=target.model, timeouts=target.policy.timeouts, requested_model=target.route)

    def _media_services(self) -> _Media:
        m = self._media
        if m is None:
            from polyrelay._media_guard import TargetGuard
            from polyrelay.bridge import MediaChatBridge
            from polyrelay.images import ImagesService
            from polyrelay.tasks import TaskService

            guard = TargetGuard(self._breaker, lambda key: self._engine.runtime(key).slots)
            tasks = TaskService(
                resolve=self.resolve_targets,
                get_provider=self.provider,
                make_ctx=self._media_ctx,
                sleep=self._sleep,
                rng=self._rng,
                resubmit_on_failure=self.policy.resubmit_failed_tasks,
                default_timeout=self.policy.task_timeout,
                guard=guard,
            )
            images = ImagesService(
                tasks,
                self.resolve_targets,
                self.provider,
                self._media_ctx,
                sleep=self._sleep,
                rng=self._rng,
                transport=self.transport,
                wait_timeout=self.policy.task_timeout,
                guard=guard,
            )
            bridge = MediaChatBridge(tasks, wait_timeout=self.policy.task_timeout)
            m = self._media = _Media(tasks=tasks, images=images, bridge=bridge)
        return m

    @property
    def tasks(self) -> TaskService:
        """``router.tasks``: create / get / wait / watch / cancel / action on generation tasks."""
        return self._media_services().tasks

    @property
    def images(self) -> ImagesService:
        """``router.images``: ``generate`` / ``edit`` / ``create_variation`` in the OpenAI images shape."""
        return self._media_services().images

    def is_media_model(self, model: str) -> bool:
        """True when ``model`` is served through generation tasks (the chat bridge answers it)."""
        known = self._media_models.get(model)
        if known is None:
            if self._resolve(model) is None:
                return False
            if len(self._media_models) >= _MAX_CACHED_NAMES:
                self._media_models.clear()
            known = self._media_models[model] = self._media_services().bridge.handles(model)
        return known

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close open streams, providers that hold resources, and the shared HTTP session. Idempotent."""
        self._closed = True
        for s in list(self._streams):
            # A stream being read by another task right now cannot be closed from here; closing the session below
            # drops its connection, and that task sees the error.
            with contextlib.suppress(RuntimeError):
                await s.aclose()
        for inst in self._instances.values():
            close = getattr(inst, "aclose", None)
            if close is not None:
                await close()
        await self.transport.aclose()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@attrs.frozen
class _Media:
    tasks: TaskService
    images: ImagesService
    bridge: MediaChatBridge


def _request_body(model: Any, messages: Any, stream: bool, params: dict[str, Any]) -> dict[str, Any]:
    if "extra_query" in params:
        raise InvalidRequest("is not supported (polyrelay sends no query parameters upstream)", path="extra_query")
    extra_body = params.pop("extra_body", None) if params else None
    if messages.__class__ is list:
        # The common case, without an ABC isinstance check: a list of dicts is used as it is (parsing copies).
        for m in messages:
            if m.__class__ is not dict and isinstance(m, Message):
                messages = [to_json(m) if isinstance(m, Message) else m for m in messages]
                break
    elif isinstance(messages, Sequence) and not isinstance(messages, str | bytes):
        messages = [to_json(m) if isinstance(m, Message) else m for m in messages]
    body: dict[str, Any] = {"model": model, "messages": messages, **params}
    if extra_body is not None:
        if not isinstance(extra_body, Mapping):
            raise InvalidRequest(f"must be a mapping, got {type(extra_body).__name__}", path="extra_body")
        body.update(extra_body)
    if stream:
        body["stream"] = True
    return body


class ChatCompletions:
    """``router.chat.completions``."""

    __slots__ = ("_router",)

    def __init__(self, router: Router) -> None:
        self._router = router

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any] | Message],
        stream: Literal[False] = False,
        policy: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> ChatCompletion: ...

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any] | Message],
        stream: Literal[True],
        policy: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> ChatStream | MediaChatStream: ...

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any] | Message],
        stream: bool,
        policy: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> ChatCompletion | ChatStream | MediaChatStream: ...

    async def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any] | Message],
        stream: bool = False,
        policy: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> ChatCompletion | ChatStream | MediaChatStream:
        """Create a chat completion, like ``openai.AsyncOpenAI().chat.completions.create``.

        Every OpenAI request parameter is accepted by keyword (unknown ones are forwarded to OpenAI-compatible
        upstreams), plus the openai SDK's ``extra_headers``, ``extra_body`` and ``timeout`` (the call's overall
        deadline in seconds), and ``policy``: per-call overrides of :class:`~polyrelay.policy.Policy` keys, e.g.
        ``policy={"retry": {"max_attempts": 1}, "first_token_timeout": 2}``.

        The arguments are validated before any network call (:class:`~polyrelay.errors.InvalidRequest` names the
        field). With ``stream=True`` the :class:`~polyrelay.stream.ChatStream` is returned at once; the call starts
        when it is first iterated.
        """
        if not isinstance(stream, bool):
            raise InvalidRequest(f"must be true or false, got {stream!r}", path="stream")
        timeout = extra_headers = None
        if params:
            timeout = params.pop("timeout", None)
            extra_headers = params.pop("extra_headers", None)
        request = parse_request(_request_body(model, messages, stream, params))
        router = self._router
        if router.is_media_model(request.model):
            # Image, video, music and workflow models answer through generation tasks (polyrelay.bridge documents the
            # format); retries and failover happen at task submission.
            from polyrelay.bridge import MediaChatStream

            bridge = router._media_services().bridge
            if stream:
                return MediaChatStream(bridge.stream(request))
            return await bridge.complete(request)
        if stream:
            return router.stream(request, policy=policy, timeout=timeout, extra_headers=extra_headers)
        # Router.complete inlined: one coroutine frame fewer between the caller and the socket.
        call = router._prepare(request, policy=policy, timeout=timeout, extra_headers=extra_headers)
        engine = router._engine
        completion, cand = await engine.run(call, engine.chat_attempt_fn)
        return engine.finish_completion(call, cand, completion)


class ChatNamespace:
    """``router.chat``."""

    __slots__ = ("completions",)

    def __init__(self, router: Router) -> None:
        self.completions = ChatCompletions(router)
