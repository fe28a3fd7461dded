/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  Who may touch a protected table without a tenant context.
 *
 * The contract: a superuser without a context is unrestricted; anybody else
 * without a context is refused (42501).  "Superuser" means the identity
 * that started the statement, the outer user, not the current user:
 *
 *	- SET ROLE changes the outer user; SECURITY DEFINER functions and
 *	  PostgreSQL's internal switches to a table owner (index builds,
 *	  CLUSTER, VACUUM FULL, referential checks, ANALYZE) change only the
 *	  current user; parallel workers inherit both from the leader.
 *	- So an ordinary role gains nothing by calling a superuser's SECURITY
 *	  DEFINER function or reading a superuser's view, and a superuser's
 *	  maintenance is not refused where PostgreSQL runs part of it as the
 *	  (ordinary) table owner.
 *
 * One exception: the extension's own SECURITY DEFINER functions (schema
 * tenant_isolation, owned by a superuser: the extension owner) run
 * provisioning on behalf of members of tenant_isolation_admin, e.g.
 * drop_tenant deleting a tenant's rows.  fmgr_hook, which PostgreSQL calls
 * on entry to and exit from every SECURITY DEFINER function, counts how many
 * such functions are running; while one is, and the current user is a
 * superuser (the definer switch is in force, not a nested SECURITY INVOKER
 * call back to the caller), the statement is treated as the extension's own.
 * The counter is restored on error through FHET_ABORT, which
 * fmgr_security_definer sends from its PG_CATCH.  Nobody but a superuser can
 * create a function in the schema tenant_isolation.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/identity.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "tenant_isolation.h"

static fmgr_hook_type prev_fmgr_hook = NULL;

/* SECURITY DEFINER functions of the extension running now */
static int	ti_extension_definer_depth = 0;

/*
 * ti_unscoped_allowed
 *		May the running statement touch protected tables without a context?
 */
bool
ti_unscoped_allowed(void)
{
	if (superuser_arg(GetOuterUserId()))
		return true;
	return ti_extension_definer_depth > 0 && superuser_arg(GetUserId());
}

static bool
ti_is_extension_function(Oid fn_oid)
{
	HeapTuple	tp;
	Form_pg_proc proc;
	bool		result;

	tp = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(tp))
		return false;
	proc = (Form_pg_proc) GETSTRUCT(tp);
	result = proc->prosecdef &&
		proc->pronamespace == get_namespace_oid(TI_SCHEMA, true) &&
		superuser_arg(proc->proowner);
	ReleaseSysCache(tp);
	return result;
}

static void
ti_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);

	switch (event)
	{
		case FHET_START:
			/* *private starts as 0 for each call; remember whether we counted */
			if (ti_is_extension_function(flinfo->fn_oid))
			{
				ti_extension_definer_depth++;
				*private = BoolGetDatum(true);
			}
			break;
		case FHET_END:
		case FHET_ABORT:
			if (DatumGetBool(*private))
			{
				ti_extension_definer_depth--;
				*private = BoolGetDatum(false);
			}
			break;
	}
}

void
ti_install_identity_hooks(void)
{
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = ti_fmgr_hook;
}
