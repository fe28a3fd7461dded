/*-------------------------------------------------------------------------
 *
 * jwt_parse.c
 *	  Segment splitting, base64url decoding and JSON structure checks for
 *	  JSON Web Tokens (RFC 7515, RFC 7519), without backend dependencies.
 *
 * This file is compiled into the extension and, with -DFRONTEND, into the
 * libFuzzer target test/fuzz/fuzz_jwt.c, so everything a hostile token can
 * reach before its signature is checked is fuzzed as the backend runs it.
 * Rules for code in here: no ereport/elog, no catalog or GUC access, no
 * OpenSSL; report failure by return value; allocate only with palloc and
 * friends (the fuzz harness provides an arena that it frees per input).
 *
 * JSON is parsed by PostgreSQL's own parser (src/common/jsonapi.c).  Its
 * recursion is bounded by ti_json_depth_ok(), which every caller runs first
 * (the backend parser also calls check_stack_depth(), the frontend one does
 * not).  jsonb would silently keep the last of two equal member names; the
 * callbacks below collect the top-level names and reject duplicates, so no
 * consumer can be shown a different claim than the one we checked.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/jwt_parse.c
 *
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

#include "jwt_parse.h"

static const char *const ti_jwt_alg_names[] = {
	[TI_JWT_ALG_INVALID] = NULL,
	[TI_JWT_ALG_HS256] = "HS256",
	[TI_JWT_ALG_HS384] = "HS384",
	[TI_JWT_ALG_HS512] = "HS512",
	[TI_JWT_ALG_RS256] = "RS256",
	[TI_JWT_ALG_RS384] = "RS384",
	[TI_JWT_ALG_RS512] = "RS512",
	[TI_JWT_ALG_PS256] = "PS256",
	[TI_JWT_ALG_ES256] = "ES256",
	[TI_JWT_ALG_ES384] = "ES384",
	[TI_JWT_ALG_EDDSA] = "EdDSA"
};

/*
 * ti_jwt_alg_name
 *		The JOSE name of an algorithm, NULL for TI_JWT_ALG_INVALID.
 */
const char *
ti_jwt_alg_name(TiJwtAlg alg)
{
	if (alg <= TI_JWT_ALG_INVALID || alg > TI_JWT_ALG_EDDSA)
		return NULL;
	return ti_jwt_alg_names[alg];
}

/*
 * ti_jwt_alg_from_name
 *		Map a JOSE "alg" value to our enum.  The comparison is exact and
 *		case-sensitive: "none", "None", "HS256 " and friends are all invalid.
 */
TiJwtAlg
ti_jwt_alg_from_name(const char *name)
{
	int			i;

	if (name == NULL)
		return TI_JWT_ALG_INVALID;
	for (i = TI_JWT_ALG_HS256; i <= TI_JWT_ALG_EDDSA; i++)
	{
		if (strcmp(name, ti_jwt_alg_names[i]) == 0)
			return (TiJwtAlg) i;
	}
	return TI_JWT_ALG_INVALID;
}

/*
 * ti_jwt_split
 *		Split a compact JWS into header, payload and signature.
 *
 * Exactly two dots; header and payload must be non-empty (the signature may
 * be empty, so that "alg":"none" tokens reach the algorithm check and are
 * refused for the right reason).  Five-segment JWE tokens are malformed.
 */
bool
ti_jwt_split(const char *token, size_t len, TiJwtSegments *seg)
{
	const char *dot1;
	const char *dot2;
	const char *end = token + len;

	if (token == NULL || len == 0)
		return false;
	dot1 = memchr(token, '.', len);
	if (dot1 == NULL)
		return false;
	dot2 = memchr(dot1 + 1, '.', end - (dot1 + 1));
	if (dot2 == NULL)
		return false;
	if (memchr(dot2 + 1, '.', end - (dot2 + 1)) != NULL)
		return false;

	seg->header = token;
	seg->header_len = dot1 - token;
	seg->payload = dot1 + 1;
	seg->payload_len = dot2 - (dot1 + 1);
	seg->signature = dot2 + 1;
	seg->signature_len = end - (dot2 + 1);
	seg->signing_input_len = dot2 - token;

	return seg->header_len > 0 && seg->payload_len > 0;
}

/* base64url alphabet value of a character, -1 for anything else */
static inline int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * ti_b64url_decode
 *		Decode unpadded base64url (RFC 7515 section 2), strictly.
 *
 * Rejects '=', '+', '/', whitespace and every other character outside the
 * URL-safe alphabet, a length of 1 mod 4, and non-zero bits left over in the
 * last character (so each byte string has exactly one accepted encoding).
 * "out" must have room for TI_B64URL_DECODED_MAX(len) bytes.
 */
bool
ti_b64url_decode(const char *in, size_t len, unsigned char *out,
				 size_t *outlen)
{
	size_t		i;
	size_t		o = 0;
	uint32		acc = 0;
	int			bits = 0;

	if (len % 4 == 1)
		return false;

	for (i = 0; i < len; i++)
	{
		int			v = b64url_value((unsigned char) in[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			out[o++] = (unsigned char) ((acc >> bits) & 0xFF);
		}
	}
	/* leftover bits (2 or 4) must be zero */
	if (bits > 0 && (acc & ((1U << bits) - 1)) != 0)
		return false;

	*outlen = o;
	return true;
}

/*
 * ti_json_depth_ok
 *		Cheap pre-scan: is the nesting of {} and [] at most maxdepth, and is
 *		the text free of NUL bytes?
 *
 * Brackets inside strings are skipped (escapes honoured).  This bounds the
 * recursion of pg_parse_json() before it starts; it does not validate.
 */
bool
ti_json_depth_ok(const char *json, size_t len, int maxdepth)
{
	size_t		i;
	int			depth = 0;
	bool		in_string = false;

	for (i = 0; i < len; i++)
	{
		char		c = json[i];

		if (c == '\0')
			return false;
		if (in_string)
		{
			if (c == '\\')
				i++;			/* skip the escaped character */
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c)
		{
			case '"':
				in_string = true;
				break;
			case '{':
			case '[':
				if (++depth > maxdepth)
					return false;
				break;
			case '}':
			case ']':
				depth--;
				break;
			default:
				break;
		}
	}
	return true;
}

/* Semantic state of ti_json_top_fields() */
typedef struct TiJsonState
{
	int			depth;			/* containers entered and not left */
	bool		top_is_object;
	bool		saw_top;		/* a top-level value has started */
	int			current;		/* index into fields of the member being
								 * parsed at depth 1, -1 if not captured */
	TiJsonField *fields;
	int			nfields;
	char	  **names;			/* every top-level member name */
	int			nnames;
	int			maxnames;
} TiJsonState;

static void
ti_json_container_start(TiJsonState *st, JsonTokenType type)
{
	if (st->depth == 0)
	{
		st->saw_top = true;
		st->top_is_object = (type == JSON_TOKEN_OBJECT_START);
	}
	else if (st->depth == 1 && st->current >= 0)
		st->fields[st->current].type = type;
	st->depth++;
}

static void
ti_json_object_start(void *state)
{
	ti_json_container_start((TiJsonState *) state, JSON_TOKEN_OBJECT_START);
}

static void
ti_json_array_start(void *state)
{
	ti_json_container_start((TiJsonState *) state, JSON_TOKEN_ARRAY_START);
}

static void
ti_json_container_end(void *state)
{
	((TiJsonState *) state)->depth--;
}

/*
 * Member names: remember every top-level one (for the duplicate check) and
 * note which captured field, if any, the following value belongs to.
 */
static void
ti_json_field_start(void *state, char *fname, bool isnull)
{
	TiJsonState *st = (TiJsonState *) state;
	int			i;

	if (st->depth != 1)
	{
		if (fname)
			pfree(fname);
		return;
	}

	st->current = -1;
	if (fname == NULL)
		return;					/* cannot happen with need_escapes */

	if (st->nnames >= st->maxnames)
	{
		st->maxnames = st->maxnames * 2;
		st->names = repalloc(st->names, sizeof(char *) * st->maxnames);
	}
	st->names[st->nnames++] = fname;

	for (i = 0; i < st->nfields; i++)
	{
		if (strcmp(fname, st->fields[i].name) == 0)
		{
			TiJsonField *f = &st->fields[i];

			/* a duplicate is reported later; capture the first only */
			if (f->type == JSON_TOKEN_INVALID)
				st->current = i;
			break;
		}
	}
}

static void
ti_json_scalar(void *state, char *token, JsonTokenType tokentype)
{
	TiJsonState *st = (TiJsonState *) state;

	if (st->depth == 0)
	{
		st->saw_top = true;
		st->top_is_object = false;
	}
	else if (st->current >= 0)
	{
		TiJsonField *f = &st->fields[st->current];

		if (st->depth == 1)
		{
			f->type = tokentype;
			f->value = token;
			return;
		}
		if (st->depth == 2 && f->type == JSON_TOKEN_ARRAY_START)
		{
			if (tokentype != JSON_TOKEN_STRING)
				f->all_strings = false;
			else
			{
				if (f->elems == NULL)
					f->elems = palloc(sizeof(char *) * 4);
				else if (f->nelems >= 4 && (f->nelems & (f->nelems - 1)) == 0)
					f->elems = repalloc(f->elems,
										sizeof(char *) * f->nelems * 2);
				f->elems[f->nelems++] = token;
				return;
			}
		}
	}
	if (token)
		pfree(token);
}

static int
ti_json_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * ti_json_top_fields
 *		Parse a JSON text that must be an object and capture the named
 *		top-level members.
 *
 * Returns TI_JWT_MALFORMED if the text is too deep, not valid JSON, not an
 * object, or contains NUL; TI_JWT_DUPLICATE if any top-level member name
 * (after de-escaping, so "a" and "\u0061" collide) occurs twice.
 */
TiJwtStatus
ti_json_top_fields(const char *json, size_t len, TiJsonField *fields,
				   int nfields)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	TiJsonState st;
	JsonParseErrorType rc;
	TiJwtStatus result = TI_JWT_OK;
	int			i;

	for (i = 0; i < nfields; i++)
	{
		fields[i].type = JSON_TOKEN_INVALID;
		fields[i].value = NULL;
		fields[i].elems = NULL;
		fields[i].nelems = 0;
		fields[i].all_strings = true;
	}

	if (len == 0 || len > (size_t) PG_INT32_MAX ||
		!ti_json_depth_ok(json, len, TI_JWT_MAX_JSON_DEPTH))
		return TI_JWT_MALFORMED;

	memset(&st, 0, sizeof(st));
	st.current = -1;
	st.fields = fields;
	st.nfields = nfields;
	st.maxnames = 8;
	st.names = palloc(sizeof(char *) * st.maxnames);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = ti_json_object_start;
	sem.object_end = ti_json_container_end;
	sem.array_start = ti_json_array_start;
	sem.array_end = ti_json_container_end;
	sem.object_field_start = ti_json_field_start;
	sem.scalar = ti_json_scalar;

	/* the lexer does not modify its input, the cast is for PG15's API */
	lex = makeJsonLexContextCstringLen((char *) json, (int) len, PG_UTF8, true);
	rc = pg_parse_json(lex, &sem);

	if (rc != JSON_SUCCESS || !st.saw_top || !st.top_is_object)
		result = TI_JWT_MALFORMED;
	else if (st.nnames > 1)
	{
		qsort(st.names, st.nnames, sizeof(char *), ti_json_name_cmp);
		for (i = 1; i < st.nnames; i++)
		{
			if (strcmp(st.names[i - 1], st.names[i]) == 0)
			{
				result = TI_JWT_DUPLICATE;
				break;
			}
		}
	}

	/* captured values stay with the caller, the rest goes */
	for (i = 0; i < st.nnames; i++)
		pfree(st.names[i]);
	pfree(st.names);
	if (lex->strval)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);

	return result;
}

/*
 * ti_jwt_parse_header
 *		Structure checks of a decoded JOSE header: an object without
 *		duplicate members, a string "alg", an optional string "kid", and no
 *		"crit" (we implement no extensions, so any critical one is unknown).
 */
TiJwtStatus
ti_jwt_parse_header(const char *json, size_t len, TiJwtHeader *hdr)
{
	TiJsonField f[3];
	TiJwtStatus rc;

	memset(hdr, 0, sizeof(*hdr));
	f[0].name = "alg";
	f[1].name = "kid";
	f[2].name = "crit";
	rc = ti_json_top_fields(json, len, f, 3);
	if (rc != TI_JWT_OK)
		return rc;
	if (f[2].type != JSON_TOKEN_INVALID)
		return TI_JWT_CRIT;
	if (f[0].type != JSON_TOKEN_STRING)
		return TI_JWT_MALFORMED;
	hdr->alg = f[0].value;
	if (f[1].type == JSON_TOKEN_STRING)
		hdr->kid = f[1].value;
	else if (f[1].type != JSON_TOKEN_INVALID)
		hdr->kid_invalid = true;
	return TI_JWT_OK;
}

/*
 * ti_jwt_numeric_date
 *		Convert the lexeme of a JSON number (already validated by the lexer)
 *		to seconds since the epoch.  Fails for values that are not finite.
 */
bool
ti_jwt_numeric_date(const char *lexeme, double *out)
{
	char	   *end;
	double		v;

	if (lexeme == NULL || *lexeme == '\0')
		return false;
	v = strtod(lexeme, &end);
	if (*end != '\0' || isnan(v) || isinf(v))
		return false;
	*out = v;
	return true;
}

static inline int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * ti_uuid_parse_strict
 *		Accept only the canonical 8-4-4-4-12 form (either case), the form
 *		every issuer emits; uuid_in's braces and missing hyphens are refused.
 */
bool
ti_uuid_parse_strict(const char *s, unsigned char out[16])
{
	int			i;
	int			o = 0;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36;)
	{
		int			hi,
					lo;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
			i++;
			continue;
		}
		hi = hex_value(s[i]);
		lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[o++] = (unsigned char) ((hi << 4) | lo);
		i += 2;
	}
	return o == 16;
}

/* append one DER INTEGER holding the unsigned big-endian number n[0..len) */
static size_t
der_integer(const unsigned char *n, size_t len, unsigned char *out)
{
	size_t		o = 0;

	while (len > 1 && n[0] == 0)
	{
		n++;
		len--;
	}
	out[o++] = 0x02;
	if (n[0] & 0x80)
	{
		out[o++] = (unsigned char) (len + 1);
		out[o++] = 0x00;
	}
	else
		out[o++] = (unsigned char) len;
	memcpy(out + o, n, len);
	return o + len;
}

/*
 * ti_ecdsa_raw_to_der
 *		Convert a JWS ECDSA signature (R || S, each the size of the curve
 *		order, RFC 7518 3.4) to the DER ECDSA-Sig-Value OpenSSL verifies.
 *
 * Handles halves of up to 66 bytes (P-521), so lengths stay below 256.
 */
bool
ti_ecdsa_raw_to_der(const unsigned char *raw, size_t rawlen,
					unsigned char *der, size_t dercap, size_t *derlen)
{
	unsigned char body[2 * (2 + 67)];
	size_t		half = rawlen / 2;
	size_t		bodylen;
	size_t		o = 0;

	if (rawlen == 0 || rawlen % 2 != 0 || half > 66)
		return false;

	bodylen = der_integer(raw, half, body);
	bodylen += der_integer(raw + half, half, body + bodylen);

	if (dercap < bodylen + 3)
		return false;
	der[o++] = 0x30;
	if (bodylen >= 0x80)
		der[o++] = 0x81;
	der[o++] = (unsigned char) bodylen;
	memcpy(der + o, body, bodylen);
	*derlen = o + bodylen;
	return true;
}

/*
 * ti_utf8_valid
 *		Strict UTF-8 check (RFC 3629): no overlong forms, no surrogates,
 *		nothing above U+10FFFF, and no NUL byte (claims become a C string).
 */
bool
ti_utf8_valid(const unsigned char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		size_t		n;
		uint32		cp;
		uint32		min;
		size_t		k;

		if (c == 0)
			return false;
		if (c < 0x80)
		{
			i++;
			continue;
		}
		else if ((c & 0xE0) == 0xC0)
		{
			n = 2;
			cp = c & 0x1F;
			min = 0x80;
		}
		else if ((c & 0xF0) == 0xE0)
		{
			n = 3;
			cp = c & 0x0F;
			min = 0x800;
		}
		else if ((c & 0xF8) == 0xF0)
		{
			n = 4;
			cp = c & 0x07;
			min = 0x10000;
		}
		else
			return false;

		if (len - i < n)
			return false;
		for (k = 1; k < n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n;
	}
	return true;
}
