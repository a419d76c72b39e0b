"""`photobot styles …`: the style catalogue."""

from __future__ import annotations

from pathlib import Path

import click

from photobot.cli.common import emit, json_option, run_async, session_scope, settings_from_env, storage_scope
from photobot.services import public_view
from photobot.services import styles as svc


@click.group("styles", help="The style catalogue guests pick from.")
def styles() -> None:
    pass


@styles.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
@run_async
async def import_styles(file: Path, as_json: bool) -> None:
    """Upsert styles from a JSON or YAML list (by id); a `preview:` image path is relative to the file."""
    settings = settings_from_env()
    async with storage_scope(settings) as storage, session_scope(settings) as session:
        emit([public_view(s) for s in await svc.import_file(session, file, storage)], as_json)


@styles.command("list")
@json_option
@run_async
async def list_styles(as_json: bool) -> None:
    async with session_scope(settings_from_env()) as session:
        emit(
            [public_view(s) for s in await svc.list_styles(session)],
            as_json,
            text=lambda rows: "\n".join(f"{r['id']:<12} {r['model']:<24} {r['name']}" for r in rows),
        )
