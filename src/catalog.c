/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Per-backend caches of the extension catalogs, for the hot path.
 *
 * The planner asks "is this relation protected, and which column holds its
 * tenant?" for every relation it plans.  The answer is cached per backend in
 * a hash keyed by relation OID, with negative entries.  On a miss the
 * registered tables are read from tenant_isolation.protected_table with a
 * plain catalog scan (no SPI) and the relation's ancestors are looked up in
 * pg_inherits, so a partition or an inheritance child is protected through
 * its registered root.  A second hash caches what tenant_isolation.tenant
 * says of each tenant the backend met.
 *
 * What invalidates what: a relcache invalidation of the catalog table, of a
 * cached protected relation, or of everything (relid 0: a sinval overflow)
 * makes every relation entry stale; one of an unprotected relation makes its
 * entry stale; one of the tenant catalog makes every tenant entry stale.
 * protect_table and unprotect_table send relcache invalidations for the
 * table, all its descendants and the catalog table; ATTACH/DETACH PARTITION
 * and INHERIT send their own.  A syscache callback on pg_namespace notices
 * CREATE/DROP EXTENSION (a change to our schema, or to any schema while the
 * extension is absent).
 *
 * Lifetime rules, and why the caches cannot be pulled out from under
 * themselves (issue 16: the first release reset the cache inside its own
 * invalidation callback while a rebuild was half way, and hashed into the
 * freed table: SIGSEGV, and the postmaster restarted the cluster).
 *
 * 1. Invalidation callbacks never free, reset or allocate anything.  They
 *	  only bump counters (ti_rel_gen, ti_tenant_gen, ti_ext_seq, ti_inval_seq)
 *	  or set one entry's generation to 0.  Any table_open, lock, syscache miss
 *	  or catalog scan may run them (taking a lock accepts invalidations), so
 *	  this is what lets the code below call those freely.
 *
 * 2. An entry is fresh when its generation equals the current one.  Every
 *	  computation reads the generation (and ti_inval_seq) before it touches
 *	  the catalogs, builds its result in locals, and enters it only at the
 *	  end, with no catalog access between the hash_search(HASH_ENTER) and the
 *	  assignment.  If an invalidation arrived while it computed, the entry is
 *	  stored already stale (generation 0 or the old generation): the result
 *	  is used for this call, whose catalog reads came after the lock that
 *	  delivered the invalidation, and recomputed by the next lookup.
 *
 * 3. The relation hash is never destroyed and its entries are never removed
 *	  while a transaction runs; dynahash never moves an element.  So the
 *	  TiRelInfo pointer that ti_lookup_rel returns stays valid until the end
 *	  of the transaction, whatever lookups, locks and invalidations come
 *	  after it.  Its contents are rewritten only by a later ti_lookup_rel of
 *	  the same relation, with the complete new answer in one assignment.
 *	  Only at the end of a top-level transaction (xact callback: no caller
 *	  can hold a pointer across it), if the hash has grown beyond
 *	  TI_REL_CACHE_TRIM entries, it is dropped and built again lazily; that
 *	  bounds the memory of long-lived backends that see many relations.
 *
 * 4. The registered roots (a small hash) are reloaded into a new hash, in a
 *	  new memory context under CurTransactionContext, and published only when
 *	  the scan is complete (an error leaves the old set and frees the new one
 *	  with the transaction).  The hash a computation works with is passed to
 *	  its helpers, never re-read from the global; the replaced hash is freed
 *	  at once unless another computation is running (never, as no catalog
 *	  access runs ti_lookup_rel; then it lives until the transaction ends).
 *
 * 5. Tenant entries are copied out by value (ti_tenant_lookup); the tenant
 *	  hash follows rules 1-3.  The extension's own OIDs are computed into
 *	  locals and published together; the presence flag is cached only when
 *	  no invalidation arrived while they were looked up.
 *
 * The other per-backend caches were reviewed against the same rules: jwt.c
 * (keys reloaded only at a miss, loaded generation recorded only when a load
 * completes), keys.c (the slab is wiped in place, never freed, and a wiped
 * slot cannot be used as a key), executor.c (the tenant-role answer is not
 * remembered if a pg_authid invalidation arrived while it was computed) and
 * limits.c (shared memory, a generation read before the catalog scan).
 * Tenant settings are read by SQL each time and have no cache.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "tenant_isolation.h"

/* Beyond these many entries a cache is dropped at the end of a transaction. */
#define TI_REL_CACHE_TRIM		8192
#define TI_TENANT_CACHE_TRIM	4096

/* A registered root: protected_table row. */
typedef struct TiRegistered
{
	Oid			relid;
	char		tenant_column[NAMEDATALEN];
} TiRegistered;

/* A relation cache entry: fresh while gen == ti_rel_gen (rule 2). */
typedef struct TiRelEntry
{
	Oid			relid;			/* hash key */
	uint64		gen;			/* 0: stale */
	TiRelInfo	info;			/* handed out by pointer (rule 3) */
} TiRelEntry;

/* A tenant cache entry: fresh while gen == ti_tenant_gen. */
typedef struct TiTenantCacheEntry
{
	pg_uuid_t	id;				/* hash key */
	uint64		gen;
	TiTenantInfo info;			/* copied out */
} TiTenantCacheEntry;

static MemoryContext ti_cache_cxt = NULL;
static HTAB *ti_rel_cache = NULL;	/* TiRelEntry by relid */
static HTAB *ti_tenant_cache = NULL;	/* TiTenantCacheEntry by tenant id */

static HTAB *ti_registered = NULL;	/* TiRegistered by relid (rule 4) */
static MemoryContext ti_registered_cxt = NULL;
static uint64 ti_registered_gen = 0;
static int	ti_rel_computing = 0;	/* computations running (rule 4) */

/* Generations (rule 2); 0 is never current. */
static uint64 ti_rel_gen = 1;
static uint64 ti_tenant_gen = 1;
static uint64 ti_inval_seq = 0;		/* every relcache callback */

/* Extension presence in the current database: 0 unknown, 1 yes, -1 no. */
static int	ti_ext_state = 0;
static uint64 ti_ext_seq = 0;		/* bumped when presence may change */
static Oid	ti_namespace_oid = InvalidOid;
static uint32 ti_namespace_hash = 0;
static Oid	ti_protected_catalog_oid = InvalidOid;
static Oid	ti_tenant_catalog_oid = InvalidOid;
static Oid	ti_tenant_pkey_oid = InvalidOid;
static Oid	ti_dependency_oid = InvalidOid;
static Oid	ti_runtime_tenant_oid = InvalidOid;
static Oid	ti_worker_assertion_oid = InvalidOid;	/* issue 19, citus.c */

PG_FUNCTION_INFO_V1(ti_invalidate_rel);
PG_FUNCTION_INFO_V1(ti_tenant_dependency);

static void ti_relcache_callback(Datum arg, Oid relid);
static void ti_syscache_callback(Datum arg, int cacheid, uint32 hashvalue);
static void ti_catalog_xact_callback(XactEvent event, void *arg);

/*
 * One relcache callback slot for the whole extension.
 *
 * PostgreSQL 15 has room for ten relcache callbacks per backend
 * (MAX_RELCACHE_CALLBACKS in inval.c), shared by core (the plan cache and
 * the type cache take two) and every preloaded library: Citus takes five.
 * Running out is a FATAL error in CREATE EXTENSION citus, so the modules of
 * this extension register theirs here and all of them use one slot.
 */
#define TI_MAX_RELCACHE_CALLBACKS 8
static RelcacheCallbackFunction ti_relcache_callbacks[TI_MAX_RELCACHE_CALLBACKS];
static int	ti_n_relcache_callbacks = 0;

void
ti_register_relcache_callback(RelcacheCallbackFunction func)
{
	if (ti_n_relcache_callbacks >= TI_MAX_RELCACHE_CALLBACKS)
		elog(FATAL, "out of tenant_isolation relcache callback slots");
	ti_relcache_callbacks[ti_n_relcache_callbacks++] = func;
}

static void
ti_relcache_dispatch(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < ti_n_relcache_callbacks; i++)
		ti_relcache_callbacks[i] ((Datum) 0, relid);
}

/*
 * ti_catalog_init
 *		Register the invalidation callbacks; caches are built lazily.
 */
void
ti_catalog_init(void)
{
	CacheRegisterRelcacheCallback(ti_relcache_dispatch, (Datum) 0);
	ti_register_relcache_callback(ti_relcache_callback);
	CacheRegisterSyscacheCallback(NAMESPACEOID, ti_syscache_callback, (Datum) 0);
	RegisterXactCallback(ti_catalog_xact_callback, NULL);
}

/*
 * ti_forget_all
 *		Everything cached may be stale: bump every generation.  Frees
 *		nothing (rule 1).
 */
static void
ti_forget_all(void)
{
	ti_ext_state = 0;
	ti_ext_seq++;
	ti_rel_gen++;
	ti_tenant_gen++;
	ti_inval_seq++;
}

/*
 * ti_relcache_callback
 *		Mark what a relcache invalidation makes stale.  Rule 1: counters and
 *		one generation field only; hash_search(HASH_FIND) allocates nothing.
 */
static void
ti_relcache_callback(Datum arg, Oid relid)
{
	TiRelEntry *entry;

	ti_inval_seq++;
	if (!OidIsValid(relid))
	{
		/* a reset may have swallowed a pg_namespace invalidation too */
		ti_forget_all();
		return;
	}
	if (relid == ti_protected_catalog_oid)
	{
		ti_rel_gen++;
		return;
	}
	if (relid == ti_tenant_catalog_oid)
	{
		ti_tenant_gen++;
		return;
	}
	if (ti_rel_cache == NULL)
		return;
	entry = (TiRelEntry *) hash_search(ti_rel_cache, &relid, HASH_FIND, NULL);
	if (entry == NULL)
		return;
	if (entry->info.is_protected)
		ti_rel_gen++;			/* its descendants may change with it */
	else
		entry->gen = 0;
}

/*
 * ti_syscache_callback
 *		pg_namespace changed.  While the extension is present only a change
 *		of its own schema matters (DROP EXTENSION, a rename); while it is
 *		absent or unknown any new schema may be it.  hashvalue 0 is a reset.
 */
static void
ti_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	if (ti_ext_state > 0 && hashvalue != 0 && hashvalue != ti_namespace_hash)
		return;
	ti_forget_all();
}

/*
 * ti_catalog_xact_callback
 *		At the end of a top-level transaction no TiRelInfo pointer is held
 *		(rule 3): drop caches that grew too large, and forget the count of
 *		running computations that an error may have left behind.
 */
static void
ti_catalog_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			break;
		default:
			return;
	}
	ti_rel_computing = 0;
	if (ti_rel_cache != NULL &&
		hash_get_num_entries(ti_rel_cache) > TI_REL_CACHE_TRIM)
	{
		hash_destroy(ti_rel_cache);
		ti_rel_cache = NULL;
	}
	if (ti_tenant_cache != NULL &&
		hash_get_num_entries(ti_tenant_cache) > TI_TENANT_CACHE_TRIM)
	{
		hash_destroy(ti_tenant_cache);
		ti_tenant_cache = NULL;
	}
}

/*
 * ti_extension_present
 *		Is the extension installed in the current database?
 *
 * Cached; the catalog OIDs are remembered on the way.  Everything is looked
 * up into locals first and published together (rule 5): the lookups may run
 * the callbacks.  Outside a transaction nothing can be looked up: report
 * absent without caching.
 */
bool
ti_extension_present(void)
{
	uint64		seq;
	Oid			nsp;
	uint32		nsp_hash;
	Oid			protected_oid;
	Oid			tenant_oid;
	Oid			pkey_oid;
	Oid			dependency_oid;
	Oid			runtime_oid;
	Oid			assertion_oid;
	Oid			argtypes[1] = {UUIDOID};
	Oid			textarg[1] = {TEXTOID};

	if (ti_ext_state != 0)
		return ti_ext_state > 0;
	if (!IsTransactionState())
		return false;

	seq = ti_ext_seq;
	nsp = get_namespace_oid(TI_SCHEMA, true);
	if (!OidIsValid(nsp))
	{
		/* cached: creating the schema fires the pg_namespace callback */
		if (seq == ti_ext_seq)
			ti_ext_state = -1;
		return false;
	}
	protected_oid = get_relname_relid("protected_table", nsp);
	tenant_oid = get_relname_relid("tenant", nsp);
	pkey_oid = get_relname_relid("tenant_pkey", nsp);
	runtime_oid = LookupFuncName(list_make2(makeString(TI_SCHEMA),
											makeString("_current_tenant_uuid")),
								 0, NULL, true);
	assertion_oid = LookupFuncName(list_make2(makeString(TI_SCHEMA),
											  makeString("_worker_assertion")),
								   1, textarg, true);
	/* Not cached while CREATE EXTENSION is half way: tables come later. */
	if (!OidIsValid(protected_oid) || !OidIsValid(tenant_oid) ||
		!OidIsValid(pkey_oid))
		return false;
	dependency_oid = LookupFuncName(list_make2(makeString(TI_SCHEMA),
											   makeString("_tenant_dependency")),
									1, argtypes, true);
	/* without it (never in a released version) plans are reset wholesale */
	if (OidIsValid(dependency_oid))
		ti_remember_dependency(dependency_oid);
	/* 1.0 has no run-time form: every plan then carries the constant */
	ti_remember_runtime_tenant(runtime_oid);
	nsp_hash = GetSysCacheHashValue1(NAMESPACEOID, ObjectIdGetDatum(nsp));

	/* publish; a re-created extension has new tables: nothing cached holds */
	if (protected_oid != ti_protected_catalog_oid ||
		tenant_oid != ti_tenant_catalog_oid)
	{
		ti_rel_gen++;
		ti_tenant_gen++;
	}
	ti_namespace_oid = nsp;
	ti_namespace_hash = nsp_hash;
	ti_protected_catalog_oid = protected_oid;
	ti_tenant_catalog_oid = tenant_oid;
	ti_tenant_pkey_oid = pkey_oid;
	ti_dependency_oid = dependency_oid;
	ti_runtime_tenant_oid = runtime_oid;
	ti_worker_assertion_oid = assertion_oid;
	if (seq == ti_ext_seq)
		ti_ext_state = 1;
	return true;
}

/*
 * ti_cache_create
 *		Create the cache context and the hashes that are missing.  Allocation
 *		only, no catalog access.
 */
static void
ti_cache_create(void)
{
	HASHCTL		ctl;

	if (ti_cache_cxt == NULL)
		ti_cache_cxt = AllocSetContextCreate(TopMemoryContext,
											 "tenant_isolation cache",
											 ALLOCSET_DEFAULT_SIZES);
	if (ti_rel_cache == NULL)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TiRelEntry);
		ctl.hcxt = ti_cache_cxt;
		ti_rel_cache = hash_create("tenant_isolation relation cache", 256, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (ti_tenant_cache == NULL)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(pg_uuid_t);
		ctl.entrysize = sizeof(TiTenantCacheEntry);
		ctl.hcxt = ti_cache_cxt;
		ti_tenant_cache = hash_create("tenant_isolation tenant cache", 64, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

/*
 * ti_registered_get
 *		The registered roots, reloaded if an invalidation made them stale.
 *
 * Rule 4: the new set is built in its own context under
 * CurTransactionContext, so an error mid-scan frees it with the transaction
 * and leaves the published set alone; only a complete set is published.
 * Its generation is the one read before the scan, so an invalidation that
 * the scan's lock delivered makes the next call reload again.
 */
static HTAB *
ti_registered_get(void)
{
	uint64		gen = ti_rel_gen;
	Oid			catalog_oid = ti_protected_catalog_oid;
	MemoryContext cxt;
	MemoryContext old;
	HASHCTL		ctl;
	HTAB	   *reg;
	Relation	catalog;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (ti_registered != NULL && ti_registered_gen == gen)
		return ti_registered;

	cxt = AllocSetContextCreate(CurTransactionContext,
								"tenant_isolation registered tables",
								ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(TiRegistered);
	ctl.hcxt = cxt;
	reg = hash_create("tenant_isolation registered tables", 64, &ctl,
					  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	catalog = table_open(catalog_oid, AccessShareLock);
	scan = systable_beginscan(catalog, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d;
		Oid			relid;
		TiRegistered *entry;

		d = heap_getattr(tuple, 1, RelationGetDescr(catalog), &isnull);
		if (isnull)
			continue;
		relid = DatumGetObjectId(d);
		entry = (TiRegistered *) hash_search(reg, &relid, HASH_ENTER, NULL);
		d = heap_getattr(tuple, 2, RelationGetDescr(catalog), &isnull);
		if (isnull)
			entry->tenant_column[0] = '\0';
		else
			strlcpy(entry->tenant_column, NameStr(*DatumGetName(d)), NAMEDATALEN);
	}
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);

	/* publish: from here to the return nothing can run a callback */
	ti_cache_create();
	MemoryContextSetParent(cxt, ti_cache_cxt);
	old = ti_registered_cxt;
	ti_registered = reg;
	ti_registered_cxt = cxt;
	ti_registered_gen = gen;
	if (old != NULL)
	{
		/* the caller is one computation; another one may hold the old set */
		if (ti_rel_computing <= 1)
			MemoryContextDelete(old);
		else
			MemoryContextSetParent(old, TopTransactionContext);
	}
	return reg;
}

/*
 * ti_find_registered_ancestor
 *		The nearest ancestor of relid in reg through pg_inherits (partitions
 *		and inheritance children alike), or InvalidOid.
 */
static Oid
ti_find_registered_ancestor(HTAB *reg, Oid relid, int depth)
{
	Relation	inhrel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	Oid			found = InvalidOid;
	List	   *parents = NIL;
	ListCell   *lc;

	check_stack_depth();
	if (depth > 100)
		return InvalidOid;

	inhrel = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(inhrel, InheritsRelidSeqnoIndexId, true,
							  NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		parents = lappend_oid(parents,
							  ((Form_pg_inherits) GETSTRUCT(tuple))->inhparent);
	systable_endscan(scan);
	table_close(inhrel, AccessShareLock);

	foreach(lc, parents)
	{
		Oid			parent = lfirst_oid(lc);

		if (hash_search(reg, &parent, HASH_FIND, NULL) != NULL)
			return parent;
		found = ti_find_registered_ancestor(reg, parent, depth + 1);
		if (OidIsValid(found))
			return found;
	}
	return InvalidOid;
}

/*
 * ti_rel_compute
 *		The protection facts of one relation, computed into *out.  Returns
 *		the generation to store them with: 0 when an invalidation arrived
 *		while they were computed (rule 2).
 */
static uint64
ti_rel_compute(Oid relid, TiRelInfo *out)
{
	uint64		gen = ti_rel_gen;
	uint64		seq = ti_inval_seq;
	HTAB	   *reg;
	TiRegistered *entry;
	Oid			root = InvalidOid;

	memset(out, 0, sizeof(TiRelInfo));
	out->relid = relid;
	out->valid = true;

	reg = ti_registered_get();
	if (hash_search(reg, &relid, HASH_FIND, NULL) != NULL)
	{
		root = relid;
		out->directly = true;
	}
	else if (has_superclass(relid))
		root = ti_find_registered_ancestor(reg, relid, 0);
	else
	{
		/* a Citus shard or shell: its shell's registration, or citus.c */
		Oid			shell = ti_citus_shell_of(relid);

		if (OidIsValid(shell) && shell != relid &&
			hash_search(reg, &shell, HASH_FIND, NULL) != NULL)
			root = shell;
		else if (OidIsValid(shell) &&
				 ti_citus_worker_protected(relid, shell, out->tenant_column))
		{
			/* protected on this Citus node by its fallback policy */
			out->is_protected = true;
			out->root_relid = relid;
			out->tenant_attno = get_attnum(relid, out->tenant_column);
			if (out->tenant_attno == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("protected table \"%s\" has no tenant column \"%s\"",
								get_rel_name(relid) ? get_rel_name(relid) : "?",
								out->tenant_column)));
		}
	}

	if (OidIsValid(root))
	{
		/* reg is still the set this computation loaded (rule 4) */
		entry = (TiRegistered *) hash_search(reg, &root, HASH_FIND, NULL);
		Assert(entry != NULL);
		out->is_protected = true;
		out->root_relid = root;
		strlcpy(out->tenant_column, entry->tenant_column, NAMEDATALEN);
		out->tenant_attno = get_attnum(relid, out->tenant_column);
		if (out->tenant_attno == InvalidAttrNumber)
		{
			char	   *relname = get_rel_name(relid);

			ti_audit("denied_no_tenant_column", relname,
					 ERRCODE_INSUFFICIENT_PRIVILEGE, out->tenant_column);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("protected table \"%s\" has no tenant column \"%s\"",
							relname ? relname : "?", out->tenant_column)));
		}
	}

	if (gen != ti_rel_gen || seq != ti_inval_seq)
		return 0;
	return gen;
}

/*
 * ti_lookup_rel
 *		Protection facts of one relation, from the cache.
 *
 * Returns a pointer into the cache that stays valid until the end of the
 * transaction, across any later lookup, lock or invalidation (rule 3); a
 * later lookup of the same relation may rewrite what it points to with a
 * newer answer.  Only call inside a transaction; never keep the pointer
 * beyond it.
 */
TiRelInfo *
ti_lookup_rel(Oid relid)
{
	TiRelEntry *entry;
	TiRelInfo	fresh;
	uint64		gen;

	if (!ti_extension_present())
	{
		static TiRelInfo none;

		memset(&none, 0, sizeof(none));
		none.relid = relid;
		none.valid = true;
		return &none;
	}

	ti_cache_create();
	entry = (TiRelEntry *) hash_search(ti_rel_cache, &relid, HASH_FIND, NULL);
	if (entry != NULL && entry->gen == ti_rel_gen)
		return &entry->info;

	ti_rel_computing++;
	PG_TRY();
	{
		gen = ti_rel_compute(relid, &fresh);
	}
	PG_FINALLY();
	{
		ti_rel_computing--;
	}
	PG_END_TRY();

	/* enter only now; nothing between here and the return accepts messages */
	ti_cache_create();
	entry = (TiRelEntry *) hash_search(ti_rel_cache, &relid, HASH_ENTER, NULL);
	entry->info = fresh;
	entry->gen = gen;
	return &entry->info;
}

/*
 * ti_tenant_lookup
 *		What the tenant catalog says of one tenant, cached per backend.
 *
 * The entries go stale when the tenant catalog is invalidated (the
 * provisioning functions do that on every change), so a suspension reaches
 * every session at its next statement.  Reads the catalog by its primary
 * key, no SPI.  false when the tenant does not exist.  The answer is copied
 * into *out; no pointer into the cache leaves this function.
 */
bool
ti_tenant_lookup(const pg_uuid_t *tenant, TiTenantInfo *out)
{
	Relation	catalog;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	TiTenantInfo fresh;
	TiTenantCacheEntry *entry;
	uint64		gen;
	Oid			catalog_oid;
	Oid			pkey_oid;

	memset(out, 0, sizeof(TiTenantInfo));
	if (!ti_extension_present())
		return false;

	ti_cache_create();
	entry = (TiTenantCacheEntry *) hash_search(ti_tenant_cache, tenant,
											   HASH_FIND, NULL);
	if (entry != NULL && entry->gen == ti_tenant_gen)
	{
		*out = entry->info;
		return out->exists;
	}

	gen = ti_tenant_gen;
	catalog_oid = ti_tenant_catalog_oid;
	pkey_oid = ti_tenant_pkey_oid;
	memset(&fresh, 0, sizeof(fresh));
	fresh.id = *tenant;
	catalog = table_open(catalog_oid, AccessShareLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
				UUIDPGetDatum(tenant));
	scan = systable_beginscan(catalog, pkey_oid, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		TupleDesc	desc = RelationGetDescr(catalog);
		bool		isnull;
		Datum		d;

		fresh.exists = true;
		d = heap_getattr(tuple, 3, desc, &isnull);
		fresh.schema_tier = !isnull && strcmp(TextDatumGetCString(d), "schema") == 0;
		d = heap_getattr(tuple, 4, desc, &isnull);
		fresh.active = !isnull && strcmp(TextDatumGetCString(d), "active") == 0;
		if (desc->natts >= 8)
		{
			d = heap_getattr(tuple, 7, desc, &isnull);
			if (!isnull)
				strlcpy(fresh.schema_name, NameStr(*DatumGetName(d)), NAMEDATALEN);
			d = heap_getattr(tuple, 8, desc, &isnull);
			if (!isnull)
				strlcpy(fresh.role_name, NameStr(*DatumGetName(d)), NAMEDATALEN);
		}
	}
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);

	/*
	 * Enter only now (rule 2), with the generation read before the scan: if
	 * the scan's lock delivered an invalidation, the entry is born stale.
	 */
	ti_cache_create();
	entry = (TiTenantCacheEntry *) hash_search(ti_tenant_cache, tenant,
											   HASH_ENTER, NULL);
	entry->info = fresh;
	entry->gen = gen;
	*out = fresh;
	return fresh.exists;
}

/*
 * ti_tenant_status
 *		Does the tenant exist, and is it active?
 */
bool
ti_tenant_status(const pg_uuid_t *tenant, bool *active)
{
	TiTenantInfo info;
	bool		exists = ti_tenant_lookup(tenant, &info);

	*active = info.active;
	return exists;
}

/*
 * ti_dependency_func
 *		OID of tenant_isolation._tenant_dependency(uuid), or InvalidOid.
 */
Oid
ti_dependency_func(void)
{
	return ti_extension_present() ? ti_dependency_oid : InvalidOid;
}

/*
 * ti_runtime_tenant_func
 *		OID of tenant_isolation._current_tenant_uuid(), or InvalidOid (1.0).
 */
Oid
ti_runtime_tenant_func(void)
{
	return ti_extension_present() ? ti_runtime_tenant_oid : InvalidOid;
}

/*
 * ti_worker_assertion_func
 *		OID of tenant_isolation._worker_assertion(text), or InvalidOid
 *		(before 1.1): the call that carries a Citus coordinator's assertion
 *		inside a statement (citus.c).
 */
Oid
ti_worker_assertion_func(void)
{
	return ti_extension_present() ? ti_worker_assertion_oid : InvalidOid;
}

/*
 * _tenant_dependency(uuid) RETURNS uuid: the identity.
 */
Datum
ti_tenant_dependency(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}

/*
 * ti_admin_role_oid
 *		OID of tenant_isolation_admin (syscache lookup), or InvalidOid.
 */
Oid
ti_admin_role_oid(void)
{
	return get_role_oid(TI_ADMIN_ROLE, true);
}

/*
 * _invalidate(tbl regclass)
 *		Make every backend forget what it cached about a relation whose
 *		protection changed, and re-read the registered tables.
 */
Datum
ti_invalidate_rel(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);

	if (!superuser())
	{
		ti_audit("denied_internal_function", "tenant_isolation._invalidate",
				 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for internal function")));
	}
	CacheInvalidateRelcacheByRelid(relid);
	if (ti_extension_present())
		CacheInvalidateRelcacheByRelid(ti_protected_catalog_oid);
	PG_RETURN_VOID();
}
