/*-------------------------------------------------------------------------
 *
 * largeobj.c
 *	  Large objects in a tenant context.
 *
 * Large objects belong to no tenant: they have no tenant column to scope by.
 * In a tenant context an ordinary role can therefore neither create, open,
 * read, write, import, export nor unlink one (the server-side functions are
 * intercepted with fmgr hooks, which also cover libpq's fast-path calls),
 * nor enumerate them through pg_largeobject_metadata or pg_largeobject
 * (refused when the planner is about to scan them, planner.c).  Superusers
 * and sessions without a context are not affected.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/largeobj.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/objectaccess.h"
#include "catalog/pg_largeobject.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_largeobject_metadata.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"

#include "tenant_isolation.h"

static object_access_hook_type prev_object_access_hook = NULL;

static bool
ti_is_largeobject_function(Oid fn_oid)
{
	switch (fn_oid)
	{
		case F_LO_CREATE:
		case F_LO_CREAT:
		case F_LO_OPEN:
		case F_LO_CLOSE:
		case F_LOREAD:
		case F_LOWRITE:
		case F_LO_LSEEK:
		case F_LO_LSEEK64:
		case F_LO_TELL:
		case F_LO_TELL64:
		case F_LO_TRUNCATE:
		case F_LO_TRUNCATE64:
		case F_LO_UNLINK:
		case F_LO_IMPORT_TEXT:
		case F_LO_IMPORT_TEXT_OID:
		case F_LO_EXPORT:
		case F_LO_FROM_BYTEA:
		case F_LO_GET_OID:
		case F_LO_GET_OID_INT8_INT4:
		case F_LO_PUT:
			return true;
		default:
			return false;
	}
}

/*
 * ti_check_largeobject_access
 *		Raise the 42501 error when large objects are out of bounds.
 */
void
ti_check_largeobject_access(const char *what)
{
	if (!ti_context_get(NULL) || superuser())
		return;
	ti_audit("denied_largeobject", what, ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("large objects are not available in a tenant context"),
			 errdetail("Large objects belong to no tenant."),
			 errhint("Store tenant data in bytea columns of a protected table.")));
}

bool
ti_is_largeobject_catalog(Oid relid)
{
	return relid == LargeObjectMetadataRelationId ||
		relid == LargeObjectRelationId;
}

static void
ti_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				 int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_FUNCTION_EXECUTE && classId == ProcedureRelationId &&
		ti_is_largeobject_function(objectId))
		ti_check_largeobject_access("large object function");
}

void
ti_install_largeobject_hooks(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = ti_object_access;
}
