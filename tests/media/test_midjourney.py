"""The Midjourney provider: midjourney-proxy translation and the task lifecycle over loopback (MidjourneyUpstream).

Wire references: wire-images.md §2 (2.2 paths and speed modes, 2.3 auth, 2.4 endpoints, 2.5 submit codes, 2.6 task
object and statuses, 2.7 button customIds and the modal flow, 2.8 polling); the envelope and task examples are the
ones in novicezk/midjourney-proxy ``docs/api.md`` and trueai-org/midjourney-proxy ``docs/en/api.md`` (codes 1, 21,
22, 23, 24; describe result; notify payload) and the relay fetch sample quoted in §2.6.
"""

from __future__ import annotations

import base64
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    ContentPolicyViolation,
    InvalidRequest,
    NotFound,
    Overloaded,
    QuotaExceeded,
    RateLimited,
    Secret,
    ServerError,
    TaskFailed,
    TaskTimeout,
    UnsupportedFeature,
    UpstreamStatusError,
)
from polyrelay.policy import Policy
from polyrelay.provider import CallContext, ProviderSettings, TaskActionProvider, TaskProvider
from polyrelay.routes import ResolvedTarget
from polyrelay.tasks import TaskService
from polyrelay.testing._faults import Fault
from polyrelay.testing._ideogram import tiny_png
from polyrelay.testing._midjourney import MidjourneyUpstream
from polyrelay.transport import Timeouts, Transport
from polyrelay.types.media import TaskRequest, TaskSnapshot
from polyrelay_midjourney import SPEC
from polyrelay_midjourney._buttons import friendly_name, normalize_action
from polyrelay_midjourney._errors import envelope_error
from polyrelay_midjourney._provider import MidjourneyProvider, parse_progress, snapshot_of
from polyrelay_midjourney._request import plan_submit
from polyrelay_midjourney._wire import parse_submit, parse_task

KEY = "mj-secret-0123456789abcdefghij"
PNG_URI = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
TIMEOUTS = Timeouts(connect=5, first_byte=5, idle=5, total=10)
HASH = "26d56b92-3c2f-4b0a-9a55-2f8a1f0c7e11"

# The documented relay fetch (wire-images.md §2.6), with the full button row of a finished imagine.
DOC_TASK: dict[str, Any] = {
    "id": "1320098173412546",
    "action": "IMAGINE",
    "status": "SUCCESS",
    "progress": "100%",
    "prompt": "cat --v 6.1",
    "promptEn": "cat --v 6.1",
    "description": "Submit success",
    "state": "",
    "submitTime": 1741531578038,
    "startTime": 1741531580190,
    "finishTime": 1741531608566,
    "imageUrl": "https://cdn.discordapp.com/attachments/1/2/grid.png?ex=67d&is=67c&hm=ab12",
    "failReason": "",
    "properties": {"botType": "MID_JOURNEY", "finalPrompt": "cat --v 6.1", "messageHash": HASH},
    "buttons": [
        *({"customId": f"MJ::JOB::upsample::{i}::{HASH}", "emoji": "", "label": f"U{i}", "type": 2, "style": 2}
          for i in range(1, 5)),
        {"customId": f"MJ::JOB::reroll::0::{HASH}::SOLO", "emoji": "🔄", "label": "", "type": 2, "style": 2},
        *({"customId": f"MJ::JOB::variation::{i}::{HASH}", "emoji": "", "label": f"V{i}", "type": 2, "style": 2}
          for i in range(1, 5)),
    ],
}  # fmt: skip


@pytest.fixture
async def upstream() -> AsyncIterator[MidjourneyUpstream]:
    async with MidjourneyUpstream(api_key=KEY) as server:
        yield server


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


def make(base_url: str, transport: Transport, *, key: str | None = KEY, **options: Any) -> MidjourneyProvider:
    options.setdefault("auth", "mj-api-secret")
    settings = ProviderSettings(
        name="mj", type="midjourney", base_url=base_url, api_key=Secret(key) if key else None, options=options,
        config_path="providers.mj",
    )  # fmt: skip
    provider = SPEC.factory(settings, transport)
    assert isinstance(provider, MidjourneyProvider)
    return provider


def ctx(model: str = "midjourney") -> CallContext:
    return CallContext(model=model, timeouts=TIMEOUTS)


async def run_to_end(provider: MidjourneyProvider, upstream_id: str, limit: int = 20) -> list[TaskSnapshot]:
    """A bounded poll loop (no sleeping: the simulator advances one step per read)."""
    seen = []
    for _ in range(limit):
        snapshot = await provider.poll(upstream_id, ctx())
        seen.append(snapshot)
        if snapshot.status in ("succeeded", "failed", "canceled"):
            return seen
    raise AssertionError(f"task {upstream_id} did not finish in {limit} polls")


def service_for(provider: MidjourneyProvider, clock: list[float]) -> TaskService:
    target = ResolvedTarget(provider="mj", model="midjourney", policy=Policy(), route="midjourney")

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    return TaskService(
        resolve=lambda model: [target],
        get_provider=lambda name: provider,
        make_ctx=lambda t: CallContext(model=t.model, timeouts=TIMEOUTS, requested_model=t.route),
        sleep=sleep,
        clock=lambda: clock[0],
        rng=random.Random(7),
    )


# ------------------------------------------------------------------------------------------------ translation


def test_imagine_plan_puts_settings_into_prompt_flags() -> None:
    plan = plan_submit(
        TaskRequest(model="niji-6", prompt="a red fox", aspect_ratio="16:9", negative_prompt="text", seed=7,
                    images=("https://example.com/ref.png", PNG_URI), params={"state": "s-1", "notifyHook": "https://h"})
    )  # fmt: skip

    assert plan.operation == "imagine"
    assert plan.prompt == "https://example.com/ref.png a red fox --ar 16:9 --no text --seed 7"
    assert [ref.data is not None for ref in plan.images] == [False, True]
    assert (plan.bot_type, plan.state, plan.notify_hook) == ("NIJI_JOURNEY", "s-1", "https://h")


def test_size_becomes_a_reduced_aspect_ratio_unless_the_prompt_has_one() -> None:
    assert plan_submit(TaskRequest(model="mj", prompt="cat", size="1792x1024")).prompt == "cat --ar 7:4"
    assert plan_submit(TaskRequest(model="mj", prompt="cat --ar 2:3", size="1024x1024")).prompt == "cat --ar 2:3"


@pytest.mark.parametrize(
    ("request_", "path", "error"),
    [
        (TaskRequest(model="mj", prompt=None, images=(PNG_URI,)), "prompt", InvalidRequest),
        (TaskRequest(model="mj", prompt="cat", n=2), "n", UnsupportedFeature),
        (TaskRequest(model="mj", prompt="cat", duration=5), "duration", UnsupportedFeature),
        (TaskRequest(model="mj", prompt="cat", kind="video"), "kind", InvalidRequest),
        (TaskRequest(model="mj", prompt="cat --ar 1:1", aspect_ratio="16:9"), "aspect_ratio", InvalidRequest),
        (TaskRequest(model="mj", prompt="cat", seed=-3), "seed", InvalidRequest),
        (TaskRequest(model="mj", prompt="cat", params={"botType": "DALL_E"}), "params.bot_type", InvalidRequest),
        (TaskRequest(model="mj", prompt="cat", params={"mode": "warp"}), "params.mode", InvalidRequest),
        (TaskRequest(model="mj", prompt="cat", params={"operaton": "blend"}), "params.operaton", InvalidRequest),
        (TaskRequest(model="mj", prompt="cat", images=("data:image/png;base64,%%",)), "images[0]", InvalidRequest),
        (TaskRequest(model="mj", images=(PNG_URI,), params={"operation": "blend"}), "images", InvalidRequest),
        (
            TaskRequest(model="mj", images=(PNG_URI, PNG_URI), aspect_ratio="16:9", params={"operation": "blend"}),
            "aspect_ratio",
            InvalidRequest,
        ),
        (
            TaskRequest(model="mj", prompt="x", images=(PNG_URI,), params={"operation": "describe"}),
            "prompt",
            UnsupportedFeature,
        ),
    ],
)
def test_invalid_submit_names_the_field(request_: TaskRequest, path: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        plan_submit(request_)
    assert getattr(info.value, "path", None) == path


def test_documented_fetch_becomes_a_snapshot() -> None:
    snapshot = snapshot_of(parse_task(DOC_TASK))

    assert snapshot.upstream_id == "1320098173412546"
    assert (snapshot.status, snapshot.raw_status, snapshot.progress) == ("succeeded", "SUCCESS", 1.0)
    assert snapshot.actions[0] == f"MJ::JOB::upsample::1::{HASH}" and len(snapshot.actions) == 9
    assert [b["action"] for b in snapshot.extra["buttons"]] == [
        "upscale:1", "upscale:2", "upscale:3", "upscale:4", "reroll",
        "variation:1", "variation:2", "variation:3", "variation:4",
    ]  # fmt: skip
    [grid] = snapshot.outputs
    assert grid.url == DOC_TASK["imageUrl"] and grid.media_type == "image/png" and grid.extra == {"grid": True}
    assert snapshot.extra["final_prompt"] == "cat --v 6.1"


def test_split_images_and_numeric_ids_are_accepted() -> None:
    task = parse_task({**DOC_TASK, "id": 1320098173412546, "imageUrls": [
        {"url": "https://cdn/1.png", "thumbnail": "https://cdn/t1.png"}, "https://cdn/2.png"]})  # fmt: skip
    snapshot = snapshot_of(task)

    assert snapshot.upstream_id == "1320098173412546"
    assert [(a.url, a.extra) for a in snapshot.outputs[1:]] == [
        ("https://cdn/1.png", {"grid_index": 1}),
        ("https://cdn/2.png", {"grid_index": 2}),
    ]


def test_documented_describe_result_lists_the_four_prompts() -> None:
    # novicezk docs/api.md §4: the describe result is in properties.finalPrompt.
    task = parse_task({
        "id": "14001929738841620", "action": "DESCRIBE", "status": "SUCCESS",
        "description": "/describe 14001929738841620.png",
        "imageUrl": "https://cdn.discordapp.com/attachments/xxx/xxx/14001929738841620.png",
        "properties": {"finalPrompt": "1️⃣ Cat --ar 5:4\n\n2️⃣ Cat2 --ar 5:4\n\n3️⃣ Cat3 --ar 5:4\n\n4️⃣ Cat4 --ar 5:4"},
    })  # fmt: skip

    assert snapshot_of(task).extra["prompts"] == ["Cat --ar 5:4", "Cat2 --ar 5:4", "Cat3 --ar 5:4", "Cat4 --ar 5:4"]


@pytest.mark.parametrize(
    ("status", "progress", "expected"),
    [
        ("NOT_START", "0%", ("queued", 0.0)),
        ("SUBMITTED", "", ("queued", None)),
        ("MODAL", None, ("queued", None)),
        ("IN_PROGRESS", "45%", ("running", 0.45)),
        ("SUCCESS", "100%", ("succeeded", 1.0)),
        ("FAILURE", "", ("failed", None)),
        ("CANCEL", "12%", ("canceled", 0.12)),
        ("", "0%", ("queued", 0.0)),  # a new-api row before its first sync
        ("SOMETHING_NEW", "50%", ("running", 0.5)),
    ],
)
def test_status_and_progress_mapping(status: str, progress: str | None, expected: tuple[str, float | None]) -> None:
    snapshot = snapshot_of(parse_task({"id": "1", "status": status, "progress": progress, "failReason": "boom"}))
    assert (snapshot.status, snapshot.progress) == expected
    if status == "FAILURE":
        assert snapshot.error is not None and snapshot.error.message == "boom"
    if status == "MODAL":
        assert snapshot.actions == ("modal",)


@pytest.mark.parametrize(("value", "expected"), [("45%", 0.45), ("7", 0.07), ("", None), ("n/a", None), (None, None)])
def test_progress_parsing(value: Any, expected: float | None) -> None:
    assert parse_progress(value, "IN_PROGRESS") == expected


@pytest.mark.parametrize(
    ("custom_id", "name"),
    [
        (f"MJ::JOB::upsample::3::{HASH}", "upscale:3"),
        (f"MJ::JOB::variation::1::{HASH}", "variation:1"),
        (f"MJ::JOB::reroll::0::{HASH}::SOLO", "reroll"),
        (f"MJ::JOB::high_variation::1::{HASH}::SOLO", "vary:strong"),
        (f"MJ::JOB::low_variation::1::{HASH}::SOLO", "vary:subtle"),
        (f"MJ::Inpaint::1::{HASH}::SOLO", "vary:region"),
        (f"MJ::Outpaint::50::1::{HASH}::SOLO", "zoom:2x"),
        (f"MJ::Outpaint::75::1::{HASH}::SOLO", "zoom:1.5x"),  # Discord's "Zoom Out 1.5x"
        (f"MJ::Outpaint::60::1::{HASH}::SOLO", None),
        (f"MJ::CustomZoom::{HASH}", "zoom:custom"),
        (f"MJ::JOB::pan_left::1::{HASH}::SOLO", "pan:left"),
        (f"MJ::JOB::upsample_v6_2x_subtle::1::{HASH}::SOLO", "upscale:subtle"),
        (f"MJ::JOB::upsample_v5_4x::1::{HASH}::SOLO", "upscale:4x"),
        (f"MJ::JOB::animate_high::1::{HASH}::SOLO", "animate:high"),
        ("MJ::Job::PicReader::2", "imagine:2"),
        ("MJ::Picread::Retry", "describe:retry"),
        (f"MJ::JOB::something_new::1::{HASH}", None),
    ],
)
def test_button_catalogue(custom_id: str, name: str | None) -> None:
    assert friendly_name(custom_id) == name


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("U2", "upscale:2"), ("v4", "variation:4"), ("🔄", "reroll"), ("zoom:2", "zoom:2x"), ("zoom:1.5", "zoom:1.5x"),
     ("Pan:Left", "pan:left"), ("explode", None), ("upscale:5", None), ("zoom:3x", None)],
)  # fmt: skip
def test_friendly_action_aliases(given: str, canonical: str | None) -> None:
    assert normalize_action(given) == canonical


@pytest.mark.parametrize(
    ("body", "error", "retryable"),
    [
        # trueai docs/en/api.md: code 23 queue full; novicezk docs/api.md: code 24 banned prompt.
        ({"code": 23, "description": "Queue is full, please try again later", "result": "14001929738841620",
          "properties": {"discordInstanceId": "1118138338562560102"}}, RateLimited, True),
        ({"code": 24, "description": "可能包含敏感词", "properties": {"promptEn": "nude body", "bannedWord": "nude"}},
         ContentPolicyViolation, False),
        ({"code": 3, "description": "关联任务不存在或已失效"}, NotFound, False),
        ({"code": 4, "description": "prompt不能为空"}, BadRequest, False),
        ({"code": 9, "description": "system error"}, ServerError, True),
        ({"code": 4, "description": "quota_not_enough"}, QuotaExceeded, False),
        ({"code": 42, "description": "something new"}, UpstreamStatusError, False),
    ],
)  # fmt: skip
def test_envelope_code_table(body: dict[str, Any], error: type[Exception], retryable: bool) -> None:
    envelope = parse_submit(body)
    exc = envelope_error(envelope.code, envelope.description, envelope.properties, status=200, provider="mj",
                         secrets=())  # fmt: skip

    assert type(exc) is error
    assert exc.code == str(body["code"]) and exc.retryable is retryable
    if body["code"] == 24:
        assert "banned word: 'nude'" in exc.message


def test_documented_success_envelopes_parse() -> None:
    # novicezk docs/api.md §2 (code 1, 21, 22) and a relay doc printing result as a number.
    assert parse_submit({"code": 1, "description": "成功", "result": "8498455807619990"}).task_id == "8498455807619990"
    assert parse_submit({"code": 1, "description": "Submitted successfully", "properties": {},
                         "result": 1320098173412546}).task_id == "1320098173412546"  # fmt: skip
    queued = parse_submit({"code": 22, "description": "排队中，前面还有1个任务", "result": "0741798445574458",
                           "properties": {"numberOfQueues": 1}})  # fmt: skip
    assert (queued.task_id, queued.properties) == ("0741798445574458", {"numberOfQueues": 1})


# ------------------------------------------------------------------------------------------------ lifecycle


async def test_imagine_progresses_over_polls_to_a_grid(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    submitted = await provider.submit(TaskRequest(model="mj", prompt="a red fox", aspect_ratio="3:2"), ctx())
    seen = await run_to_end(provider, submitted.upstream_id)

    assert submitted.status == "queued" and submitted.extra["submit_code"] == 1
    assert upstream.requests[0].path == "/mj/submit/imagine"
    assert upstream.requests[0].json == {"prompt": "a red fox --ar 3:2"}
    assert upstream.requests[0].headers["mj-api-secret"] == KEY
    assert [(s.status, s.progress) for s in seen] == [
        ("queued", 0.0), ("running", 0.15), ("running", 0.45), ("running", 0.8), ("succeeded", 1.0),
    ]  # fmt: skip
    assert seen[1].extra["preview_url"].startswith(upstream.origin)
    done = seen[-1]
    assert len(done.outputs) == 5 and done.outputs[0].extra == {"grid": True}
    assert [a.extra["grid_index"] for a in done.outputs[1:]] == [1, 2, 3, 4]
    assert len(done.actions) == 9 and all(a.startswith("MJ::") for a in done.actions)
    async with transport.session.get(done.outputs[0].url or "") as image:  # the result URL serves a real PNG
        assert image.status == 200 and (await image.read()) == tiny_png()


async def test_failure_reports_the_fail_reason(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    submitted = await provider.submit(TaskRequest(model="mj", prompt="please fail-me"), ctx())
    final = (await run_to_end(provider, submitted.upstream_id))[-1]

    assert final.status == "failed" and final.raw_status == "FAILURE"
    assert final.error is not None and final.error.message == "[Invalid parameter] Invalid value"
    assert final.outputs == () and final.actions == ()


async def test_banned_prompt_is_a_content_policy_violation(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    with pytest.raises(ContentPolicyViolation) as info:
        await provider.submit(TaskRequest(model="mj", prompt="nude body"), ctx())

    assert info.value.code == "24" and "nude" in info.value.message
    assert upstream.tasks == {}


async def test_queue_full_is_rate_limited(transport: Transport) -> None:
    async with MidjourneyUpstream(api_key=KEY, queue_size=1) as server:
        provider = make(server.base_url, transport)
        await provider.submit(TaskRequest(model="mj", prompt="first"), ctx())
        with pytest.raises(RateLimited) as info:
            await provider.submit(TaskRequest(model="mj", prompt="second"), ctx())

    assert info.value.code == "23" and info.value.retryable is True


async def test_queued_code_22_is_a_queued_task(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    upstream.push_submit_code(22, numberOfQueues=3)
    submitted = await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())

    assert submitted.status == "queued"
    assert (submitted.extra["submit_code"], submitted.extra["queue_position"]) == (22, 3)
    assert submitted.upstream_id in upstream.tasks


@pytest.mark.parametrize(("code", "error"), [(4, BadRequest), (9, ServerError), (77, UpstreamStatusError)])
async def test_scripted_failure_codes(
    upstream: MidjourneyUpstream, transport: Transport, code: int, error: type[Exception]
) -> None:
    provider = make(upstream.base_url, transport)
    upstream.push_submit_code(code, "nope")
    with pytest.raises(error) as info:
        await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())
    assert getattr(info.value, "code", None) == str(code)


async def test_transient_poll_error_is_classified_retryable(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    submitted = await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())
    upstream.add_fault(Fault.status_code(503), path=f"/mj/task/{submitted.upstream_id}/fetch")

    with pytest.raises(Overloaded) as info:
        await provider.poll(submitted.upstream_id, ctx())
    assert info.value.retryable is True
    assert (await provider.poll(submitted.upstream_id, ctx())).status == "queued"  # the task was not lost


async def test_poll_many_uses_list_by_condition(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    first = await provider.submit(TaskRequest(model="mj", prompt="one"), ctx())
    second = await provider.submit(TaskRequest(model="mj", prompt="two"), ctx())
    snapshots = await provider.poll_many([first.upstream_id, "404", second.upstream_id], ctx())

    assert upstream.requests[-1].path == "/mj/task/list-by-condition"
    assert upstream.requests[-1].json == {"ids": [first.upstream_id, "404", second.upstream_id]}
    assert {k: v.raw_status for k, v in snapshots.items()} == {
        first.upstream_id: "SUBMITTED",
        second.upstream_id: "SUBMITTED",
    }


async def test_unknown_task_is_not_found(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    with pytest.raises(NotFound) as info:
        await provider.poll("999", ctx())
    assert info.value.retryable is False


async def test_speed_mode_prefix_and_bearer_auth(upstream: MidjourneyUpstream, transport: Transport) -> None:
    async with MidjourneyUpstream(api_key=KEY, relay=True) as relay:
        provider = make(relay.base_url + "/mj", transport, auth="bearer", mode="fast")
        submitted = await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())
        await provider.poll(submitted.upstream_id, ctx())

    assert [r.path for r in relay.requests] == [
        "/mj-fast/mj/submit/imagine",
        f"/mj-fast/mj/task/{submitted.upstream_id}/fetch",
    ]
    assert relay.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert "mj-api-secret" not in relay.requests[0].headers
    assert relay.tasks[submitted.upstream_id].mode == "FAST"


async def test_relay_dialect_numbers_and_errors(transport: Transport) -> None:
    async with MidjourneyUpstream(api_key=KEY, relay=True) as relay:
        provider = make(relay.base_url, transport, auth="bearer")
        submitted = await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())
        with pytest.raises(NotFound):
            await provider.poll("404404", ctx())  # new-api: HTTP 400 {"code": 4, "description": "task_no_found"}
        with pytest.raises(ContentPolicyViolation) as banned:
            await provider.submit(TaskRequest(model="mj", prompt="nude"), ctx())  # HTTP 400 + code 24

    assert submitted.upstream_id.isdigit()  # "result" arrived as a JSON number
    assert banned.value.status == 400 and banned.value.code == "24"


@pytest.mark.parametrize("relay", [False, True])
async def test_wrong_secret_never_shows_the_key(transport: Transport, relay: bool) -> None:
    async with MidjourneyUpstream(api_key="the-right-secret-value", relay=relay) as server:
        provider = make(server.base_url, transport, auth="bearer" if relay else "mj-api-secret")
        with pytest.raises(AuthenticationFailed) as info:
            await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())

    exc = info.value
    assert exc.status == 401
    for text in (str(exc), repr(exc), str(exc.headers), repr(provider)):
        assert KEY not in text and KEY[:12] not in text


async def test_echoed_secret_is_redacted(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    upstream.push_submit_code(4, f"bad secret {KEY}")
    with pytest.raises(BadRequest) as info:
        await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())
    assert KEY not in str(info.value) and KEY not in repr(info.value)


async def test_blend_and_describe(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    blend = await provider.submit(
        TaskRequest(model="mj", images=(PNG_URI, PNG_URI), aspect_ratio="2:3", params={"operation": "blend"}), ctx()
    )
    described = await provider.submit(TaskRequest(model="mj", images=(PNG_URI,), params={"operation": "describe"}),
                                      ctx())  # fmt: skip
    blend_done = (await run_to_end(provider, blend.upstream_id))[-1]
    describe_done = (await run_to_end(provider, described.upstream_id))[-1]

    assert upstream.requests[0].path == "/mj/submit/blend"
    assert upstream.requests[0].json == {"base64Array": [PNG_URI, PNG_URI], "dimensions": "PORTRAIT"}
    assert upstream.requests[1].json == {"base64": PNG_URI}
    assert blend_done.status == "succeeded" and len(blend_done.outputs) == 5
    assert describe_done.extra["prompts"][0] == "Cat --ar 5:4"
    assert describe_done.extra["buttons"][0]["action"] == "imagine:1"


async def test_blend_downloads_url_images_without_credentials(
    upstream: MidjourneyUpstream, transport: Transport
) -> None:
    provider = make(upstream.base_url, transport)
    first = await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())
    done = (await run_to_end(provider, first.upstream_id))[-1]
    url = done.outputs[1].url or ""

    await provider.submit(TaskRequest(model="mj", images=(url, PNG_URI), params={"operation": "blend"}), ctx())

    download = next(r for r in upstream.requests if r.path.startswith("/attachments/"))
    assert "mj-api-secret" not in download.headers and "Authorization" not in download.headers
    assert upstream.requests[-1].json["base64Array"][0] == PNG_URI  # the download, inlined as a data URL


@pytest.mark.parametrize(
    "request_",
    [
        TaskRequest(model="mj", prompt="   "),
        TaskRequest(model="mj", prompt="a cat", n=3),
        TaskRequest(model="mj", prompt="a cat", params={"bot": "NIJI_JOURNEY"}),
        TaskRequest(model="mj", images=(PNG_URI,), params={"operation": "blend"}),
    ],
)
async def test_bad_input_fails_before_any_request(
    upstream: MidjourneyUpstream, transport: Transport, request_: TaskRequest
) -> None:
    provider = make(upstream.base_url, transport)
    with pytest.raises(InvalidRequest):
        await provider.submit(request_, ctx())
    assert upstream.requests == []


# ------------------------------------------------------------------------------------------------ actions


async def finished(provider: MidjourneyProvider, upstream: MidjourneyUpstream, prompt: str = "a cat") -> TaskSnapshot:
    submitted = await provider.submit(TaskRequest(model="mj", prompt=prompt), ctx())
    upstream.finish(submitted.upstream_id)
    return await provider.poll(submitted.upstream_id, ctx())


async def test_upscale_presses_the_matching_button(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    grid = await finished(provider, upstream)
    upscaled = await provider.action(grid.upstream_id, "upscale:2", ctx(), {"state": "keep-me"})

    action_request = upstream.requests[-1]
    assert action_request.path == "/mj/submit/action"
    u2 = next(b["custom_id"] for b in grid.extra["buttons"] if b["label"] == "U2")
    assert action_request.json == {"taskId": grid.upstream_id, "customId": u2, "state": "keep-me"}
    final = (await run_to_end(provider, upscaled.upstream_id))[-1]
    assert final.status == "succeeded" and len(final.outputs) == 1 and final.extra["action"] == "UPSCALE"
    assert {b["action"] for b in final.extra["buttons"]} >= {"vary:region", "zoom:2x", "zoom:custom", "pan:left"}


@pytest.mark.parametrize("action", ["variation:3", "reroll", "V1", "🔄"])
async def test_grid_actions_start_new_tasks(upstream: MidjourneyUpstream, transport: Transport, action: str) -> None:
    provider = make(upstream.base_url, transport)
    grid = await finished(provider, upstream)
    child = await provider.action(grid.upstream_id, action, ctx(), {})

    assert child.upstream_id != grid.upstream_id and child.status == "queued"
    assert upstream.tasks[child.upstream_id].parent_id == grid.upstream_id


async def test_unknown_action_lists_the_vocabulary_without_a_request(
    upstream: MidjourneyUpstream, transport: Transport
) -> None:
    provider = make(upstream.base_url, transport)
    with pytest.raises(InvalidRequest) as info:
        await provider.action("1748339029401828", "explode", ctx(), {})

    assert info.value.path == "action"
    assert "upscale:1-4" in str(info.value) and "variation:1-4" in str(info.value)
    assert upstream.requests == []


async def test_action_not_offered_lists_the_tasks_actions(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    grid = await finished(provider, upstream)
    before = len(upstream.requests)
    with pytest.raises(InvalidRequest) as info:
        await provider.action(grid.upstream_id, "pan:left", ctx(), {})

    message = str(info.value)
    assert "available actions: upscale:1, upscale:2, upscale:3, upscale:4, reroll, variation:1" in message
    assert [r.path for r in upstream.requests[before:]] == [f"/mj/task/{grid.upstream_id}/fetch"]  # no submit


async def test_action_on_an_unfinished_task_explains_why(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    submitted = await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())
    with pytest.raises(InvalidRequest, match="offers no actions"):
        await provider.action(submitted.upstream_id, "upscale:1", ctx(), {})


@pytest.mark.parametrize(
    ("action", "params", "path"),
    [
        ("vary:region", {}, "params.mask"),
        ("zoom:custom", {}, "params.zoom"),
        ("zoom:custom", {"zoom": 3}, "params.zoom"),
        ("upscale:1", {"prompt": "x"}, "params.prompt"),
        ("upscale:1", {"mask": PNG_URI}, "params.mask"),
        ("upscale:1", {"colour": "red"}, "params.colour"),
    ],
)
async def test_action_parameters_are_checked_before_any_request(
    upstream: MidjourneyUpstream, transport: Transport, action: str, params: dict[str, Any], path: str
) -> None:
    provider = make(upstream.base_url, transport)
    with pytest.raises(InvalidRequest) as info:
        await provider.action("1748339029401828", action, ctx(), params)
    assert info.value.path == path
    assert upstream.requests == []


async def test_custom_zoom_goes_through_the_modal(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    grid = await finished(provider, upstream, "a lighthouse")
    upscaled = await provider.action(grid.upstream_id, "upscale:1", ctx(), {})
    upstream.finish(upscaled.upstream_id)
    zoomed = await provider.action(upscaled.upstream_id, "zoom:custom", ctx(), {"zoom": 1.8})

    paths = [r.path for r in upstream.requests[-2:]]
    assert paths == ["/mj/submit/action", "/mj/submit/modal"]
    assert upstream.requests[-1].json == {"taskId": zoomed.upstream_id, "prompt": "a lighthouse --zoom 1.8"}
    assert (await run_to_end(provider, zoomed.upstream_id))[-1].status == "succeeded"


async def test_vary_region_sends_the_mask(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    grid = await finished(provider, upstream)
    upscaled = await provider.action(grid.upstream_id, "U3", ctx(), {})
    upstream.finish(upscaled.upstream_id)
    region = await provider.action(upscaled.upstream_id, "vary:region", ctx(), {"mask": PNG_URI, "prompt": "a hat"})

    assert upstream.requests[-1].json == {"taskId": region.upstream_id, "prompt": "a hat", "maskBase64": PNG_URI}
    assert upstream.tasks[region.upstream_id].status == "SUBMITTED"


async def test_remix_without_input_waits_in_modal_then_completes(
    upstream: MidjourneyUpstream, transport: Transport
) -> None:
    provider = make(upstream.base_url, transport)
    grid = await finished(provider, upstream, "a cat")
    waiting = await provider.action(grid.upstream_id, "variation:2", ctx(), {"enable_remix": True})

    assert (waiting.status, waiting.raw_status, waiting.actions) == ("queued", "MODAL", ("modal",))
    assert (await provider.poll(waiting.upstream_id, ctx())).raw_status == "MODAL"
    resumed = await provider.action(waiting.upstream_id, "modal", ctx(), {"prompt": "a cat in a hat"})
    assert resumed.upstream_id == waiting.upstream_id
    assert upstream.requests[-1].json == {"taskId": waiting.upstream_id, "prompt": "a cat in a hat"}
    assert (await run_to_end(provider, waiting.upstream_id))[-1].status == "succeeded"


async def test_relay_remix_modal_is_found_by_fetching(transport: Transport) -> None:
    # new-api rewrites the modal's code 21 to 1 (except Vary Region / Custom Zoom): the provider looks at the task.
    async with MidjourneyUpstream(api_key=KEY, relay=True) as relay:
        provider = make(relay.base_url, transport, auth="bearer")
        grid = await finished(provider, relay)
        child = await provider.action(grid.upstream_id, "variation:1", ctx(),
                                      {"enable_remix": True, "prompt": "a cat, blue"})  # fmt: skip

    assert [r.path for r in relay.requests[-3:]] == [
        "/mj/submit/action", f"/mj/task/{child.upstream_id}/fetch", "/mj/submit/modal",
    ]  # fmt: skip
    assert relay.tasks[child.upstream_id].modal_input == {"taskId": child.upstream_id, "prompt": "a cat, blue"}


async def test_raw_custom_id_is_accepted_when_the_task_has_it(
    upstream: MidjourneyUpstream, transport: Transport
) -> None:
    provider = make(upstream.base_url, transport)
    grid = await finished(provider, upstream)
    await provider.action(grid.upstream_id, grid.actions[5], ctx(), {})

    assert upstream.requests[-1].json["customId"] == grid.actions[5]
    with pytest.raises(InvalidRequest, match="available actions"):
        await provider.action(grid.upstream_id, "MJ::JOB::upsample::1::not-this-hash", ctx(), {})


# ------------------------------------------------------------------------------------------------ cancel, config


async def test_cancel_is_unsupported_without_the_option(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    with pytest.raises(UnsupportedFeature):
        await provider.cancel("1748339029401828", ctx())
    assert upstream.requests == []


async def test_cancel_where_the_proxy_has_it(transport: Transport) -> None:
    async with MidjourneyUpstream(api_key=KEY, supports_cancel=True) as server:
        provider = make(server.base_url, transport, cancel=True)
        submitted = await provider.submit(TaskRequest(model="mj", prompt="a cat"), ctx())
        canceled = await provider.cancel(submitted.upstream_id, ctx())

    assert (canceled.status, canceled.raw_status) == ("canceled", "CANCEL")
    assert server.requests[-1].path == f"/mj/task/{submitted.upstream_id}/cancel"


def test_factory_validates_the_config(transport: Transport) -> None:
    with pytest.raises(ConfigError) as info:
        SPEC.factory(ProviderSettings(name="mj", type="midjourney", config_path="providers.mj"), transport)
    assert info.value.key == "providers.mj.base_url"
    for options, key in (
        ({"mdoe": "fast"}, "providers.mj.mdoe"),
        ({"mode": "warp"}, "providers.mj.mode"),
        ({"auth": "basic"}, "providers.mj.auth"),
        ({"poll_interval": 0}, "providers.mj.poll_interval"),
        ({"cancel": "yes"}, "providers.mj.cancel"),
    ):
        with pytest.raises(ConfigError) as info:
            make("http://127.0.0.1:1", transport, **options)
        assert info.value.key == key
    with pytest.raises(ConfigError, match="did you mean 'mode'"):
        make("http://127.0.0.1:1", transport, mdoe="fast")


def test_spec_protocols_and_poll_cadence(transport: Transport) -> None:
    provider = make("http://127.0.0.1:1", transport)
    assert SPEC.default_base_url is None and SPEC.capabilities == frozenset({"tasks"})
    assert isinstance(provider, TaskProvider) and isinstance(provider, TaskActionProvider)
    running = TaskSnapshot(upstream_id="1", status="running")
    assert provider.poll_interval(running, 5) == 2.0
    assert provider.poll_interval(running, 60) == 5.0
    assert make("http://127.0.0.1:1", transport, poll_interval=15).poll_interval(running, 5) == 15.0


# ------------------------------------------------------------------------------------------------ TaskService


async def test_end_to_end_through_the_task_service(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    clock = [1_000.0]
    service = service_for(provider, clock)
    progress: list[float | None] = []

    task = await service.create(model="midjourney", prompt="a red fox", aspect_ratio="16:9")
    done = await service.wait(task.id, timeout=600, on_progress=lambda t: progress.append(t.progress))
    upscaled = await service.action(done.id, action="upscale:4")
    final = await service.wait(upscaled.id, timeout=600)

    assert done.status == "succeeded" and len(done.outputs) == 5
    assert progress == [0.0, 0.15, 0.45, 0.8, 1.0]
    assert final.status == "succeeded" and final.extra["action"] == "UPSCALE"
    assert final.upstream_id != done.upstream_id


async def test_task_service_times_out_and_raises_failures(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    clock = [1_000.0]
    service = service_for(provider, clock)

    slow = await service.create(model="midjourney", prompt="a slow cat")
    with pytest.raises(TaskTimeout):
        await service.wait(slow.id, timeout=3)  # the fake clock runs out after a couple of 2 s polls

    failing = await service.create(model="midjourney", prompt="fail-me please")
    with pytest.raises(TaskFailed, match=r"\[Invalid parameter\] Invalid value"):
        await service.wait(failing.id, timeout=600)


async def test_task_service_survives_a_transient_poll_error(upstream: MidjourneyUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    service = service_for(provider, [1_000.0])
    task = await service.create(model="midjourney", prompt="a cat")
    upstream.add_fault(Fault.status_code(503), path=f"/mj/task/{task.upstream_id}/fetch", times=2)

    done = await service.wait(task.id, timeout=600)

    assert done.status == "succeeded"
    statuses = [r.path for r in upstream.requests if r.path.endswith("/fetch")]
    assert len(statuses) == 2 + 5  # two 503s, then the five steps
