"""wrk as the load client: a C client on its own threads, far faster than the paths it drives (see
`docs/benchmarks.md` for the check), so the figures are the server's and not the client's.

`write_spec` stores the requests (each one distinct: a callback per job, or one submission body repeated);
`run` drives them with `bench/wrk.lua` and returns req/s, latency percentiles and what each request cost in CPU:
the server's process tree, PostgreSQL's backends and the client itself, all read around the same run.
`make bench` installs wrk (Debian package) when it is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

LUA = Path(__file__).resolve().parent / "wrk.lua"
THREADS = 2


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    return found


def write_spec(path: Path, requests: Iterable[Request]) -> Path:
    with path.open("wb") as out:
        for r in requests:
            out.write(f"{r.method} {r.path} {len(r.headers)} {len(r.body)}\n".encode())
            for name, value in r.headers.items():
                out.write(f"{name}: {value}\n".encode())
            out.write(r.body + b"\n")
    return path


def postgres_cpu_s() -> float:
    """CPU seconds of the PostgreSQL processes alive now (a benchmark's backends live through its run)."""
    return _cpu_of(("postgres", "postmaster"))


def redis_cpu_s() -> float:
    """CPU seconds of the Redis server (shared with anything else using it on this machine)."""
    return _cpu_of(("redis-server",))


def _cpu_of(names: tuple[str, ...]) -> float:
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in names:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
    return total


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    url: str,
    spec: Path,
    *,
    connections: int,
    duration_s: float,
    server_cpu_s: Callable[[], float],
    once: bool = False,
    threads: int = THREADS,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """One wrk run against `url` (scheme://host:port); `once` stops each thread after one pass over its records."""
    threads = min(threads, connections)
    env = dict(os.environ, WRK_SPEC=str(spec), WRK_THREADS=str(threads), WRK_ONCE="1" if once else "0")
    cmd = [wrk_binary(), "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration_s))}s",
           "--timeout", f"{max(1, round(timeout_s))}s", "-s", str(LUA), url]  # fmt: skip
    server0, db0, redis0, client0 = server_cpu_s(), postgres_cpu_s(), redis_cpu_s(), _children_cpu_s()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration_s + 60)
    server1, db1, redis1, client1 = server_cpu_s(), postgres_cpu_s(), redis_cpu_s(), _children_cpu_s()
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    n = max(1, raw["requests"])
    # the span the requests took: shorter than wrk's duration when every thread ran out of records (`once`)
    seconds = raw.get("active_us", raw["duration_us"]) / 1e6
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1),
        "seconds": round(seconds, 2),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "server_cpu_ms_per_req": round(1000 * (server1 - server0) / n, 3),
        "db_cpu_ms_per_req": round(1000 * (db1 - db0) / n, 3),
        "redis_cpu_ms_per_req": round(1000 * (redis1 - redis0) / n, 3),
        "client_cpu_ms_per_req": round(1000 * (client1 - client0) / n, 3),
        "non_2xx": raw["non_2xx_3xx"],
        "socket_errors": errors,
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over repeated runs (the runs themselves are kept beside it)."""
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    out: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    out["runs"] = len(runs)
    return out
