"""Streamed chunks of OpenAI-compatible upstreams → OpenAI-shaped :class:`ChatCompletionChunk` objects.

:class:`StreamAssembler` is pure (no I/O): the provider feeds it each server-sent event and yields what it returns.
What it guarantees downstream, whatever the upstream did (wire-chat.md §1.7 "Defensive accumulation"):

- the first chunk of each choice carries ``delta.role = "assistant"``, later ones no role (Zhipu and OpenRouter
  repeat it on every delta);
- tool calls are numbered densely from 0 per choice in order of first appearance, whatever the upstream's
  ``index`` (Anthropic's compat layer starts at 1; Mistral sends none: each call is the next one; some servers
  reuse index 0 for every call, told apart by a new id); the first fragment of a call carries index, id,
  ``type = "function"``, name and arguments; later ones index and arguments only; a known id or name is never
  overwritten by the ``""`` some vendors repeat;
- usage is the last non-null one seen anywhere (top level, the finish chunk, Moonshot's ``choices[0].usage``).
  When the caller asked for it (``include_usage``) it is taken off the chunks and sent once, in a final chunk
  with ``choices == []``, as OpenAI does;
- in-band errors (``data: {"error": ...}``, ``{"object": "error"}``, ``event: error``, OpenRouter's
  ``finish_reason: "error"``) raise the classified upstream error; unparsable events raise
  :class:`InvalidUpstreamResponse`.

The stream is complete (:attr:`StreamAssembler.complete`) once every expected choice has a finish reason and the
usage arrived if it was asked for; the provider stops reading then instead of waiting for ``[DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from polyrelay.errors import InvalidUpstreamResponse, Secret, StreamInterrupted, UpstreamError
from polyrelay.serde import json_kind
from polyrelay.sse import ServerSentEvent
from polyrelay.types._converters import parse_chunk, text_delta_chunk
from polyrelay.types.completion import ChatCompletionChunk
from polyrelay_openai._errors import inband_error, is_inband_error
from polyrelay_openai._response import (
    ERROR_FINISH_REASONS,
    finish_error,
    map_finish_reason,
    new_tool_id,
    normalize_message,
    normalize_usage,
)
from polyrelay_openai._rows import CompatRow

__all__ = ["StreamAssembler"]

_DONE = "[DONE]"
# Top-level chunk keys that carry no information of their own: a choices-less chunk with only these is dropped.
_ENVELOPE_KEYS = frozenset(
    {
        "id",
        "object",
        "created",
        "model",
        "system_fingerprint",
        "service_tier",
        "obfuscation",
        "choices",
        "usage",
        "provider",
        "x_groq",
    }
)
_TOOL_KEYS = frozenset({"index", "id", "type", "function"})


@attrs.define
class _ToolSlot:
    index: int
    id: str
    upstream_id: str | None
    name: str


@attrs.define
class _ChoiceState:
    role_sent: bool = False
    finished: bool = False
    slots: list[_ToolSlot] = attrs.field(factory=list)
    by_upstream_index: dict[int, _ToolSlot] = attrs.field(factory=dict)
    text: list[str] = attrs.field(factory=list)
    reasoning: list[str] = attrs.field(factory=list)


def _invalid(message: str, provider: str, body: Any = None) -> InvalidUpstreamResponse:
    return InvalidUpstreamResponse(f"invalid stream event: {message}", provider=provider, body=body)


class StreamAssembler:
    """State of one streamed response (see the module docstring)."""

    def __init__(
        self,
        row: CompatRow,
        *,
        provider: str,
        include_usage: bool,
        expected_choices: int = 1,
        ids_back: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        model: str | None = None,
        secrets: Iterable[Secret | str] = (),
    ) -> None:
        self.row = row
        self.provider = provider
        self.include_usage = include_usage
        self.expected_choices = max(1, expected_choices)
        self.ids_back: Mapping[str, str] = ids_back or {}
        self.headers = headers
        self.request_id = request_id
        self.model = model
        self.secrets = tuple(secrets)
        self.done = False
        """``[DONE]`` was received."""
        self.usage: dict[str, Any] | None = None
        self._choices: dict[int, _ChoiceState] = {}
        self._finished_choices = 0  # kept as a count: `complete` is asked after every event
        self._envelope: dict[str, Any] = {}

    # -- state -------------------------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """Every expected choice has its finish reason."""
        return self._finished_choices >= self.expected_choices

    @property
    def complete(self) -> bool:
        """Nothing more is needed from the upstream: finished, and the usage arrived if it was asked for."""
        return self.finished and (not self.include_usage or self.usage is not None)

    @property
    def partial_text(self) -> str:
        state = self._choices.get(0)
        return "".join(state.text) if state else ""

    @property
    def partial_reasoning(self) -> str:
        state = self._choices.get(0)
        return "".join(state.reasoning) if state else ""

    # -- input -------------------------------------------------------------------------------------------------
    def feed(self, event: ServerSentEvent) -> list[ChatCompletionChunk]:
        """The chunks one event produces (often one, none for keep-alives and absorbed usage chunks)."""
        text = event.data
        if text[:1] != "{" and text.strip() == _DONE:  # a chunk's JSON starts with "{": no stripped copy of it
            self.done = True
            return []
        try:
            data = event.json()
        except InvalidUpstreamResponse as exc:
            raise InvalidUpstreamResponse(exc.message, provider=self.provider, body=exc.body) from exc
        if data.__class__ is dict:
            # Inlined is_inband_error: this runs for every chunk.
            if data.get("error") or data.get("object") == "error" or event.event == "error":
                raise self._error(data)
            return self._chunk(data)
        if is_inband_error(data) or event.event == "error":
            raise self._error(data)
        raise _invalid(f"expected a JSON object, got {json_kind(data)}", self.provider)

    def end(self) -> list[ChatCompletionChunk]:
        """The stream is over (``[DONE]``, EOF, or :attr:`complete`): the final usage chunk, if one is due.

        Raises :class:`StreamInterrupted` when no finish reason ever arrived: the answer is incomplete.
        """
        if not any(c.finished for c in self._choices.values()):
            how = "sent [DONE]" if self.done else "closed the stream"
            raise StreamInterrupted(
                f"the upstream {how} before any finish_reason",
                provider=self.provider,
                partial=self.partial_text,
                partial_reasoning=self.partial_reasoning,
                request_id=self.request_id,
                model=self.model,
            )
        if self.include_usage and self.usage is not None:
            out = {
                "id": self._envelope.get("id", ""),
                "object": "chat.completion.chunk",
                "created": self._envelope.get("created", 0),
                "model": self._envelope.get("model", ""),
                "choices": [],
                "usage": self.usage,
            }
            return [self._parse(out)]
        return []

    # -- internals ---------------------------------------------------------------------------------------------
    def _error(self, data: Any) -> UpstreamError:
        if not is_inband_error(data):
            data = {"error": {"message": f"error event: {json.dumps(data)[:200]}"}}
        return inband_error(
            data,
            provider=self.provider,
            headers=self.headers,
            request_id=self.request_id,
            model=self.model,
            secrets=self.secrets,
        )

    def _parse(self, data: dict[str, Any]) -> ChatCompletionChunk:
        return parse_chunk(data, provider=self.provider)

    def _chunk(self, data: dict[str, Any]) -> list[ChatCompletionChunk]:
        if len(self._envelope) < 3:  # until the three are known
            for key in ("id", "created", "model"):
                if key in data and key not in self._envelope:
                    self._envelope[key] = data[key]
        choices = data.get("choices")
        if choices.__class__ is list and len(choices) == 1 and data.get("usage") is None:
            # The bulk of a stream: one bare text delta after the role chunk, without usage. Nothing in it needs
            # normalising (as in _choice's own shortcut) and it is built without copies (text_delta_chunk).
            raw = choices[0]
            if raw.__class__ is dict:
                delta = raw.get("delta")
                index = raw.get("index", 0)
                if delta.__class__ is dict and len(delta) == 1 and index.__class__ is int:
                    content = delta.get("content")
                    state = self._choices.get(index)
                    if content.__class__ is str and state is not None and state.role_sent:
                        chunk = text_delta_chunk(data, raw, content)
                        if chunk is not None:
                            state.text.append(content)
                            return [chunk]
        out = dict(data)
        usage = out.pop("usage", None)
        if usage is not None and not isinstance(usage, Mapping):
            raise _invalid("usage must be an object", self.provider)
        choices = out.get("choices")
        if choices is None:
            choices = []
        if not isinstance(choices, list):
            raise _invalid("choices must be a list", self.provider)
        new_choices: list[dict[str, Any]] = []
        for raw in choices:
            if raw.__class__ is not dict and not isinstance(raw, Mapping):  # the class test first: cheap
                raise _invalid("a choice must be an object", self.provider)
            choice = dict(raw)
            moved = choice.pop("usage", None)  # Moonshot: usage inside the choice
            if moved is not None and isinstance(moved, Mapping):
                usage = moved
            new_choices.append(self._choice(choice, data))
        out["choices"] = new_choices
        if usage is not None:
            self.usage = normalize_usage(usage, self.row)
            if not self.include_usage:
                out["usage"] = self.usage  # not asked for: leave it where the upstream put it
        if not new_choices and "usage" not in out and not set(out) - _ENVELOPE_KEYS:
            return []  # a usage-only chunk (re-sent at the end) or an empty one
        return [self._parse(out)]

    def _choice(self, choice: dict[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
        index = choice.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            raise _invalid("choices[].index must be an integer", self.provider)
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState()
        delta_raw = choice.get("delta")
        if (
            state.role_sent
            and isinstance(delta_raw, dict)
            and len(delta_raw) == 1
            and choice.get("finish_reason") is None
        ):
            # The bulk of a stream: a bare text delta after the role chunk. Nothing in it needs normalising.
            content = delta_raw.get("content")
            if content.__class__ is str:
                state.text.append(content)
                return choice
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason in ERROR_FINISH_REASONS:
            raise finish_error(
                reason,
                data,
                provider=self.provider,
                headers=self.headers,
                request_id=self.request_id,
                model=self.model,
                secrets=self.secrets,
            )
        map_finish_reason(choice)
        if delta_raw is None:
            delta_raw = {}
        if delta_raw.__class__ is not dict and not isinstance(delta_raw, Mapping):
            raise _invalid("choices[].delta must be an object", self.provider)
        delta = normalize_message(delta_raw, self.row)
        if state.role_sent:
            delta.pop("role", None)
        else:
            delta["role"] = "assistant"
            state.role_sent = True
        if "tool_calls" in delta:
            calls = self._tool_deltas(state, delta.pop("tool_calls"))
            if calls:
                delta["tool_calls"] = calls
        content = delta.get("content")
        if isinstance(content, str):
            state.text.append(content)
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str):
            state.reasoning.append(reasoning)
        choice["delta"] = delta
        if choice.get("finish_reason") and not state.finished:
            state.finished = True
            self._finished_choices += 1
        return choice

    def _tool_deltas(self, state: _ChoiceState, raw_calls: Any) -> list[dict[str, Any]]:
        if raw_calls is None:
            return []
        if not isinstance(raw_calls, list):
            raise _invalid("delta.tool_calls must be a list", self.provider)
        out: list[dict[str, Any]] = []
        for raw in raw_calls:
            if not isinstance(raw, Mapping):
                raise _invalid("a tool call delta must be an object", self.provider)
            fn = raw.get("function")
            fn = fn if isinstance(fn, Mapping) else {}
            up_index = raw.get("index")
            if not isinstance(up_index, int) or isinstance(up_index, bool):
                up_index = None
            up_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else None
            name = fn.get("name") if isinstance(fn.get("name"), str) and fn.get("name") else None
            args = fn.get("arguments")
            if args is not None and not isinstance(args, str):
                args = json.dumps(args, ensure_ascii=False)  # an object instead of a JSON string
            slot = self._slot_for(state, up_index, up_id, name)
            extra = {k: v for k, v in raw.items() if k not in _TOOL_KEYS}
            fn_extra = {k: v for k, v in fn.items() if k not in ("name", "arguments")}
            if slot is None:
                slot = _ToolSlot(
                    index=len(state.slots),
                    id=self.ids_back.get(up_id, up_id) if up_id else new_tool_id(),
                    upstream_id=up_id,
                    name=name or "",
                )
                state.slots.append(slot)
                if up_index is not None:
                    state.by_upstream_index[up_index] = slot
                out.append(
                    {
                        **extra,
                        "index": slot.index,
                        "id": slot.id,
                        "type": "function",
                        "function": {**fn_extra, "name": slot.name, "arguments": args or ""},
                    }
                )
                continue
            frag_fn: dict[str, Any] = dict(fn_extra)
            if name and not slot.name:
                slot.name = name  # the name came after the first fragment: pass it on once
                frag_fn["name"] = name
            if args:
                frag_fn["arguments"] = args
            if frag_fn or extra:
                frag: dict[str, Any] = {**extra, "index": slot.index}
                if frag_fn:
                    frag["function"] = frag_fn
                out.append(frag)
        return out

    @staticmethod
    def _slot_for(state: _ChoiceState, up_index: int | None, up_id: str | None, name: str | None) -> _ToolSlot | None:
        """The call a fragment continues, or ``None`` when it starts a new one."""
        if up_index is not None:
            slot = state.by_upstream_index.get(up_index)
            if slot is not None and up_id is not None and slot.upstream_id is not None and up_id != slot.upstream_id:
                return None  # a different call reusing the index
            return slot
        if up_id is not None:
            for slot in state.slots:
                if slot.upstream_id == up_id:
                    return slot
            return None
        if name is None and state.slots:
            return state.slots[-1]  # an index-less continuation: it belongs to the latest call
        return None
