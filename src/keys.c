/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Per-tenant encryption keys: the master key, wrapped data keys in
 *	  tenant_isolation.tenant_key, encrypt()/decrypt(), rotation and the
 *	  per-backend cache of unwrapped keys.
 *
 * Envelope encryption.  Each tenant has data keys (32 random bytes), one per
 * version; exactly one version is 'active' and encrypts, the others are
 * 'retired' and only decrypt.  A data key is stored only wrapped: sealed
 * with XChaCha20-Poly1305 (IETF) under a master key, with the tenant id and
 * the key version as associated data, so a wrapped key copied to another
 * row does not unwrap.  Each row names the master key that wrapped it by a
 * 16-byte key id (a keyed BLAKE2b of a constant, which reveals nothing about
 * the key).
 *
 * Master keys never sit in a table.  They are read once, in the postmaster
 * (_PG_init runs there when the library is preloaded; every child inherits
 * them through fork), from tenant_isolation.master_key_file or from the
 * output of tenant_isolation.master_key_command.  The text holds one key per
 * line (32 bytes, hex or base64); the first is the active key, the others
 * are previous keys that still unwrap (master key rotation, docs/keys.md).
 * They live in sodium_malloc'd memory (guard pages, excluded from core
 * dumps), kept PROT_NONE except while a key is wrapped or unwrapped.  A
 * missing or malformed key leaves the server running: a WARNING goes to the
 * log and every key function fails with SQLSTATE 55000.
 *
 * Ciphertext format (format 1), all of it bytea:
 *
 *	 byte 0		 magic 0xA7
 *	 byte 1		 format 1
 *	 bytes 2-5	 data key version, unsigned 32-bit big-endian
 *	 bytes 6-29	 XChaCha20 nonce (random)
 *	 bytes 30-	 XChaCha20-Poly1305 ciphertext, then its 16-byte tag
 *
 * The associated data is the 6 header bytes followed by the 16 bytes of the
 * tenant id, so a ciphertext decrypts only for the tenant and key version it
 * was made for, and any altered bit fails authentication.
 *
 * Cache and lifetime rules:
 *
 * - Unwrapped data keys are cached per backend in one sodium_malloc'd slab
 *	 of TI_KEY_SLOTS keys; their metadata (tenant, version, active) sits in a
 *	 static array beside it.  The whole cache is wiped with sodium_memzero
 *	 when the session leaves a tenant (context.c's TI_CTX_DISCARD), after a
 *	 rotation, and by the relcache callback whenever tenant_key changes (a
 *	 statement trigger on the table sends the invalidation, like jwt.c), so a
 *	 dropped tenant's keys disappear from every backend at commit.
 * - A pointer into the slab is valid only until the next catalog access
 *	 (any table_open may process invalidations and wipe the cache): callers
 *	 fetch the key last and use it at once.
 * - A tenant's first key is created lazily by its first encrypt() (or by
 *	 rotate_tenant_key()); creation and rotation lock the tenant's row
 *	 FOR NO KEY UPDATE, which serializes them per tenant.
 * - Nonces come from a per-process pool filled by randombytes_buf; the pool
 *	 remembers the pid that filled it and is never filled in the postmaster,
 *	 so two processes never share one.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/keys.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "tenant_isolation.h"

#define TI_KEY_BYTES		crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define TI_NONCE_BYTES		crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TI_TAG_BYTES		crypto_aead_xchacha20poly1305_ietf_ABYTES
#define TI_KEK_ID_BYTES		16
#define TI_WRAPPED_BYTES	(TI_KEY_BYTES + TI_TAG_BYTES)

/* ciphertext header */
#define TI_CT_MAGIC			0xA7
#define TI_CT_FORMAT		1
#define TI_CT_PREFIX		6	/* magic, format, version */
#define TI_CT_HEADER		(TI_CT_PREFIX + TI_NONCE_BYTES)
#define TI_CT_OVERHEAD		(TI_CT_HEADER + TI_TAG_BYTES)
#define TI_CT_AD_BYTES		(TI_CT_PREFIX + UUID_LEN)

/* at most this many master keys (the active one and previous ones) */
#define TI_MAX_MASTER_KEYS	4
/* the longest master key file or command output we read */
#define TI_MASTER_TEXT_MAX	4096

/* cached unwrapped data keys; one more slab slot is scratch space */
#define TI_KEY_SLOTS		16

/* nonces handed out per randombytes_buf call */
#define TI_NONCE_POOL		64

/* associated data of a wrapped key: this label, tenant, version */
#define TI_WRAP_LABEL		"tenant_isolation data key 1"
#define TI_WRAP_LABEL_LEN	(sizeof(TI_WRAP_LABEL) - 1)

/* the constant whose keyed hash names a master key */
#define TI_KEK_ID_LABEL		"tenant_isolation master key id"

typedef struct TiKeySlot
{
	bool		used;
	bool		active;			/* the tenant's active version */
	int32		version;
	pg_uuid_t	tenant;
} TiKeySlot;

/* GUCs */
static char *ti_master_key_file = NULL;
static char *ti_master_key_command = NULL;

/* master keys: ti_kek[0] is active; NULL when none could be loaded */
static unsigned char *ti_kek = NULL;
static int	ti_kek_count = 0;
static unsigned char ti_kek_ids[TI_MAX_MASTER_KEYS][TI_KEK_ID_BYTES];

/* data key cache */
static unsigned char *ti_key_slab = NULL;	/* (TI_KEY_SLOTS + 1) keys */
static TiKeySlot ti_key_slots[TI_KEY_SLOTS];
static int	ti_key_next_slot = 0;
static bool ti_key_cache_dirty = false;

/* OID of tenant_isolation.tenant_key once looked up, for the callback */
static Oid	ti_key_relid = InvalidOid;

/* nonce pool */
static unsigned char ti_nonce_pool[TI_NONCE_POOL * TI_NONCE_BYTES];
static int	ti_nonce_next = TI_NONCE_POOL;
static int	ti_nonce_pid = 0;

PG_FUNCTION_INFO_V1(ti_encrypt);
PG_FUNCTION_INFO_V1(ti_decrypt);
PG_FUNCTION_INFO_V1(ti_decrypt_text);
PG_FUNCTION_INFO_V1(ti_reencrypt);
PG_FUNCTION_INFO_V1(ti_rotate_tenant_key);
PG_FUNCTION_INFO_V1(ti_rotate_master_key);
PG_FUNCTION_INFO_V1(ti_master_key_id);
PG_FUNCTION_INFO_V1(ti_tenant_keys_changed);

static void ti_keys_load_master(void);
static void ti_keys_relcache_cb(Datum arg, Oid relid);
static void ti_key_cache_wipe(void);
static void ti_keys_ctx_changed(TiCtxEvent event, const pg_uuid_t *tenant,
								bool local, void *arg);

/*
 * ti_kek_id_hex
 *		Hex form of a master key id, palloc'd.  Ids are public.
 */
static char *
ti_kek_id_hex(const unsigned char *id)
{
	char	   *out = palloc(TI_KEK_ID_BYTES * 2 + 1);

	sodium_bin2hex(out, TI_KEK_ID_BYTES * 2 + 1, id, TI_KEK_ID_BYTES);
	return out;
}

/* ----------------------------------------------------------------
 * Master keys
 * ----------------------------------------------------------------
 */

/*
 * ti_keys_init
 *		Define the key GUCs and load the master keys.  Called from _PG_init,
 *		in the postmaster, before any child exists.
 */
void
ti_keys_init(void)
{
	ti_ctx_subscribe(ti_keys_ctx_changed, NULL);

	DefineCustomStringVariable("tenant_isolation.master_key_file",
							   "File holding the master key that wraps tenant data keys.",
							   "One key per line, 32 bytes in hex or base64; the first line is the active key. "
							   "The file must not be accessible to group or others.",
							   &ti_master_key_file,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("tenant_isolation.master_key_command",
							   "Command whose output is the master key that wraps tenant data keys.",
							   "Run once at server start; its output has the format of master_key_file.",
							   &ti_master_key_command,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	if (sodium_init() < 0)
	{
		ereport(WARNING,
				(errmsg("tenant_isolation: could not initialize libsodium; encryption keys are unavailable")));
		return;
	}

	ti_keys_load_master();
	ti_register_relcache_callback(ti_keys_relcache_cb);	/* catalog.c */
}

/*
 * ti_read_key_file
 *		Read the master key file into buf (TI_MASTER_TEXT_MAX bytes).
 *		Returns NULL or a problem for the log; never any file content.
 *
 * Like PostgreSQL's check of ssl_key_file: a regular file owned by the
 * server's user (or root) without any group or world permission.
 */
static const char *
ti_read_key_file(const char *path, char *buf, size_t *len)
{
	int			fd;
	struct stat st;
	ssize_t		n;
	size_t		total = 0;

	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		return psprintf("could not open master key file \"%s\": %m", path);
	if (fstat(fd, &st) != 0)
	{
		close(fd);
		return psprintf("could not stat master key file \"%s\": %m", path);
	}
	if (!S_ISREG(st.st_mode))
	{
		close(fd);
		return psprintf("master key file \"%s\" is not a regular file", path);
	}
	if (st.st_uid != geteuid() && st.st_uid != 0)
	{
		close(fd);
		return psprintf("master key file \"%s\" must be owned by the database user or root", path);
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		return psprintf("master key file \"%s\" has group or world access; "
						"it must be u=rw (0600) or less", path);
	}
	for (;;)
	{
		n = read(fd, buf + total, TI_MASTER_TEXT_MAX - total);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			close(fd);
			return psprintf("could not read master key file \"%s\": %m", path);
		}
		if (n == 0)
			break;
		total += n;
		if (total >= TI_MASTER_TEXT_MAX)
		{
			close(fd);
			return psprintf("master key file \"%s\" is too long", path);
		}
	}
	close(fd);
	*len = total;
	return NULL;
}

/*
 * ti_read_key_command
 *		Run master_key_command and read its output into buf, like
 *		ssl_passphrase_command.  Returns NULL or a problem for the log.
 */
static const char *
ti_read_key_command(const char *command, char *buf, size_t *len)
{
	FILE	   *fh;
	size_t		total = 0;
	size_t		n;
	int			rc;

	fh = OpenPipeStream(command, "r");
	if (fh == NULL)
		return psprintf("could not execute master_key_command: %m");
	while ((n = fread(buf + total, 1, TI_MASTER_TEXT_MAX - total, fh)) > 0)
	{
		total += n;
		if (total >= TI_MASTER_TEXT_MAX)
			break;
	}
	rc = ClosePipeStream(fh);
	if (total >= TI_MASTER_TEXT_MAX)
		return "output of master_key_command is too long";
	if (rc != 0)
		return psprintf("master_key_command failed: %s", wait_result_to_str(rc));
	*len = total;
	return NULL;
}

/*
 * ti_parse_keys
 *		Decode the key lines of text[0..len) into ti_kek.  Blank lines and
 *		lines starting with '#' are skipped.  Problems name a line number,
 *		never its content.
 */
static const char *
ti_parse_keys(char *text, size_t len)
{
	size_t		pos = 0;
	int			lineno = 0;

	ti_kek_count = 0;
	while (pos < len)
	{
		size_t		start = pos;
		size_t		end;
		size_t		binlen = 0;
		unsigned char *dst;

		lineno++;
		while (pos < len && text[pos] != '\n')
			pos++;
		end = pos;
		pos++;					/* past the newline */
		while (start < end && (text[start] == ' ' || text[start] == '\t'))
			start++;
		while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t' ||
							   text[end - 1] == '\r'))
			end--;
		if (start == end || text[start] == '#')
			continue;
		if (ti_kek_count >= TI_MAX_MASTER_KEYS)
			return psprintf("more than %d master keys", TI_MAX_MASTER_KEYS);

		dst = ti_kek + ti_kek_count * TI_KEY_BYTES;
		if (end - start == 2 * TI_KEY_BYTES &&
			sodium_hex2bin(dst, TI_KEY_BYTES, text + start, end - start,
						   NULL, &binlen, NULL) == 0 &&
			binlen == TI_KEY_BYTES)
		{
			ti_kek_count++;
			continue;
		}
		if (sodium_base642bin(dst, TI_KEY_BYTES, text + start, end - start,
							  NULL, &binlen, NULL,
							  sodium_base64_VARIANT_ORIGINAL) == 0 &&
			binlen == TI_KEY_BYTES)
		{
			ti_kek_count++;
			continue;
		}
		if (sodium_base642bin(dst, TI_KEY_BYTES, text + start, end - start,
							  NULL, &binlen, NULL,
							  sodium_base64_VARIANT_ORIGINAL_NO_PADDING) == 0 &&
			binlen == TI_KEY_BYTES)
		{
			ti_kek_count++;
			continue;
		}
		sodium_memzero(dst, TI_KEY_BYTES);
		return psprintf("line %d is not a 32-byte key in hex (64 digits) or base64", lineno);
	}
	if (ti_kek_count == 0)
		return "no key found";
	return NULL;
}

/*
 * ti_keys_load_master
 *		Load the master keys from the file or the command; on any problem
 *		log a WARNING and leave the keys unavailable.  The server starts
 *		either way: everything but the key functions keeps working.
 */
static void
ti_keys_load_master(void)
{
	bool		have_file = ti_master_key_file && ti_master_key_file[0] != '\0';
	bool		have_cmd = ti_master_key_command && ti_master_key_command[0] != '\0';
	char	   *text;
	size_t		len = 0;
	const char *problem = NULL;
	int			i;

	if (!have_file && !have_cmd)
		return;

	text = sodium_malloc(TI_MASTER_TEXT_MAX + 1);
	ti_kek = sodium_malloc(TI_MAX_MASTER_KEYS * TI_KEY_BYTES);
	if (text == NULL || ti_kek == NULL)
		problem = "out of memory";
	else if (have_file && have_cmd)
		problem = "both tenant_isolation.master_key_file and tenant_isolation.master_key_command are set";
	else if (have_file)
		problem = ti_read_key_file(ti_master_key_file, text, &len);
	else
		problem = ti_read_key_command(ti_master_key_command, text, &len);

	if (problem == NULL)
		problem = ti_parse_keys(text, len);
	if (text != NULL)
		sodium_free(text);		/* wipes */

	if (problem != NULL)
	{
		if (ti_kek != NULL)
			sodium_free(ti_kek);
		ti_kek = NULL;
		ti_kek_count = 0;
		ereport(WARNING,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("tenant_isolation: master key not loaded: %s", problem),
				 errdetail("Encryption functions fail until the server is restarted with a valid master key.")));
		return;
	}

	for (i = 0; i < ti_kek_count; i++)
		crypto_generichash(ti_kek_ids[i], TI_KEK_ID_BYTES,
						   (const unsigned char *) TI_KEK_ID_LABEL,
						   strlen(TI_KEK_ID_LABEL),
						   ti_kek + i * TI_KEY_BYTES, TI_KEY_BYTES);
	sodium_mprotect_noaccess(ti_kek);

	ereport(LOG,
			(errmsg("tenant_isolation: %d master key(s) loaded, active key id %s",
					ti_kek_count, ti_kek_id_hex(ti_kek_ids[0]))));
}

/*
 * ti_keys_require_master
 *		Fail with 55000 when no master key is loaded.
 */
static void
ti_keys_require_master(void)
{
	if (ti_kek == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_isolation master key is not loaded"),
				 errhint("Set tenant_isolation.master_key_file or tenant_isolation.master_key_command "
						 "and restart the server; the server log says why no key was loaded.")));
}

/* Index of the loaded master key with this id, or -1. */
static int
ti_kek_find(const unsigned char *id)
{
	int			i;

	for (i = 0; i < ti_kek_count; i++)
		if (sodium_memcmp(ti_kek_ids[i], id, TI_KEK_ID_BYTES) == 0)
			return i;
	return -1;
}

/* The associated data of a wrapped key: label, tenant, version. */
static size_t
ti_wrap_ad(unsigned char *ad, const pg_uuid_t *tenant, int32 version)
{
	uint32		v = pg_hton32((uint32) version);

	memcpy(ad, TI_WRAP_LABEL, TI_WRAP_LABEL_LEN);
	memcpy(ad + TI_WRAP_LABEL_LEN, tenant->data, UUID_LEN);
	memcpy(ad + TI_WRAP_LABEL_LEN + UUID_LEN, &v, sizeof(v));
	return TI_WRAP_LABEL_LEN + UUID_LEN + sizeof(v);
}

/*
 * ti_wrap
 *		Seal data key dk under master key kek (an index into ti_kek) for
 *		(tenant, version); a fresh random nonce is written to nonce.
 *
 * Raises no error while the master key pages are readable.
 */
static void
ti_wrap(int kek, const pg_uuid_t *tenant, int32 version,
		const unsigned char *dk, unsigned char *wrapped, unsigned char *nonce)
{
	unsigned char ad[TI_WRAP_LABEL_LEN + UUID_LEN + 4];
	size_t		adlen = ti_wrap_ad(ad, tenant, version);

	randombytes_buf(nonce, TI_NONCE_BYTES);
	sodium_mprotect_readonly(ti_kek);
	crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped, NULL, dk, TI_KEY_BYTES,
											   ad, adlen, NULL, nonce,
											   ti_kek + kek * TI_KEY_BYTES);
	sodium_mprotect_noaccess(ti_kek);
}

/*
 * ti_unwrap
 *		Open a wrapped key into dk; false when it does not authenticate
 *		(altered, or made for another tenant, version or master key).
 */
static bool
ti_unwrap(int kek, const pg_uuid_t *tenant, int32 version,
		  const unsigned char *wrapped, const unsigned char *nonce,
		  unsigned char *dk)
{
	unsigned char ad[TI_WRAP_LABEL_LEN + UUID_LEN + 4];
	size_t		adlen = ti_wrap_ad(ad, tenant, version);
	int			rc;

	sodium_mprotect_readonly(ti_kek);
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt(dk, NULL, NULL,
													wrapped, TI_WRAPPED_BYTES,
													ad, adlen, nonce,
													ti_kek + kek * TI_KEY_BYTES);
	sodium_mprotect_noaccess(ti_kek);
	if (rc != 0)
	{
		sodium_memzero(dk, TI_KEY_BYTES);
		return false;
	}
	return true;
}

/* ----------------------------------------------------------------
 * The data key cache
 * ----------------------------------------------------------------
 */

static unsigned char *
ti_slot_key(int slot)
{
	return ti_key_slab + slot * TI_KEY_BYTES;
}

/*
 * The key of a slot that ti_cache_find or ti_keys_load just returned, for
 * encryption or decryption.  The relcache callback wipes the slab in place
 * (never frees it); the rule "fetch the key last" makes that impossible
 * between the lookup and the use, and this check makes sure a wiped (zero)
 * key can never be used if that rule is ever broken.
 */
static unsigned char *
ti_live_key(int slot)
{
	if (slot < 0 || slot >= TI_KEY_SLOTS || !ti_key_slots[slot].used)
		elog(ERROR, "tenant key cache was invalidated while a key was in use");
	return ti_slot_key(slot);
}

/* The scratch slot: one key's room, wiped after every use. */
static unsigned char *
ti_scratch_key(void)
{
	return ti_key_slab + TI_KEY_SLOTS * TI_KEY_BYTES;
}

static void
ti_key_slab_ensure(void)
{
	if (ti_key_slab != NULL)
		return;
	ti_key_slab = sodium_malloc((TI_KEY_SLOTS + 1) * TI_KEY_BYTES);
	if (ti_key_slab == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory for encryption keys")));
	sodium_memzero(ti_key_slab, (TI_KEY_SLOTS + 1) * TI_KEY_BYTES);
}

/*
 * ti_key_cache_wipe
 *		Forget every cached data key.  Never fails: it runs in the relcache
 *		callback and on a change of tenant.
 */
static void
ti_key_cache_wipe(void)
{
	if (!ti_key_cache_dirty)
		return;
	if (ti_key_slab != NULL)
		sodium_memzero(ti_key_slab, (TI_KEY_SLOTS + 1) * TI_KEY_BYTES);
	memset(ti_key_slots, 0, sizeof(ti_key_slots));
	ti_key_next_slot = 0;
	ti_key_cache_dirty = false;
}

/*
 * ti_keys_ctx_changed
 *		Subscriber of context.c: when the session leaves a tenant (what it
 *		held for the tenant is discarded), nothing of its keys stays in
 *		memory.
 */
static void
ti_keys_ctx_changed(TiCtxEvent event, const pg_uuid_t *tenant, bool local,
					void *arg)
{
	if (event == TI_CTX_DISCARD || event == TI_CTX_LEAVE)
		ti_key_cache_wipe();
}

/*
 * ti_keys_relcache_cb
 *		tenant_key changed (a key created, rotated, rewrapped or shredded):
 *		wipe the cache; the next use re-reads the catalog.
 */
static void
ti_keys_relcache_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == ti_key_relid)
		ti_key_cache_wipe();
}

/*
 * ti_cache_find
 *		The cached key of tenant for version, or its active key when
 *		version is 0; -1 on a miss.
 */
static int
ti_cache_find(const pg_uuid_t *tenant, int32 version)
{
	int			i;

	for (i = 0; i < TI_KEY_SLOTS; i++)
	{
		TiKeySlot  *s = &ti_key_slots[i];

		if (!s->used || memcmp(s->tenant.data, tenant->data, UUID_LEN) != 0)
			continue;
		if (version == 0 ? s->active : s->version == version)
			return i;
	}
	return -1;
}

/* ----------------------------------------------------------------
 * The catalog
 * ----------------------------------------------------------------
 */

/* OIDs of tenant_key and its primary key; errors when not installed. */
static void
ti_key_catalog(Oid *relid, Oid *pkey)
{
	Oid			nsp = get_namespace_oid(TI_SCHEMA, true);

	*relid = OidIsValid(nsp) ? get_relname_relid("tenant_key", nsp) : InvalidOid;
	*pkey = OidIsValid(nsp) ? get_relname_relid("tenant_key_pkey", nsp) : InvalidOid;
	if (!OidIsValid(*relid) || !OidIsValid(*pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"tenant_isolation\" is not installed in this database")));
	ti_key_relid = *relid;
}

/*
 * ti_keys_load
 *		Read the key of tenant for version (0: the active one) from
 *		tenant_key, unwrap it into a cache slot and return the slot; -1
 *		when there is no such key.
 *
 * The table is read directly with a catalog snapshot (fresh for a table
 * without a syscache): the caller needs no privilege on it, and sees every
 * committed key and its own transaction's.  The slot is claimed only after
 * the scan, when no more invalidations can arrive before we return.
 */
static int
ti_keys_load(const pg_uuid_t *tenant, int32 version)
{
	Oid			relid,
				pkey;
	Relation	rel;
	TupleDesc	desc;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	AttrNumber	a_version,
				a_state,
				a_wrapped,
				a_nonce,
				a_kek;
	bool		found = false;
	bool		active = false;
	int32		got_version = 0;
	unsigned char wrapped[TI_WRAPPED_BYTES];
	unsigned char nonce[TI_NONCE_BYTES];
	unsigned char kek_id[TI_KEK_ID_BYTES];
	int			kek;
	int			slot;

	ti_key_catalog(&relid, &pkey);
	a_version = get_attnum(relid, "version");
	a_state = get_attnum(relid, "state");
	a_wrapped = get_attnum(relid, "wrapped");
	a_nonce = get_attnum(relid, "nonce");
	a_kek = get_attnum(relid, "master_key_id");
	if (a_version <= 0 || a_state <= 0 || a_wrapped <= 0 || a_nonce <= 0 || a_kek <= 0)
		elog(ERROR, "table tenant_isolation.tenant_key has an unexpected shape");

	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(tenant));
	scan = systable_beginscan(rel, pkey, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d;
		int32		v;
		bool		is_active;
		bytea	   *b;

		d = heap_getattr(tup, a_version, desc, &isnull);
		if (isnull)
			continue;
		v = DatumGetInt32(d);
		d = heap_getattr(tup, a_state, desc, &isnull);
		is_active = !isnull && strcmp(TextDatumGetCString(d), "active") == 0;
		if (version == 0 ? !is_active : v != version)
			continue;

		d = heap_getattr(tup, a_wrapped, desc, &isnull);
		if (isnull)
			break;
		b = DatumGetByteaPP(d);
		if (VARSIZE_ANY_EXHDR(b) != TI_WRAPPED_BYTES)
			break;
		memcpy(wrapped, VARDATA_ANY(b), TI_WRAPPED_BYTES);
		d = heap_getattr(tup, a_nonce, desc, &isnull);
		if (isnull)
			break;
		b = DatumGetByteaPP(d);
		if (VARSIZE_ANY_EXHDR(b) != TI_NONCE_BYTES)
			break;
		memcpy(nonce, VARDATA_ANY(b), TI_NONCE_BYTES);
		d = heap_getattr(tup, a_kek, desc, &isnull);
		if (isnull)
			break;
		b = DatumGetByteaPP(d);
		if (VARSIZE_ANY_EXHDR(b) != TI_KEK_ID_BYTES)
			break;
		memcpy(kek_id, VARDATA_ANY(b), TI_KEK_ID_BYTES);
		found = true;
		active = is_active;
		got_version = v;
		break;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!found)
		return -1;

	kek = ti_kek_find(kek_id);
	if (kek < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("key version %d of tenant %s is wrapped with a master key that is not loaded",
						got_version, ti_uuid_to_cstring(tenant)),
				 errdetail("It was wrapped with the master key whose id is %s.",
						   ti_kek_id_hex(kek_id)),
				 errhint("List that key after the active one in the master key file, restart, "
						 "and run tenant_isolation.rotate_master_key().")));

	ti_key_slab_ensure();
	slot = ti_key_next_slot;
	ti_key_next_slot = (ti_key_next_slot + 1) % TI_KEY_SLOTS;
	ti_key_slots[slot].used = false;
	ti_key_cache_dirty = true;
	if (!ti_unwrap(kek, tenant, got_version, wrapped, nonce, ti_slot_key(slot)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not unwrap key version %d of tenant %s",
						got_version, ti_uuid_to_cstring(tenant)),
				 errdetail("The wrapped key in tenant_isolation.tenant_key was altered or belongs to another tenant or version.")));
	ti_key_slots[slot].used = true;
	ti_key_slots[slot].active = active;
	ti_key_slots[slot].version = got_version;
	ti_key_slots[slot].tenant = *tenant;
	return slot;
}

/*
 * ti_bytea_datum
 *		A palloc'd bytea holding len bytes at p, for SPI parameters.
 */
static Datum
ti_bytea_datum(const unsigned char *p, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), p, len);
	return PointerGetDatum(b);
}

/*
 * ti_key_table_owner
 *		Owner of tenant_key: the superuser who created the extension.  Key
 *		rows are written with its rights, so that neither the caller of
 *		encrypt() nor a member of the admin role needs any privilege on it.
 */
static Oid
ti_key_table_owner(void)
{
	Oid			relid,
				pkey;
	HeapTuple	tup;
	Oid			owner;

	ti_key_catalog(&relid, &pkey);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * ti_keys_new_version_spi
 *		The body of ti_keys_new_version, run under the table owner's rights
 *		inside SPI.  Returns the new version, or 0 when rotate is false and
 *		another session created the active key while we waited for the lock.
 */
static int32
ti_keys_new_version_spi(const pg_uuid_t *tenant, bool rotate)
{
	Oid			argtypes[5] = {UUIDOID, INT4OID, BYTEAOID, BYTEAOID, BYTEAOID};
	Datum		args[5];
	int32		version;
	unsigned char wrapped[TI_WRAPPED_BYTES];
	unsigned char nonce[TI_NONCE_BYTES];
	unsigned char *dk;
	bool		isnull;

	args[0] = UUIDPGetDatum(tenant);

	/* serializes creation and rotation per tenant; also checks existence */
	if (SPI_execute_with_args("SELECT 1 FROM tenant_isolation.tenant WHERE id = $1 "
							  "FOR NO KEY UPDATE",
							  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not lock tenant row");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant %s does not exist", ti_uuid_to_cstring(tenant))));

	if (!rotate)
	{
		if (SPI_execute_with_args("SELECT 1 FROM tenant_isolation.tenant_key "
								  "WHERE tenant = $1 AND state = 'active'",
								  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read tenant_key");
		if (SPI_processed > 0)
			return 0;
	}

	if (SPI_execute_with_args("SELECT coalesce(max(version), 0) + 1 FROM tenant_isolation.tenant_key "
							  "WHERE tenant = $1",
							  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read tenant_key");
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));

	if (rotate &&
		SPI_execute_with_args("UPDATE tenant_isolation.tenant_key "
							  "SET state = 'retired', retired_at = now() "
							  "WHERE tenant = $1 AND state = 'active'",
							  1, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not retire the active key");

	ti_key_slab_ensure();
	dk = ti_scratch_key();
	randombytes_buf(dk, TI_KEY_BYTES);
	ti_wrap(0, tenant, version, dk, wrapped, nonce);
	sodium_memzero(dk, TI_KEY_BYTES);

	args[1] = Int32GetDatum(version);
	args[2] = ti_bytea_datum(wrapped, TI_WRAPPED_BYTES);
	args[3] = ti_bytea_datum(nonce, TI_NONCE_BYTES);
	args[4] = ti_bytea_datum(ti_kek_ids[0], TI_KEK_ID_BYTES);
	if (SPI_execute_with_args("INSERT INTO tenant_isolation.tenant_key "
							  "(tenant, version, state, wrapped, nonce, master_key_id) "
							  "VALUES ($1, $2, 'active', $3, $4, $5)",
							  5, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into tenant_key");
	return version;
}

/*
 * ti_keys_new_version
 *		Create a new data key version for tenant and make it active; with
 *		rotate false only when the tenant has no active key yet (lazy
 *		creation by the first encrypt()).  Returns the new version, 0 when
 *		none was needed.
 */
static int32
ti_keys_new_version(const pg_uuid_t *tenant, bool rotate)
{
	Oid			owner = ti_key_table_owner();
	Oid			save_userid;
	int			save_sec;
	int32		version = 0;

	if (RecoveryInProgress() || XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot create an encryption key for tenant %s in a read-only transaction",
						ti_uuid_to_cstring(tenant)),
				 errhint("A tenant's first key is created by its first encrypt() or by rotate_tenant_key().")));

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		version = ti_keys_new_version_spi(tenant, rotate);
		SPI_finish();
	}
	PG_FINALLY();
	{
		if (ti_key_slab != NULL)
			sodium_memzero(ti_scratch_key(), TI_KEY_BYTES);
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();

	/* make the new row visible to the catalog scan that follows */
	CommandCounterIncrement();
	ti_key_cache_dirty = true;
	ti_key_cache_wipe();
	return version;
}

/*
 * ti_active_key
 *		The slot of tenant's active key, creating the tenant's first key
 *		when it has none.  Use the slot before any further catalog access.
 */
static int
ti_active_key(const pg_uuid_t *tenant)
{
	int			slot = ti_cache_find(tenant, 0);

	if (slot >= 0)
		return slot;
	slot = ti_keys_load(tenant, 0);
	if (slot >= 0)
		return slot;
	(void) ti_keys_new_version(tenant, false);
	slot = ti_keys_load(tenant, 0);
	if (slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant %s has no active encryption key", ti_uuid_to_cstring(tenant))));
	return slot;
}

/* ----------------------------------------------------------------
 * encrypt / decrypt
 * ----------------------------------------------------------------
 */

/* The tenant context, or 42501. */
static void
ti_keys_context(pg_uuid_t *tenant)
{
	if (!ti_context_get(tenant))
	{
		ti_audit("denied_no_context", NULL, ERRCODE_INSUFFICIENT_PRIVILEGE,
				 "encryption");
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context for encryption"),
				 errdetail("Data is encrypted and decrypted with the keys of the current tenant."),
				 errhint("Call tenant_isolation.login() first.")));
	}
}

/* A fresh nonce from this process's pool. */
static void
ti_next_nonce(unsigned char *nonce)
{
	if (ti_nonce_next >= TI_NONCE_POOL || ti_nonce_pid != MyProcPid)
	{
		Assert(IsUnderPostmaster || !IsPostmasterEnvironment);
		randombytes_buf(ti_nonce_pool, sizeof(ti_nonce_pool));
		ti_nonce_pid = MyProcPid;
		ti_nonce_next = 0;
	}
	memcpy(nonce, ti_nonce_pool + ti_nonce_next * TI_NONCE_BYTES, TI_NONCE_BYTES);
	/* a nonce is used once */
	sodium_memzero(ti_nonce_pool + ti_nonce_next * TI_NONCE_BYTES, TI_NONCE_BYTES);
	ti_nonce_next++;
}

static void
ti_ct_ad(unsigned char *ad, const unsigned char *header, const pg_uuid_t *tenant)
{
	memcpy(ad, header, TI_CT_PREFIX);
	memcpy(ad + TI_CT_PREFIX, tenant->data, UUID_LEN);
}

/*
 * ti_encrypt_internal
 *		Encrypt len bytes at data under tenant's active key.
 */
static bytea *
ti_encrypt_internal(const pg_uuid_t *tenant, const char *data, size_t len)
{
	bytea	   *out;
	unsigned char *p;
	unsigned char ad[TI_CT_AD_BYTES];
	uint32		v;
	int			slot;

	if (len > MaxAllocSize - VARHDRSZ - TI_CT_OVERHEAD)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("data too long to encrypt")));
	out = palloc(VARHDRSZ + TI_CT_OVERHEAD + len);
	SET_VARSIZE(out, VARHDRSZ + TI_CT_OVERHEAD + len);
	p = (unsigned char *) VARDATA(out);

	/* last: the key slot is valid until the next catalog access */
	slot = ti_active_key(tenant);

	p[0] = TI_CT_MAGIC;
	p[1] = TI_CT_FORMAT;
	v = pg_hton32((uint32) ti_key_slots[slot].version);
	memcpy(p + 2, &v, sizeof(v));
	ti_next_nonce(p + TI_CT_PREFIX);
	ti_ct_ad(ad, p, tenant);
	crypto_aead_xchacha20poly1305_ietf_encrypt(p + TI_CT_HEADER, NULL,
											   (const unsigned char *) data, len,
											   ad, sizeof(ad), NULL,
											   p + TI_CT_PREFIX,
											   ti_live_key(slot));
	return out;
}

/*
 * ti_decrypt_internal
 *		Decrypt a ciphertext for tenant with the key version its header
 *		names; *plainlen gets the length.  Every failure says "could not
 *		decrypt data" (22023) and never shows key or plaintext bytes.
 */
static bytea *
ti_decrypt_internal(const pg_uuid_t *tenant, bytea *in)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(in);
	size_t		len = VARSIZE_ANY_EXHDR(in);
	uint32		v;
	int32		version;
	unsigned char ad[TI_CT_AD_BYTES];
	bytea	   *out;
	int			slot;

	if (len < TI_CT_OVERHEAD || p[0] != TI_CT_MAGIC || p[1] != TI_CT_FORMAT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not decrypt data"),
				 errdetail("The value is not a ciphertext made by tenant_isolation.encrypt().")));
	memcpy(&v, p + 2, sizeof(v));
	v = pg_ntoh32(v);
	if (v == 0 || v > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not decrypt data"),
				 errdetail("The value is not a ciphertext made by tenant_isolation.encrypt().")));
	version = (int32) v;

	out = palloc(VARHDRSZ + len - TI_CT_OVERHEAD);
	SET_VARSIZE(out, VARHDRSZ + len - TI_CT_OVERHEAD);

	slot = ti_cache_find(tenant, version);
	if (slot < 0)
		slot = ti_keys_load(tenant, version);
	if (slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not decrypt data"),
				 errdetail("The current tenant has no key version %d: the ciphertext was made for another tenant, or the key was destroyed.",
						   version)));

	ti_ct_ad(ad, p, tenant);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *) VARDATA(out), NULL, NULL,
												   p + TI_CT_HEADER, len - TI_CT_HEADER,
												   ad, sizeof(ad),
												   p + TI_CT_PREFIX,
												   ti_live_key(slot)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not decrypt data"),
				 errdetail("The ciphertext was not made for the current tenant, or it was altered.")));
	return out;
}

/*
 * encrypt(data bytea) RETURNS bytea, encrypt(data text) RETURNS bytea
 *
 * Both are this function: text and bytea share the varlena layout, and the
 * text is encrypted in the database encoding.
 */
Datum
ti_encrypt(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	pg_uuid_t	tenant;

	ti_keys_context(&tenant);
	ti_keys_require_master();
	PG_RETURN_BYTEA_P(ti_encrypt_internal(&tenant, VARDATA_ANY(in),
										  VARSIZE_ANY_EXHDR(in)));
}

/*
 * decrypt(data bytea) RETURNS bytea
 */
Datum
ti_decrypt(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	pg_uuid_t	tenant;

	ti_keys_context(&tenant);
	ti_keys_require_master();
	PG_RETURN_BYTEA_P(ti_decrypt_internal(&tenant, in));
}

/*
 * decrypt_text(data bytea) RETURNS text
 *		Like decrypt(), and the result must be valid in the database
 *		encoding.
 */
Datum
ti_decrypt_text(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	pg_uuid_t	tenant;
	bytea	   *out;

	ti_keys_context(&tenant);
	ti_keys_require_master();
	out = ti_decrypt_internal(&tenant, in);
	if (!pg_verify_mbstr(GetDatabaseEncoding(), VARDATA(out),
						 VARSIZE(out) - VARHDRSZ, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("decrypted data is not valid text in encoding \"%s\"",
						GetDatabaseEncodingName()),
				 errhint("Use tenant_isolation.decrypt() for binary data.")));
	PG_RETURN_TEXT_P((text *) out);
}

/*
 * reencrypt(data bytea) RETURNS bytea
 *		Decrypt with the key version the ciphertext names, encrypt again
 *		with the tenant's active key.  For moving data off retired keys.
 */
Datum
ti_reencrypt(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	pg_uuid_t	tenant;
	bytea	   *plain;
	bytea	   *out;

	ti_keys_context(&tenant);
	ti_keys_require_master();
	plain = ti_decrypt_internal(&tenant, in);
	out = ti_encrypt_internal(&tenant, VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
	sodium_memzero(VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
	pfree(plain);
	PG_RETURN_BYTEA_P(out);
}

/* ----------------------------------------------------------------
 * Administration
 * ----------------------------------------------------------------
 */

static void
ti_keys_require_admin(const char *what)
{
	if (!ti_is_admin(GetUserId()))
	{
		ti_audit("denied_admin_function", what, ERRCODE_INSUFFICIENT_PRIVILEGE,
				 NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errdetail("Only superusers and members of tenant_isolation_admin manage encryption keys.")));
	}
}

/*
 * rotate_tenant_key(id uuid) RETURNS integer
 *		Make a new active key version for the tenant; the previous one is
 *		retired and keeps decrypting.  Returns the new version (1 for a
 *		tenant that had no key).
 */
Datum
ti_rotate_tenant_key(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *tenant;
	int32		version;

	ti_keys_require_admin("rotate a tenant key");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant id must not be null")));
	ti_keys_require_master();
	tenant = PG_GETARG_UUID_P(0);
	version = ti_keys_new_version(tenant, true);
	ti_audit("rotate_tenant_key", ti_uuid_to_cstring(tenant), 0,
			 psprintf("version %d", version));
	PG_RETURN_INT32(version);
}

/*
 * rotate_master_key() RETURNS integer
 *		Rewrap every data key under the active master key (the first key of
 *		the master key file), with fresh nonces, in the calling transaction.
 *		A key wrapped under a master key that is not loaded, or one that
 *		does not unwrap, fails the whole call: nothing is half rotated.
 *		Returns the number of keys rewrapped.
 */
Datum
ti_rotate_master_key(PG_FUNCTION_ARGS)
{
	Oid			owner;
	Oid			save_userid;
	int			save_sec;
	int64		count = 0;

	ti_keys_require_admin("rotate the master key");
	ti_keys_require_master();
	if (RecoveryInProgress() || XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot rotate the master key in a read-only transaction")));

	owner = ti_key_table_owner();
	ti_key_slab_ensure();
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		Oid			argtypes[5] = {UUIDOID, INT4OID, BYTEAOID, BYTEAOID, BYTEAOID};
		SPIPlanPtr	upd;
		SPITupleTable *tt;
		uint64		n,
					i;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT tenant, version, wrapped, nonce, master_key_id "
						"FROM tenant_isolation.tenant_key ORDER BY tenant, version FOR UPDATE",
						false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read tenant_key");
		tt = SPI_tuptable;
		n = SPI_processed;
		upd = SPI_prepare("UPDATE tenant_isolation.tenant_key "
						  "SET wrapped = $3, nonce = $4, master_key_id = $5 "
						  "WHERE tenant = $1 AND version = $2",
						  5, argtypes);
		if (upd == NULL)
			elog(ERROR, "could not prepare tenant_key update");

		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			TupleDesc	desc = tt->tupdesc;
			bool		isnull;
			pg_uuid_t	tenant;
			int32		version;
			bytea	   *wrapped,
					   *nonce,
					   *kek_id;
			int			kek;
			unsigned char new_wrapped[TI_WRAPPED_BYTES];
			unsigned char new_nonce[TI_NONCE_BYTES];
			Datum		args[5];
			unsigned char *dk = ti_scratch_key();

			tenant = *DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull));
			version = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
			wrapped = DatumGetByteaPP(SPI_getbinval(tup, desc, 3, &isnull));
			nonce = DatumGetByteaPP(SPI_getbinval(tup, desc, 4, &isnull));
			kek_id = DatumGetByteaPP(SPI_getbinval(tup, desc, 5, &isnull));

			kek = VARSIZE_ANY_EXHDR(kek_id) == TI_KEK_ID_BYTES ?
				ti_kek_find((unsigned char *) VARDATA_ANY(kek_id)) : -1;
			if (kek < 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("key version %d of tenant %s is wrapped with a master key that is not loaded",
								version, ti_uuid_to_cstring(&tenant)),
						 errhint("List the previous master key after the active one in the master key file and restart.")));
			if (VARSIZE_ANY_EXHDR(wrapped) != TI_WRAPPED_BYTES ||
				VARSIZE_ANY_EXHDR(nonce) != TI_NONCE_BYTES ||
				!ti_unwrap(kek, &tenant, version,
						   (unsigned char *) VARDATA_ANY(wrapped),
						   (unsigned char *) VARDATA_ANY(nonce), dk))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("could not unwrap key version %d of tenant %s",
								version, ti_uuid_to_cstring(&tenant)),
						 errdetail("The wrapped key in tenant_isolation.tenant_key was altered or belongs to another tenant or version.")));
			ti_wrap(0, &tenant, version, dk, new_wrapped, new_nonce);
			sodium_memzero(dk, TI_KEY_BYTES);

			args[0] = UUIDPGetDatum(&tenant);
			args[1] = Int32GetDatum(version);
			args[2] = ti_bytea_datum(new_wrapped, TI_WRAPPED_BYTES);
			args[3] = ti_bytea_datum(new_nonce, TI_NONCE_BYTES);
			args[4] = ti_bytea_datum(ti_kek_ids[0], TI_KEK_ID_BYTES);
			if (SPI_execute_plan(upd, args, NULL, false, 0) != SPI_OK_UPDATE ||
				SPI_processed != 1)
				elog(ERROR, "could not rewrap key version %d of tenant %s",
					 version, ti_uuid_to_cstring(&tenant));
			count++;
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		sodium_memzero(ti_scratch_key(), TI_KEY_BYTES);
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();

	ti_key_cache_dirty = true;
	ti_key_cache_wipe();
	ti_audit("rotate_master_key", ti_kek_id_hex(ti_kek_ids[0]), 0,
			 psprintf("%lld keys rewrapped", (long long) count));
	PG_RETURN_INT32((int32) count);
}

/*
 * master_key_id() RETURNS text
 *		Id of the active master key (hex), NULL when none is loaded.  Ids
 *		are keyed hashes: they tell keys apart and reveal nothing of them.
 */
Datum
ti_master_key_id(PG_FUNCTION_ARGS)
{
	if (ti_kek == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(ti_kek_id_hex(ti_kek_ids[0])));
}

/*
 * _tenant_keys_changed() statement trigger on tenant_key
 *		Send a relcache invalidation for the table so that every backend
 *		(ours at the next command, the others at commit) wipes its cached
 *		keys: rotations, rewraps, direct DML and crypto-shredding through
 *		ON DELETE CASCADE.
 */
Datum
ti_tenant_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ti_tenant_keys_changed: not called by trigger manager");

	ti_key_relid = RelationGetRelid(trigdata->tg_relation);
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
