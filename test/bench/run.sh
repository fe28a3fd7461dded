#!/usr/bin/env bash
# make bench: tenant_isolation against native row level security and the
# hand-written tenant predicate, on a throwaway cluster.  See README.md here.
#
#   BENCH_SIZE=small|full   data size (default small)
#   BENCH_SMOKE=1           CI mode: small data, 1 repetition, 2 s cells, fewer variants
#   BENCH_SECONDS=N         duration of one pgbench cell (5 small, 15 full, 2 smoke)
#   BENCH_REPS=N            interleaved repetitions (3; 1 in smoke mode)
#   BENCH_CLIENTS=N         pgbench -c/-j (2)
#   BENCH_VARIANTS="..."    subset of variants (literal is always run)
#   BENCH_WORKLOADS="..."   subset of workloads
#   BENCH_NO_BUILD=1        use the installed build, do not run make / make install
#   BENCH_KEEP=1            leave the temporary cluster directory behind (stopped)
#   BENCH_OUT=DIR           output directory (test/bench/out)
#   BENCH_TOKEN_TTL=S       lifetime of the minted JWTs (14400 s)
#
# Output: a markdown report on stdout and in $BENCH_OUT/report.md, the chart
# $BENCH_OUT/chart.png, raw results $BENCH_OUT/results.csv, pgbench scripts and
# logs under $BENCH_OUT.  Exit status: 0, or 1 when the ext variant returned
# different rows than the literal variant or a pgbench cell failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
OUT=${BENCH_OUT:-$HERE/out}
SMOKE=${BENCH_SMOKE:-0}
SIZE=${BENCH_SIZE:-small}
[ "$SMOKE" = 1 ] && SIZE=small
case $SIZE in
	small) NTENANTS=100; NROWS=100000; SHBUF=256MB; MWM=256MB; secs_default=5 ;;
	full) NTENANTS=1000; NROWS=3000000; SHBUF=1GB; MWM=512MB; secs_default=15 ;;
	*) echo "BENCH_SIZE must be small or full" >&2; exit 2 ;;
esac
reps_default=3
if [ "$SMOKE" = 1 ]; then secs_default=2; reps_default=1; fi
SECS=${BENCH_SECONDS:-$secs_default}
REPS=${BENCH_REPS:-$reps_default}
CLIENTS=${BENCH_CLIENTS:-2}
PORT=${BENCH_PORT:-55432}
TOP_SHARE=0.10
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)}
PGBIN=$("$PG_CONFIG" --bindir)
IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
RUN_USER=$([ $IS_ROOT = 1 ] && echo postgres || id -un)

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 2; }

# ---------------------------------------------------------------- tools
if ! command -v gnuplot >/dev/null 2>&1; then
	if [ $IS_ROOT = 1 ]; then
		log "installing gnuplot-nox"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 ||
			{ apt-get update -qq && apt-get install -y -qq gnuplot-nox >/dev/null; }
	else
		log "gnuplot missing and not root: no chart"
	fi
fi
command -v openssl >/dev/null || die "openssl is required"
[ -x "$PGBIN/pgbench" ] || die "pgbench not found in $PGBIN"

# ---------------------------------------------------------------- build
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
	if [ $IS_ROOT = 1 ] && [ -f "$TOP/test/scripts/deps.sh" ]; then
		bash "$TOP/test/scripts/deps.sh"
	fi
	make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" >/dev/null
	libdir=$("$PG_CONFIG" --pkglibdir)
	extdir=$("$PG_CONFIG" --sharedir)/extension
	if [ $IS_ROOT = 1 ] || { [ -w "$libdir" ] && [ -w "$extdir" ]; }; then
		make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	elif [ -f "$libdir/tenant_isolation.so" ]; then
		log "cannot write $libdir: benchmarking the build installed there (run as root to install)"
	else
		die "tenant_isolation is not installed and $libdir is not writable: run as root"
	fi
fi

# ---------------------------------------------------------------- cluster
TMPD=$(mktemp -d /tmp/ti_bench.XXXXXX)
chmod 700 "$TMPD"
[ $IS_ROOT = 1 ] && chown "$RUN_USER" "$TMPD"
STARTED=0

as_user() {
	if [ $IS_ROOT = 1 ]; then
		runuser -u "$RUN_USER" -- "$@"
	else
		"$@"
	fi
}

cleanup() {
	local rc=$?
	if [ $STARTED = 1 ]; then
		as_user "$PGBIN/pg_ctl" -D "$TMPD/data" -m fast -w stop >/dev/null 2>&1 ||
			as_user "$PGBIN/pg_ctl" -D "$TMPD/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		log "kept $TMPD"
	else
		rm -rf "$TMPD"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT"
rm -rf "$OUT/scripts" "$OUT/logs"
mkdir -p "$OUT/scripts" "$OUT/logs"

log "initdb in $TMPD (size $SIZE: $NTENANTS tenants, $NROWS rows)"
as_user mkdir "$TMPD/sock"
as_user "$PGBIN/initdb" -D "$TMPD/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_user tee -a "$TMPD/data/postgresql.conf" >/dev/null <<EOF
# tenant_isolation benchmark (test/bench/run.sh)
shared_preload_libraries = 'tenant_isolation'
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMPD/sock'
max_connections = 20
shared_buffers = $SHBUF
maintenance_work_mem = $MWM
max_wal_size = 8GB
checkpoint_timeout = 30min
synchronous_commit = off
EOF
as_user "$PGBIN/pg_ctl" -D "$TMPD/data" -l "$TMPD/postgres.log" -w -t 120 start >/dev/null ||
	{ cat "$TMPD/postgres.log" >&2; die "cluster did not start"; }
STARTED=1

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$TMPD/sock" -p "$PORT")
su_psql() { "${PSQL[@]}" -U postgres -d bench "$@"; }
role_psql() { local r=$1; shift; "${PSQL[@]}" -U "$r" -d bench "$@"; }
"${PSQL[@]}" -U postgres -d postgres -c "CREATE DATABASE bench"

SECRET=$(openssl rand -hex 32)
log "building data"
t0=$(date +%s)
su_psql -v ntenants="$NTENANTS" -v nrows="$NROWS" -v top_share="$TOP_SHARE" \
	-v jwt_secret="$SECRET" -f "$HERE/setup.sql"
log "data built in $(( $(date +%s) - t0 )) s"

HAS_LOGIN=$(su_psql -Atc "SELECT to_regprocedure('tenant_isolation.login_local(text)') IS NOT NULL")
if [ "$HAS_LOGIN" = t ]; then EXT_VARIANTS="ext_login ext_assume"; else EXT_VARIANTS="ext_assume"; fi
if [ -n "${BENCH_VARIANTS:-}" ]; then
	VARIANTS="literal $(echo " $BENCH_VARIANTS " | sed 's/ literal / /g')"
elif [ "$SMOKE" = 1 ]; then
	VARIANTS="literal rls_setting ${EXT_VARIANTS%% *}"
else
	VARIANTS="literal literal_set rls_setting rls_json rls_select $EXT_VARIANTS"
fi
ALL_WORKLOADS="point last50 agg_mid agg_big jsonb like join update unprotected insert"
WORKLOADS=${BENCH_WORKLOADS:-$ALL_WORKLOADS}
EXT_MAIN=${EXT_VARIANTS%% *}

# ---------------------------------------------------------------- tenants
declare -A TID NROWS_OF
while IFS='|' read -r rank id n; do
	TID[$rank]=$id
	NROWS_OF[$rank]=$n
done < <(su_psql -Atc "SELECT rank, id, nrows FROM bench_tenant ORDER BY rank")
BIG=1
MID=$(su_psql -Atc "SELECT rank FROM bench_tenant WHERE rank > 1
                    ORDER BY abs(nrows - $NROWS / 100), rank LIMIT 1")
# The tenants of the random-tenant workloads: log-spaced ranks, from the
# biggest to the smallest, each chosen with the same probability.
MIX=""
for r in 1 2 3 4 6 8 11 16 22 32 45 64 90 128 181 256 362 512 724 1000; do
	[ "$r" -lt "$NTENANTS" ] && MIX="$MIX $r"
done
MIX="$MIX $NTENANTS"
JSONB_KS="17 101 233 389 431 577 719 863"
read -r ZIPF_S BIG_SHARE < <(su_psql -AtF' ' -c "SELECT round(zipf_s::numeric, 3),
       (SELECT round(100.0 * max(nrows) / sum(nrows), 1) FROM bench_tenant) FROM bench_meta")
log "biggest tenant ${NROWS_OF[$BIG]} rows ($BIG_SHARE%), mid tenant rank $MID ${NROWS_OF[$MID]} rows, smallest ${NROWS_OF[$NTENANTS]} rows"

# ---------------------------------------------------------------- tokens
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
TOKEN_EXP=$(( $(date +%s) + ${BENCH_TOKEN_TTL:-14400} ))
mint() {
	local claims=$1 h p s
	h=$(printf '%s' '{"alg":"HS256","typ":"JWT","kid":"bench"}' | b64url)
	p=$(printf '%s' "$claims" | b64url)
	s=$(printf '%s' "$h.$p" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)
	printf '%s.%s.%s' "$h" "$p" "$s"
}
declare -A TOK
if [ "$HAS_LOGIN" = t ]; then
	for r in $MIX $MID; do
		[ -n "${TOK[$r]:-}" ] && continue
		TOK[$r]=$(mint "$(printf '{"tenant_id":"%s","sub":"bench","exp":%d}' "${TID[$r]}" "$TOKEN_EXP")")
	done
fi

# ---------------------------------------------------------------- scripts
table_of() {
	case $1 in
		literal|literal_set) echo events_literal ;;
		ext_*) echo events_ext ;;
		*) echo "events_$1" ;;
	esac
}
# items_of VARIANT: the second table of the join workload
items_of() { local t; t=$(table_of "$1"); echo "items_${t#events_}"; }
role_of() { [ "$1" = ext_assume ] && echo bench_admin || echo bench; }

# ctx_stmt VARIANT RANK SESSION: the statement that sets the tenant context
ctx_stmt() {
	local v=$1 u=${TID[$2]} session=${3:-0}
	case $v in
		literal) ;;
		literal_set|rls_setting|rls_select) echo "SET LOCAL app.tenant_id = '$u';" ;;
		rls_json) echo "SELECT set_config('request.jwt.claims', '{\"tenant_id\":\"$u\",\"sub\":\"bench\"}', true);" ;;
		ext_login)
			if [ "$session" = 1 ]; then
				echo "SELECT tenant_isolation.login('${TOK[$2]}');"
			else
				echo "SELECT tenant_isolation.login_local('${TOK[$2]}');"
			fi ;;
		ext_assume) echo "SELECT tenant_isolation.assume_tenant('$u', 'bench');" ;;
	esac
}

# where VARIANT RANK [COND]: the WHERE clause of a read
where() {
	local v=$1 u=${TID[$2]} cond=${3:-} w=""
	case $v in literal|literal_set) w="tenant_id = '$u'" ;; esac
	if [ -n "$cond" ]; then w="${w:+$w AND }$cond"; fi
	[ -n "$w" ] && echo "WHERE $w"
	return 0
}

# query WORKLOAD VARIANT RANK [K]: the SQL of a workload (pgbench variables allowed)
query() {
	local w=$1 v=$2 r=$3 k=${4:-} t
	t=$(table_of "$v")
	case $w in
		point) echo "SELECT tenant_id, id, created_at, kind, payload, amount FROM $t $(where "$v" "$r" "id = :id");" ;;
		last50) echo "SELECT id, created_at, kind, amount FROM $t $(where "$v" "$r") ORDER BY created_at DESC LIMIT 50;" ;;
		agg_mid|agg_big) echo "SELECT kind, count(*), sum(amount) FROM $t $(where "$v" "$r") GROUP BY kind;" ;;
		jsonb) echo "SELECT count(*), sum(amount) FROM $t $(where "$v" "$r" "payload @> '{\"k\": $k}'");" ;;
		like) echo "SELECT count(*), sum(amount) FROM $t $(where "$v" "$r" "kind LIKE 'refund.%'");" ;;
		join)
			local tw=""
			case $v in literal|literal_set) tw="e.tenant_id = '${TID[$r]}' AND " ;; esac
			echo "SELECT e.id, e.kind, e.amount, i.line, i.sku, i.qty FROM $t e JOIN $(items_of "$v") i ON i.tenant_id = e.tenant_id AND i.event_id = e.id WHERE ${tw}e.id BETWEEN :id AND :id + 7 ORDER BY e.id, i.line;" ;;
		update) echo "UPDATE $t SET amount = amount + 1 $(where "$v" "$r" "id = :id");" ;;
		insert) echo "INSERT INTO $t (tenant_id, id, created_at, kind, payload, amount) VALUES ('${TID[$r]}', nextval('bench_ins_seq'), '2000-01-01', 'bench.insert', '{\"k\": -1}', 1.00);" ;;
		unprotected) echo "SELECT tenant_id, id, created_at, kind, payload, amount FROM events_literal WHERE tenant_id = '${TID[$r]}' AND id = :id;" ;;
	esac
}

# write_script FILE WORKLOAD VARIANT RANK [K]
write_script() {
	local f=$1 w=$2 v=$3 r=$4 k=${5:-} ctx
	{
		case $w in point|unprotected|join|update) echo "\\set id random(1, ${NROWS_OF[$r]})" ;; esac
		if [ "$w" = unprotected ]; then
			# the context is set once per session; the query is literal's
			if [ "$v" != literal ]; then
				echo "\\if :ctx = 0"
				ctx_stmt "$v" "$MID" 1
				echo "\\set ctx 1"
				echo "\\endif"
			fi
			query "$w" "$v" "$r"
		else
			ctx=$(ctx_stmt "$v" "$r")
			if [ -n "$ctx" ]; then
				echo "BEGIN;"
				echo "$ctx"
				query "$w" "$v" "$r" "$k"
				echo "COMMIT;"
			else
				query "$w" "$v" "$r" "$k"
			fi
		fi
	} >"$f"
}

variants_for() {
	local w=$1 v out=""
	for v in $VARIANTS; do
		if [ "$w" = unprotected ]; then
			case $v in literal|ext_*) out="$out $v" ;; esac
		else
			out="$out $v"
		fi
	done
	echo $out
}

declare -A SCRIPTS
for w in $WORKLOADS; do
	for v in $(variants_for "$w"); do
		args=""
		case $w in
			point|last50|insert|unprotected|join|update)
				for r in $MIX; do
					f="$OUT/scripts/$w.$v.t$r.sql"
					write_script "$f" "$w" "$v" "$r"
					args="$args -f $f@1"
				done ;;
			agg_mid)
				f="$OUT/scripts/$w.$v.sql"; write_script "$f" "$w" "$v" "$MID"; args="-f $f" ;;
			agg_big|like)
				f="$OUT/scripts/$w.$v.sql"; write_script "$f" "$w" "$v" "$BIG"; args="-f $f" ;;
			jsonb)
				for k in $JSONB_KS; do
					f="$OUT/scripts/$w.$v.k$k.sql"
					write_script "$f" "$w" "$v" "$BIG" "$k"
					args="$args -f $f@1"
				done ;;
		esac
		SCRIPTS[$w.$v]=$args
	done
done

# ---------------------------------------------------------------- correctness
# Every read workload, for a few tenants, in every variant: md5 of the
# ordered result, compared with the literal variant's.
log "correctness check"
CHECK_RANKS="$BIG $MID $NTENANTS $(echo $MIX | awk '{print $3, $(NF-2)}')"
check_sql() {
	local v=$1 r q label n i k
	for r in $CHECK_RANKS; do
		n=${NROWS_OF[$r]}
		while IFS='|' read -r label q; do
			ctx=$(ctx_stmt "$v" "$r")
			# rolled back: the update check changes nothing
			echo "BEGIN;"
			if [ -n "$ctx" ]; then echo "${ctx%;} \\g /dev/null"; fi
			case $q in
				UPDATE*) echo "WITH x AS (${q%;} RETURNING tenant_id, id, amount) SELECT '$label t$r', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM x;" ;;
				*) echo "SELECT '$label t$r', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM (${q%;}) x;" ;;
			esac
			echo "ROLLBACK;"
		done < <(
			for i in 1 $(( n / 2 + 1 )) $n $(( n + 1 )); do echo "point id=$i|$(query point "$v" "$r" | sed "s/:id/$i/")"; done
			echo "last50|$(query last50 "$v" "$r")"
			echo "agg|$(query agg_big "$v" "$r")"
			for k in $JSONB_KS; do echo "jsonb k=$k|$(query jsonb "$v" "$r" "$k")"; done
			echo "like|$(query like "$v" "$r")"
			for i in 1 $(( n / 2 )) $(( n - 3 )) $(( n + 1 )); do echo "join id=$i|$(query join "$v" "$r" | sed "s/:id/$i/g")"; done
			for i in 1 $n $(( n + 1 )); do echo "update id=$i|$(query update "$v" "$r" | sed "s/:id/$i/")"; done
			# an unprotected table read under this tenant's context, another tenant's rows
			echo "unprotected|$(query unprotected "$v" "$MID" | sed "s/:id/1/")"
		)
	done
}
CHECK_FAILED=0
check_sql literal >"$OUT/check.literal.sql"
role_psql bench -At -F' ' -f "$OUT/check.literal.sql" >"$OUT/check.literal.out"
for v in $VARIANTS; do
	[ "$v" = literal ] && continue
	check_sql "$v" >"$OUT/check.$v.sql"
	if ! role_psql "$(role_of "$v")" -At -F' ' -f "$OUT/check.$v.sql" >"$OUT/check.$v.out" 2>"$OUT/check.$v.err"; then
		log "correctness check of $v failed to run:"; cat "$OUT/check.$v.err" >&2
		CHECK_FAILED=1
	elif ! diff -u "$OUT/check.literal.out" "$OUT/check.$v.out" >"$OUT/check.$v.diff"; then
		log "MISMATCH: $v returns other rows than literal:"; cat "$OUT/check.$v.diff" >&2
		CHECK_FAILED=1
	fi
done
NCHECKS=$(wc -l <"$OUT/check.literal.out")
NONEMPTY=$(awk '$(NF-1) > 0' "$OUT/check.literal.out" | wc -l)
if [ $CHECK_FAILED = 0 ]; then
	CHECK_RESULT="all $NCHECKS result sets of every variant equal the literal variant's ($NONEMPTY of them non-empty)"
else
	CHECK_RESULT="**MISMATCH** (see check.*.diff)"
fi
log "correctness: $CHECK_RESULT"
if [ $CHECK_FAILED = 1 ] && [ "$SMOKE" = 1 ]; then
	exit 1
fi

# ---------------------------------------------------------------- plans
explain_block() {
	local w=$1 v=$2 ctx
	ctx=$(ctx_stmt "$v" "$BIG")
	{
		echo "\\pset format unaligned"
		echo "\\pset tuples_only on"
		if [ -n "$ctx" ]; then echo "BEGIN;"; echo "${ctx%;} \\g /dev/null"; fi
		echo "EXPLAIN (COSTS OFF) $(query "$w" "$v" "$BIG" 17 | sed 's/:id/1/g')"
		if [ -n "$ctx" ]; then echo "COMMIT;"; fi
	} | role_psql "$(role_of "$v")" -f -
}
PLANS=""
for w in jsonb like agg_big join; do
	for v in literal rls_setting $EXT_MAIN; do
		PLANS+="#### $w, $v"$'\n'"\`\`\`"$'\n'"$(query "$w" "$v" "$BIG" 17)"$'\n\n'"$(explain_block "$w" "$v")"$'\n'"\`\`\`"$'\n'
	done
done

# ---------------------------------------------------------------- login cost
LOGIN_COST=""
if [ "$HAS_LOGIN" = t ]; then
	log "login cost"
	r2=$(echo $MIX | awk '{print $2}')
	su_psql -v secret="$SECRET" -v tenant="${TID[$MID]}" -v exp="$TOKEN_EXP" <<'EOF'
CREATE FUNCTION pg_temp.b64url(t text) RETURNS text LANGUAGE sql
	AS $$ SELECT translate(encode(convert_to(t, 'UTF8'), 'base64'), E'+/=\n', '-_') $$;
CREATE TABLE bench_token AS
SELECT pass, i, h || '.' || p || '.' ||
	   translate(encode(hmac(h || '.' || p, :'secret', 'sha256'), 'base64'), E'+/=\n', '-_') AS tok
  FROM generate_series(1, 3) pass, generate_series(1, 3000) i,
	   LATERAL (SELECT pg_temp.b64url('{"alg":"HS256","typ":"JWT","kid":"bench"}') AS h,
					   pg_temp.b64url(format('{"tenant_id":"%s","sub":"bench","exp":%s,"jti":"p%s-%s"}',
											 :'tenant', :'exp', pass, i)) AS p) x;
GRANT SELECT ON bench_token TO bench;
EOF
	# the SQL-minted tokens follow the same recipe as the openssl-minted ones
	sqltok=$(su_psql -Atc "SELECT tok FROM bench_token WHERE pass = 1 AND i = 1")
	ssltok=$(mint "$(printf '{"tenant_id":"%s","sub":"bench","exp":%d,"jti":"p1-1"}' "${TID[$MID]}" "$TOKEN_EXP")")
	[ "$sqltok" = "$ssltok" ] || die "SQL-minted token differs from the openssl-minted one"
	cost_out=$(role_psql bench -v tok_a="${TOK[$MID]}" -v tok_b="${TOK[$r2]}" 2>&1 <<'EOF'
SELECT set_config('bench.tok_a', :'tok_a', false), set_config('bench.tok_b', :'tok_b', false) \g /dev/null
DO $$
DECLARE
	tok_a text := current_setting('bench.tok_a');
	tok_b text := current_setting('bench.tok_b');
	toks text[];
	t text;
	n int := 20000;
	t0 timestamptz;
	base float8;
	x float8;
BEGIN
	FOR np IN 1..3 LOOP
		t0 := clock_timestamp();
		FOR i IN 1..n LOOP PERFORM length(tok_a); END LOOP;
		base := extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
		t0 := clock_timestamp();
		FOR i IN 1..n LOOP PERFORM tenant_isolation.login_local(tok_a); END LOOP;
		x := extract(epoch FROM clock_timestamp() - t0) * 1e6 / n - base;
		RAISE NOTICE 'cost|login_local, cached token, same tenant|%', round(x::numeric, 2);

		t0 := clock_timestamp();
		FOR i IN 1..n / 2 LOOP
			PERFORM tenant_isolation.login_local(tok_a);
			PERFORM tenant_isolation.login_local(tok_b);
		END LOOP;
		x := extract(epoch FROM clock_timestamp() - t0) * 1e6 / n - base;
		RAISE NOTICE 'cost|login_local, cached tokens, alternating two tenants|%', round(x::numeric, 2);

		SELECT array_agg(b.tok ORDER BY b.i) INTO toks FROM bench_token b WHERE b.pass = np;
		t0 := clock_timestamp();
		FOREACH t IN ARRAY toks LOOP PERFORM length(t); END LOOP;
		base := extract(epoch FROM clock_timestamp() - t0) * 1e6 / cardinality(toks);
		t0 := clock_timestamp();
		FOREACH t IN ARRAY toks LOOP PERFORM tenant_isolation.login_local(t); END LOOP;
		x := extract(epoch FROM clock_timestamp() - t0) * 1e6 / cardinality(toks) - base;
		RAISE NOTICE 'cost|login_local, uncached (distinct jti per call)|%', round(x::numeric, 2);
	END LOOP;
END
$$;
EOF
) || die "login cost: $cost_out"
	cost_out2=$(role_psql bench_admin -v tenant="${TID[$MID]}" 2>&1 <<'EOF'
SELECT set_config('bench.tenant', :'tenant', false) \g /dev/null
DO $$
DECLARE
	u uuid := current_setting('bench.tenant')::uuid;
	n int := 20000;
	t0 timestamptz;
	base float8;
	x float8;
BEGIN
	FOR np IN 1..3 LOOP
		t0 := clock_timestamp();
		FOR i IN 1..n LOOP PERFORM length(u::text); END LOOP;
		base := extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
		t0 := clock_timestamp();
		FOR i IN 1..n LOOP PERFORM tenant_isolation.assume_tenant(u, 'bench'); END LOOP;
		x := extract(epoch FROM clock_timestamp() - t0) * 1e6 / n - base;
		RAISE NOTICE 'cost|assume_tenant, same tenant|%', round(x::numeric, 2);
	END LOOP;
END
$$;
EOF
) || die "assume cost: $cost_out2"
	LOGIN_COST=$(printf '%s\n%s\n' "$cost_out" "$cost_out2" | grep -o 'cost|.*' | awk -F'|' '
		{ v[$2] = v[$2] " " $3; order[$2] = order[$2] ? order[$2] : ++n; name[n] = $2 }
		END {
			print "| call | µs per call, median of 3 passes | passes |"
			print "|---|---|---|"
			for (i = 1; i <= n; i++) {
				k = split(substr(v[name[i]], 2), a, " ")
				# median of 3
				for (x = 1; x <= k; x++) for (y = x + 1; y <= k; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
				printf "| %s | %.2f | %s |\n", name[i], a[int((k + 1) / 2)], substr(v[name[i]], 2)
			}
		}')
fi

# ---------------------------------------------------------------- cells
ncells=0
for w in $WORKLOADS; do for v in $(variants_for "$w"); do ncells=$((ncells + 2)); done; done
log "$ncells cells x $REPS repetitions x ${SECS}s: about $(( ncells * REPS * (SECS + 1) / 60 + 1 )) min"
RESULTS="$OUT/results.csv"
: >"$RESULTS"
CELL_FAILED=0

rotate() { # rotate N WORDS...: the words, rotated left by N
	local n=$1; shift
	local a=("$@") k=${#a[@]} i
	for ((i = 0; i < k; i++)); do echo -n "${a[$(((i + n) % k))]} "; done
}

run_cell() {
	local rep=$1 w=$2 mode=$3 v=$4 lg tps ok=t
	lg="$OUT/logs/r$rep.$w.$mode.$v.log"
	# shellcheck disable=SC2086
	if ! "$PGBIN/pgbench" -n -h "$TMPD/sock" -p "$PORT" -U "$(role_of "$v")" \
		-c "$CLIENTS" -j "$CLIENTS" -T "$SECS" -M "$mode" -D ctx=0 \
		${SCRIPTS[$w.$v]} bench >"$lg" 2>&1; then
		ok=f
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$lg" | head -1)
	if [ -z "$tps" ] || grep -q 'aborted\|^number of failed transactions: [1-9]' "$lg"; then
		ok=f
	fi
	if [ $ok = f ]; then
		CELL_FAILED=1
		log "FAILED: $w $mode $v (see $lg):"
		grep -m3 -i 'error\|abort' "$lg" >&2 || true
		tps=0
	fi
	echo "$rep,$w,$mode,$v,$tps,$ok" >>"$RESULTS"
	printf 'bench: rep %d/%d %-11s %-8s %-11s %10.1f tps\n' "$rep" "$REPS" "$w" "$mode" "$v" "$tps" >&2
}

insert_cleanup() {
	su_psql -c "DELETE FROM events_literal WHERE id >= 1000000000000" \
		-c "DELETE FROM events_rls_setting WHERE id >= 1000000000000" \
		-c "DELETE FROM events_rls_json WHERE id >= 1000000000000" \
		-c "DELETE FROM events_rls_select WHERE id >= 1000000000000" \
		-c "DELETE FROM events_ext WHERE id >= 1000000000000" \
		-c "VACUUM events_literal, events_rls_setting, events_rls_json, events_rls_select, events_ext"
}

for ((rep = 1; rep <= REPS; rep++)); do
	for w in $WORKLOADS; do
		for mode in simple prepared; do
			# shellcheck disable=SC2046
			for v in $(rotate "$rep" $(variants_for "$w")); do
				run_cell "$rep" "$w" "$mode" "$v"
			done
		done
		[ "$w" = insert ] && insert_cleanup
		[ "$w" = update ] && su_psql -c "VACUUM events_literal, events_rls_setting, events_rls_json, events_rls_select, events_ext"
	done
done

# ---------------------------------------------------------------- report
# median and range of the per-repetition ratio to literal (and to literal_set)
stats() { # stats BASE: workload mode variant median min max n
	su_psql -AtF' ' -c "CREATE TEMP TABLE r (rep int, workload text, mode text, variant text, tps float8, ok bool)" \
		-c "\\copy r FROM '$RESULTS' CSV" -c "
SELECT x.workload, x.mode, x.variant,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.tps / b.tps)::numeric, 3),
	   round(min(x.tps / b.tps)::numeric, 3), round(max(x.tps / b.tps)::numeric, 3), count(*)
  FROM r x JOIN r b ON b.rep = x.rep AND b.workload = x.workload AND b.mode = x.mode
				   AND b.variant = '$1' AND b.ok AND b.tps > 0
 WHERE x.ok
 GROUP BY 1, 2, 3
UNION ALL
SELECT workload, mode, 'tps:' || variant, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY tps)::numeric, 0), 0, 0, count(*)
  FROM r WHERE ok GROUP BY 1, 2, 3"
}
declare -A MED LO HI MED2
while read -r w m v med lo hi n; do
	MED[$w.$m.$v]=$med; LO[$w.$m.$v]=$lo; HI[$w.$m.$v]=$hi
done < <(stats literal)
if [[ " $VARIANTS " == *" literal_set "* ]]; then
	while read -r w m v med lo hi n; do MED2[$w.$m.$v]=$med; done < <(stats literal_set)
fi

declare -A WDESC=(
	[point]="point lookup by id"
	[last50]="last 50 by created_at"
	[agg_mid]="aggregate, mid tenant"
	[agg_big]="aggregate, biggest tenant"
	[jsonb]="jsonb \`payload @> …\` (GIN)"
	[like]="\`kind LIKE 'refund.%'\`"
	[join]="join events ⋈ items, 8 ids"
	[update]="update by key"
	[unprotected]="unprotected table, point lookup"
	[insert]="single-row insert"
)
fmt() { # fmt KEY: "median [min–max]" or –
	if [ -n "${MED[$1]:-}" ]; then
		if [ "$REPS" -gt 1 ]; then printf '%s [%s–%s]' "${MED[$1]}" "${LO[$1]}" "${HI[$1]}"; else printf '%s' "${MED[$1]}"; fi
	else
		printf 'n/a'
	fi
}
main_table() {
	local w m v hdr="| workload | mode | literal tps |" sep="|---|---|---:|"
	for v in $VARIANTS; do [ "$v" = literal ] && continue; hdr="$hdr $v |"; sep="$sep---|"; done
	echo "$hdr"; echo "$sep"
	for w in $WORKLOADS; do
		for m in simple prepared; do
			local line="| ${WDESC[$w]} | $m | ${MED[$w.$m.tps:literal]:-?} |"
			for v in $VARIANTS; do
				[ "$v" = literal ] && continue
				line="$line $(fmt "$w.$m.$v") |"
			done
			echo "$line"
		done
	done
}
set_table() {
	local w m v hdr="| workload | mode |" sep="|---|---|"
	for v in $VARIANTS; do case $v in literal|literal_set) ;; *) hdr="$hdr $v |"; sep="$sep---|" ;; esac; done
	echo "$hdr"; echo "$sep"
	for w in $WORKLOADS; do
		[ "$w" = unprotected ] && continue
		for m in simple prepared; do
			local line="| ${WDESC[$w]} | $m |"
			for v in $VARIANTS; do
				case $v in literal|literal_set) continue ;; esac
				line="$line ${MED2[$w.$m.$v]:-n/a} |"
			done
			echo "$line"
		done
	done
}
targets() {
	local w m v x thr miss=0
	for w in $WORKLOADS; do
		thr=0.97; [ "$w" = unprotected ] && thr=0.99
		for m in simple prepared; do
			for v in $EXT_VARIANTS; do
				x=${MED[$w.$m.$v]:-}
				[ -z "$x" ] && continue
				if awk -v x="$x" -v t="$thr" 'BEGIN { exit !(x < t) }'; then
					echo "- $w ($m) $v: $x < $thr"; miss=1
				fi
			done
		done
	done
	for w in jsonb like; do
		case $w in jsonb) cond='payload @>' ;; like) cond='kind ~>=~' ;; esac
		if ! printf '%s' "$PLANS" | awk -v h="#### $w, $EXT_MAIN" '$0 == h { on = 1; next } /^####/ { on = 0 } on' |
			grep -q "Index Cond: .*$cond"; then
			echo "- $w: the $EXT_MAIN plan does not use an index for \`$cond\` (the condition is a filter)"; miss=1
		fi
	done
	[ $miss = 0 ] && echo "- none"
	return 0
}

git_rev=$(git -C "$TOP" describe --always --dirty 2>/dev/null || echo unknown)
pg_version=$(su_psql -Atc "SHOW server_version")
{
	echo "# tenant_isolation benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), tree $git_rev, PostgreSQL $pg_version, $(nproc) CPUs."
	echo "Size **$SIZE**$([ "$SMOKE" = 1 ] && echo ' (smoke)'): $NTENANTS tenants, $NROWS rows, Zipf-like sizes (exponent $ZIPF_S; biggest tenant"
	echo "${NROWS_OF[$BIG]} rows = $BIG_SHARE%, mid tenant rank $MID ${NROWS_OF[$MID]} rows, smallest ${NROWS_OF[$NTENANTS]})."
	echo "pgbench -c $CLIENTS -j $CLIENTS, ${SECS} s cells, $REPS interleaved repetition(s), shared_buffers $SHBUF, synchronous_commit off."
	echo
	echo "## Throughput relative to \`literal\`"
	echo
	echo "Ratio of transactions per second to the \`literal\` variant in the same repetition$([ "$REPS" -gt 1 ] && echo '; median [min–max] over the repetitions')."
	echo "Every transaction of a non-literal variant also sets the tenant context (BEGIN; context"
	echo "statement; query; COMMIT), \`literal\` runs the bare query: see \`literal_set\` for what the"
	echo "extra statements alone cost. On the unprotected table the context is set once per session."
	echo
	main_table
	if [[ " $VARIANTS " == *" literal_set "* ]]; then
		echo
		echo "## Relative to \`literal_set\` (same transaction shape: BEGIN; SET LOCAL; query; COMMIT)"
		echo
		set_table
	fi
	echo
	echo "## Targets missed (ratio ≥ 0.97, ≥ 0.99 on the unprotected table, index use for jsonb/LIKE)"
	echo
	targets
	echo
	echo "## Correctness"
	echo
	echo "$CHECK_RESULT."
	if [ -n "$LOGIN_COST" ]; then
		echo
		echo "## Login cost (HS256, plpgsql loop, loop overhead subtracted)"
		echo
		echo "$LOGIN_COST"
	fi
	echo
	echo "## Plans (biggest tenant, k = 17)"
	echo
	echo "$PLANS"
	if [ $CELL_FAILED = 1 ]; then
		echo
		echo "**Some pgbench cells failed** (ratio missing): see $OUT/logs."
	fi
} >"$OUT/report.md"

# ---------------------------------------------------------------- chart
if command -v gnuplot >/dev/null 2>&1; then
	CV=""
	for v in $VARIANTS; do [ "$v" != literal ] && CV="$CV $v"; done
	for m in simple prepared; do
		{
			printf 'workload'
			for v in $CV; do printf ' %s lo hi' "$v"; done
			echo
			for w in $WORKLOADS; do
				printf '%s' "$w"
				for v in $CV; do
					if [ -n "${MED[$w.$m.$v]:-}" ]; then
						printf ' %s %s %s' "${MED[$w.$m.$v]}" "${LO[$w.$m.$v]}" "${HI[$w.$m.$v]}"
					else
						printf ' ? ? ?'
					fi
				done
				echo
			done
		} >"$OUT/chart.$m.dat"
	done
	bash "$HERE/chart.sh" "$OUT" "tenant_isolation benchmark: $SIZE, $NTENANTS tenants, $NROWS rows, median and min-max of $REPS repetitions" \
		2>"$OUT/gnuplot.err" || log "gnuplot failed: $(cat "$OUT/gnuplot.err")"
fi

cat "$OUT/report.md"
[ -f "$OUT/chart.png" ] && log "chart: $OUT/chart.png"
log "report: $OUT/report.md"
if [ $CHECK_FAILED = 1 ] || [ $CELL_FAILED = 1 ]; then
	exit 1
fi
exit 0
