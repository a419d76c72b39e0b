"""Submission ingest: POST /v1/jobs with a real JPEG (multipart), against the floor, with wrk.

The floor (`bench/baseline.py`) does only the necessary work: parse the multipart body, write the photo to a file,
one INSERT of the job row. The service authenticates the kiosk token, rate-limits it, streams and hashes the
upload, checks its type and header dimensions, stores it, reserves the credit and inserts the job (the decode,
orientation, stripping and downscale happen later, in the worker's submit step, which this benchmark does not run:
`photobot serve --no-worker`). Runs alternate floor, service… and each figure is the median of `--repeat` runs.

Both servers write their photos to the same filesystem (the work directory, `common.workdir`), into the page cache,
and neither waits for the disk. Before every measured run the benchmark writes the dirty page cache back (sync(2),
`common.settle_writeback`, outside the timed window), so each run starts with none. Without that, the p99 was
whichever server the kernel's writeback happened to hit: at ~150-200 MB/s of photos the dirty data reaches the
background threshold (`vm.dirty_background_ratio`, 10 % of available memory: 2.3 GB on a 24 GB machine) every
15-20 s, and the flusher then writes 1.5-2 GB in one or two seconds; meanwhile every COMMIT's WAL fdatasync waits
behind it (PostgreSQL backends in D state in `wbt_wait`, `folio_wait_writeback`, `__sync_dirty_buffer`), so
every request of the server running at that moment waits 0.3-0.9 s. Half or more of the 8 s runs took a burst
(p99 290-890 ms), floor or service by the phase of a 15-20 s cycle, not by anything either server did (2026-12-04,
issue #13). A 16-connection run writes 1-1.6 GB, below that threshold, so with each run starting clean no burst
lands inside one and both servers do identical storage work under identical conditions. Each run reports
`disk_written_mb` (what the block layer was given to write during it, /proc/vmstat `pgpgout`): PostgreSQL's WAL and
metadata, a few MB/s, when the run was clean; a writeback burst inside the run, or a server that writes its uploads
through to disk itself (as the service did, by truncating its temp file: see `api/uploads._open_temp`), shows as
hundreds of MB there. On a machine whose threshold is below one run's writes the bursts return, visibly.

    python -m bench.submit_ingest [--repeat 3] [--duration 8] [--profile]

`--profile` records the service with py-spy during its last 16-connection run (`bench/profile.py`).

Two rows: a 1.1 MB JPEG at 16 connections, and a 4032x3024 phone photo at 1 connection (latency of one kiosk).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter

from bench import common, profile, wrk

BOUNDARY = "photobot-bench-boundary"


def noise_jpeg(target_bytes: int) -> bytes:
    """A real JPEG of about `target_bytes`: random noise does not compress, so size tracks pixel count."""
    side = 300
    while True:
        img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        if buf.tell() >= target_bytes:
            return buf.getvalue()
        side = int(side * 1.08) + 1


def phone_jpeg() -> bytes:
    """A 4032x3024 JPEG shaped like a phone photo (smooth areas and detail, ~2-4 MB at quality 90, EXIF)."""
    small = Image.frombytes("RGB", (504, 378), os.urandom(504 * 378 * 3)).filter(ImageFilter.GaussianBlur(3))
    img = small.resize((4032, 3024), Image.Resampling.BICUBIC)
    grain = Image.frombytes("L", (4032, 3024), os.urandom(4032 * 3024)).point(lambda v: 120 + v // 16)
    img = Image.composite(img, Image.merge("RGB", (grain, grain, grain)), Image.new("L", img.size, 235))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "BenchPhone"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


def multipart(image: bytes, style: str = "pb_a") -> bytes:
    return b"".join([
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="style"\r\n\r\n{style}\r\n'.encode(),
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="guest.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode(),
        image,
        f"\r\n--{BOUNDARY}--\r\n".encode(),
    ])  # fmt: skip


def _measured(server: common.Server, spec: Path, *, connections: int, duration_s: float) -> dict[str, Any]:
    """One wrk run, started with no dirty page cache (see the module's docstring), with the MB written to disk
    during it."""
    common.settle_writeback()
    before = common.disk_written_bytes()
    result = wrk.run(server.url, spec, connections=connections, duration_s=duration_s, server_cpu_s=server.cpu_seconds)
    return {**result, "disk_written_mb": round((common.disk_written_bytes() - before) / 1e6, 1)}


def _fig(name: str, value: float, baseline: float, unit: str) -> dict[str, Any]:
    return {"name": name, "value": value, "baseline": baseline, "unit": unit, "ratio": common.ratio(value, baseline)}


async def run(repeat: int = 3, duration_s: float = 8.0, with_profile: bool = False) -> dict[str, Any]:
    body_1mb = multipart(noise_jpeg(1_100_000))
    body_phone = multipart(phone_jpeg())
    ctype = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "service": [], "floor_phone": [], "service_phone": []}
    with common.workdir("submit") as tmp:
        async with common.throwaway_database() as url:
            await common.flush_redis()
            seeded = await common.seed(url, credits=10_000_000)
            port, floor_port = common.free_port(), common.free_port()
            provider = {"PHOTOBOT_PROVIDER": "kie", "PHOTOBOT_KIE_API_KEYS": "bench-key",
                        "PHOTOBOT_KIE_BASE_URL": "http://127.0.0.1:9"}  # fmt: skip
            env = common.service_env(url, port, tmp / "var", **provider)
            service = common.photobot_serve(env, port, tmp, workers=1)
            floor = common.baseline_server(floor_port, tmp, url, workers=1, pool=16)
            auth = {"Authorization": f"Bearer {seeded.kiosk}", **ctype}
            floor_path = f"/v1/jobs?event={seeded.event_id}"
            bodies = {"": body_1mb, "_phone": body_phone}
            specs = {}
            for suffix, body in bodies.items():
                specs["service" + suffix] = wrk.write_spec(
                    tmp / f"s{suffix}.spec", [wrk.Request("/v1/jobs", body, auth)]
                )
                specs["floor" + suffix] = wrk.write_spec(
                    tmp / f"f{suffix}.spec", [wrk.Request(floor_path, body, ctype)]
                )
            try:
                service.wait_ready()
                floor.wait_ready()
                for side, server in (("floor", floor), ("service", service)):  # warm-up
                    wrk.run(server.url, specs[side], connections=4, duration_s=2, server_cpu_s=server.cpu_seconds)
                spy = None
                for i in range(repeat):
                    for side, server in (("floor", floor), ("service", service)):
                        if with_profile and side == "service" and i == repeat - 1:
                            spy = profile.start(service.proc.pid, duration_s, tmp / "profile.txt")
                        runs[side].append(_measured(server, specs[side], connections=16, duration_s=duration_s))
                        runs[f"{side}_phone"].append(
                            _measured(server, specs[f"{side}_phone"], connections=1, duration_s=duration_s / 2)
                        )
                prof = None
                if spy is not None:
                    spy.wait(60)
                    prof = profile.summarise(tmp / "profile.txt")
            finally:
                service.stop()
                floor.stop()
            await common.flush_redis()
    med = {k: wrk.medians(v) for k, v in runs.items()}
    s, f, sp, fp = med["service"], med["floor"], med["service_phone"], med["floor_phone"]
    return {
        "name": "submit_ingest",
        "command": f"python -m bench.submit_ingest --repeat {repeat} --duration {duration_s:g}",
        "settings": {
            "server": "photobot serve --no-worker (uvicorn)",
            "workers": 1,
            "client": "wrk",
            "stores": "PostgreSQL + Redis + local files",
            "median_of": repeat,
            "floor": "Starlette + asyncpg: multipart, file write, one INSERT (bench/baseline.py)",
            "bodies": {"1.1 MB noise JPEG": len(body_1mb), "4032x3024 phone JPEG": len(body_phone)},
        },
        "figures": [
            _fig("submission 1.1 MB, 16 conns: req/s", s["rps"], f["rps"], "req/s"),
            _fig("submission 1.1 MB, 16 conns: p50", s["p50_ms"], f["p50_ms"], "ms"),
            _fig("submission 1.1 MB, 16 conns: p99", s["p99_ms"], f["p99_ms"], "ms"),
            _fig(
                "submission 1.1 MB, 16 conns: server CPU/req",
                s["server_cpu_ms_per_req"],
                f["server_cpu_ms_per_req"],
                "ms",
            ),
            _fig("submission 4032x3024, 1 conn: p50", sp["p50_ms"], fp["p50_ms"], "ms"),
            _fig("submission 4032x3024, 1 conn: p99", sp["p99_ms"], fp["p99_ms"], "ms"),
        ],
        "details": {
            **med,
            "errors": sum(r["non_2xx"] + r["socket_errors"] for v in runs.values() for r in v),
            "profile": prof,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--profile", action="store_true", help="py-spy the service during its last 16-conn. run")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.repeat, args.duration, args.profile)), indent=2))


if __name__ == "__main__":
    Path(common.RESULTS).mkdir(exist_ok=True)
    main()
