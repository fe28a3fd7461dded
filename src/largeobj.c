/*-------------------------------------------------------------------------
 *
 * largeobj.c
 *	  Large objects in a tenant context.
 *
 * Large objects belong to no tenant: they have no tenant column to scope by.
 * In a tenant context an ordinary role can therefore neither create, open,
 * read, write, import, export nor unlink one, nor change, comment on or
 * enumerate one.  Superusers and sessions without a context are not
 * affected.  Four nets, each for what the one before cannot see:
 *
 *	- the server-side functions (lo_*, also through libpq's fast path) are
 *	  refused by the object-access hook OAT_FUNCTION_EXECUTE, which core
 *	  runs before every call of a function, builtins included;
 *	- the utility statements that name a large object (COMMENT ON, SECURITY
 *	  LABEL ON, GRANT/REVOKE ON, ALTER ... OWNER, ALTER EXTENSION ADD/DROP
 *	  LARGE OBJECT) are refused by ti_check_largeobject_utility before core
 *	  looks the object up: the lookup's "large object %u does not exist"
 *	  would otherwise tell which ids exist;
 *	- whatever else creates, alters or drops a large object (DROP OWNED,
 *	  REASSIGN OWNED, the lo extension's trigger calling be_lo_unlink
 *	  directly) fires the object-access hook for pg_largeobject
 *	  (OAT_POST_CREATE, OAT_POST_ALTER, OAT_DROP) and is refused there; the
 *	  error rolls the change back;
 *	- the catalogs that list large-object ids (pg_largeobject_metadata,
 *	  pg_largeobject, and pg_shdepend, whose rows with classid pg_largeobject
 *	  name every large object owned by, or granted to, a role that is not
 *	  pinned) are refused when the planner is about to scan them (planner.c
 *	  asks ti_is_largeobject_catalog), and so is pg_get_object_address(),
 *	  whose "does not exist" error probes ids one by one.
 *
 * What stays visible is documented in docs/isolation-model.md: comments and
 * security labels set on large objects outside a tenant context remain in
 * pg_description and pg_seclabel, which psql's \d+ needs and which hold no
 * tenant's rows.
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
#include "catalog/pg_shdepend.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
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
		case F_PG_GET_OBJECT_ADDRESS:	/* probes ids: "does not exist" */
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
	if (!ti_context_get(NULL) || ti_unscoped_allowed())
		return;
	ti_audit("denied_largeobject", what, ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("large objects are not available in a tenant context"),
			 errdetail("Large objects belong to no tenant."),
			 errhint("Store tenant data in bytea columns of a protected table.")));
}

/*
 * ti_is_largeobject_catalog
 *		Catalogs whose scan lists large-object ids.
 *
 * pg_shdepend is refused as a whole: a filter on classid would need a qual
 * the planner could reorder behind a user's function.  Nothing an
 * application does in a tenant context reads it (psql's describe commands
 * do not); DROP ROLE and friends read it with catalog scans, not the
 * planner.
 */
bool
ti_is_largeobject_catalog(Oid relid)
{
	return relid == LargeObjectMetadataRelationId ||
		relid == LargeObjectRelationId ||
		relid == SharedDependRelationId;
}

/*
 * ti_check_largeobject_utility
 *		Refuse a utility statement that names a large object, before core
 *		looks the object up (its "does not exist" error is an oracle).
 *
 * Called from the utility hook of denials.c for every utility statement;
 * cheap for all others (a tag test).
 */
void
ti_check_largeobject_utility(Node *parsetree)
{
	const char *what = NULL;

	switch (nodeTag(parsetree))
	{
		case T_CommentStmt:
			if (((CommentStmt *) parsetree)->objtype == OBJECT_LARGEOBJECT)
				what = "COMMENT ON LARGE OBJECT";
			break;
		case T_SecLabelStmt:
			if (((SecLabelStmt *) parsetree)->objtype == OBJECT_LARGEOBJECT)
				what = "SECURITY LABEL ON LARGE OBJECT";
			break;
		case T_GrantStmt:
			if (((GrantStmt *) parsetree)->objtype == OBJECT_LARGEOBJECT)
				what = ((GrantStmt *) parsetree)->is_grant ?
					"GRANT ON LARGE OBJECT" : "REVOKE ON LARGE OBJECT";
			break;
		case T_AlterOwnerStmt:
			if (((AlterOwnerStmt *) parsetree)->objectType == OBJECT_LARGEOBJECT)
				what = "ALTER LARGE OBJECT OWNER";
			break;
		case T_AlterExtensionContentsStmt:
			if (((AlterExtensionContentsStmt *) parsetree)->objtype == OBJECT_LARGEOBJECT)
				what = "ALTER EXTENSION LARGE OBJECT";
			break;
		default:
			break;
	}
	if (what != NULL)
		ti_check_largeobject_access(what);
}

static void
ti_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				 int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_FUNCTION_EXECUTE && classId == ProcedureRelationId &&
		ti_is_largeobject_function(objectId))
	{
		if (objectId == F_PG_GET_OBJECT_ADDRESS)
		{
			if (!ti_context_get(NULL) || ti_unscoped_allowed())
				return;
			ti_audit("denied_largeobject", "pg_get_object_address",
					 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("pg_get_object_address() is not available in a tenant context"),
					 errdetail("Its errors tell which large objects exist.")));
		}
		ti_check_largeobject_access("large object function");
	}

	/*
	 * Whatever created, changed or dropped a large object without one of
	 * the functions above (DROP OWNED, REASSIGN OWNED, C code calling
	 * be_lo_unlink directly): the error rolls it back.
	 */
	if (classId == LargeObjectRelationId &&
		(access == OAT_POST_CREATE || access == OAT_POST_ALTER ||
		 access == OAT_DROP))
		ti_check_largeobject_access(access == OAT_DROP ? "drop large object" :
									access == OAT_POST_CREATE ? "create large object" :
									"alter large object");
}

void
ti_install_largeobject_hooks(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = ti_object_access;
}
