/*-------------------------------------------------------------------------
 *
 * denials.c
 *	  Refusals that PostgreSQL makes on the extension's behalf, audited
 *	  before they happen; and the utility statements on large objects.
 *
 * The tenant context and the extension's security settings are PGC_SUSET
 * variables: when an ordinary role tries to set one, set_config_option()
 * refuses it with "permission denied to set parameter" before any hook or
 * check function of ours runs.  Every such attempt is a forged context or
 * a weakened setting, so it must leave an audit event (contract: every
 * denied attempt is audited).  The attempt is seen where it enters:
 *
 *	- SET, SET LOCAL, RESET, SET ... FROM CURRENT, ALTER ROLE/DATABASE ...
 *	  SET/RESET, ALTER SYSTEM, and the SET clauses of CREATE/ALTER FUNCTION
 *	  are utility statements: this file's ProcessUtility hook audits them
 *	  before calling the next hook;
 *	- set_config() is a builtin function, and builtins bypass the fmgr
 *	  hooks; the object-access hook runs before the call but does not see
 *	  the arguments.  So the planner hook of this file replaces every call of
 *	  set_config() whose name may be one of ours (a constant with our prefix,
 *	  or anything not constant) by tenant_isolation._set_config(), which
 *	  makes the same EXECUTE check, audits the attempt when it will be
 *	  refused, and then calls set_config()'s own C function with the same
 *	  arguments, so core decides and words the refusal exactly as before.
 *	  CALL arguments are not planned; the utility hook rewrites them the same
 *	  way.
 *
 * "Will be refused" is decided with core's own rule (set_config_option in
 * PostgreSQL 15): a PGC_SUSET variable can be set by a role that is not a
 * superuser only with the SET privilege on the parameter (pg_parameter_acl).
 * So the event is written exactly when core raises the error right after.
 * A superuser's SET with a value our check hook refuses is audited by the
 * check hook (context.c).
 *
 * What is not seen: set_config() inside the body of a SQL function that the
 * planner inlines (its body is parsed after this hook ran), and libpq's
 * fast-path calls of set_config().  PostgreSQL still refuses both; they
 * leave no audit event (docs/audit.md).  A forged setting in the startup
 * packet (-c tenant_isolation.tenant_id=...) fails the connection with
 * FATAL in the server log, before any database is joined.
 *
 * The same holds for the extension's administrator-only functions and
 * relations (assume_tenant aside, whose own check is the gate): an ordinary
 * role calling create_tenant() or reading audit_log is refused by core's
 * EXECUTE or SELECT check in ExecutorStart, before any code of ours.  The
 * ExecutorStart hook of this file looks first: every function of the
 * extension's schema that the plan depends on (the plan's invalItems record
 * each function it calls) and every relation of that schema in its range
 * table, checked with core's own rules (pg_proc_aclcheck as GetUserId();
 * pg_class_aclmask, then any column privilege, as checkAsUser or
 * GetUserId, like ExecCheckRTEPerms).  What fails is audited just before
 * core refuses it.  Views are checked at plan time as well: PostgreSQL 15
 * checks their privileges in subquery_planner.  COPY and TRUNCATE check
 * privileges without the executor; the utility hook looks at them.  Cost
 * for a role that is not a superuser: a walk of the query tree at planning,
 * and one syscache lookup (the relation's schema) per range table entry at
 * executor start.  One dependency is not a call: _tenant_dependency, which
 * tenant-scoped plans record for invalidation; it is skipped.  (A call in
 * the part of a generic plan that initial partition pruning removes is not
 * initialised, hence not refused: its event would be the one false alarm.)
 *
 * The utility hook is chained on its own rather than added to utility.c's:
 * it must run for every statement (also where utility.c returns early, and
 * before its checks), and keeping it apart keeps the two independent.  The
 * cost for other statements is one tag test.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/denials.c
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
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "parser/parse_func.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "tenant_isolation.h"

#define TI_GUC_PREFIX		"tenant_isolation."
#define TI_GUC_PREFIX_LEN	(sizeof(TI_GUC_PREFIX) - 1)

PG_FUNCTION_INFO_V1(ti_set_config);

static void ti_audit_refused_relation(RangeTblEntry *rte);

static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static planner_hook_type prev_planner_hook = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;

/*
 * The functions of the extension's schema with the PROCOID hash value under
 * which plans record them; rebuilt after any change of pg_proc or
 * pg_namespace (the callbacks only mark it stale).
 */
static bool ti_ext_funcs_valid = false;
static Oid	ti_ext_nsp = InvalidOid;
static int	ti_ext_nfuncs = 0;
static Oid *ti_ext_func_oids = NULL;
static uint32 *ti_ext_func_hashes = NULL;

/*
 * ti_find_guc
 *		Our variable of that name (case-insensitive, like GUC lookups), or
 *		NULL.  Only names with our prefix get here: the loop is rare.
 */
static struct config_generic *
ti_find_guc(const char *name)
{
	struct config_generic **vars;
	int			n;
	int			i;

	if (name == NULL || pg_strncasecmp(name, TI_GUC_PREFIX, TI_GUC_PREFIX_LEN) != 0)
		return NULL;
	vars = get_guc_variables();
	n = GetNumConfigOptions();
	for (i = 0; i < n; i++)
	{
		if (pg_strcasecmp(vars[i]->name, name) == 0)
			return vars[i];
	}
	return NULL;
}

/*
 * ti_audit_refused_setting
 *		Audit an attempt to set one of our variables that core is about to
 *		refuse for lack of privilege.  how says which way (SET, set_config,
 *		ALTER ROLE SET, ...).  Never raises an error itself.
 *
 * mode is ACL_SET, or ACL_ALTER_SYSTEM for ALTER SYSTEM.  The rule is core's:
 * superusers may; others need the privilege on the parameter, and for SET
 * only PGC_SUSET variables need it (the others are PGC_SIGHUP or
 * PGC_POSTMASTER, which nobody can SET: not a matter of privilege).
 */
static void
ti_audit_refused_setting(const char *name, AclMode mode, const char *how)
{
	struct config_generic *gconf = ti_find_guc(name);

	if (gconf == NULL || superuser())
		return;
	if (mode == ACL_SET && gconf->context != PGC_SUSET)
		return;
	if (pg_parameter_aclcheck(gconf->name, GetUserId(), mode) == ACLCHECK_OK)
		return;
	ti_audit(strcmp(gconf->name, "tenant_isolation.tenant_id") == 0 ||
			 strcmp(gconf->name, "tenant_isolation.claims") == 0 ?
			 "denied_set_context" : "denied_setting",
			 gconf->name, ERRCODE_INSUFFICIENT_PRIVILEGE, how);
}

/*
 * ti_audit_function_set_clauses
 *		CREATE/ALTER FUNCTION ... SET var = value: core validates the value
 *		with the same permission rule when it stores it.
 */
static void
ti_audit_function_set_clauses(List *options, const char *how)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (IsA(def, DefElem) && strcmp(def->defname, "set") == 0 &&
			def->arg != NULL && IsA(def->arg, VariableSetStmt))
		{
			VariableSetStmt *vs = (VariableSetStmt *) def->arg;

			if (vs->kind != VAR_RESET_ALL)
				ti_audit_refused_setting(vs->name, ACL_SET, how);
		}
	}
}

/*
 * ti_audit_setting_utility
 *		The utility statements that set variables.
 */
static void
ti_audit_setting_utility(Node *parsetree)
{
	VariableSetStmt *vs = NULL;
	AclMode		mode = ACL_SET;
	const char *how = NULL;

	switch (nodeTag(parsetree))
	{
		case T_VariableSetStmt:
			vs = (VariableSetStmt *) parsetree;
			if (vs->kind == VAR_RESET || vs->kind == VAR_SET_DEFAULT)
				how = vs->is_local ? "SET LOCAL ... TO DEFAULT" : "RESET";
			else
				how = vs->is_local ? "SET LOCAL" : "SET";
			break;
		case T_AlterRoleSetStmt:
			vs = ((AlterRoleSetStmt *) parsetree)->setstmt;
			how = "ALTER ROLE SET";
			break;
		case T_AlterDatabaseSetStmt:
			vs = ((AlterDatabaseSetStmt *) parsetree)->setstmt;
			how = "ALTER DATABASE SET";
			break;
		case T_AlterSystemStmt:
			vs = ((AlterSystemStmt *) parsetree)->setstmt;
			mode = ACL_ALTER_SYSTEM;
			how = "ALTER SYSTEM";
			break;
		case T_CreateFunctionStmt:
			ti_audit_function_set_clauses(((CreateFunctionStmt *) parsetree)->options,
										  "CREATE FUNCTION ... SET");
			return;
		case T_AlterFunctionStmt:
			ti_audit_function_set_clauses(((AlterFunctionStmt *) parsetree)->actions,
										  "ALTER FUNCTION ... SET");
			return;
		default:
			return;
	}
	if (vs == NULL || vs->kind == VAR_RESET_ALL || vs->kind == VAR_SET_MULTI)
		return;
	ti_audit_refused_setting(vs->name, mode, how);
}

/*
 * ti_may_name_ours
 *		May this set_config() name argument be one of our variables?  A
 *		constant is decided now; anything else only at run time.
 */
static bool
ti_may_name_ours(Node *arg)
{
	Const	   *c;
	char	   *name;
	bool		ours;

	if (arg == NULL || !IsA(arg, Const))
		return true;
	c = (Const *) arg;
	if (c->constisnull || c->consttype != TEXTOID)
		return !c->constisnull;
	name = TextDatumGetCString(c->constvalue);
	ours = pg_strncasecmp(name, TI_GUC_PREFIX, TI_GUC_PREFIX_LEN) == 0;
	pfree(name);
	return ours;
}

typedef struct TiSetConfigWalk
{
	Oid			wrapper;		/* tenant_isolation._set_config, once found */
	bool		looked_up;
	bool		check_views;	/* audit views refused at plan time */
} TiSetConfigWalk;

/*
 * ti_set_config_walker
 *		Point every set_config() call that may name one of our variables at
 *		tenant_isolation._set_config() (same arguments, same result type).
 *		Edits the tree in place: the planner and ExecuteCallStmt get their
 *		own copies.
 */
static bool
ti_set_config_walker(Node *node, TiSetConfigWalk *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		/*
		 * PostgreSQL 15 checks the privileges on views while planning
		 * (subquery_planner, for the range table of each query level after
		 * subqueries are pulled up), so a refused view is audited here; the
		 * executor's check (ExecutorStart below) covers the rest.  Seen from
		 * every level at once, a view in a subquery the planner never plans
		 * could be audited here and again by the executor: a duplicate, not
		 * a miss.
		 */
		if (w->check_views)
		{
			ListCell   *lc;

			foreach(lc, ((Query *) node)->rtable)
			{
				RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

				if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_VIEW)
					ti_audit_refused_relation(rte);
			}
		}
		return query_tree_walker((Query *) node, ti_set_config_walker, w, 0);
	}
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) node;

		if (f->funcid == F_SET_CONFIG && list_length(f->args) == 3 &&
			ti_may_name_ours(linitial(f->args)))
		{
			if (!w->looked_up)
			{
				Oid			argtypes[3] = {TEXTOID, TEXTOID, BOOLOID};

				w->wrapper = LookupFuncName(list_make2(makeString(TI_SCHEMA),
													   makeString("_set_config")),
											3, argtypes, true);
				w->looked_up = true;
			}
			if (OidIsValid(w->wrapper))
				f->funcid = w->wrapper;
		}
	}
	return expression_tree_walker(node, ti_set_config_walker, w);
}

/*
 * ti_denials_planner
 *		Route set_config() of our variables through the auditing wrapper.
 */
static PlannedStmt *
ti_denials_planner(Query *parse, const char *query_string, int cursorOptions,
				   ParamListInfo boundParams)
{
	if (ti_extension_present())
	{
		TiSetConfigWalk w = {InvalidOid, false, !superuser()};

		(void) ti_set_config_walker((Node *) parse, &w);
	}
	if (prev_planner_hook)
		return prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/*
 * ti_audit_refused_utility
 *		COPY table and TRUNCATE check the privileges on the extension's
 *		tables without the executor: the same rule, before core applies it.
 *		(Other commands on the extension's objects need their ownership:
 *		PostgreSQL's ordinary access control, not audited.)
 */
static void
ti_audit_refused_utility(Node *parsetree)
{
	RangeTblEntry rte;
	List	   *rels = NIL;
	ListCell   *lc;

	memset(&rte, 0, sizeof(rte));
	rte.type = T_RangeTblEntry;
	rte.rtekind = RTE_RELATION;
	if (IsA(parsetree, CopyStmt) && ((CopyStmt *) parsetree)->relation != NULL)
	{
		rels = list_make1(((CopyStmt *) parsetree)->relation);
		rte.requiredPerms = ((CopyStmt *) parsetree)->is_from ? ACL_INSERT : ACL_SELECT;
	}
	else if (IsA(parsetree, TruncateStmt))
	{
		rels = ((TruncateStmt *) parsetree)->relations;
		rte.requiredPerms = ACL_TRUNCATE;
	}
	if (rels == NIL || superuser())
		return;
	foreach(lc, rels)
	{
		rte.relid = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);
		if (OidIsValid(rte.relid))
			ti_audit_refused_relation(&rte);
	}
}

/*
 * ti_denials_ProcessUtility
 *		Audit refused settings, refuse statements on large objects in a
 *		tenant context, route CALL arguments' set_config() like the planner.
 */
static void
ti_denials_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
						  bool readOnlyTree, ProcessUtilityContext context,
						  ParamListInfo params, QueryEnvironment *queryEnv,
						  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsTransactionState() && ti_extension_present())
	{
		ti_check_largeobject_utility(parsetree);
		ti_audit_setting_utility(parsetree);
		ti_audit_refused_utility(parsetree);
		if (IsA(parsetree, CallStmt))
		{
			TiSetConfigWalk w = {InvalidOid, false, false};

			pstmt = copyObject(pstmt);
			readOnlyTree = false;
			(void) ti_set_config_walker((Node *) ((CallStmt *) pstmt->utilityStmt)->funcexpr,
										&w);
		}
	}

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * ti_ext_funcs_inval
 *		Syscache callback: the set of the extension's functions may change.
 */
static void
ti_ext_funcs_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	/*
	 * context.c invalidates tenant plans by calling the pg_proc callbacks
	 * for _tenant_dependency or _current_tenant_uuid, on tenant switches:
	 * pg_proc did not change, and a rebuild (a scan of pg_proc, about a
	 * million instructions) on every switch would dominate a short
	 * transaction (issue 17).
	 */
	if (cacheid == PROCOID && hashvalue != 0 && ti_is_plan_marker_hash(hashvalue))
		return;
	ti_ext_funcs_valid = false;
}

/*
 * ti_ext_funcs_build
 *		List the functions of the extension's schema with their hash values.
 *		A heap scan of pg_proc (a few thousand rows), only after a change of
 *		pg_proc and only when a plan depends on some non-builtin function.
 */
static void
ti_ext_funcs_build(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	int			n = 0;
	int			cap = 128;
	Oid		   *oids;
	uint32	   *hashes;

	ti_ext_nsp = get_namespace_oid(TI_SCHEMA, true);
	oids = MemoryContextAlloc(TopMemoryContext, cap * sizeof(Oid));
	hashes = MemoryContextAlloc(TopMemoryContext, cap * sizeof(uint32));
	if (OidIsValid(ti_ext_nsp))
	{
		ScanKeyInit(&key, Anum_pg_proc_pronamespace, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(ti_ext_nsp));
		rel = table_open(ProcedureRelationId, AccessShareLock);
		scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
		while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		{
			Oid			oid = ((Form_pg_proc) GETSTRUCT(tuple))->oid;

			if (n == cap)
			{
				cap *= 2;
				oids = repalloc(oids, cap * sizeof(Oid));
				hashes = repalloc(hashes, cap * sizeof(uint32));
			}
			oids[n] = oid;
			hashes[n] = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(oid));
			n++;
		}
		systable_endscan(scan);
		table_close(rel, AccessShareLock);
	}
	if (ti_ext_func_oids)
		pfree(ti_ext_func_oids);
	if (ti_ext_func_hashes)
		pfree(ti_ext_func_hashes);
	ti_ext_func_oids = oids;
	ti_ext_func_hashes = hashes;
	ti_ext_nfuncs = n;

	/*
	 * The scan may have accepted invalidations that marked the set stale
	 * again; it is complete for what it saw, and the next use rebuilds it.
	 */
	ti_ext_funcs_valid = true;
}

/*
 * ti_audit_refused_relation
 *		Audit a range table entry of one of the extension's relations whose
 *		privilege check (ExecCheckRTEPerms) is about to fail.
 */
static void
ti_audit_refused_relation(RangeTblEntry *rte)
{
	Oid			userid;

	if (rte->rtekind != RTE_RELATION || rte->requiredPerms == 0)
		return;
	if (!ti_ext_funcs_valid)
		ti_ext_funcs_build();	/* also refreshes ti_ext_nsp */
	if (!OidIsValid(ti_ext_nsp) || get_rel_namespace(rte->relid) != ti_ext_nsp)
		return;
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	if (pg_class_aclmask(rte->relid, userid, rte->requiredPerms,
						 ACLMASK_ALL) == rte->requiredPerms)
		return;
	/* core then accepts column privileges; the extension grants none */
	if (pg_attribute_aclcheck_all(rte->relid, userid, rte->requiredPerms,
								  ACLMASK_ANY) == ACLCHECK_OK)
		return;
	ti_audit("denied_relation",
			 psprintf("%s.%s", TI_SCHEMA, get_rel_name(rte->relid)),
			 ERRCODE_INSUFFICIENT_PRIVILEGE,
			 rte->requiredPerms & ACL_SELECT ? "SELECT" :
			 rte->requiredPerms & ACL_TRUNCATE ? "TRUNCATE" : "write");
}

/*
 * ti_audit_refused_objects
 *		Audit the extension's functions and relations in a plan that core's
 *		EXECUTE and SELECT/INSERT/... checks are about to refuse.
 */
static void
ti_audit_refused_objects(PlannedStmt *stmt)
{
	ListCell   *lc;
	List	   *done = NIL;
	Oid			skip = ti_dependency_func();

	foreach(lc, stmt->invalItems)
	{
		PlanInvalItem *item = (PlanInvalItem *) lfirst(lc);
		int			i;

		if (item->cacheId != PROCOID)
			continue;
		if (!ti_ext_funcs_valid)
			ti_ext_funcs_build();
		for (i = 0; i < ti_ext_nfuncs; i++)
		{
			Oid			fn = ti_ext_func_oids[i];

			if (ti_ext_func_hashes[i] != item->hashValue || fn == skip ||
				list_member_oid(done, fn))
				continue;
			done = lappend_oid(done, fn);
			if (pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			{
				char	   *name = get_func_name(fn);

				ti_audit("denied_function",
						 psprintf("%s.%s", TI_SCHEMA, name ? name : "?"),
						 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
			}
		}
	}

	foreach(lc, stmt->rtable)
		ti_audit_refused_relation(lfirst_node(RangeTblEntry, lc));
	list_free(done);
}

/*
 * ti_denials_ExecutorStart
 *		Audit refused calls of the extension's functions and refused access
 *		to its relations, then let core refuse them.
 */
static void
ti_denials_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (!IsParallelWorker() && queryDesc->plannedstmt != NULL &&
		!superuser() && ti_extension_present())
		ti_audit_refused_objects(queryDesc->plannedstmt);
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * _set_config(name text, value text, is_local boolean) RETURNS text
 *
 * What set_config() calls become when they may name one of our variables.
 * The same EXECUTE check and object-access event as a call of set_config()
 * itself (a DBA may have revoked it), then the audit event if core is about
 * to refuse, then core's set_config() with the same arguments.
 */
Datum
ti_set_config(PG_FUNCTION_ARGS)
{
	AclResult	aclresult;

	aclresult = pg_proc_aclcheck(F_SET_CONFIG, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, "set_config");
	InvokeFunctionExecuteHook(F_SET_CONFIG);

	if (!PG_ARGISNULL(0))
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
		bool		is_local = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);

		ti_audit_refused_setting(name, ACL_SET,
								 PG_ARGISNULL(1) ? "set_config (reset)" :
								 is_local ? "set_config (local)" : "set_config");
		pfree(name);
	}
	return set_config_by_name(fcinfo);
}

void
ti_install_denial_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ti_denials_ProcessUtility;
	prev_planner_hook = planner_hook;
	planner_hook = ti_denials_planner;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ti_denials_ExecutorStart;
	CacheRegisterSyscacheCallback(PROCOID, ti_ext_funcs_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, ti_ext_funcs_inval, (Datum) 0);
}
