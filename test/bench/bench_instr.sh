#!/usr/bin/env bash
# make bench-instr: the deterministic benchmark matrix of issue 17 in one command.
#
#   1. run.sh, short (1 s cells, 1 repetition) with BENCH_KEEP=1: builds the
#      data, checks that every variant returns literal's rows (update and join
#      included), writes the pgbench scripts and keeps the stopped cluster;
#   2. instr.sh on that cluster: server instructions per transaction of every
#      cell under callgrind, INSTR_REPS (3) interleaved repetitions;
#   3. prints instr.sh's markdown table (median, ratio to literal_set, marks)
#      and removes the cluster.
#
# Environment as for run.sh and instr.sh (PG_CONFIG, BENCH_NO_BUILD, BENCH_OUT,
# BENCH_PORT, INSTR_REPS, INSTR_N1/N2, ...).  The table is $BENCH_OUT/instr.md.
# INSTR_JOBS=2 (default) counts on two copies of the cluster at once (ports
# BENCH_PORT and BENCH_PORT + 1); INSTR_JOBS=1 on one.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${BENCH_OUT:-$HERE/out}
export BENCH_OUT=$OUT
mkdir -p "$OUT"
LOG="$OUT/bench_instr.run.log"
t0=$(date +%s)
rc=0
BENCH_KEEP=1 BENCH_SECONDS=${BENCH_SECONDS:-1} BENCH_REPS=${BENCH_REPS:-1} \
	bash "$HERE/run.sh" >"$OUT/report.md.stdout" 2>"$LOG" || rc=$?
DIR=$(sed -n 's/^bench: kept \(.*\)$/\1/p' "$LOG" | tail -1)
[ -n "$DIR" ] && [ -d "$DIR/data" ] || { cat "$LOG" >&2; echo "bench-instr: run.sh kept no cluster" >&2; exit 2; }
cleanup() { rm -rf "$DIR"; }
trap cleanup EXIT
grep '^bench: correctness' "$LOG" >&2 || true
if [ $rc != 0 ]; then
	tail -20 "$LOG" >&2
	echo "bench-instr: run.sh failed (exit $rc): see $LOG" >&2
	exit 1
fi
echo "bench-instr: run.sh done in $(( $(date +%s) - t0 )) s; counting instructions" >&2
JOBS=${INSTR_JOBS:-2}
WL=${BENCH_WORKLOADS:-point last50 agg_mid agg_big jsonb like join update insert unprotected}
if [ "$JOBS" = 1 ]; then
	INSTR_DIR=$DIR BENCH_WORKLOADS="$WL" bash "$HERE/instr.sh"
else
	# Two callgrind postmasters on two copies of the stopped cluster, the
	# read-only heavy workloads on the copy, the rest (update and insert
	# write) on the original: the counts are those of one cluster (each
	# backend's instructions do not depend on what else runs), in about
	# half the time.
	heavy="" light=""
	for w in $WL; do
		case $w in agg_mid|agg_big|jsonb|like) heavy="$heavy $w" ;; *) light="$light $w" ;; esac
	done
	DIR2=$(mktemp -d /tmp/ti_bench.XXXXXX)
	cp -a "$DIR/." "$DIR2/"
	chown "$(stat -c %U "$DIR")" "$DIR2"
	trap 'rm -rf "$DIR" "$DIR2"' EXIT
	PORT=${BENCH_PORT:-55432}
	pids=""
	if [ -n "$light" ]; then
		INSTR_DIR=$DIR INSTR_CSV=$OUT/instr.1.csv INSTR_MD=$OUT/instr.1.md BENCH_WORKLOADS="$light" \
			bash "$HERE/instr.sh" >"$OUT/instr.1.out" 2>"$OUT/instr.1.log" &
		pids="$pids $!"
	fi
	if [ -n "$heavy" ]; then
		INSTR_DIR=$DIR2 BENCH_PORT=$((PORT + 1)) INSTR_CSV=$OUT/instr.2.csv INSTR_MD=$OUT/instr.2.md \
			BENCH_WORKLOADS="$heavy" bash "$HERE/instr.sh" >"$OUT/instr.2.out" 2>"$OUT/instr.2.log" &
		pids="$pids $!"
	fi
	rc=0
	for p in $pids; do wait "$p" || rc=1; done
	[ $rc = 0 ] || { tail -5 "$OUT"/instr.[12].log >&2; echo "bench-instr: instr.sh failed" >&2; exit 1; }
	{ cat "$OUT/instr.1.csv" 2>/dev/null || true; tail -n +2 "$OUT/instr.2.csv" 2>/dev/null || true; } |
		awk 'NR == 1 || !/^label,/' >"$OUT/instr.csv"
	{
		echo "$(date -u '+%Y-%m-%d %H:%M UTC'), tree $(git -C "$HERE/../.." describe --always --dirty 2>/dev/null || echo unknown), $(nproc) CPUs."
		echo
		INSTR_DIR=$DIR INSTR_REPORT_ONLY=1 INSTR_CSV=$OUT/instr.csv INSTR_MD=/dev/null BENCH_WORKLOADS="$WL" bash "$HERE/instr.sh"
	} | tee "$OUT/instr.md"
fi
echo "bench-instr: done in $(( $(date +%s) - t0 )) s; table in $OUT/instr.md" >&2
