"""Request and response shapes of the jobs API (pydantic: validation here, OpenAPI from the same models)."""

from __future__ import annotations

from datetime import datetime

import phonenumbers
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from photobot.db.models import PublicStatus


class JobFields(BaseModel):
    """The fields of `POST /v1/jobs` besides the image (JSON body or multipart form fields)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    style: str = Field(min_length=1, max_length=64, description="Style id from the catalogue, e.g. pb_a.")
    aspect_ratio: str | None = Field(None, max_length=10, description="Default: the style's, then the model's.")
    resolution: str | None = Field(None, max_length=4, description="1K, 2K or 4K where the model has it.")
    output_format: str | None = Field(None, max_length=5, description="png, jpg/jpeg (spelling normalised), webp.")
    guest_id: str | None = Field(None, max_length=200)
    email: EmailStr | None = Field(None, description="Where to e-mail the photo.")
    phone: str | None = Field(None, max_length=20, description="E.164, for WhatsApp, e.g. +628123456789.")
    consent: bool | None = Field(
        None, description="The guest agreed to the event's terms; required (true) where the event asks for consent."
    )
    event_id: int | None = Field(None, ge=1, le=2**31 - 1, description="App/admin tokens: charge this event (B2B).")
    user_id: int | None = Field(None, ge=1, le=2**31 - 1, description="App/admin tokens: charge this user (B2C).")

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            raise ValueError("must be an E.164 number such as +628123456789") from None
        if not value.startswith("+") or not phonenumbers.is_valid_number(number):
            raise ValueError("must be an E.164 number such as +628123456789")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator(
        "email",
        "guest_id",
        "aspect_ratio",
        "resolution",
        "output_format",
        "event_id",
        "user_id",
        "consent",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class JobRequest(JobFields):
    """JSON form of the request: the image is a data URI or an https URL (left out for a text-to-image style)."""

    image: str | None = Field(
        None, min_length=1, description="data:image/...;base64,... or https://...; omitted for a style whose model "
        "takes no input image (text-to-image), required for every other style.",
    )  # fmt: skip


class JobError(BaseModel):
    code: str
    message: str


class JobView(BaseModel):
    """A job as clients see it."""

    id: str
    status: PublicStatus
    style: str
    status_url: str
    page_url: str
    qr_url: str
    result_url: str | None = None
    error: JobError | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None


class StyleChoice(BaseModel):
    """A style as a kiosk offers it."""

    id: str
    name: str
    takes_photo: bool = Field(description="False for a text-to-image style: submit it without `image`.")
    preview_url: str | None = Field(None, description="A signed link to an example image (null: none).")


class StylesOut(BaseModel):
    styles: list[StyleChoice] = Field(description="In the order the kiosk shows them.")
