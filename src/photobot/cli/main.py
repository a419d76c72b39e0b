"""The `photobot` command: operate the service from a shell (every command takes --json).

Commands are imported only when they run (`LazyGroup`): `photobot events list` must not pay for importing
the worker, the simulator and Apprise. Usage errors print one line on stderr, like every other error.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# name → "module:attribute", per group. Groups themselves are lazy too.
TOP = {
    "migrate": "photobot.cli.server:migrate",
    "bootstrap": "photobot.cli.server:bootstrap",
    "serve": "photobot.cli.server:serve",
    "worker": "photobot.cli.worker:command",
    "simulator": "photobot.cli.simulator:command",
    "events": "photobot.cli.events:events",
    "users": "photobot.cli.events:users",
    "styles": "photobot.cli.catalog:styles",
    "keys": "photobot.cli.access:keys",
    "tokens": "photobot.cli.access:tokens",
    "jobs": "photobot.cli.jobs:jobs",
}
EXTRA = {
    "jobs": {
        "resend": "photobot.cli.notify_cmds:resend_command",
        "retry": "photobot.cli.jobs_ops:retry_command",
        "refund": "photobot.cli.jobs_ops:refund_command",
    },
    "events": {
        "stats": "photobot.cli.jobs_ops:stats_command",
        "gallery-link": "photobot.cli.gallery:gallery_link_command",
    },
}


def _load(target: str) -> click.Command:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            command = _load(self.lazy[cmd_name])
            if isinstance(command, click.Group) and cmd_name in EXTRA:
                for name, target in EXTRA[cmd_name].items():
                    if name not in command.commands:
                        command.add_command(_LazyCommand(name, target), name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


class _LazyCommand(click.Command):
    """Stands in for a subcommand until it is invoked (keeps `--help` listings cheap)."""

    def __init__(self, name: str, target: str) -> None:
        super().__init__(name)
        self.target = target

    def _real(self) -> click.Command:
        return _load(self.target)

    def get_short_help_str(self, limit: int = 45) -> str:
        return self._real().get_short_help_str(limit)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:  # fmt: skip
        return self._real().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self._real().invoke(ctx)


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
