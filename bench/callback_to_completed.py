"""Benchmark: provider callback received → job completed and visible through GET /v1/jobs/{id}.

    .venv/bin/python -m bench.callback_to_completed [--jobs 200] [--in-flight 4] [--pad 2000000] [--runs 3]
                                                    [--watch stream|poll] [--split]

Everything real on loopback, in three processes: the kie.ai simulator (`photobot simulator`, results padded
to 2 MB by default), the app (uvicorn, web + embedded dispatcher) on a throwaway PostgreSQL database
(created, migrated and dropped here), and this process as the client: it submits jobs (at most
`--in-flight` at a time) and watches each one until a GET /v1/jobs/{id} reads `completed`.

`--split` runs the production topology instead (the Procfile's): the web process without a dispatcher
(`photobot serve --no-worker`) and a `photobot worker` process, with Redis (`PHOTOBOT_REDIS_URL`, default
redis://127.0.0.1:6379/0) carrying the wake-ups, live-page updates and notifier wakes between them; the figure then
includes the wake's trip through Redis to the other process and the live stream's trip back.

How the client learns when to GET (`--watch`):
- `stream` (default): it follows the job's live stream (`/p/{public_id}/events`, the SSE the guest page uses) and
  sends the GET as soon as the stream says `completed`. The figure is still the GET's answer: the stream only
  removes the client's polling interval from what is measured (a client polling every 20 ms adds 10-20 ms).
- `poll`: the method of the earlier figures: watch the database for the callback, then GET every 20 ms.

Figures, per job:
- callback → visible: the GET that reads `completed` (client clock, when its answer arrived) minus
  `webhook_events.received_at` (the moment the receiver recorded the callback); same machine, same wall clock.
- with `stream`, also callback → stream: when the live stream told the client (before its confirming GET).
- finishing → completed: the two transitions' `at` (the second is stamped inside the settlement transaction,
  before it commits); completed → visible is the rest of that transaction, the commit and the client's GET.
- accepted → createTask recorded: `jobs.submitted_at - jobs.created_at`.
Baseline, in the same run: GET one 2 MB result file from the simulator and write it to disk (the transfer
that finish cannot avoid); the ratio says how much the engine adds on top of it. With `--runs N` the whole
measurement (fresh database, fresh processes) runs N times and the medians of the per-run figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from PIL import Image

from photobot.app import create_app
from photobot.db import Database
from photobot.db.migrate import upgrade_async
from photobot.db.models import Job, JobTransition, WebhookEvent
from photobot.services import access, accounts, styles
from photobot.settings import load_settings

ADMIN_DSN = os.environ.get("PHOTOBOT_TEST_PG_DSN", "postgresql://127.0.0.1:5432/test")
POLL_S = 0.02


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "tomato").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def baseline(result_url: str, tmp: Path, rounds: int = 20) -> float:
    """Median seconds to GET one result file from the simulator and write it to disk."""
    times = []
    async with httpx.AsyncClient(timeout=30) as client:
        for i in range(rounds):
            started = time.perf_counter()
            target = tmp / f"baseline-{i}.bin"
            with target.open("wb") as out:
                async with client.stream("GET", result_url) as response:
                    response.raise_for_status()
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
            times.append(time.perf_counter() - started)
            target.unlink()
    return statistics.median(times)


async def run(
    jobs: int,
    in_flight: int,
    pad: int,
    callback_delay: float,
    watch: str = "stream",
    save: Path | None = None,
    split: bool = False,
) -> dict[str, float]:
    """One measurement on a fresh database and fresh processes; returns its headline figures (seconds)."""
    name = f"photobot_bench_{uuid.uuid4().hex[:8]}"
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        await upgrade_async(url)
        with tempfile.TemporaryDirectory(prefix="photobot-bench-") as tmp_dir:
            return await _bench(url, Path(tmp_dir), jobs, in_flight, pad, callback_delay, watch, save, split)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer in {timeout} s")
            await asyncio.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def _bench(
    url: str,
    tmp: Path,
    jobs: int,
    in_flight: int,
    pad: int,
    callback_delay: float,
    watch: str,
    save: Path | None,
    split: bool,
) -> dict[str, float]:
    db = Database(url)
    async with db.session() as session:
        await styles.load_default_catalogue(session)
        event = await accounts.create_event(session, "Bench", jobs + 10)
        _, kiosk = await access.create_token(session, "event", event_id=event.id)
    await db.close()

    # three processes, as in production: the provider (simulator), the app (web + embedded dispatcher), and
    # this one, the client that submits and polls; they share the machine, not an event loop
    sim_port, app_port = _free_port(), _free_port()
    sim_url, app_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{app_port}"
    photobot = str(Path(sys.executable).with_name("photobot"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOBOT_")}
    sim = subprocess.Popen(
        [photobot, "simulator", "--port", str(sim_port), "--callback-delay", str(callback_delay),
         "--result-pad-bytes", str(pad), "--rate-limit", "1000000"],
        env=base_env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server_env = {**base_env, **{f"PHOTOBOT_{k.upper()}": str(v) for k, v in SERVER.items()}}
    server_env.update({
        "PHOTOBOT_VAR_DIR": str(tmp / "var"), "PHOTOBOT_DATABASE_URL": url, "PHOTOBOT_PORT": str(app_port),
        "PHOTOBOT_PUBLIC_BASE_URL": app_url, "PHOTOBOT_KIE_BASE_URL": sim_url, "PHOTOBOT_KIE_UPLOAD_BASE_URL": sim_url,
    })  # fmt: skip
    worker_port = _free_port()
    if split:
        server_env.update({"PHOTOBOT_REDIS_URL": os.environ.get("PHOTOBOT_REDIS_URL", "redis://127.0.0.1:6379/0"),
                           "BENCH_NO_WORKER": "1", "PHOTOBOT_WORKER_METRICS_PORT": str(worker_port)})  # fmt: skip
    log = (tmp / "server.log").open("wb")
    root = Path(__file__).resolve().parent.parent
    app = subprocess.Popen([sys.executable, "-m", "bench.callback_to_completed", "--serve"], env=server_env,
                           cwd=root, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    worker = None
    if split:  # cwd: the temporary directory, so no .env of the checkout is read
        worker = subprocess.Popen([photobot, "worker"], env=server_env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    try:
        await _wait_http(f"{sim_url}/_sim/config", sim)
        await _wait_http(f"{app_url}/healthz", app)
        if worker is not None:
            await _wait_http(f"http://127.0.0.1:{worker_port}/metrics", worker)
        return await _drive(app_url, kiosk, url, tmp, jobs, in_flight, callback_delay, watch, save, split)
    except BaseException:
        print((tmp / "server.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        _stop(app)
        if worker is not None:
            _stop(worker)
        _stop(sim)
        log.close()


SERVER: dict[str, Any] = {
    "env": "test", "secret_key": "bench-secret-" + "z" * 32, "allow_private_networks": "true", "log_level": "WARNING",
    "log_format": "json", "kie_rate_limit": 1_000_000, "submit_rate_limit": "1000000/minute",
    "callback_rate_limit": "1000000/minute", "host": "127.0.0.1",
}  # fmt: skip


def serve() -> None:
    """The app process: web + embedded dispatcher (web only with BENCH_NO_WORKER), settings from PHOTOBOT_* only
    (no .env)."""
    import uvicorn

    from photobot.logs import configure_logging

    settings = load_settings(env_file=None)
    configure_logging(settings)
    app = create_app(settings, run_dispatcher=not os.environ.get("BENCH_NO_WORKER"))
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_config=None)


async def _drive(
    base_url: str,
    kiosk: str,
    url: str,
    tmp: Path,
    jobs: int,
    in_flight: int,
    callback_delay: float,
    watch: str,
    save: Path | None = None,
    split: bool = False,
) -> dict[str, float]:
    auth = {"Authorization": f"Bearer {kiosk}"}
    image = _jpeg()
    visible: dict[str, float] = {}
    told: dict[str, float] = {}  # when the live stream said `completed` (watch=stream)
    limits = httpx.Limits(max_connections=in_flight * 3 + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def read_completed(job_id: str, tag: str | None = None) -> tuple[bool, str | None]:
            headers = dict(auth)
            if tag:
                headers["If-None-Match"] = tag
            answer = await client.get(f"/v1/jobs/{job_id}", headers=headers)
            seen = time.time()
            if answer.status_code != 200:
                return False, tag
            status = answer.json()["status"]
            if status == "failed":
                raise RuntimeError(f"job {job_id} failed: {answer.json().get('error')}")
            if status == "completed":
                visible[job_id] = seen
                return True, tag
            return False, answer.headers.get("etag")

        async def follow_stream(job_id: str, page_url: str) -> None:
            # the guest page's live stream; each `state` message is the job as the app read it after a change
            async with client.stream("GET", page_url + "/events") as stream:
                stream.raise_for_status()
                async for line in stream.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    status = json.loads(line[6:]).get("status")
                    if status in ("completed", "failed"):
                        told[job_id] = time.time()
                        break
            if not (await read_completed(job_id))[0]:
                raise RuntimeError(f"job {job_id}: the stream said final, GET does not read completed")

        async def poll(job_id: str) -> None:
            # until the callback is in, watch the database (cheap) rather than hammer the API; from then on
            # poll GET /v1/jobs/{id} every 20 ms: the polling itself must not be what slows the app down
            while True:
                async with db_watch.session() as session:
                    got = (await session.execute(sa.select(Job.callback_at).where(Job.id == job_id))).scalar()
                if got is not None:
                    break
                await asyncio.sleep(POLL_S)
            tag = None
            while True:
                done, tag = await read_completed(job_id, tag)
                if done:
                    return
                await asyncio.sleep(POLL_S)

        async def one() -> str:
            response = await client.post("/v1/jobs", data={"style": "pb_a"}, headers=auth,
                                         files={"image": ("g.jpg", image, "image/jpeg")})  # fmt: skip
            response.raise_for_status()
            job_id = response.json()["id"]
            if watch == "stream":
                await follow_stream(job_id, response.json()["page_url"])
            else:
                await poll(job_id)
            return job_id

        gate = asyncio.Semaphore(in_flight)

        async def gated() -> str:
            async with gate:
                return await one()

        db_watch = Database(url, pool_size=in_flight)
        try:
            started = time.perf_counter()
            ids = await asyncio.gather(*(gated() for _ in range(jobs)))
            wall = time.perf_counter() - started
        finally:
            await db_watch.close()

    db = Database(url)
    try:
        async with db.session() as session:
            rows = (await session.execute(
                sa.select(Job.id, Job.created_at, Job.submitted_at, Job.result_urls, WebhookEvent.received_at)
                .join(WebhookEvent, WebhookEvent.job_id == Job.id).where(Job.id.in_(ids))
            )).all()  # fmt: skip
            marks = (await session.execute(
                sa.select(JobTransition.job_id, JobTransition.to_state, sa.func.min(JobTransition.at))
                .where(JobTransition.job_id.in_(ids), JobTransition.to_state.in_(["finishing", "completed"]))
                .group_by(JobTransition.job_id, JobTransition.to_state)
            )).all()  # fmt: skip
    finally:
        await db.close()
    at = {(job_id, state): when.timestamp() for job_id, state, when in marks}
    received = {r[0]: r[4].timestamp() for r in rows}
    # (the callback's own transition to `finishing` carries the moment it was received: no phase of its own)
    phases = {
        "finishing → completed (wake, claim, recordInfo ∥ download, verify, store, settle)": [
            at[(j, "completed")] - at[(j, "finishing")] for j in received
        ],
        "completed → visible (rest of the settlement, commit, the client's GET)": [
            visible[j] - at[(j, "completed")] for j in received
        ],
    }
    if told:
        phases["callback → live stream said completed"] = [told[j] - received[j] for j in received]
    cb_to_visible = [visible[r[0]] - r[4].timestamp() for r in rows]
    if save is not None:  # per job, epoch seconds: for looking at single jobs next to logs and profiles
        marks_of = {j: {"received": received[j], "finishing": at[(j, "finishing")], "completed": at[(j, "completed")],
                        "told": told.get(j), "visible": visible[j]} for j in received}  # fmt: skip
        save.write_text(json.dumps(marks_of))
    accepted_to_create = [(r[2] - r[1]).total_seconds() for r in rows if r[2] is not None]
    result_url = rows[-1][3][0]
    async with httpx.AsyncClient() as client:
        size = len((await client.get(result_url)).content)
    base = await baseline(result_url, tmp)

    ms = 1000.0
    print("callback → completed visible (GET /v1/jobs/{id}), PostgreSQL, results of", f"{size / 1e6:.2f} MB")
    print(f"  jobs: {len(ids)} ({len(rows)} with a recorded callback), in flight at once: {in_flight}, "
          f"wall {wall:.1f} s")  # fmt: skip
    p50, p99, worst = pct(cb_to_visible, 50), pct(cb_to_visible, 99), max(cb_to_visible)
    print(f"  callback → visible   p50 {p50 * ms:7.1f} ms   p99 {p99 * ms:7.1f} ms   max {worst * ms:7.1f} ms")
    for label, values in phases.items():
        print(f"    {label}: p50 {pct(values, 50) * ms:.1f} ms, p99 {pct(values, 99) * ms:.1f} ms")
    print(f"  accepted → createTask recorded   p50 {pct(accepted_to_create, 50) * ms:7.1f} ms   "
          f"p99 {pct(accepted_to_create, 99) * ms:7.1f} ms")  # fmt: skip
    print(f"  baseline: GET {size / 1e6:.2f} MB from the simulator + write to disk, median {base * ms:.1f} ms")
    print(f"  ratio p50 / baseline: {pct(cb_to_visible, 50) / base:.1f}x   p99 / baseline: "
          f"{pct(cb_to_visible, 99) / base:.1f}x")  # fmt: skip
    settings = load_settings(env_file=None, **{k: v for k, v in SERVER.items() if k != "host"})
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work shares these CPUs)")
    if split:
        print("  processes: simulator | web (uvicorn, --no-worker) | worker (`photobot worker`) | this client; Redis "
              "carries the wake-ups and live updates between them; local storage")  # fmt: skip
    else:
        print(
            "  processes: simulator | app (uvicorn, web + embedded dispatcher) | this client; no Redis; local storage"
        )
    print(f"  server: worker_concurrency={settings.worker_concurrency} poll_interval_s={settings.poll_interval_s} "
          f"lease_s={settings.lease_s} kie_confirm_results={settings.kie_confirm_results} "
          f"(each result is confirmed with recordInfo before download)")  # fmt: skip
    if watch == "stream":
        print("  client: follows each job's live stream (/p/{public_id}/events) and GETs /v1/jobs/{id} when it says "
              f"completed; simulator callback_delay_s={callback_delay}")  # fmt: skip
    else:
        print(f"  client: polls GET every {POLL_S * ms:.0f} ms (If-None-Match) once the callback is recorded; "
              f"simulator callback_delay_s={callback_delay}")  # fmt: skip
    finish = phases["finishing → completed (wake, claim, recordInfo ∥ download, verify, store, settle)"]
    return {"p50": p50, "p99": p99, "baseline": base, "finish_p50": pct(finish, 50)}


async def run_many(
    runs: int,
    jobs: int,
    in_flight: int,
    pad: int,
    callback_delay: float,
    watch: str,
    save: Path | None,
    split: bool = False,
) -> None:
    """`runs` measurements, then the medians of their figures (what docs/benchmarks.md records)."""
    results = []
    for index in range(runs):
        if runs > 1:
            print(f"--- run {index + 1} of {runs}")
        path = save.with_name(f"{save.stem}-{index + 1}{save.suffix}") if save is not None and runs > 1 else save
        results.append(await run(jobs, in_flight, pad, callback_delay, watch, path, split))
    if runs == 1:
        return
    ms = 1000.0
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    target = 2 * median["baseline"] + 0.030
    print(f"=== medians of {runs} runs ({watch}): callback → visible p50 {median['p50'] * ms:.1f} ms, "
          f"p99 {median['p99'] * ms:.1f} ms; finishing → completed p50 {median['finish_p50'] * ms:.1f} ms; "
          f"baseline {median['baseline'] * ms:.1f} ms")  # fmt: skip
    verdict = "met" if median["p50"] <= target else "NOT met"
    print(
        f"    target p50 ≤ 2 x baseline + 30 ms = {target * ms:.1f} ms: {verdict}; per run p50: "
        + ", ".join(f"{r['p50'] * ms:.1f}" for r in results)
        + " ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--pad", type=int, default=2_000_000, help="result size in bytes (simulator padding)")
    parser.add_argument("--callback-delay", type=float, default=0.3)
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole measurement; print the medians")
    parser.add_argument("--watch", choices=("stream", "poll"), default="stream",
                        help="how the client learns when to GET (see the module docstring)")  # fmt: skip
    parser.add_argument("--split", action="store_true", help="web and worker as separate processes, Redis between")
    parser.add_argument("--save", type=Path, help="write each job's timestamps to this JSON file (-N per run)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the app subprocess
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    asyncio.run(run_many(args.runs, args.jobs, args.in_flight, args.pad, args.callback_delay, args.watch, args.save,
                         args.split))  # fmt: skip


if __name__ == "__main__":
    main()
