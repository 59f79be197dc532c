"""The provider contract, version 1. Plugins implement this; nothing here is an implementation.

A plugin is a distribution that declares an entry point in the ``polyrelay.providers`` group whose value is a
:class:`ProviderSpec` (``mypkg:SPEC``). Built-in providers register the same way. The spec names a provider
*type* (the ``type = "..."`` of a config entry) and a factory that builds an instance from
:class:`ProviderSettings` and the router's shared :class:`~polyrelay.transport.Transport`.

One protocol per capability; an instance implements the ones it supports and the router checks with
``isinstance``:

- :class:`ChatProvider`   — OpenAI chat completions, plain and streamed.
- :class:`ImageProvider`  — OpenAI images API (``images.generate``).
- :class:`TaskProvider`   — submit / poll / cancel media generation tasks;
  :class:`TaskActionProvider` adds follow-up actions (Midjourney buttons).

Providers *classify* failures into :mod:`polyrelay.errors` classes (with ``retryable``); they never retry, sleep
or fail over themselves. Providers never log secrets and never create their own HTTP sessions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from polyrelay.errors import Secret

if TYPE_CHECKING:
    from polyrelay.transport import Timeouts, Transport
    from polyrelay.types.chat import ChatRequest
    from polyrelay.types.completion import ChatCompletion, ChatCompletionChunk
    from polyrelay.types.media import ImageRequest, ImagesResponse, TaskRequest, TaskSnapshot

__all__ = [
    "API_VERSION",
    "ENFORCES_DEADLINE",
    "FRESH_RESULTS",
    "CallContext",
    "ChatProvider",
    "ImageProvider",
    "ModelCapabilities",
    "ProviderSettings",
    "ProviderSpec",
    "TaskActionProvider",
    "TaskProvider",
]

#: The contract version this polyrelay implements. A plugin whose spec declares another version is refused.
API_VERSION = 1


@attrs.frozen(kw_only=True)
class ModelCapabilities:
    """What a provider can do for one upstream model. The router uses it for stream recovery and validation."""

    accepts_prefill: bool = False
    """The upstream continues a trailing assistant message (assistant prefill)."""
    vision: bool = True
    tools: bool = True
    json_schema: bool = True
    context_window: int | None = None


@attrs.frozen(kw_only=True)
class ProviderSettings:
    """One configured provider instance (one ``[providers.NAME]`` table)."""

    name: str
    """Instance name, e.g. ``relay``; the first part of ``relay/gpt-4o``."""
    type: str
    """Provider type, e.g. ``openai``: the entry-point name."""
    base_url: str | None = None
    api_key: Secret | None = attrs.field(default=None, repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """Extra request headers (values may be secrets: never logged)."""
    options: Mapping[str, Any] = attrs.field(factory=dict, repr=lambda o: repr(sorted(o)))
    """Provider-specific keys of the table, validated by the provider's factory (raise ConfigError naming them).
    Only the keys are shown in the repr: values may be credentials (Kling ``secret_key``, Suno ``cookie``)."""
    config_path: str = ""
    """Dotted config path of this table (``providers.relay``), for error messages."""

    def secrets(self) -> tuple[Secret | str, ...]:
        """Every credential this instance holds, for :func:`polyrelay.errors.redact`."""
        out: list[Secret | str] = []
        if self.api_key:
            out.append(self.api_key)
        out.extend(v for v in self.headers.values() if len(v) >= 8)
        for k, v in self.options.items():
            secretish = isinstance(v, str) and len(v) >= 8 and any(w in k.lower() for w in _SECRET_WORDS)
            if isinstance(v, Secret) or secretish:
                out.append(v)
        return tuple(out)


_SECRET_WORDS = ("key", "secret", "token", "cookie", "password", "auth")


@attrs.frozen(kw_only=True, weakref_slot=False)
class CallContext:
    """Per-attempt context the router passes to a provider call."""

    model: str
    """The upstream model id (the part after ``provider/``, or the route's template result)."""
    timeouts: Timeouts
    requested_model: str = ""
    """The public model name the caller asked for."""
    deadline: float | None = None
    """``loop.time()`` by which the whole call must end; providers pass it to the transport."""
    extra_headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class ProviderSpec:
    """What a plugin's entry point exposes."""

    name: str
    """The provider type used in config (``type = "openai"``)."""
    factory: Callable[[ProviderSettings, Transport], object]
    """Builds an instance; raise :class:`~polyrelay.errors.ConfigError` naming ``settings.config_path`` keys."""
    api_version: int = API_VERSION
    capabilities: frozenset[str] = frozenset({"chat"})
    """Which protocols instances implement: any of ``chat``, ``images``, ``tasks``."""
    description: str = ""
    default_base_url: str | None = None
    api_key_env: str | None = None
    """Environment variable read when the config gives no ``api_key``."""
    option_keys: frozenset[str] = frozenset()
    """Provider-specific config keys it accepts (for did-you-mean checks before it is loaded)."""


@runtime_checkable
class ChatProvider(Protocol):
    """OpenAI chat completions."""

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatCompletion:
        """One non-streamed completion. ``request.model`` is the public name; use ``ctx.model`` upstream."""
        ...

    def stream_chat(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[ChatCompletionChunk]:
        """An async generator of OpenAI chunks. It must release its connection when closed early (``aclose``),
        raise :class:`~polyrelay.errors.InvalidUpstreamResponse` for unparsable events and
        :class:`~polyrelay.errors.StreamInterrupted` / timeouts when the stream breaks; it ends normally only on
        the upstream's end-of-stream marker (or a documented equivalent)."""
        ...

    def capabilities(self, model: str) -> ModelCapabilities: ...


#: Optional attribute of a :class:`ChatProvider` (not part of the protocol check): ``enforces_deadline = True``
#: declares that every wait of ``chat()`` goes through the transport with ``ctx.deadline`` (so it cannot outlive the
#: call's deadline). The router then arms no timer of its own around the attempt; without it, it does.
ENFORCES_DEADLINE = "enforces_deadline"

#: Optional attribute of a :class:`ChatProvider`: ``fresh_results = True`` declares that every
#: :class:`~polyrelay.types.completion.ChatCompletion` ``chat()`` returns is a new object, with a new
#: :class:`~polyrelay.types.completion.ResponseMeta`, that the provider neither keeps nor hands out again. The router
#: then writes the call's metadata (the attempts) into that object instead of copying the completion; without it,
#: the caller gets a copy and the provider's object is left as it is.
FRESH_RESULTS = "fresh_results"


@runtime_checkable
class ImageProvider(Protocol):
    """OpenAI images API (synchronous upstreams: the answer comes in the response)."""

    async def generate_images(self, request: ImageRequest, ctx: CallContext) -> ImagesResponse:
        """Generate (or edit / vary, per ``request.operation``) images. Unsupported operation → UnsupportedFeature."""
        ...


@runtime_checkable
class TaskProvider(Protocol):
    """Submit / poll / cancel generation tasks (image, video, audio, workflow)."""

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        """Start a task; validate the request first (InvalidRequest naming the field, before any network call)."""
        ...

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot: ...

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        """Cancel; providers whose upstream cannot cancel raise UnsupportedFeature."""
        ...

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        """Seconds to wait before the next poll (the upstream's documented cadence; the core adds jitter)."""
        ...


@runtime_checkable
class TaskActionProvider(Protocol):
    """Follow-up actions on a finished task (Midjourney upscale / variation / reroll / zoom / pan buttons)."""

    async def action(
        self, upstream_id: str, action: str, ctx: CallContext, params: Mapping[str, Any]
    ) -> TaskSnapshot: ...
