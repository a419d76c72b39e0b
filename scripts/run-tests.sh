#!/usr/bin/env bash
# Run the whole pytest suite. pytest's exit 5 ("no tests ran") is a failure here, never a pass.
set -u
mkdir -p test-output
# Three processes (pytest-xdist; one file per worker at a time) on the project's 2-core machine: most tests wait on
# sockets, databases, subprocesses and timers, so a third worker fills the cores (2026-12-04, same tree, quiet
# machine: 2 workers 8 m 43 s, 3 workers 7 m 43 s, both green). PHOTOBOT_TEST_WORKERS=0 runs everything in one
# process.
workers="${PHOTOBOT_TEST_WORKERS:-3}"
parallel=()
if [ "$workers" != "0" ]; then parallel=(-n "$workers" --dist loadfile); fi
.venv/bin/pytest -q -p no:cacheprovider "${parallel[@]}" --junitxml=test-output/junit.xml "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
