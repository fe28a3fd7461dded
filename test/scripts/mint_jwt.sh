#!/bin/sh
# mint_jwt.sh: make test keys and sign JSON Web Tokens with the openssl CLI.
#
#   mint_jwt.sh keygen
#       Creates a temporary directory with hs256.key hs384.key hs512.key
#       (HMAC secrets, no trailing newline), rsa.pem/rsa.pub, rsa2.pem/rsa2.pub,
#       ec256.pem/ec256.pub, ec384.pem/ec384.pub, ed25519.pem/ed25519.pub and
#       prints its path.
#
#   mint_jwt.sh [-k KID] [-h HEADER_JSON] ALG KEYFILE CLAIMS_JSON
#       Prints a compact JWS.  ALG is HS256 HS384 HS512 RS256 RS384 RS512 PS256
#       ES256 ES384 EdDSA, or "none" (empty signature, KEYFILE ignored).  For
#       HS* KEYFILE holds the secret (any bytes, e.g. a PEM file for the alg
#       confusion test).  In CLAIMS_JSON, NOW, NOW+N and NOW-N are replaced by
#       the current Unix time plus or minus N seconds.  -h replaces the whole
#       header (then -k and ALG only choose how to sign).
#
# POSIX sh; needs openssl, od, tr, awk, date.
set -eu

b64url() {
	openssl base64 -A | tr '+/' '-_' | tr -d '='
}

keygen() {
	d=$(mktemp -d "${TMPDIR:-/tmp}/ti_jwt_keys.XXXXXX")
	for n in hs256:32 hs384:48 hs512:64; do
		name=${n%%:*}
		len=${n#*:}
		# printable secret of exactly $len bytes, no newline
		openssl rand -hex "$len" | tr -d '\n' | cut -c1-"$len" | tr -d '\n' >"$d/$name.key"
	done
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa.pem" 2>/dev/null
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa2.pem" 2>/dev/null
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ec256.pem" 2>/dev/null
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$d/ec384.pem" 2>/dev/null
	openssl genpkey -algorithm ED25519 -out "$d/ed25519.pem" 2>/dev/null
	for k in rsa rsa2 ec256 ec384 ed25519; do
		openssl pkey -in "$d/$k.pem" -pubout -out "$d/$k.pub" 2>/dev/null
	done
	echo "$d"
}

# der_to_raw BYTES: DER ECDSA-Sig-Value on stdin -> base64url of R || S,
# each left-padded to BYTES.
der_to_raw() {
	od -An -v -tx1 | tr -d ' \n' | awk -v n="$1" '
	function hexval(c) { return index("0123456789abcdef", c) - 1 }
	function byte(i) { return hexval(substr(h, 2 * i + 1, 1)) * 16 + hexval(substr(h, 2 * i + 2, 1)) }
	function int_at(pos,    len, s) {
		len = byte(pos + 1)
		s = substr(h, 2 * (pos + 2) + 1, 2 * len)
		while (length(s) > 2 * n && substr(s, 1, 2) == "00") s = substr(s, 3)
		while (length(s) < 2 * n) s = "00" s
		nextpos = pos + 2 + len
		return s
	}
	{
		h = $0
		pos = 2                       # skip SEQUENCE tag and short length
		if (byte(1) == 129) pos = 3   # 0x81 long form
		r = int_at(pos)
		s = int_at(nextpos)
		print r s
	}' | hex_to_b64url
}

# hex_to_b64url: hex string on stdin -> base64url (no padding) on stdout
hex_to_b64url() {
	awk '
	BEGIN { a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" }
	function hexval(c) { return index("0123456789abcdef", c) - 1 }
	{
		h = $0; out = ""; n = length(h) / 2
		for (i = 0; i < n; i += 3) {
			b0 = hexval(substr(h, 2*i+1, 1)) * 16 + hexval(substr(h, 2*i+2, 1))
			b1 = (i + 1 < n) ? hexval(substr(h, 2*i+3, 1)) * 16 + hexval(substr(h, 2*i+4, 1)) : 0
			b2 = (i + 2 < n) ? hexval(substr(h, 2*i+5, 1)) * 16 + hexval(substr(h, 2*i+6, 1)) : 0
			v = b0 * 65536 + b1 * 256 + b2
			out = out substr(a, int(v / 262144) % 64 + 1, 1) substr(a, int(v / 4096) % 64 + 1, 1)
			if (i + 1 < n) out = out substr(a, int(v / 64) % 64 + 1, 1)
			if (i + 2 < n) out = out substr(a, v % 64 + 1, 1)
		}
		print out
	}'
}

# expand NOW, NOW+N, NOW-N in a JSON text
expand_now() {
	now=$(date +%s)
	printf '%s' "$1" | awk -v now="$now" '{
		out = ""; s = $0
		while ((p = index(s, "NOW")) > 0) {
			out = out substr(s, 1, p - 1); s = substr(s, p + 3); v = now
			if (match(s, /^[+-][0-9]+/)) {
				d = substr(s, 2, RLENGTH - 1) + 0
				v = (substr(s, 1, 1) == "+") ? now + d : now - d
				s = substr(s, RLENGTH + 1)
			}
			out = out sprintf("%d", v)
		}
		printf "%s", out s
	}'
}

if [ "${1:-}" = keygen ]; then
	keygen
	exit 0
fi

kid=""
header=""
while getopts k:h: opt; do
	case $opt in
		k) kid=$OPTARG ;;
		h) header=$OPTARG ;;
		*) echo "usage: $0 [-k kid] [-h header] ALG KEYFILE CLAIMS" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 3 ] || { echo "usage: $0 [-k kid] [-h header] ALG KEYFILE CLAIMS" >&2; exit 2; }
alg=$1
keyfile=$2
claims=$(expand_now "$3")

if [ -z "$header" ]; then
	if [ -n "$kid" ]; then
		header=$(printf '{"alg":"%s","typ":"JWT","kid":"%s"}' "$alg" "$kid")
	else
		header=$(printf '{"alg":"%s","typ":"JWT"}' "$alg")
	fi
fi

input="$(printf '%s' "$header" | b64url).$(printf '%s' "$claims" | b64url)"
tmp=$(mktemp "${TMPDIR:-/tmp}/ti_jwt_in.XXXXXX")
trap 'rm -f "$tmp"' EXIT
printf '%s' "$input" >"$tmp"

case $alg in
	HS256|HS384|HS512)
		bits=${alg#HS}
		hexkey=$(od -An -v -tx1 <"$keyfile" | tr -d ' \n')
		sig=$(openssl dgst -sha"$bits" -mac HMAC -macopt hexkey:"$hexkey" -binary <"$tmp" | b64url)
		;;
	RS256|RS384|RS512)
		sig=$(openssl dgst -sha"${alg#RS}" -sign "$keyfile" -binary <"$tmp" | b64url)
		;;
	PS256)
		sig=$(openssl dgst -sha256 -sign "$keyfile" -sigopt rsa_padding_mode:pss \
			-sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256 -binary <"$tmp" | b64url)
		;;
	ES256)
		sig=$(openssl dgst -sha256 -sign "$keyfile" -binary <"$tmp" | der_to_raw 32)
		;;
	ES384)
		sig=$(openssl dgst -sha384 -sign "$keyfile" -binary <"$tmp" | der_to_raw 48)
		;;
	EdDSA)
		sig=$(openssl pkeyutl -sign -inkey "$keyfile" -rawin -in "$tmp" | b64url)
		;;
	none)
		sig=""
		;;
	*)
		echo "unknown alg $alg" >&2
		exit 2
		;;
esac

printf '%s.%s\n' "$input" "$sig"
