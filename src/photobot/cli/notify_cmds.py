"""`photobot jobs resend JOB_ID --channel email`: send one notification of a job again, on purpose."""

from __future__ import annotations

import asyncio
import json

import click

from photobot.db import Database
from photobot.notify.service import NotificationNotFound, resend_notification
from photobot.settings import Settings, SettingsError, load_settings


async def _resend(settings: Settings, job_id: str, channel: str) -> dict[str, object]:
    database = Database(settings.resolved_database_url)
    try:
        row = await resend_notification(database, job_id, channel, settings=settings)
        return {"job_id": row.job_id, "channel": row.channel, "state": row.state}
    finally:
        await database.close()


@click.command("resend")
@click.argument("job_id")
@click.option("--channel", required=True, help="email, whatsapp or push:<n> (see `jobs show`).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def resend_command(job_id: str, channel: str, as_json: bool) -> None:
    """Queue a job's notification on CHANNEL again, even if it was already delivered."""
    try:
        result = asyncio.run(_resend(load_settings(), job_id, channel))
    except (NotificationNotFound, SettingsError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"queued {result['channel']} for job {result['job_id']}; a worker sends it shortly")
