"""`photobot migrate | bootstrap | serve | worker`: running the service."""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import uvicorn
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
from photobot.settings import Settings

DEMO_CURL = """\
curl -sS -X POST {base}/v1/jobs \\
  -H "Authorization: Bearer {token}" \\
  -F {image} -F style=pb_a"""

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
        click.echo(f"Kiosk token: {result['token']} (kept in {settings.var_dir / 'demo-token.txt'})")
        click.echo("`photobot serve` prints a curl that submits a sample photo once it listens.\n")
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


def sample_photo() -> Path:
    """The portrait shipped with the package (`scripts/make-sample-photo.py` draws it): what the first curl sends."""
    import photobot.data

    return Path(photobot.data.__file__).resolve().parent / "sample-photo.jpg"


def try_it(settings: Settings, cwd: Path | None = None) -> str | None:
    """The curl printed after the listening line, in development once `photobot bootstrap` made the demo kiosk
    token: it works as pasted from the directory `photobot serve` runs in (the photo named relative to it)."""
    marker = settings.var_dir / "demo-token.txt"
    if settings.env != "development" or not marker.is_file():
        return None
    photo = sample_photo()
    relative = os.path.relpath(photo, cwd or Path.cwd())
    shown = relative if not relative.startswith("..") else str(photo)
    curl = DEMO_CURL.format(
        base=settings.public_base_url, token=marker.read_text().strip(), image=shlex.quote(f"image=@{shown}")
    )
    return (
        f"\nTry it (in another terminal, from this directory):\n\n{curl}\n\n"
        "The answer's page_url shows the photo as it is made; status_url follows the job (same token).\n"
    )


class _Server(uvicorn.Server):
    """uvicorn's server, printing the first-run curl right after its "Uvicorn running on …" line."""

    hint: str | None = None

    def _log_started_message(self, listeners: Sequence[socket.SocketType]) -> None:
        super()._log_started_message(listeners)
        if self.hint:
            click.echo(self.hint, err=True)


@click.command("serve", help="Run the web app (and, unless --no-worker, the dispatcher) in one process.")
@click.option("--host", default=None, help="Default: PHOTOBOT_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Default: PHOTOBOT_PORT (8000).")
@click.option("--no-worker", is_flag=True, help="Web only; run `photobot worker` processes separately.")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn worker processes.")
def serve(host: str | None, port: int | None, no_worker: bool, workers: int) -> None:
    from uvicorn.supervisors import Multiprocess

    # --host/--port go into the environment before the app's settings are read (photobot.asgi), so an unset
    # PHOTOBOT_PUBLIC_BASE_URL follows them like it follows PHOTOBOT_HOST/PHOTOBOT_PORT.
    if host:
        os.environ["PHOTOBOT_HOST"] = host
    if port:
        os.environ["PHOTOBOT_PORT"] = str(port)
    if no_worker:
        os.environ["PHOTOBOT_RUN_DISPATCHER"] = "0"
    settings = settings_from_env()
    from photobot.logs import access_log_enabled, uvicorn_log_config

    config = uvicorn.Config(
        "photobot.asgi:app",
        factory=False,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=uvicorn_log_config(settings),
        access_log=access_log_enabled(settings),
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=20,
    )
    server = _Server(config)
    server.hint = try_it(settings)
    try:
        if config.workers > 1:
            sock = config.bind_socket()  # logs "Uvicorn running on …"
            if server.hint:
                click.echo(server.hint, err=True)
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if not server.started and config.workers == 1:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE: the app could not start (the log says why)
    sys.exit(0)
