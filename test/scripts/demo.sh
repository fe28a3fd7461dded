#!/usr/bin/env bash
# make demo: build and install the extension, start a throwaway cluster as an
# unprivileged user, and show two tenants sharing one table without seeing
# each other's rows.  The cluster is always stopped and its directory removed.
# Exit status is non-zero when a check of the demo fails, above all when the
# tenant "acme" can see a row of the tenant "globex".
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ti_build_install

BIN=$(pg_config --bindir)
tmp=$(mktemp -d /tmp/tenant_isolation_demo.XXXXXX)
started=0

cleanup() {
	if [ "$started" = 1 ]; then
		ti_as_user "'$BIN/pg_ctl' -D '$tmp/data' -m fast -w stop" >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$(id -u)" = 0 ]; then
	chown "$TI_USER" "$tmp"
fi

# A free high port.  The server listens on a unix socket in $tmp only, so the
# port merely names the socket file; still, avoid one that is in use.
port=
for _ in $(seq 1 50); do
	p=$((20000 + RANDOM % 40000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		port=$p
		break
	fi
done
[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }

heading() {
	echo
	echo "=== $*"
}

fail() {
	echo
	echo "DEMO FAILED: $*" >&2
	exit 1
}

# psql_as ROLE [psql options]: run the SQL on stdin as ROLE in one session.
psql_as() {
	local role=$1
	shift
	"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$port" -U "$role" -d demo "$@"
}

heading "Starting a throwaway PostgreSQL 15 cluster (port $port, socket in $tmp)"
ti_as_user "'$BIN/initdb' -D '$tmp/data' -U postgres -A trust --no-instructions" >"$tmp/initdb.log" 2>&1 ||
	{ cat "$tmp/initdb.log"; fail "initdb"; }
cat >>"$tmp/data/postgresql.conf" <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$tmp'
shared_preload_libraries = 'tenant_isolation'
EOF
started=1
ti_as_user "'$BIN/pg_ctl' -D '$tmp/data' -l '$tmp/server.log' -w start" >/dev/null ||
	{ cat "$tmp/server.log"; fail "pg_ctl start"; }
"$BIN/createdb" -h "$tmp" -p "$port" -U postgres demo

heading "As the superuser: install the extension, a shared table, two tenants"
psql_as postgres -e <<'SQL'
CREATE EXTENSION tenant_isolation;
CREATE TABLE invoices (
	tenant_id uuid NOT NULL,
	id        int,
	customer  text,
	amount    numeric,
	PRIMARY KEY (tenant_id, id)
);
CREATE ROLE app LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON invoices TO app;
CREATE ROLE support LOGIN;
GRANT tenant_isolation_admin TO support;
GRANT app TO support;
SQL
acme=$(psql_as postgres -At -c "SELECT tenant_isolation.create_tenant('acme')")
globex=$(psql_as postgres -At -c "SELECT tenant_isolation.create_tenant('globex')")
echo "acme   = $acme"
echo "globex = $globex"

heading "Rows of both tenants in the one table (inserted by the superuser)"
psql_as postgres -e -v acme="$acme" -v globex="$globex" <<'SQL'
INSERT INTO invoices VALUES
	(:'acme', 1, 'Acme Road Runner Traps', 120.00),
	(:'acme', 2, 'Acme Rocket Skates', 349.50),
	(:'acme', 3, 'Acme Giant Magnet', 75.25),
	(:'globex', 1, 'GLOBEX-SECRET doomsday device', 1000000.00),
	(:'globex', 2, 'GLOBEX-SECRET volcano lair lease', 250000.00);
SELECT tenant_isolation.protect_table('invoices');
SELECT * FROM tenant_isolation.protected_tables;
SQL

heading "As role app, without a tenant context: reading invoices is refused"
out=$(psql_as app -v VERBOSITY=verbose -c "SELECT * FROM invoices" 2>&1 || true)
echo "$out"
grep -q "ERROR:  42501: no tenant context" <<<"$out" ||
	fail "app read invoices without a tenant context"

heading "Role support (member of tenant_isolation_admin) assumes acme, then SET ROLE app"
echo "(applications use tenant_isolation.login(<JWT>); assume_tenant is the audited admin path)"
out=$(psql_as support -e -v acme="$acme" <<'SQL'
SELECT tenant_isolation.assume_tenant(:'acme', 'demo: show what acme sees');
SET ROLE app;
SELECT tenant_isolation.current_tenant();
SELECT * FROM invoices ORDER BY id;
SELECT count(*) AS globex_rows_visible FROM invoices WHERE customer LIKE 'GLOBEX%';
SQL
)
echo "$out"

heading "Checking: acme sees its 3 rows and no row of globex"
check=$(psql_as support -At -v acme="$acme" -v globex="$globex" <<'SQL'
SELECT tenant_isolation.assume_tenant(:'acme', 'demo: check');
SET ROLE app;
SELECT count(*) FILTER (WHERE tenant_id = :'acme') || ' ' ||
	   count(*) FILTER (WHERE tenant_id <> :'acme' OR customer LIKE 'GLOBEX%')
  FROM invoices;
SQL
)
check=$(tail -n 1 <<<"$check")	# the last line; assume_tenant() printed an empty one
echo "acme rows, other rows: $check"
[ "$check" = "3 0" ] || fail "acme saw '$check' (expected '3 0'): tenant isolation is broken"
echo "ok"

heading "In acme's context, writing a row of globex is refused"
out=$(psql_as support -e -v VERBOSITY=verbose -v acme="$acme" -v globex="$globex" 2>&1 <<'SQL' || true
SELECT tenant_isolation.assume_tenant(:'acme', 'demo: write attempt');
SET ROLE app;
INSERT INTO invoices VALUES (:'globex', 3, 'GLOBEX-SECRET forged', 1);
SQL
)
echo "$out"
grep -q "ERROR:  42501:" <<<"$out" || fail "the INSERT of a globex row was not refused"
left=$(psql_as postgres -At -v globex="$globex" -c "SELECT count(*) FROM invoices WHERE id = 3 AND tenant_id = '$globex'")
[ "$left" = 0 ] || fail "the forged globex row was written"

heading "EXPLAIN: the tenant qual is part of the plan (an index condition)"
echo "(enable_seqscan is off only because the table holds five rows)"
out=$(psql_as support -e -v acme="$acme" <<'SQL'
SELECT tenant_isolation.assume_tenant(:'acme', 'demo: explain');
SET ROLE app;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM invoices WHERE id = 2;
SQL
)
echo "$out"
grep -q "Index Cond: ((tenant_id = '$acme'::uuid)" <<<"$out" ||
	fail "EXPLAIN does not show the tenant qual as an index condition"

heading "The superuser without a context still sees every row"
psql_as postgres -c "SELECT tenant_id, id, customer FROM invoices ORDER BY customer"

echo
echo "Demo finished: acme never saw a row of globex."
