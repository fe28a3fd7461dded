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
INSTR_DIR=$DIR bash "$HERE/instr.sh"
echo "bench-instr: done in $(( $(date +%s) - t0 )) s; table in $OUT/instr.md" >&2
