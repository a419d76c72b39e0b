"""The style catalogue: what a guest picks on the kiosk, and the prompt and model behind it.

A style is checked against the model table (`providers/models.py`) when it is imported, so a style that could
never make a photo (an unknown model, an aspect ratio the model lacks, reference images for a model that takes no
input image) is refused with one line, not discovered by the first guest. A style may carry a preview: an example
image the kiosk shows in its picker, kept in storage under `style_preview_key` (a style file names the image by a
path next to it; the shipped catalogue brings its own previews).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.db.models import Event, Style, utcnow
from photobot.intake import ImageError, inspect
from photobot.providers.models import InvalidParameter, normalise_params, spec_for
from photobot.services import Invalid, NotFound
from photobot.storage import Storage
from photobot.storage.base import StorageError, validate_key
from photobot.storage.keys import style_preview_key

PREVIEW_MAX_BYTES = 2 * 1024 * 1024
PREVIEW_MAX_PIXELS = 16_000_000


class StyleIn(BaseModel):
    """One entry of a style file (JSON or YAML list)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1, max_length=20000)
    model: str = "nano-banana-pro"
    provider: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    output_format: str | None = None
    cost: int = Field(1, ge=0)
    reference_keys: list[str] = Field(default_factory=list)
    preview_key: str | None = Field(None, max_length=300, description="Storage key of an example image.")
    active: bool = True

    @model_validator(mode="after")
    def _the_model_can_make_it(self) -> StyleIn:
        """The model exists and takes these parameters and reference images (the rules of `providers/models`)."""
        try:
            spec = spec_for(self.model)
            normalise_params(self.model, self.aspect_ratio, self.resolution, self.output_format)
        except InvalidParameter as exc:
            raise ValueError(str(exc)) from None
        if self.reference_keys and spec.image_field is None:
            raise ValueError(f"{self.model} makes images from the prompt alone: it takes no reference_keys")
        if len(self.reference_keys) + (1 if spec.image_field else 0) > max(spec.max_images, 1):
            raise ValueError(f"{self.model} takes at most {spec.max_images} images (the guest's photo included)")
        for key in [*self.reference_keys, *([self.preview_key] if self.preview_key else [])]:
            try:
                validate_key(key)
            except StorageError:
                raise ValueError(f"{key!r} is not a storage key") from None
        return self


class StyleEntry(StyleIn):
    """One entry of a style file: a style, plus `preview`, the path of an example image relative to the file
    (imported into storage; only a file on the operator's machine can name one, never the admin API)."""

    preview: str | None = Field(None, min_length=1, max_length=500)


def parse_styles(text: str, filename: str = "styles.yaml") -> list[StyleEntry]:
    try:
        data: Any = json.loads(text) if filename.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise Invalid(f"cannot parse {filename}: {exc.__class__.__name__}") from None
    if not isinstance(data, list):
        raise Invalid("a style file is a list of styles")
    entries = []
    for index, item in enumerate(data):
        try:
            entries.append(StyleEntry.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            style_id = item.get("id") if isinstance(item, dict) else None
            if where:
                raise Invalid(f"style {where}: {message} (entry {index + 1})") from None
            raise Invalid(f"style {style_id or f'entry {index + 1}'}: {message}") from None
    return entries


async def store_preview(storage: Storage, style_id: str, image: Path) -> str:
    """Check an example image (JPEG, PNG or WebP, at most 2 MB) and store it as the style's preview; its key."""
    try:
        size = image.stat().st_size
    except OSError as exc:
        raise Invalid(f"style {style_id}: cannot read preview {image}: {exc.strerror}") from None
    if size > PREVIEW_MAX_BYTES:
        raise Invalid(f"style {style_id}: preview {image.name} is larger than {PREVIEW_MAX_BYTES // 1024 // 1024} MB")
    try:
        fmt, _, _ = inspect(image, PREVIEW_MAX_PIXELS)
    except ImageError as exc:
        raise Invalid(f"style {style_id}: preview {image.name}: {exc.detail}") from None
    key = style_preview_key(style_id, fmt.extension)
    await storage.put_bytes(key, image.read_bytes(), fmt.content_type)
    return key


async def _with_previews(storage: Storage | None, entries: list[StyleEntry], base: Path) -> list[StyleIn]:
    """The entries as styles; with `storage`, each named preview is checked and stored (without, left out)."""
    styles: list[StyleIn] = []
    for entry in entries:
        values = entry.model_dump(exclude={"preview"})
        if entry.preview is not None and storage is not None:
            values["preview_key"] = await store_preview(storage, entry.id, base / entry.preview)
        styles.append(StyleIn.model_validate(values))
    return styles


async def upsert_styles(session: AsyncSession, styles: list[StyleIn]) -> list[Style]:
    stored = []
    for item in styles:
        style = await session.get(Style, item.id)
        if style is None:
            style = Style(**item.model_dump())
            session.add(style)
        else:
            for name, value in item.model_dump().items():
                setattr(style, name, value)
            style.updated_at = utcnow()
        stored.append(style)
    await session.flush()
    return stored


async def import_file(session: AsyncSession, path: Path, storage: Storage) -> list[Style]:
    """Upsert the styles of a JSON or YAML file; previews it names (paths relative to it) go into `storage`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from None
    entries = parse_styles(text, path.name)
    return await upsert_styles(session, await _with_previews(storage, entries, path.parent))


def _data_dir() -> Path:
    return Path(str(resources.files("photobot.data")))


def default_catalogue() -> list[StyleEntry]:
    return parse_styles((_data_dir() / "styles.yaml").read_text())


async def load_default_catalogue(
    session: AsyncSession, storage: Storage | None = None, *, only_if_empty: bool = True
) -> list[Style]:
    """The shipped catalogue, with its preview images when `storage` is given. When the catalogue is not empty
    (and `only_if_empty`), nothing is replaced, but shipped styles still without a preview get theirs."""
    entries = default_catalogue()
    if only_if_empty and (await session.execute(sa.select(sa.func.count()).select_from(Style))).scalar_one():
        if storage is not None:
            await _fill_missing_previews(session, storage, entries)
        return []
    return await upsert_styles(session, await _with_previews(storage, entries, _data_dir()))


async def _fill_missing_previews(session: AsyncSession, storage: Storage, entries: list[StyleEntry]) -> None:
    for entry in entries:
        style = await session.get(Style, entry.id)
        if style is not None and style.preview_key is None and entry.preview is not None:
            style.preview_key = await store_preview(storage, entry.id, _data_dir() / entry.preview)
    await session.flush()


async def list_styles(session: AsyncSession, *, active_only: bool = False) -> list[Style]:
    query = sa.select(Style).order_by(col(Style.id))
    if active_only:
        query = query.where(col(Style.active).is_(True))
    return list((await session.execute(query)).scalars())


async def offered_styles(session: AsyncSession, event: Event | None) -> list[Style]:
    """What a kiosk offers: the event's chosen styles in its order (the inactive ones left out), or, when the
    event chose none (or there is no event: an app token), every active style of the catalogue."""
    if event is None or not event.styles:
        return await list_styles(session, active_only=True)
    query = sa.select(Style).where(col(Style.id).in_(event.styles), col(Style.active).is_(True))
    found = {s.id: s for s in (await session.execute(query)).scalars()}
    return [found[style_id] for style_id in event.styles if style_id in found]


async def check_style_ids(session: AsyncSession, style_ids: list[str]) -> list[str]:
    """An event's style selection, checked: every id names a style of the catalogue, none twice."""
    seen: set[str] = set()
    for style_id in style_ids:
        if style_id in seen:
            raise Invalid(f"style {style_id} is listed twice")
        seen.add(style_id)
    if not style_ids:
        return []
    query = sa.select(col(Style.id)).where(col(Style.id).in_(style_ids))
    known = set((await session.execute(query)).scalars())
    missing = [s for s in style_ids if s not in known]
    if missing:
        raise Invalid(f"no such style: {', '.join(missing)} (see `photobot styles list`)")
    return list(style_ids)


async def get_style(session: AsyncSession, style_id: str) -> Style:
    style = await session.get(Style, style_id)
    if style is None:
        raise NotFound(f"style {style_id} not found")
    return style
