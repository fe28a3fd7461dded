#!/usr/bin/env bash
# test/hardening/tap.sh TEST...: build and install the extension, then run
# the given TAP tests (test/t/*.pl) as $TI_USER in a private copy of the
# tree, the way make test runs tapcheck.  Used by make crash and make
# stress-tap.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
export PG_CONFIG=${PG_CONFIG:-pg_config}
[ $# -gt 0 ] || { echo "usage: tap.sh test/t/NNN_name.pl..." >&2; exit 2; }

bash "$TI_TOP/test/scripts/deps.sh" || exit 1
make -s -C "$TI_TOP" PG_CONFIG="$PG_CONFIG" || exit 1
if [ "$(id -u)" = 0 ]; then
	make -s -C "$TI_TOP" PG_CONFIG="$PG_CONFIG" install || exit 1
else
	sudo make -s -C "$TI_TOP" PG_CONFIG="$PG_CONFIG" install || exit 1
fi
work=$(ti_workdir)
trap 'rm -rf "$work"' EXIT
ti_as_user "cd '$work' && make -s tapcheck PG_CONFIG='$PG_CONFIG' PROVE_TESTS='$*'"
rc=$?
if [ "$rc" != 0 ]; then
	for f in "$work"/tmp_check/log/regress_log_*; do
		[ -f "$f" ] && { echo "---- $f"; tail -40 "$f"; }
	done
fi
exit $rc
