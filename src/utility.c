/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  Utility commands on protected tables.
 *
 * What the planner never sees is handled here:
 *
 *	- TRUNCATE of a protected table is refused in a tenant context and, for
 *	  ordinary roles, without one (it would remove every tenant's rows).
 *	- COPY table TO in a tenant context is rewritten into
 *	  COPY (SELECT ... FROM ONLY table) TO, so that the planner scopes it;
 *	  row level security does the same for ordinary roles, but not for
 *	  superusers or BYPASSRLS roles.
 *	- COPY table FROM: PostgreSQL refuses COPY FROM into a table with row
 *	  level security, which the fail-closed fallback enables.  For roles
 *	  subject to it we run COPY FROM ourselves (same permission checks as
 *	  COPY), and the guard trigger checks every row.
 *	- In a tenant context, DDL on a protected table is refused: index
 *	  builds, table rewrites, triggers, rules and policies would run
 *	  expressions over every tenant's rows.
 *	- The pieces of a protection (guard trigger, fallback policy, forced row
 *	  level security, the tenant column) cannot be disabled, dropped or
 *	  renamed except through unprotect_table(); a superuser gets a WARNING
 *	  and an audit event instead of an error (pg_restore --clean).
 *	- A partition or inheritance child created or attached under a protected
 *	  table gets the fail-closed fallback too (it is scoped by the hooks at
 *	  once, through its ancestor).
 *	- Under a transaction-scoped context (login_local), nothing that could
 *	  hold the tenant's rows may outlive the transaction: holdable cursors
 *	  are refused and temporary tables are created ON COMMIT DROP.  The next
 *	  transaction on the connection may belong to another pooled client.
 *	- After RESET ALL, DISCARD and SET of the context, what the previous
 *	  tenant left behind is discarded (context.c); so is what a failed
 *	  login left, before any utility statement runs.
 *	- While a top-level utility statement runs, login() refuses a token
 *	  written literally into its text (context.c).
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/utility.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/copy.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "tenant_isolation.h"

bool		ti_internal_ddl = false;

/*
 * True while a top-level utility statement runs (CALL, DO, EXECUTE, ...):
 * context.c refuses a token written literally into its text.
 */
bool		ti_in_toplevel_utility = false;

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static void ti_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc);

void
ti_install_utility_hook(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ti_ProcessUtility;
}

/*
 * ti_protected_rangevar
 *		Relation info of a RangeVar when it names a protected relation.
 */
static TiRelInfo *
ti_protected_rangevar(RangeVar *rv)
{
	Oid			relid;
	TiRelInfo  *info;

	if (rv == NULL)
		return NULL;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid))
		return NULL;
	info = ti_lookup_rel(relid);
	return info->is_protected ? info : NULL;
}

static void
ti_deny_no_context(RangeVar *rv, const char *what)
{
	ti_audit("denied_no_context", rv->relname, ERRCODE_INSUFFICIENT_PRIVILEGE,
			 what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("no tenant context for table \"%s\"", rv->relname),
			 errdetail("Table \"%s\" is protected by tenant_isolation.",
					   rv->relname),
			 errhint("Call tenant_isolation.login() first.")));
}

static void
ti_deny_ddl(const char *relname, const char *what)
{
	/*
	 * Superusers are unrestricted by design (they could switch the triggers
	 * off with session_replication_role anyway); pg_restore --clean, run as
	 * one, drops the guard trigger and the fallback policy before the table.
	 * Let them, loudly.
	 */
	if (superuser())
	{
		ti_audit("protection_weakened", relname, 0, what);
		ereport(WARNING,
				(errmsg("tenant isolation of table \"%s\" weakened by a superuser: %s",
						relname, what),
				 errhint("Use tenant_isolation.unprotect_table() to remove a protection.")));
		return;
	}
	ti_audit("denied_ddl", relname, ERRCODE_INSUFFICIENT_PRIVILEGE, what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot %s of protected table \"%s\"", what, relname),
			 errhint("Use tenant_isolation.unprotect_table() first.")));
}

/*
 * ti_check_ddl_in_context
 *		Schema changes of a protected table are refused in a tenant context.
 *
 * CREATE INDEX, ALTER TABLE (defaults and USING expressions rewrite every
 * row), CLUSTER and REINDEX evaluate expressions over the rows of every
 * tenant, and triggers, rules and policies created now would run on other
 * tenants' statements later: in a context, any of them could hand another
 * tenant's rows to a function the session chose.  Migrations run outside
 * tenant contexts.
 */
static void
ti_check_ddl_in_context(RangeVar *rv, const char *what)
{
	if (rv == NULL || ti_internal_ddl || !ti_context_get(NULL))
		return;
	if (ti_protected_rangevar(rv) == NULL)
		return;
	ti_audit("denied_ddl", rv->relname, ERRCODE_INSUFFICIENT_PRIVILEGE, what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot %s protected table \"%s\" in a tenant context",
					what, rv->relname),
			 errdetail("It would run expressions over the rows of every tenant."),
			 errhint("Change the schema outside any tenant context.")));
}

/*
 * ti_check_truncate
 */
static void
ti_check_truncate(TruncateStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);

		if (ti_protected_rangevar(rv) == NULL)
			continue;
		if (ti_context_get(NULL))
		{
			ti_audit("denied_truncate", rv->relname,
					 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot truncate protected table \"%s\" in a tenant context",
							rv->relname),
					 errdetail("TRUNCATE would remove the rows of every tenant."),
					 errhint("Use DELETE to remove the rows of the current tenant.")));
		}
		if (!superuser())
			ti_deny_no_context(rv, "truncate");
	}
}

/*
 * ti_copy_to_query
 *		COPY table [(cols)] TO ...  =>  COPY (SELECT cols FROM ONLY table) TO
 */
static CopyStmt *
ti_copy_to_query(CopyStmt *stmt)
{
	CopyStmt   *newstmt = copyObject(stmt);
	SelectStmt *select = makeNode(SelectStmt);
	RangeVar   *from = copyObject(stmt->relation);
	List	   *targetList = NIL;
	ListCell   *lc;

	from->inh = false;
	if (stmt->attlist == NIL)
	{
		ColumnRef  *cr = makeNode(ColumnRef);
		ResTarget  *rt = makeNode(ResTarget);

		cr->fields = list_make1(makeNode(A_Star));
		cr->location = -1;
		rt->val = (Node *) cr;
		rt->location = -1;
		targetList = list_make1(rt);
	}
	else
	{
		foreach(lc, stmt->attlist)
		{
			ColumnRef  *cr = makeNode(ColumnRef);
			ResTarget  *rt = makeNode(ResTarget);

			cr->fields = list_make1(makeString(pstrdup(strVal(lfirst(lc)))));
			cr->location = -1;
			rt->name = pstrdup(strVal(lfirst(lc)));
			rt->val = (Node *) cr;
			rt->location = -1;
			targetList = lappend(targetList, rt);
		}
	}
	select->targetList = targetList;
	select->fromClause = list_make1(from);

	newstmt->relation = NULL;
	newstmt->attlist = NIL;
	newstmt->query = (Node *) select;
	return newstmt;
}

/*
 * ti_copy_from
 *		COPY FROM into a protected table for a role subject to row level
 *		security.  Same checks as COPY itself: INSERT privilege on the
 *		columns, server-side files only for their predefined roles, no
 *		writes in read-only transactions.  The guard trigger checks rows.
 */
static uint64
ti_copy_from(ParseState *pstate, CopyStmt *stmt)
{
	Relation	rel;
	ParseNamespaceItem *nsitem;
	RangeTblEntry *rte;
	List	   *attnums;
	ListCell   *lc;
	Node	   *whereClause = NULL;
	CopyFromState cstate;
	uint64		processed;

	if (stmt->filename != NULL)
	{
		if (stmt->is_program &&
			!has_privs_of_role(GetUserId(), ROLE_PG_EXECUTE_SERVER_PROGRAM))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an external program")));
		if (!stmt->is_program &&
			!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be superuser or have privileges of the pg_read_server_files role to COPY from a file")));
	}

	rel = table_openrv(stmt->relation, RowExclusiveLock);
	if (XactReadOnly && !rel->rd_islocaltemp)
		PreventCommandIfReadOnly("COPY FROM");

	nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock,
										   NULL, false, false);
	rte = nsitem->p_rte;
	rte->requiredPerms = ACL_INSERT;
	addNSItemToQuery(pstate, nsitem, false, true, true);
	attnums = CopyGetAttnums(RelationGetDescr(rel), rel, stmt->attlist);
	foreach(lc, attnums)
		rte->insertedCols = bms_add_member(rte->insertedCols,
										   lfirst_int(lc) - FirstLowInvalidHeapAttributeNumber);
	ExecCheckRTPerms(pstate->p_rtable, true);

	if (stmt->whereClause)
	{
		whereClause = transformExpr(pstate, stmt->whereClause,
									EXPR_KIND_COPY_WHERE);
		whereClause = coerce_to_boolean(pstate, whereClause, "WHERE");
		assign_expr_collations(pstate, whereClause);
		whereClause = eval_const_expressions(NULL, whereClause);
		whereClause = (Node *) canonicalize_qual((Expr *) whereClause, false);
		whereClause = (Node *) make_ands_implicit((Expr *) whereClause);
	}

	cstate = BeginCopyFrom(pstate, rel, whereClause, stmt->filename,
						   stmt->is_program, NULL, stmt->attlist,
						   stmt->options);
	processed = CopyFrom(cstate);
	EndCopyFrom(cstate);
	table_close(rel, NoLock);
	return processed;
}

/*
 * ti_check_alter_table
 *		Refuse the subcommands that would undo a protection.
 */
static void
ti_check_alter_table(AlterTableStmt *stmt)
{
	TiRelInfo  *info;
	ListCell   *lc;

	if (ti_internal_ddl)
		return;
	info = ti_protected_rangevar(stmt->relation);
	if (info == NULL)
		return;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		switch (cmd->subtype)
		{
			case AT_DisableRowSecurity:
			case AT_NoForceRowSecurity:
				ti_deny_ddl(stmt->relation->relname, "disable row level security");
				break;
			case AT_DisableTrigAll:
			case AT_DisableTrigUser:
				ti_deny_ddl(stmt->relation->relname, "disable the triggers");
				break;
			case AT_DisableTrig:
			case AT_EnableReplicaTrig:
				if (cmd->name && strcmp(cmd->name, TI_GUARD_TRIGGER) == 0)
					ti_deny_ddl(stmt->relation->relname, "disable the guard trigger");
				break;
			case AT_DropColumn:
			case AT_AlterColumnType:
				if (cmd->name && strcmp(cmd->name, info->tenant_column) == 0)
					ti_deny_ddl(stmt->relation->relname, "drop or retype the tenant column");
				break;
			default:
				break;
		}
	}
}

/*
 * ti_check_drop
 *		DROP TRIGGER tenant_isolation_guard / DROP POLICY
 *		tenant_isolation_fallback on a protected table.
 */
static void
ti_check_drop(DropStmt *stmt)
{
	ListCell   *lc;
	const char *ours;

	if (ti_internal_ddl)
		return;
	if (stmt->removeType == OBJECT_TRIGGER)
		ours = TI_GUARD_TRIGGER;
	else if (stmt->removeType == OBJECT_POLICY)
		ours = TI_FALLBACK_POLICY;
	else
		return;

	foreach(lc, stmt->objects)
	{
		List	   *names = (List *) lfirst(lc);
		RangeVar   *rv;

		if (list_length(names) < 2 ||
			strcmp(strVal(llast(names)), ours) != 0)
			continue;
		rv = makeRangeVarFromNameList(list_truncate(list_copy(names),
													list_length(names) - 1));
		if (ti_protected_rangevar(rv) != NULL)
			ti_deny_ddl(rv->relname, stmt->removeType == OBJECT_TRIGGER ?
						"drop the guard trigger" : "drop the fallback policy");
	}
}

/*
 * ti_check_rename
 */
static void
ti_check_rename(RenameStmt *stmt)
{
	TiRelInfo  *info;

	if (ti_internal_ddl || stmt->relation == NULL)
		return;
	if (stmt->renameType != OBJECT_COLUMN &&
		stmt->renameType != OBJECT_TRIGGER &&
		stmt->renameType != OBJECT_POLICY)
		return;
	info = ti_protected_rangevar(stmt->relation);
	if (info == NULL || stmt->subname == NULL)
		return;
	if ((stmt->renameType == OBJECT_COLUMN &&
		 strcmp(stmt->subname, info->tenant_column) == 0) ||
		(stmt->renameType == OBJECT_TRIGGER &&
		 strcmp(stmt->subname, TI_GUARD_TRIGGER) == 0) ||
		(stmt->renameType == OBJECT_POLICY &&
		 strcmp(stmt->subname, TI_FALLBACK_POLICY) == 0))
		ti_deny_ddl(stmt->relation->relname, "rename the tenant column, guard trigger or fallback policy");
}

/*
 * ti_protect_new_child
 *		A relation just became a partition or inheritance child.  If it is
 *		now covered by a protected ancestor, give it (and its own
 *		descendants) the fail-closed fallback, as protect_table() would.
 *
 * Runs the extension's own SQL as the bootstrap superuser: the fallback
 * functions are not executable by the role that ran the DDL.
 */
static void
ti_protect_new_child(RangeVar *rv)
{
	Oid			relid;
	Oid			save_userid;
	int			save_sec_context;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	CommandCounterIncrement();
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid) || !ti_lookup_rel(relid)->is_protected)
		return;

	values[0] = ObjectIdGetDatum(relid);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT tenant_isolation._apply_fallback(r), "
								  "tenant_isolation._invalidate(r) "
								  "FROM (SELECT $1::regclass AS r UNION "
								  "SELECT relid FROM pg_catalog.pg_partition_tree($1::regclass)) s",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not protect new child relation");
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
}

/*
 * ti_local_context_temp
 *		Temporary tables made under login_local() go away at COMMIT.
 */
static void
ti_local_context_temp(IntoClause *into, CreateStmt *create)
{
	RangeVar   *rv = into ? into->rel : create->relation;
	OnCommitAction *oncommit = into ? &into->onCommit : &create->oncommit;

	if (rv == NULL || rv->relpersistence != RELPERSISTENCE_TEMP)
		return;
	if (*oncommit == ONCOMMIT_PRESERVE_ROWS)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("temporary tables cannot preserve rows beyond a transaction-scoped tenant context"),
				 errhint("Use tenant_isolation.login() for a session-scoped context.")));
	if (*oncommit == ONCOMMIT_NOOP)
		*oncommit = ONCOMMIT_DROP;
}

/*
 * ti_ProcessUtility
 */
static void
ti_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	RangeVar   *new_child = NULL;
	bool		context_stmt = false;
	bool		save_toplevel = ti_in_toplevel_utility;

	if (!ti_extension_present() || !IsTransactionState())
		goto standard;

	/* what a previous tenant left is gone before anything runs */
	ti_ctx_statement_start(true);

	switch (nodeTag(parsetree))
	{
		case T_TruncateStmt:
			ti_check_truncate((TruncateStmt *) parsetree);
			break;

		case T_CopyStmt:
			{
				CopyStmt   *stmt = (CopyStmt *) parsetree;
				TiRelInfo  *info;

				if (stmt->relation == NULL)
					break;
				info = ti_protected_rangevar(stmt->relation);
				if (info == NULL)
					break;
				if (!ti_context_get(NULL) && !superuser())
					ti_deny_no_context(stmt->relation, stmt->is_from ? "copy from" : "copy to");
				if (!stmt->is_from && ti_context_get(NULL))
				{
					PlannedStmt *newpstmt = copyObject(pstmt);

					newpstmt->utilityStmt = (Node *) ti_copy_to_query(stmt);
					pstmt = newpstmt;
					readOnlyTree = false;
				}
				else if (stmt->is_from &&
						 check_enable_rls(RangeVarGetRelid(stmt->relation, NoLock, false),
										  InvalidOid, false) == RLS_ENABLED)
				{
					ParseState *pstate = make_parsestate(NULL);
					uint64		processed;

					pstate->p_sourcetext = queryString;
					pstate->p_queryEnv = queryEnv;
					processed = ti_copy_from(pstate, stmt);
					free_parsestate(pstate);
					if (qc)
						SetQueryCompletion(qc, CMDTAG_COPY, processed);
					return;
				}
			}
			break;

		case T_AlterTableStmt:
			{
				AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
				ListCell   *lc;

				ti_check_alter_table(stmt);
				ti_check_ddl_in_context(stmt->relation, "alter");
				foreach(lc, stmt->cmds)
				{
					AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

					if (cmd->subtype == AT_AttachPartition && cmd->def &&
						IsA(cmd->def, PartitionCmd))
						new_child = ((PartitionCmd *) cmd->def)->name;
					else if (cmd->subtype == AT_AddInherit)
						new_child = stmt->relation;
				}
			}
			break;

		case T_CreateStmt:
			{
				CreateStmt *stmt = (CreateStmt *) parsetree;

				if (ti_ctx_transaction_scoped())
				{
					pstmt = copyObject(pstmt);
					parsetree = pstmt->utilityStmt;
					readOnlyTree = false;
					stmt = (CreateStmt *) parsetree;
					ti_local_context_temp(NULL, stmt);
				}
				if (stmt->partbound != NULL || stmt->inhRelations != NIL)
					new_child = stmt->relation;
			}
			break;

		case T_DropStmt:
			ti_check_drop((DropStmt *) parsetree);
			break;

		case T_IndexStmt:
			ti_check_ddl_in_context(((IndexStmt *) parsetree)->relation,
									"create an index on");
			break;

		case T_CreateTrigStmt:
			ti_check_ddl_in_context(((CreateTrigStmt *) parsetree)->relation,
									"create a trigger on");
			break;

		case T_RuleStmt:
			ti_check_ddl_in_context(((RuleStmt *) parsetree)->relation,
									"create a rule on");
			break;

		case T_CreatePolicyStmt:
			ti_check_ddl_in_context(((CreatePolicyStmt *) parsetree)->table,
									"create a policy on");
			break;

		case T_AlterPolicyStmt:
			ti_check_ddl_in_context(((AlterPolicyStmt *) parsetree)->table,
									"alter a policy of");
			break;

		case T_ClusterStmt:
			ti_check_ddl_in_context(((ClusterStmt *) parsetree)->relation,
									"cluster");
			break;

		case T_ReindexStmt:
			if (((ReindexStmt *) parsetree)->kind == REINDEX_OBJECT_TABLE)
				ti_check_ddl_in_context(((ReindexStmt *) parsetree)->relation,
										"reindex");
			break;

		case T_RenameStmt:
			ti_check_rename((RenameStmt *) parsetree);
			break;

		case T_DeclareCursorStmt:
			if (ti_ctx_transaction_scoped() &&
				(((DeclareCursorStmt *) parsetree)->options & CURSOR_OPT_HOLD))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("holdable cursors cannot outlive a transaction-scoped tenant context"),
						 errhint("Use tenant_isolation.login() for a session-scoped context.")));
			break;

		case T_CreateTableAsStmt:
			if (ti_ctx_transaction_scoped())
			{
				pstmt = copyObject(pstmt);
				parsetree = pstmt->utilityStmt;
				readOnlyTree = false;
				ti_local_context_temp(((CreateTableAsStmt *) parsetree)->into, NULL);
			}
			break;

		case T_VariableSetStmt:
			context_stmt = true;
			break;

		case T_DiscardStmt:
			context_stmt = true;
			break;

		default:
			break;
	}

standard:
	if (context == PROCESS_UTILITY_TOPLEVEL)
		ti_in_toplevel_utility = true;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		ti_in_toplevel_utility = save_toplevel;
	}
	PG_END_TRY();
	if (new_child != NULL)
		ti_protect_new_child(new_child);
	if (context_stmt)
		ti_context_after_utility();
}
