/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Write scoping: the row trigger on every protected table.
 *
 * protect_table() installs tenant_isolation_guard, a BEFORE INSERT OR UPDATE
 * row trigger (cloned to every partition by PostgreSQL; added to inheritance
 * children by the extension).  Row triggers fire on every write path, COPY
 * FROM included, which never reaches the planner.  It enforces:
 *
 *	- without a tenant context, only superusers write (42501 otherwise);
 *	- the tenant column is never NULL;
 *	- in a context, a new row carries the context's tenant, and an UPDATE
 *	  only changes a row of the context's tenant.  Plain UPDATEs cannot see
 *	  other tenants' rows; this catches INSERT ... ON CONFLICT DO UPDATE that
 *	  collides with another tenant's row through a tenant-less unique key.
 *
 * Error texts name the table, never a value of the row.  For roles subject to
 * row level security, the WITH CHECK qual of planner.c checks the final row
 * again after every BEFORE trigger.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "tenant_isolation.h"

PG_FUNCTION_INFO_V1(ti_guard_trigger);
PG_FUNCTION_INFO_V1(ti_conflict_check);

/*
 * ti_guard_tenant_of
 *		The tenant column of a tuple; false when NULL.
 */
static bool
ti_guard_tenant_of(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attno,
				   pg_uuid_t *out)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, attno, tupdesc, &isnull);

	if (isnull)
		return false;
	*out = *DatumGetUUIDP(d);
	return true;
}

/*
 * ti_guard_deny
 *		Refuse a row.  The message names the table and the rule, never a
 *		value of the row: the row may be another tenant's.
 */
typedef enum TiGuardRule
{
	TI_GUARD_NULL_TENANT,
	TI_GUARD_OTHER_OLD,
	TI_GUARD_OTHER_NEW
} TiGuardRule;

static void
ti_guard_deny(Relation rel, TiGuardRule rule)
{
	const char *relname = RelationGetRelationName(rel);

	ti_audit("denied_write", relname, ERRCODE_INSUFFICIENT_PRIVILEGE,
			 rule == TI_GUARD_NULL_TENANT ? "null tenant id" :
			 rule == TI_GUARD_OTHER_OLD ? "update of another tenant's row" :
			 "row of another tenant");
	switch (rule)
	{
		case TI_GUARD_NULL_TENANT:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("null tenant id in protected table \"%s\"", relname),
					 errdetail("Every row of a protected table belongs to a tenant.")));
			break;
		case TI_GUARD_OTHER_OLD:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot update a row of another tenant in table \"%s\"", relname),
					 errdetail("The row is not visible in the current tenant context.")));
			break;
		case TI_GUARD_OTHER_NEW:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("new row for table \"%s\" belongs to another tenant", relname),
					 errdetail("Rows written in a tenant context must carry that tenant's id.")));
			break;
	}
}

Datum
ti_guard_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	newtuple;
	TiRelInfo  *info;
	AttrNumber	attno;
	pg_uuid_t	context;
	pg_uuid_t	row_tenant;
	bool		has_context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("guard_trigger: not called by trigger manager")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("guard_trigger must be a BEFORE INSERT OR UPDATE row trigger")));

	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	newtuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;

	info = ti_lookup_rel(RelationGetRelid(rel));
	if (!info->is_protected)
		return PointerGetDatum(newtuple);	/* left over after unprotect */
	attno = info->tenant_attno;

	has_context = ti_context_get(&context);
	if (!has_context)
	{
		if (!ti_unscoped_allowed())
		{
			ti_audit("denied_no_context", RelationGetRelationName(rel),
					 ERRCODE_INSUFFICIENT_PRIVILEGE, "write");
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("no tenant context for table \"%s\"",
							RelationGetRelationName(rel)),
					 errdetail("Table \"%s\" is protected by tenant_isolation.",
							   RelationGetRelationName(rel)),
					 errhint("Call tenant_isolation.login() first.")));
		}
		if (!ti_guard_tenant_of(newtuple, tupdesc, attno, &row_tenant))
			ti_guard_deny(rel, TI_GUARD_NULL_TENANT);
		return PointerGetDatum(newtuple);
	}

	/*
	 * A tenant that moved to the schema tier has no rows in shared tables any
	 * more; a session that entered it before the move must not put some back.
	 */
	{
		TiTenantInfo tinfo;

		if (ti_tenant_lookup(&context, &tinfo) && tinfo.schema_tier)
		{
			ti_audit("denied_write", RelationGetRelationName(rel),
					 ERRCODE_INSUFFICIENT_PRIVILEGE, "schema-tier tenant");
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("tenant %s keeps its rows in its own schema",
							ti_uuid_to_cstring(&context)),
					 errdetail("Shared table \"%s\" holds no rows of a schema-tier tenant.",
							   RelationGetRelationName(rel)),
					 errhint("Log in again to work in the tenant's schema.")));
		}
	}

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		if (!ti_guard_tenant_of(trigdata->tg_trigtuple, tupdesc, attno, &row_tenant) ||
			memcmp(row_tenant.data, context.data, UUID_LEN) != 0)
			ti_guard_deny(rel, TI_GUARD_OTHER_OLD);
	}

	if (!ti_guard_tenant_of(newtuple, tupdesc, attno, &row_tenant))
		ti_guard_deny(rel, TI_GUARD_NULL_TENANT);
	if (memcmp(row_tenant.data, context.data, UUID_LEN) != 0)
		ti_guard_deny(rel, TI_GUARD_OTHER_NEW);

	return PointerGetDatum(newtuple);
}

/*
 * ti_conflict_check
 *		tenant_isolation._conflict_check(existing_tenant uuid, rel oid)
 *
 * INSERT ... ON CONFLICT DO UPDATE: planner.c puts this call first in the
 * ModifyTable's ON CONFLICT WHERE list, over the tenant column of the
 * existing row, after planning (so that constant folding of a user's
 * "WHERE false" cannot remove it).  ExecOnConflictUpdate locks the existing
 * row and then evaluates that list in order, before the row level security
 * conflict check, the SET projection, the guard trigger and RETURNING: this
 * call is therefore the first expression to see the row.  A row of another
 * tenant (which a tenant-less unique key can make conflict) raises 42501
 * before any user expression sees it; the error ends the statement, and the
 * row lock, taken under the statement's (sub)transaction id, is void once
 * that (sub)transaction aborts.  The message names the table only.
 */
Datum
ti_conflict_check(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(1);
	pg_uuid_t	context;
	const char *relname;

	if (!ti_context_get(&context))
	{
		if (ti_unscoped_allowed())
			PG_RETURN_BOOL(true);
		relname = get_rel_name(relid);
		ti_audit("denied_no_context", relname, ERRCODE_INSUFFICIENT_PRIVILEGE,
				 "insert on conflict");
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context for table \"%s\"", relname ? relname : "?"),
				 errhint("Call tenant_isolation.login() first.")));
	}
	if (!PG_ARGISNULL(0) &&
		memcmp(PG_GETARG_UUID_P(0)->data, context.data, UUID_LEN) == 0)
		PG_RETURN_BOOL(true);

	relname = get_rel_name(relid);
	ti_audit("denied_write", relname, ERRCODE_INSUFFICIENT_PRIVILEGE,
			 "insert conflicts with a row of another tenant");
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("insert into table \"%s\" conflicts with a row of another tenant",
					relname ? relname : "?"),
			 errdetail("ON CONFLICT DO UPDATE cannot reach a row that is not visible in the current tenant context.")));
	PG_RETURN_BOOL(false);		/* keep the compiler quiet */
}
