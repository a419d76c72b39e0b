#!/usr/bin/env bash
# Run the whole pytest suite. pytest's exit 5 ("no tests ran") is a failure here, never a pass.
set -u
mkdir -p test-output
.venv/bin/pytest -q -p no:cacheprovider --junitxml=test-output/junit.xml "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
