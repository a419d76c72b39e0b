"""Schemathesis against /openapi.json: every documented operation, bounded; no 5xx, every error problem+json.

The app runs in its own thread and event loop (schemathesis calls it synchronously over real HTTP on
loopback), against a throwaway PostgreSQL database with a seeded event and tokens. When the app does not
serve /openapi.json the whole module is skipped, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from photobot.app import create_app
from photobot.db import Database
from photobot.db.migrate import upgrade
from photobot.settings import load_settings
from tests.support.databases import create_pg_database, drop_pg_database, pg_url_for
from tests.support.seed import seed
from tests.support.servers import free_port

MAX_EXAMPLES = 3  # per operation and mode; --chaos-full (or PHOTOBOT_TEST_CHAOS_FULL=1): FULL_EXAMPLES
FULL_EXAMPLES = 15
STREAMING = "text/event-stream"  # live-update streams stay open by design: not fuzzed here
# Answers that are not errors of ours: 304 (ETag), and documents that are not JSON by design.
NON_PROBLEM_OK = {"text/html", "text/plain", "text/event-stream", "image/png", "image/svg+xml"}


class _ThreadServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _run(coro: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _prepare(url: str) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        return await seed(db, credits=50)
    finally:
        await db.close()


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    name = _run(create_pg_database("photobot_fuzz"))
    url = pg_url_for(name)
    try:
        seeded = _run(_prepare(url))
        port = free_port()
        var = Path(tmp_path_factory.mktemp("openapi"))
        settings_ = load_settings(
            env_file=None, env="test", var_dir=var, secret_key="fuzz-secret-" + "q" * 32, database_url=url,
            public_base_url=f"http://127.0.0.1:{port}", log_level="ERROR", provider="kie", kie_api_keys="fuzz-key",
            submit_rate_limit="100000/minute", callback_rate_limit="100000/minute",
        )  # fmt: skip
        app = create_app(settings_, run_dispatcher=False)
        server = _ThreadServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            spec = httpx.get(f"{base}/openapi.json", timeout=30)
            yield {"base": base, "spec": spec, "seeded": seeded}
        finally:
            server.should_exit = True
            thread.join(15)
    finally:
        _run(drop_pg_database(name))


def _check(case: Any, live_api: dict[str, Any], failures: list[str]) -> None:
    seeded = live_api["seeded"]
    token = seeded["admin"] if case.path.startswith("/v1/admin") else seeded["kiosk"]
    headers = {"Authorization": f"Bearer {token}"}
    if case.headers and "Authorization" in case.headers:
        headers = {}  # the case tests its own credentials
    response = case.call(base_url=live_api["base"], headers=headers, timeout=15)
    status = response.status_code
    where = f"{case.method} {case.formatted_path}"
    if status >= 500:
        failures.append(f"{where} -> {status}: {response.text[:200]}")
        return
    raw = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
    ctype = (raw[0] if isinstance(raw, list) and raw else str(raw or "")).split(";")[0].strip()
    if status >= 400 and ctype not in NON_PROBLEM_OK:
        if ctype != "application/problem+json":
            failures.append(f"{where} -> {status} with {ctype or 'no content type'}")
            return
        body = response.json()
        if not {"type", "title", "status", "code"} <= set(body) or body["status"] != status:
            failures.append(f"{where} -> {status}: not a complete problem: {body}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_problem_json_errors(
    live_api: dict[str, Any], mode: GenerationMode, request: pytest.FixtureRequest
) -> None:
    full = request.config.getoption("--chaos-full", default=False) or os.environ.get("PHOTOBOT_TEST_CHAOS_FULL") == "1"
    examples = FULL_EXAMPLES if full else MAX_EXAMPLES
    spec = live_api["spec"]
    if spec.status_code != 200 or "json" not in spec.headers.get("content-type", ""):
        pytest.skip(f"GET /openapi.json answers {spec.status_code}: no OpenAPI document to fuzz yet")
    schema = schemathesis.openapi.from_dict(spec.json())
    failures: list[str] = []
    timings: list[tuple[float, str]] = []
    unsatisfiable: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        responses = operation.definition.raw.get("responses", {})
        if any(STREAMING in (r.get("content") or {}) for r in responses.values() if isinstance(r, dict)):
            continue
        operations += 1

        @settings(
            max_examples=examples,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            _check(case, live_api, failures)

        started = time.monotonic()
        try:
            run()
        except Unsatisfiable:  # nothing to negate in this operation (no parameters, or only free text)
            unsatisfiable.append(f"{operation.method.upper()} {operation.path}")
        except Exception as exc:  # a strategy that cannot be built for this operation: say so, go on
            failures.append(f"{operation.method.upper()} {operation.path}: could not fuzz: {exc!r}"[:300])
        timings.append((time.monotonic() - started, f"{operation.method.upper()} {operation.path}"))
    assert operations > 0
    print(
        f"\n{mode.value}: {operations} operations ({len(unsatisfiable)} without {mode.value} cases); "
        f"slowest: {sorted(timings, reverse=True)[:3]}"
    )
    unique = sorted(set(failures))
    assert not unique, f"{len(unique)} problems over {operations} operations:\n" + "\n".join(unique[:40])
