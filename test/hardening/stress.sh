#!/usr/bin/env bash
# test/hardening/stress.sh: many tenants, many concurrent clients, one shared
# table; proves that no transaction ever sees or writes a row of another
# tenant and that no committed write is lost.
#
#   STRESS_SECONDS=60 bash test/hardening/stress.sh          (make stress)
#   STRESS_TRANSACTIONS=200000 bash test/hardening/stress.sh (make stress-long)
#
# A throwaway cluster (run as $TI_USER, like make demo) holds STRESS_TENANTS
# tenants (100) and one HS256 JWT per tenant, minted once with the openssl
# CLI (test/scripts/mint_jwt.sh) and stored in the table stress_token.
# pgbench runs STRESS_CLIENTS (16) clients with -M prepared over four
# scripts (test/hardening/stress_*.sql); every transaction logs in as a
# random tenant with login_local() and
#
#   read      counts the rows it sees whose tenant_id or payload (every
#             payload starts with the tenant id it was written for) is not
#             the tenant's: a range of ids that spans all tenants, and the
#             whole table;
#   parallel  the same with a forced parallel plan (force_parallel_mode = on,
#             zero parallel costs);
#   write     inserts a row (tenant_id from the context's default) and
#             updates its newest row; counts the insert in the unprotected
#             ledger;
#   delete    deletes its oldest row and counts it in the ledger.
#
# A transaction that sees a foreign row records it in stress_violation after
# COMMIT and then fails on purpose (stress_fail() raises), so pgbench exits
# non-zero.  At the end every tenant logs in once more and counts its rows;
# each count must equal initial rows + inserts - deletes from the ledger, and
# the superuser's per-tenant count (no context) must agree.
#
# Prints: transactions, tenants, cross-tenant rows seen (must be 0), lost
# writes (must be 0).  Exit status 0 only if both are 0 and pgbench
# succeeded.  STRESS_NO_INSTALL=1 skips build and install.
#
# STRESS_DDL=1 (make stress-ddl; issue 16) adds a DDL storm for the same
# time: the tenants also write marker rows into parts, a protected
# partitioned table (stress_parts.sql, counted in parts_ledger), while
# STRESS_DDL_CLIENTS (4) superuser clients run test/hardening/ddl_*.sql:
# CREATE/DROP SCHEMA with a table, create/drop of schema-tier tenants,
# protect_table/unprotect_table of new tables, partitions of parts created,
# detached, attached and dropped, ANALYZE of the protected tables, a
# session-level login + read + DISCARD ALL (no context may survive it), and
# a sinval overflow (2400 catalog changes in one transaction, which resets
# every other backend's caches).  Their per-script transaction counts are
# printed; any DDL error, any cross-tenant row, any lost marker row in parts
# or items, or a server process "terminated by signal" fails the run.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

tenants=${STRESS_TENANTS:-100}
clients=${STRESS_CLIENTS:-16}
threads=${STRESS_THREADS:-4}
rows_per_tenant=${STRESS_ROWS:-50}
export PG_CONFIG=${PG_CONFIG:-pg_config}

if [ "${STRESS_NO_INSTALL:-0}" != 1 ]; then
	bash "$TI_TOP/test/scripts/deps.sh" || exit 1
	make -s -C "$TI_TOP" PG_CONFIG="$PG_CONFIG" || exit 1
	if [ "$(id -u)" = 0 ]; then
		make -s -C "$TI_TOP" PG_CONFIG="$PG_CONFIG" install || exit 1
	else
		sudo make -s -C "$TI_TOP" PG_CONFIG="$PG_CONFIG" install || exit 1
	fi
fi
BIN=$($PG_CONFIG --bindir)

tmp=$(mktemp -d /tmp/tenant_isolation_stress.XXXXXX)
started=0
cleanup() {
	if [ "$started" = 1 ]; then
		ti_as_user "'$BIN/pg_ctl' -D '$tmp/data' -m fast -w stop" >/dev/null 2>&1 || true
	fi
	if [ "${STRESS_KEEP:-0}" = 1 ]; then
		echo "kept: $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
cp "$TI_TOP"/test/hardening/stress_*.sql "$TI_TOP"/test/hardening/ddl_*.sql "$tmp/"
ddl=${STRESS_DDL:-0}
ddl_clients=${STRESS_DDL_CLIENTS:-4}
[ "$(id -u)" = 0 ] && chown -R "$TI_USER" "$tmp"

port=$((20000 + RANDOM % 40000))
ti_as_user "'$BIN/initdb' -D '$tmp/data' -U postgres -A trust --no-instructions" >"$tmp/initdb.log" 2>&1 ||
	{ cat "$tmp/initdb.log"; exit 1; }
cat >>"$tmp/data/postgresql.conf" <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$tmp'
shared_preload_libraries = 'tenant_isolation'
max_connections = $((clients + ddl_clients + 20))
max_worker_processes = 16
max_parallel_workers = 8
max_parallel_workers_per_gather = 2
shared_buffers = 128MB
synchronous_commit = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
started=1
ti_as_user "'$BIN/pg_ctl' -D '$tmp/data' -l '$tmp/server.log' -w start" >/dev/null ||
	{ cat "$tmp/server.log"; exit 1; }

psql_su() {
	"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$port" -U postgres -d postgres "$@"
}

# Keys and tokens: one HS256 secret, one token per tenant, valid for a day.
keys=$(sh "$TI_TOP/test/scripts/mint_jwt.sh" keygen)
secret=$(cat "$keys/hs256.key")
echo "== setup: $tenants tenants, $rows_per_tenant rows each, tokens minted with openssl"
psql_su -v secret="$secret" -v tenants="$tenants" -v rows="$rows_per_tenant" <<'SQL' || exit 1
CREATE EXTENSION tenant_isolation;
CREATE ROLE stress_app LOGIN;
SELECT tenant_isolation.add_jwt_key('stress', 'HS256', :'secret');
-- tenant n has the id 00000000-0000-4000-8000-<n, 12 digits>
CREATE TABLE stress_token (
	n		int PRIMARY KEY,
	tenant	uuid NOT NULL UNIQUE,
	token	text
);
INSERT INTO stress_token (n, tenant)
	SELECT n, ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid
	  FROM generate_series(1, :tenants) n;
SELECT count(tenant_isolation.create_tenant('stress ' || n, 'shared', tenant)) FROM stress_token;
CREATE TABLE items (
	tenant_id	uuid NOT NULL,
	id			bigserial,
	payload		text NOT NULL,
	PRIMARY KEY (tenant_id, id)
);
CREATE INDEX items_id ON items (id);
INSERT INTO items (tenant_id, payload)
	SELECT t.tenant, t.tenant || ':initial ' || i
	  FROM stress_token t, generate_series(1, :rows) i;
SELECT tenant_isolation.protect_table('items');
CREATE TABLE ledger (
	n		int PRIMARY KEY,
	initial	bigint NOT NULL,
	inserts	bigint NOT NULL DEFAULT 0,
	deletes	bigint NOT NULL DEFAULT 0
);
INSERT INTO ledger (n, initial) SELECT n, :rows FROM stress_token;
CREATE TABLE stress_violation (n int, rows_seen bigint, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE stress_seen (n int PRIMARY KEY, rows_seen bigint);
SELECT tenant_isolation.mark_global('stress_token');
SELECT tenant_isolation.mark_global('ledger');
SELECT tenant_isolation.mark_global('stress_violation');
SELECT tenant_isolation.mark_global('stress_seen');
CREATE FUNCTION stress_fail(bad bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'cross-tenant rows seen: %', bad;
END
$$;
GRANT SELECT ON stress_token TO stress_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO stress_app;
GRANT USAGE ON SEQUENCE items_id_seq TO stress_app;
GRANT SELECT, UPDATE ON ledger TO stress_app;
GRANT INSERT ON stress_violation, stress_seen TO stress_app;
ANALYZE;
SQL
for n in $(seq 1 "$tenants"); do
	tid=$(printf '00000000-0000-4000-8000-%012d' "$n")
	tok=$(sh "$TI_TOP/test/scripts/mint_jwt.sh" -k stress HS256 "$keys/hs256.key" \
		"{\"tenant_id\":\"$tid\",\"sub\":\"stress-user-$n\",\"exp\":NOW+86400}")
	echo "UPDATE stress_token SET token = '$tok' WHERE n = $n;"
done >"$tmp/tokens.sql"
rm -rf "$keys"
psql_su -f "$tmp/tokens.sql" || exit 1
tenant_scripts="-f stress_read.sql@4 -f stress_parallel.sql@2 -f stress_write.sql@3 -f stress_delete.sql@1"
if [ "$ddl" = 1 ]; then
	psql_su -f "$tmp/ddl_setup.sql" >/dev/null || exit 1
	tenant_scripts="$tenant_scripts -f stress_parts.sql@3"
fi

if [ -n "${STRESS_TRANSACTIONS:-}" ]; then
	per_client=$(((STRESS_TRANSACTIONS + clients - 1) / clients))
	duration="-t $per_client"
	echo "== pgbench: $clients clients x $per_client transactions, -M prepared"
else
	duration="-T ${STRESS_SECONDS:-60}"
	echo "== pgbench: $clients clients for ${STRESS_SECONDS:-60} s, -M prepared"
fi
if [ "$ddl" = 1 ]; then
	# the storm runs as long as the tenants' run (or STRESS_DDL_SECONDS)
	ddl_duration=${duration/#-t */-T ${STRESS_DDL_SECONDS:-60}}
	echo "== DDL storm: $ddl_clients superuser clients, $ddl_duration"
	ti_as_user "cd '$tmp' && '$BIN/pgbench' -n -h '$tmp' -p $port -U postgres -M simple \
		-c $ddl_clients -j 1 $ddl_duration -D tenants=$tenants \
		-f ddl_schema.sql@3 -f ddl_tenant.sql@2 -f ddl_table.sql@3 -f ddl_partition.sql@3 \
		-f ddl_analyze.sql@2 -f ddl_discard.sql@3 -f ddl_overflow.sql@1 \
		postgres" >"$tmp/ddl.log" 2>&1 &
	ddl_pid=$!
fi
ti_as_user "cd '$tmp' && '$BIN/pgbench' -n -h '$tmp' -p $port -U stress_app -M prepared \
	-c $clients -j $threads $duration -D tenants=$tenants \
	$tenant_scripts \
	postgres" >"$tmp/pgbench.log" 2>&1
pgbench_rc=$?
grep -vE '^pgbench: (client|error)' "$tmp/pgbench.log" | sed -n '/^transaction type/,$p' | head -40
errors=$(grep -cE 'aborted|ERROR' "$tmp/pgbench.log" || true)
if [ "$pgbench_rc" != 0 ]; then
	echo "pgbench failed (exit $pgbench_rc):"
	grep -E 'aborted|ERROR|error' "$tmp/pgbench.log" | head -20
fi
xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/pgbench.log")
ddl_rc=0
ddl_xacts=0
if [ "$ddl" = 1 ]; then
	wait "$ddl_pid" || ddl_rc=$?
	ddl_xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/ddl.log")
	echo "== DDL storm (pgbench exit $ddl_rc): transactions per script"
	# "SQL script N: ddl_x.sql" followed by " - M transactions (...)"
	awk '/^SQL script [0-9]+:/ {name = $4} /^ - [0-9]+ transactions/ && name != "" {printf "  %-20s %s\n", name, $2; name = ""}' "$tmp/ddl.log"
	if [ "$ddl_rc" != 0 ]; then
		echo "DDL storm failed:"
		grep -E 'aborted|ERROR|error' "$tmp/ddl.log" | head -20
	fi
fi

# Every tenant counts what it sees, in its own context, as the app role.
{
	echo "\\set ON_ERROR_STOP 1"
	for n in $(seq 1 "$tenants"); do
		echo "BEGIN;"
		echo "SELECT tenant_isolation.login_local(token) AS tid FROM stress_token WHERE n = $n \\gset"
		echo "INSERT INTO stress_seen SELECT $n, count(*) FROM items;"
		[ "$ddl" = 1 ] && echo "INSERT INTO stress_seen_parts SELECT $n, count(*) FROM parts;"
		echo "COMMIT;"
	done
} >"$tmp/verify.sql"
"$BIN/psql" -X -q -h "$tmp" -p "$port" -U stress_app -d postgres -f "$tmp/verify.sql" >/dev/null ||
	{ echo "verification as the app role failed"; exit 1; }

read -r ntenants cross lost mismatched_su <<<"$(psql_su -At -F ' ' <<'SQL'
SELECT (SELECT count(*) FROM tenant_isolation.tenant WHERE name LIKE 'stress %'),
	   (SELECT coalesce(sum(rows_seen), 0) FROM stress_violation)
	   + (SELECT count(*) FROM items i JOIN stress_token t ON t.tenant = i.tenant_id
		   WHERE split_part(i.payload, ':', 1) <> t.tenant::text),
	   (SELECT coalesce(sum(abs(l.initial + l.inserts - l.deletes - s.rows_seen)), 0)
		  FROM ledger l JOIN stress_seen s USING (n))
	   + (SELECT count(*) FROM ledger l LEFT JOIN stress_seen s USING (n) WHERE s.n IS NULL),
	   (SELECT count(*) FROM ledger l JOIN stress_token t USING (n)
		 WHERE l.initial + l.inserts - l.deletes <>
			   (SELECT count(*) FROM items i WHERE i.tenant_id = t.tenant))
SQL
)"
totals=$(psql_su -At -F ' ' -c "SELECT sum(inserts), sum(deletes) FROM ledger")
parts_cross=0
parts_lost=0
parts_rows=
if [ "$ddl" = 1 ]; then
	read -r parts_cross parts_lost parts_rows <<<"$(psql_su -At -F ' ' <<'SQL'
SELECT (SELECT count(*) FROM parts p JOIN stress_token t ON t.tenant = p.tenant_id
		 WHERE split_part(p.payload, ':', 1) <> t.tenant::text),
	   (SELECT coalesce(sum(abs(l.inserts - s.rows_seen)), 0)
		  FROM parts_ledger l JOIN stress_seen_parts s USING (n))
	   + (SELECT count(*) FROM parts_ledger l LEFT JOIN stress_seen_parts s USING (n) WHERE s.n IS NULL)
	   + (SELECT count(*) FROM parts_ledger l JOIN stress_token t USING (n)
		   WHERE l.inserts <> (SELECT count(*) FROM parts p WHERE p.tenant_id = t.tenant)),
	   (SELECT count(*) FROM parts)
SQL
)"
	cross=$((cross + parts_cross))
	lost=$((lost + parts_lost))
fi

echo
echo "== stress results"
echo "transactions:              ${xacts:-0} (pgbench exit $pgbench_rc, $errors error lines)"
echo "tenants:                   $ntenants"
echo "clients:                   $clients"
echo "inserts, deletes:          $totals"
echo "cross-tenant rows seen:    $cross"
echo "lost writes:               $lost (tenants whose superuser count differs: $mismatched_su)"
if [ "$ddl" = 1 ]; then
	echo "marker rows in parts:      $parts_rows (cross-tenant: $parts_cross, lost: $parts_lost)"
	echo "DDL storm transactions:    ${ddl_xacts:-0} (pgbench exit $ddl_rc)"
fi
grep -E 'TRAP|terminated by signal|PANIC' "$tmp/server.log" && { echo "server crashed"; exit 1; }
if [ "$pgbench_rc" = 0 ] && [ "$cross" = 0 ] && [ "$lost" = 0 ] && [ "$mismatched_su" = 0 ] &&
	[ "${xacts:-0}" -gt 0 ] && [ "$ddl_rc" = 0 ] && { [ "$ddl" = 0 ] || [ "${ddl_xacts:-0}" -gt 0 ]; }; then
	echo "stress: ok"
	exit 0
fi
echo "stress: FAILED"
tail -20 "$tmp/server.log"
exit 1
