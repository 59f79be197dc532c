"""The Ideogram provider: request/response translation and calls over loopback against IdeogramUpstream.

Wire references: the Ideogram API reference, https://developer.ideogram.ai/api-reference (legacy ``POST /generate``
and the Ideogram 3.0 endpoints; OpenAPI mirrored in api-evangelist/ideogram ``openapi/_original/ideogram-openapi.yml``)
as summarised in wire-images.md §6 (6.2 endpoints and enums, 6.3 response, 6.4 errors, 6.6 OpenAI mapping).
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
    PermissionDenied,
    RateLimited,
    Secret,
    UnsupportedFeature,
)
from polyrelay.policy import Policy
from polyrelay.provider import CallContext, ImageProvider, ProviderSettings, TaskProvider
from polyrelay.routes import ResolvedTarget
from polyrelay.tasks import TaskService
from polyrelay.testing._faults import Fault
from polyrelay.testing._ideogram import IdeogramUpstream, tiny_png
from polyrelay.transport import Timeouts, Transport
from polyrelay.types.media import ImageRequest, TaskRequest
from polyrelay_ideogram import SPEC
from polyrelay_ideogram._provider import IdeogramProvider
from polyrelay_ideogram._request import build_call, job_from_image_request, job_from_task_request
from polyrelay_ideogram._wire import form_fields, to_wire

KEY = "ideo-secret-key-0123456789abcdef"
PNG_URI = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
TIMEOUTS = Timeouts(connect=5, first_byte=5, idle=5, total=10)

# The request example of the legacy "Generate" page (developer.ideogram.ai/api-reference/api-reference/generate).
DOC_PROMPT = (
    "A serene tropical beach scene. Dominating the foreground are tall palm trees with lush green leaves, standing "
    "tall against a backdrop of a sandy beach. The beach leads to the azure waters of the sea, which gently kisses "
    "the shoreline. In the distance, there is an island or landmass with a silhouette of what appears to be a "
    "lighthouse or tower. The sky above is painted with fluffy white clouds, some of which are tinged with hues of "
    "pink and orange, suggesting either a sunrise or sunset."
)
# A documented 200 body (wire-images.md §6.3; real-traffic sample with ``style_type: null``).
DOC_RESPONSE: dict[str, Any] = {
    "created": "2024-10-30T18:45:11.507243+00:00",
    "data": [
        {
            "is_image_safe": True,
            "prompt": "A detailed image depicts a vast Stone Age city",
            "resolution": "768x1232",
            "seed": 1705925986,
            "style_type": None,
            "url": "https://ideogram.ai/api/images/ephemeral/aUXMxzdBQy.png?exp=1743867804&sig=0a1b2c",
        }
    ],
}


@pytest.fixture
async def upstream() -> AsyncIterator[IdeogramUpstream]:
    async with IdeogramUpstream(api_key=KEY) as server:
        yield server


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


def make(upstream_url: str, transport: Transport, **options: Any) -> IdeogramProvider:
    settings = ProviderSettings(
        name="ideo", type="ideogram", base_url=upstream_url, api_key=Secret(KEY), options=options,
        config_path="providers.ideo",
    )  # fmt: skip
    provider = SPEC.factory(settings, transport)
    assert isinstance(provider, IdeogramProvider)
    return provider


def ctx(model: str = "V_3") -> CallContext:
    return CallContext(model=model, timeouts=TIMEOUTS)


def call_of(model: str, **kw: Any) -> Any:
    return build_call(job_from_image_request(ImageRequest(model=model, **kw)))


# ------------------------------------------------------------------------------------------------ translation


def test_legacy_generate_body_is_the_documented_example() -> None:
    call = call_of("V_2", prompt=DOC_PROMPT, params={"aspect_ratio": "10:16", "magic_prompt_option": "AUTO"})

    assert call.path == "/generate"
    assert to_wire(call.json_body) == {
        "image_request": {
            "prompt": DOC_PROMPT,
            "aspect_ratio": "ASPECT_10_16",
            "model": "V_2",
            "magic_prompt_option": "AUTO",
        }
    }


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        ("V_2", "1024x1024", {"resolution": "RESOLUTION_1024_1024"}),  # an exact RESOLUTION_W_H wins
        ("V_2_TURBO", "1536x1024", {"aspect_ratio": "ASPECT_3_2"}),  # no such resolution: the exact ratio
        ("V_1", "1024x1024", {"aspect_ratio": "ASPECT_1_1"}),  # V_1 takes no resolution (V_2 and later)
        ("V_2", "1280x800", {"resolution": "RESOLUTION_1280_800"}),
        ("V_2", "800x1280", {"aspect_ratio": "ASPECT_10_16"}),  # 3.0 has 800x1280; the legacy list does not
        ("V_2", "auto", {}),
    ],
)
def test_legacy_size_maps_to_resolution_or_aspect(model: str, size: str, expected: dict[str, str]) -> None:
    body = to_wire(call_of(model, prompt="a fox", size=size).json_body)["image_request"]

    assert {k: v for k, v in body.items() if k in ("resolution", "aspect_ratio")} == expected


@pytest.mark.parametrize(
    ("size", "quality", "expected"),
    [
        ("1024x1024", None, [("resolution", "1024x1024")]),
        ("1536x1024", "hd", [("aspect_ratio", "3x2"), ("rendering_speed", "QUALITY")]),
        ("1024x1536", "low", [("aspect_ratio", "2x3"), ("rendering_speed", "TURBO")]),
        ("1312x736", "standard", [("resolution", "1312x736"), ("rendering_speed", "DEFAULT")]),
    ],
)
def test_v3_size_and_quality_follow_the_openai_mapping(
    size: str, quality: str | None, expected: list[tuple[str, str]]
) -> None:
    call = call_of("V_3", prompt="a fox", size=size, quality=quality)

    assert call.path == "/v1/ideogram-v3/generate"
    assert form_fields(call.fields) == [("prompt", "a fox"), *expected]


def test_v3_fields_are_written_as_multipart_text() -> None:
    call = call_of(
        "ideogram-v3-turbo",
        prompt="poster",
        n=3,
        params={"seed": 42, "style_codes": ["AB12CD34", "00ff00ff"], "magic_prompt": True, "negative_prompt": "blur",
                "color_palette": {"name": "PASTEL"}, "aspect_ratio": "16:9"},
    )  # fmt: skip

    assert form_fields(call.fields) == [
        ("prompt", "poster"),
        ("seed", "42"),
        ("aspect_ratio", "16x9"),
        ("rendering_speed", "TURBO"),  # from the model name
        ("magic_prompt", "ON"),
        ("negative_prompt", "blur"),
        ("num_images", "3"),
        ("color_palette", '{"name":"PASTEL"}'),
        ("style_codes", "AB12CD34"),
        ("style_codes", "00ff00ff"),
    ]


def test_unsupported_openai_settings_become_warnings() -> None:
    call = call_of("V_3", prompt="a fox", style="vivid", user="u-1")

    assert [(w.setting, w.type) for w in call.warnings] == [
        ("style", "unsupported-setting"),
        ("user", "unsupported-setting"),
    ]


@pytest.mark.parametrize(
    ("model", "kwargs", "path"),
    [
        ("V_3", {"prompt": "x", "size": "1792x1024"}, "size"),  # 7:4 is not an Ideogram ratio
        ("V_2", {"prompt": "x", "size": "1024x1792"}, "size"),
        ("V_3", {"prompt": "x", "size": "big"}, "size"),
        ("V_3", {"prompt": "x", "size": "1024x1024", "params": {"aspect_ratio": "1:1"}}, "params.aspect_ratio"),
        ("V_3", {"prompt": "x", "params": {"aspect_ratio": "7:5"}}, "params.aspect_ratio"),
        ("V_3", {"prompt": "x", "params": {"resolution": "1000x1000"}}, "params.resolution"),
        ("V_3", {"prompt": "x", "n": 9}, "n"),
        ("V_3", {"prompt": "x", "params": {"seed": -1}}, "params.seed"),
        ("V_3", {"prompt": "x", "params": {"rendering_speed": "WARP"}}, "params.rendering_speed"),
        ("V_3", {"prompt": "x", "params": {"style_type": "ANIME"}}, "params.style_type"),  # V_2 only
        ("V_3", {"prompt": "x", "params": {"style_codes": ["xyz"]}}, "params.style_codes[0]"),
        ("V_3", {"prompt": "x", "params": {"sede": 1}}, "params.sede"),
        ("V_3", {"prompt": "x", "quality": "ultra"}, "quality"),
        ("V_3", {"prompt": "  "}, "prompt"),
        ("V_3", {}, "prompt"),
        ("V_9", {"prompt": "x"}, "model"),
        ("V_1", {"prompt": "x", "params": {"resolution": "1024x1024"}}, "params.resolution"),
        ("V_2A", {"prompt": "x", "params": {"negative_prompt": "y"}}, "params.negative_prompt"),
        ("V_2", {"prompt": "x", "operation": "edit", "images": (PNG_URI,)}, "operation"),
        ("V_3", {"prompt": "x", "operation": "variation", "images": (PNG_URI,)}, "operation"),
        ("V_3", {"prompt": "x", "images": (PNG_URI,)}, "images"),
        ("V_3", {"prompt": "x", "operation": "edit"}, "images"),
        ("V_3", {"prompt": "x", "operation": "edit", "images": ("data:image/gif;base64,R0lG",)}, "images[0]"),
        ("V_3", {"prompt": "x", "operation": "edit", "images": ("data:image/png;base64,@@@",)}, "images[0]"),
        ("V_3", {"prompt": "x", "operation": "edit", "images": ("ftp://x/y.png",)}, "images[0]"),
        ("V_3", {"prompt": "x", "operation": "edit", "images": (PNG_URI, PNG_URI)}, "images[1]"),
        ("V_3", {"operation": "edit", "images": (PNG_URI,), "params": {"endpoint": "reframe"}}, "size"),
        ("V_3", {"prompt": "x", "operation": "edit", "images": (PNG_URI,), "params": {"endpoint": "inpaint"}}, "mask"),
        (
            "V_3",
            {"prompt": "x", "operation": "edit", "images": (PNG_URI,), "params": {"endpoint": "replace"}},
            "params.endpoint",
        ),
        (
            "V_3",
            {
                "prompt": "x",
                "operation": "edit",
                "images": (PNG_URI,),
                "params": {"endpoint": "replace-background", "aspect_ratio": "1:1"},
            },
            "params.aspect_ratio",
        ),
    ],
)
def test_invalid_input_names_the_field(model: str, kwargs: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        call_of(model, **kwargs)
    assert info.value.path == path


def test_unknown_parameter_suggests_the_right_one() -> None:
    with pytest.raises(InvalidRequest, match="did you mean 'rendering_speed'"):
        call_of("V_3", prompt="x", params={"rendering_sped": "TURBO"})


def test_task_request_maps_to_the_same_call_with_its_own_field_names() -> None:
    job = job_from_task_request(TaskRequest(model="V_3", prompt="a fox", aspect_ratio="9:16", seed=7))
    fields = build_call(job).fields
    assert fields is not None
    assert form_fields(fields) == [("prompt", "a fox"), ("seed", "7"), ("aspect_ratio", "9x16")]

    with pytest.raises(InvalidRequest) as info:
        job_from_task_request(TaskRequest(model="V_3", prompt="x", kind="video"))
    assert info.value.path == "kind"
    with pytest.raises(InvalidRequest) as info:
        build_call(job_from_task_request(TaskRequest(model="V_3", prompt="x", aspect_ratio="7:3")))
    assert info.value.path == "aspect_ratio"


async def test_documented_response_becomes_an_openai_images_response(
    upstream: IdeogramUpstream, transport: Transport
) -> None:
    provider = make(upstream.base_url, transport)
    upstream.push_body(DOC_RESPONSE)
    result = await provider.generate_images(ImageRequest(model="ideogram", prompt="stone age city"), ctx("V_2"))

    assert result.created == 1730313911  # the ISO-8601 'created' as Unix seconds
    [image] = result.data
    assert image.url == DOC_RESPONSE["data"][0]["url"]
    assert image.revised_prompt == "A detailed image depicts a vast Stone Age city"
    assert dict(image.extra) == {"seed": 1705925986, "resolution": "768x1232"}
    assert result.meta is not None and result.meta.provider == "ideo"


# ------------------------------------------------------------------------------------------------ over loopback


async def test_legacy_generate_over_loopback(upstream: IdeogramUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    result = await provider.generate_images(
        ImageRequest(model="ideogram", prompt="a fox", n=2, size="1024x1024"), ctx("V_2_TURBO")
    )

    [recorded] = upstream.requests
    assert recorded.path == "/generate"
    assert recorded.headers["Api-Key"] == KEY and "Authorization" not in recorded.headers
    assert recorded.json == {
        "image_request": {
            "prompt": "a fox",
            "model": "V_2_TURBO",
            "num_images": 2,
            "resolution": "RESOLUTION_1024_1024",
        }
    }
    assert len(result.data) == 2
    assert all(d.url and d.url.startswith(upstream.origin + "/api/images/ephemeral/") for d in result.data)
    assert [d.extra["resolution"] for d in result.data] == ["1024x1024", "1024x1024"]


async def test_v3_generate_sends_multipart_and_reads_the_answer(
    upstream: IdeogramUpstream, transport: Transport
) -> None:
    provider = make(upstream.base_url, transport)
    result = await provider.generate_images(
        ImageRequest(model="ideogram", prompt="a lighthouse", size="1536x1024", quality="hd",
                     params={"magic_prompt": "ON", "seed": 99}),
        ctx("V_3"),
    )  # fmt: skip

    received = upstream.received[-1]
    assert received.path == "/v1/ideogram-v3/generate"
    assert upstream.requests[-1].headers["Content-Type"].startswith("multipart/form-data")
    assert dict(received.fields) == {
        "prompt": ("a lighthouse",), "seed": ("99",), "aspect_ratio": ("3x2",), "rendering_speed": ("QUALITY",),
        "magic_prompt": ("ON",),
    }  # fmt: skip
    [image] = result.data
    assert image.revised_prompt is not None and image.revised_prompt.startswith("a lighthouse, ")  # MagicPrompt
    assert image.extra == {"seed": 99, "resolution": "1248x832", "style_type": "GENERAL"}


async def test_edit_with_mask_uploads_both_images(upstream: IdeogramUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    await provider.generate_images(
        ImageRequest(model="m", prompt="add a hat", operation="edit", images=(PNG_URI,), mask=PNG_URI, size="512x512"),
        ctx("V_3"),
    )

    received = upstream.received[-1]
    assert received.path == "/v1/ideogram-v3/edit"
    assert received.files["image"][0].data == tiny_png()
    assert received.files["image"][0].content_type == "image/png"
    assert received.files["mask"][0].data == tiny_png()
    assert received.field("prompt") == "add a hat"
    assert "aspect_ratio" not in received.fields  # /edit keeps the input's shape


@pytest.mark.parametrize(
    ("params", "mask", "path"),
    [
        ({}, None, "/v1/ideogram-v3/remix"),
        ({"endpoint": "inpaint"}, PNG_URI, "/v1/ideogram-v3/inpaint"),
        ({"endpoint": "replace-background"}, None, "/v1/ideogram-v3/replace-background"),
    ],
)
async def test_edit_endpoints(
    upstream: IdeogramUpstream, transport: Transport, params: dict[str, Any], mask: str | None, path: str
) -> None:
    provider = make(upstream.base_url, transport)
    result = await provider.generate_images(
        ImageRequest(model="m", prompt="a beach", operation="edit", images=(PNG_URI,), mask=mask, params=params),
        ctx("V_3"),
    )

    assert upstream.received[-1].path == path
    assert len(result.data) == 1


async def test_reframe_takes_the_size_as_resolution(upstream: IdeogramUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    await provider.generate_images(
        ImageRequest(model="m", prompt="ignored", operation="edit", images=(PNG_URI,), size="1280x768",
                     params={"endpoint": "reframe"}),
        ctx("V_3"),
    )  # fmt: skip

    received = upstream.received[-1]
    assert received.path == "/v1/ideogram-v3/reframe"
    assert dict(received.fields) == {"resolution": ("1280x768",)}


async def test_image_url_input_is_downloaded_without_credentials(
    upstream: IdeogramUpstream, transport: Transport
) -> None:
    provider = make(upstream.base_url, transport)
    first = await provider.generate_images(ImageRequest(model="m", prompt="a cat"), ctx("V_3"))
    source = first.data[0].url
    assert source is not None

    await provider.generate_images(ImageRequest(model="m", prompt="a dog", operation="edit", images=(source,)), ctx())

    download = upstream.requests[1]
    assert download.method == "GET" and download.path.startswith("/api/images/ephemeral/")
    assert "Api-Key" not in download.headers and "Authorization" not in download.headers
    assert upstream.received[-1].files["image"][0].data == tiny_png()


async def test_b64_json_downloads_the_result(upstream: IdeogramUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    result = await provider.generate_images(
        ImageRequest(model="m", prompt="a cat", response_format="b64_json"), ctx("V_3")
    )

    [image] = result.data
    assert image.url is None and image.b64_json is not None
    assert base64.b64decode(image.b64_json) == tiny_png()
    assert "Api-Key" not in upstream.requests[-1].headers


async def test_bearer_auth_for_relays(transport: Transport) -> None:
    async with IdeogramUpstream(api_key=KEY, accept_bearer=True) as relay:
        provider = make(relay.base_url, transport, auth="bearer")
        await provider.generate_images(ImageRequest(model="m", prompt="a cat"), ctx("V_2"))

    assert relay.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert "Api-Key" not in relay.requests[0].headers


# ------------------------------------------------------------------------------------------------ failures


async def test_withheld_image_is_a_content_policy_violation(upstream: IdeogramUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    with pytest.raises(ContentPolicyViolation) as info:
        await provider.generate_images(ImageRequest(model="m", prompt="something withheld"), ctx("V_3"))

    assert info.value.code == "image_unsafe"
    assert info.value.retryable is False


async def test_partly_withheld_answer_keeps_the_safe_images_and_warns(
    upstream: IdeogramUpstream, transport: Transport
) -> None:
    provider = make(upstream.base_url, transport)
    upstream.withhold(1)
    result = await provider.generate_images(ImageRequest(model="m", prompt="a cat", n=3), ctx("V_2"))

    assert len(result.data) == 2
    assert result.meta is not None
    assert [w.message for w in result.meta.warnings] == ["1 of 3 images were withheld by Ideogram's safety check"]


async def test_safety_422_is_a_content_policy_violation(upstream: IdeogramUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    with pytest.raises(ContentPolicyViolation) as info:
        await provider.generate_images(ImageRequest(model="m", prompt="forbidden scene"), ctx("V_2"))

    assert info.value.status == 422
    assert info.value.message == "Prompt failed the safety check."


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (400, BadRequest, False),
        (429, RateLimited, True),
        (401, AuthenticationFailed, False),
        (403, PermissionDenied, False),
        (503, Overloaded, True),
    ],
)
async def test_status_errors_are_classified(
    upstream: IdeogramUpstream, transport: Transport, status: int, error: type[Exception], retryable: bool
) -> None:
    provider = make(upstream.base_url, transport)
    upstream.add_fault(Fault.status_code(status, retry_after=3 if status == 429 else None))
    with pytest.raises(Exception) as info:
        await provider.generate_images(ImageRequest(model="m", prompt="a cat"), ctx("V_3"))

    exc = info.value
    assert isinstance(exc, error)
    assert getattr(exc, "status", None) == status
    assert getattr(exc, "retryable", None) is retryable
    if status == 429:
        assert isinstance(exc, RateLimited) and exc.retry_after == 3


async def test_the_key_never_appears_in_errors(transport: Transport) -> None:
    async with IdeogramUpstream(api_key="another-key-entirely") as other:
        provider = make(other.base_url, transport)
        with pytest.raises(AuthenticationFailed) as info:
            await provider.generate_images(ImageRequest(model="m", prompt="a cat"), ctx("V_3"))

    exc = info.value
    assert info.value.status == 401
    for text in (str(exc), repr(exc), str(exc.headers), repr(provider), repr(provider.settings)):
        assert KEY not in text and KEY[:12] not in text


async def test_an_echoed_key_is_redacted(upstream: IdeogramUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    upstream.add_fault(Fault.status_code(400, body={"error": f"bad key {KEY}"}))
    with pytest.raises(Exception) as info:
        await provider.generate_images(ImageRequest(model="m", prompt="a cat"), ctx("V_3"))

    assert KEY not in str(info.value) and KEY not in repr(info.value)


@pytest.mark.parametrize(
    "request_",
    [
        ImageRequest(model="m", prompt="x", size="1792x1024"),
        ImageRequest(model="m", prompt="x", operation="edit", images=("data:image/png;base64,!!",)),
        ImageRequest(model="m", prompt="x", params={"nope": 1}),
    ],
)
async def test_bad_input_fails_before_any_request(
    upstream: IdeogramUpstream, transport: Transport, request_: ImageRequest
) -> None:
    provider = make(upstream.base_url, transport)
    with pytest.raises(InvalidRequest):
        await provider.generate_images(request_, ctx("V_3"))
    assert upstream.requests == []


def test_factory_validates_options_and_key(transport: Transport) -> None:
    with pytest.raises(ConfigError) as info:
        make("http://127.0.0.1:1", transport, auht="bearer")
    assert info.value.key == "providers.ideo.auht" and "did you mean 'auth'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        make("http://127.0.0.1:1", transport, auth="basic")
    assert info.value.key == "providers.ideo.auth"
    with pytest.raises(ConfigError) as info:
        SPEC.factory(ProviderSettings(name="i", type="ideogram", config_path="providers.i"), transport)
    assert info.value.env_var == "IDEOGRAM_API_KEY"


def test_spec_and_protocols(transport: Transport) -> None:
    provider = make("http://127.0.0.1:1", transport)
    assert SPEC.capabilities == frozenset({"images", "tasks"})
    assert SPEC.default_base_url == "https://api.ideogram.ai"
    assert isinstance(provider, ImageProvider) and isinstance(provider, TaskProvider)


# ------------------------------------------------------------------------------------------------ tasks


async def test_submit_returns_a_finished_task_that_poll_returns_again(
    upstream: IdeogramUpstream, transport: Transport
) -> None:
    provider = make(upstream.base_url, transport)
    snapshot = await provider.submit(TaskRequest(model="m", prompt="a fox", aspect_ratio="16:9"), ctx("V_3"))

    assert snapshot.status == "succeeded" and snapshot.progress == 1.0
    [artifact] = snapshot.outputs
    assert (artifact.width, artifact.height, artifact.media_type) == (1312, 736, "image/png")
    assert await provider.poll(snapshot.upstream_id, ctx()) == snapshot
    with pytest.raises(NotFound):
        await provider.poll("ideogram-unknown", ctx())
    with pytest.raises(UnsupportedFeature):
        await provider.cancel(snapshot.upstream_id, ctx())
    assert len(upstream.requests) == 1


async def test_task_with_images_is_a_remix(upstream: IdeogramUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    await provider.submit(TaskRequest(model="m", prompt="neon", images=(PNG_URI,), params={"image_weight": 70}), ctx())

    received = upstream.received[-1]
    assert received.path == "/v1/ideogram-v3/remix"
    assert received.field("image_weight") == "70"


async def test_through_the_task_service(upstream: IdeogramUpstream, transport: Transport) -> None:
    provider = make(upstream.base_url, transport)
    target = ResolvedTarget(provider="ideo", model="V_3_TURBO", policy=Policy(), route="ideogram")
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    service = TaskService(
        resolve=lambda model: [target],
        get_provider=lambda name: provider,
        make_ctx=lambda t: CallContext(model=t.model, timeouts=TIMEOUTS, requested_model=t.route),
        sleep=sleep,
        rng=random.Random(1),
    )
    task = await service.create(model="ideogram", prompt="a red fox", size="1024x1024")
    done = await service.wait(task.id, timeout=30)

    assert task.status == "succeeded" and done.status == "succeeded"
    assert done.outputs[0].url is not None and done.outputs[0].url.startswith(upstream.origin)
    assert upstream.received[-1].field("rendering_speed") == "TURBO"
    assert slept == []
