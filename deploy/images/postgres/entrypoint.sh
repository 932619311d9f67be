#!/bin/sh
# The official image's start-up, reduced to what docker-compose.yml uses: on an empty PGDATA,
# initdb with POSTGRES_USER / POSTGRES_PASSWORD (password auth over TCP, trust on the local
# socket) and create POSTGRES_DB; then run `postgres [flags]` as the postgres user.
set -eu
BIN=/usr/lib/postgresql/15/bin
as_pg() { runuser -u postgres -- "$@"; }
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  PW=$(mktemp) && printf '%s\n' "${POSTGRES_PASSWORD:?}" > "$PW" && chown postgres "$PW"
  as_pg "$BIN/initdb" -D "$PGDATA" -U "${POSTGRES_USER:?}" --pwfile="$PW" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$PW"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  as_pg "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "${POSTGRES_DB:-$POSTGRES_USER}" != postgres ]; then
    as_pg "$BIN/createdb" -U "$POSTGRES_USER" "${POSTGRES_DB:-$POSTGRES_USER}"
  fi
  as_pg "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
[ "${1:-postgres}" = postgres ] && [ $# -gt 0 ] && shift
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
