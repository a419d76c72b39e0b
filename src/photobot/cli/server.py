"""`photobot migrate | bootstrap | serve | worker`: running the service."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.cli.common import (
    database_error,
    emit,
    fail,
    json_option,
    session_scope,
    settings_from_env,
    storage_scope,
)
from photobot.db.migrate import upgrade
from photobot.payments import packs
from photobot.services import Invalid, NotFound, accounts, styles
from photobot.services import access as access_svc

DEMO_CURL = """\
curl -sS -X POST {base}/v1/jobs \\
  -H "Authorization: Bearer {token}" \\
  -F image=@path/to/photo.jpg -F style=pb_a"""

DEMO_PURCHASE = """curl -sS -X POST {base}/v1/purchases \\
  -H "Authorization: Bearer {token}" -H "Content-Type: application/json" \\
  -d '{{"pack_id": {pack_id}}}'"""


@click.command("migrate", help="Apply database migrations (Alembic) up to the newest.")
@json_option
def migrate(as_json: bool) -> None:
    settings = settings_from_env()
    _upgrade(settings.resolved_database_url)
    if as_json:
        emit({"revision": _current_revision(), "status": "ok"}, True)
    else:
        click.echo("database is at the newest migration", err=True)


def _upgrade(url: str) -> None:
    """Apply migrations; a failure is one line on stderr and exit status 1."""
    try:
        upgrade(url)
    except SQLAlchemyError as exc:
        fail(database_error(exc))
    except OSError as exc:
        fail(f"cannot reach the database: {exc.__class__.__name__}: {exc.strerror or exc}")


def _current_revision() -> str | None:
    from alembic.script import ScriptDirectory

    from photobot.db.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


@click.command("bootstrap", help="First-run set-up: migrate, load the default styles, create a demo event.")
@json_option
def bootstrap(as_json: bool) -> None:
    settings = settings_from_env()
    _upgrade(settings.resolved_database_url)
    try:
        result = asyncio.run(_bootstrap(settings.var_dir))
    except (Invalid, NotFound) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(database_error(exc))
    if as_json:
        emit(result, True)
        return
    click.echo(f"styles loaded: {result['styles_loaded']}")
    if result.get("token"):
        click.echo(f"\nDemo event {result['event_id']} with {result['credits']} credits.")
        click.echo(f"Kiosk token: {result['token']}\nTry it:\n")
        click.echo(DEMO_CURL.format(base=settings.public_base_url, token=result["token"]))
        click.echo(f"\nThen follow the job: {settings.public_base_url}/v1/jobs/<id> (same token).\n")
        if result.get("pack_id"):
            click.echo("Buy more credits (Mercado Pago; without an access token, a built-in simulator):\n")
            click.echo(DEMO_PURCHASE.format(base=settings.public_base_url, token=result["token"],
                                            pack_id=result["pack_id"]))  # fmt: skip
            click.echo("\nOpen its checkout_url, press Approve, and the event has 50 more credits.\n")


async def _bootstrap(var_dir: Path) -> dict[str, Any]:
    settings = settings_from_env()
    marker = var_dir / "demo-token.txt"
    async with storage_scope(settings) as storage, session_scope(settings) as session:
        loaded = await styles.load_default_catalogue(session, storage)
        result: dict[str, Any] = {"styles_loaded": len(loaded), "pack_id": await _demo_pack(session)}
        if marker.exists():
            result["token"] = marker.read_text().strip()
            result["event_id"], result["credits"] = None, None
            events = await accounts.list_events(session)
            if events:
                result["event_id"], result["credits"] = events[0].id, events[0].credits
            return result
        event = await accounts.create_event(session, "Demo event", 100, title="Photobot demo")
        _, token = await access_svc.create_token(session, "event", event_id=event.id, label="demo kiosk")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(token)
        os.chmod(marker, 0o600)
        result.update(event_id=event.id, credits=event.credits, token=token)
        return result


async def _demo_pack(session: AsyncSession) -> int | None:
    """A pack to try the (simulated) checkout with, created once: the first run has none."""
    existing = await packs.list_packs(session, active_only=True)
    if existing:
        return existing[0].id
    if await packs.list_packs(session):
        return None  # the operator disabled every pack: do not bring one back
    return (await packs.create_pack(session, "Demo pack", 50, "9.90", "BRL")).id


@click.command("serve", help="Run the web app (and, unless --no-worker, the dispatcher) in one process.")
@click.option("--host", default=None, help="Default: PHOTOBOT_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Default: PHOTOBOT_PORT (8000).")
@click.option("--no-worker", is_flag=True, help="Web only; run `photobot worker` processes separately.")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn worker processes.")
def serve(host: str | None, port: int | None, no_worker: bool, workers: int) -> None:
    import uvicorn

    settings = settings_from_env()
    if host:
        os.environ["PHOTOBOT_HOST"] = host
    if port:
        os.environ["PHOTOBOT_PORT"] = str(port)
    if no_worker:
        os.environ["PHOTOBOT_RUN_DISPATCHER"] = "0"
    from photobot.logs import access_log_enabled, uvicorn_log_config

    uvicorn.run(
        "photobot.asgi:app",
        factory=False,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=uvicorn_log_config(settings),
        access_log=access_log_enabled(settings),
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=20,
    )
    sys.exit(0)
