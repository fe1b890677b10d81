#!/usr/bin/env bash
# Read replicas under load: a streaming replica (pg_basebackup) of this host's PostgreSQL cluster
# on 127.0.0.1:5433, the steady mix of bench/load.py against the app configured with it
# (DATABASE_REPLICA_URLS) while an import writes on the primary, and pg_stat_database on both
# servers before and after, showing where the searches and the writes ran.
#
#   flock /work/bench.lock bash bench/replica.sh            # writes bench/results/replica-pg-1m.md
#
# What it touches on the main cluster: one pg_hba.conf line allowing replication connections from
# 127.0.0.1 (Debian's file has none; pg_basebackup and the standby need it), added with a marker
# comment, the configuration reloaded, and the line removed again at the end. Nothing else: the
# main cluster's postgresql.conf already has wal_level=replica and max_wal_senders=10 (the
# defaults). The replica is a second cluster in $REPLICA_DIR, run with pg_ctl as the postgres
# user, stopped and deleted at the end (KEEP_REPLICA=1 keeps it).
#
# The benchmark database is copied first (SOURCE_DB -> DB, once) so the import's writes and the
# migrations this branch needs never touch the shared pl_bench_1m.
set -euo pipefail
cd "$(dirname "$0")/.."

SOURCE_DB=${SOURCE_DB:-pl_bench_1m}
DB=${DB:-pl_bench_1m_prod}
PORT=${REPLICA_PORT:-5433}
REPLICA_DIR=${REPLICA_DIR:-/work/bench-out/replica}
IMPORT_CSV=${IMPORT_CSV:-/work/bench-out/import-100000.csv}
IMPORT_ROWS=${IMPORT_ROWS:-20000}
SECONDS_LOAD=${SECONDS_LOAD:-30}
OUT=${OUT:-bench/results/replica-pg-1m.md}
PY=.venv/bin/python
VERSION=$(ls /etc/postgresql | sort | head -n1)
PGBIN=/usr/lib/postgresql/$VERSION/bin
HBA=/etc/postgresql/$VERSION/main/pg_hba.conf
MARK="# bench/replica.sh: replication from 127.0.0.1 (removed when it ends)"
PRIMARY="postgres://postgres@127.0.0.1:5432/$DB"
REPLICA="postgres://postgres@127.0.0.1:$PORT/$DB"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
psql_on() { local port=$1; shift; psql -h 127.0.0.1 -p "$port" -U postgres -X -At "$@"; }

cleanup() {
  if [ -f "$REPLICA_DIR/postmaster.pid" ]; then
    log "stopping the replica"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w stop >/dev/null || true
  fi
  if [ "${KEEP_REPLICA:-0}" != 1 ]; then rm -rf "$REPLICA_DIR"; fi
  if grep -qF "$MARK" "$HBA"; then
    log "removing the replication line from $HBA"
    sed -i "\|$MARK|,+1d" "$HBA"
    psql_on 5432 -c "SELECT pg_reload_conf()" >/dev/null
  fi
}
trap cleanup EXIT

# 1. The database copy, migrated to this branch (the replica receives the migrations by streaming).
if ! psql_on 5432 -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  log "copying $SOURCE_DB to $DB (createdb -T)"
  createdb -h 127.0.0.1 -U postgres -T "$SOURCE_DB" "$DB"
fi
log "migrating $DB"
DATABASE_URL=$PRIMARY DEBUG=true $PY manage.py migrate --noinput -v0

# 2. Replication allowed from 127.0.0.1 (the only change to the main cluster).
if ! grep -qF "$MARK" "$HBA"; then
  log "allowing replication from 127.0.0.1 in $HBA"
  printf '%s\nhost replication postgres 127.0.0.1/32 trust\n' "$MARK" >>"$HBA"
  psql_on 5432 -c "SELECT pg_reload_conf()" >/dev/null
fi

# 3. The replica: a base backup streaming WAL, then a standby on its own port.
rm -rf "$REPLICA_DIR"
install -d -o postgres -g postgres -m 0700 "$REPLICA_DIR"
log "pg_basebackup of the cluster into $REPLICA_DIR"
start=$(date +%s)
runuser -u postgres -- "$PGBIN/pg_basebackup" -h 127.0.0.1 -p 5432 -U postgres \
  -D "$REPLICA_DIR" -R -X stream -c fast
log "base backup: $(( $(date +%s) - start )) s, $(du -sh "$REPLICA_DIR" | cut -f1)"
# Debian keeps the configuration in /etc, so the copy has none: a small one of its own. A hot
# standby needs at least the primary's connection and worker limits.
cat >"$REPLICA_DIR/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '/tmp'
hot_standby = on
shared_buffers = $(psql_on 5432 -c "SHOW shared_buffers")
max_connections = $(psql_on 5432 -c "SHOW max_connections")
max_worker_processes = $(psql_on 5432 -c "SHOW max_worker_processes")
max_wal_senders = $(psql_on 5432 -c "SHOW max_wal_senders")
max_locks_per_transaction = $(psql_on 5432 -c "SHOW max_locks_per_transaction")
max_prepared_transactions = $(psql_on 5432 -c "SHOW max_prepared_transactions")
jit = off
max_parallel_workers_per_gather = 0
EOF
printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$REPLICA_DIR/pg_hba.conf"
: >"$REPLICA_DIR/pg_ident.conf"
chown postgres:postgres "$REPLICA_DIR"/*.conf
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$REPLICA_DIR" -l "$REPLICA_DIR/server.log" -w start >/dev/null
[ "$(psql_on "$PORT" -d "$DB" -c 'SELECT pg_is_in_recovery()')" = t ] || {
  echo "the replica is not in recovery"; exit 1; }
log "replica up on 127.0.0.1:$PORT, streaming: $(psql_on 5432 -c "SELECT state FROM pg_stat_replication")"

stats() {
  psql_on "$1" -d "$DB" -F ' ' -c "SELECT xact_commit, tup_returned, tup_fetched, tup_inserted,
    tup_updated, tup_deleted FROM pg_stat_database WHERE datname = '$DB'"
}
# pg_stat_database counts a transaction's rows when it ends; start from a clean slate on both.
psql_on 5432 -d "$DB" -c "SELECT pg_stat_reset()" >/dev/null
psql_on "$PORT" -d "$DB" -c "SELECT pg_stat_reset()" >/dev/null
sleep 1
p_before=($(stats 5432)); r_before=($(stats "$PORT"))

# 4. The import writes on the primary while the load reads from the replica.
csv=$(mktemp --suffix=.csv)
# New listings (the benchmark's own ids would only be matched as unchanged): a run-specific prefix.
tag="replica-$(date +%s)-"
head -n $((IMPORT_ROWS + 1)) "$IMPORT_CSV" | sed "2,\$ s/^/$tag/" >"$csv"
import_log="$(dirname "$REPLICA_DIR")/replica-import.log"
log "import of $IMPORT_ROWS rows on the primary, in the background"
# (GEOCODER=zip: clinics without coordinates go to their ZIP centroid, nothing leaves the machine.)
DATABASE_URL=$PRIMARY DEBUG=true GEOCODER=zip \
  $PY manage.py import_practitioners "$csv" --skip-bad-rows >"$import_log" 2>/dev/null &
import_pid=$!
sleep 2
log "steady mix against the app with DATABASE_REPLICA_URLS=$REPLICA"
load_md=$(mktemp --suffix=.md)
$PY bench/load.py --database-url "$PRIMARY" --replica-urls "$REPLICA" --scenario mix \
  --seconds "$SECONDS_LOAD" --out "$load_md" >/dev/null
import_state="finished during the load"
if kill -0 "$import_pid" 2>/dev/null; then import_state="still running when the load ended"; fi
wait "$import_pid" || true
rm -f "$csv"
sleep 1
p_after=($(stats 5432)); r_after=($(stats "$PORT"))
# How far behind the replica is (bytes of WAL not yet replayed), and the import's listings as
# each server sees them.
primary_lsn=$(psql_on 5432 -c "SELECT pg_current_wal_lsn()")
sleep 1
behind=$(psql_on "$PORT" -c "SELECT pg_wal_lsn_diff('$primary_lsn', pg_last_wal_replay_lsn())")
count_new="SELECT count(*) FROM practitioners_practitioner WHERE external_id LIKE '$tag%'"
new_primary=$(psql_on 5432 -d "$DB" -c "$count_new")
new_replica=$(psql_on "$PORT" -d "$DB" -c "$count_new")

names=(xact_commit tup_returned tup_fetched tup_inserted tup_updated tup_deleted)
{
  echo "# Read replica under load: searches on the replica, writes on the primary"
  echo
  echo "\`flock /work/bench.lock bash bench/replica.sh\`, $(date '+%Y-%m-%d %H:%M'). Primary 127.0.0.1:5432,"
  echo "streaming replica 127.0.0.1:$PORT (pg_basebackup -R -X stream), database \`$DB\` (a copy of"
  echo "\`$SOURCE_DB\`: 1,000,000 listings). The app ran with \`DATABASE_REPLICA_URLS=$REPLICA\` while"
  echo "\`manage.py import_practitioners\` wrote $IMPORT_ROWS CSV rows on the primary ($import_state)."
  echo "The import said: $(tail -n1 "$import_log")"
  echo "Its new listings: $new_primary on the primary, $new_replica on the replica; the replica was"
  echo "$behind bytes of WAL behind the primary's position a second after the load ended."
  echo
  echo "## pg_stat_database for \`$DB\`, change during the run"
  echo
  echo "| counter | primary | replica |"
  echo "|---|---:|---:|"
  for i in "${!names[@]}"; do
    printf '| %s | %s | %s |\n' "${names[$i]}" \
      "$(( p_after[i] - p_before[i] ))" "$(( r_after[i] - r_before[i] ))"
  done
  echo
  echo "The replica's rows returned and fetched are the searches; it wrote nothing of its own"
  echo "(a standby's tup_inserted stays 0: it replays the primary's WAL). The primary's inserts"
  echo "and updates are the import's; its reads are the import's look-ups, not the searches."
  echo
  sed 's/^# /## /' "$load_md"
} | tee "$OUT"
rm -f "$load_md"
