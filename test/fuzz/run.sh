#!/bin/bash
# test/fuzz/run.sh [SECONDS [TARGET...]]: build the libFuzzer targets with
# ASan and UBSan and fuzz each for SECONDS (default 60) starting from its
# seed corpus.  Targets (all by default):
#
#   jwt   src/jwt_parse.c + PostgreSQL's frontend JSON parser from
#         libpgcommon: the token parsing of login() (corpus/, jwt.dict)
#   uuid  ti_uuid_from_cstring() of src/tenant_isolation.c, checked against
#         the token's uuid parser ti_uuid_parse_strict() (corpus_uuid/)
#
# Exits non-zero if a build fails or anything crashes, leaks or trips a
# sanitizer; the reproducer (crash-*, leak-*, timeout-*) is left in
# test/fuzz/.  New corpus entries go to test/fuzz/corpus-work/TARGET during
# the run; after a clean run, the inputs among them that add coverage are
# merged (libFuzzer -merge=1) into the seed corpus kept in the tree
# (test/fuzz/corpus, test/fuzz/corpus_uuid), so the corpus grows with what
# the fuzzer finds: commit them.  FUZZ_NO_MERGE=1 leaves the tree alone.
set -euo pipefail

secs=${1:-60}
shift || true
targets=${*:-jwt uuid}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
CC=${CLANG:-clang}

incdir=$($PG_CONFIG --includedir-server)
pglib=$($PG_CONFIG --pkglibdir)
cflags="-g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Wno-ignored-attributes"

build_jwt() {
	# libpgcommon.a's fe_memutils would provide palloc; the harness provides
	# its own arena, and the linker takes the first definition it sees.
	"$CC" $cflags -fsanitize=fuzzer,address,undefined \
		-DFRONTEND -I"$top/src" -I"$incdir" -I"$incdir/../../internal" \
		-o "$here/fuzz_jwt" "$here/fuzz_jwt.c" "$top/src/jwt_parse.c" \
		"$pglib/libpgcommon.a" "$pglib/libpgport.a" -lm
}

build_uuid() {
	# fuzz_uuid.c includes src/tenant_isolation.c (backend headers);
	# jwt_parse.c is a separate frontend object, palloc from libpgcommon.
	local obj
	obj=$(mktemp -d)
	"$CC" $cflags -fsanitize=fuzzer,address,undefined -I"$top/src" -I"$incdir" \
		-c "$here/fuzz_uuid.c" -o "$obj/fuzz_uuid.o"
	"$CC" $cflags -fsanitize=fuzzer-no-link,address,undefined \
		-DFRONTEND -I"$top/src" -I"$incdir" -I"$incdir/../../internal" \
		-c "$top/src/jwt_parse.c" -o "$obj/jwt_parse_fe.o"
	"$CC" -fsanitize=fuzzer,address,undefined -o "$here/fuzz_uuid" \
		"$obj/fuzz_uuid.o" "$obj/jwt_parse_fe.o" \
		"$pglib/libpgcommon.a" "$pglib/libpgport.a" -lm
	rm -rf "$obj"
}

run_target() {
	local t=$1 work="$here/corpus-work/$1"
	mkdir -p "$work"
	cd "$here"
	echo "== fuzz_$t: $secs s"
	case $t in
		jwt)
			# -max_len: tokens are at most 16 kB by default; -timeout
			# catches hangs.
			./fuzz_jwt -dict="$here/jwt.dict" -max_total_time="$secs" -max_len=16384 \
				-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work" "$here/corpus"
			;;
		uuid)
			./fuzz_uuid -max_total_time="$secs" -max_len=128 -timeout=10 \
				-rss_limit_mb=2048 -print_final_stats=1 "$work" "$here/corpus_uuid"
			;;
		*)
			echo "unknown fuzz target $t" >&2
			return 1
			;;
	esac
}

for t in $targets; do
	"build_$t"
done
# libFuzzer reports every new and reduced input; keep that in a log and show
# its end (and everything when a target fails).
for t in $targets; do
	log="$here/corpus-work/fuzz_$t.log"
	mkdir -p "$here/corpus-work"
	if run_target "$t" >"$log" 2>&1; then
		tail -n 12 "$log"
		if [ -z "${FUZZ_NO_MERGE:-}" ]; then
			case $t in
				jwt) seed="$here/corpus" ;;
				*) seed="$here/corpus_$t" ;;
			esac
			before=$(ls "$seed" | wc -l)
			(cd "$here" && "./fuzz_$t" -merge=1 "$seed" "$here/corpus-work/$t") >>"$log" 2>&1 ||
				{ cat "$log"; echo "fuzz_$t: merge into $seed FAILED" >&2; exit 1; }
			echo "fuzz_$t: corpus $seed: $before -> $(ls "$seed" | wc -l) inputs"
		fi
	else
		cat "$log"
		echo "fuzz_$t: FAILED" >&2
		exit 1
	fi
done
