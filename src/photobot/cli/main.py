"""The `photobot` command: operate the service from a shell (every command takes --json)."""

from __future__ import annotations

import importlib

import click

from photobot.cli.access import keys, tokens
from photobot.cli.catalog import styles
from photobot.cli.events import events, users
from photobot.cli.jobs import jobs
from photobot.cli.server import bootstrap, migrate, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Photobot: the backend of AI photo booths."""


for command in (migrate, bootstrap, serve, events, users, styles, keys, tokens, jobs):
    cli.add_command(command)

# Commands that live next to the part they drive (registered when that part is installed).
for module, attr, parent in (
    ("photobot.cli.simulator", "command", cli),
    ("photobot.cli.worker", "command", cli),
    ("photobot.cli.notify_cmds", "resend_command", jobs),
    ("photobot.cli.jobs_ops", "retry_command", jobs),
    ("photobot.cli.jobs_ops", "refund_command", jobs),
    ("photobot.cli.jobs_ops", "stats_command", events),
    ("photobot.cli.gallery", "gallery_link_command", events),
):
    try:
        parent.add_command(getattr(importlib.import_module(module), attr))
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise


def main() -> None:
    cli(prog_name="photobot")
