"""What each model accepts: the one table the intake API and the adapters validate against.

The intake API calls `normalise_params` when a job is accepted, so a bad `aspect_ratio` is a 422 for the kiosk,
never a failed job later; the adapters call `validate_request` again right before a call (a style row may have
been edited since). The traps this table exists for: the image field is `image_input` for nano-banana-pro and
nano-banana-2 but `image_urls` for google/nano-banana-edit, and JPEG is spelled `jpg` or `jpeg` depending on the
model. Both spellings are accepted from clients and rewritten to the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from photobot.providers.base import GenerationRequest
from photobot.settings import ProviderName, Settings

_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "auto")
_RESOLUTIONS = ("1K", "2K", "4K")
_JPEG_SPELLINGS = ("jpg", "jpeg")


class InvalidParameter(ValueError):
    """A generation parameter the model does not accept. `field` names the request field for a 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    provider: str  # "kie" | "fal"
    image_field: str | None  # the input field that carries image URLs; None: text-to-image
    images_required: bool
    max_images: int
    max_image_mb: int
    prompt_max: int
    aspect_ratios: tuple[str, ...]
    aspect_default: str
    resolutions: tuple[str, ...]  # () when the model has no resolution parameter
    resolution_default: str | None
    formats: tuple[str, ...]
    format_default: str
    aspect_alias: str | None = None  # a deprecated field also sent with the aspect ratio (google/* models)

    @property
    def jpeg_spelling(self) -> str | None:
        return next((f for f in self.formats if f in _JPEG_SPELLINGS), None)


SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "nano-banana-pro", "kie", "image_input", False, 8, 30, 10000,
            _RATIOS, "1:1", _RESOLUTIONS, "1K", ("png", "jpg"), "png",
        ),
        ModelSpec(
            "google/nano-banana", "kie", None, False, 0, 0, 5000,
            _RATIOS, "1:1", (), None, ("png", "jpeg"), "png", aspect_alias="image_size",
        ),
        ModelSpec(
            "google/nano-banana-edit", "kie", "image_urls", True, 10, 10, 5000,
            _RATIOS, "1:1", (), None, ("png", "jpeg"), "png", aspect_alias="image_size",
        ),
        ModelSpec(
            "nano-banana-2", "kie", "image_input", False, 14, 30, 20000,
            (*_RATIOS[:-1], "1:4", "1:8", "4:1", "8:1", "auto"), "auto", _RESOLUTIONS, "1K", ("jpg", "png"), "jpg",
        ),
        ModelSpec(
            "fal-ai/nano-banana-pro/edit", "fal", "image_urls", True, 14, 30, 50000,
            _RATIOS, "auto", _RESOLUTIONS, "1K", ("jpeg", "png", "webp"), "png",
        ),
    )
}  # fmt: skip


def spec_for(model: str) -> ModelSpec:
    """The spec of a model, or InvalidParameter("model") when we do not know it."""
    try:
        return SPECS[model]
    except KeyError:
        raise InvalidParameter("model", f"unknown model {model!r}; known: {', '.join(SPECS)}") from None


def slot_name(name: str | ProviderName) -> str:
    """The adapter (and `provider_keys.provider` namespace) serving a provider name: the simulator speaks kie."""
    return "fal" if str(name) == ProviderName.fal.value else "kie"


def provider_for_style(
    settings: Settings, style_provider: str | None, style_model: str, *, default: str | None = None
) -> tuple[str, str]:
    """(provider, model) a job of this style uses: the style's provider, else `default` (the live provider), else
    the configured one (the simulator stands in for kie); a kie model sent to fal becomes the configured fal
    model."""
    provider = slot_name(style_provider or default or settings.resolved_provider.value)
    model = style_model
    if provider == "fal" and spec_for(model).provider != "fal":
        model = settings.fal_model
    return provider, model


@dataclass(frozen=True, slots=True)
class Params:
    aspect_ratio: str
    resolution: str | None
    output_format: str


def normalise_params(model: str, aspect_ratio: str | None, resolution: str | None, output_format: str | None) -> Params:
    """Defaults filled in, `jpg`/`jpeg` rewritten to the model's spelling; InvalidParameter names the field."""
    spec = spec_for(model)
    ratio = aspect_ratio or spec.aspect_default
    if ratio not in spec.aspect_ratios:
        raise InvalidParameter("aspect_ratio", f"{ratio!r} is not one of {', '.join(spec.aspect_ratios)}")
    res: str | None = None
    if resolution:
        if not spec.resolutions:
            raise InvalidParameter("resolution", f"{model} has no resolution parameter")
        res = resolution.upper()
        if res not in spec.resolutions:
            raise InvalidParameter("resolution", f"{resolution!r} is not one of {', '.join(spec.resolutions)}")
    else:
        res = spec.resolution_default
    fmt = (output_format or spec.format_default).lower()
    if fmt in _JPEG_SPELLINGS and spec.jpeg_spelling:
        fmt = spec.jpeg_spelling
    if fmt not in spec.formats:
        raise InvalidParameter("output_format", f"{output_format!r} is not one of {', '.join(spec.formats)}")
    return Params(ratio, res, fmt)


def validate_request(req: GenerationRequest, *, provider: str | None = None) -> tuple[ModelSpec, Params]:
    """Everything checkable without the network: model, prompt length, image count, enums."""
    spec = spec_for(req.model)
    if provider is not None and spec.provider != provider:
        raise InvalidParameter("model", f"{req.model} is not a {provider} model")
    if not req.prompt or not req.prompt.strip():
        raise InvalidParameter("prompt", "must not be empty")
    if len(req.prompt) > spec.prompt_max:
        raise InvalidParameter("prompt", f"longer than {spec.prompt_max} characters")
    if spec.image_field is None and req.image_urls:
        raise InvalidParameter("image_urls", f"{req.model} takes no input images")
    if spec.images_required and not req.image_urls:
        raise InvalidParameter("image_urls", f"{req.model} needs at least one input image")
    if len(req.image_urls) > spec.max_images:
        raise InvalidParameter("image_urls", f"{req.model} takes at most {spec.max_images} images")
    for url in req.image_urls:
        if not url.startswith(("http://", "https://")):
            raise InvalidParameter("image_urls", "input images must be http(s) URLs")
    return spec, normalise_params(req.model, req.aspect_ratio, req.resolution, req.output_format)
