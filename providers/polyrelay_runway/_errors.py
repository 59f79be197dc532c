"""Runway HTTP errors, task statuses and task failure codes → the polyrelay error tree / task states.

HTTP errors (docs.dev.runwayml.com/api-details/errors, wire-video-audio-workflow.md §1.5): 400 invalid input
(a JSON body with an ``error`` member; validation failures also list ``issues`` with a ``path`` — shape not
confirmed live), 401 bad key, 404 unknown task, 405 wrong method, 429 too many requests or the daily generation
quota (retry with backoff), 502/503 load shedding, 504 overloaded: all through :func:`classify.error_for_status`.

Task failures are not HTTP errors: a task ends ``FAILED`` with ``failure`` (text) and an optional machine
``failureCode`` (docs.dev.runwayml.com/errors/task-failures). The code is mapped by prefix, most specific first,
onto a normalized :class:`TaskErrorInfo` code and the error class a caller would raise for it
(:func:`failure_error`); the raw code stays in the snapshot's ``extra["failure_code"]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

import attrs

from polyrelay.classify import error_for_status
from polyrelay.errors import (
    BadRequest,
    ContentPolicyViolation,
    Secret,
    ServerError,
    UpstreamStatusError,
    redact,
)
from polyrelay.transport import HttpResponse
from polyrelay.types.media import TaskErrorInfo, TaskStatus

#: Runway task status → task status. THROTTLED: stored but not enqueued (org at its concurrency limit); it
#: starts by itself, so it is ``queued``, not an error.
STATUS_MAP: Mapping[str, TaskStatus] = {
    "PENDING": "queued",
    "THROTTLED": "queued",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "canceled",
}


@attrs.frozen(kw_only=True)
class FailureClass:
    """What a ``failureCode`` family means: our code, the error class it corresponds to, and whether a new
    attempt (a resubmission: a new task, a new charge) may succeed."""

    code: str
    error: type[UpstreamStatusError]
    retryable: bool


#: ``failureCode`` prefixes, most specific first. SAFETY.* (input or output moderation) and INTERNAL.BAD_OUTPUT.*
#: are documented (§1.4); the INPUT_PREPROCESSING.* and ASSET.* families are from the task-failures page as
#: summarised there ("asset/preprocessing codes") and not confirmed code by code.
FAILURE_PREFIXES: tuple[tuple[str, FailureClass], ...] = (
    ("SAFETY.", FailureClass(code="content_policy_violation", error=ContentPolicyViolation, retryable=False)),
    (
        "INPUT_PREPROCESSING.SAFETY.",
        FailureClass(code="content_policy_violation", error=ContentPolicyViolation, retryable=False),
    ),
    ("INTERNAL.BAD_OUTPUT.", FailureClass(code="bad_output", error=ServerError, retryable=True)),
    ("INPUT_PREPROCESSING.INTERNAL", FailureClass(code="internal_error", error=ServerError, retryable=True)),
    ("INPUT_PREPROCESSING.", FailureClass(code="invalid_input", error=BadRequest, retryable=False)),
    ("ASSET.", FailureClass(code="invalid_input", error=BadRequest, retryable=False)),
    ("INTERNAL", FailureClass(code="internal_error", error=ServerError, retryable=True)),
)
#: A FAILED task without a code we know.
UNKNOWN_FAILURE = FailureClass(code="task_failed", error=UpstreamStatusError, retryable=False)


def classify_failure(failure_code: str | None) -> FailureClass:
    """The :class:`FailureClass` of a ``failureCode`` (opaque: matched by prefix only)."""
    if failure_code:
        for prefix, failure in FAILURE_PREFIXES:
            if failure_code.startswith(prefix):
                return failure
    return UNKNOWN_FAILURE


def failure_info(failure: str | None, failure_code: str | None, secrets: tuple[Secret | str, ...]) -> TaskErrorInfo:
    """The :class:`TaskErrorInfo` of a FAILED task: normalized code; message = Runway's text (+ raw code)."""
    text = redact((failure or "Runway reported the task failed")[:1000], secrets)
    message = f"{text} ({failure_code})" if failure_code else text
    return TaskErrorInfo(code=classify_failure(failure_code).code, message=message)


def failure_error(
    failure: str | None, failure_code: str | None, *, provider: str, secrets: tuple[Secret | str, ...] = ()
) -> UpstreamStatusError:
    """The error-tree exception a failed task corresponds to (SAFETY.* → ContentPolicyViolation, INTERNAL.* →
    a retryable ServerError, ...), for callers that want to handle task failures like call failures."""
    failure_class = classify_failure(failure_code)
    info = failure_info(failure, failure_code, secrets)
    return failure_class.error(
        info.message, provider=provider, code=failure_code or failure_class.code, retryable=failure_class.retryable
    )


def _error_message(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    error = body.get("error")
    message = error if isinstance(error, str) else error.get("message", "") if isinstance(error, Mapping) else ""
    issues = body.get("issues")
    if isinstance(issues, list):
        details = []
        for issue in issues:
            if isinstance(issue, Mapping):
                path = ".".join(str(p) for p in issue.get("path", ()) or ())
                text = str(issue.get("message", ""))
                details.append(f"{path}: {text}" if path else text)
        if details:
            message = f"{message}: {'; '.join(details)}" if message else "; ".join(details)
    return str(message)


async def raise_for_response(
    response: HttpResponse, *, provider: str, model: str | None, secrets: tuple[Secret | str, ...]
) -> NoReturn:
    """Read an error response and raise the classified error."""
    text = await response.text()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    message = _error_message(body) or text[:300] or f"HTTP {response.status}"
    raise error_for_status(
        response.status,
        message,
        provider=provider,
        headers=response.headers,
        request_id=response.request_id,
        model=model,
        body=body,
        secrets=secrets,
    )
