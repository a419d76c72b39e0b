#!/usr/bin/env bash
# Debian's chromium for the browser tests; installed when missing and apt is usable. The tests skip with a
# clear reason when no browser can be had, so a machine without apt still runs everything else.
set -u
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (Debian) for the browser tests" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "could not install chromium; browser tests will be skipped" >&2
else
  echo "chromium not found and apt-get unavailable; browser tests will be skipped" >&2
fi
exit 0
