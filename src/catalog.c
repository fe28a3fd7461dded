/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Per-backend caches of the extension catalogs, for the hot path.
 *
 * The planner asks "is this relation protected, and which column holds its
 * tenant?" for every relation it plans.  The answer is cached per backend in
 * a hash keyed by relation OID, with negative entries, in its own memory
 * context under TopMemoryContext.  On a miss the registered tables are read
 * from tenant_isolation.protected_table with a plain catalog scan (no SPI) and
 * the relation's ancestors are looked up in pg_inherits, so a partition or an
 * inheritance child is protected through its registered root.
 *
 * Invalidation: a relcache invalidation of a cached protected relation, of
 * the catalog table, or of everything throws the whole cache away; one of an
 * unprotected relation drops its entry.  protect_table and unprotect_table
 * send relcache invalidations for the table, all its descendants and the
 * catalog table; ATTACH/DETACH PARTITION and INHERIT send their own.  A
 * syscache callback on pg_namespace notices CREATE/DROP EXTENSION.
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

/* A registered root: protected_table row. */
typedef struct TiRegistered
{
	Oid			relid;
	char		tenant_column[NAMEDATALEN];
} TiRegistered;

static MemoryContext ti_cache_cxt = NULL;
static HTAB *ti_rel_cache = NULL;	/* TiRelInfo by relid */
static HTAB *ti_registered = NULL;	/* TiRegistered by relid */
static HTAB *ti_tenant_cache = NULL;	/* TiTenantInfo by tenant id */

/* Extension presence in the current database: 0 unknown, 1 yes, -1 no. */
static int	ti_ext_state = 0;
static Oid	ti_namespace_oid = InvalidOid;
static Oid	ti_protected_catalog_oid = InvalidOid;
static Oid	ti_tenant_catalog_oid = InvalidOid;
static Oid	ti_tenant_pkey_oid = InvalidOid;
static Oid	ti_dependency_oid = InvalidOid;
static Oid	ti_runtime_tenant_oid = InvalidOid;

PG_FUNCTION_INFO_V1(ti_invalidate_rel);
PG_FUNCTION_INFO_V1(ti_tenant_dependency);

static void ti_cache_reset(void);
static void ti_relcache_callback(Datum arg, Oid relid);
static void ti_syscache_callback(Datum arg, int cacheid, uint32 hashvalue);

/*
 * ti_catalog_init
 *		Register the invalidation callbacks; caches are built lazily.
 */
void
ti_catalog_init(void)
{
	CacheRegisterRelcacheCallback(ti_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, ti_syscache_callback, (Datum) 0);
}

/*
 * ti_cache_reset
 *		Forget everything; the next lookup rebuilds what it needs.
 */
static void
ti_cache_reset(void)
{
	if (ti_cache_cxt != NULL)
		MemoryContextReset(ti_cache_cxt);
	ti_rel_cache = NULL;
	ti_registered = NULL;
	ti_tenant_cache = NULL;
}

static void
ti_relcache_callback(Datum arg, Oid relid)
{
	TiRelInfo  *info;

	if (!OidIsValid(relid) || relid == ti_protected_catalog_oid ||
		relid == ti_tenant_catalog_oid)
	{
		ti_cache_reset();
		if (!OidIsValid(relid))
			ti_ext_state = 0;
		return;
	}
	if (ti_rel_cache == NULL)
		return;
	info = (TiRelInfo *) hash_search(ti_rel_cache, &relid, HASH_FIND, NULL);
	if (info == NULL)
		return;
	if (info->is_protected)
		ti_cache_reset();		/* descendants may change with it */
	else
		(void) hash_search(ti_rel_cache, &relid, HASH_REMOVE, NULL);
}

static void
ti_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	ti_ext_state = 0;
	ti_cache_reset();
}

/*
 * ti_extension_present
 *		Is the extension installed in the current database?
 *
 * Cached; the catalog OIDs are remembered on the way.  Outside a
 * transaction nothing can be looked up: report absent without caching.
 */
bool
ti_extension_present(void)
{
	if (ti_ext_state != 0)
		return ti_ext_state > 0;
	if (!IsTransactionState())
		return false;

	ti_namespace_oid = get_namespace_oid(TI_SCHEMA, true);
	if (!OidIsValid(ti_namespace_oid))
	{
		/* cached: creating the schema fires the pg_namespace callback */
		ti_ext_state = -1;
		return false;
	}
	ti_protected_catalog_oid = InvalidOid;
	ti_tenant_catalog_oid = InvalidOid;
	ti_tenant_pkey_oid = InvalidOid;
	ti_protected_catalog_oid = get_relname_relid("protected_table",
												 ti_namespace_oid);
	ti_tenant_catalog_oid = get_relname_relid("tenant", ti_namespace_oid);
	ti_tenant_pkey_oid = get_relname_relid("tenant_pkey", ti_namespace_oid);
	{
		Oid			argtypes[1] = {UUIDOID};

		ti_dependency_oid = LookupFuncName(list_make2(makeString(TI_SCHEMA),
													  makeString("_tenant_dependency")),
										   1, argtypes, true);
		ti_runtime_tenant_oid = LookupFuncName(list_make2(makeString(TI_SCHEMA),
														  makeString("_current_tenant_uuid")),
											   0, NULL, true);
	}
	/* Not cached while CREATE EXTENSION is half way: tables come later. */
	if (!OidIsValid(ti_protected_catalog_oid) ||
		!OidIsValid(ti_tenant_catalog_oid) ||
		!OidIsValid(ti_tenant_pkey_oid))
		return false;
	/* without it (never in a released version) plans are reset wholesale */
	if (OidIsValid(ti_dependency_oid))
		ti_remember_dependency(ti_dependency_oid);
	/* 1.0 has no run-time form: every plan then carries the constant */
	ti_remember_runtime_tenant(ti_runtime_tenant_oid);
	ti_ext_state = 1;
	return true;
}

/*
 * ti_ensure_cache
 *		Create the hashes and load the registered roots.
 */
static void
ti_ensure_cache(void)
{
	HASHCTL		ctl;
	Relation	catalog;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (ti_rel_cache != NULL && ti_registered != NULL)
		return;

	/*
	 * Lock the catalog first: taking the lock accepts invalidations, whose
	 * callbacks reset the cache.  Done after the hashes were made, it could
	 * free them under our feet (a flush worker crashed there, its first
	 * statement meeting the invalidations of a concurrent protect_table).
	 */
	catalog = table_open(ti_protected_catalog_oid, AccessShareLock);

	if (ti_cache_cxt == NULL)
		ti_cache_cxt = AllocSetContextCreate(TopMemoryContext,
											 "tenant_isolation cache",
											 ALLOCSET_DEFAULT_SIZES);
	ti_cache_reset();

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(TiRegistered);
	ctl.hcxt = ti_cache_cxt;
	ti_registered = hash_create("tenant_isolation registered tables", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	scan = systable_beginscan(catalog, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d;
		Oid			relid;
		TiRegistered *reg;

		d = heap_getattr(tuple, 1, RelationGetDescr(catalog), &isnull);
		if (isnull)
			continue;
		relid = DatumGetObjectId(d);
		reg = (TiRegistered *) hash_search(ti_registered, &relid, HASH_ENTER, NULL);
		d = heap_getattr(tuple, 2, RelationGetDescr(catalog), &isnull);
		if (isnull)
			reg->tenant_column[0] = '\0';
		else
			strlcpy(reg->tenant_column, NameStr(*DatumGetName(d)), NAMEDATALEN);
	}
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(TiRelInfo);
	ctl.hcxt = ti_cache_cxt;
	ti_rel_cache = hash_create("tenant_isolation relation cache", 256, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * ti_find_registered_ancestor
 *		The nearest registered ancestor of relid through pg_inherits
 *		(partitions and inheritance children alike), or InvalidOid.
 */
static Oid
ti_find_registered_ancestor(Oid relid, int depth)
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

		if (hash_search(ti_registered, &parent, HASH_FIND, NULL) != NULL)
			return parent;
		found = ti_find_registered_ancestor(parent, depth + 1);
		if (OidIsValid(found))
			return found;
	}
	return InvalidOid;
}

/*
 * ti_lookup_rel
 *		Protection facts of one relation, from the cache.
 *
 * Returns a pointer into the cache, valid until the next invalidation
 * (callers use it at once).  Only call inside a transaction.
 */
TiRelInfo *
ti_lookup_rel(Oid relid)
{
	TiRelInfo  *info;
	bool		found;
	TiRegistered *reg;
	Oid			root = InvalidOid;
	TiRelInfo	fresh;

	if (!ti_extension_present())
	{
		static TiRelInfo none;

		none.relid = relid;
		none.is_protected = false;
		return &none;
	}

	ti_ensure_cache();
	info = (TiRelInfo *) hash_search(ti_rel_cache, &relid, HASH_FIND, &found);
	if (found && info->valid)
		return info;

	/*
	 * Compute the entry first, and only then enter it: the lookups below can
	 * run invalidation callbacks that reset the cache.
	 */
	memset(&fresh, 0, sizeof(fresh));
	fresh.relid = relid;
	reg = (TiRegistered *) hash_search(ti_registered, &relid, HASH_FIND, NULL);
	if (reg != NULL)
	{
		root = relid;
		fresh.directly = true;
	}
	else if (has_superclass(relid))
		root = ti_find_registered_ancestor(relid, 0);

	if (OidIsValid(root))
	{
		/* the cache may have been reset by the scans above */
		ti_ensure_cache();
		reg = (TiRegistered *) hash_search(ti_registered, &root, HASH_FIND, NULL);
		if (reg != NULL)
		{
			fresh.is_protected = true;
			fresh.root_relid = root;
			strlcpy(fresh.tenant_column, reg->tenant_column, NAMEDATALEN);
			fresh.tenant_attno = get_attnum(relid, reg->tenant_column);
			if (fresh.tenant_attno == InvalidAttrNumber)
			{
				/* the audit may accept invalidations: reg may be gone */
				ti_audit("denied_no_tenant_column", get_rel_name(relid),
						 ERRCODE_INSUFFICIENT_PRIVILEGE, fresh.tenant_column);
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("protected table \"%s\" has no tenant column \"%s\"",
								get_rel_name(relid) ? get_rel_name(relid) : "?",
								fresh.tenant_column)));
			}
		}
	}
	fresh.valid = true;

	ti_ensure_cache();
	info = (TiRelInfo *) hash_search(ti_rel_cache, &relid, HASH_ENTER, NULL);
	*info = fresh;
	return info;
}

/*
 * ti_tenant_lookup
 *		What the tenant catalog says of one tenant, cached per backend.
 *
 * The cache is dropped with the others when the tenant catalog is
 * invalidated (the provisioning functions do that on every change), so a
 * suspension reaches every session at its next statement.  Reads the
 * catalog by its primary key, no SPI.  false when the tenant does not exist.
 */
bool
ti_tenant_lookup(const pg_uuid_t *tenant, TiTenantInfo *out)
{
	Relation	catalog;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	TiTenantInfo fresh;
	TiTenantInfo *entry;

	memset(out, 0, sizeof(TiTenantInfo));
	if (!ti_extension_present())
		return false;

	ti_ensure_cache();
	if (ti_tenant_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(pg_uuid_t);
		ctl.entrysize = sizeof(TiTenantInfo);
		ctl.hcxt = ti_cache_cxt;
		ti_tenant_cache = hash_create("tenant_isolation tenant cache", 64, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = (TiTenantInfo *) hash_search(ti_tenant_cache, tenant, HASH_FIND, NULL);
	if (entry != NULL)
	{
		*out = *entry;
		return out->exists;
	}

	memset(&fresh, 0, sizeof(fresh));
	fresh.id = *tenant;
	catalog = table_open(ti_tenant_catalog_oid, AccessShareLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
				UUIDPGetDatum(tenant));
	scan = systable_beginscan(catalog, ti_tenant_pkey_oid, true, NULL, 1, &key);
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

	/* the scan may have run invalidation callbacks: enter only now */
	if (ti_tenant_cache != NULL)
	{
		entry = (TiTenantInfo *) hash_search(ti_tenant_cache, tenant,
											 HASH_ENTER, NULL);
		*entry = fresh;
	}
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
