"""Incremental Server-Sent-Events decoding (the WHATWG EventSource parsing rules) and a small encoder.

:class:`SSEDecoder` is pure: it takes the raw bytes of a ``text/event-stream`` body in whatever pieces the
network delivers and returns the events each piece completes. It does no I/O, so the transport layer owns
timeouts and cancellation. Decoding does not depend on how the bytes were split into chunks.

Rules implemented (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

* lines end with LF, CRLF or a lone CR, also when a CRLF is split across two chunks;
* a leading UTF-8 BOM at the very start of the stream is skipped;
* ``data:`` lines of one event are joined with ``"\\n"``; exactly one space after the colon is stripped;
* a line without a colon is a field name with an empty value; lines starting with ``:`` are comments;
* ``event:`` sets the event type (an empty value means the default type, reported as ``None``);
* ``id:`` sets the last event id (ignored if it contains NUL); like ``EventSource.lastEventId`` it persists
  and is reported on every later event until another ``id:`` line changes it;
* ``retry:`` with ASCII digits only is reported on the event it belongs to, otherwise ignored;
* unknown fields are ignored; a blank line dispatches the event only if it had at least one ``data:`` line,
  and resets the event type and retry either way.

Each line is decoded as UTF-8 only once it is complete (so characters split across chunks are fine); invalid
bytes become U+FFFD. ``[DONE]`` sentinels are not interpreted here: they are ordinary events.
"""

from __future__ import annotations

import contextlib
import json as _json
import re
from typing import Any, Final

import attrs

from polyrelay._json import loads_str
from polyrelay.errors import InvalidRequest, InvalidUpstreamResponse

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEDecoder", "ServerSentEvent", "encode_event"]

DEFAULT_MAX_EVENT_BYTES: Final = 16 * 1024 * 1024

_BOM: Final = b"\xef\xbb\xbf"
_LF: Final = 0x0A
# Python's str.splitlines() also splits on \v, \f, \x1c, \u2028 ...: SSE knows only these three line ends.
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
# How much of an unparsable event to keep on the error (in .body, not in the message) for debugging.
_EXCERPT_CHARS: Final = 200


@attrs.frozen(slots=True, kw_only=True)
class ServerSentEvent:
    """One dispatched event.

    ``event`` is ``None`` for the default ``message`` type; ``id`` is the last event id seen on the stream so far
    (``None`` if the stream never sent one); ``retry`` is the reconnection delay in ms sent with this event.
    """

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """``json.loads(self.data)``; raises :class:`InvalidUpstreamResponse` if the data is not JSON."""
        try:
            return loads_str(self.data)
        except (ValueError, RecursionError) as exc:
            kind = f"event {self.event!r}" if self.event is not None else "event"
            # The data itself goes into .body, not the message: it is upstream text of unknown content.
            raise InvalidUpstreamResponse(
                f"stream {kind} data is not valid JSON ({len(self.data)} chars): {_json_error_reason(exc)}",
                body=self.data[:_EXCERPT_CHARS],
            ) from exc


def _json_error_reason(exc: BaseException) -> str:
    if isinstance(exc, _json.JSONDecodeError):
        return f"{exc.msg} at char {exc.pos}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


class SSEDecoder:
    """Incremental decoder: :meth:`feed` it chunks, :meth:`close` it at end of stream.

    ``max_event_bytes`` bounds memory: a single line, or the ``data`` of one event, longer than this raises
    :class:`InvalidUpstreamResponse` (as soon as that many bytes are buffered, not when the line ends). After
    raising, the decoder is reset; the stream should be abandoned.
    """

    __slots__ = (
        "_at_start",
        "_data",
        "_data_size",
        "_event",
        "_last_id",
        "_max",
        "_retry",
        "_skip_lf",
        "_tail",
    )

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        if max_event_bytes < 1:
            raise InvalidRequest("must be a positive number of bytes", path="max_event_bytes")
        self._max = max_event_bytes
        self._reset()

    def _reset(self) -> None:
        self._at_start = True  # nothing consumed yet: a BOM may still be (partly) ahead
        self._skip_lf = False  # the previous chunk ended with CR: an LF starting the next one belongs to it
        # The current incomplete line (never contains CR or LF). A bytearray: appending is amortised O(1) and
        # compact, so a long line trickling in as tiny chunks costs neither quadratic time nor per-piece overhead.
        self._tail = bytearray()
        self._data: list[str] | None = None  # data lines of the current event; None until the first one
        self._data_size = 0
        self._event: str | None = None
        self._retry: int | None = None
        self._last_id: str | None = None

    @property
    def pending(self) -> bool:
        """True if bytes or fields of an incomplete event are buffered."""
        return bool(self._tail) or self._data is not None or self._event is not None or self._retry is not None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume the next chunk of the body; return every event it completes, in order."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if self._at_start:
            # The BOM may itself arrive in pieces; hold back up to two bytes until we can tell.
            head = bytes(self._tail) + chunk if self._tail else chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._tail[:] = head
                return []
            self._at_start = False
            self._tail.clear()
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        last_lf = chunk.rfind(b"\n")
        last_cr = chunk.rfind(b"\r")
        last = last_lf if last_lf > last_cr else last_cr
        if last < 0:  # no line end: the chunk only extends the current line
            self._tail += chunk
            if len(self._tail) > self._max:
                self._fail(f"a stream line exceeds max_event_bytes={self._max}")
            return []
        end = last + 1
        complete = chunk if end == len(chunk) else chunk[:end]
        if self._tail:
            self._tail += complete
            complete = bytes(self._tail)
            self._tail.clear()
        if end < len(chunk):
            self._tail += memoryview(chunk)[end:]
        if last_cr >= 0:  # rare (Gemini uses CRLF): normalise every line end to LF, then split as usual
            self._skip_lf = last_cr == len(chunk) - 1
            complete = complete.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = complete.split(b"\n")
        del lines[-1]  # `complete` ends with a line end: the last piece is always empty
        events = self._process(lines)
        if len(self._tail) > self._max:
            self._fail(f"a stream line exceeds max_event_bytes={self._max}")
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of stream: finish the last line, dispatch a pending event that has data, and reset.

        Deliberate deviation from the spec (which discards an unterminated event): a body that ends without the
        final blank line still yields its last event, because some servers close right after the last ``data:``.
        """
        lines = [bytes(self._tail)] if self._tail else []
        lines.append(b"")
        try:
            return self._process(lines)
        finally:
            self._reset()

    def _process(self, lines: list[bytes]) -> list[ServerSentEvent]:
        # State lives in locals for the loop (this is the per-event hot path) and is written back at the end.
        events: list[ServerSentEvent] = []
        limit = self._max
        data = self._data
        data_size = self._data_size
        event = self._event
        retry = self._retry
        last_id = self._last_id
        for line in lines:
            if not line:  # blank line: dispatch
                if data is not None:
                    events.append(
                        ServerSentEvent(
                            data=data[0] if len(data) == 1 else "\n".join(data), event=event, id=last_id, retry=retry
                        )
                    )
                    data = None
                    data_size = 0
                event = None
                retry = None
                continue
            if len(line) > limit:
                self._fail(f"a stream line exceeds max_event_bytes={limit}")
            if line.startswith(b"data:"):  # the common case, without the general field split below
                value = line[6:] if line[5:6] == b" " else line[5:]
            else:
                colon = line.find(b":")
                if colon == 0:  # comment (keep-alives, ": OPENROUTER PROCESSING")
                    continue
                if colon < 0:
                    name, value = line, b""
                else:
                    name, value = line[:colon], line[colon + 1 :]
                    if value[:1] == b" ":
                        value = value[1:]
                if name == b"event":
                    event = value.decode("utf-8", "replace") or None
                elif name == b"id":
                    if b"\0" not in value:
                        last_id = value.decode("utf-8", "replace")
                elif name == b"retry" and value.isdigit():  # bytes.isdigit(): ASCII digits only
                    # int() refuses absurdly long digit strings: such a value is ignored like any invalid one.
                    with contextlib.suppress(ValueError):
                        retry = int(value)
                if name != b"data":
                    continue
            data_size += len(value) + 1
            if data_size > limit:
                self._fail(f"a stream event's data exceeds max_event_bytes={limit}")
            if data is None:
                data = [value.decode("utf-8", "replace")]
            else:
                data.append(value.decode("utf-8", "replace"))
        self._data = data
        self._data_size = data_size
        self._event = event
        self._retry = retry
        self._last_id = last_id
        return events

    def _fail(self, message: str) -> None:
        self._reset()  # drop the buffered bytes: the stream is unusable now
        raise InvalidUpstreamResponse(message)


def encode_event(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    """Serialise one event (for simulated servers in tests and examples); ends with ``b"\\n\\n"``.

    Each line of ``data`` (split on CRLF, CR or LF) becomes its own ``data:`` line, so the decoder gives back
    ``data`` with its line ends normalised to LF.
    """
    out: list[str] = []
    if event is not None:
        _check_single_line(event, "event")
        out.append(f"event: {event}\n")
    if id is not None:
        _check_single_line(id, "id")
        if "\0" in id:
            raise InvalidRequest("must not contain NUL (decoders ignore such ids)", path="id")
        out.append(f"id: {id}\n")
    out.extend(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    out.append("\n")
    try:
        return "".join(out).encode()
    except UnicodeEncodeError as exc:  # lone surrogates have no UTF-8 form
        raise InvalidRequest(f"cannot be encoded as UTF-8: {exc.reason}", path="data/event/id") from exc


def _check_single_line(value: str, path: str) -> None:
    if "\n" in value or "\r" in value:
        raise InvalidRequest("must not contain a line break", path=path)
