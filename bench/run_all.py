"""Run every benchmark in sequence, print one table, write bench/results/latest.json (git-ignored).

    python -m bench.run_all [--quick] [--profile] [--only NAME ...]

1. callback ingest (bench/callback_ingest.py: 32 connections, 1 connection, 2 workers), 2. submission ingest
(bench/submit_ingest.py), 3. callback → completed (bench/callback_to_completed.py, run as its own process; then
again with `--split`: web and worker as separate processes with Redis between them, as the Procfile runs them), 4.
memory, 5. provider rate, 6. idle cost. Callback and submission ingest drive load with wrk (bench/wrk.py) and serve
the floors of bench/baseline.py in the same run; each of their figures is the median of 3 runs. Each figure comes
with its baseline measured in the same run on the same machine and the ratio; the server settings are printed with
them. `--quick` shrinks the counts (a smoke run, not for the record). A benchmark that fails is reported as such and
the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import callback_ingest, common, idle_cost, memory, provider_rate, submit_ingest

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def external(module: str, args: list[str], timeout_s: float) -> dict[str, Any]:
    """Another helper's benchmark script, run as its own process; its printed report is kept verbatim."""
    if not (HERE / f"{module}.py").exists():
        return {"name": module, "skipped": f"bench/{module}.py does not exist (yet)"}
    command = [sys.executable, "-m", f"bench.{module}", *args]
    started = time.monotonic()
    done = subprocess.run(command, cwd=HERE.parent, capture_output=True, text=True, timeout=timeout_s)
    return {
        "name": module,
        "command": "python -m bench." + " ".join([module, *args]),
        "returncode": done.returncode,
        "elapsed_s": round(time.monotonic() - started, 1),
        "report": done.stdout[-6000:],
        "stderr_tail": done.stderr[-1500:] if done.returncode else "",
    }


def plan(quick: bool, with_profile: bool) -> list[tuple[str, Any]]:
    q = quick
    repeat, seconds = (1, 4.0) if q else (3, 8.0)
    return [
        ("callback_ingest", lambda: callback_ingest.run(1, repeat, seconds, 32, with_profile)),
        ("callback_ingest_1conn", lambda: callback_ingest.run(1, repeat, seconds, 1)),
        ("callback_ingest_2workers", lambda: callback_ingest.run(2, repeat, seconds, 32)),
        ("submit_ingest", lambda: submit_ingest.run(repeat, seconds)),
        (
            "callback_to_completed",
            lambda: external(
                "callback_to_completed", ["--jobs", "20" if q else "200", "--runs", "1" if q else "3"], 1800
            ),
        ),
        (
            "callback_to_completed_split",
            lambda: {
                **external(
                    "callback_to_completed",
                    ["--jobs", "20" if q else "200", "--runs", "1" if q else "3", "--split"],
                    1800,
                ),
                "name": "callback_to_completed_split",  # the Procfile's topology: web, worker, Redis between them
            },
        ),
        ("memory", lambda: memory.run(20 if q else 200, 20_000_000)),
        ("provider_rate", lambda: provider_rate.run(100 if q else 500, 20, 2.0)),
        ("idle_cost", lambda: idle_cost.run(2000 if q else 10_000, 10 if q else 20)),
    ]


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'benchmark / figure':<46}{'value':>12}{'baseline':>12}{'ratio':>9}  unit")
    print("-" * 92)
    for result in results:
        if "figures" not in result:
            state = result.get("skipped") or ("see report below" if result.get("returncode") == 0 else "FAILED")
            print(f"{result['name']:<46}{'':>33}  {state}")
            continue
        for fig in result["figures"]:
            ratio = "" if fig["ratio"] is None else f"{fig['ratio']:.3g}x"
            print(f"{fig['name'][:45]:<46}{fig['value']!s:>12}{fig['baseline']!s:>12}{ratio:>9}  {fig['unit']}")
        print(f"    settings: {json.dumps(result['settings'])}")
        print(f"    command:  {result['command']}")
    for result in results:
        prof = result.get("details", {}).get("profile") if "details" in result else None
        if prof and "samples" in prof:
            print(f"\n--- profile of the service during {result['name']} ({prof['samples']} samples, py-spy) ---")
            print(f"  threads: {prof.get('threads')}")
            for frame, share in prof["inclusive_top"][:25]:
                print(f"  {share:5.1f} %  {frame}")
        elif prof:
            print(f"\n--- profile: {prof.get('skipped')}")
    for result in results:
        if result.get("report"):
            print(f"\n--- {result['name']} ({result['command']}) ---\n{result['report'].rstrip()}")
        if result.get("error"):
            print(f"\n--- {result['name']} FAILED ---\n{result['error']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run, not for the record")
    parser.add_argument("--profile", action="store_true", help="py-spy the service during callback ingest")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (names as in the table)")
    args = parser.parse_args()
    started = datetime.now(UTC)
    results: list[dict[str, Any]] = []
    for name, job in plan(args.quick, args.profile):
        if args.only and name not in args.only:
            continue
        print(f"[{datetime.now(UTC):%H:%M:%S}] {name} ...", flush=True)
        try:
            outcome = job()
            result = asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
        except Exception as exc:
            result = {"name": name, "error": "".join(traceback.format_exception(exc))[-3000:]}
        results.append(result)
    document = {
        "date": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": common.machine(),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2, default=str))
    print(f"machine: {json.dumps(document['machine'])}")
    print_table(results)
    print(f"\nwritten: {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
