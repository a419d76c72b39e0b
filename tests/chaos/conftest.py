"""Fault suite: `--chaos-full` runs the full numbers (20 kills, 60 s Redis outage, ...); the default is short.

The short form (few jobs, few repetitions) runs inside `make test` in well under two minutes; `make chaos`
runs the full form. Every scenario ends with an audit (see `harness.ChaosEnv.audit_all`) and the results,
with the abuse counters, are printed at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.chaos import report
from tests.chaos.harness import OwnPostgres, OwnRedis


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-full",
        action="store_true",
        default=False,
        help="fault suite: run the full numbers (20 kills, 60 s outages, ...) instead of the short form",
    )


@pytest.fixture(scope="session")
def chaos_full(request: pytest.FixtureRequest) -> bool:
    return _is_full(request.config)


def _is_full(config: pytest.Config) -> bool:
    try:
        flag = bool(config.getoption("--chaos-full"))
    except ValueError:
        flag = False
    return flag or os.environ.get("PHOTOBOT_TEST_CHAOS_FULL") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The full numbers take minutes per scenario; the 120 s default timeout guards the short form only."""
    if not _is_full(config):
        return
    for item in items:
        if "tests/chaos/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.timeout(1800))


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    cluster = OwnPostgres()
    try:
        await cluster.init()
    except OwnPostgres.Unavailable as exc:
        pytest.skip(f"cannot run a private PostgreSQL cluster here: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not (report.SCENARIOS or report.REFUSED or report.ACCEPTED):
        return
    tr = terminalreporter
    tr.section("fault suite and abuse report")
    for result in report.SCENARIOS:
        tr.write_line(result.line())
        for violation in result.violations[:10]:
            tr.write_line(f"    ! {violation}")
    if report.REFUSED or report.ACCEPTED:
        total = sum(report.REFUSED.values())
        tr.write_line(f"abuse attempts refused: {total}")
        for kind, count in sorted(report.REFUSED.items()):
            tr.write_line(f"    {kind:<40} {count}")
        for kind, count in sorted(report.ACCEPTED.items()):
            tr.write_line(f"    NOT REFUSED: {kind:<27} {count}")
