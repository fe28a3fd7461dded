/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The audit trail of denied and privileged access.
 *
 * Today: a structured LOG line per event.  The durable trail (a ring in
 * shared memory written at the moment of the event, flushed by a background
 * worker into tenant_isolation.audit_log so that events of rolled-back
 * transactions survive) is the audit issue's.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/audit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "tenant_isolation.h"

PG_FUNCTION_INFO_V1(ti_audit_sql);

void
ti_audit_init(void)
{
}

Size
ti_audit_shmem_size(void)
{
	return 0;
}

void
ti_audit_shmem_startup(void)
{
}

/*
 * ti_audit
 *		Record a security event.  The detail must never contain a token, a
 *		key or another tenant's row values.
 */
void
ti_audit(const char *kind, const char *object, int sqlerrcode,
		 const char *detail)
{
	pg_uuid_t	tenant;
	char	   *tenant_str = NULL;
	const char *user;

	if (ti_context_get(&tenant))
		tenant_str = ti_uuid_to_cstring(&tenant);
	user = GetUserNameFromId(GetUserId(), true);

	ereport(LOG,
			(errmsg("tenant_isolation audit: kind=%s tenant=%s object=%s sqlstate=%s user=%s detail=%s",
					kind,
					tenant_str ? tenant_str : "none",
					object ? object : "",
					sqlerrcode ? unpack_sql_state(sqlerrcode) : "00000",
					user ? user : "?",
					detail ? detail : ""),
			 errhidestmt(true)));
}

/*
 * _audit(kind, object, detail): SQL entry to ti_audit for the provisioning
 * functions.  EXECUTE is revoked from PUBLIC.
 */
Datum
ti_audit_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	ti_audit(text_to_cstring(PG_GETARG_TEXT_PP(0)),
			 PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
			 0,
			 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	PG_RETURN_VOID();
}
