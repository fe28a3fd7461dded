/*-------------------------------------------------------------------------
 *
 * context.c
 *	  The tenant context of a session: its GUC, who may change it, and what
 *	  a change of tenant must leave behind.
 *
 * The context is the GUC tenant_isolation.tenant_id (PGC_SUSET).  Keeping it
 * in a real GUC gives the semantics the contract asks for without any code of
 * our own: SET semantics for login() (undone by ROLLBACK), SET LOCAL for
 * login_local(), RESET ALL and DISCARD ALL clear it, and parallel workers
 * receive it with the rest of the GUC state.  Ordinary roles cannot SET it;
 * the C functions set it with PGC_SUSET rights after verifying a token.
 *
 * One rule needs more than a GUC: a failed login must leave no context at
 * all, although its error rolls the transaction back and so restores the
 * previous tenant's value.  Every value carries, in its GUC "extra", the
 * poison epoch current when it was set; a failed login bumps the epoch, so
 * the value the rollback restores is no longer effective.  The stale string
 * is replaced by '' at the start of the next statement (ti_context_normalize)
 * so that SHOW and parallel workers agree with the leader.
 *
 * Plans carry the tenant as a Const, so a cached plan must never run under
 * another context than the one it was made in.  Every tenant-dependent plan
 * (injected quals, the policy's WITH CHECK) records a dependency on
 * tenant_isolation._tenant_dependency,
 * and invalidating that one function's syscache entry locally invalidates
 * exactly those plans and no others.  That happens when the session enters
 * a tenant other than the one the cached plans were made for; leaving a
 * context for none (the end of a login_local() transaction) invalidates
 * nothing, so a pooled client that logs into the same tenant again reuses
 * its plans, and executor.c refuses to run a tenant-dependent plan without a
 * context.  When a
 * session moves from one tenant to another (or to none), holdable cursors and
 * temporary objects made under the previous tenant are discarded as well.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/context.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/syscache.h"
#include "utils/inval.h"
#include "nodes/plannodes.h"
#include "utils/portal.h"

#include "tenant_isolation.h"

/* What the GUC machinery keeps next to every value of tenant_id. */
typedef struct TiContextExtra
{
	bool		has_tenant;
	pg_uuid_t	tenant;
	uint64		epoch;			/* ti_poison_epoch when the value was set */
} TiContextExtra;

static char *ti_tenant_id_string = NULL;
static char *ti_claims_string = NULL;

/* Bumped by every failed login; values set before it are not effective. */
static uint64 ti_poison_epoch = 0;

/* The effective context, kept in step by the assign hook. */
static TiContextExtra *ti_current_extra = NULL;

/*
 * Which tenant the cached tenant-dependent plans were made for, and whether
 * unscoped plans (a superuser without a context) may be cached too.
 */
static bool ti_plans_for_has = false;
static pg_uuid_t ti_plans_for;
static bool ti_unscoped_plans = false;

/* syscache hash of _tenant_dependency's pg_proc row; 0 while unknown */
static Oid	ti_dependency_funcid = InvalidOid;
static uint32 ti_dependency_hash = 0;
static bool ti_eff_has = false;
static pg_uuid_t ti_eff_tenant;

/*
 * The last tenant whose context this session had.  It survives the end of a
 * login_local transaction on purpose: it is what decides whether cursors and
 * temporary objects must be discarded when the next context is set.
 */
static bool ti_last_has = false;
static pg_uuid_t ti_last_tenant;

/*
 * True from login_local() to the end of its transaction.  Nothing made under
 * a transaction-scoped context may outlive the transaction, since the next
 * transaction on the same connection may belong to another client of a
 * pooler (utility.c refuses holdable cursors and drops temporary tables at
 * commit).
 */
bool		ti_context_is_local = false;

/*
 * A session-scoped login into a schema-tier tenant sets the role and the
 * search_path; what they were before is kept here and restored when the
 * session leaves the schema tier.
 */
static bool ti_schema_entered = false;
static char *ti_saved_role = NULL;
static char *ti_saved_search_path = NULL;

PG_FUNCTION_INFO_V1(ti_current_tenant);
PG_FUNCTION_INFO_V1(ti_logout);
PG_FUNCTION_INFO_V1(ti_assume_tenant);
PG_FUNCTION_INFO_V1(ti_internal_ddl_set);

static bool ti_tenant_id_check(char **newval, void **extra, GucSource source);
static void ti_tenant_id_assign(const char *newval, void *extra);
static const char *ti_tenant_id_show(void);
static void ti_context_xact_callback(XactEvent event, void *arg);

/*
 * ti_define_context_gucs
 *		Define tenant_isolation.tenant_id and the hidden claims variable.
 */
void
ti_define_context_gucs(void)
{
	DefineCustomStringVariable("tenant_isolation.tenant_id",
							   "The tenant context of this session.",
							   "Set by tenant_isolation.login(), login_local() and assume_tenant(); only superusers can SET it.",
							   &ti_tenant_id_string,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   ti_tenant_id_check,
							   ti_tenant_id_assign,
							   ti_tenant_id_show);

	DefineCustomStringVariable("tenant_isolation.claims",
							   "Claims of the token that set the tenant context.",
							   NULL,
							   &ti_claims_string,
							   "",
							   PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);

	RegisterXactCallback(ti_context_xact_callback, NULL);
}

/*
 * ti_tenant_id_check
 *		Accept '' or a uuid, and a uuid only from SET-like sources.
 *
 * A tenant in postgresql.conf, ALTER ROLE/DATABASE SET or a connection
 * option would hand every session of that role a context without a login,
 * and would survive RESET ALL; refuse those sources.
 */
static bool
ti_tenant_id_check(char **newval, void **extra, GucSource source)
{
	TiContextExtra *e;
	pg_uuid_t	u;
	bool		has = false;

	if (*newval != NULL && (*newval)[0] != '\0')
	{
		if (!ti_uuid_from_cstring(*newval, &u))
		{
			GUC_check_errcode(ERRCODE_INVALID_TEXT_REPRESENTATION);
			GUC_check_errdetail("A tenant context is a uuid.");
			return false;
		}
		if (source != PGC_S_SESSION)
		{
			ti_audit("denied_set_context", "tenant_isolation.tenant_id",
					 ERRCODE_INSUFFICIENT_PRIVILEGE,
					 source == PGC_S_TEST ? "stored setting (ALTER ROLE/DATABASE/FUNCTION SET)" :
					 source == PGC_S_CLIENT ? "connection option" :
					 "setting outside a session");
			GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
			GUC_check_errmsg("tenant_isolation.tenant_id can only be set in a session");
			GUC_check_errhint("Use tenant_isolation.login() or assume_tenant().");
			return false;
		}
		has = true;
	}

	e = (TiContextExtra *) malloc(sizeof(TiContextExtra));
	if (e == NULL)
		return false;
	e->has_tenant = has;
	if (has)
		e->tenant = u;
	else
		memset(&e->tenant, 0, sizeof(pg_uuid_t));
	e->epoch = ti_poison_epoch;
	*extra = e;
	return true;
}

/*
 * ti_set_effective
 *		Make (has, tenant) the effective context; reset plans on a change.
 *
 * Called from the assign hook, also during transaction abort: it must not
 * fail.  ResetPlanCache only flags plans.
 */
static void
ti_set_effective(bool has, const pg_uuid_t *tenant)
{
	bool		changed;

	changed = (has != ti_eff_has) ||
		(has && memcmp(tenant->data, ti_eff_tenant.data, UUID_LEN) != 0);
	ti_eff_has = has;
	if (has)
		ti_eff_tenant = *tenant;
	if (!changed)
		return;

	/* no dependency to invalidate by: every change resets every plan */
	if (ti_dependency_hash == 0)
	{
		ResetPlanCache();
		ti_limits_on_context_end();
		return;
	}

	/* entering a tenant the cached plans were not made for */
	if (has && (!ti_plans_for_has || ti_unscoped_plans ||
				memcmp(tenant->data, ti_plans_for.data, UUID_LEN) != 0))
	{
		/* unscoped plans record no dependency: only a full reset finds them */
		if (ti_unscoped_plans)
			ResetPlanCache();
		ti_invalidate_tenant_plans();
		ti_plans_for = *tenant;
		ti_plans_for_has = true;
		ti_unscoped_plans = false;
	}
	ti_limits_on_context_end();		/* never fails; safe during abort */
}

/*
 * ti_remember_dependency
 *		catalog.c found _tenant_dependency: keep what invalidation needs, so
 *		that it works without catalog access (it runs during abort).
 */
void
ti_remember_dependency(Oid funcid)
{
	if (funcid == ti_dependency_funcid)
		return;
	ti_dependency_funcid = funcid;
	ti_dependency_hash = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(funcid));
}

/*
 * ti_invalidate_tenant_plans
 *		Invalidate, in this backend only, every cached plan that depends on
 *		the tenant context.  The plan cache treats it like a change of the
 *		function _tenant_dependency.  Never fails.
 */
void
ti_invalidate_tenant_plans(void)
{
	if (ti_dependency_hash != 0)
		CallSyscacheCallbacks(PROCOID, ti_dependency_hash);
	else
		ResetPlanCache();		/* nothing planned yet; cheap anyway */
}

/*
 * ti_note_unscoped_plan
 *		A superuser without a context planned a protected relation unscoped:
 *		that plan must not survive into any tenant's context.  It records no
 *		tenant dependency (it is valid without a context), so entering a
 *		tenant afterwards resets the whole plan cache.
 */
void
ti_note_unscoped_plan(void)
{
	ti_unscoped_plans = true;
}

/*
 * ti_plan_depends_on_tenant
 *		Does a PlannedStmt's invalItems list record the tenant dependency?
 */
bool
ti_plan_depends_on_tenant(List *invalItems)
{
	ListCell   *lc;

	if (ti_dependency_hash == 0)
		return false;
	foreach(lc, invalItems)
	{
		PlanInvalItem *item = (PlanInvalItem *) lfirst(lc);

		if (item->cacheId == PROCOID && item->hashValue == ti_dependency_hash)
			return true;
	}
	return false;
}

static void
ti_tenant_id_assign(const char *newval, void *extra)
{
	TiContextExtra *e = (TiContextExtra *) extra;

	ti_current_extra = e;
	if (e != NULL && e->has_tenant && e->epoch >= ti_poison_epoch)
		ti_set_effective(true, &e->tenant);
	else
		ti_set_effective(false, NULL);
}

static const char *
ti_tenant_id_show(void)
{
	static char buf[UUID_LEN * 2 + 5];

	if (!ti_eff_has)
		return "";
	snprintf(buf, sizeof(buf), "%s", ti_uuid_to_cstring(&ti_eff_tenant));
	return buf;
}

/*
 * ti_context_get
 *		The effective tenant context; false when there is none.
 *
 * Safe in parallel workers (they restore the leader's GUC state).
 */
bool
ti_context_get(pg_uuid_t *tenant)
{
	if (!ti_eff_has)
		return ti_citus_worker_context(tenant);	/* a Citus worker (citus.c) */
	if (tenant)
		*tenant = ti_eff_tenant;
	return true;
}

/*
 * ti_context_claims
 *		Claims JSON of the token behind the context, or NULL.
 *
 * The claims variable holds "<tenant uuid>:<json>"; it counts only while the
 * effective tenant is the one it was written for, so a later SET or
 * assume_tenant never shows a previous token's claims.
 */
const char *
ti_context_claims(void)
{
	char	   *tenant_str;
	size_t		len;

	if (!ti_eff_has || ti_claims_string == NULL || ti_claims_string[0] == '\0')
		return NULL;
	tenant_str = ti_uuid_to_cstring(&ti_eff_tenant);
	len = strlen(tenant_str);
	if (strncmp(ti_claims_string, tenant_str, len) != 0 ||
		ti_claims_string[len] != ':')
		return NULL;
	return ti_claims_string + len + 1;
}

/*
 * ti_check_change_allowed
 *		Refuse a context change inside a running statement that reads
 *		protected tables, or inside a parallel operation.
 */
static void
ti_check_change_allowed(void)
{
	if (!ti_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_isolation must be loaded via shared_preload_libraries")));
	if (IsInParallelMode())
	{
		ti_audit("denied_context_switch", NULL, ERRCODE_INVALID_TRANSACTION_STATE,
				 "parallel operation");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot change the tenant context during a parallel operation")));
	}
	if (ti_protected_running > 0)
	{
		ti_audit("denied_context_switch", NULL, ERRCODE_INSUFFICIENT_PRIVILEGE,
				 "statement on protected tables running");
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot change the tenant context while a statement that reads protected tables is running"),
				 errdetail("A statement sees the tenant context in force when it started, to its end."),
				 errhint("Change the context in a statement of its own.")));
	}
}

/*
 * ti_leave_previous_tenant
 *		Discard what the session made under the previous tenant.
 *
 * Open cursors (holdable ones survive their transaction and would keep
 * returning the previous tenant's rows) and temporary objects (they may hold
 * copies of its rows).  Cached plans were reset by the assign hook.
 */
static void
ti_leave_previous_tenant(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	/*
	 * A loop over a query (PL/pgSQL FOR, a cursor being fetched by a
	 * function) pins its portal, and PortalHashTableDeleteAll refuses to
	 * drop a pinned portal with an internal error.  Say what is wrong
	 * instead; the transaction is aborting anyway.
	 */
	PG_TRY();
	{
		PortalHashTableDeleteAll();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		ti_audit("denied_context_switch", NULL,
				 ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "loop over a query running");
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot change the tenant context while a loop over a query is running"),
				 errdetail("Changing the tenant closes every open cursor, and this one is in use."),
				 errhint("Change the context before the loop, or in a statement of its own.")));
	}
	PG_END_TRY();
	ResetTempTableNamespace();
	ti_keys_on_context_change();
}

/*
 * ti_set_guc
 *		Write the two context variables with superuser rights.
 */
static void
ti_set_guc(const char *tenant_str, const char *claims, bool local)
{
	GucAction	action = local ? GUC_ACTION_LOCAL : GUC_ACTION_SET;

	(void) set_config_option("tenant_isolation.claims", claims,
							 PGC_SUSET, PGC_S_SESSION, action, true, 0, false);
	(void) set_config_option("tenant_isolation.tenant_id", tenant_str,
							 PGC_SUSET, PGC_S_SESSION, action, true, 0, false);
}

/*
 * ti_enter_tenant_schema
 *		Run as the tenant's role, with its schema first on the search_path.
 */
static void
ti_enter_tenant_schema(const TiTenantInfo *info, bool local)
{
	Oid			roleid = get_role_oid(info->role_name, true);
	GucAction	action = local ? GUC_ACTION_LOCAL : GUC_ACTION_SET;
	const char *base;

	if (!OidIsValid(roleid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("role of schema-tier tenant %s is missing",
						ti_uuid_to_cstring(&info->id))));
	if (!ti_schema_entered)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		if (ti_saved_role)
			pfree(ti_saved_role);
		if (ti_saved_search_path)
			pfree(ti_saved_search_path);
		ti_saved_role = pstrdup(GetConfigOption("role", false, false));
		ti_saved_search_path = pstrdup(GetConfigOption("search_path", false, false));
		MemoryContextSwitchTo(old);
		if (!local)
			ti_schema_entered = true;
	}
	base = ti_saved_search_path;
	(void) set_config_option("search_path",
							 psprintf("%s%s%s", quote_identifier(info->schema_name),
									  base[0] ? ", " : "", base),
							 PGC_SUSET, PGC_S_SESSION, action, true, 0, false);
	ti_schema_tier_enter(roleid);	/* no membership needed (schema_tier.c) */
}

/*
 * ti_leave_tenant_schema
 *		Back to the role and search_path of before the schema tier.
 */
static void
ti_leave_tenant_schema(void)
{
	if (!ti_schema_entered)
		return;
	ti_schema_tier_leave();
	(void) set_config_option("search_path", ti_saved_search_path, PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
	ti_schema_entered = false;
}

/*
 * ti_context_set
 *		Enter the context of a tenant (login, login_local, assume_tenant).
 *
 * claims_json may be NULL.  The caller has verified the right to do so.
 * An error here (a refused mid-statement change, a pinned cursor) rolls the
 * transaction back to the previous context, like a failed SET; login() wraps
 * its whole verification so that a failed login leaves no context instead.
 */
void
ti_context_set(const pg_uuid_t *tenant, const char *claims_json, bool local)
{
	char	   *tenant_str;
	char	   *claims;
	TiTenantInfo info;

	ti_check_change_allowed();

	if (ti_last_has && memcmp(ti_last_tenant.data, tenant->data, UUID_LEN) != 0)
		ti_leave_previous_tenant();

	tenant_str = ti_uuid_to_cstring(tenant);
	claims = claims_json ? psprintf("%s:%s", tenant_str, claims_json) : "";
	if (ti_tenant_lookup(tenant, &info) && info.schema_tier &&
		info.role_name[0] != '\0')
		ti_enter_tenant_schema(&info, local);
	else if (!local)
		ti_leave_tenant_schema();
	ti_set_guc(tenant_str, claims, local);
	ti_context_is_local = local;
	ti_limits_on_context(tenant, local);

	ti_last_has = true;
	ti_last_tenant = *tenant;
}

/*
 * ti_context_clear
 *		Leave the tenant context (logout).
 */
void
ti_context_clear(bool local)
{
	ti_check_change_allowed();

	if (ti_last_has)
		ti_leave_previous_tenant();
	if (!local)
		ti_leave_tenant_schema();
	ti_set_guc("", "", local);
	ti_context_is_local = false;
	ti_limits_on_context(NULL, local);
	/* an explicit logout also drops the plans (superusers plan unscoped) */
	ti_invalidate_tenant_plans();
	ti_plans_for_has = false;
	ti_last_has = false;
}

/*
 * ti_context_poison
 *		A login failed: from now on no context is effective, whatever value
 *		the coming rollback restores, until a new context is set.
 */
void
ti_context_poison(void)
{
	ti_poison_epoch++;
	ti_set_effective(false, NULL);
}

/*
 * ti_context_normalize
 *		Replace a value that a failed login made stale by ''.
 *
 * Called at the start of statements.  Not in parallel mode, where GUCs
 * cannot change; the leader normalizes before it launches workers.
 */
void
ti_context_normalize(void)
{
	if (ti_eff_has || ti_tenant_id_string == NULL ||
		ti_tenant_id_string[0] == '\0' || IsInParallelMode() ||
		!IsTransactionState())
		return;
	ti_set_guc("", "", false);
	ti_last_has = false;
}

/*
 * ti_context_after_utility
 *		After RESET ALL, DISCARD or SET: when the effective tenant is no
 *		longer the last one, discard what that tenant left behind.
 */
void
ti_context_after_utility(void)
{
	/* RESET ALL / SET of the context left no context: drop tenant plans */
	if (!ti_eff_has && ti_plans_for_has)
	{
		ti_invalidate_tenant_plans();
		ti_plans_for_has = false;
	}
	if (!ti_last_has)
		return;
	if (ti_eff_has && memcmp(ti_eff_tenant.data, ti_last_tenant.data, UUID_LEN) == 0)
		return;
	if (ti_eff_has)
	{
		ti_leave_previous_tenant();
		ti_last_tenant = ti_eff_tenant;
	}
	else
	{
		/* leaving a login_local context at COMMIT is not a switch yet */
		if (IsTransactionBlock())
			return;
		ti_leave_previous_tenant();
		ti_last_has = false;
	}
}

/*
 * ti_is_admin
 *		Superuser or member of tenant_isolation_admin.
 */
bool
ti_is_admin(Oid roleid)
{
	Oid			admin;

	if (superuser_arg(roleid))
		return true;
	admin = ti_admin_role_oid();
	return OidIsValid(admin) && has_privs_of_role(roleid, admin);
}

/*
 * ti_context_xact_callback
 *		Internal DDL permission and the transaction-scoped context flag
 *		never outlive their transaction.
 */
static void
ti_context_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT)
	{
		ti_internal_ddl = false;
		ti_context_is_local = false;
	}
}

/*
 * current_tenant() RETURNS uuid
 */
Datum
ti_current_tenant(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *result;

	if (!ti_eff_has)
		PG_RETURN_NULL();
	result = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));
	*result = ti_eff_tenant;
	PG_RETURN_UUID_P(result);
}

/*
 * logout() RETURNS void
 */
Datum
ti_logout(PG_FUNCTION_ARGS)
{
	bool		had = ti_eff_has;

	ti_context_clear(false);
	if (had)
		ti_audit("logout", NULL, 0, NULL);
	PG_RETURN_VOID();
}

/*
 * assume_tenant(tenant uuid, reason text) RETURNS void
 *
 * For administrators: enter a tenant's context without a token.  Always
 * audited with its reason.  Since 1.1 EXECUTE is granted to PUBLIC and
 * this check is the gate: a refusal by core's EXECUTE check could not be
 * audited, and every refused attempt must be.
 */
Datum
ti_assume_tenant(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *tenant;
	char	   *reason;
	bool		active;
	char	   *tenant_str;

	if (!ti_is_admin(GetUserId()))
	{
		ti_audit("assume_tenant_denied", NULL, ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to assume a tenant context"),
				 errdetail("Only superusers and members of tenant_isolation_admin may assume a tenant context.")));
	}
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a reason is required to assume a tenant context")));
	tenant = PG_GETARG_UUID_P(0);
	reason = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strspn(reason, " \t\r\n\f\v") == strlen(reason))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a reason is required to assume a tenant context")));
	if (strlen(reason) > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the reason is too long"),
				 errdetail("A reason is at most 1000 bytes.")));
	tenant_str = ti_uuid_to_cstring(tenant);
	if (!ti_tenant_status(tenant, &active))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant %s does not exist", tenant_str)));

	ti_context_set(tenant, NULL, false);
	ti_audit("assume_tenant", tenant_str, 0, reason);
	PG_RETURN_VOID();
}

/*
 * _internal_ddl(on boolean)
 *		Let the extension's own functions run DDL that the utility hook
 *		refuses to everybody else (dropping the guard trigger, the fallback
 *		policy, ...).  Superuser only: the provisioning functions are
 *		SECURITY DEFINER and owned by the superuser who created the
 *		extension.  Reset at the end of every transaction.
 */
Datum
ti_internal_ddl_set(PG_FUNCTION_ARGS)
{
	if (!superuser())
	{
		ti_audit("denied_internal_function", "tenant_isolation._internal_ddl",
				 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for internal function")));
	}
	ti_internal_ddl = PG_GETARG_BOOL(0);
	PG_RETURN_VOID();
}
