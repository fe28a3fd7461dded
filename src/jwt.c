/*-------------------------------------------------------------------------
 *
 * jwt.c
 *	  JWT login: tenant_isolation.login(), login_local(), current_claims(),
 *	  the JWT key catalog helpers and the per-backend caches behind them.
 *
 * A token is accepted only if every check passes: size, structure (see
 * jwt_parse.c), an algorithm from our list that equals the registered alg of
 * the key (no "none", no alg confusion), the signature, exp/nbf with the
 * leeway, iss/aud when the key names them, and a tenant claim naming an
 * existing, active tenant.  Any failure, including errors we did not raise
 * ourselves, poisons the tenant context before the error propagates, so a
 * failed login never leaves the previous tenant behind.
 *
 * Caches and their lifetime rules:
 *
 * - Keys.  tenant_isolation.jwt_key is read once per backend with a fresh
 *	 catalog snapshot and kept parsed (EVP_PKEY, keyed HMAC contexts, raw
 *	 Ed25519 keys) in ti_jwt_key_cxt.  A statement trigger on the table sends
 *	 a relcache invalidation for it on every write; our relcache callback only
 *	 bumps ti_jwt_keys_gen.  The keys are freed and reloaded at the next
 *	 cache miss, never inside the callback, so pointers into the cache stay
 *	 valid for the rest of the login that holds them.  A load records the
 *	 generation it started from only when it completes: one interrupted by
 *	 an error (a lock timeout on jwt_key, a cancel) leaves the cache marked
 *	 unloaded, never as a valid empty or partial key set (issue 16), and an
 *	 invalidation that arrives while it reads makes the next login reload.
 *
 * - Verified tokens.  A hash table in ti_jwt_token_cxt keyed by the whole
 *	 token (a copy of its bytes; hashed with hash_bytes, compared in full, see
 *	 ti_jwt_cache_match) remembers tenant, exp, nbf and claims of tokens that
 *	 passed every signature and claim check.  It is bounded (TI_JWT_CACHE_SIZE
 *	 entries), entries are dropped when exp passes, and the whole table is
 *	 discarded when the keys or tenant_claim change.  A hit skips only the
 *	 cryptography and the JSON work: exp/nbf are re-checked against the
 *	 current leeway and the tenant's status is looked up every time.
 *
 * OpenSSL objects made during a verification are freed before any ereport;
 * long-lived ones belong to the key cache.  The OpenSSL error queue is
 * cleared after every failed call so it cannot confuse the SSL connection
 * code of the backend.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/jwt.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "access/detoast.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "common/hashfn.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "jwt_parse.h"
#include "tenant_isolation.h"

/*
 * The pure token parser lives in jwt_parse.c so that the fuzz target can
 * compile it alone; the extension compiles it here (as like.c includes
 * like_match.c), so the Makefile needs no extra object.
 */
#include "jwt_parse.c"

/* GUC variables (declared in tenant_isolation.h) */
char	   *ti_tenant_claim = NULL;
int			ti_jwt_leeway = 30;
bool		ti_allow_session_login = true;
int			ti_jwt_max_token_size = 16384;

#define TI_JWT_CACHE_SIZE		256
#define TI_JWT_MIN_RSA_BITS		2048
#define TI_JWT_REDACTED			"<tenant_isolation.login redacted>"
#define TI_JWT_KEY_REDACTED		"<tenant_isolation.add_jwt_key redacted>"

/* A registered key, ready to verify with. */
typedef struct TiJwtKey
{
	char	   *kid;
	TiJwtAlg	alg;
	char	   *issuer;			/* NULL: iss is not checked */
	char	   *audience;		/* NULL: aud is not checked */
	EVP_MAC_CTX *mac;			/* HS*: HMAC context keyed with the secret */
	EVP_PKEY   *pkey;			/* RS*, PS256, ES* */
	unsigned char ed25519[crypto_sign_PUBLICKEYBYTES];	/* EdDSA */
} TiJwtKey;

/* The key of the token cache: the token's bytes, not NUL-terminated. */
typedef struct TiJwtTokenKey
{
	const char *token;			/* in ti_jwt_token_cxt for a stored entry */
	size_t		len;
} TiJwtTokenKey;

/* A token that passed every check but the tenant's status. */
typedef struct TiJwtCacheEntry
{
	TiJwtTokenKey key;			/* hash key: the whole token */
	pg_uuid_t	tenant;
	double		exp;
	double		nbf;			/* -infinity when the token has none */
	char	   *claims;			/* in ti_jwt_token_cxt */
} TiJwtCacheEntry;

/* What a full verification found out. */
typedef struct TiJwtVerified
{
	pg_uuid_t	tenant;
	double		exp;
	double		nbf;
	char	   *claims;
} TiJwtVerified;

/* key cache */
static MemoryContext ti_jwt_key_cxt = NULL;
static TiJwtKey *ti_jwt_keys = NULL;
static int	ti_jwt_nkeys = 0;
static uint64 ti_jwt_keys_gen = 1;	/* bumped by the relcache callback */
static uint64 ti_jwt_keys_loaded = 0;	/* generation loaded; 0: none */
static Oid	ti_jwt_key_relid = InvalidOid;

/* token cache */
static MemoryContext ti_jwt_token_cxt = NULL;
static HTAB *ti_jwt_tokens = NULL;
static bool ti_jwt_tokens_stale = false;

/* OpenSSL objects fetched once per backend */
static bool ti_jwt_crypto_ready = false;
static EVP_MAC *ti_hmac = NULL;
static EVP_MD *ti_sha256 = NULL;
static EVP_MD *ti_sha384 = NULL;
static EVP_MD *ti_sha512 = NULL;
static EVP_MD_CTX *ti_hash_ctx = NULL;

/* set while ti_jwt_reject() runs, so the PG_CATCH does not poison twice */
static bool ti_jwt_rejecting = false;

static void ti_jwt_reject(const char *reason, const char *kid) pg_attribute_noreturn();
static void ti_jwt_reject_status(TiJwtStatus st, bool header) pg_attribute_noreturn();

PG_FUNCTION_INFO_V1(ti_login);
PG_FUNCTION_INFO_V1(ti_login_local);
PG_FUNCTION_INFO_V1(ti_current_claims);
PG_FUNCTION_INFO_V1(ti_jwt_key_check);
PG_FUNCTION_INFO_V1(ti_jwt_keys_changed);


/* ---------- GUCs, callbacks, crypto setup ---------- */

/*
 * The claim name must not be empty; anything else is a valid JSON name.
 */
static bool
ti_jwt_check_claim(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errmsg("tenant_isolation.tenant_claim must not be empty");
		return false;
	}
	return true;
}

/*
 * Cached tokens were checked for the old claim name: forget them.  Assign
 * hooks must not fail, so only a flag is set.
 */
static void
ti_jwt_assign_claim(const char *newval, void *extra)
{
	ti_jwt_tokens_stale = true;
}

/*
 * Relcache callback: a write to jwt_key (the statement trigger), the table's
 * own DDL, or a cache reset (relid 0) makes both caches stale.  Never free
 * anything here; see the file header.
 */
static void
ti_jwt_relcache_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid ||
		(OidIsValid(ti_jwt_key_relid) && relid == ti_jwt_key_relid))
	{
		ti_jwt_keys_gen++;
		ti_jwt_tokens_stale = true;
	}
}

/*
 * ti_jwt_init
 *		Define the JWT GUCs and register the cache callback.  Called from
 *		_PG_init.
 */
void
ti_jwt_init(void)
{
	DefineCustomStringVariable("tenant_isolation.tenant_claim",
							   "Name of the JWT claim that holds the tenant id.",
							   NULL,
							   &ti_tenant_claim,
							   "tenant_id",
							   PGC_SUSET,
							   0,
							   ti_jwt_check_claim,
							   ti_jwt_assign_claim,
							   NULL);

	DefineCustomIntVariable("tenant_isolation.jwt_leeway",
							"Clock skew tolerated when checking the exp and nbf claims of a JWT.",
							NULL,
							&ti_jwt_leeway,
							30,
							0,
							3600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL,
							NULL,
							NULL);

	DefineCustomBoolVariable("tenant_isolation.allow_session_login",
							 "Allows session-scoped login(); off holds a role to login_local().",
							 "Turn it off for roles that connect through a transaction-pooling proxy.",
							 &ti_allow_session_login,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_isolation.jwt_max_token_size",
							"Largest JWT that login accepts.",
							NULL,
							&ti_jwt_max_token_size,
							16384,
							256,
							1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL,
							NULL,
							NULL);

	ti_register_relcache_callback(ti_jwt_relcache_cb);	/* catalog.c */
}

/*
 * Fetch the OpenSSL algorithms once per backend (fetching per call costs
 * more than an HS256 verification) and initialise libsodium.
 */
static void
ti_jwt_crypto_init(void)
{
	if (ti_jwt_crypto_ready)
		return;

	if (sodium_init() < 0)
		elog(ERROR, "could not initialize libsodium");
	if (ti_hmac == NULL)
		ti_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (ti_sha256 == NULL)
		ti_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (ti_sha384 == NULL)
		ti_sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
	if (ti_sha512 == NULL)
		ti_sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
	if (ti_hash_ctx == NULL)
		ti_hash_ctx = EVP_MD_CTX_new();
	if (!ti_hmac || !ti_sha256 || !ti_sha384 || !ti_sha512 || !ti_hash_ctx)
	{
		ERR_clear_error();
		elog(ERROR, "could not initialize OpenSSL digests for JWT verification");
	}
	ti_jwt_crypto_ready = true;
}

/* The digest an algorithm signs with. */
static const EVP_MD *
ti_jwt_alg_md(TiJwtAlg alg)
{
	switch (alg)
	{
		case TI_JWT_ALG_HS256:
		case TI_JWT_ALG_RS256:
		case TI_JWT_ALG_PS256:
		case TI_JWT_ALG_ES256:
			return ti_sha256;
		case TI_JWT_ALG_HS384:
		case TI_JWT_ALG_RS384:
		case TI_JWT_ALG_ES384:
			return ti_sha384;
		case TI_JWT_ALG_HS512:
		case TI_JWT_ALG_RS512:
			return ti_sha512;
		default:
			return NULL;
	}
}

/*
 * ti_sha256_buf
 *		SHA-256 of a buffer with the backend's reusable digest context.
 */
static void
ti_sha256_buf(const void *data, size_t len, unsigned char out[32])
{
	unsigned int outlen = 0;

	if (EVP_DigestInit_ex(ti_hash_ctx, ti_sha256, NULL) != 1 ||
		EVP_DigestUpdate(ti_hash_ctx, data, len) != 1 ||
		EVP_DigestFinal_ex(ti_hash_ctx, out, &outlen) != 1 ||
		outlen != 32)
	{
		ERR_clear_error();
		elog(ERROR, "SHA-256 computation failed");
	}
}

static char *
ti_hex(const unsigned char *b, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char	   *s = palloc(len * 2 + 1);
	size_t		i;

	for (i = 0; i < len; i++)
	{
		s[2 * i] = digits[b[i] >> 4];
		s[2 * i + 1] = digits[b[i] & 0x0F];
	}
	s[len * 2] = '\0';
	return s;
}


/* ---------- keys ---------- */

/* Release the OpenSSL objects of one key. */
static void
ti_jwt_key_release(TiJwtKey *key)
{
	if (key->mac)
		EVP_MAC_CTX_free(key->mac);
	if (key->pkey)
		EVP_PKEY_free(key->pkey);
	key->mac = NULL;
	key->pkey = NULL;
	sodium_memzero(key->ed25519, sizeof(key->ed25519));
}

/*
 * ti_jwt_key_build
 *		Turn registered key material into a TiJwtKey (mac, pkey or ed25519)
 *		and compute its fingerprint.
 *
 * Returns NULL on success, or a message that says what is wrong without any
 * of the material.  Raises no errors itself (OOM aside), so callers can
 * decide whether a bad key is a user error (add time) or a log line (load
 * time).  On success the caller owns the objects (ti_jwt_key_release).
 */
static const char *
ti_jwt_key_build(TiJwtAlg alg, const char *material, size_t len,
				 TiJwtKey *out, unsigned char fingerprint[32])
{
	const char *problem = NULL;

	memset(out, 0, sizeof(*out));
	out->alg = alg;

	if (TI_JWT_ALG_IS_HMAC(alg))
	{
		const EVP_MD *md = ti_jwt_alg_md(alg);
		OSSL_PARAM	params[2];

		/* RFC 7518 3.2: a key at least as long as the hash output */
		if (len < (size_t) EVP_MD_get_size(md))
			return "HMAC secret is too short";
		if (len >= 10 && strncmp(material, "-----BEGIN", 10) == 0)
			return "HMAC secret must not be a PEM key";

		out->mac = EVP_MAC_CTX_new(ti_hmac);
		if (out->mac == NULL)
			problem = "could not create HMAC context";
		else
		{
			params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
														 (char *) EVP_MD_get0_name(md), 0);
			params[1] = OSSL_PARAM_construct_end();
			if (EVP_MAC_init(out->mac, (const unsigned char *) material, len,
							 params) != 1)
				problem = "could not key HMAC context";
		}
		if (problem == NULL)
			ti_sha256_buf(material, len, fingerprint);
	}
	else
	{
		BIO		   *bio;
		EVP_PKEY   *pkey = NULL;

		if (len > INT_MAX)
			return "key is too long";
		bio = BIO_new_mem_buf(material, (int) len);
		if (bio != NULL)
		{
			pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
			BIO_free(bio);
		}
		out->pkey = pkey;

		if (pkey == NULL)
			problem = "key is not a PEM public key (-----BEGIN PUBLIC KEY-----)";
		else if (TI_JWT_ALG_IS_RSA(alg))
		{
			bool		rsa = EVP_PKEY_is_a(pkey, "RSA") ||
				(alg == TI_JWT_ALG_PS256 && EVP_PKEY_is_a(pkey, "RSA-PSS"));

			if (!rsa)
				problem = "key is not an RSA public key";
			else if (EVP_PKEY_get_bits(pkey) < TI_JWT_MIN_RSA_BITS)
				problem = "RSA key is shorter than 2048 bits";
		}
		else if (TI_JWT_ALG_IS_EC(alg))
		{
			char		group[64];
			size_t		glen = 0;
			const char *want = alg == TI_JWT_ALG_ES256 ? "prime256v1" : "secp384r1";
			const char *want_nist = alg == TI_JWT_ALG_ES256 ? "P-256" : "P-384";

			if (!EVP_PKEY_is_a(pkey, "EC") ||
				EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1)
				problem = "key is not an EC public key";
			else if (strcmp(group, want) != 0 && strcmp(group, want_nist) != 0)
				problem = alg == TI_JWT_ALG_ES256 ?
					"ES256 needs a key on curve P-256" :
					"ES384 needs a key on curve P-384";
		}
		else if (alg == TI_JWT_ALG_EDDSA)
		{
			size_t		rawlen = sizeof(out->ed25519);

			if (!EVP_PKEY_is_a(pkey, "ED25519"))
				problem = "key is not an Ed25519 public key";
			else if (EVP_PKEY_get_raw_public_key(pkey, out->ed25519, &rawlen) != 1 ||
					 rawlen != sizeof(out->ed25519))
				problem = "could not read the Ed25519 public key";
		}
		else
			problem = "unsupported algorithm";

		if (problem == NULL)
		{
			unsigned char *der = NULL;
			int			derlen = i2d_PUBKEY(pkey, &der);

			if (derlen <= 0)
				problem = "could not encode the public key";
			else
				ti_sha256_buf(der, derlen, fingerprint);
			OPENSSL_free(der);
		}
		/* EdDSA verifies with libsodium and needs only the raw bytes */
		if (problem == NULL && alg == TI_JWT_ALG_EDDSA)
		{
			EVP_PKEY_free(out->pkey);
			out->pkey = NULL;
		}
	}

	if (problem != NULL)
		ti_jwt_key_release(out);
	ERR_clear_error();
	return problem;
}

/* Free every key of the cache and its memory. */
static void
ti_jwt_keys_free(void)
{
	int			i;

	for (i = 0; i < ti_jwt_nkeys; i++)
		ti_jwt_key_release(&ti_jwt_keys[i]);
	ti_jwt_keys = NULL;
	ti_jwt_nkeys = 0;
	if (ti_jwt_key_cxt != NULL)
		MemoryContextReset(ti_jwt_key_cxt);
}

/* Find the OID of tenant_isolation.jwt_key, InvalidOid when absent. */
static Oid
ti_jwt_key_table(void)
{
	Oid			nsp = get_namespace_oid(TI_SCHEMA, true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid("jwt_key", nsp);
}

/*
 * ti_jwt_keys_load
 *		(Re)build the key cache if an invalidation made it stale.
 *
 * The table is read directly (the caller of login() has no privilege on it)
 * with a catalog snapshot, which for a table without a syscache is taken
 * fresh on every scan: we see every committed key and our own transaction's
 * changes.  The generation is read before anything is looked up and
 * recorded as loaded only at the end, so an invalidation that arrives while
 * we read, or an error half way, makes the next login reload.
 */
static void
ti_jwt_keys_load(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	TupleDesc	desc;
	AttrNumber	a_kid,
				a_alg,
				a_key,
				a_iss,
				a_aud;
	int			cap = 8;
	Oid			relid;
	uint64		gen = ti_jwt_keys_gen;

	if (ti_jwt_keys_loaded == gen)
		return;

	ti_jwt_crypto_init();
	if (ti_jwt_key_cxt == NULL)
		ti_jwt_key_cxt = AllocSetContextCreate(TopMemoryContext,
											   "tenant_isolation JWT keys",
											   ALLOCSET_SMALL_SIZES);
	ti_jwt_keys_loaded = 0;
	ti_jwt_keys_free();
	ti_jwt_tokens_stale = true;

	relid = ti_jwt_key_table();
	ti_jwt_key_relid = relid;
	if (!OidIsValid(relid))
		return;					/* not cached: nothing to invalidate it */

	a_kid = get_attnum(relid, "kid");
	a_alg = get_attnum(relid, "alg");
	a_key = get_attnum(relid, "key");
	a_iss = get_attnum(relid, "issuer");
	a_aud = get_attnum(relid, "audience");
	if (a_kid <= 0 || a_alg <= 0 || a_key <= 0 || a_iss <= 0 || a_aud <= 0)
		elog(ERROR, "table tenant_isolation.jwt_key has an unexpected shape");

	ti_jwt_keys = MemoryContextAllocZero(ti_jwt_key_cxt, sizeof(TiJwtKey) * cap);

	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d;
		char	   *kid;
		char	   *algname;
		text	   *material;
		TiJwtAlg	alg;
		TiJwtKey	key;
		unsigned char fp[32];
		const char *problem;

		d = heap_getattr(tup, a_kid, desc, &isnull);
		if (isnull)
			continue;
		kid = TextDatumGetCString(d);
		d = heap_getattr(tup, a_alg, desc, &isnull);
		if (isnull)
			continue;
		algname = TextDatumGetCString(d);
		alg = ti_jwt_alg_from_name(algname);
		d = heap_getattr(tup, a_key, desc, &isnull);
		if (isnull || alg == TI_JWT_ALG_INVALID)
			continue;

		material = DatumGetTextPP(d);
		problem = ti_jwt_key_build(alg, VARDATA_ANY(material),
								   VARSIZE_ANY_EXHDR(material), &key, fp);
		/* a detoasted copy of a secret must not linger in palloc'd memory */
		if ((Pointer) material != DatumGetPointer(d))
		{
			sodium_memzero(material, VARSIZE_ANY(material));
			pfree(material);
		}
		if (problem != NULL)
		{
			ereport(WARNING,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ignoring JWT key \"%s\": %s", kid, problem)));
			continue;
		}

		if (ti_jwt_nkeys >= cap)
		{
			cap *= 2;
			ti_jwt_keys = repalloc(ti_jwt_keys, sizeof(TiJwtKey) * cap);
		}
		/* store first, so that ti_jwt_keys_free() releases it whatever comes */
		ti_jwt_keys[ti_jwt_nkeys++] = key;
		ti_jwt_keys[ti_jwt_nkeys - 1].kid =
			MemoryContextStrdup(ti_jwt_key_cxt, kid);
		d = heap_getattr(tup, a_iss, desc, &isnull);
		if (!isnull)
			ti_jwt_keys[ti_jwt_nkeys - 1].issuer =
				MemoryContextStrdup(ti_jwt_key_cxt, TextDatumGetCString(d));
		d = heap_getattr(tup, a_aud, desc, &isnull);
		if (!isnull)
			ti_jwt_keys[ti_jwt_nkeys - 1].audience =
				MemoryContextStrdup(ti_jwt_key_cxt, TextDatumGetCString(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	ti_jwt_keys_loaded = gen;
}


/* ---------- signatures ---------- */

/*
 * ti_jwt_verify_signature
 *		Does sig (decoded) sign msg under key?  The key's alg has already been
 *		matched against the header.  Returns false on every failure; frees all
 *		it allocates and leaves the OpenSSL error queue empty.
 */
static bool
ti_jwt_verify_signature(const TiJwtKey *key,
						const unsigned char *msg, size_t msglen,
						const unsigned char *sig, size_t siglen)
{
	bool		ok = false;

	if (TI_JWT_ALG_IS_HMAC(key->alg))
	{
		unsigned char mac[EVP_MAX_MD_SIZE];
		size_t		maclen = 0;

		/* a NULL key re-initialises the context with the secret it holds */
		if (EVP_MAC_init(key->mac, NULL, 0, NULL) == 1 &&
			EVP_MAC_update(key->mac, msg, msglen) == 1 &&
			EVP_MAC_final(key->mac, mac, &maclen, sizeof(mac)) == 1)
			ok = (siglen == maclen && CRYPTO_memcmp(mac, sig, maclen) == 0);
		OPENSSL_cleanse(mac, sizeof(mac));
	}
	else if (key->alg == TI_JWT_ALG_EDDSA)
	{
		ok = (siglen == crypto_sign_BYTES &&
			  crypto_sign_verify_detached(sig, msg, msglen, key->ed25519) == 0);
	}
	else
	{
		const EVP_MD *md = ti_jwt_alg_md(key->alg);
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pctx = NULL;
		unsigned char der[2 * (3 + 67) + 3];
		const unsigned char *vsig = sig;
		size_t		vlen = siglen;
		bool		ready = (mctx != NULL);

		if (ready && TI_JWT_ALG_IS_EC(key->alg))
		{
			size_t		want = key->alg == TI_JWT_ALG_ES256 ? 64 : 96;

			ready = (siglen == want &&
					 ti_ecdsa_raw_to_der(sig, siglen, der, sizeof(der), &vlen));
			vsig = der;
		}
		if (ready)
			ready = EVP_DigestVerifyInit(mctx, &pctx, md, NULL, key->pkey) == 1;
		if (ready && key->alg == TI_JWT_ALG_PS256)
			ready = (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
					 EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0 &&
					 EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0);
		if (ready)
			ok = EVP_DigestVerify(mctx, vsig, vlen, msg, msglen) == 1;
		EVP_MD_CTX_free(mctx);	/* frees pctx too */
	}

	if (!ok)
		ERR_clear_error();
	return ok;
}


/* ---------- rejection ---------- */

/*
 * The kid for the server log: only short printable ASCII, so a hostile
 * header cannot forge log lines.
 */
static const char *
ti_jwt_loggable_kid(const char *kid)
{
	const char *p;

	if (kid == NULL)
		return NULL;
	if (strlen(kid) > 64)
		return "(too long to show)";
	for (p = kid; *p; p++)
	{
		if (*p < 0x20 || *p > 0x7E || *p == '"' || *p == '\\')
			return "(not printable)";
	}
	return kid;
}

/*
 * ti_jwt_reject
 *		Fail a login: poison the context first (a failed login leaves no
 *		context, not even the previous one), audit, then raise 28000 with the
 *		reason.  The statement and the context (PL/pgSQL shows the SQL
 *		statement that called login) are hidden from the log because they
 *		may contain the token as a literal.
 */
static void
ti_jwt_reject(const char *reason, const char *kid)
{
	const char *logkid = ti_jwt_loggable_kid(kid);

	ti_jwt_rejecting = true;
	ti_ctx_poison(true);
	ti_audit("login_failed", NULL, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
			 reason);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("%s", reason),
			 logkid ? errdetail_log("JWT key id \"%s\".", logkid) : 0,
			 errhidestmt(true),
			 errhidecontext(true)));
	pg_unreachable();
}

/* Reason for a structural failure of header or payload. */
static void
ti_jwt_reject_status(TiJwtStatus st, bool header)
{
	if (st == TI_JWT_DUPLICATE)
		ti_jwt_reject(header ? "duplicate header parameter in JWT" :
					  "duplicate claim in JWT", NULL);
	if (st == TI_JWT_CRIT)
		ti_jwt_reject("JWT critical header parameter not supported", NULL);
	ti_jwt_reject("malformed JWT", NULL);
}


/* ---------- verification ---------- */

/* Seconds since the Unix epoch, as a double. */
static double
ti_jwt_now(void)
{
	TimestampTz now = GetCurrentTimestamp();

	return (double) now / USECS_PER_SEC +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

/* exp/nbf against the clock and the current leeway; rejects on failure */
static void
ti_jwt_check_times(double exp, double nbf, const char *kid)
{
	double		now = ti_jwt_now();

	if (now >= exp + ti_jwt_leeway)
		ti_jwt_reject("JWT expired", kid);
	if (now + ti_jwt_leeway < nbf)
		ti_jwt_reject("JWT not yet valid", kid);
}

/* Decode a base64url segment into a NUL-terminated palloc'd buffer. */
static unsigned char *
ti_jwt_decode_segment(const char *seg, size_t len, size_t *outlen)
{
	unsigned char *buf = palloc(TI_B64URL_DECODED_MAX(len) + 1);

	if (!ti_b64url_decode(seg, len, buf, outlen))
		ti_jwt_reject("malformed JWT", NULL);
	buf[*outlen] = '\0';
	return buf;
}

/*
 * ti_jwt_verify_full
 *		Every check except the tenant's status, on a token not in the cache.
 */
static void
ti_jwt_verify_full(const char *token, size_t len, TiJwtVerified *out)
{
	TiJwtSegments seg;
	TiJwtHeader hdr;
	TiJwtStatus st;
	TiJwtAlg alg;
	unsigned char *buf;
	unsigned char *sig;
	size_t		buflen;
	size_t		siglen;
	const TiJwtKey *key = NULL;
	TiJsonField f[5];
	unsigned char tenant[16];
	int			i;

	if (!ti_jwt_split(token, len, &seg))
		ti_jwt_reject("malformed JWT", NULL);

	/* header: structure, algorithm */
	buf = ti_jwt_decode_segment(seg.header, seg.header_len, &buflen);
	if (!ti_utf8_valid(buf, buflen))
		ti_jwt_reject("malformed JWT", NULL);
	st = ti_jwt_parse_header((char *) buf, buflen, &hdr);
	if (st != TI_JWT_OK)
		ti_jwt_reject_status(st, true);
	if (hdr.kid_invalid)
		ti_jwt_reject("malformed JWT", NULL);
	alg = ti_jwt_alg_from_name(hdr.alg);
	if (alg == TI_JWT_ALG_INVALID)
		ti_jwt_reject("JWT algorithm not allowed", hdr.kid);

	/* key and signature */
	sig = ti_jwt_decode_segment(seg.signature, seg.signature_len, &siglen);
	ti_jwt_keys_load();
	if (hdr.kid != NULL)
	{
		for (i = 0; i < ti_jwt_nkeys; i++)
		{
			if (strcmp(ti_jwt_keys[i].kid, hdr.kid) == 0)
			{
				key = &ti_jwt_keys[i];
				break;
			}
		}
		if (key == NULL)
			ti_jwt_reject("unknown key id", hdr.kid);
		if (key->alg != alg)
			ti_jwt_reject("JWT algorithm not allowed", hdr.kid);
		if (!ti_jwt_verify_signature(key, (const unsigned char *) token,
									 seg.signing_input_len, sig, siglen))
			ti_jwt_reject("JWT signature invalid", hdr.kid);
	}
	else
	{
		bool		candidates = false;

		/* no kid: only keys registered for exactly this algorithm */
		for (i = 0; i < ti_jwt_nkeys && key == NULL; i++)
		{
			if (ti_jwt_keys[i].alg != alg)
				continue;
			candidates = true;
			if (ti_jwt_verify_signature(&ti_jwt_keys[i],
										(const unsigned char *) token,
										seg.signing_input_len, sig, siglen))
				key = &ti_jwt_keys[i];
		}
		if (!candidates)
			ti_jwt_reject("JWT algorithm not allowed", NULL);
		if (key == NULL)
			ti_jwt_reject("JWT signature invalid", NULL);
	}

	/* payload, parsed only now that it is known to be signed */
	buf = ti_jwt_decode_segment(seg.payload, seg.payload_len, &buflen);
	if (!ti_utf8_valid(buf, buflen))
		ti_jwt_reject("malformed JWT", key->kid);
	f[0].name = "exp";
	f[1].name = "nbf";
	f[2].name = "iss";
	f[3].name = "aud";
	f[4].name = ti_tenant_claim;
	st = ti_json_top_fields((char *) buf, buflen, f, 5);
	if (st != TI_JWT_OK)
		ti_jwt_reject_status(st, false);

	if (f[0].type != JSON_TOKEN_NUMBER ||
		!ti_jwt_numeric_date(f[0].value, &out->exp))
		ti_jwt_reject("JWT exp claim missing or invalid", key->kid);
	out->nbf = -get_float8_infinity();
	if (f[1].type != JSON_TOKEN_INVALID &&
		(f[1].type != JSON_TOKEN_NUMBER ||
		 !ti_jwt_numeric_date(f[1].value, &out->nbf)))
		ti_jwt_reject("JWT nbf claim invalid", key->kid);
	ti_jwt_check_times(out->exp, out->nbf, key->kid);

	if (key->issuer != NULL &&
		(f[2].type != JSON_TOKEN_STRING || strcmp(f[2].value, key->issuer) != 0))
		ti_jwt_reject("JWT issuer mismatch", key->kid);

	if (key->audience != NULL)
	{
		bool		match = false;

		if (f[3].type == JSON_TOKEN_STRING)
			match = strcmp(f[3].value, key->audience) == 0;
		else if (f[3].type == JSON_TOKEN_ARRAY_START)
		{
			for (i = 0; i < f[3].nelems && !match; i++)
				match = strcmp(f[3].elems[i], key->audience) == 0;
		}
		if (!match)
			ti_jwt_reject("JWT audience mismatch", key->kid);
	}

	if (f[4].type != JSON_TOKEN_STRING ||
		!ti_uuid_parse_strict(f[4].value, tenant))
		ti_jwt_reject("tenant claim missing or not a uuid", key->kid);
	memcpy(out->tenant.data, tenant, UUID_LEN);

	/* claims as the server will show them: JSON is UTF-8 (RFC 8259) */
	if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
		out->claims = (char *) buf;
	else
		out->claims = pg_any_to_server((char *) buf, buflen, PG_UTF8);
}


/* ---------- token cache ---------- */

/*
 * The token cache is keyed by the whole token.  Its hash (hash_bytes) only
 * chooses a bucket and is not a secret or a security boundary: a hit needs
 * ti_jwt_cache_match, a comparison of every byte of the token with one that
 * passed the full verification (signature, algorithm, claims) in this
 * backend.  So two different tokens never share an entry, whatever their
 * hashes: a collision, even one an attacker made on purpose, costs at most
 * a longer bucket chain (the table holds TI_JWT_CACHE_SIZE entries), never
 * a login with another token's tenant or claims.  The comparison takes the
 * same time whatever bytes differ (ti_jwt_cache_match), so its timing cannot
 * tell a caller how much of a cached token it has guessed.  (Until 1.1 the
 * key was SHA-256 of the token: 8,000 instructions per login for a property
 * the exact comparison gives without it.)
 */
static uint32
ti_jwt_cache_hash(const void *key, Size keysize)
{
	const TiJwtTokenKey *k = (const TiJwtTokenKey *) key;

	return hash_bytes((const unsigned char *) k->token, (int) k->len);
}

static int
ti_jwt_cache_match(const void *key1, const void *key2, Size keysize)
{
	const TiJwtTokenKey *a = (const TiJwtTokenKey *) key1;
	const TiJwtTokenKey *b = (const TiJwtTokenKey *) key2;
	const char *x = a->token;
	const char *y = b->token;
	size_t		n = a->len;
	uint64		diff = 0;

	if (n != b->len)
		return 1;

	/*
	 * Constant time in the bytes, like CRYPTO_memcmp, but a word at a time
	 * (CRYPTO_memcmp goes byte by byte: 1,300 instructions for a 200-byte
	 * token): every word is loaded and folded in, nothing exits early.
	 */
	while (n >= sizeof(uint64))
	{
		uint64		wx,
					wy;

		memcpy(&wx, x, sizeof(uint64));
		memcpy(&wy, y, sizeof(uint64));
		diff |= wx ^ wy;
		x += sizeof(uint64);
		y += sizeof(uint64);
		n -= sizeof(uint64);
	}
	while (n-- > 0)
		diff |= (uint64) (unsigned char) (*x++ ^ *y++);
	return diff != 0;
}

/* Discard the cache if it is stale, create it if missing. */
static void
ti_jwt_tokens_prepare(void)
{
	HASHCTL		ctl;

	if (ti_jwt_token_cxt == NULL)
		ti_jwt_token_cxt = AllocSetContextCreate(TopMemoryContext,
												 "tenant_isolation JWT cache",
												 ALLOCSET_DEFAULT_SIZES);
	if (ti_jwt_tokens_stale)
	{
		/* the tokens are credentials: overwrite them before freeing */
		if (ti_jwt_tokens != NULL)
		{
			HASH_SEQ_STATUS status;
			TiJwtCacheEntry *e;

			hash_seq_init(&status, ti_jwt_tokens);
			while ((e = hash_seq_search(&status)) != NULL)
				explicit_bzero((char *) e->key.token, e->key.len);
		}
		MemoryContextReset(ti_jwt_token_cxt);
		ti_jwt_tokens = NULL;
		ti_jwt_tokens_stale = false;
	}
	if (ti_jwt_tokens != NULL)
		return;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(TiJwtTokenKey);
	ctl.entrysize = sizeof(TiJwtCacheEntry);
	ctl.hash = ti_jwt_cache_hash;
	ctl.match = ti_jwt_cache_match;
	ctl.hcxt = ti_jwt_token_cxt;
	ti_jwt_tokens = hash_create("tenant_isolation JWT cache", TI_JWT_CACHE_SIZE,
								&ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE |
								HASH_CONTEXT);
}

/* Remove one entry, its token copy and its claims. */
static void
ti_jwt_cache_remove(TiJwtCacheEntry *e)
{
	char	   *claims = e->claims;
	TiJwtTokenKey key = e->key;

	hash_search(ti_jwt_tokens, &key, HASH_REMOVE, NULL);
	if (claims)
		pfree(claims);
	explicit_bzero((char *) key.token, key.len);
	pfree((char *) key.token);
}

/*
 * Remember a verified token.  When the table is full, expired entries go
 * first (a sweep at most every TI_JWT_SWEEP_EVERY stores, to keep inserts
 * cheap), then an arbitrary one: the bound matters more than the policy.
 */
#define TI_JWT_SWEEP_EVERY	32

static void
ti_jwt_cache_store(const char *token, size_t len, const TiJwtVerified *v)
{
	static int	stores_since_sweep = 0;
	TiJwtCacheEntry *e;
	bool		found;
	char	   *claims;
	TiJwtTokenKey key;

	if (hash_get_num_entries(ti_jwt_tokens) >= TI_JWT_CACHE_SIZE)
	{
		HASH_SEQ_STATUS status;

		if (++stores_since_sweep >= TI_JWT_SWEEP_EVERY)
		{
			double		now = ti_jwt_now();

			stores_since_sweep = 0;
			hash_seq_init(&status, ti_jwt_tokens);
			while ((e = hash_seq_search(&status)) != NULL)
			{
				if (now >= e->exp + ti_jwt_leeway)
					ti_jwt_cache_remove(e);
			}
		}
		if (hash_get_num_entries(ti_jwt_tokens) >= TI_JWT_CACHE_SIZE)
		{
			hash_seq_init(&status, ti_jwt_tokens);
			e = hash_seq_search(&status);
			hash_seq_term(&status);
			if (e)
				ti_jwt_cache_remove(e);
		}
	}

	/* allocate before entering, so an OOM leaves no half-made entry */
	claims = MemoryContextStrdup(ti_jwt_token_cxt, v->claims);
	key.token = MemoryContextAlloc(ti_jwt_token_cxt, len);
	memcpy((char *) key.token, token, len);
	key.len = len;
	e = hash_search(ti_jwt_tokens, &key, HASH_ENTER, &found);
	if (found)
	{
		/* the entry keeps its own copy of the token */
		explicit_bzero((char *) key.token, len);
		pfree((char *) key.token);
		if (e->claims)
			pfree(e->claims);
	}
	e->tenant = v->tenant;
	e->exp = v->exp;
	e->nbf = v->nbf;
	e->claims = claims;
}


/* ---------- login ---------- */

/*
 * ti_login_guts
 *		Everything login does after redaction; every failure goes through
 *		ti_jwt_reject (or is caught by the caller's PG_CATCH).
 */
static void
ti_login_guts(FunctionCallInfo fcinfo, bool local, pg_uuid_t *result)
{
	text	   *arg;
	const char *token;
	size_t		len;
	Size		rawsize;
	TiJwtTokenKey key;
	TiJwtCacheEntry *hit;
	TiJwtVerified v;
	const char *claims;
	bool		active;

	memset(&v, 0, sizeof(v));

	if (PG_ARGISNULL(0))
		ti_jwt_reject("JWT missing", NULL);

	/* check the size before detoasting a possibly huge value */
	rawsize = toast_raw_datum_size(PG_GETARG_DATUM(0)) - VARHDRSZ;
	if (rawsize == 0)
		ti_jwt_reject("JWT missing", NULL);
	if (rawsize > (Size) ti_jwt_max_token_size)
		ti_jwt_reject("JWT too large", NULL);

	arg = PG_GETARG_TEXT_PP(0);
	token = VARDATA_ANY(arg);
	len = VARSIZE_ANY_EXHDR(arg);

	/*
	 * A token written into a utility statement (CALL, DO, EXECUTE) stays
	 * verbatim in pg_stat_statements and the log: refuse it, even if valid.
	 */
	if (ti_ctx_token_in_statement_text(token, len))
		ti_jwt_reject("JWT written literally into a utility statement", NULL);

	/* a key dropped by another session must be seen now, not at next xact */
	AcceptInvalidationMessages();
	ti_jwt_crypto_init();
	ti_jwt_tokens_prepare();

	key.token = token;
	key.len = len;
	hit = hash_search(ti_jwt_tokens, &key, HASH_FIND, NULL);
	if (hit != NULL)
	{
		double		now = ti_jwt_now();

		if (now >= hit->exp + ti_jwt_leeway || now + ti_jwt_leeway < hit->nbf)
		{
			/* the full path below reports the exact reason */
			ti_jwt_cache_remove(hit);
			hit = NULL;
		}
	}

	if (hit != NULL)
	{
		/* the cache is never freed before our next call: see file header */
		memcpy(result, &hit->tenant, sizeof(pg_uuid_t));
		claims = hit->claims;
	}
	else
	{
		ti_jwt_verify_full(token, len, &v);
		memcpy(result, &v.tenant, sizeof(pg_uuid_t));
		claims = v.claims;
	}

	if (!ti_tenant_status(result, &active))
		ti_jwt_reject("unknown tenant", NULL);
	if (!active)
		ti_jwt_reject("tenant suspended", NULL);

	if (hit == NULL)
		ti_jwt_cache_store(token, len, &v);

	ti_ctx_enter(result, claims, local);
	ti_audit("login", ti_uuid_to_cstring(result), 0, NULL);
}

/*
 * ti_login_common
 *		Redact the activity text, then verify; on any error poison the
 *		context before the error propagates.
 */
static Datum
ti_login_common(FunctionCallInfo fcinfo, bool local)
{
	pg_uuid_t  *result = palloc(sizeof(pg_uuid_t));

	/*
	 * The query text holds the token.  Replace what pg_stat_activity shows
	 * before anything else; it stays replaced after the statement ends,
	 * because the idle report keeps the last text.
	 */
	pgstat_report_activity(STATE_RUNNING, TI_JWT_REDACTED);

	ti_jwt_rejecting = false;
	PG_TRY();
	{
		ti_login_guts(fcinfo, local, result);
	}
	PG_CATCH();
	{
		if (!ti_jwt_rejecting)
			ti_ctx_poison(false);	/* unwinding: cursors close later */
		ti_jwt_rejecting = false;
		PG_RE_THROW();
	}
	PG_END_TRY();

	PG_RETURN_UUID_P(result);
}

/*
 * tenant_isolation.login(token text) RETURNS uuid
 *		Verify a JWT and set the session's tenant context.
 */
Datum
ti_login(PG_FUNCTION_ARGS)
{
	/*
	 * Behind a transaction-pooling proxy a session-scoped context would pass
	 * to the next client on the same server connection.  Roles that connect
	 * through one can be held to login_local() with
	 * ALTER ROLE ... SET tenant_isolation.allow_session_login = off.
	 */
	if (!ti_allow_session_login)
	{
		ti_ctx_poison(true);
		ti_audit("login_failed", NULL, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
				 "session login not allowed");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("session-scoped login is not allowed for this role"),
				 errhint("Use tenant_isolation.login_local() in each transaction.")));
	}
	return ti_login_common(fcinfo, false);
}

/*
 * tenant_isolation.login_local(token text) RETURNS uuid
 *		The same, for the current transaction only (like SET LOCAL).
 */
Datum
ti_login_local(PG_FUNCTION_ARGS)
{
	return ti_login_common(fcinfo, true);
}

/*
 * tenant_isolation.current_claims() RETURNS jsonb
 *		The claims of the token behind the current context, NULL if none.
 */
Datum
ti_current_claims(PG_FUNCTION_ARGS)
{
	const char *claims = ti_context_claims();

	if (claims == NULL)
		PG_RETURN_NULL();
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(claims));
}


/* ---------- key administration ---------- */

/*
 * tenant_isolation._jwt_key_check(kid, alg, key, issuer, audience) RETURNS text
 *		Validate a key before add_jwt_key stores it; return its fingerprint
 *		(SHA-256 of the DER public key, or of the HMAC secret).
 *
 * Raises 22023 (42710 for an existing kid) without ever echoing the key, and
 * hides the statement from the log since it holds the key as a literal.
 */
Datum
ti_jwt_key_check(PG_FUNCTION_ARGS)
{
	char	   *kid;
	char	   *algname;
	text	   *material;
	TiJwtAlg	alg;
	TiJwtKey	key;
	unsigned char fp[32];
	const char *problem;
	Oid			relid;

	pgstat_report_activity(STATE_RUNNING, TI_JWT_KEY_REDACTED);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kid, alg and key must not be null"),
				 errhidestmt(true)));
	kid = text_to_cstring(PG_GETARG_TEXT_PP(0));
	algname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	material = PG_GETARG_TEXT_PP(2);

	if (kid[0] == '\0' || strlen(kid) > 256)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("JWT key id must be 1 to 256 bytes long"),
				 errhidestmt(true)));
	if ((!PG_ARGISNULL(3) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(3)) == 0) ||
		(!PG_ARGISNULL(4) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(4)) == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("JWT issuer and audience must be NULL or non-empty"),
				 errhidestmt(true)));

	alg = ti_jwt_alg_from_name(algname);
	if (alg == TI_JWT_ALG_INVALID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported JWT algorithm \"%s\"", algname),
				 errhint("Use one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA."),
				 errhidestmt(true)));

	ti_jwt_crypto_init();
	problem = ti_jwt_key_build(alg, VARDATA_ANY(material),
							   VARSIZE_ANY_EXHDR(material), &key, fp);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid key for JWT algorithm %s: %s",
						ti_jwt_alg_name(alg), problem),
				 errhidestmt(true)));
	ti_jwt_key_release(&key);

	/* an existing kid: say so here, where the statement can be hidden */
	relid = ti_jwt_key_table();
	if (OidIsValid(relid))
	{
		Relation	rel = table_open(relid, AccessShareLock);
		SysScanDesc scan = systable_beginscan(rel, InvalidOid, false,
											  NULL, 0, NULL);
		AttrNumber	a_kid = get_attnum(relid, "kid");
		HeapTuple	tup;
		bool		exists = false;

		while (!exists && HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			bool		isnull;
			Datum		d = heap_getattr(tup, a_kid, RelationGetDescr(rel),
										 &isnull);

			exists = !isnull && strcmp(TextDatumGetCString(d), kid) == 0;
		}
		systable_endscan(scan);
		table_close(rel, AccessShareLock);
		if (exists)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("JWT key \"%s\" already exists", kid),
					 errhidestmt(true)));
	}

	PG_RETURN_TEXT_P(cstring_to_text(ti_hex(fp, sizeof(fp))));
}

/*
 * tenant_isolation._jwt_keys_changed() statement trigger on jwt_key
 *		Send a relcache invalidation for the table, so that every backend
 *		(ours at the next command, others at commit) drops its key and token
 *		caches.  Covers add/drop_jwt_key, direct DML and restores.
 */
Datum
ti_jwt_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ti_jwt_keys_changed: not called by trigger manager");

	CacheInvalidateRelcache(trigdata->tg_relation);

	return PointerGetDatum(NULL);
}
