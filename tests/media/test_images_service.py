"""ImagesService.generate / edit / download over every image provider, with failover, over loopback."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from media_harness import POLICY, FakeClock, Media, build_media, open_transport, settings

from polyrelay.errors import (
    ContentPolicyViolation,
    InvalidRequest,
    TaskFailed,
    TaskTimeout,
    UnsupportedFeature,
    UpstreamError,
)
from polyrelay.policy import Policy
from polyrelay.testing._faults import Fault
from polyrelay.testing._flux import FluxOutcome, FluxUpstream
from polyrelay.testing._openai_images import OpenAIImagesUpstream, tiny_png
from polyrelay.testing._replicate import ReplicateOutcome, ReplicateUpstream
from polyrelay.transport import Transport
from polyrelay_flux import SPEC as FLUX
from polyrelay_openai_images import SPEC as OPENAI_IMAGES
from polyrelay_replicate import SPEC as REPLICATE

PNG = tiny_png()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FluxUpstream, ReplicateUpstream, OpenAIImagesUpstream]]:
    async with FluxUpstream() as flux, ReplicateUpstream() as replicate, OpenAIImagesUpstream() as openai:
        yield flux, replicate, openai


Servers = tuple[FluxUpstream, ReplicateUpstream, OpenAIImagesUpstream]


def media_for(
    transport: Transport, clock: FakeClock, servers: Servers, *, policy: Policy = POLICY, **routes: Any
) -> Media:
    flux, replicate, openai = servers
    return build_media(
        transport,
        clock,
        {
            "bfl": (FLUX, settings("bfl", "flux", flux.base_url)),
            "rep": (REPLICATE, settings("rep", "replicate", replicate.base_url, wait=0)),
            "oai": (OPENAI_IMAGES, settings("oai", "openai-images", openai.base_url)),
        },
        {
            "flux": [("bfl", "flux-pro-1.1"), ("rep", "black-forest-labs/flux-1.1-pro")],
            "pictures": [("bfl", "flux-pro-1.1"), ("oai", "dall-e-3")],
            **routes,
        },
        policy=policy,
    )


def all_requests(servers: Servers) -> list[Any]:
    return [r for s in servers for r in s.requests]


async def test_flux_generation_returns_urls(transport: Transport, clock: FakeClock, servers: Servers) -> None:
    media = media_for(transport, clock, servers)
    response = await media.images.generate(model="bfl/flux-pro-1.1", prompt="a lighthouse", size="1024x768")
    (item,) = response.data
    assert item.url is not None and "/delivery/" in item.url
    assert item.revised_prompt == "a lighthouse, highly detailed"
    assert response.meta is not None
    assert (response.meta.provider, response.meta.model, response.meta.requested_model) == (
        "bfl",
        "flux-pro-1.1",
        "bfl/flux-pro-1.1",
    )
    assert response.created == int(clock.now)


async def test_flux_b64_json_downloads_the_result(transport: Transport, clock: FakeClock, servers: Servers) -> None:
    media = media_for(transport, clock, servers)
    response = await media.images.generate(model="bfl/flux-pro-1.1", prompt="a lighthouse", response_format="b64_json")
    (item,) = response.data
    assert item.url is None
    assert base64.b64decode(item.b64_json or "") == tiny_png(2, 2, (0, 128, 255))


async def test_flux_warnings_reach_the_response(transport: Transport, clock: FakeClock, servers: Servers) -> None:
    media = media_for(transport, clock, servers)
    response = await media.images.generate(model="bfl/flux-pro-1.1", prompt="a lighthouse", quality="hd", style="vivid")
    assert response.meta is not None
    assert sorted(w.setting or "" for w in response.meta.warnings) == ["quality", "style"]


async def test_replicate_generation_with_several_outputs(
    transport: Transport, clock: FakeClock, servers: Servers
) -> None:
    media = media_for(transport, clock, servers)
    response = await media.images.generate(
        model="rep/black-forest-labs/flux-schnell", prompt="a corgi", n=3, aspect_ratio="1:1", go_fast=True
    )
    assert len(response.data) == 3 and all(d.url for d in response.data)
    create = servers[1].requests[0]
    assert create.json == {"input": {"prompt": "a corgi", "num_outputs": 3, "aspect_ratio": "1:1", "go_fast": True}}


async def test_openai_generation_goes_straight_to_the_images_api(
    transport: Transport, clock: FakeClock, servers: Servers
) -> None:
    media = media_for(transport, clock, servers)
    response = await media.images.generate(model="oai/dall-e-3", prompt="otter", response_format="b64_json")
    assert base64.b64decode(response.data[0].b64_json or "") == PNG
    assert [r.path for r in servers[2].requests] == ["/v1/images/generations"]


async def test_openai_urls_are_converted_to_b64_when_asked(
    transport: Transport, clock: FakeClock, servers: Servers
) -> None:
    # a relay model name: the provider passes response_format through, the upstream answers with URLs anyway
    media = media_for(transport, clock, servers)
    response = await media.images.generate(model="oai/dall-e-2", prompt="otter", response_format="url")
    assert response.data[0].url is not None
    data = await media.images.download(response.data[0].url, provider="oai")
    assert data == PNG


async def test_direct_generation_retries_stop_at_the_deadline(
    transport: Transport, clock: FakeClock, servers: Servers
) -> None:
    # The images API asks for 2 s, the call has 1 s: the 503 is raised instead of sleeping past the deadline.
    openai = servers[2]
    openai.add_fault(Fault.status_code(503, retry_after=2), times=None)
    media = media_for(transport, clock, servers, policy=attrs.evolve(POLICY, deadline=1.0))
    with pytest.raises(UpstreamError) as info:
        await media.images.generate(model="oai/dall-e-3", prompt="otter")
    assert info.value.status == 503
    assert len(openai.requests) == 1 and clock.sleeps == []
    media = media_for(transport, clock, servers, policy=attrs.evolve(POLICY, deadline=None))
    with pytest.raises(UpstreamError):
        await media.images.generate(model="oai/dall-e-3", prompt="otter")
    assert len(openai.requests) == 4 and clock.sleeps and min(clock.sleeps) >= 2  # 3 attempts without one


async def test_failover_from_flux_to_openai(transport: Transport, clock: FakeClock, servers: Servers) -> None:
    flux = servers[0]
    flux.add_fault(Fault.status_code(503), times=None)
    media = media_for(transport, clock, servers)
    response = await media.images.generate(model="pictures", prompt="a lighthouse")
    assert response.meta is not None and response.meta.provider == "oai"
    assert response.meta.requested_model == "pictures"


async def test_a_failed_task_fails_over_to_the_next_target(
    transport: Transport, clock: FakeClock, servers: Servers
) -> None:
    servers[0].push_outcome(FluxOutcome(kind="error", pending_polls=0))
    media = media_for(transport, clock, servers)
    response = await media.images.generate(model="flux", prompt="a lighthouse")
    assert response.meta is not None and response.meta.provider == "rep"


async def test_content_policy_rejections_do_not_fail_over(
    transport: Transport, clock: FakeClock, servers: Servers
) -> None:
    servers[0].push_outcome(FluxOutcome(kind="content_moderated", pending_polls=0))
    media = media_for(transport, clock, servers, safe=[("oai", "dall-e-3"), ("bfl", "flux-pro-1.1")])
    with pytest.raises(TaskFailed) as info:
        await media.images.generate(model="flux", prompt="a lighthouse")
    assert info.value.code == "content_policy_violation"
    with pytest.raises(ContentPolicyViolation):
        await media.images.generate(model="safe", prompt="something forbidden")
    assert servers[1].requests == [] and len(servers[0].requests) == 2  # one submit, one poll; nothing more


async def test_a_failed_task_on_the_only_target_raises_task_failed(
    transport: Transport, clock: FakeClock, servers: Servers
) -> None:
    servers[1].push_outcome(ReplicateOutcome(status="failed", error="NSFW content detected"))
    media = media_for(transport, clock, servers)
    with pytest.raises(TaskFailed) as info:
        await media.images.generate(model="rep/black-forest-labs/flux-schnell", prompt="x")
    assert "NSFW content detected" in str(info.value)


async def test_a_timeout_does_not_fail_over(transport: Transport, clock: FakeClock, servers: Servers) -> None:
    servers[0].push_outcome(FluxOutcome(pending_polls=10_000))
    media = media_for(transport, clock, servers)
    with pytest.raises(TaskTimeout):
        await media.images.generate(model="flux", prompt="a lighthouse", timeout=5)
    assert servers[1].requests == []


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"model": "flux", "prompt": ""}, "prompt"),
        ({"model": "flux", "prompt": "x", "n": 0}, "n"),
        ({"model": "flux", "prompt": "x", "size": "huge"}, "size"),
        ({"model": "flux", "prompt": "x", "response_format": "png"}, "response_format"),
        ({"model": "bfl/flux-pro-1.1", "prompt": "x", "size": "1000x1000"}, "size"),
        ({"model": "bfl/flux-pro-1.1-ultra", "prompt": "x", "aspect_ratio": "5:1"}, "aspect_ratio"),
        ({"model": "bfl/flux-pro-1.1", "prompt": "x", "n": 2}, "n"),
        ({"model": "oai/dall-e-3", "prompt": "x", "n": 2}, "n"),
        ({"model": "oai/dall-e-3", "prompt": "x", "size": "256x256"}, "size"),
    ],
)
async def test_bad_input_fails_before_any_request(
    transport: Transport, clock: FakeClock, servers: Servers, kw: dict[str, Any], path: str
) -> None:
    media = media_for(transport, clock, servers)
    with pytest.raises(InvalidRequest) as info:
        await media.images.generate(**kw)
    assert info.value.path == path
    assert all_requests(servers) == []


async def test_flux_kontext_edit_sends_the_input_image(
    transport: Transport, clock: FakeClock, servers: Servers
) -> None:
    media = media_for(transport, clock, servers)
    await media.images.edit(model="bfl/flux-kontext-pro", image=PNG, prompt="make it night", aspect_ratio="16:9")
    submit = servers[0].requests[0]
    assert submit.path == "/v1/flux-kontext-pro"
    assert submit.json == {
        "prompt": "make it night",
        "aspect_ratio": "16:9",
        "input_image": base64.b64encode(PNG).decode(),
    }


async def test_variations_need_an_images_api_upstream(transport: Transport, clock: FakeClock, servers: Servers) -> None:
    media = media_for(transport, clock, servers)
    with pytest.raises(UnsupportedFeature):
        await media.images.create_variation(model="bfl/flux-pro-1.1", image=PNG)
    with pytest.raises(InvalidRequest) as info:
        await media.images.edit(model="bfl/flux-kontext-pro", image=[], prompt="x")
    assert info.value.path == "image"
    assert all_requests(servers) == []
