"""The OpenAI Images provider: per-model validation, request/response translation and calls over loopback.

Wire references: the Images API reference (https://platform.openai.com/docs/api-reference/images — create, edit,
variation; parameter tables per model) as summarised in wire-images.md §5 (5.2 the per-model table, 5.3 edits as
multipart with repeated ``image[]``, 5.4 variations, 5.5 errors), and recorded bodies: vercel/ai
``packages/openai/src/image/__fixtures__/openai-image.json`` (a trimmed real generation: b64_json +
revised_prompt) and ``gpt-image-response-format-error.json`` (the real 400 for ``response_format`` on GPT image);
the dall-e ``content_policy_violation`` message of songquanpeng/one-api issue #737.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from media_harness import API_KEY, FakeClock, Media, build_media, open_transport, settings

from polyrelay.errors import (
    BadRequest,
    ConfigError,
    ContentPolicyViolation,
    InvalidRequest,
    QuotaExceeded,
    ServerError,
    UnsupportedFeature,
)
from polyrelay.testing._faults import Fault
from polyrelay.testing._openai import INSUFFICIENT_QUOTA_BODY
from polyrelay.testing._openai_images import OpenAIImagesUpstream, parse_form, tiny_png
from polyrelay.transport import Transport
from polyrelay.types.media import ImageRequest, ImagesResponse
from polyrelay_openai_images import SPEC
from polyrelay_openai_images._models import check
from polyrelay_openai_images._wire import parse

# vercel/ai openai-image.json (real, b64 truncated by vercel).
RECORDED_GENERATION: dict[str, Any] = {
    "created": 1770935200,
    "data": [
        {
            "b64_json": "iVBORw0KGgoAAAANSUhEUgAABAAAAAQACAIAAADwf7zUAAA3CGNhQlgAADcIanVtYgAAAB5qdW1k"
            "YzJwYQARABCAAACqADibcQNj",
            "revised_prompt": "A small and adorable baby sea otter. This little creature is covered in a thick and "
            "fluffy brown fur, its tiny paws are slightly visible. The otter has bright, curious eyes and it's "
            "floating on its back on a calm sea, surrounded by floating seaweed.",
        },
        {
            "b64_json": "iVBORw0KGgoAAAANSUhEUgAABAAAAAQACAIAAADwf7zUAAEp2GNhQlgAASnYanVtYgAAAB5qdW1k"
            "YzJwYQARABCAAACqADibcQNj"
        },
    ],
}
# vercel/ai gpt-image-response-format-error.json (real).
RECORDED_RESPONSE_FORMAT_ERROR: dict[str, Any] = {
    "error": {
        "message": "Unknown parameter: 'response_format'.",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": "unknown_parameter",
    }
}
PNG = tiny_png()
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def upstream() -> AsyncIterator[OpenAIImagesUpstream]:
    async with OpenAIImagesUpstream() as server:
        yield server


def media_for(transport: Transport, clock: FakeClock, server: OpenAIImagesUpstream, **options: Any) -> Media:
    return build_media(transport, clock, {"oai": (SPEC, settings("oai", "openai-images", server.base_url, **options))})


def image_request(model: str = "dall-e-3", **kw: Any) -> ImageRequest:
    kw.setdefault("prompt", "a sea otter")
    return ImageRequest(model=model, **kw)


def sent(request: ImageRequest, model: str) -> dict[str, Any]:
    return {k: v for k, v in check(request, model, provider="oai").fields.items() if v is not None}


# -- per-model validation (before any network call) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kw", "path"),
    [
        ("dall-e-3", {"n": 2}, "n"),
        ("dall-e-2", {"n": 11}, "n"),
        ("dall-e-3", {"size": "512x512"}, "size"),
        ("dall-e-2", {"size": "1792x1024"}, "size"),
        ("gpt-image-1", {"size": "1792x1024"}, "size"),
        ("dall-e-2", {"quality": "hd"}, "quality"),
        ("gpt-image-1", {"quality": "hd"}, "quality"),
        ("dall-e-3", {"style": "cartoon"}, "style"),
        ("gpt-image-1", {"background": "green"}, "background"),
        ("gpt-image-1", {"background": "transparent", "output_format": "jpeg"}, "background"),
        ("gpt-image-1", {"output_format": "gif"}, "output_format"),
        ("gpt-image-1", {"params": {"output_compression": 101}}, "output_compression"),
        ("gpt-image-1", {"params": {"moderation": "none"}}, "moderation"),
        ("dall-e-2", {"prompt": "x" * 1001}, "prompt"),
        ("gpt-image-2", {"size": "1000x1000"}, "size"),  # not a multiple of 16
        ("gpt-image-2", {"size": "3840x960"}, "size"),  # 4:1
        (
            "gpt-image-1-mini",
            {"operation": "edit", "images": (PNG_URI,), "params": {"input_fidelity": "high"}},
            "input_fidelity",
        ),
        ("dall-e-2", {"operation": "edit", "images": (PNG_URI, PNG_URI)}, "image"),
        ("dall-e-2", {"mask": PNG_URI}, "mask"),
    ],
)
def test_bad_values_name_the_field(model: str, kw: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check(image_request(model, **kw), model, provider="oai")
    assert info.value.path == path


@pytest.mark.parametrize(
    ("model", "operation"), [("dall-e-3", "edit"), ("dall-e-3", "variation"), ("gpt-image-1", "variation")]
)
def test_unsupported_operations(model: str, operation: str) -> None:
    kw: dict[str, Any] = {"operation": operation, "images": (PNG_URI,)}
    if operation == "variation":
        kw["prompt"] = None
    with pytest.raises(UnsupportedFeature):
        check(image_request(model, **kw), model, provider="oai")


def test_parameters_a_model_lacks_are_dropped_with_warnings() -> None:
    request = image_request("gpt-image-1", style="vivid", response_format="url", quality="high", background="auto")
    checked = check(request, "gpt-image-1", provider="oai")
    assert {k: v for k, v in checked.fields.items() if v is not None} == {
        "prompt": "a sea otter",
        "quality": "high",
        "background": "auto",
    }
    assert sorted(w.setting or "" for w in checked.warnings) == ["response_format", "style"]
    dalle = check(image_request("dall-e-3", background="transparent"), "dall-e-3", provider="oai")
    assert [w.setting for w in dalle.warnings] == ["background"]


def test_valid_requests_keep_their_values() -> None:
    assert sent(image_request("dall-e-3", size="1792x1024", quality="hd", style="natural", n=1), "dall-e-3") == {
        "prompt": "a sea otter",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
    }
    assert sent(image_request("gpt-image-2", size="2048x1152"), "gpt-image-2")["size"] == "2048x1152"


def test_models_outside_the_table_pass_everything_through() -> None:
    assert sent(image_request("relay-image-x", size="7x7", style="any", params={"k": 1}), "relay-image-x") == {
        "prompt": "a sea otter",
        "size": "7x7",
        "style": "any",
        "k": 1,
    }
    # an unknown gpt-image-* follows GPT rules, without a size list
    assert check(image_request("gpt-image-9", size="1234x1234"), "gpt-image-9", provider="oai").fields["size"]


def test_streaming_partial_images_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature):
        check(image_request("gpt-image-1", params={"stream": True}), "gpt-image-1", provider="oai")


# -- response translation -------------------------------------------------------------------------------------


def test_the_recorded_generation_parses() -> None:
    response = parse(RECORDED_GENERATION, ImagesResponse, provider="oai", what="x")
    assert [d.revised_prompt is not None for d in response.data] == [True, False]
    assert response.to_dict() == RECORDED_GENERATION


async def test_the_recorded_response_format_error_is_a_bad_request(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    upstream.add_fault(Fault.status_code(400, body=RECORDED_RESPONSE_FORMAT_ERROR))
    media = media_for(transport, clock, upstream)
    # a relay's model name skips local validation, so the upstream's own 400 comes back
    with pytest.raises(BadRequest) as info:
        await media.images.generate(model="oai/relay-gpt-image", prompt="otter", response_format="b64_json")
    assert info.value.code == "unknown_parameter"
    assert info.value.message == "Unknown parameter: 'response_format'."
    assert upstream.requests[0].json["response_format"] == "b64_json"


async def test_azure_inner_error_is_a_content_policy_violation(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    body = {
        "error": {
            "code": None,
            "message": "Your request was rejected as a result of our safety system.",
            "inner_error": {"code": "ResponsibleAIPolicyViolation", "content_filter_results": {}},
        }
    }
    upstream.add_fault(Fault.status_code(400, body=body))
    media = media_for(transport, clock, upstream)
    with pytest.raises(ContentPolicyViolation):
        await media.images.generate(model="oai/dall-e-3", prompt="otter")


# -- calls over loopback -----------------------------------------------------------------------------------------


async def test_dalle3_generation_with_url(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    media = media_for(transport, clock, upstream, organization="org-1")
    response = await media.images.generate(model="oai/dall-e-3", prompt="a sea otter", size="1024x1792", style="vivid")
    (call,) = upstream.requests
    assert call.path == "/v1/images/generations"
    assert call.json == {"model": "dall-e-3", "prompt": "a sea otter", "size": "1024x1792", "style": "vivid"}
    assert call.headers["Authorization"] == f"Bearer {API_KEY}"
    assert call.headers["OpenAI-Organization"] == "org-1"
    (item,) = response.data
    assert item.url is not None and item.url.startswith(upstream.origin)
    assert item.revised_prompt == "A detailed rendering of: a sea otter"
    assert response.meta is not None and response.meta.provider == "oai" and response.meta.model == "dall-e-3"
    assert response.meta.request_id is not None and response.meta.request_id.startswith("req_")


async def test_dalle2_b64_json_is_asked_from_the_upstream(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    response = await media.images.generate(model="oai/dall-e-2", prompt="otter", n=2, response_format="b64_json")
    assert upstream.requests[0].json["response_format"] == "b64_json"
    assert [base64.b64decode(d.b64_json or "") for d in response.data] == [PNG, PNG]


async def test_gpt_image_returns_b64_usage_and_extras(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    response = await media.images.generate(
        model="oai/gpt-image-1",
        prompt="otter",
        quality="high",
        background="transparent",
        output_format="png",
        response_format="url",
    )
    assert "response_format" not in upstream.requests[0].json  # GPT image rejects it upstream
    assert response.data[0].b64_json is not None
    assert response.usage is not None and response.usage.total_tokens == 4170
    assert response.extra["background"] == "transparent"
    assert response.meta is not None and [w.setting for w in response.meta.warnings] == ["response_format"]


async def test_gpt_image_edit_sends_multipart_with_repeated_image_parts(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    second = tiny_png(2, 2)
    await media.images.edit(
        model="oai/gpt-image-1",
        image=[PNG, second],
        prompt="add a hat",
        mask=PNG,
        size="1024x1024",
        input_fidelity="high",
    )
    (call,) = upstream.requests
    assert call.path == "/v1/images/edits"
    form = parse_form(call)
    assert form.fields == {
        "model": ("gpt-image-1",),
        "prompt": ("add a hat",),
        "size": ("1024x1024",),
        "input_fidelity": ("high",),
    }
    assert [(f.name, f.content_type, f.data) for f in form.files] == [
        ("image[]", "image/png", PNG),
        ("image[]", "image/png", second),
        ("mask", "image/png", PNG),
    ]


async def test_dalle2_edit_and_variation_send_a_single_image_part(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    await media.images.edit(model="oai/dall-e-2", image=PNG_URI, prompt="add a hat", size="512x512")
    variation = await media.images.create_variation(model="oai/dall-e-2", image=PNG, n=2, response_format="b64_json")
    edit_form, variation_form = parse_form(upstream.requests[0]), parse_form(upstream.requests[1])
    assert [f.name for f in edit_form.files] == ["image"] and edit_form.files[0].data == PNG
    assert upstream.requests[1].path == "/v1/images/variations"
    assert variation_form.fields == {"model": ("dall-e-2",), "n": ("2",), "response_format": ("b64_json",)}
    assert len(variation.data) == 2


async def test_edit_downloads_url_images_first(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    upstream.files["source.png"] = PNG
    media = media_for(transport, clock, upstream)
    await media.images.edit(model="oai/dall-e-2", image=f"{upstream.origin}/files/source.png", prompt="hat")
    download, edit = upstream.requests
    assert download.path == "/files/source.png"
    assert parse_form(edit).files[0].data == PNG


@pytest.mark.parametrize(
    ("model", "code"), [("dall-e-3", "content_policy_violation"), ("gpt-image-1", "moderation_blocked")]
)
async def test_safety_rejections_are_content_policy_violations(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream, model: str, code: str
) -> None:
    media = media_for(transport, clock, upstream)
    with pytest.raises(ContentPolicyViolation) as info:
        await media.images.generate(model=f"oai/{model}", prompt="something forbidden")
    assert info.value.code == code and info.value.status == 400
    assert len(upstream.requests) == 1  # not retried


async def test_quota_errors_are_not_retried(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    upstream.add_fault(Fault.status_code(429, body=INSUFFICIENT_QUOTA_BODY), times=None)
    media = media_for(transport, clock, upstream)
    with pytest.raises(QuotaExceeded):
        await media.images.generate(model="oai/dall-e-3", prompt="otter")
    assert len(upstream.requests) == 1


async def test_server_errors_are_retried(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    upstream.add_fault(Fault.status_code(500), times=2)
    media = media_for(transport, clock, upstream)
    response = await media.images.generate(model="oai/dall-e-3", prompt="otter")
    assert len(response.data) == 1 and len(upstream.requests) == 3
    upstream.add_fault(Fault.status_code(500), times=None)
    with pytest.raises(ServerError):
        await media.images.generate(model="oai/dall-e-3", prompt="otter")


async def test_invalid_input_makes_no_request(
    transport: Transport, clock: FakeClock, upstream: OpenAIImagesUpstream
) -> None:
    media = media_for(transport, clock, upstream)
    with pytest.raises(InvalidRequest) as info:
        await media.images.generate(model="oai/dall-e-3", prompt="otter", n=3)
    assert info.value.path == "n"
    with pytest.raises(InvalidRequest) as info:
        await media.images.generate(model="oai/dall-e-3", prompt="otter", size="800x600")
    assert info.value.path == "size"
    assert upstream.requests == []


def test_unknown_options_are_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        SPEC.factory(settings("oai", "openai-images", "https://x/v1", organisation="o"), Transport())
    assert info.value.key == "providers.oai.organisation"
    assert "did you mean 'organization'" in str(info.value)
