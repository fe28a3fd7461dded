#!/bin/bash
# test/fuzz/run.sh [SECONDS]: build the libFuzzer target for the JWT parser
# (src/jwt_parse.c + PostgreSQL's frontend JSON parser from libpgcommon)
# with ASan and UBSan, and fuzz it for SECONDS (default 60) starting from
# the seed corpus.  Exits non-zero if the build fails or anything crashes,
# leaks or trips a sanitizer; the reproducer is left in test/fuzz/.
set -euo pipefail

secs=${1:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
CC=${CLANG:-clang}

incdir=$($PG_CONFIG --includedir-server)
pglib=$($PG_CONFIG --pkglibdir)
bin="$here/fuzz_jwt"

# libpgcommon.a's fe_memutils would provide palloc; the harness provides its
# own arena, and the linker takes the first definition it sees.
"$CC" -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-DFRONTEND -I"$top/src" -I"$incdir" -I"$incdir/../../internal" \
	-o "$bin" "$here/fuzz_jwt.c" "$top/src/jwt_parse.c" \
	"$pglib/libpgcommon.a" "$pglib/libpgport.a" -lm

work="$here/corpus-work"
mkdir -p "$work"
cd "$here"
# -max_len: tokens are at most 16 kB by default; -timeout catches hangs.
"$bin" -dict="$here/jwt.dict" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 "$work" "$here/corpus"
