#!/usr/bin/env bash
# test/hardening/sanitize.sh MODE: the regress suites against an instrumented
# build of the extension.  MODE is one of
#
#   ubsan     COPT="-fsanitize=undefined -fno-sanitize-recover=all
#             -static-libubsan" (the runtime linked into the module, so it
#             loads into Debian's uninstrumented postgres); make tempcheck;
#             fails on any UBSan report in the server log.
#   asserts   COPT=-DUSE_ASSERT_CHECKING: the extension's own Assert()s are
#             compiled in (Debian's server is built without cassert, so they
#             are not otherwise); make tempcheck.
#   valgrind  a cluster started by hand under valgrind --trace-children=yes
#             with test/hardening/valgrind.supp; make installcheck against
#             it; fails on any valgrind error with a tenant_isolation.so
#             frame.  Suites: VALGRIND_REGRESS (default: the same list; a reduced
#             list must keep init and the suites whose fixtures later ones use).
#
# Run as root (like make test) or as a user with sudo: the instrumented
# module is built in a private copy of the tree owned by $TI_USER, installed
# into the PostgreSQL of $PG_CONFIG, and the ordinary build is installed
# again at the end, whatever the outcome.  HARDEN_REGRESS overrides the
# suite list of ubsan and asserts (default: the Makefile's REGRESS, passed
# by make).  HARDEN_KEEP=1 keeps the work directory.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

mode=${1:?usage: sanitize.sh ubsan|asserts|valgrind}
export PG_CONFIG=${PG_CONFIG:-pg_config}
regress=${HARDEN_REGRESS:-$(make -s -C "$TI_TOP" -f - print-regress <<'EOF' 2>/dev/null
include Makefile
print-regress:
	@echo $(REGRESS)
EOF
)}
vg_regress=${VALGRIND_REGRESS:-$regress}
BIN=$($PG_CONFIG --bindir)

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

bash "$TI_TOP/test/scripts/deps.sh" || exit 1
work=$(ti_workdir)
server_started=0
vgdir=

finish() {
	local rc=$?
	if [ "$server_started" = 1 ]; then
		ti_as_user "'$BIN/pg_ctl' -D '$vgdir/data' -m fast -w -t 300 stop" >/dev/null 2>&1 || true
	fi
	if [ -n "$vgdir" ] && [ "${HARDEN_KEEP:-0}" != 1 ]; then
		rm -rf "$vgdir"
	fi
	echo "== reinstalling the ordinary build"
	make -s -C "$TI_TOP" PG_CONFIG="$PG_CONFIG" >/dev/null &&
		as_root make -s -C "$TI_TOP" PG_CONFIG="$PG_CONFIG" install >/dev/null ||
		echo "WARNING: reinstalling the ordinary build failed" >&2
	if [ "${HARDEN_KEEP:-0}" = 1 ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	exit $rc
}
trap finish EXIT

# build_variant COPT: build and install the instrumented module.
build_variant() {
	echo "== building with COPT=$1"
	ti_as_user "cd '$work' && make -s clean PG_CONFIG='$PG_CONFIG' && make -s PG_CONFIG='$PG_CONFIG' COPT='$1'" ||
		{ echo "build failed" >&2; exit 1; }
	as_root make -s -C "$work" PG_CONFIG="$PG_CONFIG" install >/dev/null ||
		{ echo "install failed" >&2; exit 1; }
}

# check_loadable: every undefined symbol of the module must come from the
# server or a library it links; a leftover (an Assert helper that only a
# cassert server has, a sanitizer runtime symbol) would make dlopen fail.
check_loadable() {
	local so=$work/tenant_isolation.so missing lib
	nm -D --undefined-only "$so" | awk '$1 == "U" {print $2}' | sed 's/@.*//' | sort -u >"$work/undef.txt"
	{
		nm -D --defined-only "$BIN/postgres"
		for lib in $(ldd "$so" | awk '/=>/ {print $3}'); do
			nm -D --defined-only "$lib" 2>/dev/null
		done
	} | awk '{print $3}' | sed 's/@.*//' | sort -u >"$work/defined.txt"
	missing=$(comm -23 "$work/undef.txt" "$work/defined.txt")
	if [ -n "$missing" ]; then
		echo "tenant_isolation.so has symbols neither postgres nor its libraries define:" >&2
		echo "$missing" >&2
		exit 1
	fi
	echo "module symbols resolve against $BIN/postgres and its libraries"
}

tempcheck() {
	echo "== make tempcheck REGRESS='$regress'"
	ti_as_user "cd '$work' && make -s tempcheck PG_CONFIG='$PG_CONFIG' REGRESS='$regress'"
}

case $mode in
	ubsan)
		build_variant "-fsanitize=undefined -fno-sanitize-recover=all -static-libubsan"
		syms=$(nm "$work/tenant_isolation.so")
		grep -q __ubsan_handle <<<"$syms" ||
			{ echo "the module is not instrumented" >&2; exit 1; }
		check_loadable
		tempcheck
		rc=$?
		reports=$(grep -cE 'runtime error:|UndefinedBehaviorSanitizer' "$work/log/postmaster.log")
		echo "UBSan reports in the server log: $reports"
		if [ "$reports" != 0 ]; then
			grep -E -A12 'runtime error:|UndefinedBehaviorSanitizer' "$work/log/postmaster.log"
			rc=1
		fi
		if grep -q 'was terminated by signal' "$work/log/postmaster.log"; then
			grep 'was terminated by signal' "$work/log/postmaster.log"
			rc=1
		fi
		[ "$rc" = 0 ] && echo "ubsan: clean" || { cat "$work/regression.diffs" 2>/dev/null | head -100; echo "ubsan: FAILED"; }
		exit $rc
		;;
	asserts)
		build_variant "-DUSE_ASSERT_CHECKING"
		syms=$(nm "$work/tenant_isolation.so")
		n=$(grep -c ' U ExceptionalCondition' <<<"$syms" || true)
		[ "$n" -gt 0 ] || { echo "no Assert() was compiled in" >&2; exit 1; }
		check_loadable
		tempcheck
		rc=$?
		if grep -E 'TRAP:|was terminated by signal' "$work/log/postmaster.log"; then
			rc=1
		fi
		[ "$rc" = 0 ] && echo "asserts: clean" || { cat "$work/regression.diffs" 2>/dev/null | head -100; echo "asserts: FAILED"; }
		exit $rc
		;;
	valgrind)
		# -O0 keeps every frame of our code visible to valgrind.
		build_variant "-O0 -g -fno-omit-frame-pointer"
		vgdir=$(mktemp -d /tmp/tenant_isolation_vg.XXXXXX)
		[ "$(id -u)" = 0 ] && chown "$TI_USER" "$vgdir"
		ti_as_user "'$BIN/initdb' -D '$vgdir/data' -U postgres -A trust --no-instructions" >"$vgdir/initdb.log" 2>&1 ||
			{ cat "$vgdir/initdb.log"; exit 1; }
		port=$((20000 + RANDOM % 40000))
		{
			cat "$TI_TOP/test/tenant_isolation.conf"
			echo "port = $port"
			echo "listen_addresses = ''"
			echo "unix_socket_directories = '$vgdir'"
			# valgrind is 20-50 times slower: no timeouts from slowness
			echo "max_connections = 20"
			# LLVM's JIT under valgrind is slow and ld.so reports on it
			echo "jit = off"
			echo "checkpoint_timeout = 30min"
			echo "log_line_prefix = '%m [%p] '"
		} >>"$vgdir/data/postgresql.conf"
		supp=$TI_TOP/test/hardening/valgrind.supp
		echo "== starting postgres under valgrind (logs in $vgdir/vg.*.log)"
		server_started=1
		ti_as_user "nohup valgrind --quiet --trace-children=yes --track-origins=yes --num-callers=30 --fullpath-after= \
			--read-var-info=no --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END \
			--suppressions='$supp' --gen-suppressions=all --leak-check=no \
			--log-file='$vgdir/vg.%p.log' '$BIN/postgres' -D '$vgdir/data' \
			>'$vgdir/server.log' 2>&1 </dev/null &"
		for _ in $(seq 1 300); do
			"$BIN/pg_isready" -q -h "$vgdir" -p "$port" && break
			sleep 1
		done
		"$BIN/pg_isready" -h "$vgdir" -p "$port" || { cat "$vgdir/server.log"; exit 1; }
		echo "== make installcheck REGRESS='$vg_regress'"
		ti_as_user "cd '$work' && make -s installcheck PG_CONFIG='$PG_CONFIG' REGRESS='$vg_regress' \
			PGHOST='$vgdir' PGPORT=$port PGUSER=postgres"
		rc=$?
		ti_as_user "'$BIN/pg_ctl' -D '$vgdir/data' -m fast -w -t 300 stop" >/dev/null 2>&1
		server_started=0
		# One block per error.  It is ours when, in any of its stacks (the
		# error's, and where the memory was allocated or the uninitialised
		# value created), the innermost frame that is either PostgreSQL's or
		# ours is ours: library frames (libc, ld.so, OpenSSL, libsodium) are
		# skipped, so a libc routine called by our code counts as ours, and
		# a PostgreSQL error merely called through one of our hooks does not.
		total=$(cat "$vgdir"/vg.*.log | grep -c 'VALGRINDERROR-BEGIN' || true)
		ours=$(cat "$vgdir"/vg.*.log | awk -v mine="$work/src/" '
			/VALGRINDERROR-BEGIN/ { inerr = 1; block = ""; hit = 0; decided = 0; next }
			/VALGRINDERROR-END/ { if (hit) { print block; print "----" } inerr = 0; next }
			!inerr { next }
			{ block = block "\n" $0 }
			/^==[0-9]+==  *at 0x/ { decided = 0 }
			/^==[0-9]+==  *(at|by) 0x/ && !decided {
				if (index($0, mine) || $0 ~ /tenant_isolation\.so/) { hit = 1; decided = 1 }
				else if ($0 ~ /bin\/postgres\)/) decided = 1
			}')
		nours=$(printf '%s' "$ours" | grep -c '^----$' || true)
		echo "valgrind errors: $total unsuppressed, $nours with a tenant_isolation.so frame"
		if [ "$total" -gt 0 ]; then
			cp "$vgdir"/vg.*.log "$work/" 2>/dev/null
			echo "(valgrind logs with errors:)"
			grep -l 'VALGRINDERROR-BEGIN' "$vgdir"/vg.*.log
		fi
		if [ "$nours" -gt 0 ]; then
			printf '%s\n' "$ours"
			rc=1
		fi
		if [ "${HARDEN_KEEP:-0}" != 1 ]; then
			rm -rf "$vgdir"
		else
			echo "valgrind cluster kept: $vgdir"
		fi
		[ "$rc" = 0 ] && echo "valgrind: clean" || { cat "$work/regression.diffs" 2>/dev/null | head -100; echo "valgrind: FAILED"; }
		exit $rc
		;;
	*)
		echo "unknown mode $mode" >&2
		exit 2
		;;
esac
