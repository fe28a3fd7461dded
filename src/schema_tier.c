/*-------------------------------------------------------------------------
 *
 * schema_tier.c
 *	  The schema tier without membership: which role belongs to which
 *	  schema-tier tenant, the switch into and out of that role, and the
 *	  refusal of every command run as a tenant's role outside its tenant.
 *
 * Until 1.1 the application's login role had to be a member of
 * tenant_isolation_login, which was granted every tenant's role: the
 * application could SET ROLE to any tenant's role, and as that role run
 * utility commands (GRANT, TRUNCATE, CREATE TABLE, CREATE INDEX ... over a
 * function of its own) that the executor hooks never see.  Now:
 *
 *	- No role is a member of a tenant's role.  The extension itself makes a
 *	  tenant's role the current role when the session enters that tenant
 *	  (ti_schema_tier_enter, called by context.c) and restores the previous
 *	  role when it leaves (ti_schema_tier_leave).  SetCurrentRoleId is what
 *	  SET ROLE does after its membership check; parallel workers inherit the
 *	  role from the leader's fixed state.
 *	- Rollbacks, savepoints and the end of a login_local transaction restore
 *	  the tenant context through the GUC machinery, but not a role set this
 *	  way: ti_schema_tier_reconcile, run before every statement (executor
 *	  start, utility), makes the role follow the effective context again
 *	  before any permission is checked.
 *	- A command run as a tenant's role outside that tenant's context is
 *	  refused: DML by executor.c (ti_check_session_tenant), every utility
 *	  command here; SET ROLE and SET SESSION AUTHORIZATION into a tenant's
 *	  role outside its context are refused too (superusers included).
 *	- The tenant of a role is read from tenant_isolation.tenant.role_name,
 *	  never parsed from the role's name: a role named like a tenant's is
 *	  nobody's tenant role unless the catalog says so.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/schema_tier.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "tenant_isolation.h"

/* the role ti_schema_tier_enter made current, and what it replaced */
static bool ti_st_entered = false;
static Oid	ti_st_role = InvalidOid;
static Oid	ti_st_saved_role = InvalidOid;	/* GetCurrentRoleId() before */

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static void ti_st_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
								 bool readOnlyTree, ProcessUtilityContext context,
								 ParamListInfo params, QueryEnvironment *queryEnv,
								 DestReceiver *dest, QueryCompletion *qc);

/*
 * The answer of ti_role_tenant for the last role asked about; forgotten when
 * a role or any relation (the tenant catalog among them) changes.
 */
static Oid	ti_st_cached_role = InvalidOid;
static bool ti_st_cached_found = false;
static pg_uuid_t ti_st_cached_tenant;

static void
ti_st_forget(Datum arg, int cacheid, uint32 hashvalue)
{
	ti_st_cached_role = InvalidOid;
}

static void
ti_st_forget_rel(Datum arg, Oid relid)
{
	ti_st_cached_role = InvalidOid;
}

void
ti_install_schema_tier_hook(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ti_st_ProcessUtility;
	CacheRegisterSyscacheCallback(AUTHOID, ti_st_forget, (Datum) 0);
	ti_register_relcache_callback(ti_st_forget_rel);	/* catalog.c */
}

/*
 * ti_role_tenant
 *		Is roleid the role of a schema-tier tenant, and of which?  Read from
 *		tenant_isolation.tenant (unique index on role_name).
 */
bool
ti_role_tenant(Oid roleid, pg_uuid_t *tenant)
{
	char	   *name;
	Oid			nsp;
	Oid			relid;
	Oid			indexid;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	AttrNumber	role_att;
	AttrNumber	id_att;
	bool		found = false;

	if (!OidIsValid(roleid) || !ti_extension_present())
		return false;
	if (roleid == ti_st_cached_role)
	{
		if (ti_st_cached_found && tenant)
			*tenant = ti_st_cached_tenant;
		return ti_st_cached_found;
	}
	name = GetUserNameFromId(roleid, true);
	if (name == NULL)
		return false;
	nsp = get_namespace_oid(TI_SCHEMA, true);
	relid = OidIsValid(nsp) ? get_relname_relid("tenant", nsp) : InvalidOid;
	indexid = OidIsValid(nsp) ? get_relname_relid("tenant_role_name_key", nsp) : InvalidOid;
	if (!OidIsValid(relid) || !OidIsValid(indexid))
		return false;

	role_att = get_attnum(relid, "role_name");
	id_att = get_attnum(relid, "id");
	if (role_att <= 0 || id_att <= 0)
		return false;
	rel = table_open(relid, AccessShareLock);
	ScanKeyInit(&key, role_att, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(name));
	scan = systable_beginscan(rel, indexid, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		id = heap_getattr(tup, id_att, RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			ti_st_cached_tenant = *DatumGetUUIDP(id);
			found = true;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	ti_st_cached_role = roleid;
	ti_st_cached_found = found;
	if (found && tenant)
		*tenant = ti_st_cached_tenant;
	return found;
}

/* Outside any SECURITY DEFINER function or security-restricted operation */
static bool
ti_st_unrestricted(void)
{
	Oid			userid;
	int			sec;

	GetUserIdAndSecContext(&userid, &sec);
	return sec == 0;
}

/*
 * ti_schema_tier_enter
 *		Make roleid, the role of the schema-tier tenant being entered, the
 *		current role, without any membership.  The caller (context.c) has
 *		checked the right to enter the tenant.  Refused inside a SECURITY
 *		DEFINER function, as SET ROLE is: the function's exit would restore
 *		its caller's identity over it.
 */
void
ti_schema_tier_enter(Oid roleid)
{
	if (!ti_st_unrestricted())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot enter a schema-tier tenant within a security-definer function or a security-restricted operation")));
	if (!ti_st_entered)
		ti_st_saved_role = GetCurrentRoleId();
	SetCurrentRoleId(roleid, false);
	ti_st_role = roleid;
	ti_st_entered = true;
}

/*
 * ti_schema_tier_leave
 *		Back to the role that was current before ti_schema_tier_enter.
 */
void
ti_schema_tier_leave(void)
{
	if (!ti_st_entered || !ti_st_unrestricted())
		return;
	SetCurrentRoleId(ti_st_saved_role,
					 OidIsValid(ti_st_saved_role) && superuser_arg(ti_st_saved_role));
	ti_st_entered = false;
	ti_st_role = InvalidOid;
}

/*
 * ti_schema_tier_reconcile
 *		Before a statement: the current role follows the effective context.
 *		In a schema-tier tenant's context the tenant's role is current;
 *		after the context ended (logout, rollback, the end of a login_local
 *		transaction) the previous role is back.
 */
void
ti_schema_tier_reconcile(void)
{
	pg_uuid_t	context;
	TiTenantInfo info;
	Oid			want = InvalidOid;

	if (IsParallelWorker() || !IsTransactionState() || ti_provisioning ||
		!ti_st_unrestricted() || !ti_extension_present())
		return;
	if (ti_context_get(&context) && ti_tenant_lookup(&context, &info) &&
		info.schema_tier && info.role_name[0] != '\0')
		want = get_role_oid(info.role_name, true);
	if (OidIsValid(want))
	{
		if (!ti_st_entered || GetOuterUserId() != want)
			ti_schema_tier_enter(want);
	}
	else if (ti_st_entered)
		ti_schema_tier_leave();
}

static void
ti_st_deny(const char *rolname, const char *what)
{
	ti_audit("denied_tenant_role", rolname, ERRCODE_INSUFFICIENT_PRIVILEGE, what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("role \"%s\" can only be used in its tenant's context", rolname),
			 errhint("Enter the tenant with tenant_isolation.login().")));
}

/* Is the context that of tenant? */
static bool
ti_st_in_tenant(const pg_uuid_t *tenant)
{
	pg_uuid_t	context;

	return ti_context_get(&context) &&
		memcmp(context.data, tenant->data, UUID_LEN) == 0;
}

/*
 * ti_st_check_set_role
 *		SET ROLE / SET SESSION AUTHORIZATION into a tenant's role outside
 *		its tenant's context.
 */
static void
ti_st_check_set_role(VariableSetStmt *stmt)
{
	A_Const    *arg;
	const char *rolname;
	Oid			roleid;
	pg_uuid_t	tenant;

	if (stmt->kind != VAR_SET_VALUE || stmt->name == NULL ||
		(strcmp(stmt->name, "role") != 0 &&
		 strcmp(stmt->name, "session_authorization") != 0) ||
		list_length(stmt->args) != 1 || !IsA(linitial(stmt->args), A_Const))
		return;
	arg = (A_Const *) linitial(stmt->args);
	if (arg->isnull || !IsA(&arg->val, String))
		return;
	rolname = strVal(&arg->val);
	roleid = get_role_oid(rolname, true);
	if (OidIsValid(roleid) && ti_role_tenant(roleid, &tenant) &&
		!ti_st_in_tenant(&tenant))
		ti_st_deny(rolname, "set role");
}

/*
 * ti_st_ProcessUtility
 *		Reconcile the role, then refuse what a tenant's role may not do.
 *
 * Why it holds: every utility command passes here before PostgreSQL runs
 * it; GetUserId() is the role whose privileges the command would use; if
 * that role is a tenant's (catalog) and the effective context is not that
 * tenant's, nothing but transaction control, SET/RESET/SHOW and DISCARD
 * (which lead out of the role) runs.  DML is refused by executor.c.
 */
static void
ti_st_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsTransactionState() && !IsParallelWorker() && ti_extension_present())
	{
		pg_uuid_t	tenant;
		Oid			userid = GetUserId();

		ti_schema_tier_reconcile();
		if (IsA(parsetree, VariableSetStmt))
			ti_st_check_set_role((VariableSetStmt *) parsetree);
		else if (!IsA(parsetree, TransactionStmt) &&
				 !IsA(parsetree, VariableShowStmt) &&
				 !IsA(parsetree, DiscardStmt) &&
				 ti_role_tenant(userid, &tenant) && !ti_st_in_tenant(&tenant))
			ti_st_deny(GetUserNameFromId(userid, false),
					   GetCommandTagName(CreateCommandTag(parsetree)));
	}

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}
