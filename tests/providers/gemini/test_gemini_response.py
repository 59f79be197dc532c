"""Gemini response / stream mapping: finish reasons, usage, candidates, blocked prompts, the stream state machine."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gemini_support import fold, run_stream

from polyrelay.errors import (
    ContentPolicyViolation,
    InvalidUpstreamResponse,
    Overloaded,
    RateLimited,
    ServerError,
    StreamInterrupted,
)
from polyrelay.types.completion import ChatCompletion, ResponseMeta
from polyrelay_gemini._response import map_finish_reason, map_usage, parse_response, to_completion
from polyrelay_gemini._stream import Phase, StreamTranslator
from polyrelay_gemini._wire import UsageMetadata


def completion(body: dict[str, Any]) -> ChatCompletion:
    return to_completion(parse_response(body, provider="g"), provider="g", model="gemini-x", created=5)


def cand(parts: list[dict[str, Any]] | None, finish: str | None = "STOP", **kw: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"content": {"role": "model", **({"parts": parts} if parts is not None else {})}, **kw}
    if finish:
        c["finishReason"] = finish
    return c


def sse(*payloads: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(p).encode() + b"\r\n\r\n" for p in payloads)


# ----------------------------------------------------------------------------------------------- finish reasons


@pytest.mark.parametrize(
    ("reason", "tools", "expected", "native"),
    [
        ("STOP", False, "stop", None),
        ("STOP", True, "tool_calls", None),
        (None, True, "tool_calls", None),
        (None, False, "stop", None),
        ("MAX_TOKENS", False, "length", None),
        ("MAX_TOKENS", True, "length", None),
        ("SAFETY", False, "content_filter", "SAFETY"),
        ("RECITATION", False, "content_filter", "RECITATION"),
        ("BLOCKLIST", False, "content_filter", "BLOCKLIST"),
        ("PROHIBITED_CONTENT", False, "content_filter", "PROHIBITED_CONTENT"),
        ("SPII", False, "content_filter", "SPII"),
        ("IMAGE_SAFETY", False, "content_filter", "IMAGE_SAFETY"),
        ("LANGUAGE", False, "content_filter", "LANGUAGE"),
        ("MALFORMED_FUNCTION_CALL", False, "stop", "MALFORMED_FUNCTION_CALL"),
        ("UNEXPECTED_TOOL_CALL", False, "stop", "UNEXPECTED_TOOL_CALL"),
        ("OTHER", False, "stop", "OTHER"),
        ("FINISH_REASON_UNSPECIFIED", False, "stop", None),
        ("SOMETHING_NEW", False, "stop", "SOMETHING_NEW"),
    ],
)
def test_finish_reasons(reason: str | None, tools: bool, expected: str, native: str | None) -> None:
    assert map_finish_reason(reason, has_tool_calls=tools) == (expected, native)


def test_malformed_function_call_is_an_empty_stop_with_the_native_reason() -> None:
    c = completion({"candidates": [cand(None, "MALFORMED_FUNCTION_CALL", finishMessage="Malformed function call: x")]})
    choice = c.choices[0]
    assert choice.message.content is None and choice.message.tool_calls is None
    assert choice.finish_reason == "stop" and choice.extra == {"native_finish_reason": "MALFORMED_FUNCTION_CALL"}
    assert choice.message.extra["extra_content"]["google"]["finish_message"] == "Malformed function call: x"
    assert choice.to_dict()["native_finish_reason"] == "MALFORMED_FUNCTION_CALL"


# ----------------------------------------------------------------------------------------------- usage


def test_usage_mapping() -> None:
    u = map_usage(
        UsageMetadata(
            prompt_token_count=100,
            cached_content_token_count=60,
            candidates_token_count=20,
            thoughts_token_count=30,
            tool_use_prompt_token_count=5,
            total_token_count=155,
        )
    )
    assert u is not None
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (105, 50, 155)
    assert u.prompt_tokens_details is not None and u.prompt_tokens_details.cached_tokens == 60
    assert u.completion_tokens_details is not None and u.completion_tokens_details.reasoning_tokens == 30
    bare = map_usage(UsageMetadata(prompt_token_count=7, candidates_token_count=3))
    assert bare is not None and (bare.prompt_tokens, bare.completion_tokens, bare.total_tokens) == (7, 3, 10)
    assert bare.prompt_tokens_details is None and bare.completion_tokens_details is None
    assert map_usage(None) is None


# ----------------------------------------------------------------------------------------------- completions


def test_candidates_become_choices_with_stable_call_ids() -> None:
    c = completion(
        {
            "responseId": "RID",
            "modelVersion": "gemini-2.5-flash-001",
            "candidates": [
                cand([{"text": "a"}, {"text": "b"}], index=0),
                cand(
                    [
                        {"functionCall": {"name": "f", "args": {"x": "é"}}, "thoughtSignature": "U0k="},
                        {"functionCall": {"name": "g", "args": {}, "id": "native-id"}},
                    ],
                    index=1,
                ),
            ],
        }
    )
    assert c.id == "chatcmpl-RID" and c.model == "gemini-2.5-flash-001" and c.created == 5
    first, second = c.choices
    assert first.message.content == "ab" and first.finish_reason == "stop"
    assert second.index == 1 and second.finish_reason == "tool_calls" and second.message.content is None
    f, g = second.message.tool_calls or ()
    assert (f.id, f.function.arguments) == ("call_RID_1_0", '{"x":"é"}')
    assert f.extra == {"extra_content": {"google": {"thought_signature": "U0k="}}}
    assert (g.id, g.extra) == ("native-id", {})


def test_blocked_prompt_and_empty_responses() -> None:
    with pytest.raises(ContentPolicyViolation) as info:
        completion({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 3}})
    assert info.value.code == "PROHIBITED_CONTENT" and "PROHIBITED_CONTENT" in info.value.message
    with pytest.raises(InvalidUpstreamResponse):
        completion({"usageMetadata": {"promptTokenCount": 3}})
    with pytest.raises(InvalidUpstreamResponse) as bad:
        completion({"candidates": [{"index": "zero"}]})
    assert "candidates[0].index" in str(bad.value)


def test_logprobs() -> None:
    c = completion(
        {
            "candidates": [
                cand(
                    [{"text": "Hi"}],
                    logprobsResult={
                        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
                        "topCandidates": [
                            {
                                "candidates": [
                                    {"token": "Hi", "logProbability": -0.1},
                                    {"token": "Hey", "logProbability": -2.5},
                                ]
                            }
                        ],
                    },
                )
            ]
        }
    )
    lp = c.choices[0].logprobs
    assert lp is not None and lp.content is not None
    (tok,) = lp.content
    assert (tok.token, tok.logprob) == ("Hi", -0.1)
    assert [(t.token, t.logprob) for t in tok.top_logprobs] == [("Hi", -0.1), ("Hey", -2.5)]


# ----------------------------------------------------------------------------------------------- streams


def test_stream_chunk_protocol() -> None:
    chunks = run_stream(
        [
            sse(
                {
                    "responseId": "S1",
                    "candidates": [{"content": {"role": "model", "parts": [{"text": "think", "thought": True}]}}],
                    "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
                },
                {
                    "responseId": "S1",
                    "candidates": [
                        {"content": {"role": "model", "parts": [{"text": "Hel", "thoughtSignature": "U0lH"}]}}
                    ],
                },
                {
                    "responseId": "S1",
                    "candidates": [
                        {
                            "content": {
                                "role": "model",
                                "parts": [
                                    {"text": "lo"},
                                    {"functionCall": {"name": "f", "args": {"a": 1}}},
                                    {"functionCall": {"name": "g", "args": {}}},
                                ],
                            },
                            "finishReason": "STOP",
                        }
                    ],
                    "usageMetadata": {
                        "promptTokenCount": 4,
                        "candidatesTokenCount": 6,
                        "thoughtsTokenCount": 2,
                        "totalTokenCount": 12,
                    },
                },
            )
        ]
    )
    dicts = [c.to_dict() for c in chunks]
    assert dicts[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert dicts[1]["choices"][0]["delta"] == {"reasoning_content": "think"}
    assert dicts[2]["choices"][0]["delta"] == {
        "content": "Hel",
        "extra_content": {"google": {"thought_signature": "U0lH"}},
    }
    assert dicts[3]["choices"][0]["delta"] == {"content": "lo"}
    assert dicts[4]["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "id": "call_S1_0_0", "type": "function", "function": {"name": "f", "arguments": ""}}
    ]
    assert dicts[5]["choices"][0]["delta"]["tool_calls"] == [{"index": 0, "function": {"arguments": '{"a":1}'}}]
    assert dicts[6]["choices"][0]["delta"]["tool_calls"][0]["index"] == 1
    assert dicts[8]["choices"][0]["finish_reason"] == "tool_calls"
    assert dicts[9] == {
        **dicts[9],
        "choices": [],
        "usage": {
            "prompt_tokens": 4,
            "completion_tokens": 8,
            "total_tokens": 12,
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }
    assert len(dicts) == 10 and {d["id"] for d in dicts} == {"chatcmpl-S1"}


def test_stream_without_include_usage_has_no_usage_chunk() -> None:
    chunks = run_stream(
        [sse({"candidates": [cand([{"text": "x"}])], "usageMetadata": {"promptTokenCount": 1}})], include_usage=False
    )
    assert all(c.usage is None for c in chunks) and fold(chunks).finish_reason == "stop"


def test_stream_meta_rides_on_the_first_chunk_only() -> None:
    meta = ResponseMeta(provider="g", model="m")
    state = StreamTranslator(provider="g", model="m", created=0, meta=meta)
    chunks = state.feed({"candidates": [cand([{"text": "x"}])]})
    assert chunks[0].meta is meta and all(c.meta is None for c in chunks[1:])


def test_stream_completes_only_when_every_candidate_finished() -> None:
    state = StreamTranslator(provider="g", model="m", created=0, expected_choices=2, include_usage=True)
    state.feed({"candidates": [cand([{"text": "a"}], index=0)], "usageMetadata": {"promptTokenCount": 1}})
    assert state.phase is Phase.STREAMING
    out = state.feed({"candidates": [cand([{"text": "b"}], index=1)], "usageMetadata": {"promptTokenCount": 2}})
    assert state.complete and out[-1].usage is not None and out[-1].usage.prompt_tokens == 2
    assert state.feed({"candidates": [cand([{"text": "late"}])]}) == []
    # Fewer candidates than asked for, all finished: complete at EOF.
    short = StreamTranslator(provider="g", model="m", created=0, expected_choices=3)
    short.feed({"candidates": [cand([{"text": "a"}])]})
    assert not short.complete
    assert short.end_of_stream() == [] and short.complete


def test_stream_eof_before_finish_is_interrupted_with_the_partial_text() -> None:
    raw = sse(
        {"candidates": [{"content": {"parts": [{"text": "hmm", "thought": True}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "The answer is"}]}}]},
    )
    with pytest.raises(StreamInterrupted) as info:
        run_stream([raw])
    assert (info.value.partial, info.value.partial_reasoning) == ("The answer is", "hmm")
    assert info.value.retryable is True
    with pytest.raises(StreamInterrupted):
        run_stream([b""])


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        ({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}, Overloaded),
        ([{"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}], ServerError),
        (
            {
                "error": {
                    "code": 429,
                    "message": "quota",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}],
                }
            },
            RateLimited,
        ),
    ],
)
def test_in_stream_error_events_are_classified(error: Any, cls: type[Exception]) -> None:
    raw = sse({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]}, error)
    with pytest.raises(cls) as info:
        run_stream([raw])
    if isinstance(info.value, RateLimited):
        assert info.value.retry_after == 3.0


def test_stream_blocked_prompt_and_garbage() -> None:
    with pytest.raises(ContentPolicyViolation) as info:
        run_stream([sse({"promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "nope"}})])
    assert info.value.code == "SAFETY" and "nope" in info.value.message
    with pytest.raises(InvalidUpstreamResponse):
        run_stream([b'data: {"candidates": [{"content": {"parts": [{"text": "x"\r\n\r\n'])
    with pytest.raises(InvalidUpstreamResponse):
        run_stream([sse({"candidates": "not a list"})])


def test_stream_keeps_parts_without_an_openai_form() -> None:
    code = {"executableCode": {"language": "PYTHON", "code": "print(1)"}}
    chunks = run_stream([sse({"candidates": [cand([code, {"text": "1"}])]})])
    f = fold(chunks)
    assert f.content == "1" and f.extras == [{"extra_content": {"google": {"parts": [code]}}}]
