"""What one submission costs in database round trips and thread hops: the counts behind bench row 2's profile.

Serves the app in this process (uvicorn, no dispatcher, PostgreSQL + Redis + local files, like
`bench.submit_ingest`), turns on PostgreSQL's statement log for its throwaway database only
(`ALTER DATABASE … SET log_statement = 'all'`), sends `--warm` submissions to fill every cache, then `--count`
more, one at a time, and reports per submission:

- the statements PostgreSQL executed for this database (each one a round trip on the extended protocol, as are
  the `BEGIN` / `COMMIT` of an ORM transaction), read from the server's log (`--pg-log`, by default Debian's
  `/var/log/postgresql/postgresql-15-main.log`; the log line prefix must name the database, `%d`), grouped by
  their first words;
- the calls handed to the event loop's default executor (`asyncio.to_thread`, `run_in_executor(None, …)`):
  each is a thread hop.

    python -m bench.submit_roundtrips [--count 20] [--warm 5] [--pg-log PATH]

The client runs in its own thread with a synchronous httpx client, so its own work never counts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import functools
import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

from bench import common
from bench.submit_ingest import BOUNDARY, multipart, noise_jpeg

PG_LOG = "/var/log/postgresql/postgresql-15-main.log"


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The default executor, counting what is submitted to it (each submission is a hop to a worker thread)."""

    def __init__(self) -> None:
        super().__init__(max_workers=8, thread_name_prefix="counted")
        self.calls: collections.Counter[str] = collections.Counter()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        target: Any = fn
        while isinstance(target, functools.partial):  # to_thread submits partial(context.run, func, *args)
            target = target.args[0] if getattr(target.func, "__name__", "") == "run" and target.args else target.func
        name = getattr(target, "__qualname__", None) or type(target).__qualname__
        self.calls[name] += 1
        return super().submit(fn, *args, **kwargs)


def _statements(log: Path, start: int, database: str) -> list[str]:
    """The statements logged for `database` after byte `start` of the server log."""
    with log.open("rb") as handle:
        handle.seek(start)
        text = handle.read().decode(errors="replace")
    found = []
    pattern = re.compile(rf"@{re.escape(database)} LOG:  (?:statement|execute [^:]*): (.*)")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if match := pattern.search(line):
            sql = match.group(1).strip() or (lines[i + 1].strip() if i + 1 < len(lines) else "")  # a multi-line one
            found.append(" ".join(sql.split()[:4])[:60])
    return found


async def run(count: int, warm: int, pg_log: Path) -> dict[str, Any]:
    body = multipart(noise_jpeg(1_100_000))
    with common.workdir("roundtrips") as tmp:
        async with common.throwaway_database() as url:
            await common.flush_redis()
            seeded = await common.seed(url, credits=1_000_000)
            database = url.rsplit("/", 1)[1]
            admin = await asyncpg.connect(common.PG_ADMIN_DSN)
            try:
                await admin.execute(f"ALTER DATABASE \"{database}\" SET log_statement = 'all'")
            finally:
                await admin.close()
            port = common.free_port()
            provider = {"PHOTOBOT_PROVIDER": "kie", "PHOTOBOT_KIE_API_KEYS": "bench-key",
                        "PHOTOBOT_KIE_BASE_URL": "http://127.0.0.1:9"}  # fmt: skip
            env = common.service_env(url, port, tmp / "var", **provider)
            saved = dict(os.environ)
            os.environ.update(env)
            try:
                from photobot.app import create_app
                from photobot.settings import load_settings

                app = create_app(load_settings(env_file=None), run_dispatcher=False)
            finally:
                os.environ.clear()
                os.environ.update(saved)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                   access_log=False, lifespan="on"))  # fmt: skip
            executor = CountingExecutor()
            asyncio.get_running_loop().set_default_executor(executor)
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.05)
            headers = {"Authorization": f"Bearer {seeded.kiosk}",
                       "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}  # fmt: skip
            marks: dict[str, Any] = {}

            def client() -> None:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                    for _ in range(warm):
                        assert http.post("/v1/jobs", content=body, headers=headers).status_code == 202
                    marks["log"] = pg_log.stat().st_size
                    marks["hops"] = collections.Counter(executor.calls)
                    for _ in range(count):
                        assert http.post("/v1/jobs", content=body, headers=headers).status_code == 202

            thread = threading.Thread(target=client)
            thread.start()
            while thread.is_alive():
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # let the server's log lines reach the file
            hops = executor.calls - marks["hops"]
            server.should_exit = True
            await serving
            statements = _statements(pg_log, marks["log"], database)
    kinds = collections.Counter(statements)
    return {
        "name": "submit_roundtrips",
        "command": f"python -m bench.submit_roundtrips --count {count} --warm {warm}",
        "submissions": count,
        "statements_per_submission": round(len(statements) / count, 2),
        "statements": {k: round(v / count, 2) for k, v in kinds.most_common()},
        "thread_hops_per_submission": round(sum(hops.values()) / count, 2),
        "thread_hops": {k: round(v / count, 2) for k, v in hops.most_common()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--pg-log", type=Path, default=Path(os.environ.get("PHOTOBOT_BENCH_PG_LOG", PG_LOG)))
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.count, args.warm, args.pg_log)), indent=2))


if __name__ == "__main__":
    main()
