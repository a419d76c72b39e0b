"""`photobot events …`: events (B2B accounts), their credits, numbers and gallery links."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env, stores
from photobot.db.models import Event, utcnow
from photobot.links import gallery_url
from photobot.services import Invalid, NotFound, operations, privacy, public_view
from photobot.services import accounts as svc


@click.group("events", help="Events (B2B): a booth spends its event's credits.")
def events() -> None:
    pass


@events.command("create")
@click.argument("name")
@click.option("--credits", "credits_", type=int, default=0, show_default=True, help="Initial credits (≥ 0).")
@json_option
@run_async
async def create_event(name: str, credits_: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        event = await svc.create_event(session, name, credits_)
        emit(public_view(event), as_json)


_UNSET: Any = object()  # the option was not given (None means "clear the setting")


class _CountOrNone(click.ParamType[Any]):
    """A positive whole number, or `none` (clears the setting)."""

    name = "N|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value is _UNSET or isinstance(value, int):
            return value
        if str(value).strip().lower() in ("none", "null", "off"):
            return None
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a whole number nor 'none'", param, ctx)


@events.command("update")
@click.argument("event_id", type=int)
@click.option("--name", default=None, help="The event's name.")
@click.option("--title", default=None, help="Shown on guest pages and in messages.")
@click.option(
    "--consent-required/--no-consent-required",
    default=None,
    help="Refuse submissions whose guest did not consent (422 consent_required).",
)
@click.option("--consent-text", default=None, help="What the kiosk's consent box says ('' for the default text).")
@click.option(
    "--moderation",
    type=click.Choice(["auto", "approve"]),
    default=None,
    help="approve: photos reach the gallery and live wall only once approved.",
)
@click.option(
    "--max-photos-per-guest",
    type=_CountOrNone(),
    default=_UNSET,
    help="Photos per guest (same guest id, e-mail or phone); 'none': no cap.",
)
@click.option(
    "--retention-days",
    type=_CountOrNone(),
    default=_UNSET,
    help="Days photos are kept; 'none': PHOTOBOT_RESULT_TTL_DAYS.",
)
@click.option(
    "--styles", "style_ids", default=None, metavar="ID,ID,…",
    help="The styles this event's kiosks offer, in this order (comma-separated); '' offers every active style.",
)  # fmt: skip
@json_option
@run_async
async def update_event(
    event_id: int, name: str | None, title: str | None, consent_required: bool | None, consent_text: str | None,
    moderation: str | None, max_photos_per_guest: Any, retention_days: Any, style_ids: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Change an event's settings (only the options given)."""
    fields: dict[str, Any] = {
        k: v for k, v in {"name": name, "title": title, "consent_required": consent_required,
                          "moderation": moderation}.items() if v is not None
    }  # fmt: skip
    if consent_text is not None:
        fields["consent_text"] = consent_text.strip() or None
    for key, value in (("max_photos_per_guest", max_photos_per_guest), ("retention_days", retention_days)):
        if value is not _UNSET:
            fields[key] = value
    if style_ids is not None:
        fields["styles"] = [part.strip() for part in style_ids.split(",") if part.strip()]
    if not fields:
        raise Invalid("nothing to change: give at least one option (see --help)")
    async with session_scope(settings_from_env()) as session:
        emit(public_view(await svc.update_event(session, event_id, **fields)), as_json)


@events.command("list")
@json_option
@run_async
async def list_events(as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit([public_view(e) for e in await svc.list_events(session)], as_json)


@events.command("credits")
@click.argument("event_id", type=int)
@click.option("--add", "amount", type=int, required=True, help="Credits to grant (> 0).")
@json_option
@run_async
async def event_credits(event_id: int, amount: int, as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(public_view(await svc.add_event_credits(session, event_id, amount)), as_json)


@events.command("stats")
@click.argument("event_id", type=int, required=False)
@click.option("--since", type=click.DateTime(), default=None, help="Jobs created at or after (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Jobs created before (UTC).")
@json_option
@run_async
async def stats_command(event_id: int | None, since: datetime | None, until: datetime | None, as_json: bool) -> None:
    """Jobs submitted, completed, failed and credits spent, for one event (or all)."""
    async with session_scope(settings_from_env()) as session:
        if event_id is None:
            rows = [s.as_dict() for s in await operations.all_event_stats(session, since=since, until=until)]
        else:
            rows = [(await operations.event_stats(session, event_id, since=since, until=until)).as_dict()]
    emit(
        rows if event_id is None else rows[0],
        as_json,
        text=lambda data: "\n".join(
            f"event {r['event_id']} {r['name']}: submitted {r['submitted']}, completed {r['completed']}, "
            f"failed {r['failed']}, in flight {r['in_flight']}, credits spent {r['credits_spent']}, "
            f"balance {r['credits_balance']}"
            for r in (data if isinstance(data, list) else [data])
        ),
    )


@events.command("gallery-link")
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


@events.command("purge")
@click.argument("event_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@run_async
async def purge_command(event_id: int, yes: bool, as_json: bool) -> None:
    """Delete every photo of the event (inputs, results, thumbnails); jobs still running are failed and refunded.
    Guest pages and photo links then answer 410. The jobs and their credit history stay."""
    if not yes:
        raise Invalid(f"this deletes every photo of event {event_id}: run again with --yes to confirm")
    settings = settings_from_env()
    async with stores(settings) as (db, storage, bus):
        report = await privacy.purge_event(db, storage, bus, settings, event_id)
    emit(
        report.as_dict(),
        as_json,
        text=lambda d: f"purged event {d['event_id']}: {d['files_deleted']} files of {d['jobs']} jobs deleted",
    )
