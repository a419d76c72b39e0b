"""`photobot guests …`: a guest's data at one event: forget it (erase photos and contact details) or export it.

Both call the same service functions as the admin API (`photobot.services.privacy`); see docs/privacy.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from photobot.cli.common import emit, json_option, run_async, settings_from_env, stores
from photobot.services import privacy


@click.group("guests", help="Guests' data: forget (erase) or export what is stored about one guest of an event.")
def guests() -> None:
    pass


def _guest_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("--event", "event_id", type=int, required=True, help="The event the guest attended."),
        click.option("--email", default=None, help="The guest's e-mail address (any case)."),
        click.option("--phone", default=None, help="The guest's phone number (E.164, e.g. +628123456789)."),
        click.option("--guest-id", default=None, help="The booth's guest id."),
    )):  # fmt: skip
        func = option(func)
    return func


@guests.command("forget")
@_guest_options
@json_option
@run_async
async def forget_command(
    event_id: int, email: str | None, phone: str | None, guest_id: str | None, as_json: bool
) -> None:
    """Delete the guest's photos (inputs, results, thumbnails) and blank their contact details and guest id; the
    anonymised jobs and their credit history stay. Their pages and photo links then answer 410."""
    guest = privacy.GuestRef.of(email=email, phone=phone, guest_id=guest_id)
    settings = settings_from_env()
    async with stores(settings) as (db, storage, bus):
        report = await privacy.forget_guest(db, storage, bus, settings, event_id, guest)
    emit(
        report.as_dict(),
        as_json,
        text=lambda d: (
            f"forgot the guest at event {d['event_id']}: {d['jobs']} jobs anonymised, "
            f"{d['files_deleted']} files deleted, {d['notifications_cancelled']} notifications cancelled"
        ),
    )


@guests.command("export")
@_guest_options
@json_option
@run_async
async def export_command(
    event_id: int, email: str | None, phone: str | None, guest_id: str | None, as_json: bool
) -> None:
    """Print everything stored about the guest as JSON (jobs, history, credits, notifications, photo links)."""
    guest = privacy.GuestRef.of(email=email, phone=phone, guest_id=guest_id)
    settings = settings_from_env()
    async with stores(settings) as (db, storage, _):
        data = await privacy.export_guest(db, storage, settings, event_id, guest)
    emit(data, True)  # JSON either way: an export is data
