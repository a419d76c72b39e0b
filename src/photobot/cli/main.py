"""The `photobot` command: operate the service from a shell (every command takes --json).

Commands are imported only when they run (`LazyGroup`): `photobot events list` must not pay for importing
the worker, the simulator and Apprise. Usage errors print one line on stderr, like every other error.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# name → "module:attribute": one module per command group (or top-level command), imported on first use.
TOP = {
    "migrate": "photobot.cli.server:migrate",
    "bootstrap": "photobot.cli.server:bootstrap",
    "serve": "photobot.cli.server:serve",
    "worker": "photobot.cli.worker:command",
    "simulator": "photobot.cli.simulator:command",
    "events": "photobot.cli.events:events",
    "users": "photobot.cli.users:users",
    "styles": "photobot.cli.styles:styles",
    "keys": "photobot.cli.keys:keys",
    "tokens": "photobot.cli.tokens:tokens",
    "jobs": "photobot.cli.jobs:jobs",
    "packs": "photobot.cli.packs:packs",
    "purchases": "photobot.cli.purchases:purchases",
    "webhooks": "photobot.cli.webhooks:webhooks",
    "mercadopago-simulator": "photobot.cli.simulator:mercadopago_command",
}


def _load(target: str) -> click.Command:
    module, attr = target.split(":")
    command = getattr(importlib.import_module(module), attr)
    assert isinstance(command, click.Command), target
    return command


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(_load(self.lazy[cmd_name]), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=TOP, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Photobot: the backend of AI photo booths."""


def main() -> None:
    try:
        cli.main(prog_name="photobot", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:  # usage errors and bad options: one line, exit 2
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
