/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  Utility commands on protected tables.
 *
 * What the planner never sees is handled here:
 *
 *	- TRUNCATE of a protected table is refused in a tenant context and, for
 *	  ordinary roles, without one (it would remove every tenant's rows).
 *	  It is judged on every relation the command actually truncates, from
 *	  the object-access hook (CASCADE, inheritance children, partitions).
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
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "optimizer/optimizer.h"
#include "nodes/plannodes.h"
#include "commands/copy.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_func.h"
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
static object_access_hook_type prev_object_access_hook = NULL;

static void ti_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc);
static void ti_truncate_object_access(ObjectAccessType access, Oid classId,
									  Oid objectId, int subId, void *arg);

void
ti_install_utility_hook(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ti_ProcessUtility;
	prev_object_access_hook = object_access_hook;
	object_access_hook = ti_truncate_object_access;
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
	if (ti_unscoped_allowed())
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
 * ti_check_truncate_rel
 *		Judge one relation that TRUNCATE is about to empty.
 *
 * Called from the object-access hook, which PostgreSQL invokes
 * (InvokeObjectTruncateHook in truncate_check_rel) for every relation the
 * command really truncates: the named ones, their inheritance children and
 * partitions, and every table TRUNCATE ... CASCADE pulls in through foreign
 * keys.  Judging the statement's own list instead would miss the last
 * three: "TRUNCATE global_table CASCADE" or TRUNCATE of an unprotected
 * inheritance parent would empty protected tables for every tenant.
 */
static void
ti_check_truncate_rel(Oid relid)
{
	const char *relname;

	if (!ti_extension_present() || !ti_lookup_rel(relid)->is_protected)
		return;
	relname = get_rel_name(relid);
	if (ti_context_get(NULL))
	{
		ti_audit("denied_truncate", relname,
				 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot truncate protected table \"%s\" in a tenant context",
						relname),
				 errdetail("TRUNCATE would remove the rows of every tenant."),
				 errhint("Use DELETE to remove the rows of the current tenant.")));
	}
	if (!ti_unscoped_allowed())
	{
		ti_audit("denied_no_context", relname, ERRCODE_INSUFFICIENT_PRIVILEGE,
				 "truncate");
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context for table \"%s\"", relname),
				 errdetail("Table \"%s\" is protected by tenant_isolation.",
						   relname),
				 errhint("Call tenant_isolation.login() first.")));
	}
}

static void
ti_truncate_object_access(ObjectAccessType access, Oid classId, Oid objectId,
						  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_TRUNCATE && classId == RelationRelationId)
		ti_check_truncate_rel(objectId);
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
 * ti_copy_check_late_triggers
 *		COPY FROM has no WITH CHECK stage: the guard trigger is the last word
 *		on a row only if no other BEFORE ROW INSERT trigger fires after it
 *		(triggers fire in name order) and could change the tenant column.
 *		INSERT checks the final row again with the policy's WITH CHECK qual;
 *		COPY FROM cannot, so such a table takes INSERT instead.  Partitions
 *		that rows may be routed to count too.
 */
static void
ti_copy_check_late_triggers(Relation rel)
{
	List	   *rels;
	ListCell   *lc;
	Oid			guard_fn = LookupFuncName(list_make2(makeString("tenant_isolation"),
													 makeString("guard_trigger")),
										  0, NULL, true);

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		rels = find_all_inheritors(RelationGetRelid(rel), RowExclusiveLock, NULL);
	else
		rels = list_make1_oid(RelationGetRelid(rel));

	foreach(lc, rels)
	{
		Relation	r = (lfirst_oid(lc) == RelationGetRelid(rel)) ? rel :
			table_open(lfirst_oid(lc), NoLock);
		TriggerDesc *td = r->trigdesc;
		bool		after_guard = false;
		int			i;

		for (i = 0; td != NULL && i < td->numtriggers; i++)
		{
			Trigger    *t = &td->triggers[i];

			/*
			 * The guard: its name (tenant_isolation_guard_<shard> on a Citus
			 * shard) and its function, so that a trigger merely named like
			 * the guard of a shard is not taken for it.
			 */
			if (ti_is_guard_trigger_name(t->tgname) && t->tgfoid == guard_fn)
			{
				after_guard = true;
				continue;
			}
			if (after_guard && t->tgenabled != TRIGGER_DISABLED &&
				TRIGGER_FOR_ROW(t->tgtype) && TRIGGER_FOR_BEFORE(t->tgtype) &&
				TRIGGER_FOR_INSERT(t->tgtype))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("COPY FROM into protected table \"%s\" is not supported while trigger \"%s\" fires after the tenant guard",
								RelationGetRelationName(r), t->tgname),
						 errdetail("COPY FROM cannot check the tenant of a row after the triggers that run after the guard."),
						 errhint("Use INSERT, or rename the trigger so that it sorts before \"%s\".",
								 TI_GUARD_TRIGGER)));
		}
		if (r != rel)
			table_close(r, NoLock);
	}
}

/*
 * ti_copy_from
 *		COPY FROM into a protected table for a role subject to row level
 *		security, which PostgreSQL refuses (the fail-closed fallback forces
 *		row level security on the table).
 *
 * The statement is checked exactly as DoCopy (commands/copy.c, PostgreSQL
 * 15) checks the relation branch of COPY FROM, in the same order and with
 * the same messages, up to the row security test that would refuse it; the
 * rows are then read, filtered, defaulted, routed, constrained and inserted
 * by PostgreSQL's own BeginCopyFrom/CopyFrom, so parsing, triggers, CHECK
 * and partition constraints are core's.  The regress suite "leaks" runs the
 * same COPY statements against an unprotected twin table and expects the
 * same outcome (parity), so a drift of this prologue shows there.
 *
 * What is added: the guard trigger checks every row's tenant (BEFORE ROW,
 * in CopyFrom); no BEFORE ROW trigger may run after it (there is no WITH
 * CHECK stage in COPY); the statement counts toward the tenant's limits as
 * an INSERT of the rows it loaded (rate, active statements, row quota); and
 * it counts as a running statement on a protected table, so that a trigger
 * or default cannot switch the tenant context in the middle of it.
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
	uint64		processed = 0;
	QueryDesc  *qd;
	PlannedStmt *ps;
	ModifyTable *mt;

	/* === as DoCopy: server files and programs need their roles === */
	if (stmt->filename != NULL)
	{
		if (stmt->is_program)
		{
			if (!has_privs_of_role(GetUserId(), ROLE_PG_EXECUTE_SERVER_PROGRAM))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an external program"),
						 errhint("Anyone can COPY to stdout or from stdin. "
								 "psql's \\copy command also works for anyone.")));
		}
		else if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be superuser or have privileges of the pg_read_server_files role to COPY from a file"),
					 errhint("Anyone can COPY to stdout or from stdin. "
							 "psql's \\copy command also works for anyone.")));
	}

	/* === as DoCopy: open, range table entry, WHERE, columns, privileges === */
	rel = table_openrv(stmt->relation, RowExclusiveLock);
	nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock,
										   NULL, false, false);
	rte = nsitem->p_rte;
	rte->requiredPerms = ACL_INSERT;

	if (stmt->whereClause)
	{
		Bitmapset  *expr_attrs = NULL;
		int			i;

		addNSItemToQuery(pstate, nsitem, false, true, true);
		whereClause = transformExpr(pstate, stmt->whereClause,
									EXPR_KIND_COPY_WHERE);
		whereClause = coerce_to_boolean(pstate, whereClause, "WHERE");
		assign_expr_collations(pstate, whereClause);

		/* generated columns are not computed yet when WHERE runs */
		pull_varattnos(whereClause, 1, &expr_attrs);
		if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, expr_attrs))
		{
			expr_attrs = bms_add_range(expr_attrs,
									   1 - FirstLowInvalidHeapAttributeNumber,
									   RelationGetNumberOfAttributes(rel) - FirstLowInvalidHeapAttributeNumber);
			expr_attrs = bms_del_member(expr_attrs, 0 - FirstLowInvalidHeapAttributeNumber);
		}
		i = -1;
		while ((i = bms_next_member(expr_attrs, i)) >= 0)
		{
			AttrNumber	attno = i + FirstLowInvalidHeapAttributeNumber;

			if (attno > 0 &&
				TupleDescAttr(RelationGetDescr(rel), attno - 1)->attgenerated)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
						errmsg("generated columns are not supported in COPY FROM WHERE conditions"),
						errdetail("Column \"%s\" is a generated column.",
								  get_attname(RelationGetRelid(rel), attno, false)));
		}

		whereClause = eval_const_expressions(NULL, whereClause);
		whereClause = (Node *) canonicalize_qual((Expr *) whereClause, false);
		whereClause = (Node *) make_ands_implicit((Expr *) whereClause);
	}

	attnums = CopyGetAttnums(RelationGetDescr(rel), rel, stmt->attlist);
	foreach(lc, attnums)
		rte->insertedCols = bms_add_member(rte->insertedCols,
										   lfirst_int(lc) - FirstLowInvalidHeapAttributeNumber);
	ExecCheckRTPerms(pstate->p_rtable, true);

	/* (DoCopy refuses here: "COPY FROM not supported with row-level security") */

	/* === as DoCopy: read-only transactions === */
	if (XactReadOnly && !rel->rd_islocaltemp)
		PreventCommandIfReadOnly("COPY FROM");

	/* === added: the tenant's view of it === */
	ti_copy_check_late_triggers(rel);

	/*
	 * The statement as limits.c sees an INSERT into the table: a one-entry
	 * range table, the table as result relation, a plain ModifyTable (so the
	 * row count is exact), and es_processed set to the rows loaded.
	 */
	mt = makeNode(ModifyTable);
	mt->operation = CMD_INSERT;
	mt->onConflictAction = ONCONFLICT_NONE;
	ps = makeNode(PlannedStmt);
	ps->commandType = CMD_INSERT;
	ps->canSetTag = true;
	ps->planTree = (Plan *) mt;
	ps->rtable = pstate->p_rtable;
	ps->resultRelations = list_make1_int(1);
	qd = (QueryDesc *) palloc0(sizeof(QueryDesc));
	qd->operation = CMD_INSERT;
	qd->plannedstmt = ps;
	qd->sourceText = pstate->p_sourcetext;
	qd->estate = CreateExecutorState();
	ti_limits_executor_start(qd);

	ti_protected_running++;
	PG_TRY();
	{
		cstate = BeginCopyFrom(pstate, rel, whereClause, stmt->filename,
							   stmt->is_program, NULL, stmt->attlist,
							   stmt->options);
		processed = CopyFrom(cstate);
		EndCopyFrom(cstate);
	}
	PG_FINALLY();
	{
		ti_protected_running--;
	}
	PG_END_TRY();

	qd->estate->es_processed = processed;
	ti_limits_executor_end(qd);
	FreeExecutorState(qd->estate);

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
				if (cmd->name && ti_is_guard_trigger_name(cmd->name))
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
			(stmt->removeType == OBJECT_TRIGGER ?
			 !ti_is_guard_trigger_name(strVal(llast(names))) :
			 strcmp(strVal(llast(names)), ours) != 0))
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
		 ti_is_guard_trigger_name(stmt->subname)) ||
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
	int			citus_nest = 0;

	if (!ti_extension_present() || !IsTransactionState())
		goto standard;

	/* the extension's own DDL on a Citus table (citus.c) */
	if (ti_internal_ddl && ti_citus_internal_ddl(parsetree, &citus_nest))
		return;

	/* what a previous tenant left is gone before anything runs */
	ti_ctx_statement_start(true);

	switch (nodeTag(parsetree))
	{
		case T_CopyStmt:
			{
				CopyStmt   *stmt = (CopyStmt *) parsetree;
				TiRelInfo  *info;

				if (stmt->relation == NULL)
					break;
				info = ti_protected_rangevar(stmt->relation);
				if (info == NULL)
					break;
				if (!ti_context_get(NULL) && !ti_unscoped_allowed())
					ti_deny_no_context(stmt->relation, stmt->is_from ? "copy from" : "copy to");
				/* Citus' COPY FROM sends rows to the workers (citus.c) */
				if (stmt->is_from)
					ti_citus_copy_from_context(RangeVarGetRelid(stmt->relation, NoLock, false));
				if (!stmt->is_from && ti_context_get(NULL))
				{
					PlannedStmt *newpstmt = copyObject(pstmt);

					newpstmt->utilityStmt = (Node *) ti_copy_to_query(stmt);
					pstmt = newpstmt;
					readOnlyTree = false;
				}
				else if (stmt->is_from &&
						 check_enable_rls(RangeVarGetRelid(stmt->relation, NoLock, false),
										  InvalidOid, false) == RLS_ENABLED &&
						 !ti_citus_is_distributed(RangeVarGetRelid(stmt->relation, NoLock, false)))
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
	ti_citus_internal_ddl_done(citus_nest);
	if (new_child != NULL)
		ti_protect_new_child(new_child);
	if (context_stmt)
		ti_context_after_utility();
}
