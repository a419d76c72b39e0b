"""The model table: enums, defaults, jpg/jpeg spelling, limits; and the createTask bodies built from it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from photobot.providers.base import GenerationRequest
from photobot.providers.errors import ProviderError
from photobot.providers.kie import KieProvider
from photobot.providers.models import InvalidParameter, normalise_params, spec_for, validate_request
from photobot.settings import Settings

IMG = ("https://example.com/a.jpg",)


def test_spec_for_unknown_model_names_the_field() -> None:
    with pytest.raises(InvalidParameter) as info:
        spec_for("dall-e")
    assert info.value.field == "model"


@pytest.mark.parametrize(
    ("model", "given", "expected"),
    [
        ("nano-banana-pro", "jpeg", "jpg"),
        ("nano-banana-pro", "JPG", "jpg"),
        ("nano-banana-2", "jpeg", "jpg"),
        ("google/nano-banana", "jpg", "jpeg"),
        ("google/nano-banana-edit", "jpg", "jpeg"),
        ("fal-ai/nano-banana-pro/edit", "jpg", "jpeg"),
        ("nano-banana-pro", None, "png"),
        ("nano-banana-2", None, "jpg"),
    ],
)
def test_output_format_spelling(model: str, given: str | None, expected: str) -> None:
    assert normalise_params(model, None, None, given).output_format == expected


def test_defaults_per_model() -> None:
    assert normalise_params("nano-banana-pro", None, None, None).aspect_ratio == "1:1"
    assert normalise_params("nano-banana-pro", None, None, None).resolution == "1K"
    assert normalise_params("nano-banana-2", None, None, None).aspect_ratio == "auto"
    assert normalise_params("google/nano-banana", None, None, None).resolution is None


@pytest.mark.parametrize(
    ("model", "ratio", "resolution", "fmt", "field"),
    [
        ("nano-banana-pro", "1:8", None, None, "aspect_ratio"),
        ("nano-banana-pro", None, "8K", None, "resolution"),
        ("google/nano-banana-edit", None, "2K", None, "resolution"),
        ("nano-banana-pro", None, None, "webp", "output_format"),
    ],
)
def test_invalid_params_name_the_field(
    model: str, ratio: str | None, resolution: str | None, fmt: str | None, field: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        normalise_params(model, ratio, resolution, fmt)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_nano_banana_2_extra_ratios() -> None:
    assert normalise_params("nano-banana-2", "1:8", "4k", None).resolution == "4K"


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (GenerationRequest("nano-banana-pro", "x" * 10001, IMG), "prompt"),
        (GenerationRequest("google/nano-banana", "x" * 5001), "prompt"),
        (GenerationRequest("nano-banana-2", "x" * 20000, IMG * 15), "image_urls"),
        (GenerationRequest("nano-banana-pro", "hi", IMG * 9), "image_urls"),
        (GenerationRequest("google/nano-banana-edit", "hi"), "image_urls"),
        (GenerationRequest("google/nano-banana", "hi", IMG), "image_urls"),
        (GenerationRequest("nano-banana-pro", "  "), "prompt"),
        (GenerationRequest("nano-banana-pro", "hi", ("ftp://x/y.png",)), "image_urls"),
    ],
)
def test_validate_request_limits(req: GenerationRequest, field: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        validate_request(req)
    assert info.value.field == field


def test_kie_bodies_use_each_models_image_field(make_settings: Callable[..., Settings]) -> None:
    kie = KieProvider(None, make_settings())  # type: ignore[arg-type]
    pro = kie.build_body(GenerationRequest("nano-banana-pro", "p", IMG, output_format="jpeg", callback_url="https://c"))
    assert pro == {
        "model": "nano-banana-pro",
        "callBackUrl": "https://c",
        "input": {"prompt": "p", "image_input": list(IMG), "aspect_ratio": "1:1", "resolution": "1K",
                  "output_format": "jpg"},
    }  # fmt: skip
    edit = kie.build_body(GenerationRequest("google/nano-banana-edit", "p", IMG, aspect_ratio="4:5"))
    assert edit["input"]["image_urls"] == list(IMG)
    assert edit["input"]["image_size"] == "4:5" and "resolution" not in edit["input"]
    assert "callBackUrl" not in edit
    two = kie.build_body(GenerationRequest("nano-banana-2", "p", IMG, extra={"google_search": True}))
    assert two["input"]["image_input"] == list(IMG) and two["input"]["google_search"] is True
    t2i = kie.build_body(GenerationRequest("google/nano-banana", "p"))
    assert "image_input" not in t2i["input"] and "image_urls" not in t2i["input"]


def test_kie_validation_is_a_fatal_provider_error(make_settings: Callable[..., Settings]) -> None:
    kie = KieProvider(None, make_settings())  # type: ignore[arg-type]
    with pytest.raises(ProviderError) as info:
        kie.build_body(GenerationRequest("fal-ai/nano-banana-pro/edit", "p", IMG))
    assert info.value.code == "provider_validation" and not info.value.transient
    assert info.value.field == "model"  # type: ignore[attr-defined]
