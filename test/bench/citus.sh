#!/usr/bin/env bash
# Router point lookups through a Citus coordinator: tenant_isolation (the
# application writes no tenant filter; the extension adds it, and the
# context travels to the worker) against a hand-written tenant predicate on
# an unprotected copy of the same table, on the same three-node cluster
# (coordinator + two workers on loopback).  pgbench, variants interleaved.
#
#   BENCH_SECONDS=N   duration of one cell (10)
#   BENCH_REPS=N      repetitions (3)
#   BENCH_CLIENTS=N   pgbench -c/-j (2)
#   BENCH_PORT=N      first of three ports (56432)
#   PG_CONFIG=...     installation with citus.so and tenant_isolation (pg_config)
#
# Prints a markdown table: median tps per variant and mode, and the ratio
# ext / literal.  Exit 1 when a cell fails or the variants return different
# rows.  Run as root (clusters run as postgres) or as the clusters' owner.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SECS=${BENCH_SECONDS:-10}
REPS=${BENCH_REPS:-3}
CLIENTS=${BENCH_CLIENTS:-2}
PORT=${BENCH_PORT:-56432}
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config)}
PGBIN=$("$PG_CONFIG" --bindir)
LIBDIR=$("$PG_CONFIG" --pkglibdir)
NTENANTS=100
NROWS=1000			# per tenant
RUN_USER=$([ "$(id -u)" = 0 ] && echo postgres || id -un)

log() { echo "citus-bench: $*" >&2; }
[ -f "$LIBDIR/citus.so" ] || { log "no citus.so in $LIBDIR (test/scripts/citus.sh)"; exit 2; }

TMPD=$(mktemp -d /tmp/ti_citus_bench.XXXXXX)
chown "$RUN_USER" "$TMPD" 2>/dev/null || true
as_user() { if [ "$(id -u)" = 0 ]; then su "$RUN_USER" -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
cleanup() {
	for i in 0 1 2; do
		[ -f "$TMPD/n$i/postmaster.pid" ] && as_user "'$PGBIN/pg_ctl' -D '$TMPD/n$i' -m fast stop" >/dev/null 2>&1 || true
	done
	rm -rf "$TMPD"
}
trap cleanup EXIT

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMPD/cluster.key"
chown "$RUN_USER" "$TMPD/cluster.key" 2>/dev/null || true
chmod 600 "$TMPD/cluster.key"
for i in 0 1 2; do
	as_user "'$PGBIN/initdb' -D '$TMPD/n$i' -A trust -U postgres >/dev/null"
	cat >>"$TMPD/n$i/postgresql.conf" <<EOF
port = $((PORT + i))
listen_addresses = '127.0.0.1'
unix_socket_directories = '$TMPD'
shared_preload_libraries = 'citus,tenant_isolation'
tenant_isolation.cluster_key_file = '$TMPD/cluster.key'
citus.shard_count = 8
shared_buffers = 128MB
fsync = off
synchronous_commit = off
max_connections = 100
EOF
	as_user "'$PGBIN/pg_ctl' -D '$TMPD/n$i' -l '$TMPD/n$i.log' -w start >/dev/null"
done
psql_n() { local n=$1; shift; "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$TMPD" -p $((PORT + n)) -U postgres -d postgres "$@"; }
for i in 0 1 2; do psql_n $i -c "CREATE EXTENSION citus; CREATE EXTENSION tenant_isolation;"; done
psql_n 0 -c "SELECT citus_set_coordinator_host('127.0.0.1', $PORT)" \
	-c "SELECT citus_add_node('127.0.0.1', $((PORT + 1)))" \
	-c "SELECT citus_add_node('127.0.0.1', $((PORT + 2)))" >/dev/null

SECRET=citus-bench-secret-0123456789abcdef
printf %s "$SECRET" >"$TMPD/hs.key"
psql_n 0 >/dev/null <<EOF
CREATE ROLE bench LOGIN;
CREATE TABLE docs (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
CREATE TABLE docs_plain (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('docs', 'tenant_id');
SELECT create_distributed_table('docs_plain', 'tenant_id', colocate_with => 'docs');
INSERT INTO docs SELECT md5('t' || t)::uuid, i, 'row ' || i || ' of ' || t
  FROM generate_series(1, $NTENANTS) t, generate_series(1, $NROWS) i;
INSERT INTO docs_plain SELECT * FROM docs;
SELECT tenant_isolation.create_tenant('t' || t, id => md5('t' || t)::uuid) FROM generate_series(1, $NTENANTS) t;
SELECT tenant_isolation.protect_table('docs');
SELECT tenant_isolation.add_jwt_key('k1', 'HS256', '$SECRET');
GRANT SELECT ON docs, docs_plain TO bench;
VACUUM ANALYZE docs, docs_plain;
EOF

TENANT=$(psql_n 0 -Atc "SELECT md5('t50')::uuid")
TOKEN=$(sh "$TOP/test/scripts/mint_jwt.sh" -k k1 HS256 "$TMPD/hs.key" \
	"{\"sub\":\"bench\",\"tenant_id\":\"$TENANT\",\"exp\":NOW+86400}")
cat >"$TMPD/literal.sql" <<EOF
\set id random(1, $NROWS)
SELECT id, body FROM docs_plain WHERE tenant_id = '$TENANT' AND id = :id;
EOF
cat >"$TMPD/ext.sql" <<EOF
\set id random(1, $NROWS)
\if :ctx = 0
SELECT tenant_isolation.login('$TOKEN');
\set ctx 1
\endif
SELECT id, body FROM docs WHERE id = :id;
EOF
# The same lookups, five to a transaction (what an application that logs in
# per transaction, or does several reads per request, sends).
{
	echo "\\set id random(1, $NROWS)"
	echo "BEGIN;"
	for k in 1 2 3 4 5; do
		echo "SELECT id, body FROM docs_plain WHERE tenant_id = '$TENANT' AND id = (:id + $k) % $NROWS + 1;"
	done
	echo "END;"
} >"$TMPD/literal_txn5.sql"
{
	echo "\\set id random(1, $NROWS)"
	echo "\\if :ctx = 0"
	echo "SELECT tenant_isolation.login('$TOKEN');"
	echo "\\set ctx 1"
	echo "\\endif"
	echo "BEGIN;"
	for k in 1 2 3 4 5; do
		echo "SELECT id, body FROM docs WHERE id = (:id + $k) % $NROWS + 1;"
	done
	echo "END;"
} >"$TMPD/ext_txn5.sql"
chown "$RUN_USER" "$TMPD"/*.sql 2>/dev/null || true

# Same rows?  (And a router plan: one task.)
a=$(psql_n 0 -U bench -Atc "SELECT md5(string_agg(id || body, ',' ORDER BY id)) FROM docs_plain WHERE tenant_id = '$TENANT' AND id % 97 = 1")
b=$(psql_n 0 -U bench -At -c "SELECT tenant_isolation.login('$TOKEN')" \
	-c "SELECT md5(string_agg(id || body, ',' ORDER BY id)) FROM docs WHERE id % 97 = 1" | tail -1)
tasks=$(psql_n 0 -U bench -At -c "SELECT tenant_isolation.login('$TOKEN')" \
	-c "EXPLAIN (COSTS OFF) SELECT id, body FROM docs WHERE id = 5" | sed -n 's/.*Task Count: //p')
[ "$a" = "$b" ] || { log "the variants return different rows"; exit 1; }
log "same rows in both variants; the extension's point lookup is a router query with $tasks task(s)"

declare -A TPS
failed=0
for ((rep = 1; rep <= REPS; rep++)); do
	for mode in simple prepared; do
		order="literal ext literal_txn5 ext_txn5"
		[ $((rep % 2)) = 0 ] && order="ext_txn5 literal_txn5 ext literal"
		for v in $order; do
			lg="$TMPD/r$rep.$mode.$v.log"
			if ! "$PGBIN/pgbench" -n -h "$TMPD" -p "$PORT" -U bench -c "$CLIENTS" -j "$CLIENTS" \
				-T "$SECS" -M "$mode" -D ctx=0 -f "$TMPD/$v.sql" postgres >"$lg" 2>&1; then
				failed=1; log "FAILED $rep $mode $v"; tail -3 "$lg" >&2
			fi
			t=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$lg" | head -1)
			TPS[$mode.$v]="${TPS[$mode.$v]:-} ${t:-0}"
			log "rep $rep $mode $v: ${t:-0} tps"
		done
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "| workload | mode | hand-written predicate (tps) | tenant_isolation (tps) | ratio |"
echo "|---|---|---|---|---|"
for w in "point:" "5 lookups per transaction:_txn5"; do
	for mode in simple prepared; do
		l=$(echo "${TPS[$mode.literal${w#*:}]}" | median)
		e=$(echo "${TPS[$mode.ext${w#*:}]}" | median)
		r=$(awk -v e="$e" -v l="$l" 'BEGIN { printf "%.3f", (l > 0) ? e / l : 0 }')
		echo "| ${w%%:*} | $mode | $l | $e | $r |"
	done
done
echo
echo "median of $REPS interleaved ${SECS}s runs, $CLIENTS clients; per-run tps: "
for k in "${!TPS[@]}"; do echo "- $k:${TPS[$k]}"; done
exit $failed
