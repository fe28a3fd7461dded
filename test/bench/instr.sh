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
# deleted at the end.  With INSTR_REPS=3 every cell runs three times, the
# variants of a (workload, protocol) back to back in an order rotated from
# one repetition to the next, as run.sh does; the report gives the median
# and the spread ((max - min) / median) over the repetitions.
#
# The report ($BENCH_OUT/instr.md, also printed) is the markdown table of
# docs/benchmarks.md: instructions per transaction per cell, each variant's
# ratio to literal_set (to literal for the unprotected table), cells below
# the target (0.97; 0.99 unprotected) and cells behind rls_setting marked.
# `make bench-instr` runs run.sh (short, BENCH_KEEP=1) and then this script.
#
#   INSTR_DIR=/tmp/ti_bench.XXXXXX   the kept cluster (required)
#   BENCH_OUT=test/bench/out         scripts of that run; results go to $BENCH_OUT/instr.csv
#   PG_CONFIG, BENCH_PORT, BENCH_WORKLOADS, BENCH_VARIANTS as for run.sh
#   INSTR_VARIANTS                    the full list instead (literal not added)
#   INSTR_N1 / INSTR_N2               transactions of the short cells (40 / 100)
#   INSTR_HEAVY_N1 / INSTR_HEAVY_N2   for agg_mid, agg_big, jsonb, like (2 / 5)
#   INSTR_REPS                        interleaved repetitions (3)
#   INSTR_LABEL                       written into every line (e.g. the tree)
#   INSTR_CSV / INSTR_MD              results ($BENCH_OUT/instr.csv / instr.md)
#   INSTR_REPORT_ONLY=1               only print the report of an existing INSTR_CSV
#
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)}
PGBIN=$("$PG_CONFIG" --bindir)
DIR=${INSTR_DIR:?set INSTR_DIR to the cluster kept by run.sh (BENCH_KEEP=1)}
OUT=${BENCH_OUT:-$TOP/test/bench/out}
PORT=${BENCH_PORT:-55432}
WORKLOADS=${BENCH_WORKLOADS:-point last50 agg_mid agg_big jsonb like join update insert unprotected}
VARIANTS=${INSTR_VARIANTS:-"literal ${BENCH_VARIANTS:-literal_set rls_setting rls_json rls_select ext_login ext_assume}"}
N1=${INSTR_N1:-40}
N2=${INSTR_N2:-100}
HN1=${INSTR_HEAVY_N1:-2}
HN2=${INSTR_HEAVY_N2:-5}
REPS=${INSTR_REPS:-3}
LABEL=${INSTR_LABEL:-}
CSV=${INSTR_CSV:-$OUT/instr.csv}
MD=${INSTR_MD:-$OUT/instr.md}

# report: the markdown table of instr.csv (median over repetitions)
report() {
	awk -F, -v workloads="$WORKLOADS" -v variants="$VARIANTS" '
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		lo = a[1]; hi = a[n]
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function commas(x,   s, r) {
		s = sprintf("%d", x); r = ""
		while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
		return s r
	}
	NR > 1 && $6 != "NA" { k = $3 SUBSEP $4 SUBSEP $5; v[k] = v[k] " " $6; nrep[k]++ }
	END {
		n = split(variants, V0, " "); nw = split(workloads, W, " ")
		# only the variants that have a count
		nv = 0
		for (i = 1; i <= n; i++) {
			found = 0
			for (k in v) { split(k, kk, SUBSEP); if (kk[3] == V0[i]) { found = 1; break } }
			if (found) V[++nv] = V0[i]
		}
		hdr = "| workload | mode |"; sep = "|---|---|"
		for (i = 1; i <= nv; i++) { hdr = hdr " " V[i] " |"; sep = sep "---:|" }
		print hdr; print sep
		maxspread = 0; reps = 0; minreps = 0
		for (w = 1; w <= nw; w++) for (m = 1; m <= 2; m++) {
			mode = (m == 1) ? "simple" : "prepared"
			base = (W[w] == "unprotected") ? "literal" : "literal_set"
			thr = (W[w] == "unprotected") ? 0.99 : 0.97
			kb = W[w] SUBSEP mode SUBSEP base; kr = W[w] SUBSEP mode SUBSEP "rls_setting"
			b = (kb in v) ? median(v[kb]) : 0
			r = (kr in v) ? median(v[kr]) : 0
			line = "| " W[w] " | " mode " |"; any = 0
			for (i = 1; i <= nv; i++) {
				k = W[w] SUBSEP mode SUBSEP V[i]
				if (!(k in v)) { line = line " |"; continue }
				any = 1
				x = median(v[k]); if (nrep[k] > reps) reps = nrep[k]
				if (minreps == 0 || nrep[k] < minreps) minreps = nrep[k]
				if (x > 0) { sp = (hi - lo) / x; if (sp > maxspread) { maxspread = sp; maxcell = W[w] " " mode " " V[i] } }
				cell = commas(x)
				if (b > 0 && V[i] != base && V[i] != "literal" || (V[i] == "literal" && base == "literal_set" && b > 0)) {
					ratio = b / x
					mark = ""
					if (V[i] ~ /^ext_/ && ratio < thr) mark = mark "*"
					if (V[i] ~ /^ext_/ && r > 0 && x > r) mark = mark "†"
					cell = sprintf("%s (%.3f%s)", cell, ratio, mark)
				}
				line = line " " cell " |"
			}
			if (any) print line
		}
		printf "\nInstructions per transaction, median of %s interleaved repetition(s); in parentheses the ratio\n", (minreps == reps) ? reps : minreps "-" reps
		print "`literal_set / variant` (`literal / variant` for the unprotected table), i.e. throughput relative"
		print "to literal_set if the server CPU were the only cost. `*`: an extension variant below the target"
		print "(0.97; 0.99 on the unprotected table); `†`: an extension variant behind rls_setting."
		printf "Largest spread over the repetitions, (max − min) / median: %.2f%% (%s).\n", maxspread * 100, maxcell
	}' "$CSV"
}

if [ "${INSTR_REPORT_ONLY:-0}" = 1 ]; then
	report | tee "$MD"
	exit 0
fi
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
# the postmaster's children (valgrind runs in the postmaster's process)
PMPID=$(head -1 "$DIR/data/postmaster.pid")
nchildren() { ps --ppid "$PMPID" --no-headers 2>/dev/null | wc -l; }
BASE_CHILDREN=$(nchildren)
# wait until the postmaster has no more children than at the start: every
# backend that ran has exited and written its profile
wait_children() {
	for _ in $(seq 1 300); do
		[ "$(nchildren)" -le "$BASE_CHILDREN" ] && break
		sleep 0.1
	done
}
has_scripts() { compgen -G "$OUT/scripts/$1.$2.*sql" >/dev/null; }
rotate() { # rotate N WORDS...: the words, rotated left by N
	local n=$1; shift
	local a=("$@") k=${#a[@]} i
	for ((i = 0; i < k; i++)); do echo -n "${a[$(((i + n) % k))]} "; done
}

# total instructions of the processes that exited since the listing
# "before": the pgbench backends (its setup connection, the same in both runs
# of a cell, and the client's) and any parallel workers they launched.  Not
# the audit's launcher and flush workers: a flush worker starts when the
# launcher's timer finds records (assume_tenant's audit events), so how many
# start during a run depends on timing, and each start costs more than a
# transaction; their instructions are added up in $CG/audit_workers.
backend_ir() {
	local before=$1 f tot=0 n=0 t
	for f in "$CG"/cg.*; do
		grep -qx "$f" "$before" && continue
		t=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$f" | head -1)
		[ -n "$t" ] || continue
		if grep -q '^fn=.*ti_audit_\(flusher\|launcher\)_main' "$f"; then
			echo "$t" >>"$CG/audit_workers"
			continue
		fi
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
	wait_children
	backend_ir "$lst"
	rm -f "$lst"
}

SUPSQL=("$PGBIN/psql" -X -q -h "$DIR/sock" -p "$PORT" -U postgres -d bench)
TABLES="events_literal, events_rls_setting, events_rls_json, events_rls_select, events_ext"
echo "label,rep,workload,mode,variant,instr_per_tx,n1,n2" >"$CSV"
t0=$(date +%s)
for ((rep = 1; rep <= REPS; rep++)); do
	for w in $WORKLOADS; do
		case $w in agg_mid|agg_big|jsonb|like) a=$HN1; b=$HN2 ;; *) a=$N1; b=$N2 ;; esac
		cv=""
		for v in $VARIANTS; do has_scripts "$w" "$v" && cv="$cv $v"; done
		for mode in simple prepared; do
			# shellcheck disable=SC2086
			for v in $(rotate "$rep" $cv); do
				i1=$(run_n "$w" "$mode" "$v" "$a")
				i2=$(run_n "$w" "$mode" "$v" "$b")
				if [ "$i1" -lt 0 ] || [ "$i2" -lt 0 ]; then per=NA; else per=$(((i2 - i1) / (b - a))); fi
				echo "$LABEL,$rep,$w,$mode,$v,$per,$a,$b" >>"$CSV"
				log "rep $rep/$REPS $w $mode $v: $per instructions per transaction ($(( $(date +%s) - t0 )) s)"
			done
		done
		# inserted rows go, updated rows' old versions too: the next cells see the same tables
		case $w in
			insert) for t in ${TABLES//,/}; do "${SUPSQL[@]}" -c "DELETE FROM $t WHERE id >= 1000000000000" >/dev/null; done
				"${SUPSQL[@]}" -c "VACUUM $TABLES" >/dev/null ;;
			update) "${SUPSQL[@]}" -c "VACUUM $TABLES" >/dev/null ;;
		esac
		# those backends' profiles must not land in the next cell's count
		wait_children
	done
done
{
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), tree $(git -C "$TOP" describe --always --dirty 2>/dev/null || echo unknown)${LABEL:+ ($LABEL)}, $(nproc) CPUs, $("$PGBIN/postgres" --version)."
	echo
	report
} | tee "$MD"
