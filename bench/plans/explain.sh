#!/usr/bin/env bash
# Query plans and timings of the statements issue 18 made scale, over 100,000 devices and
# 300,000 attempts, on SQLite and (given a server URL) PostgreSQL:
#
#   bench/plans/explain.sh [postgres://otafleet@127.0.0.1:PORT/postgres]
#
# (`scripts/pg start /tmp/pg-plans` prints such a URL.) Builds the schema from the migrations,
# fills it (fill-sqlite.sql, fill-pg.sql) and runs queries-sqlite.sql / queries-pg.sql.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
core="$here/../../crates/otafleet-core"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for f in "$core"/migrations/*.sql; do sqlite3 "$work/s.db" < "$f"; done
sqlite3 "$work/s.db" < "$here/fill-sqlite.sql"
echo "### SQLite $(sqlite3 --version | cut -d' ' -f1)"
sqlite3 "$work/s.db" < "$here/queries-sqlite.sql"
if [ -n "${1:-}" ]; then
  db="plans_$$"
  psql -q "$1" -c "CREATE DATABASE $db LOCALE 'C.UTF-8' TEMPLATE template0"
  url="${1%/*}/$db"
  for f in "$core"/migrations_pg/*.sql; do psql -q -v ON_ERROR_STOP=1 "$url" -f "$f" >/dev/null; done
  psql -q -v ON_ERROR_STOP=1 "$url" -f "$here/fill-pg.sql"
  echo "### PostgreSQL"
  psql -v ON_ERROR_STOP=1 "$url" -f "$here/queries-pg.sql"
  psql -q "$1" -c "DROP DATABASE $db"
fi
