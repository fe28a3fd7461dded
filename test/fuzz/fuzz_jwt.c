/*-------------------------------------------------------------------------
 *
 * fuzz_jwt.c
 *	  libFuzzer target for the token parsing of tenant_isolation.login().
 *
 * Runs every step that src/jwt.c performs on untrusted bytes, in the same
 * order and with the same code (src/jwt_parse.c, compiled with -DFRONTEND
 * and linked with PostgreSQL's frontend JSON parser from libpgcommon):
 * segment splitting, strict base64url, UTF-8 checks, the header and claims
 * structure checks with duplicate detection, NumericDate and uuid parsing,
 * and the ECDSA signature conversion.  Besides memory errors (ASan/UBSan)
 * it checks properties and abort()s when one fails:
 *
 *	- base64url decoding is canonical: re-encoding gives the input back;
 *	- the DER made from an ECDSA signature is well formed;
 *	- a JSON text that parses with captured fields never yields a captured
 *	  string containing NUL.
 *
 * palloc and friends are provided here, as an arena freed after each input
 * (what a memory context does in the backend), so LeakSanitizer reports
 * only real leaks of the harness or the parser's callers.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_jwt.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <stdint.h>

#include "jwt_parse.h"

/* ---------- arena: palloc family for the frontend JSON parser ---------- */

typedef struct ArenaChunk
{
	struct ArenaChunk *prev;
	struct ArenaChunk *next;
	size_t		size;
	/* payload follows, max-aligned */
} ArenaChunk;

#define CHUNK_HDR	MAXALIGN(sizeof(ArenaChunk))

static ArenaChunk arena = {&arena, &arena, 0};

static void *
arena_alloc(size_t size, bool zero)
{
	ArenaChunk *c = malloc(CHUNK_HDR + size);

	if (c == NULL)
		abort();
	c->size = size;
	c->next = &arena;
	c->prev = arena.prev;
	arena.prev->next = c;
	arena.prev = c;
	if (zero)
		memset((char *) c + CHUNK_HDR, 0, size);
	return (char *) c + CHUNK_HDR;
}

static ArenaChunk *
chunk_of(void *p)
{
	return (ArenaChunk *) ((char *) p - CHUNK_HDR);
}

static void
arena_reset(void)
{
	ArenaChunk *c = arena.next;

	while (c != &arena)
	{
		ArenaChunk *n = c->next;

		free(c);
		c = n;
	}
	arena.next = arena.prev = &arena;
}

void *
palloc(Size size)
{
	return arena_alloc(size, false);
}

void *
palloc0(Size size)
{
	return arena_alloc(size, true);
}

void *
palloc_extended(Size size, int flags)
{
	return arena_alloc(size, (flags & MCXT_ALLOC_ZERO) != 0);
}

void
pfree(void *pointer)
{
	ArenaChunk *c;

	if (pointer == NULL)
		return;
	c = chunk_of(pointer);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c);
}

void *
repalloc(void *pointer, Size size)
{
	ArenaChunk *c = chunk_of(pointer);
	ArenaChunk *prev = c->prev;
	ArenaChunk *next = c->next;
	ArenaChunk *n = realloc(c, CHUNK_HDR + size);

	if (n == NULL)
		abort();
	n->size = size;
	prev->next = n;
	next->prev = n;
	return (char *) n + CHUNK_HDR;
}

char *
pstrdup(const char *in)
{
	size_t		len = strlen(in);
	char	   *s = arena_alloc(len + 1, false);

	memcpy(s, in, len + 1);
	return s;
}

char *
pnstrdup(const char *in, Size size)
{
	size_t		len = strnlen(in, size);
	char	   *s = arena_alloc(len + 1, false);

	memcpy(s, in, len);
	s[len] = '\0';
	return s;
}

/* ---------- properties ---------- */

static void
b64url_encode(const unsigned char *in, size_t len, char *out)
{
	static const char a[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t		i;
	size_t		o = 0;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];

		out[o++] = a[(v >> 18) & 63];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = a[v & 63];
	}
	if (len - i == 1)
	{
		uint32		v = in[i] << 16;

		out[o++] = a[(v >> 18) & 63];
		out[o++] = a[(v >> 12) & 63];
	}
	else if (len - i == 2)
	{
		uint32		v = (in[i] << 16) | (in[i + 1] << 8);

		out[o++] = a[(v >> 18) & 63];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
	}
	out[o] = '\0';
}

/* decode, and if accepted, check that encoding gives the input back */
static unsigned char *
decode_checked(const char *in, size_t len, size_t *outlen)
{
	unsigned char *buf = palloc(TI_B64URL_DECODED_MAX(len) + 1);
	char	   *again;

	if (!ti_b64url_decode(in, len, buf, outlen))
		return NULL;
	if (*outlen > TI_B64URL_DECODED_MAX(len))
		abort();
	again = palloc(len + 4);
	b64url_encode(buf, *outlen, again);
	if (strlen(again) != len || memcmp(again, in, len) != 0)
		abort();
	buf[*outlen] = '\0';
	return buf;
}

static void
check_der(const unsigned char *sig, size_t siglen)
{
	unsigned char der[2 * (3 + 67) + 3];
	size_t		derlen;
	size_t		pos;
	size_t		body;
	int			k;

	if (!ti_ecdsa_raw_to_der(sig, siglen, der, sizeof(der), &derlen))
		return;
	if (derlen > sizeof(der) || der[0] != 0x30)
		abort();
	pos = 1;
	body = der[pos++];
	if (body == 0x81)
		body = der[pos++];
	if (pos + body != derlen)
		abort();
	for (k = 0; k < 2; k++)
	{
		size_t		ilen;

		if (pos + 2 > derlen || der[pos] != 0x02)
			abort();
		ilen = der[pos + 1];
		if (ilen == 0 || pos + 2 + ilen > derlen)
			abort();
		/* minimal encoding and positive */
		if (der[pos + 2] & 0x80)
			abort();
		if (ilen > 1 && der[pos + 2] == 0 && !(der[pos + 3] & 0x80))
			abort();
		pos += 2 + ilen;
	}
	if (pos != derlen)
		abort();
}

static void
check_fields(TiJsonField *f, int n)
{
	int			i,
				j;

	for (i = 0; i < n; i++)
	{
		if (f[i].type == JSON_TOKEN_STRING && f[i].value == NULL)
			abort();
		for (j = 0; j < f[i].nelems; j++)
		{
			if (f[i].elems[j] == NULL)
				abort();
		}
	}
}

/* ---------- the target ---------- */

static void
fuzz_token(const char *data, size_t size)
{
	TiJwtSegments seg;
	TiJwtHeader hdr;
	TiJsonField f[5];
	unsigned char *buf;
	unsigned char *sig;
	size_t		len;
	size_t		siglen;
	unsigned char uuid[16];
	double		d;

	if (!ti_jwt_split(data, size, &seg))
		return;
	if (seg.header_len + seg.payload_len + seg.signature_len + 2 != size ||
		seg.signing_input_len != seg.header_len + 1 + seg.payload_len)
		abort();

	buf = decode_checked(seg.header, seg.header_len, &len);
	if (buf != NULL && ti_utf8_valid(buf, len) &&
		ti_jwt_parse_header((char *) buf, len, &hdr) == TI_JWT_OK)
	{
		if (hdr.alg == NULL)
			abort();
		(void) ti_jwt_alg_name(ti_jwt_alg_from_name(hdr.alg));
	}

	sig = decode_checked(seg.signature, seg.signature_len, &siglen);
	if (sig != NULL && siglen <= 132)
		check_der(sig, siglen);

	buf = decode_checked(seg.payload, seg.payload_len, &len);
	if (buf == NULL || !ti_utf8_valid(buf, len))
		return;
	f[0].name = "exp";
	f[1].name = "nbf";
	f[2].name = "iss";
	f[3].name = "aud";
	f[4].name = "tenant_id";
	if (ti_json_top_fields((char *) buf, len, f, 5) != TI_JWT_OK)
		return;
	check_fields(f, 5);
	if (f[0].type == JSON_TOKEN_NUMBER)
		(void) ti_jwt_numeric_date(f[0].value, &d);
	if (f[1].type == JSON_TOKEN_NUMBER)
		(void) ti_jwt_numeric_date(f[1].value, &d);
	if (f[4].type == JSON_TOKEN_STRING)
		(void) ti_uuid_parse_strict(f[4].value, uuid);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the backend refuses more than jwt_max_token_size (max 1 MB) */
	if (size > 64 * 1024)
		return 0;

	/* the input as a token */
	fuzz_token((const char *) data, size);
	arena_reset();

	/* the input as decoded JSON, to reach the parser without base64 */
	if (ti_utf8_valid(data, size))
	{
		TiJsonField f[3];
		TiJwtHeader hdr;

		f[0].name = "exp";
		f[1].name = "aud";
		f[2].name = "tenant_id";
		if (ti_json_top_fields((const char *) data, size, f, 3) == TI_JWT_OK)
			check_fields(f, 3);
		(void) ti_jwt_parse_header((const char *) data, size, &hdr);
	}
	arena_reset();

	/* the input as raw signature bytes */
	if (size <= 132)
		check_der(data, size);

	return 0;
}
