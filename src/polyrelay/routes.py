"""Routing table values: what the config describes and the Router consumes (no logic beyond lookups).

A public model name resolves, in this order, to:

1. an exact :class:`ModelRoute` (``models."gpt-4o"``) or an alias of one;
2. the first :class:`ModelRoute` whose glob ``pattern`` matches (``claude-*``), with ``{model}`` in target models
   replaced by the requested name;
3. direct addressing ``"<provider>/<upstream model>"`` when ``<provider>`` is a configured provider instance (the
   upstream model may itself contain ``/``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["ModelRoute", "ResolvedTarget", "Target", "parse_target"]


@attrs.frozen(kw_only=True)
class Target:
    """One deployment of a model: a provider instance and the upstream model id."""

    provider: str
    model: str
    weight: float = 1.0
    policy: Mapping[str, Any] = attrs.field(factory=dict)
    """Partial :class:`~polyrelay.policy.Policy` overrides for this target."""

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"


def parse_target(spec: str) -> tuple[str, str]:
    """``"relay/gpt-4o"`` → ``("relay", "gpt-4o")``; ``"openrouter/anthropic/claude"`` splits at the first ``/``."""
    provider, sep, model = spec.partition("/")
    if not sep or not provider or not model:
        raise ValueError(f"a target must look like 'provider/model', got {spec!r}")
    return provider, model


@attrs.frozen(kw_only=True)
class ModelRoute:
    """How a public model name (or a glob pattern of names) is served."""

    name: str
    """The public name, or a glob pattern when ``is_pattern``."""
    targets: tuple[Target, ...]
    fallbacks: tuple[str, ...] = ()
    """Public model names tried, in order, after every target failed."""
    context_window_fallbacks: tuple[str, ...] = ()
    """Tried (only) when the error is a context-window error."""
    content_policy_fallbacks: tuple[str, ...] = ()
    """Tried (only) when the error is a content-policy rejection."""
    aliases: tuple[str, ...] = ()
    policy: Mapping[str, Any] = attrs.field(factory=dict)
    """Partial policy overrides for this model."""
    is_pattern: bool = False

    def matches(self, model: str) -> bool:
        if self.is_pattern:
            return fnmatch.fnmatchcase(model, self.name)
        return model == self.name or model in self.aliases

    def targets_for(self, model: str) -> tuple[Target, ...]:
        """Targets with ``{model}`` templates filled in with the requested name."""
        if not any("{model}" in t.model for t in self.targets):
            return self.targets
        return tuple(attrs.evolve(t, model=t.model.replace("{model}", model)) for t in self.targets)


@attrs.frozen(kw_only=True)
class ResolvedTarget:
    """A target after routing: the provider instance name, the upstream model and the effective policy
    (global ⊕ model ⊕ target overrides). Produced by ``Router.resolve_targets(model)`` in failover order."""

    provider: str
    model: str
    policy: Any
    """The merged :class:`~polyrelay.policy.Policy`."""
    route: str = ""
    """The public model name (or pattern) this target came from; differs from the requested name for fallbacks."""

    @property
    def key(self) -> str:
        """The deployment's key, as :attr:`Target.key` (circuit breaker and concurrency slots are kept by it)."""
        return f"{self.provider}/{self.model}"
