"""Every shell example in README.md and docs/*.md runs, as written, against a served instance.

The convention (docs/architecture.md, "Tests"):
- fenced blocks tagged `sh`, `bash` or `console` (`$ ` lines) are run, page by page, in one bash per page
  (`set -eo pipefail`), so a block may use what an earlier block of the same page set (`$TOKEN`, `job.json`);
- they run in a directory that looks like a fresh clone after `make run`: the repository's files, the
  `.venv/bin` on the PATH, and its own `var/` where `photobot bootstrap` made the demo event and token, while
  `photobot serve` listens on a free port: `127.0.0.1:8000` in a block is that address;
- `# → 202 …` after a command documents the HTTP status it gets: each documented status must be answered (in
  that order), and an error status (4xx, 5xx) that is not documented fails the block;
- a block that cannot run here (production settings, the server itself) is preceded by
  `<!-- not run: <reason> -->`; the reason is required and the number of such blocks is capped (`NOT_RUN_MAX`);
- a fence without a language holding a shell command fails: tag it.
Docs never link outside the repository (`../shared/…`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from photobot.services.styles import StyleEntry
from tests.support.processes import PHOTOBOT, photobot_env, photobot_server
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = ("sh", "bash", "console")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->\s*$")
DOCUMENTED_STATUS = re.compile(r"#\s*→\s*(\d{3})\b")
LOOKS_LIKE_SHELL = re.compile(r"^\s*(\$ )?(photobot [a-z]|curl -|make [a-z]|\.venv/bin/|python3? -m |source )", re.M)
DOCS_ADDRESS = "127.0.0.1:8000"
NOT_RUN_MAX = 6  # raise it only for a block that truly cannot run on a test machine

pytestmark = pytest.mark.timeout(600)


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def script(self) -> str:
        if self.lang != "console":
            return self.code
        return "\n".join(line[2:] for line in self.code.splitlines() if line.startswith("$ "))

    @property
    def documented(self) -> list[int]:
        return [int(code) for code in DOCUMENTED_STATUS.findall(self.code)]


def fenced_blocks(page: Path) -> list[Block]:
    """Every fenced block of a page (any language), with the `not run` reason written just above it."""
    lines = page.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, start = len(opening["indent"]), i
        i += 1
        body = []
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.match(before)
        found.append(Block(page, start + 1, opening["lang"], "\n".join(body), marker["reason"] if marker else None))
        i += 1
    return found


def shell_blocks(page: Path) -> list[Block]:
    return [b for b in fenced_blocks(page) if b.lang in SHELL]


RUNNABLE = {page: [b for b in shell_blocks(page) if b.not_run is None] for page in PAGES}


# --- the rules that need no server ------------------------------------------------------------------------------
def test_not_run_blocks_are_marked_with_a_reason_and_counted() -> None:
    skipped = [b for page in PAGES for b in shell_blocks(page) if b.not_run is not None]
    ran = [b for blocks in RUNNABLE.values() for b in blocks]
    assert all(len(b.not_run or "") >= 10 for b in skipped), [b.where for b in skipped]
    assert len(skipped) <= NOT_RUN_MAX, f"{len(skipped)} blocks not run: {[b.where for b in skipped]}"
    assert len(ran) >= 8, "the docs' shell examples are no longer found"
    # a marker must sit right above a shell block, never float (a reader would think a block is run)
    for page in PAGES:
        lines = page.read_text().splitlines()
        marked = {b.line - 2 for b in fenced_blocks(page) if b.not_run is not None}
        markers = {n for n, line in enumerate(lines) if NOT_RUN.match(line)}
        loose = [f"{page.relative_to(ROOT)}:{n + 1}" for n in markers if n not in marked]
        assert not loose, f"`not run` markers not directly above a fenced block: {loose}"


def test_shell_commands_are_in_tagged_blocks() -> None:
    untagged = [
        b.where for page in PAGES for b in fenced_blocks(page) if not b.lang and LOOKS_LIKE_SHELL.search(b.code)
    ]
    assert not untagged, f"fenced shell commands without a language (tag them sh): {untagged}"


def test_docs_link_nothing_outside_the_repository() -> None:
    for page in PAGES:
        text = page.read_text()
        assert "../shared" not in text and "/work/shared" not in text, page
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{page.name}: broken link {target}"


def test_the_style_file_format_is_documented_with_an_example_of_every_field() -> None:
    table = (ROOT / "docs" / "styles.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))
    fields = set(StyleEntry.model_fields)  # a style's fields and the file-only `preview`
    assert documented == fields, documented ^ fields
    example = yaml.safe_load((ROOT / "docs" / "example-styles.yaml").read_text())
    styles = [StyleEntry.model_validate(item) for item in example]
    used = {name for item in example for name in item}
    assert used >= fields - {"reference_keys"}, fields - used
    assert len(styles) == len({s.id for s in styles})


# --- running them -----------------------------------------------------------------------------------------------
@dataclass
class Served:
    cwd: Path
    env: dict[str, str]
    address: str


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """`make run` in a fresh clone: the repository's files (linked), a private var/, bootstrap, then serve."""
    cwd = tmp_path_factory.mktemp("clone")
    for entry in ROOT.iterdir():
        if entry.name not in {"var", ".env", ".git", "test-output", "job.json", "purchase.json"}:
            (cwd / entry.name).symlink_to(entry)
    port = free_port()
    env = photobot_env(
        PHOTOBOT_ENV="development", PHOTOBOT_PORT=str(port), PHOTOBOT_LOG_LEVEL="WARNING",
        PHOTOBOT_SIMULATOR_CALLBACK_DELAY_S="0.3",
    )  # fmt: skip
    env["PATH"] = f"{cwd / '.venv' / 'bin'}:{env['PATH']}"
    boot = await asyncio.create_subprocess_exec(
        str(PHOTOBOT), "bootstrap", env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(boot.communicate(), 120)
    assert boot.returncode == 0, err.decode()
    async with photobot_server("serve", env=env, cwd=cwd, port=port):
        yield Served(cwd, env, f"127.0.0.1:{port}")


PREAMBLE = """set -eo pipefail
curl() {  # the status of every call on stderr, unless the example prints its own (-w)
  case " $* " in
    *" -w "*|*" --write-out "*) command curl "$@" ;;
    *) command curl -w '%{stderr}::status %{http_code}\\n' "$@" ;;
  esac
}
"""


def _here(script: str, served: Served) -> str:
    """The example as it runs here: the address `make run` serves is the test server's."""
    return script.replace(DOCS_ADDRESS, served.address)


def _segments(text: str, count: int) -> list[str]:
    parts = re.split(r"^::block (\d+)$", text, flags=re.M)
    out = [""] * count
    for number, chunk in zip(parts[1::2], parts[2::2], strict=True):
        out[int(number)] = chunk
    return out


def _statuses(out: str, err: str) -> list[int]:
    found = [int(s) for s in re.findall(r"^::status (\d{3})$", err, re.M)]
    found += [int(s) for s in re.findall(r"^(\d{3})(?: |$)", out, re.M)]  # an example's own `-w '%{http_code}…'`
    return found


def _in_order(expected: list[int], got: list[int]) -> bool:
    it = iter(got)
    return all(code in it for code in expected)


@pytest.mark.parametrize("page", [p for p, blocks in RUNNABLE.items() if blocks], ids=lambda p: p.name)
async def test_every_shell_example_runs(served: Served, page: Path) -> None:
    blocks = RUNNABLE[page]
    script = PREAMBLE + "".join(
        f"printf '\\n::block {n}\\n'; printf '\\n::block {n}\\n' >&2\n{_here(b.script, served)}\n"
        for n, b in enumerate(blocks)
    )
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=served.cwd, env=served.env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    raw_out, raw_err = await asyncio.wait_for(proc.communicate(), 300)
    out, err = raw_out.decode(errors="replace"), raw_err.decode(errors="replace")
    outs, errs = _segments(out, len(blocks)), _segments(err, len(blocks))
    if proc.returncode != 0:
        last = max((int(n) for n in re.findall(r"^::block (\d+)$", err, re.M)), default=0)
        raise AssertionError(
            f"{blocks[last].where} failed (exit {proc.returncode}):\n{blocks[last].code}\n--- stdout\n"
            f"{outs[last][-3000:]}\n--- stderr\n{errs[last][-3000:]}"
        )
    for block, block_out, block_err in zip(blocks, outs, errs, strict=True):
        got = _statuses(block_out, block_err)
        assert _in_order(block.documented, got), f"{block.where}: documented {block.documented}, answered {got}"
        undocumented = [s for s in got if s >= 400 and s not in block.documented]
        assert not undocumented, f"{block.where}: error answers {undocumented}:\n{block_out[-2000:]}"
