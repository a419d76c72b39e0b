"""Every `photobot …` command the docs, the README and the pages show is one the CLI accepts.

Each snippet is parsed by the real click command tree (nothing runs): an unknown command, an unknown option or an
extra argument fails the test, so a renamed option cannot leave a stale instruction behind. Placeholders (`ID`,
`N`, `<file>`) stand for a value; a bare command named in prose (missing its arguments) is fine.
"""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import click
import pytest

from photobot.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
           *sorted((ROOT / "src/photobot/pages/templates").glob("*.html"))]  # fmt: skip
SNIPPET = re.compile(r"(?:`|^\s*(?:\$ )?)(photobot [a-z][^`\n#|]*)", re.M)
PLACEHOLDER = re.compile(r"^(<[^>]+>|[A-Z][A-Z0-9_]*|\$\{?[A-Z][A-Z0-9_]*\}?)$")  # ID, <file>, $EVENT


def documented() -> list[tuple[str, str]]:
    found = []
    for path in SOURCES:
        for match in SNIPPET.finditer(path.read_text()):
            for part in match.group(1).split("&&"):
                snippet = part.strip().rstrip(".,;:)")
                if snippet.startswith("photobot ") and "…" not in snippet and "..." not in snippet:
                    found.append((path.relative_to(ROOT).as_posix(), snippet))
    return found


def test_there_are_documented_commands() -> None:
    assert len(documented()) > 40


def _unparsed(context: click.Context) -> list[str]:
    """The tokens a group left for its subcommand (click 8 keeps the subcommand's name apart)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return [*context.protected_args, *context.args]


@pytest.mark.parametrize(("source", "snippet"), documented())
def test_the_cli_accepts_the_documented_command(source: str, snippet: str) -> None:
    args = [("1" if PLACEHOLDER.match(arg) else arg) for arg in shlex.split(snippet)[1:]]
    try:
        context = cli.make_context("photobot", args)
        while isinstance(context.command, click.Group) and (pending := _unparsed(context)):
            name, command, rest = context.command.resolve_command(context, pending)
            assert command is not None and name is not None
            context = command.make_context(name, rest, parent=context)
    except click.exceptions.Exit:  # --help and friends
        return
    except click.MissingParameter:  # a command named in prose, without its arguments
        return
    except click.ClickException as exc:
        pytest.fail(f"{source}: `{snippet}`: {exc.format_message()}")
