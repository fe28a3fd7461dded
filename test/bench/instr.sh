#!/bin/bash
#
# instr.sh: the deterministic mode of the benchmark (issue 17).
#
# Server instructions per transaction, counted by valgrind's callgrind, for
# the cells of a finished `run.sh` (run it with BENCH_KEEP=1: this script
# reuses the kept cluster directory and the pgbench scripts of BENCH_OUT).
# Wall-clock throughput on a shared 2-core machine swings by 15%; the
# instruction count of a backend running the same transactions is the same
# from one run to the next (to a few hundred instructions), so a 3% target
# can be checked.
#
# For every cell (workload, protocol, variant) the postmaster runs under
# callgrind; pgbench (one client, fixed --random-seed) runs N1 and then N2
# transactions in two connections; the backend's count for N2 minus its
# count for N1, over N2 - N1, is the cost of one transaction without the
# connection's start and end.  Rows inserted by the insert workload are
# deleted at the end.
#
#   INSTR_DIR=/tmp/ti_bench.XXXXXX   the kept cluster (required)
#   BENCH_OUT=test/bench/out         scripts of that run; results go to $BENCH_OUT/instr.csv
#   PG_CONFIG, BENCH_PORT, BENCH_WORKLOADS, BENCH_VARIANTS as for run.sh
#   INSTR_VARIANTS                    the full list instead (literal not added)
#   INSTR_N1 / INSTR_N2               transactions of the short cells (40 / 240)
#   INSTR_HEAVY_N1 / INSTR_HEAVY_N2   for agg_mid, agg_big, jsonb, like (2 / 12)
#   INSTR_LABEL                       written into every line (e.g. the tree)
#
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)}
PGBIN=$("$PG_CONFIG" --bindir)
DIR=${INSTR_DIR:?set INSTR_DIR to the cluster kept by run.sh (BENCH_KEEP=1)}
OUT=${BENCH_OUT:-$TOP/test/bench/out}
PORT=${BENCH_PORT:-55432}
WORKLOADS=${BENCH_WORKLOADS:-point last50 agg_mid agg_big jsonb like insert}
VARIANTS=${INSTR_VARIANTS:-"literal ${BENCH_VARIANTS:-literal_set rls_setting ext_login}"}
N1=${INSTR_N1:-40}
N2=${INSTR_N2:-240}
HN1=${INSTR_HEAVY_N1:-2}
HN2=${INSTR_HEAVY_N2:-12}
LABEL=${INSTR_LABEL:-}
RUN_USER=$(stat -c %U "$DIR/data")
CG="$DIR/cg"

log() { echo "instr: $*" >&2; }
as_user() { if [ "$(id -un)" = "$RUN_USER" ]; then "$@"; else runuser -u "$RUN_USER" -- "$@"; fi; }

command -v valgrind >/dev/null || { log "valgrind not installed"; exit 2; }
as_user mkdir -p "$CG"
[ -e "$DIR/data/postmaster.pid" ] && { log "a postmaster is running on $DIR/data: stop it first"; exit 2; }
rm -f "$CG"/cg.*

as_user valgrind --tool=callgrind --callgrind-out-file="$CG/cg.%p" \
	--dump-line=no --dump-instr=no --compress-strings=no \
	"$PGBIN/postgres" -D "$DIR/data" -c autovacuum=off -c port="$PORT" \
	-c unix_socket_directories="$DIR/sock" -c log_min_messages=warning \
	>"$DIR/instr.log" 2>&1 &
PM=$!
stop() {
	as_user "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w -t 120 stop >/dev/null 2>&1 || true
	wait "$PM" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 1 240); do
	[ -S "$DIR/sock/.s.PGSQL.$PORT" ] && break
	sleep 0.5
done
[ -S "$DIR/sock/.s.PGSQL.$PORT" ] || { cat "$DIR/instr.log" >&2; log "postmaster did not start"; exit 2; }
# wait until connections are accepted
for _ in $(seq 1 240); do
	"$PGBIN/psql" -X -q -h "$DIR/sock" -p "$PORT" -U postgres -d bench -c 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.5
done
sleep 2

role_of() { [ "$1" = ext_assume ] && echo bench_admin || echo bench; }

# total instructions of the processes that exited since the listing
# "before": the pgbench backend and any parallel workers it launched
backend_ir() {
	local before=$1 f tot=0 n=0 t
	for f in "$CG"/cg.*; do
		grep -qx "$f" "$before" && continue
		t=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$f" | head -1)
		[ -n "$t" ] || continue
		tot=$((tot + t)); n=$((n + 1))
	done
	[ $n -ge 1 ] || { log "no new backend profile"; echo -1; return; }
	echo "$tot"
}

run_n() { # run_n W MODE V N: instructions of a backend running N transactions
	local w=$1 mode=$2 v=$3 n=$4 args="" f lst
	for f in "$OUT/scripts/$w.$v".*.sql "$OUT/scripts/$w.$v.sql"; do
		[ -e "$f" ] && args="$args -f $f@1"
	done
	lst=$(mktemp)
	ls "$CG"/cg.* 2>/dev/null >"$lst" || true
	# shellcheck disable=SC2086
	"$PGBIN/pgbench" -n -h "$DIR/sock" -p "$PORT" -U "$(role_of "$v")" -c 1 -j 1 \
		--random-seed=17 -t "$n" -M "$mode" -D ctx=0 $args bench >"$DIR/instr.pgbench.log" 2>&1 ||
		{ log "pgbench failed: $w $mode $v"; cat "$DIR/instr.pgbench.log" >&2; rm -f "$lst"; echo -1; return; }
	# the backend's profile is dumped when it exits, just after pgbench
	sleep 1.5
	backend_ir "$lst"
	rm -f "$lst"
}

CSV="$OUT/instr.csv"
[ -e "$CSV" ] || echo "label,workload,mode,variant,instr_per_tx,n1,n2" >"$CSV"
for w in $WORKLOADS; do
	case $w in agg_mid|agg_big|jsonb|like) a=$HN1; b=$HN2 ;; *) a=$N1; b=$N2 ;; esac
	for mode in simple prepared; do
		for v in $VARIANTS; do
			i1=$(run_n "$w" "$mode" "$v" "$a")
			i2=$(run_n "$w" "$mode" "$v" "$b")
			if [ "$i1" -lt 0 ] || [ "$i2" -lt 0 ]; then per=NA; else per=$(((i2 - i1) / (b - a))); fi
			echo "$LABEL,$w,$mode,$v,$per,$a,$b" >>"$CSV"
			log "$LABEL $w $mode $v: $per instructions per transaction"
		done
	done
done
"$PGBIN/psql" -X -q -h "$DIR/sock" -p "$PORT" -U postgres -d bench \
	-c "DELETE FROM events_literal WHERE id >= 1000000000000" \
	-c "DELETE FROM events_rls_setting WHERE id >= 1000000000000" \
	-c "DELETE FROM events_ext WHERE id >= 1000000000000" >/dev/null 2>&1 || true
