"""The style catalogue: what a guest picks on the kiosk, and the prompt and model behind it."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.db.models import Style, utcnow
from photobot.services import Invalid, NotFound


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
    active: bool = True


def parse_styles(text: str, filename: str = "styles.yaml") -> list[StyleIn]:
    try:
        data: Any = json.loads(text) if filename.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise Invalid(f"cannot parse {filename}: {exc.__class__.__name__}") from None
    if not isinstance(data, list):
        raise Invalid("a style file is a list of styles")
    try:
        return [StyleIn.model_validate(item) for item in data]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(f"style {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


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


async def import_file(session: AsyncSession, path: Path) -> list[Style]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from None
    return await upsert_styles(session, parse_styles(text, path.name))


def default_catalogue() -> list[StyleIn]:
    text = resources.files("photobot.data").joinpath("styles.yaml").read_text()
    return parse_styles(text)


async def load_default_catalogue(session: AsyncSession, *, only_if_empty: bool = True) -> list[Style]:
    if only_if_empty and (await session.execute(sa.select(sa.func.count()).select_from(Style))).scalar_one():
        return []
    return await upsert_styles(session, default_catalogue())


async def list_styles(session: AsyncSession, *, active_only: bool = False) -> list[Style]:
    query = sa.select(Style).order_by(col(Style.id))
    if active_only:
        query = query.where(col(Style.active).is_(True))
    return list((await session.execute(query)).scalars())


async def get_style(session: AsyncSession, style_id: str) -> Style:
    style = await session.get(Style, style_id)
    if style is None:
        raise NotFound(f"style {style_id} not found")
    return style
