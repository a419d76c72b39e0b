#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer: start them when installed but
# stopped; say clearly what is missing otherwise. Used by `make test`, `make bench` and `make chaos`.
set -u
missing=0

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  fi
  pg_up || { echo "PostgreSQL is not answering on 127.0.0.1:5432 and could not be started (install: apt-get install postgresql)" >&2; missing=1; }
fi

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
  fi
  redis_up || { echo "Redis is not answering on 127.0.0.1:6379 and could not be started (install: apt-get install redis-server)" >&2; missing=1; }
fi

if [ "$missing" -ne 0 ]; then exit 1; fi
# The test database must exist (trust auth, database `test`).
psql -h 127.0.0.1 -d test -tAc "select 1" >/dev/null 2>&1 || createdb -h 127.0.0.1 test 2>/dev/null || true
echo "PostgreSQL and Redis answer" >&2
