#!/bin/sh
# First start: a cluster with a `corral` role owning a `corral` database. Then PostgreSQL on
# 127.0.0.1:$PGPORT only. Trust authentication is for this loopback-only stack: point real
# deployments at a managed PostgreSQL (README, Running several managers).
set -eu
port=${PGPORT:-5432}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U postgres --auth=trust >/dev/null
  printf 'CREATE ROLE corral LOGIN;\nCREATE DATABASE corral OWNER corral;\n' \
    | postgres --single -D "$PGDATA" postgres >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -p "$port" -k /tmp
