"""`photobot events gallery-link ID [--days N] [--json]`: the signed link to an event's photo gallery.

The link is `{PHOTOBOT_PUBLIC_BASE_URL}/e/{ID}/gallery?sig=…`, signed with `PHOTOBOT_SECRET_KEY`; without
`--days` it does not expire (rotate the secret key to revoke every link at once). Append `&wall=1` for the
live wall (new photos appear as they complete), e.g. on a screen at the venue.
"""

from __future__ import annotations

from datetime import timedelta

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env
from photobot.models import Event, utcnow
from photobot.pages.signing import gallery_url
from photobot.services import NotFound


@click.command("gallery-link")
@click.argument("event_id", type=int)
@click.option("--days", type=click.IntRange(min=1, max=3650), help="Expire after N days (default: never).")
@json_option
@run_async
async def gallery_link_command(event_id: int, days: int | None, as_json: bool) -> None:
    """Print the signed link to an event's gallery (add &wall=1 for the live wall)."""
    settings = settings_from_env()
    async with session_scope(settings) as session:
        event = await session.get(Event, event_id)
        if event is None:
            raise NotFound(f"event {event_id} not found")
    expires_at = utcnow() + timedelta(days=days) if days else None
    url = gallery_url(settings.public_base_url, settings.secret_keys(), event_id, expires_at)
    data = {
        "event_id": event_id,
        "url": url,
        "wall_url": f"{url}&wall=1",
        "expires_at": expires_at.isoformat(timespec="seconds") if expires_at else None,
    }
    emit(data, as_json, lambda d: d["url"])
