"""A small HTTP/1.1 keep-alive load client, run as its own process (`python -m bench.load SPEC.json`).

The spec names the target, the connection count, the bounds (at most `requests` requests and `duration_s`
seconds, whichever comes first) and the requests: a list of {method, path, headers, body_file | body},
cycled in order across connections. Raw asyncio streams keep the client's own cost low (the machine has two
cores; an httpx client would eat a large share of them). Prints one JSON object: count, rps, latency
percentiles in ms, status counts.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any


def _build(request: dict[str, Any], host: str) -> bytes:
    body = Path(request["body_file"]).read_bytes() if "body_file" in request else request.get("body", "").encode()
    headers = {"Host": host, "Content-Length": str(len(body)), **request.get("headers", {})}
    head = f"{request.get('method', 'POST')} {request['path']} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    payloads = [_build(r, f"{host}:{port}") for r in spec["requests"]]
    limit, duration = int(spec["requests_max"]), float(spec["duration_s"])
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    issued = 0
    started = time.perf_counter()
    stop_at = started + duration

    async def connection() -> None:
        nonlocal issued
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while issued < limit and time.perf_counter() < stop_at:
                payload = payloads[issued % len(payloads)]
                issued += 1
                t0 = time.perf_counter()
                try:
                    writer.write(payload)
                    await writer.drain()
                    status = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(int(spec["connections"]))))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2) if latencies else 0.0

    return {
        "requests": len(latencies),
        "elapsed_s": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
