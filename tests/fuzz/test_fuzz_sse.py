"""Fuzzing the SSE decoder (:mod:`polyrelay.sse`) beyond the properties in tests/test_sse.py.

- against an independent, non-incremental reference implementation of the WHATWG rules, on CR-heavy input split
  anywhere: same events, and only polyrelay errors;
- huge lines and events with small ``max_event_bytes``: always refused, whatever the split, and refused as soon as
  more than the limit is buffered (memory stays bounded), not only when the line ends;
- comments interleaved anywhere, of any content, change nothing;
- a decoder reused after ``close()`` behaves like a fresh one;
- ``ServerSentEvent.json()`` and ``encode_event`` on arbitrary text raise only polyrelay errors.

Every example runs to completion: the decoder is pure and synchronous, so a hang would stall this test run.
"""

from __future__ import annotations

import contextlib
import itertools
import re

import pytest
from fuzz_support import fuzz
from hypothesis import assume, given
from hypothesis import strategies as st

from polyrelay.errors import InvalidRequest, InvalidUpstreamResponse
from polyrelay.sse import ServerSentEvent, SSEDecoder, encode_event

BOM = b"\xef\xbb\xbf"
_EOL = re.compile(rb"\r\n|\r|\n")
BIG = 1 << 24  # a limit nothing in these examples reaches


def reference_decode(body: bytes) -> list[ServerSentEvent]:
    """The event-stream interpretation rules applied to a whole body at once (plus polyrelay's documented
    deviation: a last event without its blank line is still dispatched at end of stream)."""
    if body.startswith(BOM):
        body = body[len(BOM) :]
    lines = _EOL.split(body)
    tail = lines.pop()  # what follows the last line end: an unterminated line, or b""
    if tail:
        lines.append(tail)
    lines.append(b"")
    events: list[ServerSentEvent] = []
    data: list[str] | None = None
    event: str | None = None
    retry: int | None = None
    last_id: str | None = None
    for line in lines:
        if not line:
            if data is not None:
                events.append(ServerSentEvent(data="\n".join(data), event=event, id=last_id, retry=retry))
            data, event, retry = None, None, None
            continue
        if line.startswith(b":"):
            continue
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if name == b"data":
            data = [*(data or []), text]
        elif name == b"event":
            event = text or None
        elif name == b"id" and b"\0" not in value:
            last_id = text
        elif name == b"retry" and value and all(0x30 <= c <= 0x39 for c in value):
            # More digits than int() accepts: ignored like any invalid value.
            with contextlib.suppress(ValueError):
                retry = int(value)
    return events


def chunks_of(body: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


def run(chunks: list[bytes], limit: int = BIG) -> list[ServerSentEvent]:
    d = SSEDecoder(max_event_bytes=limit)
    events: list[ServerSentEvent] = []
    for c in chunks:
        events += d.feed(c)
    return events + d.close()


# Tokens weighted towards line ends (lone CR, CRLF split anywhere), field names and UTF-8 fragments.
_CR_HEAVY = [
    b"\r", b"\r", b"\r", b"\n", b"\r\n", b"\r\r", b"\n\r", b"\r\n\r\n",
    b"data:", b"data: ", b"data", b"event:", b"event: x", b"id:", b"id: 7", b"id: \x00", b"retry:", b"retry: 15",
    b": comment", b":", b" ", b"x", b"{\"a\":1}", b"[DONE]", BOM, b"\xef", b"\xbb", b"\xc3\xa9", b"\xe6\x97",
    b"\xa5", b"\xff", b"\x00", b"9" * 5000,
]  # fmt: skip
cr_heavy_bodies = st.lists(st.sampled_from(_CR_HEAVY) | st.binary(max_size=4), max_size=60).map(b"".join)


@st.composite
def body_and_cuts(draw: st.DrawFn, bodies: st.SearchStrategy[bytes] = cr_heavy_bodies) -> tuple[bytes, list[int]]:
    body = draw(bodies)
    cuts = draw(st.lists(st.integers(0, len(body)), max_size=12))
    return body, cuts


@fuzz()
@given(body_and_cuts())
def test_cr_heavy_input_matches_the_reference_whatever_the_split(case: tuple[bytes, list[int]]) -> None:
    body, cuts = case
    want = reference_decode(body)
    assert run(chunks_of(body, cuts)) == want
    assert run([body[i : i + 1] for i in range(len(body))]) == want


@fuzz()
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=10), st.integers(1, 64) | st.just(BIG))
def test_arbitrary_bytes_give_events_or_invalid_upstream_response(body: bytes, cuts: list[int], limit: int) -> None:
    cuts = [c for c in cuts if c <= len(body)]
    try:
        events = run(chunks_of(body, cuts), limit)
    except InvalidUpstreamResponse:
        assert limit < len(body)  # only the size limit refuses input; bytes are never "invalid"
        return
    if limit == BIG:
        assert events == reference_decode(body)


_single_line = st.text(st.characters(exclude_characters="\r\n\0", exclude_categories=["Cs"]), max_size=8)


@st.composite
def huge_line_case(draw: st.DrawFn) -> tuple[bytes, int, int, list[int]]:
    """(valid events, limit, length of the oversized line, cuts of the oversized line)."""
    limit = draw(st.integers(1, 200))
    prefix_events = draw(st.lists(_single_line, max_size=3))
    prefix = b"".join(encode_event(e) for e in prefix_events if len(e.encode()) + 8 <= limit)
    size = draw(st.integers(limit + 1, limit * 4 + 10))
    cuts = draw(st.lists(st.integers(0, size), max_size=12))
    return prefix, limit, size, sorted(cuts)


@fuzz()
@given(
    huge_line_case(),
    st.sampled_from([b"data: ", b"data:", b"event: ", b": ", b"id: ", b"retry: ", b""]),
    st.sampled_from([b"", b"\r", b"\r\n", b"\n"]),
)
def test_an_oversized_line_is_refused_as_soon_as_the_limit_is_passed(
    case: tuple[bytes, int, int, list[int]], field: bytes, lead: bytes
) -> None:
    """The line never ends in what is fed: the decoder must still refuse it once more than the limit is buffered,
    so a server streaming one endless line cannot make it buffer without bound."""
    prefix, limit, size, cuts = case
    body = lead + field + b"x" * size
    d = SSEDecoder(max_event_bytes=limit)
    assert d.feed(prefix) == reference_decode(prefix)  # the small events before the huge line decode normally
    fed = 0
    with pytest.raises(InvalidUpstreamResponse, match="max_event_bytes"):
        for piece in chunks_of(body, [c + len(lead) for c in cuts]):
            d.feed(piece)
            fed += len(piece)
            assert fed - len(lead) <= limit, "more than max_event_bytes of one line buffered without an error"
        d.close()


@fuzz()
@given(st.integers(1, 120), st.lists(st.integers(1, 60), min_size=1, max_size=8), st.data())
def test_an_oversized_event_made_of_short_lines_is_refused_whatever_the_split(
    limit: int, sizes: list[int], data: st.DataObject
) -> None:
    body = b"".join(b"data: " + b"y" * n + b"\n" for n in sizes) + b"\n"
    total = sum(n + 1 for n in sizes)  # each data line adds its value and the joining LF
    assume(all(n + 6 <= limit for n in sizes))  # every line fits: only the event as a whole can be too big
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=10))
    if total > limit:
        with pytest.raises(InvalidUpstreamResponse, match="max_event_bytes"):
            run(chunks_of(body, cuts), limit)
    else:
        assert run(chunks_of(body, cuts), limit) == [ServerSentEvent(data="\n".join("y" * n for n in sizes))]


_events = st.lists(
    st.tuples(st.text(st.characters(exclude_categories=["Cs"]), max_size=12), st.none() | _single_line.filter(bool)),
    max_size=6,
)
_comments = st.lists(st.binary(max_size=20).map(lambda b: b":" + b.replace(b"\r", b"").replace(b"\n", b"")), max_size=4)


@fuzz()
@given(_events, st.data(), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_comments_interleaved_anywhere_change_nothing(
    events: list[tuple[str, str | None]], data: st.DataObject, eol: bytes
) -> None:
    body = b"".join(encode_event(text, event=name) for text, name in events)
    lines = body.split(b"\n")
    # A comment line may go before any line of the body (also between the data lines of one event).
    with_comments: list[bytes] = []
    for line in lines:
        with_comments.extend(data.draw(_comments))
        with_comments.append(line)
    noisy = eol.join(with_comments)
    clean = eol.join(lines)
    cuts = data.draw(st.lists(st.integers(0, len(noisy)), max_size=10))
    assert run(chunks_of(noisy, cuts)) == run([clean])
    want = [ServerSentEvent(data=text.replace("\r\n", "\n").replace("\r", "\n"), event=name) for text, name in events]
    assert run([clean]) == want


@fuzz(0.5)
@given(body_and_cuts(), body_and_cuts())
def test_a_decoder_reused_after_close_behaves_like_a_fresh_one(
    first: tuple[bytes, list[int]], second: tuple[bytes, list[int]]
) -> None:
    d = SSEDecoder()
    for piece in chunks_of(*first):
        d.feed(piece)
    d.close()
    assert not d.pending
    events: list[ServerSentEvent] = []
    for piece in chunks_of(*second):
        events += d.feed(piece)
    assert events + d.close() == reference_decode(second[0])


@fuzz()
@given(st.text() | st.sampled_from(["[" * 100_000, "1" * 5000, '{"a": 1', "\ud800", "NaN", "-Infinity", "1e999"]))
def test_event_json_raises_only_invalid_upstream_response(text: str) -> None:
    event = ServerSentEvent(data=text)
    try:
        event.json()
    except InvalidUpstreamResponse as exc:
        assert exc.body == text[:200]
        assert "not valid JSON" in exc.message


@fuzz()
@given(st.text(), st.none() | st.text(max_size=10), st.none() | st.text(max_size=10))
def test_encode_event_round_trips_or_raises_invalid_request(data: str, event: str | None, id: str | None) -> None:
    try:
        body = encode_event(data, event=event, id=id)
    except InvalidRequest as exc:
        assert exc.path in ("event", "id", "data/event/id")
        return
    decoded = run([body])
    assert decoded == [ServerSentEvent(data=data.replace("\r\n", "\n").replace("\r", "\n"), event=event or None, id=id)]
