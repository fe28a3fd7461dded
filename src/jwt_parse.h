/*-------------------------------------------------------------------------
 *
 * jwt_parse.h
 *	  Pure parsing helpers for JSON Web Tokens, shared by the backend
 *	  (src/jwt.c) and the standalone fuzz target (test/fuzz/fuzz_jwt.c).
 *
 * Nothing here touches catalogs, GUCs, OpenSSL or the error machinery: every
 * function reports failure through its return value, so the same object
 * file can be linked against libpgcommon in a frontend program.  Memory is
 * allocated with palloc (backend: the current memory context; frontend:
 * whatever palloc the program links).
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/jwt_parse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TI_JWT_PARSE_H
#define TI_JWT_PARSE_H

#include "common/jsonapi.h"

/* Deepest JSON nesting accepted in a header or payload. */
#define TI_JWT_MAX_JSON_DEPTH	64

/* Bytes needed to decode n base64url characters (plus one spare). */
#define TI_B64URL_DECODED_MAX(n)	(((n) / 4) * 3 + 3)

/* The algorithms a registered key may name. */
typedef enum TiJwtAlg
{
	TI_JWT_ALG_INVALID = 0,
	TI_JWT_ALG_HS256,
	TI_JWT_ALG_HS384,
	TI_JWT_ALG_HS512,
	TI_JWT_ALG_RS256,
	TI_JWT_ALG_RS384,
	TI_JWT_ALG_RS512,
	TI_JWT_ALG_PS256,
	TI_JWT_ALG_ES256,
	TI_JWT_ALG_ES384,
	TI_JWT_ALG_EDDSA
} TiJwtAlg;

#define TI_JWT_ALG_IS_HMAC(a)	((a) >= TI_JWT_ALG_HS256 && (a) <= TI_JWT_ALG_HS512)
#define TI_JWT_ALG_IS_RSA(a)	((a) >= TI_JWT_ALG_RS256 && (a) <= TI_JWT_ALG_PS256)
#define TI_JWT_ALG_IS_EC(a)		((a) == TI_JWT_ALG_ES256 || (a) == TI_JWT_ALG_ES384)

/* Outcome of the structural checks. */
typedef enum TiJwtStatus
{
	TI_JWT_OK = 0,
	TI_JWT_MALFORMED,			/* not base64url, not JSON, wrong shape */
	TI_JWT_DUPLICATE,			/* a member name occurs twice at the top */
	TI_JWT_CRIT					/* header carries "crit" (RFC 7515 4.1.11) */
} TiJwtStatus;

/* The three segments of a compact JWS, pointing into the token. */
typedef struct TiJwtSegments
{
	const char *header;
	size_t		header_len;
	const char *payload;
	size_t		payload_len;
	const char *signature;
	size_t		signature_len;
	size_t		signing_input_len;	/* header '.' payload */
} TiJwtSegments;

/*
 * One top-level member to capture from a JSON object.  "name" is input; the
 * rest is output.  type is JSON_TOKEN_INVALID when the member is absent,
 * JSON_TOKEN_OBJECT_START / JSON_TOKEN_ARRAY_START for containers, else the
 * scalar's token type with its de-escaped text (strings) or lexeme (numbers,
 * true, false, null) in value.  For arrays, the string elements of the
 * first level are collected in elems; nonstrings clears all_strings.
 */
typedef struct TiJsonField
{
	const char *name;
	JsonTokenType type;
	char	   *value;
	char	  **elems;
	int			nelems;
	bool		all_strings;
} TiJsonField;

/* What the header of a token says. */
typedef struct TiJwtHeader
{
	char	   *alg;			/* NULL when absent or not a string */
	char	   *kid;			/* NULL when absent */
	bool		kid_invalid;	/* kid present but not a string */
} TiJwtHeader;

extern const char *ti_jwt_alg_name(TiJwtAlg alg);
extern TiJwtAlg ti_jwt_alg_from_name(const char *name);

extern bool ti_jwt_split(const char *token, size_t len, TiJwtSegments *seg);
extern bool ti_b64url_decode(const char *in, size_t len,
							 unsigned char *out, size_t *outlen);
extern bool ti_json_depth_ok(const char *json, size_t len, int maxdepth);
extern TiJwtStatus ti_json_top_fields(const char *json, size_t len,
									  TiJsonField *fields, int nfields);
extern TiJwtStatus ti_jwt_parse_header(const char *json, size_t len,
									   TiJwtHeader *hdr);
extern bool ti_jwt_numeric_date(const char *lexeme, double *out);
extern bool ti_uuid_parse_strict(const char *s, unsigned char out[16]);
extern bool ti_ecdsa_raw_to_der(const unsigned char *raw, size_t rawlen,
								unsigned char *der, size_t dercap,
								size_t *derlen);
extern bool ti_utf8_valid(const unsigned char *s, size_t len);

#endif							/* TI_JWT_PARSE_H */
