#!/usr/bin/env bash
# switch.sh: what a tenant switch costs (issue 14), against a running cluster
# with tenant_isolation preloaded (libpq environment: PGHOST, PGPORT, PGUSER
# a superuser, PGDATABASE).  Creates two tenants, an HS256 key and a table of
# tokens (names prefixed bench_switch, dropped at the end), then runs, each
# SWITCH_SECONDS (5) with pgbench -M prepared -c 1:
#
#   login_local   BEGIN; SELECT login_local($1); COMMIT;      (always tenant A)
#   setlocal      BEGIN; SET LOCAL tenant_isolation.tenant_id = A; COMMIT;
#   alternate     BEGIN; SELECT login_local(tok) of A or B at random; COMMIT;
#
# and prints tps and the backend's CPU time per transaction (read from
# /proc, so that a loaded machine distorts it less than tps).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECS=${SWITCH_SECONDS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
A=5a000000-0000-4000-8000-00000000000a
B=5b000000-0000-4000-8000-00000000000b
openssl rand -hex 16 | tr -d '\n' >"$tmp/key"
tokA=$(sh "$HERE/../scripts/mint_jwt.sh" HS256 "$tmp/key" "{\"tenant_id\": \"$A\", \"exp\": NOW+3600}")
tokB=$(sh "$HERE/../scripts/mint_jwt.sh" HS256 "$tmp/key" "{\"tenant_id\": \"$B\", \"exp\": NOW+3600}")
psql -qX -v ON_ERROR_STOP=1 <<SQL >/dev/null
SELECT tenant_isolation.add_jwt_key('bench_switch', 'HS256', '$(cat "$tmp/key")');
SELECT tenant_isolation.create_tenant('bench_switch a', id => '$A');
SELECT tenant_isolation.create_tenant('bench_switch b', id => '$B');
CREATE TABLE bench_switch_tokens (n int PRIMARY KEY, tok text);
INSERT INTO bench_switch_tokens VALUES (0, '$tokA'), (1, '$tokB');
SQL
printf 'BEGIN;\nSELECT tenant_isolation.login_local(:tok);\nCOMMIT;\n' >"$tmp/login_local.sql"
printf "BEGIN;\nSET LOCAL tenant_isolation.tenant_id = '%s';\nCOMMIT;\n" "$A" >"$tmp/setlocal.sql"
printf '\\set t random(0, 1)\nBEGIN;\nSELECT tenant_isolation.login_local(tok) FROM bench_switch_tokens WHERE n = :t;\nCOMMIT;\n' >"$tmp/alternate.sql"
hz=$(getconf CLK_TCK)
for s in login_local setlocal alternate; do
	pgbench -n -M prepared -c 1 -T "$SECS" -D tok="$tokA" -f "$tmp/$s.sql" >"$tmp/out" 2>&1 &
	bg=$!
	pid=""
	while [ -z "$pid" ] && kill -0 $bg 2>/dev/null; do
		sleep 0.1
		pid=$(psql -AtqX -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1")
	done
	ticks=0
	while kill -0 $bg 2>/dev/null; do
		t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true)
		[ -n "$t" ] && ticks=$t
		sleep 0.05
	done
	wait $bg
	n=$(sed -n 's/.*actually processed: \([0-9]*\).*/\1/p' "$tmp/out")
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$tmp/out")
	awk -v s="$s" -v tps="$tps" -v n="$n" -v t="$ticks" -v hz="$hz" \
		'BEGIN { printf "%-12s tps %8.0f   backend CPU per transaction %6.1f us\n", s, tps, t * 1e6 / hz / n }'
done
psql -qX <<SQL >/dev/null
DROP TABLE bench_switch_tokens;
SELECT tenant_isolation.drop_tenant('$A');
SELECT tenant_isolation.drop_tenant('$B');
SELECT tenant_isolation.drop_jwt_key('bench_switch');
SQL
