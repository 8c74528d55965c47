#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install what it needs (Debian packages as
# root, the venv), lint, start a real Redis and PostgreSQL on free loopback ports, run
# pytest on SQLite and then on PostgreSQL, and stop the servers again.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)  # the dashboard's browser test
[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${missing[*]} ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "please install: sudo apt-get install ${missing[*]}" >&2; exit 1
  fi
fi

scripts/setup-venv.sh requirements-dev.txt
echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports  # imports point down bot/'s layers, no cycles (pyproject.toml)

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
redis_port=$(free_port)
pg_port=$(free_port)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$work"
  as_pg=(runuser -u postgres --)
fi
cleanup() {
  "${as_pg[@]}" "$(pg_bin)/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
redis_pid=$!
"${as_pg[@]}" "$(pg_bin)/initdb" -D "$work/pg" -U postgres -A trust >/dev/null
"${as_pg[@]}" "$(pg_bin)/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
"$(pg_bin)/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE dakiya_test" >/dev/null

export TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
echo "== tests on SQLite"
.venv/bin/pytest --ignore=tests/chaos "$@"
echo "== tests on PostgreSQL"
TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/dakiya_test" .venv/bin/pytest --ignore=tests/chaos "$@"
# Fault tests (tests/chaos, `make chaos`): the real processes killed and restarted. Run
# once, on PostgreSQL (production's database and its SKIP LOCKED claims); the Postgres
# restart test starts a cluster of its own. Only for the whole suite (no arguments).
if [ $# -eq 0 ]; then
  echo "== fault tests on PostgreSQL"
  TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/dakiya_test" .venv/bin/pytest tests/chaos
fi
