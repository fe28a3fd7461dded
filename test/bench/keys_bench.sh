#!/bin/bash
#
# keys_bench.sh: throughput of tenant_isolation.encrypt()/decrypt() next to
# pgcrypto's pgp_sym_encrypt()/pgp_sym_decrypt() and raw encrypt()/decrypt()
# (AES-256-CBC), measured in one run on a throwaway cluster, plus raw
# libsodium XChaCha20-Poly1305 from a small C program compiled here.
#
# Usage (root or postgres; "make install" first):
#	bash test/bench/keys_bench.sh [repetitions]
#
# Every cell is one SQL statement that calls the function once per row of a
# table of N random values stored plain (pgcrypto's functions are
# immutable, so the value must come from a table, not a constant).  The
# same scan reading each value with get_byte() is timed too and subtracted:
# "us/call" is the cost of the function alone, "MB/s" is plaintext bytes
# per second of that cost.  Parallel query is off (tenant_isolation.encrypt
# is parallel unsafe, pgcrypto's functions are not).
# Cells are interleaved and repeated; the median is reported.
#
# Copyright (c) 2026, tenant_isolation developers

set -euo pipefail

if [ "$(id -u)" = 0 ]; then
	exec su postgres -s /bin/bash -c "bash '$(readlink -f "$0")' ${1:-}"
fi

REPS=${1:-5}
BINDIR=$(pg_config --bindir)
WORK=$(mktemp -d /tmp/keys_bench.XXXXXX)
PORT=$((40000 + $$ % 10000))
N_FAST=100000		# rows for the fast functions
N_PGP=1000			# rows for pgp_sym_* (about 150 us per call)

cleanup()
{
	"$BINDIR/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- raw libsodium
cat > "$WORK/raw.c" <<'EOF'
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	size_t		len = atoi(argv[1]);
	long		n = atol(argv[2]);
	unsigned char key[32], nonce[24], ad[22];
	unsigned char *m = malloc(len), *c = malloc(len + 16);
	double		t0, te, td;
	long		i;

	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof key);
	randombytes_buf(nonce, sizeof nonce);
	randombytes_buf(ad, sizeof ad);
	randombytes_buf(m, len);
	t0 = now();
	for (i = 0; i < n; i++)
	{
		sodium_increment(nonce, sizeof nonce);
		crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, m, len, ad, sizeof ad,
												   NULL, nonce, key);
	}
	te = now() - t0;
	t0 = now();
	for (i = 0; i < n; i++)
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL, c, len + 16,
													   ad, sizeof ad, nonce, key) != 0)
			return 2;
	td = now() - t0;
	printf("%.3f %.3f\n", te / n * 1e6, td / n * 1e6);
	return 0;
}
EOF
gcc -O2 -o "$WORK/raw" "$WORK/raw.c" -lsodium

# ---- throwaway cluster
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/master.key"
echo >> "$WORK/master.key"
chmod 600 "$WORK/master.key"
"$BINDIR/initdb" -D "$WORK/data" -A trust -U postgres >/dev/null
cat >> "$WORK/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
shared_preload_libraries = 'tenant_isolation'
tenant_isolation.master_key_file = '$WORK/master.key'
shared_buffers = 256MB
log_min_messages = warning
max_parallel_workers_per_gather = 0
EOF
"$BINDIR/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w start >/dev/null

PSQL=("$BINDIR/psql" -X -q -At -h "$WORK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)

"${PSQL[@]}" <<EOF
CREATE EXTENSION tenant_isolation;
CREATE EXTENSION pgcrypto;
SELECT tenant_isolation.create_tenant('bench', id => 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'bench');
CREATE TABLE key (k bytea);
INSERT INTO key VALUES (gen_random_bytes(32));
CREATE FUNCTION bench(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz;
BEGIN
	t0 := clock_timestamp();
	EXECUTE q;
	RETURN extract(epoch FROM clock_timestamp() - t0);
END
\$\$;
DO \$\$
DECLARE s int;
BEGIN
	-- one bytea column per table, stored plain (no compression, no TOAST),
	-- so that every cell reads its input the same way
	FOREACH s IN ARRAY ARRAY[100, 4096] LOOP
		EXECUTE format('CREATE TABLE d%s (i int, x bytea)', s);
		EXECUTE format('CREATE TABLE t%s (x bytea)', s);
		EXECUTE format('CREATE TABLE r%s (x bytea)', s);
		EXECUTE format('CREATE TABLE p%s (x bytea)', s);
		EXECUTE format('CREATE TABLE q%s (x bytea)', s);
		EXECUTE format('ALTER TABLE d%1\$s ALTER x SET STORAGE PLAIN; ALTER TABLE t%1\$s ALTER x SET STORAGE PLAIN;
			ALTER TABLE r%1\$s ALTER x SET STORAGE PLAIN; ALTER TABLE p%1\$s ALTER x SET STORAGE PLAIN;
			ALTER TABLE q%1\$s ALTER x SET STORAGE PLAIN', s);
		EXECUTE format('INSERT INTO d%s SELECT i, gen_random_bytes(%s) FROM generate_series(1, $N_FAST) i', s, least(s, 1024));
		IF s > 1024 THEN
			EXECUTE format('UPDATE d%s SET x = x || x || x || x', s);
		END IF;
		EXECUTE format('INSERT INTO t%1\$s SELECT tenant_isolation.encrypt(x) FROM d%1\$s', s);
		EXECUTE format('INSERT INTO r%1\$s SELECT encrypt(x, (SELECT k FROM key), ''aes'') FROM d%1\$s', s);
		EXECUTE format('INSERT INTO p%1\$s SELECT x FROM d%1\$s WHERE i <= $N_PGP', s);
		EXECUTE format('INSERT INTO q%1\$s SELECT pgp_sym_encrypt_bytea(x, ''bench passphrase'') FROM p%1\$s', s);
	END LOOP;
END
\$\$;
VACUUM ANALYZE;
EOF

# cells: name|table|rows|query (%s = size).  Each table's baseline is the
# same scan reading the input with get_byte().
declare -a CELLS=(
	"tenant_isolation.encrypt|d|$N_FAST|SELECT count(tenant_isolation.encrypt(x)) FROM d%s"
	"tenant_isolation.decrypt|t|$N_FAST|SELECT count(tenant_isolation.decrypt(x)) FROM t%s"
	"pgcrypto encrypt(aes)|d|$N_FAST|SELECT count(encrypt(x, k, 'aes')) FROM d%s, key"
	"pgcrypto decrypt(aes)|r|$N_FAST|SELECT count(decrypt(x, k, 'aes')) FROM r%s, key"
	"pgp_sym_encrypt|p|$N_PGP|SELECT count(pgp_sym_encrypt_bytea(x, 'bench passphrase')) FROM p%s"
	"pgp_sym_decrypt|q|$N_PGP|SELECT count(pgp_sym_decrypt_bytea(x, 'bench passphrase')) FROM q%s"
)
for t in d t r p q; do
	CELLS+=("base|$t|0|SELECT count(get_byte(x, 0)) FROM $t%s")
done

# median of the arguments
median()
{
	printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

declare -A TIMES
for rep in $(seq 1 "$REPS"); do
	for size in 100 4096; do
		for cell in "${CELLS[@]}"; do
			IFS='|' read -r name tbl rows query <<< "$cell"
			q=$(printf "$query" "$size")
			t=$("${PSQL[@]}" -c "SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'bench')" \
				-c "SELECT bench(\$q\$$q\$q\$)" | tail -1)
			TIMES["$name|$tbl|$size"]+="$t "
		done
	done
done

echo "tenant_isolation keys benchmark: $REPS repetitions, median; PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}'), $(nproc) cores"
echo "us/call = (statement time - same scan without the call) / rows; MB/s = plaintext bytes / that time"
printf '%-28s %6s %10s %10s %10s\n' "function" "bytes" "us/call" "MB/s" "vs pgp"
for size in 100 4096; do
	pgp_us=$(awk -v t="$(median ${TIMES["pgp_sym_encrypt|p|$size"]})" \
		-v b="$(median ${TIMES["base|p|$size"]})" -v n="$N_PGP" \
		'BEGIN {printf "%.4f", (t - b) / n * 1e6}')
	for cell in "${CELLS[@]}"; do
		IFS='|' read -r name tbl rows query <<< "$cell"
		[ "$name" = base ] && continue
		t=$(median ${TIMES["$name|$tbl|$size"]})
		b=$(median ${TIMES["base|$tbl|$size"]})
		awk -v name="$name" -v size="$size" -v t="$t" -v b="$b" -v n="$rows" -v pgp="$pgp_us" 'BEGIN {
			us = (t - b) / n * 1e6;
			printf "%-28s %6d %10.3f %10.1f %9.1fx\n", name, size, us, size / us, pgp / us
		}'
	done
	read -r raw_e raw_d <<< "$("$WORK/raw" "$size" 1000000)"
	awk -v e="$raw_e" -v d="$raw_d" -v size="$size" -v pgp="$pgp_us" 'BEGIN {
		printf "%-28s %6d %10.3f %10.1f %9.1fx\n", "raw libsodium encrypt", size, e, size / e, pgp / e;
		printf "%-28s %6d %10.3f %10.1f %9.1fx\n", "raw libsodium decrypt", size, d, size / d, pgp / d
	}'
done
