/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  Executor hooks: which running statements read protected tables.
 *
 * "A statement sees the context in force when it started, to its end": the
 * plan carries the tenant as a constant or reads it once per scan, and
 * context.c refuses to change the context while ti_protected_running is
 * positive, that is while the executor is running (or finishing) a plan
 * whose range table holds a protected relation.  A cursor counts only while
 * it is being fetched from; between fetches it is not running, and a
 * context change closes it instead.
 *
 * The counter is restored in PG_FINALLY on every path, errors included, as
 * auto_explain restores its nesting level.
 *
 * ExecutorCheckPerms, which every statement passes (COPY and referential
 * checks included), refuses statements of a session whose tenant has been
 * suspended or dropped, and statements run as a schema-tier tenant's role
 * outside that tenant's context (a superuser can become any role; which
 * role is a tenant's is read from the catalog, schema_tier.c, which also
 * refuses utility commands and makes the role follow the context before
 * every statement: ExecutorStart below).
 *
 * ExecutorStart and ExecutorEnd also hand each statement to limits.c
 * (per-tenant statement limits and statistics).
 *
 * ExecutorStart also replaces a context value that a failed login made stale
 * and discards what a previous tenant left (context.c), before the leader
 * can launch parallel workers; ExecutorCheckPerms reports the temporary
 * relations a statement writes, which then belong to the current context.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/executor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "miscadmin.h"

#include "tenant_isolation.h"

int			ti_protected_running = 0;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ExecutorCheckPerms_hook_type prev_ExecutorCheckPerms = NULL;

/* Is the last checked user a schema-tier tenant's role, and whose? */
static Oid	ti_checked_user = InvalidOid;
static uint64 ti_authid_seq = 0;	/* bumped by ti_authid_callback */
static bool ti_checked_is_tenant_role = false;
static pg_uuid_t ti_checked_role_tenant;

static void ti_ExecutorStart(QueryDesc *queryDesc, int eflags);
static void ti_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
						   uint64 count, bool execute_once);
static void ti_ExecutorFinish(QueryDesc *queryDesc);
static void ti_ExecutorEnd(QueryDesc *queryDesc);
static bool ti_ExecutorCheckPerms(List *rangeTable, bool ereport_on_violation);
static void ti_authid_callback(Datum arg, int cacheid, uint32 hashvalue);

void
ti_install_executor_hooks(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ti_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = ti_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = ti_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = ti_ExecutorEnd;
	prev_ExecutorCheckPerms = ExecutorCheckPerms_hook;
	ExecutorCheckPerms_hook = ti_ExecutorCheckPerms;
	CacheRegisterSyscacheCallback(AUTHOID, ti_authid_callback, (Datum) 0);
}

/*
 * ti_plan_reads_protected
 *		Does the plan's (flattened) range table hold a protected relation?
 */
static bool
ti_plan_reads_protected(QueryDesc *queryDesc)
{
	ListCell   *lc;

	if (queryDesc->plannedstmt == NULL || !ti_extension_present())
		return false;
	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION && ti_lookup_rel(rte->relid)->is_protected)
			return true;
	}
	return false;
}

static void
ti_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (!IsParallelWorker())
	{
		/* the workers' copy of the claims (context.c) */
		if (queryDesc->plannedstmt &&
			queryDesc->plannedstmt->parallelModeNeeded &&
			!IsInParallelMode() &&	/* synced by the outer statement */
			ti_extension_present())
			ti_context_sync_parallel_claims();

		/*
		 * A statement planned before what a previous tenant left was
		 * discarded (after a failed login) may name a dropped temporary
		 * relation: say so, instead of failing to open it.
		 */
		if (ti_ctx_statement_start(false) && queryDesc->plannedstmt)
		{
			ListCell   *lc;

			foreach(lc, queryDesc->plannedstmt->rtable)
			{
				RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

				if (rte->rtekind == RTE_RELATION &&
					!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(rte->relid)))
					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_TABLE),
							 errmsg("relation was discarded with the objects of the previous tenant context"),
							 errdetail("Temporary relations made or written under another tenant are dropped when the context changes.")));
			}
		}
		ti_schema_tier_reconcile();

		/*
		 * A cached plan made in a tenant's context may outlive it (the end of
		 * a login_local transaction does not invalidate plans, so that the
		 * next login into the same tenant reuses them).  It must not run
		 * without a context: for an ordinary role that is the usual denial,
		 * for a superuser the plan would be wrongly scoped.
		 */
		if (queryDesc->plannedstmt &&
			!ti_context_get(NULL) &&
			ti_plan_depends_on_tenant(queryDesc->plannedstmt->invalItems))
		{
			if (!ti_unscoped_allowed())
			{
				ti_audit("denied_no_context", NULL,
						 ERRCODE_INSUFFICIENT_PRIVILEGE, "cached plan");
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("no tenant context for a statement on protected tables"),
						 errhint("Call tenant_isolation.login() first.")));
			}
			ti_invalidate_tenant_plans();
			ti_invalidate_runtime_plans();
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cached plan was made in a tenant context that has ended"),
					 errhint("Execute the statement again; its plan has been invalidated.")));
		}
	}

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (!IsParallelWorker())
		ti_limits_executor_start(queryDesc);
}

static void
ti_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
			   bool execute_once)
{
	bool		counted = !IsParallelWorker() && ti_plan_reads_protected(queryDesc);

	if (counted)
		ti_protected_running++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		if (counted)
			ti_protected_running--;
	}
	PG_END_TRY();
}

static void
ti_ExecutorFinish(QueryDesc *queryDesc)
{
	bool		counted = !IsParallelWorker() && ti_plan_reads_protected(queryDesc);

	if (counted)
		ti_protected_running++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
		if (!IsParallelWorker())
			ti_scrub_instrumentation(queryDesc);
	}
	PG_FINALLY();
	{
		if (counted)
			ti_protected_running--;
	}
	PG_END_TRY();
}

static void
ti_ExecutorEnd(QueryDesc *queryDesc)
{
	if (!IsParallelWorker())
		ti_limits_executor_end(queryDesc);

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

static void
ti_authid_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	ti_checked_user = InvalidOid;
	ti_authid_seq++;
}

/*
 * ti_check_session_tenant
 *		Refuse the statement when the session's tenant is suspended or gone,
 *		or when it runs as a tenant role outside that tenant's context.
 */
void
ti_check_session_tenant(void)
{
	pg_uuid_t	context;
	bool		has_context;
	Oid			userid = GetUserId();

	if (!ti_extension_present())
		return;
	has_context = ti_context_get(&context);

	/*
	 * provision.c works on a suspended tenant's rows (drop_tenant,
	 * move_tenant) in that tenant's context, as the table's owner; a Citus
	 * coordinator checked the tenant before it signed (citus.c).
	 */
	if (has_context && !superuser_arg(userid) && !ti_provisioning &&
		!ti_citus_context_asserted())
	{
		TiTenantInfo info;

		if (!ti_tenant_lookup(&context, &info) || !info.active)
		{
			ti_audit("denied_inactive_tenant", NULL,
					 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("tenant %s is %s", ti_uuid_to_cstring(&context),
							info.exists ? "suspended" : "no longer provisioned"),
					 errhint("Sessions of a suspended tenant are refused until it is resumed.")));
		}
	}

	if (userid != ti_checked_user)
	{
		uint64		seq = ti_authid_seq;

		/*
		 * The name lookup may miss the syscache and run the callback: the
		 * answer is used now, but remembered only if no pg_authid change
		 * arrived while it was computed (catalog.c, rule 2).
		 */
		ti_checked_is_tenant_role = ti_role_tenant(userid, &ti_checked_role_tenant);
		ti_checked_user = (seq == ti_authid_seq) ? userid : InvalidOid;
	}
	if (ti_checked_is_tenant_role &&
		(!has_context ||
		 memcmp(context.data, ti_checked_role_tenant.data, UUID_LEN) != 0))
	{
		ti_audit("denied_tenant_role", GetUserNameFromId(userid, true),
				 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" can only be used in its tenant's context",
						GetUserNameFromId(userid, true)),
				 errhint("Enter the tenant with tenant_isolation.login().")));
	}
}

/*
 * ti_ExecutorCheckPerms
 *		Statements that read or write relations pass ti_check_session_tenant;
 *		those without (SELECT tenant_isolation.logout(), a new login) do not,
 *		so a session of a suspended tenant can still leave it.
 */
static bool
ti_ExecutorCheckPerms(List *rangeTable, bool ereport_on_violation)
{
	ListCell   *lc;
	bool		checked = false;

	if (prev_ExecutorCheckPerms &&
		!prev_ExecutorCheckPerms(rangeTable, ereport_on_violation))
		return false;
	if (IsParallelWorker())
		return true;
	foreach(lc, rangeTable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind != RTE_RELATION)
			continue;
		if (!checked)
		{
			ti_check_session_tenant();
			checked = true;
		}
		/* a temporary relation written now belongs to the context now */
		if (rte->requiredPerms & (ACL_INSERT | ACL_UPDATE | ACL_DELETE))
			ti_ctx_note_write(rte->relid);
	}
	return true;
}
