#!/bin/sh
# check_reference.sh: every function, view and setting of the installed
# extension is documented in docs/reference.md.
#
#   check_reference.sh [-s] [REFERENCE_MD]
#
# Connects with psql and the usual libpq environment (PGHOST, PGPORT,
# PGDATABASE, PGUSER) to a database where tenant_isolation is installed, as a
# superuser (settings marked superuser-only are hidden from other roles),
# and lists:
#
#	- the functions of schema tenant_isolation,
#	- the views of schema tenant_isolation,
#	- the settings tenant_isolation.* shown by pg_settings,
#
# leaving out names that start with "_" (internal).  A name counts as
# documented when REFERENCE_MD (default: docs/reference.md of this tree)
# contains "tenant_isolation.<name>" not followed by a letter, digit or "_".
# Prints every missing name and exits 1 when one is missing, 2 when the
# database cannot be read.  Sections still marked "TO BE FILLED" are reported;
# with -s (strict) they fail the check too.
#
# POSIX sh; needs psql and grep.
set -eu

strict=0
if [ "${1:-}" = "-s" ]; then
	strict=1
	shift
fi
top=$(cd "$(dirname "$0")/../.." && pwd)
ref=${1:-$top/docs/reference.md}

if [ ! -r "$ref" ]; then
	echo "check_reference: cannot read $ref" >&2
	exit 2
fi

names=$(psql -X -A -t -q -v ON_ERROR_STOP=1 <<'SQL'
SELECT DISTINCT 'function ' || p.proname
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant_isolation'::regnamespace
   AND p.proname NOT LIKE '\_%'
UNION
SELECT 'view ' || c.relname
  FROM pg_class c
 WHERE c.relnamespace = 'tenant_isolation'::regnamespace
   AND c.relkind IN ('v', 'm')
   AND c.relname NOT LIKE '\_%'
UNION
SELECT 'setting ' || substr(s.name, length('tenant_isolation.') + 1)
  FROM pg_settings s
 WHERE s.name LIKE 'tenant\_isolation.%'
   AND substr(s.name, length('tenant_isolation.') + 1) NOT LIKE '\_%'
ORDER BY 1;
SQL
) || {
	echo "check_reference: cannot list the extension's objects (is tenant_isolation installed in this database?)" >&2
	exit 2
}

if [ -z "$names" ]; then
	echo "check_reference: the extension has no functions, views or settings here" >&2
	exit 2
fi

missing=0
total=0
# one "kind name" per line
echo "$names" | {
	while read -r kind name; do
		[ -n "$name" ] || continue
		total=$((total + 1))
		if ! grep -Eq "tenant_isolation\.${name}([^A-Za-z0-9_]|\$)" "$ref"; then
			echo "not documented in $(basename "$ref"): $kind tenant_isolation.$name"
			missing=$((missing + 1))
		fi
	done
	echo "check_reference: $total names, $missing missing"
	[ "$missing" -eq 0 ]
} || exit 1

todo=$(grep -c 'TO BE FILLED' "$ref" || true)
if [ "$todo" -gt 0 ]; then
	echo "check_reference: $todo section(s) of $(basename "$ref") still marked TO BE FILLED"
	[ "$strict" -eq 0 ] || exit 1
fi
exit 0
