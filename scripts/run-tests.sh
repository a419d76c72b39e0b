#!/usr/bin/env bash
# Run the whole pytest suite. pytest's exit 5 ("no tests ran") is a failure here, never a pass.
set -u
mkdir -p test-output
# Two processes (pytest-xdist; one file per worker at a time): the machine has 2 cores and most tests wait on
# sockets, databases and subprocesses. PHOTOBOT_TEST_WORKERS=0 runs everything in one process.
workers="${PHOTOBOT_TEST_WORKERS:-2}"
parallel=()
if [ "$workers" != "0" ]; then parallel=(-n "$workers" --dist loadfile); fi
.venv/bin/pytest -q -p no:cacheprovider "${parallel[@]}" --junitxml=test-output/junit.xml "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
