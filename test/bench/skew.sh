#!/usr/bin/env bash
#
# skew.sh: skewed tenants (issue 17).  Does a cached plan run slower for the
# biggest tenant than a plan made for it?
#
# On the cluster a `BENCH_KEEP=1` run of run.sh leaves (its data: the biggest
# tenant holds 10% of the rows, the smallest a few hundred), one session as
# bench_admin times, for the biggest tenant, each query in these forms:
#
#   literal      the query with the biggest tenant's uuid written by hand,
#                simple protocol: a plan made for that tenant (the reference)
#   ext_const    the extension, simple protocol: the plan carries the tenant
#                as a Const (made for the biggest tenant)
#   ext_generic  the extension, PREPAREd and executed once while in the
#                smallest tenant, then executed in the biggest: the cached
#                generic plan, which reads the tenant at execution
#   ext_custom   the same query with its constant as a parameter ($1),
#                plan_cache_mode = force_custom_plan, prepared in the smallest
#                tenant: a custom plan per execution (Const tenant)
#   rls_generic  native RLS (current_setting policy), prepared in the smallest
#                tenant, executed in the biggest (parameterless statements and
#                policies reading a setting always run the generic plan)
#
# Execution time of EXPLAIN (ANALYZE, TIMING OFF), median of SKEW_REPS (15)
# interleaved repetitions, after one warm-up round; planning is not counted.
# The figure of the issue is ext_generic / literal (target < 1.5).
#
#   SKEW_DIR=/tmp/ti_bench.XXXXXX   the kept cluster (required; started and
#                                   stopped here unless it is already running)
#   PG_CONFIG, BENCH_PORT as for run.sh; SKEW_REPS
#
set -euo pipefail
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)}
PGBIN=$("$PG_CONFIG" --bindir)
DIR=${SKEW_DIR:?set SKEW_DIR to the cluster kept by run.sh (BENCH_KEEP=1)}
PORT=${BENCH_PORT:-55432}
REPS=${SKEW_REPS:-15}
RUN_USER=$(stat -c %U "$DIR/data")
as_user() { if [ "$(id -un)" = "$RUN_USER" ]; then "$@"; else runuser -u "$RUN_USER" -- "$@"; fi; }
STARTED=0
if [ ! -e "$DIR/data/postmaster.pid" ]; then
	as_user "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/skew.log" -w -t 120 \
		-o "-p $PORT -c unix_socket_directories=$DIR/sock -c autovacuum=off" start >/dev/null
	STARTED=1
fi
stop() { [ $STARTED = 1 ] && as_user "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop EXIT
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/sock" -p "$PORT" -d bench)

read -r BIG BIGN < <("${PSQL[@]}" -U postgres -AtF' ' -c "SELECT id, nrows FROM bench_tenant ORDER BY rank LIMIT 1")
read -r SMALL SMALLN < <("${PSQL[@]}" -U postgres -AtF' ' -c "SELECT id, nrows FROM bench_tenant ORDER BY rank DESC LIMIT 1")

# name|query on table T (the tenant predicate TW is literal's only)|parameterised form ($1)|$1 value
QUERIES=(
	"agg|SELECT kind, count(*), sum(amount) FROM T WHERE TW true GROUP BY kind|SELECT kind, count(*), sum(amount) FROM T WHERE TW amount >= \$1 GROUP BY kind|0"
	"jsonb|SELECT count(*), sum(amount) FROM T WHERE TW payload @> '{\"k\": 17}'|SELECT count(*), sum(amount) FROM T WHERE TW payload @> \$1|{\"k\": 17}"
	"like|SELECT count(*), sum(amount) FROM T WHERE TW kind LIKE 'refund.%'|SELECT count(*), sum(amount) FROM T WHERE TW kind LIKE \$1|refund.%"
	"last50|SELECT id, created_at, kind, amount FROM T WHERE TW true ORDER BY created_at DESC LIMIT 50|SELECT id, created_at, kind, amount FROM T WHERE TW amount >= \$1 ORDER BY created_at DESC LIMIT 50|0"
	"range|SELECT count(*), sum(amount) FROM T WHERE TW created_at >= '2024-12-01'|SELECT count(*), sum(amount) FROM T WHERE TW created_at >= \$1|2024-12-01"
)
q_of() { # q_of TEMPLATE TABLE LITERAL?
	local q=${1//T WHERE/$2 WHERE}
	if [ "$3" = 1 ]; then q=${q//TW/tenant_id = \'$BIG\' AND}; else q=${q//TW /}; fi
	q=${q//WHERE true /}
	echo "${q//AND true /}"
}
ptype() { case $1 in agg|last50) echo numeric ;; jsonb) echo jsonb ;; like) echo text ;; range) echo timestamptz ;; esac; }

SCRIPT=$(mktemp)
OUTF=$(mktemp)
{
	echo "SET plan_cache_mode = auto;"
	# prepare everything while in the smallest tenant
	echo "SELECT tenant_isolation.assume_tenant('$SMALL', 'skew') \\g /dev/null"
	echo "SET app.tenant_id = '$SMALL';"
	for e in "${QUERIES[@]}"; do
		IFS='|' read -r name q pq pv <<<"$e"
		echo "PREPARE ext_$name AS $(q_of "$q" events_ext 0);"
		echo "EXECUTE ext_$name \\g /dev/null"
		echo "PREPARE rls_$name AS $(q_of "$q" events_rls_setting 0);"
		echo "EXECUTE rls_$name \\g /dev/null"
		echo "PREPARE extp_$name ($(ptype "$name")) AS $(q_of "$pq" events_ext 0);"
		echo "SET plan_cache_mode = force_custom_plan;"
		echo "EXECUTE extp_$name ('$pv') \\g /dev/null"
		echo "SET plan_cache_mode = auto;"
	done
	# then execute in the biggest
	# (a switch discards settings made in the other tenant: set it after)
	echo "SELECT tenant_isolation.assume_tenant('$BIG', 'skew') \\g /dev/null"
	echo "SET app.tenant_id = '$BIG';"
	echo "\\pset format unaligned"
	echo "\\pset tuples_only on"
	for ((i = 0; i <= REPS; i++)); do
		for e in "${QUERIES[@]}"; do
			IFS='|' read -r name q pq pv <<<"$e"
			for f in literal ext_const ext_generic ext_custom rls_generic; do
				echo "\\echo 'T|$i|$name|$f'"
				case $f in
					literal) echo "EXPLAIN (ANALYZE, TIMING OFF) $(q_of "$q" events_literal 1);" ;;
					ext_const) echo "EXPLAIN (ANALYZE, TIMING OFF) $(q_of "$q" events_ext 0);" ;;
					ext_generic) echo "EXPLAIN (ANALYZE, TIMING OFF) EXECUTE ext_$name;" ;;
					ext_custom) echo "SET plan_cache_mode = force_custom_plan;"
						echo "EXPLAIN (ANALYZE, TIMING OFF) EXECUTE extp_$name ('$pv');"
						echo "SET plan_cache_mode = auto;" ;;
					rls_generic) echo "EXPLAIN (ANALYZE, TIMING OFF) EXECUTE rls_$name;" ;;
				esac
			done
		done
	done
	# the plans
	for e in "${QUERIES[@]}"; do
		IFS='|' read -r name q pq pv <<<"$e"
		echo "\\echo 'P|$name|literal (plan made for the biggest tenant)'"
		echo "EXPLAIN (COSTS OFF) $(q_of "$q" events_literal 1);"
		echo "\\echo 'P|$name|ext_generic (cached, made in the smallest tenant)'"
		echo "EXPLAIN (COSTS OFF) EXECUTE ext_$name;"
		echo "\\echo 'P|$name|rls_generic'"
		echo "EXPLAIN (COSTS OFF) EXECUTE rls_$name;"
	done
} >"$SCRIPT"
"${PSQL[@]}" -U bench_admin -f "$SCRIPT" >"$OUTF"

echo "Skewed tenants: the biggest tenant ($BIGN rows) with plans cached in the smallest ($SMALLN rows)."
echo "Execution time (ms, EXPLAIN ANALYZE with TIMING OFF), median of $REPS interleaved repetitions;"
echo "in parentheses the ratio to \`literal\` (a plan made for the biggest tenant)."
echo
awk -F'|' '
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	/^T\|/ { cur = ($2 > 0) ? $3 SUBSEP $4 : ""; if (!($3 in seen)) { seen[$3] = 1; order[++nq] = $3 }; next }
	/^P\|/ { cur = ""; next }
	/Execution Time:/ && cur != "" { sub(/.*Execution Time: /, ""); sub(/ ms.*/, ""); v[cur] = v[cur] " " $0 }
	END {
		nf = split("literal ext_const ext_generic ext_custom rls_generic", F, " ")
		printf "| query |"; for (f = 1; f <= nf; f++) printf " %s |", F[f]; print ""
		printf "|---|"; for (f = 1; f <= nf; f++) printf "---:|"; print ""
		for (q = 1; q <= nq; q++) {
			b = median(v[order[q] SUBSEP "literal"])
			printf "| %s |", order[q]
			for (f = 1; f <= nf; f++) {
				x = median(v[order[q] SUBSEP F[f]])
				if (F[f] == "literal") printf " %.3f |", x
				else printf " %.3f (%.2f) |", x, (b > 0 ? x / b : 0)
			}
			print ""
		}
	}' "$OUTF"
echo
echo "Plans (COSTS OFF):"
echo
awk '/^P\|/ { split($0, a, "|"); printf "\n%s, %s:\n", a[2], a[3]; p = 1; next } /^T\|/ { p = 0 } p && NF' "$OUTF" | sed 's/^/    /'
rm -f "$SCRIPT" "$OUTF"
