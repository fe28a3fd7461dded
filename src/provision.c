/*-------------------------------------------------------------------------
 *
 * provision.c
 *	  Provisioning: protect/unprotect/mark_global, the fail-closed fallback,
 *	  the tenant lifecycle (create, suspend, resume, drop, move, placement),
 *	  templates and migrations of the schema tier, export, row counts and
 *	  settings.
 *
 * Until 1.1 these were SECURITY DEFINER PL/pgSQL functions owned by the
 * superuser who created the extension, and everything in them ran with
 * that superuser's rights: the DDL a caller handed to
 * migrate_tenant_schemas(), the triggers of every table drop_tenant()
 * deleted from, and the "internal DDL" permission, a session flag that SQL
 * switched on and off and that outlived a failed call.  A member of
 * tenant_isolation_admin could make itself superuser with one call.
 *
 * Here every function runs as its caller (SECURITY INVOKER, LANGUAGE C) and
 * switches identity explicitly, for one fixed statement at a time, with the
 * previous identity restored on every path (PG_FINALLY), as keys.c does:
 *
 *	- the extension owner, for rows of the extension's catalogs and for the
 *	  fixed DDL of a protection (guard trigger, row level security, fallback
 *	  policy, tenant column default) and of a tenant schema (role, schema,
 *	  copies of the templates).  These statements are built only from
 *	  quote_identifier()/quote_qualified_identifier() of catalog names, and
 *	  take values only as SPI parameters, never as text from the caller.
 *	  They run with search_path = pg_catalog, pg_temp and as a
 *	  security-restricted operation.
 *
 *	- the owner of a protected table, inside the tenant's context, for the
 *	  row work on it (DELETE of a dropped or moved tenant's rows, INSERT of
 *	  a moved tenant's rows): the table's own triggers, defaults, index
 *	  expressions and referential actions run with the rights of the role
 *	  that wrote them, scoped to the one tenant, exactly as they would in a
 *	  session of that tenant.  Before 1.1 they ran as superuser.  Reads
 *	  (counts, export, the rows a move copies) run as the extension owner in
 *	  the tenant's context: a plain scan of a table runs no code of its
 *	  owner (superusers bypass row level security; SELECT fires no trigger).
 *
 *	- the tenant's role, for the DDL of migrate_tenant_schemas() in that
 *	  tenant's schema, with only that schema on the search_path and the
 *	  tenant's context in force: a migration can never do what the tenant's
 *	  role could not.  SECURITY_LOCAL_USERID_CHANGE keeps the DDL from
 *	  SET ROLE / SET SESSION AUTHORIZATION back out (PostgreSQL refuses both
 *	  inside a local user id change); SECURITY_RESTRICTED_OPERATION keeps it
 *	  from leaving temporary objects or holdable cursors in the caller's
 *	  session, and every setting it changed is rolled back after it.
 *
 *	- the caller itself, for the caller's DDL on the templates.
 *
 * The internal DDL permission (utility.c's ti_internal_ddl, which lets the
 * extension drop or disable the pieces of a protection that the utility
 * hook refuses to everyone else) is true only while one of the fixed
 * statements above runs through SPI, and is restored in PG_FINALLY; nothing
 * in SQL can set it, and nothing the caller wrote runs while it is set.
 *
 * The tenant's context is entered for row work by setting
 * tenant_isolation.tenant_id in a GUC nest level of its own (what a
 * function's SET clause does): it is popped at the end of the step, and on
 * error by the (sub)transaction abort.  ti_provisioning tells executor.c
 * that such a step is running, so that the rows of a suspended tenant can
 * still be dropped or moved.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/provision.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/policy.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "tenant_isolation.h"

/* true while a provisioning step works on rows in a tenant's context */
bool		ti_provisioning = false;

PG_FUNCTION_INFO_V1(ti_protect_table);
PG_FUNCTION_INFO_V1(ti_unprotect_table);
PG_FUNCTION_INFO_V1(ti_mark_global);
PG_FUNCTION_INFO_V1(ti_apply_fallback_sql);
PG_FUNCTION_INFO_V1(ti_remove_fallback_sql);
PG_FUNCTION_INFO_V1(ti_create_tenant);
PG_FUNCTION_INFO_V1(ti_suspend_tenant);
PG_FUNCTION_INFO_V1(ti_resume_tenant);
PG_FUNCTION_INFO_V1(ti_drop_tenant);
PG_FUNCTION_INFO_V1(ti_set_tenant_placement);
PG_FUNCTION_INFO_V1(ti_tenant_row_counts);
PG_FUNCTION_INFO_V1(ti_add_template_table);
PG_FUNCTION_INFO_V1(ti_migrate_tenant_schemas);
PG_FUNCTION_INFO_V1(ti_move_tenant);
PG_FUNCTION_INFO_V1(ti_export_tenant);
PG_FUNCTION_INFO_V1(ti_set_tenant_setting);
PG_FUNCTION_INFO_V1(ti_count_tenant_rows_sql);

#define TI_SAFE_PATH "pg_catalog, pg_temp"

/*
 * ti_provision_subxact
 *		An aborted subtransaction drops the internal DDL permission.  The
 *		functions here never leave it set (PG_FINALLY); this covers the 1.0
 *		provisioning functions, which set it from SQL through _internal_ddl()
 *		until ALTER EXTENSION UPDATE drops that function: a 1.0 protect_table
 *		that failed inside a savepoint must not leave it behind.
 */
static void
ti_provision_subxact(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		ti_internal_ddl = false;
}

void
ti_provision_init(void)
{
	RegisterSubXactCallback(ti_provision_subxact, NULL);
}

/* ----------------------------------------------------------------
 *	Identities and statements
 * ----------------------------------------------------------------
 */

/*
 * ti_ext_owner
 *		Owner of the extension's catalogs: the role that created it.
 */
static Oid
ti_ext_owner(void)
{
	Oid			nsp = get_namespace_oid(TI_SCHEMA, false);
	Oid			relid = get_relname_relid("tenant", nsp);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "catalog tenant_isolation.tenant is missing");
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

static Oid
ti_rel_owner(Oid relid)
{
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* A relation's name as regclass prints it (qualified unless on the path). */
static char *
ti_regclass_text(Oid relid)
{
	return DatumGetCString(DirectFunctionCall1(regclassout,
											   ObjectIdGetDatum(relid)));
}

/* A relation's name for statement text: always qualified and quoted. */
static char *
ti_rel_sql(Oid relid)
{
	char	   *rel = get_rel_name(relid);
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));

	if (rel == NULL || nsp == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(nsp, rel);
}

/*
 * ti_require_admin
 *		EXECUTE of every provisioning function is granted to
 *		tenant_isolation_admin only; this also covers a grant made by
 *		mistake.
 */
static void
ti_require_admin(const char *what)
{
	if (!ti_is_admin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s", what),
				 errdetail("Only superusers and members of tenant_isolation_admin may provision tenants and tables.")));
}

static void
ti_require_no_context(const char *what)
{
	if (ti_context_get(NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s cannot run in a tenant context", what),
				 errhint("Call tenant_isolation.logout() first.")));
}

/*
 * ti_push_path
 *		Open a GUC nest level with search_path set to path; ti_pop_gucs
 *		closes it on success, the (sub)transaction abort on error.
 */
static int
ti_push_path(const char *path)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * ti_pop_gucs
 *		Close a nest level and roll back every setting changed in it, like
 *		ANALYZE after running index functions: neither a table owner's
 *		trigger nor a tenant's function run by a migration may leave a
 *		setting (a search_path into its own schema, say) behind in the
 *		caller's session.
 */
static void
ti_pop_gucs(int nest)
{
	AtEOXact_GUC(false, nest);
}

/*
 * ti_enter_tenant
 *		Put the tenant's context in force in a nest level of its own.
 *
 * Refused while a statement that reads protected tables runs: it sees one
 * context to its end (contract, semantics 2).
 */
static int
ti_enter_tenant(const pg_uuid_t *tenant)
{
	int			nest;

	if (ti_protected_running > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot provision tenants while a statement that reads protected tables is running"),
				 errhint("Call the function in a statement of its own.")));
	nest = NewGUCNestLevel();
	(void) set_config_option("tenant_isolation.tenant_id",
							 ti_uuid_to_cstring(tenant), PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * ti_exec_as
 *		Run one statement through SPI as role; the caller's identity is
 *		restored on every path.  restricted adds
 *		SECURITY_RESTRICTED_OPERATION (no SET ROLE, no temporary objects, no
 *		deferred work left behind).  Returns SPI_processed; SPI_tuptable
 *		holds the result until SPI_finish.
 */
static uint64
ti_exec_as(Oid role, bool restricted, const char *sql, int nargs,
		   Oid *argtypes, Datum *values, const char *nulls, bool read_only)
{
	Oid			save_userid;
	int			save_sec;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   (restricted ? SECURITY_RESTRICTED_OPERATION : 0));
	PG_TRY();
	{
		rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls,
								   read_only, 0);
		if (rc < 0)
			elog(ERROR, "SPI_execute_with_args failed: %s",
				 SPI_result_code_string(rc));
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	return SPI_processed;
}

/* A fixed statement on the extension's catalogs, as the extension owner. */
static uint64
ti_exec_owner(const char *sql, int nargs, Oid *argtypes, Datum *values,
			  const char *nulls)
{
	return ti_exec_as(ti_ext_owner(), true, sql, nargs, argtypes, values,
					  nulls, false);
}

/*
 * ti_exec_internal_ddl
 *		Fixed DDL of a protection or a tenant schema, as role, with the
 *		internal DDL permission held for exactly this statement.
 *
 * Why it holds: sql is built here from quoted catalog names; while it runs,
 * only PostgreSQL's own DDL code and event triggers (superuser-owned) run;
 * PG_FINALLY restores the previous value whatever happens, so neither a
 * caught error nor a savepoint leaves the permission behind.
 */
static void
ti_exec_internal_ddl(Oid role, const char *sql)
{
	bool		save = ti_internal_ddl;

	ti_internal_ddl = true;
	PG_TRY();
	{
		(void) ti_exec_as(role, true, sql, 0, NULL, NULL, NULL, false);
	}
	PG_FINALLY();
	{
		ti_internal_ddl = save;
	}
	PG_END_TRY();
}

/*
 * ti_exec_in_tenant
 *		Row work on one tenant's rows: as role, in the tenant's context.
 */
static uint64
ti_exec_in_tenant(Oid role, const pg_uuid_t *tenant, const char *sql,
				  int nargs, Oid *argtypes, Datum *values, bool read_only)
{
	int			nest = ti_enter_tenant(tenant);
	bool		save = ti_provisioning;
	uint64		n;

	ti_provisioning = true;
	PG_TRY();
	{
		n = ti_exec_as(role, true, sql, nargs, argtypes, values, NULL,
					   read_only);
	}
	PG_FINALLY();
	{
		ti_provisioning = save;
	}
	PG_END_TRY();
	ti_pop_gucs(nest);
	return n;
}

static void
ti_invalidate(Oid relid)
{
	Oid			nsp = get_namespace_oid(TI_SCHEMA, false);

	CacheInvalidateRelcacheByRelid(relid);
	CacheInvalidateRelcacheByRelid(get_relname_relid("protected_table", nsp));
}

/* The tenant catalog changed: every backend re-reads what it cached. */
static void
ti_tenants_changed(void)
{
	ti_invalidate(get_relname_relid("tenant", get_namespace_oid(TI_SCHEMA, false)));
}

static void
ti_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static Datum
ti_col(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col, isnull);
}

static char *
ti_col_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* Does text contain a character that is not white space? */
static bool
ti_has_nonspace(text *t)
{
	return DatumGetBool(DirectFunctionCall2Coll(textregexeq, DEFAULT_COLLATION_OID,
												PointerGetDatum(t),
												CStringGetTextDatum("[^[:space:]]")));
}

static int
ti_text_chars(const char *s)
{
	return pg_mbstrlen(s);
}

/* The first n characters of s (left(s, n)). */
static char *
ti_left(const char *s, int n)
{
	return pnstrdup(s, pg_mbcharcliplen(s, strlen(s), n));
}

/* ----------------------------------------------------------------
 *	Tenants: catalog rows
 * ----------------------------------------------------------------
 */

typedef struct TiTenantRow
{
	pg_uuid_t	id;
	bool		schema_tier;
	char	   *schema_name;	/* NULL unless schema tier */
	char	   *role_name;
} TiTenantRow;

/*
 * ti_require_tenant
 *		The catalog row of a tenant: 22023 for NULL or an unknown id.
 */
static void
ti_require_tenant(FunctionCallInfo fcinfo, int argno, TiTenantRow *row)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant id must not be null")));
	row->id = *PG_GETARG_UUID_P(argno);
	values[0] = UUIDPGetDatum(&row->id);
	if (ti_exec_owner("SELECT tier, schema_name, role_name FROM tenant_isolation.tenant "
					  "WHERE id = $1", 1, argtypes, values, NULL) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant %s does not exist", ti_uuid_to_cstring(&row->id))));
	row->schema_tier = strcmp(ti_col_text(0, 1), "schema") == 0;
	row->schema_name = ti_col_text(0, 2);
	row->role_name = ti_col_text(0, 3);
}

/* ----------------------------------------------------------------
 *	The fail-closed fallback
 * ----------------------------------------------------------------
 */

/*
 * ti_apply_fallback
 *		Row level security, forced, with a deny-all policy, and the guard
 *		trigger (partitions get a clone of their parent's from PostgreSQL).
 *		The loaded library adds its own permissive policy; without the
 *		library the table is unreadable for every role subject to row
 *		security.
 */
void
ti_apply_fallback(Oid relid, Oid as_role)
{
	char	   *rel = ti_rel_sql(relid);

	if (!get_rel_relispartition(relid) &&
		!OidIsValid(get_trigger_oid(relid, TI_GUARD_TRIGGER, true)))
		ti_exec_internal_ddl(as_role,
							 psprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s "
									  "FOR EACH ROW EXECUTE FUNCTION tenant_isolation.guard_trigger()",
									  TI_GUARD_TRIGGER, rel));
	ti_exec_internal_ddl(as_role,
						 psprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
								  rel));
	if (!OidIsValid(get_relation_policy_oid(relid, TI_FALLBACK_POLICY, true)))
		ti_exec_internal_ddl(as_role,
							 psprintf("CREATE POLICY %s ON %s AS PERMISSIVE FOR ALL USING (false)",
									  TI_FALLBACK_POLICY, rel));
	ti_invalidate(relid);
}

static void
ti_remove_fallback(Oid relid, Oid as_role)
{
	char	   *rel = ti_rel_sql(relid);
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	if (!get_rel_relispartition(relid))
		ti_exec_internal_ddl(as_role,
							 psprintf("DROP TRIGGER IF EXISTS %s ON %s", TI_GUARD_TRIGGER, rel));
	ti_exec_internal_ddl(as_role,
						 psprintf("DROP POLICY IF EXISTS %s ON %s", TI_FALLBACK_POLICY, rel));
	ti_exec_internal_ddl(as_role,
						 psprintf("ALTER TABLE %s NO FORCE ROW LEVEL SECURITY", rel));
	if (ti_exec_as(as_role, true, "SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid = $1",
				   1, argtypes, values, NULL, false) == 0)
		ti_exec_internal_ddl(as_role,
							 psprintf("ALTER TABLE %s DISABLE ROW LEVEL SECURITY", rel));
	ti_invalidate(relid);
}

/*
 * _apply_fallback(rel regclass) / _remove_fallback(rel regclass)
 *		For the library's own use (utility.c calls _apply_fallback as the
 *		bootstrap superuser for a new partition or child).  Superusers only;
 *		EXECUTE is granted to nobody.
 */
static void
ti_require_superuser_internal(void)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for internal function")));
}

Datum
ti_apply_fallback_sql(PG_FUNCTION_ARGS)
{
	int			nest;

	ti_require_superuser_internal();
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	ti_apply_fallback(PG_GETARG_OID(0), GetUserId());
	SPI_finish();
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

Datum
ti_remove_fallback_sql(PG_FUNCTION_ARGS)
{
	int			nest;

	ti_require_superuser_internal();
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	ti_remove_fallback(PG_GETARG_OID(0), GetUserId());
	SPI_finish();
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

/*
 * ti_protect_new_relation
 *		For utility.c: relid just became a partition or child of a
 *		protected table; give it and its descendants the fallback, as the
 *		extension owner.  The caller checked that relid is now covered.
 */
void
ti_protect_new_relation(Oid relid)
{
	int			nest = ti_push_path(TI_SAFE_PATH);
	Oid			owner = ti_ext_owner();
	List	   *rels;
	ListCell   *lc;

	ti_spi_connect();
	rels = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, rels)
		ti_apply_fallback(lfirst_oid(lc), owner);
	SPI_finish();
	ti_pop_gucs(nest);
}

/* ----------------------------------------------------------------
 *	Tables
 * ----------------------------------------------------------------
 */

static bool
ti_catalog_has(const char *sql, Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	return ti_exec_owner(sql, 1, argtypes, values, NULL) > 0;
}

/*
 * protect_table(tbl regclass, tenant_column name DEFAULT 'tenant_id')
 */
Datum
ti_protect_table(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *column;
	char	   *tbl;
	HeapTuple	tup;
	Form_pg_class cls;
	char		relkind;
	char		persistence;
	Oid			nsp;
	char	   *nspname;
	AttrNumber	attnum;
	Oid			atttype;
	int32		atttypmod;
	Oid			attcoll;
	int			nest;
	Oid			owner;
	List	   *rels;
	ListCell   *lc;

	ti_require_admin("protect_table");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table and tenant column must not be null")));
	relid = PG_GETARG_OID(0);
	column = pstrdup(NameStr(*PG_GETARG_NAME(1)));

	nest = ti_push_path(TI_SAFE_PATH);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	cls = (Form_pg_class) GETSTRUCT(tup);
	relkind = cls->relkind;
	persistence = cls->relpersistence;
	nsp = cls->relnamespace;
	ReleaseSysCache(tup);
	tbl = ti_regclass_text(relid);
	nspname = get_namespace_name(nsp);

	if (IsCatalogNamespace(nsp) || IsToastNamespace(nsp) ||
		nsp == get_namespace_oid(TI_SCHEMA, false) ||
		strcmp(nspname, "information_schema") == 0 ||
		strncmp(nspname, "pg_toast", 8) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot protect system table %s", tbl)));
	if (relkind == RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot protect materialized view %s", tbl),
				 errhint("A materialized view stores rows of every tenant; build it per tenant or query the base table.")));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", tbl),
				 errhint("Protect the tables a view reads; the view is then scoped too.")));
	if (persistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot protect temporary table %s", tbl)));

	ti_spi_connect();
	if (ti_catalog_has("SELECT 1 FROM tenant_isolation.protected_table WHERE tbl = $1", relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is already protected", tbl)));
	/* A child of a protected table is covered by its ancestor already. */
	{
		Oid			argtypes[1] = {OIDOID};
		Datum		values[1] = {ObjectIdGetDatum(relid)};

		if (ti_exec_owner("WITH RECURSIVE up(r) AS ("
						  " SELECT inhparent FROM pg_catalog.pg_inherits WHERE inhrelid = $1"
						  " UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.r)"
						  " SELECT up.r FROM up JOIN tenant_isolation.protected_table p ON p.tbl = up.r LIMIT 1",
						  1, argtypes, values, NULL) > 0)
		{
			bool		isnull;
			Oid			anc = DatumGetObjectId(ti_col(0, 1, &isnull));

			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("table %s is already protected through %s", tbl,
							ti_regclass_text(anc))));
		}
	}
	if (ti_catalog_has("SELECT 1 FROM tenant_isolation.global_table WHERE tbl = $1", relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is marked global", tbl)));
	attnum = get_attnum(relid, column);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table %s does not exist", column, tbl)));
	get_atttypetypmodcoll(relid, attnum, &atttype, &atttypmod, &attcoll);
	if (atttype != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("tenant column \"%s\" of table %s must be of type uuid, not %s",
						column, tbl, format_type_with_typemod(atttype, atttypmod))));

	owner = ti_ext_owner();
	{
		Oid			argtypes[2] = {OIDOID, NAMEOID};
		Datum		values[2] = {ObjectIdGetDatum(relid), PG_GETARG_DATUM(1)};

		(void) ti_exec_owner("INSERT INTO tenant_isolation.protected_table (tbl, tenant_column) "
							 "VALUES ($1, $2)", 2, argtypes, values, NULL);
	}
	ti_exec_internal_ddl(owner,
						 psprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT tenant_isolation.current_tenant()",
								  ti_rel_sql(relid), quote_identifier(column)));
	rels = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, rels)
		ti_apply_fallback(lfirst_oid(lc), owner);
	SPI_finish();
	ti_audit("protect_table", tbl, 0, column);
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

/*
 * unprotect_table(tbl regclass)
 */
Datum
ti_unprotect_table(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *tbl;
	char	   *column;
	int			nest;
	Oid			owner;
	List	   *rels;
	ListCell   *lc;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	ti_require_admin("unprotect_table");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table must not be null")));
	relid = PG_GETARG_OID(0);
	values[0] = ObjectIdGetDatum(relid);
	nest = ti_push_path(TI_SAFE_PATH);
	tbl = ti_regclass_text(relid);
	ti_spi_connect();
	if (ti_exec_owner("SELECT tenant_column FROM tenant_isolation.protected_table WHERE tbl = $1",
					  1, argtypes, values, NULL) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table %s is not protected", tbl)));
	column = ti_col_text(0, 1);
	owner = ti_ext_owner();
	(void) ti_exec_owner("DELETE FROM tenant_isolation.protected_table WHERE tbl = $1",
						 1, argtypes, values, NULL);
	ti_exec_internal_ddl(owner,
						 psprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT",
								  ti_rel_sql(relid), quote_identifier(column)));
	rels = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, rels)
		ti_remove_fallback(lfirst_oid(lc), owner);
	SPI_finish();
	ti_audit("unprotect_table", tbl, 0, NULL);
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

/*
 * mark_global(tbl regclass)
 */
Datum
ti_mark_global(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *tbl;
	char		relkind;
	int			nest;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	ti_require_admin("mark_global");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table must not be null")));
	relid = PG_GETARG_OID(0);
	values[0] = ObjectIdGetDatum(relid);
	nest = ti_push_path(TI_SAFE_PATH);
	relkind = get_rel_relkind(relid);
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	tbl = ti_regclass_text(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table or view", tbl)));
	ti_spi_connect();
	if (ti_catalog_has("SELECT 1 FROM tenant_isolation.protected_table WHERE tbl = $1", relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is protected; unprotect it first", tbl)));
	if (ti_catalog_has("SELECT 1 FROM tenant_isolation.global_table WHERE tbl = $1", relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is already marked global", tbl)));
	(void) ti_exec_owner("INSERT INTO tenant_isolation.global_table (tbl) VALUES ($1)",
						 1, argtypes, values, NULL);
	SPI_finish();
	ti_audit("mark_global", tbl, 0, NULL);
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 *	The schema tier
 * ----------------------------------------------------------------
 */

static char *
ti_schema_name_of(const pg_uuid_t *id)
{
	char	   *s = ti_uuid_to_cstring(id);
	char	   *out = palloc(7 + 32 + 1);
	char	   *p = out;

	memcpy(p, "tenant_", 7);
	p += 7;
	for (; *s; s++)
		if (*s != '-')
			*p++ = *s;
	*p = '\0';
	return out;
}

/* Copy of one template table in one tenant schema, owned by its role. */
static void
ti_create_from_template(Oid owner, Oid tmpl, const char *sch, const char *role)
{
	char	   *target = quote_qualified_identifier(sch, get_rel_name(tmpl));

	ti_exec_internal_ddl(owner,
						 psprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)",
								  target, ti_rel_sql(tmpl)));
	ti_exec_internal_ddl(owner,
						 psprintf("ALTER TABLE %s OWNER TO %s", target,
								  quote_identifier(role)));
}

/* Schema, role and template tables of a schema-tier tenant. */
static void
ti_create_tenant_schema(const pg_uuid_t *id)
{
	Oid			owner = ti_ext_owner();
	char	   *sch = ti_schema_name_of(id);
	const char *qsch = quote_identifier(sch);
	uint64		n,
				i;
	Oid		   *tmpls;
	int			citus_nest;
	bool		citus_distribute = ti_citus_schema_sharding_begin(&citus_nest);

	if (!OidIsValid(get_role_oid(sch, true)))
		ti_exec_internal_ddl(owner, psprintf("CREATE ROLE %s NOLOGIN NOINHERIT", qsch));
	/* no role is ever a member of it: the extension switches (schema_tier.c) */
	ti_exec_internal_ddl(owner, psprintf("CREATE SCHEMA %s AUTHORIZATION %s", qsch, qsch));

	n = ti_exec_owner("SELECT tbl::oid FROM tenant_isolation.template_table ORDER BY tbl::oid",
					  0, NULL, NULL, NULL);
	tmpls = palloc(sizeof(Oid) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		tmpls[i] = DatumGetObjectId(ti_col(i, 1, &isnull));
	}
	for (i = 0; i < n; i++)
		ti_create_from_template(owner, tmpls[i], sch, sch);
	/* on Citus schema-based sharding: the schema and its tables on one node */
	ti_citus_schema_sharding_end(citus_nest);
	if (citus_distribute)
		ti_exec_internal_ddl(owner, psprintf("SELECT pg_catalog.citus_schema_distribute(%s)",
											 quote_literal_cstr(qsch)));
	{
		Oid			argtypes[2] = {UUIDOID, NAMEOID};
		Datum		values[2] = {UUIDPGetDatum(id),
		DirectFunctionCall1(namein, CStringGetDatum(sch))};

		(void) ti_exec_owner("UPDATE tenant_isolation.tenant SET schema_name = $2, role_name = $2 "
							 "WHERE id = $1", 2, argtypes, values, NULL);
	}
}

static void
ti_drop_tenant_schema(const pg_uuid_t *id)
{
	Oid			owner = ti_ext_owner();
	char	   *sch = ti_schema_name_of(id);
	const char *qsch = quote_identifier(sch);
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(id)};

	ti_exec_internal_ddl(owner, psprintf("DROP SCHEMA IF EXISTS %s CASCADE", qsch));
	if (OidIsValid(get_role_oid(sch, true)))
	{
		ti_exec_internal_ddl(owner, psprintf("DROP OWNED BY %s CASCADE", qsch));
		ti_exec_internal_ddl(owner, psprintf("DROP ROLE %s", qsch));
	}
	(void) ti_exec_owner("UPDATE tenant_isolation.tenant SET schema_name = NULL, role_name = NULL "
						 "WHERE id = $1", 1, argtypes, values, NULL);
}

/* ----------------------------------------------------------------
 *	Tenant lifecycle
 * ----------------------------------------------------------------
 */

static void
ti_check_tier(FunctionCallInfo fcinfo, int argno, char **tier)
{
	/* outlives SPI_finish: the caller audits it */
	*tier = PG_ARGISNULL(argno) ? NULL :
		MemoryContextStrdup(fcinfo->flinfo->fn_mcxt,
							text_to_cstring(PG_GETARG_TEXT_PP(argno)));
	if (*tier == NULL || (strcmp(*tier, "shared") != 0 && strcmp(*tier, "schema") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown tenant tier \"%s\"", *tier ? ti_left(*tier, 40) : "<NULL>"),
				 errhint("Use 'shared' or 'schema'.")));
}

/*
 * create_tenant(name text, tier text DEFAULT 'shared', id uuid DEFAULT NULL)
 */
Datum
ti_create_tenant(PG_FUNCTION_ARGS)
{
	text	   *name;
	char	   *tier;
	pg_uuid_t  *id;
	int			nest;
	Oid			argtypes[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];

	ti_require_admin("create_tenant");
	if (PG_ARGISNULL(0) || !ti_has_nonspace(PG_GETARG_TEXT_PP(0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant name must not be empty")));
	name = PG_GETARG_TEXT_PP(0);
	if (ti_text_chars(text_to_cstring(name)) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant name is too long"),
				 errdetail("Tenant names are at most 200 characters.")));
	ti_check_tier(fcinfo, 1, &tier);
	if (PG_ARGISNULL(2))
		id = DatumGetUUIDP(DirectFunctionCall1(gen_random_uuid, (Datum) 0));
	else
		id = PG_GETARG_UUID_P(2);

	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(name);
	values[2] = CStringGetTextDatum(tier);
	if (ti_exec_owner("SELECT 1 FROM tenant_isolation.tenant WHERE name = $1",
					  1, &argtypes[1], &values[1], NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("tenant \"%s\" already exists", text_to_cstring(name))));
	if (ti_exec_owner("SELECT 1 FROM tenant_isolation.tenant WHERE id = $1",
					  1, argtypes, values, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("tenant %s already exists", ti_uuid_to_cstring(id))));
	(void) ti_exec_owner("INSERT INTO tenant_isolation.tenant (id, name, tier) VALUES ($1, $2, $3)",
						 3, argtypes, values, NULL);
	if (strcmp(tier, "schema") == 0)
		ti_create_tenant_schema(id);
	SPI_finish();
	ti_tenants_changed();
	ti_audit("create_tenant", ti_uuid_to_cstring(id), 0, tier);
	ti_pop_gucs(nest);
	PG_RETURN_UUID_P(id);
}

static Datum
ti_set_tenant_status(FunctionCallInfo fcinfo, bool suspend)
{
	TiTenantRow t;
	int			nest;
	Oid			argtypes[2] = {UUIDOID, TEXTOID};
	Datum		values[2];

	ti_require_admin(suspend ? "suspend_tenant" : "resume_tenant");
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	ti_require_tenant(fcinfo, 0, &t);
	values[0] = UUIDPGetDatum(&t.id);
	values[1] = CStringGetTextDatum(suspend ? "suspended" : "active");
	(void) ti_exec_owner("UPDATE tenant_isolation.tenant SET status = $2, "
						 "suspended_at = CASE WHEN $2 = 'suspended' THEN now() END "
						 "WHERE id = $1", 2, argtypes, values, NULL);
	SPI_finish();
	ti_tenants_changed();
	ti_audit(suspend ? "suspend_tenant" : "resume_tenant",
			 ti_uuid_to_cstring(&t.id), 0, NULL);
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

/* suspend_tenant(id uuid) / resume_tenant(id uuid) */
Datum
ti_suspend_tenant(PG_FUNCTION_ARGS)
{
	return ti_set_tenant_status(fcinfo, true);
}

Datum
ti_resume_tenant(PG_FUNCTION_ARGS)
{
	return ti_set_tenant_status(fcinfo, false);
}

typedef struct TiProtRow
{
	Oid			relid;
	char	   *column;
} TiProtRow;

/* The registered protected tables, copied out of SPI. */
static TiProtRow *
ti_protected_list(const char *order, int *count)
{
	uint64		n,
				i;
	TiProtRow  *rows;

	n = ti_exec_owner(psprintf("SELECT p.tbl::oid, p.tenant_column::text "
							   "FROM tenant_isolation.protected_table p %s", order),
					  0, NULL, NULL, NULL);
	rows = palloc(sizeof(TiProtRow) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		rows[i].relid = DatumGetObjectId(ti_col(i, 1, &isnull));
		rows[i].column = ti_col_text(i, 2);
	}
	*count = (int) n;
	return rows;
}

/*
 * ti_delete_tenant_rows
 *		DELETE the tenant's rows of one protected table as the table's
 *		owner, in the tenant's context: its triggers and referential actions
 *		run with its owner's rights, scoped to that tenant.
 */
static void
ti_delete_tenant_rows(const TiProtRow *p, const pg_uuid_t *id)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(id)};

	(void) ti_exec_in_tenant(ti_rel_owner(p->relid), id,
							 psprintf("DELETE FROM %s WHERE %s = $1",
									  ti_rel_sql(p->relid), quote_identifier(p->column)),
							 1, argtypes, values, false);
}

/*
 * drop_tenant(id uuid, force boolean DEFAULT false)
 */
Datum
ti_drop_tenant(PG_FUNCTION_ARGS)
{
	TiTenantRow t;
	int			nest;
	bool		force = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	TiProtRow  *prot;
	int			nprot,
				i;
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];

	ti_require_admin("drop_tenant");
	ti_require_no_context("drop_tenant()");
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	ti_require_tenant(fcinfo, 0, &t);
	values[0] = UUIDPGetDatum(&t.id);
	if (ti_exec_owner("SELECT s.sessions FROM tenant_isolation._tenant_stats() s "
					  "WHERE s.tenant_id = $1 AND s.sessions > 0",
					  1, argtypes, values, NULL) > 0 && !force)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("tenant %s has %s open session(s)", ti_uuid_to_cstring(&t.id),
						ti_col_text(0, 1)),
				 errhint("Suspend the tenant first, or call drop_tenant(id, force => true).")));
	prot = ti_protected_list("", &nprot);
	for (i = 0; i < nprot; i++)
		ti_delete_tenant_rows(&prot[i], &t.id);
	if (t.schema_tier)
		ti_drop_tenant_schema(&t.id);
	(void) ti_exec_owner("DELETE FROM tenant_isolation.tenant WHERE id = $1",
						 1, argtypes, values, NULL);
	SPI_finish();
	ti_tenants_changed();
	ti_audit("drop_tenant", ti_uuid_to_cstring(&t.id), 0, NULL);
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

/*
 * set_tenant_placement(id uuid, placement text)
 */
Datum
ti_set_tenant_placement(PG_FUNCTION_ARGS)
{
	TiTenantRow t;
	int			nest;
	Oid			argtypes[2] = {UUIDOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	char	   *placement = NULL;

	ti_require_admin("set_tenant_placement");
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	ti_require_tenant(fcinfo, 0, &t);
	if (!PG_ARGISNULL(1))
	{
		/* outlives SPI_finish: audited below */
		placement = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt,
										text_to_cstring(PG_GETARG_TEXT_PP(1)));
		if (!ti_has_nonspace(PG_GETARG_TEXT_PP(1)) || ti_text_chars(placement) > 200)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid placement label"),
					 errhint("A placement is a non-empty label of at most 200 characters, or NULL for this database.")));
	}
	values[0] = UUIDPGetDatum(&t.id);
	values[1] = placement ? CStringGetTextDatum(placement) : (Datum) 0;
	if (placement == NULL)
		nulls[1] = 'n';
	(void) ti_exec_owner("UPDATE tenant_isolation.tenant SET placement = $2 WHERE id = $1",
						 2, argtypes, values, nulls);
	SPI_finish();
	ti_audit("set_tenant_placement", ti_uuid_to_cstring(&t.id), 0, placement);
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

/* Tables (r, p) of a tenant schema, by name, copied out of SPI. */
static Oid *
ti_schema_tables(const char *sch, int *count)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sch)};
	uint64		n,
				i;
	Oid		   *rels;

	n = ti_exec_owner("SELECT c.oid FROM pg_catalog.pg_class c "
					  "JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace "
					  "WHERE s.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname",
					  1, argtypes, values, NULL);
	rels = palloc(sizeof(Oid) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		rels[i] = DatumGetObjectId(ti_col(i, 1, &isnull));
	}
	*count = (int) n;
	return rels;
}

/* count(*) of one tenant's rows in one table, in the tenant's context */
static int64
ti_count_in_tenant(Oid relid, const char *column, const pg_uuid_t *id)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(id)};
	bool		isnull;
	char	   *sql;

	if (column)
		sql = psprintf("SELECT count(*) FROM %s WHERE %s = $1",
					   ti_rel_sql(relid), quote_identifier(column));
	else
		sql = psprintf("SELECT count(*) FROM %s", ti_rel_sql(relid));
	(void) ti_exec_in_tenant(ti_ext_owner(), id, sql, column ? 1 : 0,
							 argtypes, values, false);
	return DatumGetInt64(ti_col(0, 1, &isnull));
}

/*
 * tenant_row_counts(id uuid) RETURNS TABLE (tbl regclass, row_count bigint)
 */
Datum
ti_tenant_row_counts(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TiTenantRow t;
	int			nest;
	TiProtRow  *prot;
	int			nprot,
				i;

	ti_require_admin("tenant_row_counts");
	ti_require_no_context("tenant_row_counts()");
	InitMaterializedSRF(fcinfo, 0);
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	ti_require_tenant(fcinfo, 0, &t);
	prot = ti_protected_list("ORDER BY p.tbl::text", &nprot);
	for (i = 0; i < nprot; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = ObjectIdGetDatum(prot[i].relid);
		values[1] = Int64GetDatum(ti_count_in_tenant(prot[i].relid, prot[i].column, &t.id));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	if (t.schema_name != NULL)
	{
		int			nrel;
		Oid		   *rels = ti_schema_tables(t.schema_name, &nrel);

		for (i = 0; i < nrel; i++)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = ObjectIdGetDatum(rels[i]);
			values[1] = Int64GetDatum(ti_count_in_tenant(rels[i], NULL, &t.id));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	SPI_finish();
	ti_pop_gucs(nest);
	return (Datum) 0;
}

/*
 * _count_tenant_rows(tid uuid) RETURNS bigint
 *		The rows of a tenant in every protected table (a table counted
 *		through a registered ancestor is not counted again), read with the
 *		caller's snapshot.  Called by limits.c as the bootstrap superuser;
 *		nobody else may call it.
 */
Datum
ti_count_tenant_rows_sql(PG_FUNCTION_ARGS)
{
	Datum		arg = PG_GETARG_DATUM(0);
	Oid			argtype = UUIDOID;
	int64		total = 0;
	int			nest;
	uint64		n,
				i;
	Oid		   *rels;
	char	  **cols;

	ti_require_superuser_internal();
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	if (SPI_execute("SELECT p.tbl::oid, p.tenant_column::text FROM tenant_isolation.protected_table p "
					"WHERE NOT EXISTS (WITH RECURSIVE up(rel) AS ("
					" SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = p.tbl"
					" UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.rel)"
					" SELECT 1 FROM up JOIN tenant_isolation.protected_table q ON q.tbl = up.rel)",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read protected_table");
	n = SPI_processed;
	rels = palloc(sizeof(Oid) * (n + 1));
	cols = palloc(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		rels[i] = DatumGetObjectId(ti_col(i, 1, &isnull));
		cols[i] = ti_col_text(i, 2);
	}
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		if (SPI_execute_with_args(psprintf("SELECT count(*) FROM %s WHERE %s = $1",
										   ti_rel_sql(rels[i]), quote_identifier(cols[i])),
								  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not count the rows of a tenant");
		total += DatumGetInt64(ti_col(0, 1, &isnull));
	}
	SPI_finish();
	ti_pop_gucs(nest);
	PG_RETURN_INT64(total);
}

/* ----------------------------------------------------------------
 *	Templates and migrations
 * ----------------------------------------------------------------
 */

/*
 * add_template_table(tbl regclass)
 */
Datum
ti_add_template_table(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char		relkind;
	char	   *tbl;
	int			nest;
	Oid			argtypes[2] = {OIDOID, NAMEOID};
	Datum		values[2];
	uint64		n,
				i;
	char	  **schs;
	char	  **roles;
	Oid			owner;

	ti_require_admin("add_template_table");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table must not be null")));
	relid = PG_GETARG_OID(0);
	nest = ti_push_path(TI_SAFE_PATH);
	relkind = get_rel_relkind(relid);
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	tbl = ti_regclass_text(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", tbl)));
	ti_spi_connect();
	values[0] = ObjectIdGetDatum(relid);
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(get_rel_name(relid)));
	if (ti_catalog_has("SELECT 1 FROM tenant_isolation.template_table WHERE tbl = $1", relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is already a template", tbl)));
	if (ti_exec_owner("SELECT 1 FROM tenant_isolation.template_table x "
					  "JOIN pg_catalog.pg_class c ON c.oid = x.tbl WHERE c.relname = $2",
					  2, argtypes, values, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("a template named like %s exists already", tbl)));
	(void) ti_exec_owner("INSERT INTO tenant_isolation.template_table (tbl) VALUES ($1)",
						 1, argtypes, values, NULL);
	n = ti_exec_owner("SELECT schema_name::text, role_name::text FROM tenant_isolation.tenant "
					  "WHERE tier = 'schema' ORDER BY id", 0, NULL, NULL, NULL);
	schs = palloc(sizeof(char *) * (n + 1));
	roles = palloc(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		schs[i] = ti_col_text(i, 1);
		roles[i] = ti_col_text(i, 2);
	}
	owner = ti_ext_owner();
	for (i = 0; i < n; i++)
		ti_create_from_template(owner, relid, schs[i], roles[i]);
	SPI_finish();
	ti_audit("add_template_table", tbl, 0, NULL);
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

/*
 * ti_run_migration
 *		The caller's DDL in one tenant schema: as the tenant's role, in the
 *		tenant's context, with only its schema on the search_path.
 *
 * Why it holds: SetUserIdAndSecContext makes the tenant's role the current
 * user, so every privilege check of the DDL is that role's (it owns its
 * schema and the tables in it, and nothing else); inside a local user id
 * change PostgreSQL refuses SET ROLE and SET SESSION AUTHORIZATION, so the
 * DDL cannot step back to the caller or the superuser; as a
 * security-restricted operation (what CREATE INDEX and REFRESH MATERIALIZED
 * VIEW run their owner's code under) it cannot leave temporary objects,
 * holdable cursors or LISTENs behind in the caller's session, and the
 * settings it changed are rolled back afterwards (ti_pop_gucs); the tenant's
 * context is in force, so a statement on a protected shared table is
 * scoped to that tenant; and setting tenant_isolation.tenant_id needs
 * superuser rights.  A DDL that changed the context anyway (login) is
 * refused afterwards.
 */
static void
ti_run_migration(const char *ddl, const pg_uuid_t *id, const char *sch,
				 const char *role)
{
	Oid			roleid = get_role_oid(role, true);
	int			path_nest;
	int			tenant_nest;
	Oid			save_userid;
	int			save_sec;
	bool		save_prov = ti_provisioning;
	MemoryContext oldcxt = CurrentMemoryContext;
	pg_uuid_t	after;

	if (!OidIsValid(roleid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("role of schema-tier tenant %s is missing", ti_uuid_to_cstring(id))));
	path_nest = ti_push_path(psprintf("%s, pg_temp", quote_identifier(sch)));
	tenant_nest = ti_enter_tenant(id);
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(roleid, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	ti_provisioning = true;
	PG_TRY();
	{
		int			rc = SPI_execute(ddl, false, 0);

		if (rc < 0)
			elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));

		/*
		 * On Citus the new tables of a distributed tenant schema go with it
		 * (citus.c): as the tenant's role, their owner, in its context,
		 * never as a superuser, since their index expressions and defaults
		 * may call functions of the tenant's schema.
		 */
		ti_citus_tenant_schema_convert(get_namespace_oid(sch, false));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		SetUserIdAndSecContext(save_userid, save_sec);
		ti_provisioning = save_prov;
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("migration failed in schema %s: %s", sch, edata->message)));
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_userid, save_sec);
	ti_provisioning = save_prov;
	if (!ti_context_get(&after) || memcmp(after.data, id->data, UUID_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("migration failed in schema %s: the DDL changed the tenant context", sch)));
	ti_pop_gucs(tenant_nest);
	ti_pop_gucs(path_nest);
}

/*
 * migrate_tenant_schemas(ddl text)
 *		RETURNS TABLE (tenant uuid, schema_name name, status text)
 *
 * Applies DDL to the templates and to every schema-tier tenant in one
 * transaction: all schemas change, or none does.  The templates pass runs
 * as the caller with the caller's search_path; each tenant pass runs as the
 * tenant's role (ti_run_migration), so the DDL must use unqualified names.
 */
Datum
ti_migrate_tenant_schemas(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *ddl;
	uint64		n,
				i;
	pg_uuid_t  *ids;
	char	  **schs;
	char	  **roles;
	int			nest;
	int			rc;

	ti_require_admin("migrate_tenant_schemas");
	if (PG_ARGISNULL(0) || !ti_has_nonspace(PG_GETARG_TEXT_PP(0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ddl must not be empty")));
	ti_require_no_context("migrate_tenant_schemas()");
	ddl = text_to_cstring(PG_GETARG_TEXT_PP(0));
	InitMaterializedSRF(fcinfo, 0);
	ti_spi_connect();

	/* the templates: the caller's own DDL, with the caller's own rights */
	rc = SPI_execute(ddl, false, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	{
		Datum		values[3] = {0, 0, CStringGetTextDatum("templates")};
		bool		nulls[3] = {true, true, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	nest = ti_push_path(TI_SAFE_PATH);
	n = ti_exec_owner("SELECT id, schema_name::text, role_name::text FROM tenant_isolation.tenant "
					  "WHERE tier = 'schema' ORDER BY id", 0, NULL, NULL, NULL);
	ids = palloc(sizeof(pg_uuid_t) * (n + 1));
	schs = palloc(sizeof(char *) * (n + 1));
	roles = palloc(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = *DatumGetUUIDP(ti_col(i, 1, &isnull));
		schs[i] = ti_col_text(i, 2);
		roles[i] = ti_col_text(i, 3);
	}
	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (schs[i] == NULL || roles[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("schema-tier tenant %s has no schema", ti_uuid_to_cstring(&ids[i]))));
		ti_run_migration(ddl, &ids[i], schs[i], roles[i]);
		values[0] = UUIDPGetDatum(&ids[i]);
		values[1] = DirectFunctionCall1(namein, CStringGetDatum(schs[i]));
		values[2] = CStringGetTextDatum("migrated");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	ti_audit("migrate_tenant_schemas", NULL, 0, ti_left(ddl, 200));
	ti_pop_gucs(nest);
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 *	Moving a tenant between tiers, and exporting it
 * ----------------------------------------------------------------
 */

/*
 * ti_common_columns
 *		Quoted list of the columns a and b share (not dropped, not
 *		generated), without skip; NULL when there is none.
 */
static char *
ti_common_columns(Oid a, Oid b, const char *skip)
{
	StringInfoData buf;
	AttrNumber	natts;
	AttrNumber	i;
	HeapTuple	reltup = SearchSysCache1(RELOID, ObjectIdGetDatum(a));

	if (!HeapTupleIsValid(reltup))
		elog(ERROR, "cache lookup failed for relation %u", a);
	natts = ((Form_pg_class) GETSTRUCT(reltup))->relnatts;
	ReleaseSysCache(reltup);
	initStringInfo(&buf);
	for (i = 1; i <= natts; i++)
	{
		HeapTuple	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(a), Int16GetDatum(i));
		Form_pg_attribute att;
		char	   *name;
		AttrNumber	battnum;
		HeapTuple	btup;
		bool		ok = false;

		if (!HeapTupleIsValid(tup))
			continue;
		att = (Form_pg_attribute) GETSTRUCT(tup);
		name = pstrdup(NameStr(att->attname));
		if (!att->attisdropped && att->attgenerated == '\0' &&
			(skip == NULL || strcmp(name, skip) != 0))
		{
			battnum = get_attnum(b, name);
			if (battnum > 0)
			{
				btup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(b), Int16GetDatum(battnum));
				if (HeapTupleIsValid(btup))
				{
					ok = ((Form_pg_attribute) GETSTRUCT(btup))->attgenerated == '\0';
					ReleaseSysCache(btup);
				}
			}
		}
		ReleaseSysCache(tup);
		if (ok)
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", quote_identifier(name));
	}
	return buf.len ? buf.data : NULL;
}

/*
 * ti_copy_rows
 *		Copy the rows select (run as the extension owner in the tenant's
 *		context: a scan runs no code of the table's owner) returns into
 *		target's columns cols, with the tenant's id appended as column
 *		tenant_col when it is not NULL.  The INSERT runs as target's owner
 *		in the tenant's context, so that its triggers, defaults and
 *		constraints run with that owner's rights.
 */
static void
ti_copy_rows(const char *select, int nargs, Oid *argtypes, Datum *argvalues,
			 Oid target, const char *cols, const char *tenant_col,
			 const pg_uuid_t *id)
{
	SPITupleTable *tt;
	TupleDesc	desc;
	uint64		n,
				r;
	int			ncols,
				nparams,
				c;
	Oid		   *types;
	Datum	   *values;
	char	   *nulls;
	StringInfoData sql;
	int			nest;
	bool		save_prov = ti_provisioning;
	Oid			save_userid;
	int			save_sec;

	n = ti_exec_in_tenant(ti_ext_owner(), id, select, nargs, argtypes, argvalues, false);
	if (n == 0)
		return;
	tt = SPI_tuptable;
	desc = tt->tupdesc;
	ncols = desc->natts;
	nparams = ncols + (tenant_col ? 1 : 0);
	types = palloc(sizeof(Oid) * nparams);
	values = palloc(sizeof(Datum) * nparams);
	nulls = palloc(nparams + 1);
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (%s%s%s) VALUES (", ti_rel_sql(target),
					 cols ? cols : "", (cols && tenant_col) ? ", " : "",
					 tenant_col ? quote_identifier(tenant_col) : "");
	for (c = 0; c < nparams; c++)
	{
		types[c] = c < ncols ? TupleDescAttr(desc, c)->atttypid : UUIDOID;
		appendStringInfo(&sql, "%s$%d", c ? ", " : "", c + 1);
	}
	appendStringInfoChar(&sql, ')');

	nest = ti_enter_tenant(id);
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(ti_rel_owner(target), save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	ti_provisioning = true;
	PG_TRY();
	{
		SPIPlanPtr	plan = SPI_prepare(sql.data, nparams, types);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		for (r = 0; r < n; r++)
		{
			for (c = 0; c < ncols; c++)
			{
				bool		isnull;

				values[c] = SPI_getbinval(tt->vals[r], desc, c + 1, &isnull);
				nulls[c] = isnull ? 'n' : ' ';
			}
			if (tenant_col)
			{
				values[ncols] = UUIDPGetDatum(id);
				nulls[ncols] = ' ';
			}
			if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not copy a row of tenant %s", ti_uuid_to_cstring(id));
		}
		SPI_freeplan(plan);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
		ti_provisioning = save_prov;
	}
	PG_END_TRY();
	ti_pop_gucs(nest);
}

/*
 * move_tenant(id uuid, tier text)
 *
 * Moves a tenant between the shared and the schema tier with its rows, in
 * one transaction.  The rows that move are those of the protected tables
 * that are also templates; a tenant with rows in any other protected table
 * cannot move to the schema tier.  The protected tables are locked against
 * writes while the move runs.
 */
Datum
ti_move_tenant(PG_FUNCTION_ARGS)
{
	TiTenantRow t;
	char	   *tier;
	int			nest;
	TiProtRow  *prot;
	int			nprot,
				i;
	Oid			owner;
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];

	ti_require_admin("move_tenant");
	ti_require_no_context("move_tenant()");
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	ti_require_tenant(fcinfo, 0, &t);
	ti_check_tier(fcinfo, 1, &tier);
	if (strcmp(tier, t.schema_tier ? "schema" : "shared") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant %s is already in tier \"%s\"", ti_uuid_to_cstring(&t.id), tier)));
	values[0] = UUIDPGetDatum(&t.id);
	owner = ti_ext_owner();
	prot = ti_protected_list("ORDER BY p.tbl::oid", &nprot);
	for (i = 0; i < nprot; i++)
		(void) ti_exec_as(owner, true,
						  psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE",
								   ti_rel_sql(prot[i].relid)),
						  0, NULL, NULL, NULL, false);

	if (strcmp(tier, "schema") == 0)
	{
		char	   *sch = ti_schema_name_of(&t.id);
		Oid			nsp;

		for (i = 0; i < nprot; i++)
		{
			if (ti_catalog_has("SELECT 1 FROM tenant_isolation.template_table WHERE tbl = $1",
							   prot[i].relid))
				continue;
			if (ti_count_in_tenant(prot[i].relid, prot[i].column, &t.id) > 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("tenant %s has rows in %s, which is not a template table",
								ti_uuid_to_cstring(&t.id), ti_regclass_text(prot[i].relid)),
						 errhint("Make the table a template with add_template_table() first.")));
		}
		ti_create_tenant_schema(&t.id);
		CommandCounterIncrement();
		nsp = get_namespace_oid(sch, false);
		for (i = 0; i < nprot; i++)
		{
			Oid			target;
			char	   *cols;

			if (!ti_catalog_has("SELECT 1 FROM tenant_isolation.template_table WHERE tbl = $1",
								prot[i].relid))
				continue;
			target = get_relname_relid(get_rel_name(prot[i].relid), nsp);
			if (!OidIsValid(target))
				continue;
			cols = ti_common_columns(prot[i].relid, target, NULL);
			if (cols == NULL)
				continue;
			ti_copy_rows(psprintf("SELECT %s FROM %s WHERE %s = $1", cols,
								  ti_rel_sql(prot[i].relid), quote_identifier(prot[i].column)),
						 1, argtypes, values, target, cols, NULL, &t.id);
			ti_delete_tenant_rows(&prot[i], &t.id);
		}
		(void) ti_exec_owner("UPDATE tenant_isolation.tenant SET tier = 'schema' WHERE id = $1",
							 1, argtypes, values, NULL);
	}
	else
	{
		int			nrel;
		Oid		   *rels = ti_schema_tables(t.schema_name, &nrel);

		/*
		 * The guard trigger refuses rows of a schema-tier tenant in shared
		 * tables: the tenant is in the shared tier from here on.
		 */
		(void) ti_exec_owner("UPDATE tenant_isolation.tenant SET tier = 'shared' WHERE id = $1",
							 1, argtypes, values, NULL);
		ti_tenants_changed();
		CommandCounterIncrement();
		for (i = 0; i < nrel; i++)
		{
			const TiProtRow *target = NULL;
			int			j;
			int64		n;
			char	   *collist;

			for (j = 0; j < nprot; j++)
				if (strcmp(get_rel_name(prot[j].relid), get_rel_name(rels[i])) == 0 &&
					ti_catalog_has("SELECT 1 FROM tenant_isolation.template_table WHERE tbl = $1",
								   prot[j].relid))
					target = &prot[j];
			n = ti_count_in_tenant(rels[i], NULL, &t.id);
			if (target == NULL)
			{
				if (n > 0)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("table %s has no protected shared table to move to",
									ti_regclass_text(rels[i]))));
				continue;
			}
			/* the rows get the tenant's id whatever the copies say */
			collist = ti_common_columns(rels[i], target->relid, target->column);
			ti_copy_rows(psprintf("SELECT %s FROM %s", collist ? collist : "",
								  ti_rel_sql(rels[i])),
						 0, NULL, NULL, target->relid, collist, target->column, &t.id);
		}
		ti_drop_tenant_schema(&t.id);
	}
	SPI_finish();
	ti_tenants_changed();
	ti_audit("move_tenant", ti_uuid_to_cstring(&t.id), 0, tier);
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}

/*
 * export_tenant(id uuid) RETURNS TABLE (tbl regclass, "row" jsonb)
 *		Every row the tenant owns, read as the extension owner in the
 *		tenant's context.
 */
static void
ti_export_rel(ReturnSetInfo *rsinfo, Oid relid, const char *column,
			  const pg_uuid_t *id)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		args[1] = {UUIDPGetDatum(id)};
	char	   *sql;
	uint64		n,
				r;

	if (column)
		sql = psprintf("SELECT pg_catalog.to_jsonb(x) FROM %s x WHERE x.%s = $1",
					   ti_rel_sql(relid), quote_identifier(column));
	else
		sql = psprintf("SELECT pg_catalog.to_jsonb(x) FROM %s x", ti_rel_sql(relid));
	n = ti_exec_in_tenant(ti_ext_owner(), id, sql, column ? 1 : 0, argtypes, args, false);
	for (r = 0; r < n; r++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = ObjectIdGetDatum(relid);
		values[1] = ti_col(r, 1, &nulls[1]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

Datum
ti_export_tenant(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TiTenantRow t;
	int			nest;
	TiProtRow  *prot;
	int			nprot,
				i;

	ti_require_admin("export_tenant");
	ti_require_no_context("export_tenant()");
	InitMaterializedSRF(fcinfo, 0);
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	ti_require_tenant(fcinfo, 0, &t);
	prot = ti_protected_list("ORDER BY p.tbl::text", &nprot);
	for (i = 0; i < nprot; i++)
		ti_export_rel(rsinfo, prot[i].relid, prot[i].column, &t.id);
	if (t.schema_name != NULL)
	{
		int			nrel;
		Oid		   *rels = ti_schema_tables(t.schema_name, &nrel);

		for (i = 0; i < nrel; i++)
			ti_export_rel(rsinfo, rels[i], NULL, &t.id);
	}
	SPI_finish();
	ti_audit("export_tenant", ti_uuid_to_cstring(&t.id), 0, NULL);
	ti_pop_gucs(nest);
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 *	Settings
 * ----------------------------------------------------------------
 */

/*
 * set_tenant_setting(id uuid, key text, value jsonb)
 *		id NULL sets the global default; value NULL removes the setting.
 */
Datum
ti_set_tenant_setting(PG_FUNCTION_ARGS)
{
	char	   *key;
	int			nest;
	Oid			argtypes[3] = {TEXTOID, JSONBOID, UUIDOID};
	Datum		values[3];

	ti_require_admin("set_tenant_setting");
	if (PG_ARGISNULL(1) || !ti_has_nonspace(PG_GETARG_TEXT_PP(1)) ||
		ti_text_chars(text_to_cstring(PG_GETARG_TEXT_PP(1))) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("setting key must be a non-empty text of at most 200 characters")));
	key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	nest = ti_push_path(TI_SAFE_PATH);
	ti_spi_connect();
	values[0] = PG_GETARG_DATUM(1);
	values[1] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	if (PG_ARGISNULL(0))
	{
		if (PG_ARGISNULL(2))
			(void) ti_exec_owner("DELETE FROM tenant_isolation.setting_default WHERE key = $1",
								 1, argtypes, values, NULL);
		else
			(void) ti_exec_owner("INSERT INTO tenant_isolation.setting_default AS d (key, value) "
								 "VALUES ($1, $2) ON CONFLICT ON CONSTRAINT setting_default_pkey "
								 "DO UPDATE SET value = EXCLUDED.value",
								 2, argtypes, values, NULL);
	}
	else
	{
		TiTenantRow t;

		ti_require_tenant(fcinfo, 0, &t);
		values[2] = UUIDPGetDatum(&t.id);
		if (PG_ARGISNULL(2))
		{
			Oid			dtypes[2] = {TEXTOID, UUIDOID};
			Datum		dvalues[2] = {values[0], values[2]};

			(void) ti_exec_owner("DELETE FROM tenant_isolation.tenant_setting "
								 "WHERE key = $1 AND tenant = $2",
								 2, dtypes, dvalues, NULL);
		}
		else
			(void) ti_exec_owner("INSERT INTO tenant_isolation.tenant_setting AS s (tenant, key, value) "
								 "VALUES ($3, $1, $2) ON CONFLICT ON CONSTRAINT tenant_setting_pkey "
								 "DO UPDATE SET value = EXCLUDED.value",
								 3, argtypes, values, NULL);
	}
	SPI_finish();
	ti_audit("set_tenant_setting",
			 PG_ARGISNULL(0) ? "default" : ti_uuid_to_cstring(PG_GETARG_UUID_P(0)),
			 0, key);
	ti_pop_gucs(nest);
	PG_RETURN_VOID();
}
