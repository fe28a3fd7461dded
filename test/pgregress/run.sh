#!/usr/bin/env bash
# test/pgregress/run.sh: PostgreSQL's own regression suite as a gate (make
# pgregress; a counted suite of make test).
#
# Runs the parallel_schedule of PostgreSQL 15's src/test/regress against a
# throwaway cluster three times:
#
#   stock     the server as installed
#   preload   + shared_preload_libraries = 'tenant_isolation'
#   extension + CREATE EXTENSION tenant_isolation in template1 and in the
#               suite's database (pg_regress --load-extension)
#
# and fails when a server process died by a signal, or when the second or
# third run differs from the stock run in anything but the differences
# listed in test/pgregress/expected_differences (test name, a regex every
# changed line of that test's output must match, and why).  Results are
# compared with the stock run, never with the suite's expected files: the
# suite's version may differ from the server's (below).
#
# The suite comes from Debian's source package of postgresql-15 (a deb-src
# entry for the archive of the installed binaries is added if missing); the
# installed server's version may no longer be downloadable, so the newest
# 15.x that apt-get source can fetch is used.  regress.so is built from it
# against the server's headers, refint.so/autoinc.so from its contrib/spi
# with -DREFINT_VERBOSE, and psql is built from it too unless the installed
# psql has the same minor version (a newer psql behaves differently after a
# rejected COPY FROM STDIN).  Everything downloaded or built is cached in
# $TI_PGREGRESS_CACHE (default /var/cache/tenant_isolation/pgregress).
#
# Run as root (apt-get; clusters run as $TI_USER, default postgres), after
# the extension is installed into the server that $PG_CONFIG names (default
# pg_config; a private prefix works: its bindir and pkglibdir are used).
# Knobs: PGREGRESS_RUNS="stock preload extension", PGREGRESS_MAXCONN (3),
# PGREGRESS_TESTS (a test list instead of the schedule), PGREGRESS_KEEP=1.
# Prints one "ok <run>" / "not ok <run>" line per compared run and per
# crash check, and a summary with timings.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$($PG_CONFIG --bindir) || exit 1
PKGLIBDIR=$($PG_CONFIG --pkglibdir)
INCLUDEDIR_SERVER=$($PG_CONFIG --includedir-server)
# a copied private prefix has no headers: the installed ones are the same major
[ -f "$INCLUDEDIR_SERVER/postgres.h" ] || INCLUDEDIR_SERVER=$(pg_config --includedir-server)
PGREGRESS=$PKGLIBDIR/pgxs/src/test/regress/pg_regress
CACHE=${TI_PGREGRESS_CACHE:-/var/cache/tenant_isolation/pgregress}
RUNS=${PGREGRESS_RUNS:-stock preload extension}
MAXCONN=${PGREGRESS_MAXCONN:-3}
EXPECTED=$TI_TOP/test/pgregress/expected_differences

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*"; }
die() { log "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and runs clusters as $TI_USER)"
[ -x "$BINDIR/postgres" ] || die "no server in $BINDIR"
[ -f "$PKGLIBDIR/tenant_isolation.so" ] || die "tenant_isolation is not installed in $PKGLIBDIR"
[ -x "$PGREGRESS" ] || die "no pg_regress at $PGREGRESS (postgresql-server-dev-15)"

# ---------------------------------------------------------------- sources
fetch_suite() {
	local dir=$CACHE/src v
	mkdir -p "$dir"
	TARBALL=$(ls "$dir"/postgresql-15_15.*.orig.tar.bz2 2>/dev/null | sort -V | tail -1)
	[ -n "$TARBALL" ] && return 0
	if ! grep -rqsE '^Types:.*deb-src|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		[ -f /etc/apt/sources.list.d/debian.sources ] ||
			die "no deb-src entry and no debian.sources to derive one from"
		log "adding a deb-src entry for the archive of the installed packages"
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
			>/etc/apt/sources.list.d/tenant_isolation-src.sources
		apt-get update -qq || die "apt-get update failed"
	fi
	command -v dpkg-source >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null
	# newest first; the installed version's source may be gone from the archive
	for v in $(apt-cache showsrc postgresql-15 | awk '/^Version:/ {print $2}' | sort -rV | uniq); do
		log "apt-get source postgresql-15=$v"
		if (cd "$dir" && apt-get source -qq --download-only "postgresql-15=$v" >/dev/null 2>&1); then
			TARBALL=$(ls "$dir"/postgresql-15_15.*.orig.tar.bz2 2>/dev/null | sort -V | tail -1)
			[ -n "$TARBALL" ] && return 0
		fi
	done
	die "apt-get source could not fetch any postgresql-15 source"
}

setup() {
	fetch_suite
	SUITE_VERSION=$(basename "$TARBALL" | sed -E 's/^postgresql-15_(15\.[0-9]+)\.orig\.tar\.bz2$/\1/')
	SRC=$CACHE/postgresql-$SUITE_VERSION
	REG=$SRC/src/test/regress
	if [ ! -f "$REG/parallel_schedule" ]; then
		log "extracting $TARBALL"
		tar xjf "$TARBALL" -C "$CACHE" || die "cannot extract $TARBALL"
	fi
	# regress.so against the server's headers; refint/autoinc as contrib/spi
	# builds them for the regression tests
	local cc=(gcc -O2 -fPIC -shared -I"$INCLUDEDIR_SERVER")
	[ -f "$REG/regress.so" ] || "${cc[@]}" "$REG/regress.c" -o "$REG/regress.so" ||
		die "cannot build regress.so"
	for m in refint autoinc; do
		[ -f "$REG/$m.so" ] || "${cc[@]}" -DREFINT_VERBOSE "$SRC/contrib/spi/$m.c" -o "$REG/$m.so" ||
			die "cannot build $m.so"
	done
	# a psql of the suite's minor version
	local installed
	installed=$("$BINDIR/psql" --version | awk '{print $3}')
	if [ "$installed" = "$SUITE_VERSION" ]; then
		CLIENT_BIN=$BINDIR
	else
		CLIENT_BIN=$CACHE/psql-$SUITE_VERSION/bin
		if [ ! -x "$CLIENT_BIN/psql" ]; then
			log "building psql $SUITE_VERSION (installed psql is $installed)"
			(cd "$SRC" && ./configure --prefix="$CACHE/psql-$SUITE_VERSION" --without-readline \
				--without-zlib --without-icu --without-openssl --without-gssapi --without-ldap \
				>"$CACHE/configure.log" 2>&1 &&
				make -s -j2 -C src/bin/psql >"$CACHE/make.log" 2>&1 &&
				make -s -C src/bin/psql install >>"$CACHE/make.log" 2>&1 &&
				make -s -C src/interfaces/libpq install >>"$CACHE/make.log" 2>&1) ||
				die "psql build failed: $CACHE/configure.log $CACHE/make.log"
		fi
	fi
	chmod -R a+rX "$CACHE"
}

# ---------------------------------------------------------------- runs
WORK=$(mktemp -d /tmp/tenant_isolation_pgregress.XXXXXX)
chmod 755 "$WORK"
SOCK=$WORK/sock
PORT=$((20000 + RANDOM % 40000))
CURRENT_DATA=
stop_server() {
	local d=$1
	[ -n "$d" ] && [ -f "$d/postmaster.pid" ] || return 0
	ti_as_user "'$BINDIR/pg_ctl' stop -D '$d' -m fast -w -t 60" >/dev/null 2>&1 ||
		ti_as_user "'$BINDIR/pg_ctl' stop -D '$d' -m immediate -w" >/dev/null 2>&1 || true
}
cleanup() {
	stop_server "$CURRENT_DATA"
	if [ "${PGREGRESS_KEEP:-0}" = 1 ] || [ "${FAILED:-0}" = 1 ]; then
		log "kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

run_one() {
	local R=$1 data=$WORK/$1/data out=$WORK/$1/out t0=$SECONDS rc=0
	mkdir -p "$WORK/$R" "$out" "$SOCK"
	chown -R "$TI_USER" "$WORK"
	ti_as_user "'$BINDIR/initdb' -D '$data' -A trust -U postgres -E UTF8 --no-locale" \
		>"$WORK/$R/initdb.log" 2>&1 || { tail -5 "$WORK/$R/initdb.log"; return 1; }
	# what pg_regress --temp-instance would set, and a private socket
	cat >>"$data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
fsync = off
max_prepared_transactions = 2
log_autovacuum_min_duration = 0
log_checkpoints = on
log_line_prefix = '%m %b[%p] %q%a '
log_lock_waits = on
log_temp_files = 128kB
EOF
	[ "$R" = stock ] || echo "shared_preload_libraries = 'tenant_isolation'" >>"$data/postgresql.conf"
	CURRENT_DATA=$data
	ti_as_user "'$BINDIR/pg_ctl' start -D '$data' -l '$WORK/$R/server.log' -w -t 120" >/dev/null ||
		{ tail -20 "$WORK/$R/server.log"; return 1; }
	local extra=
	if [ "$R" = extension ]; then
		# every database the suite creates comes from template1; its own
		# database comes from template0 and gets --load-extension
		ti_as_user "'$BINDIR/psql' -X -q -h '$SOCK' -p $PORT -d template1 -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION tenant_isolation'" ||
			return 1
		extra=--load-extension=tenant_isolation
		# the names @EXT@ stands for in expected_differences
		ti_as_user "'$BINDIR/psql' -X -q -At -h '$SOCK' -p $PORT -d template1 -v ON_ERROR_STOP=1 -c \"SELECT string_agg(name, '|' ORDER BY name) FROM (SELECT p.proname::text AS name FROM pg_proc p WHERE p.pronamespace = 'tenant_isolation'::regnamespace UNION SELECT e.evtname FROM pg_event_trigger e JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = e.oid AND d.deptype = 'e') s\"" \
			>"$WORK/ext_names.txt" || return 1
	fi
	local what="--schedule=$REG/parallel_schedule"
	[ -n "${PGREGRESS_TESTS:-}" ] && what=$PGREGRESS_TESTS
	log "run $R: pg_regress ($what, max-connections $MAXCONN, psql from $CLIENT_BIN)"
	ti_as_user "cd '$out' && '$PGREGRESS' --inputdir='$REG' --outputdir='$out' --bindir='$CLIENT_BIN' \
		--dlpath='$REG' --max-concurrent-tests=20 --max-connections=$MAXCONN \
		--host='$SOCK' --port=$PORT $extra $what" >"$WORK/$R/pg_regress.log" 2>&1 || rc=$?
	stop_server "$data"
	CURRENT_DATA=
	TIME[$R]=$((SECONDS - t0))
	# "test name ... ok|FAILED|failed (ignored)" -> name<TAB>status
	grep -E '^(test | +|ok |not ok )?.*\.\.\. ' "$WORK/$R/pg_regress.log" |
		sed -E 's/^test +//; s/^ +//; s/ +\.\.\. +/\t/; s/ +[0-9]+ ms$//; s/ +$//' >"$WORK/$R/status.tsv"
	SUMMARY[$R]=$(grep -E 'tests (passed|failed)|All [0-9]+ tests' "$WORK/$R/pg_regress.log" | tr -s ' ' | tr '\n' ' ')
	log "run $R: pg_regress exit $rc after ${TIME[$R]}s: ${SUMMARY[$R]}"
	return 0
}

# ---------------------------------------------------------------- compare
# Changed lines of one test's output between two runs, without the diff
# header; empty when identical.
changed_lines() {
	local a=$1 b=$2
	if [ ! -f "$a" ] || [ ! -f "$b" ]; then
		echo "+missing output file"
		return
	fi
	diff -U0 "$a" "$b" | grep -E '^[-+]' | grep -vE '^(\+\+\+|---) '
}

# The allowed-lines regex of a test in expected_differences, or nothing.
allowed_regex() {
	awk -F'\t' -v t="$1" '!/^#/ && $1 == t {print $2}' "$EXPECTED"
}

compare() {
	local R=$1 t st_a st_r lines re bad n_diff=0 n_expected=0 n_bad=0
	: >"$WORK/$R/unexpected.txt"
	while IFS=$'\t' read -r t st_a; do
		st_r=$(awk -F'\t' -v t="$t" '$1 == t {print $2}' "$WORK/$R/status.tsv")
		lines=$(changed_lines "$WORK/stock/out/results/$t.out" "$WORK/$R/out/results/$t.out")
		if [ "$st_a" = "$st_r" ] && [ -z "$lines" ]; then
			continue
		fi
		n_diff=$((n_diff + 1))
		re=$(allowed_regex "$t")
		re=${re//@EXT@/$EXT_NAMES}
		bad=$lines
		if [ -n "$re" ]; then
			bad=$(printf '%s\n' "$lines" | grep -vE -- "$re" || true)
		fi
		if [ -z "$bad" ] && [ -n "$re" ]; then
			n_expected=$((n_expected + 1))
			echo "  expected difference: $t (stock: $st_a, $R: $st_r)"
		else
			n_bad=$((n_bad + 1))
			{
				echo "---- $t (stock: $st_a, $R: ${st_r:-missing})"
				printf '%s\n' "$bad" | head -40
			} >>"$WORK/$R/unexpected.txt"
		fi
	done <"$WORK/stock/status.tsv"
	echo "  $R vs stock: $n_diff tests differ, $n_expected listed as expected, $n_bad unexpected"
	if [ "$n_bad" -gt 0 ]; then
		cat "$WORK/$R/unexpected.txt"
		return 1
	fi
	return 0
}

declare -A TIME SUMMARY
t_setup=$SECONDS
setup
t_setup=$((SECONDS - t_setup))
log "suite: PostgreSQL $SUITE_VERSION regress ($REG); server: $("$BINDIR/postgres" --version); psql: $("$CLIENT_BIN/psql" --version)"

status=0
FAILED=0
case " $RUNS " in *" stock "*) ;; *) RUNS="stock $RUNS" ;; esac
for R in $RUNS; do
	run_one "$R" || { echo "not ok $R: the run could not start"; status=1; }
done

echo "== PostgreSQL regression gate (suite $SUITE_VERSION, tree $(git -C "$TI_TOP" rev-parse --short HEAD 2>/dev/null || echo unknown))"
for R in $RUNS; do
	[ -f "$WORK/$R/status.tsv" ] || continue
	n=$(wc -l <"$WORK/$R/status.tsv")
	nf=$(awk -F'\t' '$2 != "ok"' "$WORK/$R/status.tsv" | wc -l)
	echo "  run $R: $n tests, $nf not ok, ${TIME[$R]}s"
	if grep -qE 'terminated by signal|PANIC' "$WORK/$R/server.log"; then
		echo "not ok $R: a server process died"
		grep -E 'terminated by signal|PANIC' "$WORK/$R/server.log" | head -5
		status=1
	else
		echo "ok $R: no server process died"
	fi
done
[ "$(wc -l <"$WORK/stock/status.tsv" 2>/dev/null || echo 0)" -gt 0 ] ||
	{ echo "not ok stock: no test ran"; status=1; }
EXT_NAMES=$(cat "$WORK/ext_names.txt" 2>/dev/null)
[ -n "$EXT_NAMES" ] || EXT_NAMES=tenant_isolation_no_such_object
for R in $RUNS; do
	[ "$R" = stock ] && continue
	[ -f "$WORK/$R/status.tsv" ] || continue
	if compare "$R"; then
		echo "ok $R: same results as stock but for the listed differences"
	else
		echo "not ok $R: results differ from stock"
		status=1
	fi
done
echo "  setup ${t_setup}s; total $SECONDS s"
[ "$status" = 0 ] || FAILED=1
exit $status
