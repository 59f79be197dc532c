"""An out-of-tree provider plugin: answers every chat with the last user message, reversed.

It is installed and registered exactly like the built-in providers (entry point group ``polyrelay.providers``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from polyrelay.provider import CallContext, ModelCapabilities, ProviderSettings, ProviderSpec
from polyrelay.transport import Transport
from polyrelay.types.chat import ChatRequest
from polyrelay.types.completion import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    Usage,
)


class EchoProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.prefix = str(settings.options.get("prefix", ""))

    def _answer(self, request: ChatRequest) -> str:
        users = [m for m in request.messages if m.role == "user"]
        return self.prefix + (users[-1].text[::-1] if users else "")

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatCompletion:
        text = self._answer(request)
        return ChatCompletion(
            id="echo-1",
            created=0,
            model=ctx.model,
            choices=(Choice(index=0, message=ChatCompletionMessage(content=text), finish_reason="stop"),),
            usage=Usage(prompt_tokens=1, completion_tokens=len(text), total_tokens=1 + len(text)),
        )

    async def stream_chat(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[ChatCompletionChunk]:
        text = self._answer(request)
        yield ChatCompletionChunk(
            id="echo-1", model=ctx.model, choices=(ChunkChoice(delta=ChoiceDelta(role="assistant", content="")),)
        )
        for ch in text:
            yield ChatCompletionChunk(
                id="echo-1", model=ctx.model, choices=(ChunkChoice(delta=ChoiceDelta(content=ch)),)
            )
        yield ChatCompletionChunk(id="echo-1", model=ctx.model, choices=(ChunkChoice(finish_reason="stop"),))

    def capabilities(self, model: str) -> ModelCapabilities:
        return ModelCapabilities(accepts_prefill=False)


def _factory(settings: ProviderSettings, transport: Transport) -> EchoProvider:
    return EchoProvider(settings)


SPEC = ProviderSpec(
    name="echo", factory=_factory, description="reverses the last user message", option_keys=frozenset({"prefix"})
)
