"""The chat bridge: media models (Flux, Replicate, Midjourney, video, music, ...) through chat completions.

:class:`MediaChatBridge` turns a :class:`~polyrelay.types.chat.ChatRequest` for a media model into a generation
task and answers in chat format, so chat-only clients can use image, video and audio models.

**Input.** The prompt is the text of the *last user message* (its text parts joined with newlines); its
``image_url`` parts become the task's reference images (URLs or data URIs). Unknown top-level request keys
(``ChatRequest.extra``, e.g. ``{"size": "1024x768", "aspect_ratio": "16:9", "safety_tolerance": 2}``) become task
parameters: ``kind``, ``size``, ``aspect_ratio``, ``duration``, ``negative_prompt`` and ``seed`` map to the
:class:`~polyrelay.types.media.TaskRequest` fields, everything else goes to ``params``. ``seed`` may also be the
request's own field. Other chat settings (temperature, tools, ...) do not apply and are ignored; ``n`` > 1 is
refused (:class:`~polyrelay.errors.UnsupportedFeature`, ``path="n"``).

**Media markdown.** One line per output, in order::

    ![image](<url>)      an image (media type image/*, or an image task's output of unknown type)
    [video](<url>)       a video
    [audio](<url>)       an audio track
    [file](<url>)        anything else

An output without a URL but with text (Suno lyrics) is shown as its text (bold title first when it has one); a
workflow task without file outputs shows its structured outputs as a fenced ``json`` block. ``(no output)`` when
the task produced none.

**Non-streaming** (``stream`` false): one ``chat.completion`` whose single choice has ``finish_reason="stop"`` and
``message.content`` =::

    <media markdown>

    task_id: <task id>

``usage`` is all zeros; ``meta`` names the provider and upstream model that ran the task.

**Streaming** (``stream=True``): ``chat.completion.chunk`` objects whose ``delta.content`` pieces are, in order:

1. ``""`` with ``role="assistant"`` (the opening chunk);
2. ``"task_id: <task id>\\n"`` right after the task was submitted (so a client can poll it if the stream drops),
   and again with the new id if a failed task is resubmitted to another target (``resubmit_on_failure``);
3. one ``"status: <status>[ <percent>%]\\n"`` line each time the status or the whole-percent progress changes,
   e.g. ``"status: queued\\n"``, ``"status: running 40%\\n"``, ``"status: succeeded\\n"``; workflow tasks
   add the running node's title: ``"status: running 67% (Render the poster)\\n"``;
   while nothing changes, an empty-content chunk every ``keepalive`` seconds (keeps proxies from timing out);
4. ``"\\n<media markdown>\\n"``;
5. a chunk with an empty delta and ``finish_reason="stop"``;
6. with ``stream_options.include_usage``, a final chunk with ``choices=[]`` and zero ``usage``.

A task that fails sends ``"status: failed: <reason>\\n"`` and then raises :class:`~polyrelay.errors.TaskFailed`
from the stream; a canceled task sends ``"status: canceled\\n"`` and finishes with ``"stop"`` without media.
Errors at submission (before the first chunk) are raised as they are.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.tasks import TaskService, task_failed_error
from polyrelay.types.chat import ChatRequest, ImagePart, Message, TextPart
from polyrelay.types.completion import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    ResponseMeta,
    Usage,
)
from polyrelay.types.media import Artifact, Task, TaskKind, TaskRequest

__all__ = ["MediaChatBridge", "MediaChatStream", "chat_to_task_request", "render_markdown", "status_line"]

#: ``ChatRequest.extra`` keys that are TaskRequest fields (everything else becomes a provider param).
_TASK_FIELDS = ("kind", "size", "aspect_ratio", "duration", "negative_prompt", "seed")
_LINK_LABELS: Mapping[str, str] = {"image": "image", "video": "video", "audio": "audio"}


def status_line(task: Task) -> str:
    """``"status: running 40%\\n"`` (no percentage when the upstream reports no progress)."""
    if task.status == "failed":
        reason = task.error.message if task.error is not None and task.error.message else "unknown error"
        return f"status: failed: {reason}\n"
    node = task.extra.get("node") if task.status == "running" else None
    suffix = f" ({node})" if isinstance(node, str) and node else ""
    if task.progress is not None and task.status not in ("succeeded", "canceled"):
        percent = round(min(1.0, max(0.0, task.progress)) * 100)
        return f"status: {task.status} {percent}%{suffix}\n"
    return f"status: {task.status}{suffix}\n"


def _artifact_kind(artifact: Artifact, task_kind: TaskKind) -> str:
    media_type = artifact.media_type or ""
    major = media_type.split("/", 1)[0]
    if major in _LINK_LABELS:
        return major
    if not media_type and task_kind in _LINK_LABELS:
        return task_kind
    return "file"


def render_markdown(task: Task) -> str:
    """The media markdown of a finished task (see the module docstring)."""
    lines: list[str] = []
    for artifact in task.outputs:
        if not artifact.url:
            text = artifact.extra.get("text")
            if isinstance(text, str) and text:  # lyrics, a workflow's text output
                lines.append((f"**{artifact.title}**\n\n" if artifact.title else "") + text)
            continue
        kind = _artifact_kind(artifact, task.kind)
        lines.append(f"![image]({artifact.url})" if kind == "image" else f"[{kind}]({artifact.url})")
    outputs = task.extra.get("outputs")
    if outputs and not lines:  # a workflow's structured outputs
        lines.append("```json\n" + json.dumps(outputs, ensure_ascii=False, indent=2, default=str) + "\n```")
    return "\n".join(lines) if lines else "(no output)"


def _last_user_message(messages: Sequence[Message]) -> tuple[int, Message]:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index, messages[index]
    raise InvalidRequest("a media model needs a user message carrying the prompt", path="messages")


def chat_to_task_request(request: ChatRequest) -> TaskRequest:
    """The task a chat request for a media model asks for (see the module docstring)."""
    if request.n is not None and request.n > 1:
        raise UnsupportedFeature("media models answer with one choice", path="n")
    index, message = _last_user_message(request.messages)
    texts: list[str] = []
    images: list[str] = []
    content = message.content
    if isinstance(content, str):
        texts.append(content)
    elif content is not None:
        for j, part in enumerate(content):
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif isinstance(part, ImagePart):
                images.append(part.image_url.url)
            else:
                raise UnsupportedFeature(
                    f"media models take text and image_url parts, not {getattr(part, 'type', '?')!r}",
                    path=f"messages[{index}].content[{j}]",
                )
    prompt = "\n".join(t for t in texts if t.strip()).strip()
    if not prompt and not images:
        raise InvalidRequest("the last user message has no prompt text", path=f"messages[{index}].content")
    extra = dict(request.extra)
    fields: dict[str, Any] = {name: extra.pop(name) for name in _TASK_FIELDS if name in extra}
    if "seed" not in fields and request.seed is not None:
        fields["seed"] = request.seed
    return TaskRequest(model=request.model, prompt=prompt or None, images=tuple(images), params=extra, **fields)


class MediaChatBridge:
    """Chat completions for media models, on top of a :class:`~polyrelay.tasks.TaskService`.

    ``wait_timeout`` bounds the wait for the task (seconds); ``keepalive`` is the quiet period after which a
    stream sends an empty chunk.
    """

    def __init__(
        self,
        tasks: TaskService,
        *,
        clock: Callable[[], float] | None = None,
        wait_timeout: float = 600.0,
        keepalive: float = 15.0,
    ) -> None:
        self._tasks = tasks
        self._clock = clock or time.time
        self.wait_timeout = wait_timeout
        self.keepalive = keepalive

    def handles(self, model: str) -> bool:
        """True when ``model`` should go through the bridge (its targets run tasks and none is a chat provider)."""
        return self._tasks.handles(model)

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        """Run the task to the end and answer with one ``chat.completion`` (media markdown + task id line)."""
        task = await self._tasks.submit(chat_to_task_request(request))
        if not task.done:
            task = await self._tasks.wait(task.id, timeout=self.wait_timeout)
        if task.status == "failed":
            raise task_failed_error(task)
        content = f"{render_markdown(task)}\n\ntask_id: {task.id}"
        return ChatCompletion(
            id=_completion_id(),
            created=int(self._clock()),
            model=request.model,
            choices=(Choice(index=0, message=ChatCompletionMessage(content=content), finish_reason="stop"),),
            usage=Usage(),
            meta=ResponseMeta(provider=task.provider, model=task.model, requested_model=request.model),
        )

    def stream(self, request: ChatRequest) -> AsyncGenerator[ChatCompletionChunk, None]:
        """An async generator of chunks: progress lines while polling, then the media markdown (see module doc).

        Input errors raise here, before anything is submitted."""
        task_request = chat_to_task_request(request)
        return self._stream(request, task_request)

    async def _stream(
        self, request: ChatRequest, task_request: TaskRequest
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        task = await self._tasks.submit(task_request)
        chunk_id = _completion_id()
        created = int(self._clock())
        meta = ResponseMeta(provider=task.provider, model=task.model, requested_model=request.model)

        def chunk(content: str | None, *, role: str | None = None, finish: str | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(
                id=chunk_id,
                created=created,
                model=request.model,
                choices=(ChunkChoice(index=0, delta=ChoiceDelta(role=role, content=content), finish_reason=finish),),
            )

        first = chunk("", role="assistant")
        yield ChatCompletionChunk(
            id=first.id, created=first.created, model=first.model, choices=first.choices, meta=meta
        )
        yield chunk(f"task_id: {task.id}\n")
        last_line = status_line(task)
        yield chunk(last_line)
        last_output = self._clock()
        final = task
        if not task.done:
            watch = self._tasks.watch(task.id, timeout=self.wait_timeout, every_poll=True)
            async with aclosing(watch) as snapshots:
                async for snapshot in snapshots:
                    if snapshot.id != final.id:  # resubmitted to another target after a failure
                        yield chunk(f"task_id: {snapshot.id}\n")
                    final = snapshot
                    line = status_line(snapshot)
                    if line != last_line:
                        last_line = line
                        last_output = self._clock()
                        yield chunk(line)
                    elif self._clock() - last_output >= self.keepalive:
                        last_output = self._clock()
                        yield chunk("")
        if final.status == "failed":
            raise task_failed_error(final)
        if final.status == "succeeded":
            yield chunk(f"\n{render_markdown(final)}\n")
        yield ChatCompletionChunk(
            id=chunk_id,
            created=created,
            model=request.model,
            choices=(ChunkChoice(index=0, delta=ChoiceDelta(), finish_reason="stop"),),
        )
        if request.include_usage:
            yield ChatCompletionChunk(id=chunk_id, created=created, model=request.model, choices=(), usage=Usage())


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class MediaChatStream:
    """What ``router.chat.completions.create(..., stream=True)`` returns for a media model: like
    :class:`~polyrelay.stream.ChatStream`, an async iterator of chunks and an async context manager whose exit stops
    polling (the upstream task itself keeps running; its id was the first content line)."""

    def __init__(self, source: AsyncGenerator[ChatCompletionChunk, None]) -> None:
        self._source = source
        self.meta: ResponseMeta | None = None
        self.usage: Usage | None = None
        self._text: list[str] = []

    @property
    def provider(self) -> str | None:
        return self.meta.provider if self.meta is not None else None

    @property
    def model(self) -> str | None:
        return self.meta.model if self.meta is not None else None

    @property
    def text(self) -> str:
        return "".join(self._text)

    def __aiter__(self) -> MediaChatStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        chunk = await anext(self._source)
        if chunk.meta is not None:
            self.meta = chunk.meta
        if chunk.usage is not None:
            self.usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.content:
                self._text.append(ch.delta.content)
        return chunk

    async def aclose(self) -> None:
        await self._source.aclose()

    async def __aenter__(self) -> MediaChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
