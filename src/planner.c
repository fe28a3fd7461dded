/*-------------------------------------------------------------------------
 *
 * planner.c
 *	  Read scoping: the tenant qual is injected into every scan of a
 *	  protected relation, at every query level, while the query is planned.
 *
 * The injection point is get_relation_info_hook.  The planner calls it for
 * every relation it is about to scan: base relations of every query level
 * (subqueries, sublinks, CTEs, views, the target of UPDATE/DELETE/MERGE),
 * relations of SQL functions inlined during planning, UNION ALL members and
 * inheritance children.  A rewriter- or planner_hook-time walk of the Query
 * would miss the relations that inlining brings in; this hook cannot.
 *
 * The qual "tenant_column = '<tenant>'::uuid" is attached to the range table
 * entry as the first security barrier qual (security level 0), exactly where
 * row level security puts policy quals, and the query's qual_security_level
 * is raised so that every user-written qual on the relation sorts after it:
 * a function or operator that is not leakproof can never see a row of
 * another tenant, while leakproof clauses (the tenant qual itself, key
 * equalities) remain usable as index conditions and for partition pruning.
 * Which plans read the tenant at execution.  A plan used once carries the
 * tenant as a Const, so the planner sees the value (per-tenant statistics,
 * plan-time pruning, proofs against partial indexes and CHECK constraints);
 * it records a dependency on _tenant_dependency() so that context.c can
 * invalidate it when the session enters another tenant.  A plan the plan
 * cache keeps and reuses instead compares the column with the STABLE
 * function _current_tenant_uuid(), evaluated once per scan as an index key
 * and usable for run-time partition pruning, so a switch between tenants
 * invalidates nothing.  "Used once" is decided in ti_planner: bound
 * parameters (a custom plan), or a Query that is the very one parse
 * analysis just produced (the simple protocol, one-shot SPI, EXPLAIN); the
 * plan cache always plans a copy of its Query, so its generic plans take
 * the run-time form.  Why a misclassification costs speed and never
 * isolation: the run-time form is correct under every context, since the
 * function reads the context of the executing statement (which cannot
 * change while a statement that reads protected tables runs, context.c), and
 * returns NULL, matching no row, without one; setrefs.c records the plan's
 * dependency on the function, by which executor.c refuses such a plan
 * without a context exactly like a Const plan.  A Const plan keeps its
 * dependency and is invalidated as before.  The leak-safe marking below
 * looks only at the user's clause and its constant, never at the tenant
 * qual, so it holds for both forms.
 *
 * Children of an appendrel are handled where their quals come from: an
 * inheritance child of a protected parent receives the parent's quals by
 * translation and needs nothing; a UNION ALL member (or the child of an
 * unprotected parent) gets its own security qual, and the quals it inherits
 * from its parent are moved one security level up, since they were
 * distributed before this hook could raise the level.
 *
 * Without a tenant context a non-superuser is refused at plan time; a
 * superuser plans without a qual, and the plan is marked as depending on the
 * role so that the plan cache never hands it to another role.
 *
 * Leak-safe built-ins.  Like native row level security, the barrier keeps a
 * non-leakproof user qual from being an index condition: LIKE and jsonb @>
 * could only filter the tenant's rows found through the tenant qual.  A few
 * built-in operators, in an exact shape and with a constant checked at plan
 * time, cannot raise an error or have any other effect that depends on their
 * row argument (the proof is written at ti_clause_is_leak_safe), so
 * evaluating them on another tenant's rows inside an index scan, a bitmap
 * recheck or a filter ordered ahead of the tenant qual reveals nothing.
 * After the standard paths of a protected relation exist,
 * set_rel_pathlist_hook marks exactly those clauses leakproof and asks for
 * the index paths again, so that GIN and text_pattern_ops indexes serve them
 * as they would without row security.  Anything that fails the proof (a
 * Param pattern, a pattern ending in the escape character, ILIKE under a
 * collation that is not C, ...) stays behind the barrier.
 *
 * The permissive row security policy hook opens the fail-closed fallback
 * (protect_table enables forced row level security with a deny-all policy)
 * while the library is loaded, and adds a WITH CHECK qual that holds new rows
 * to the tenant after every BEFORE trigger ran.  It reads the context at
 * execution (_current_tenant_uuid()), so the rewritten query that the plan
 * cache keeps stays valid across tenant switches and is never re-analysed.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/planner.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "optimizer/pathnode.h"
#include "optimizer/plancat.h"
#include "optimizer/planmain.h"
#include "optimizer/planner.h"
#include "optimizer/restrictinfo.h"
#include "parser/analyze.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "rewrite/rowsecurity.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"

#include "tenant_isolation.h"

static get_relation_info_hook_type prev_get_relation_info_hook = NULL;
static planner_hook_type prev_planner_hook = NULL;
static row_security_policy_hook_type prev_rls_permissive_hook = NULL;
static set_rel_pathlist_hook_type prev_set_rel_pathlist_hook = NULL;
static get_relation_stats_hook_type prev_get_relation_stats_hook = NULL;

/*
 * The one column whose statistics ti_get_relation_stats may open to a
 * leak-safe clause's estimator: set only around the clause_selectivity() call
 * of ti_set_rel_pathlist (see "Estimates of leak-safe clauses" there).
 */
static RangeTblEntry *ti_stats_rte = NULL;
static AttrNumber ti_stats_attno = InvalidAttrNumber;
static post_parse_analyze_hook_type prev_post_parse_analyze_hook = NULL;

/*
 * The Query that parse analysis produced last, until a planner() call takes
 * it (see "Which plans read the tenant at execution" in the header).
 */
static Query *ti_fresh_query = NULL;

/* Set for the running planner() call: the tenant qual reads the context at execution. */
static bool ti_plan_runtime_tenant = false;

static Oid	ti_uuid_eq_opr = InvalidOid;

/* Set while planning when a plan left a protected relation unscoped. */
static bool ti_plan_role_dependent = false;

/* How many planner() calls are running (restored on error by PG_FINALLY). */
static int	ti_planner_depth = 0;

static void ti_get_relation_info(PlannerInfo *root, Oid relid, bool inhparent,
								 RelOptInfo *rel);
static PlannedStmt *ti_planner(Query *parse, const char *query_string,
							   int cursorOptions, ParamListInfo boundParams);
static List *ti_rls_permissive(CmdType cmdtype, Relation relation);
static void ti_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti,
								RangeTblEntry *rte);
static void ti_post_parse_analyze(ParseState *pstate, Query *query,
								  JumbleState *jstate);
static bool ti_get_relation_stats(PlannerInfo *root, RangeTblEntry *rte,
								  AttrNumber attnum, VariableStatData *vardata);

void
ti_install_planner_hooks(void)
{
	prev_get_relation_info_hook = get_relation_info_hook;
	get_relation_info_hook = ti_get_relation_info;
	prev_planner_hook = planner_hook;
	planner_hook = ti_planner;
	prev_rls_permissive_hook = row_security_policy_hook_permissive;
	row_security_policy_hook_permissive = ti_rls_permissive;
	prev_set_rel_pathlist_hook = set_rel_pathlist_hook;
	set_rel_pathlist_hook = ti_set_rel_pathlist;
	prev_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = ti_post_parse_analyze;
	prev_get_relation_stats_hook = get_relation_stats_hook;
	get_relation_stats_hook = ti_get_relation_stats;
}

/*
 * ti_post_parse_analyze
 *		Remember the Query just analysed (for EXPLAIN, the explained one).
 *
 * Only compared by address with the Query handed to planner(); a stale
 * address that happens to match a later Query only makes that plan carry
 * the constant, which is correct in every case (header).
 */
static void
ti_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze_hook)
		prev_post_parse_analyze_hook(pstate, query, jstate);
	ti_fresh_query = query;
	if (query->commandType == CMD_UTILITY && query->utilityStmt &&
		IsA(query->utilityStmt, ExplainStmt) &&
		IsA(((ExplainStmt *) query->utilityStmt)->query, Query))
		ti_fresh_query = (Query *) ((ExplainStmt *) query->utilityStmt)->query;
}

/*
 * ti_make_tenant_qual
 *		"Var(varno, attno) = '<tenant>'::uuid", fully prepared (the planner's
 *		expression preprocessing has already run when we add it); with tenant
 *		NULL, "Var(varno, attno) = tenant_isolation._current_tenant_uuid()",
 *		the form that reads the context at execution.
 */
static Expr *
ti_make_tenant_qual(Index varno, AttrNumber attno, const pg_uuid_t *tenant)
{
	Var		   *var;
	Expr	   *con;
	OpExpr	   *op;

	var = makeVar(varno, attno, UUIDOID, -1, InvalidOid, 0);
	if (tenant != NULL)
	{
		pg_uuid_t  *val = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));

		*val = *tenant;
		con = (Expr *) makeConst(UUIDOID, -1, InvalidOid, UUID_LEN,
								 UUIDPGetDatum(val), false, false);
	}
	else
	{
		Assert(OidIsValid(ti_runtime_tenant_func()));
		con = (Expr *) makeFuncExpr(ti_runtime_tenant_func(), UUIDOID, NIL,
									InvalidOid, InvalidOid,
									COERCE_EXPLICIT_CALL);
	}
	/* pg_catalog.=(uuid, uuid), looked up once */
	if (!OidIsValid(ti_uuid_eq_opr))
		ti_uuid_eq_opr = OpernameGetOprid(list_make2(makeString("pg_catalog"),
													 makeString("=")),
										  UUIDOID, UUIDOID);
	op = (OpExpr *) make_opclause(ti_uuid_eq_opr, BOOLOID, false,
								  (Expr *) var, (Expr *) con,
								  InvalidOid, InvalidOid);
	op->opfuncid = F_UUID_EQ;
	return (Expr *) op;
}

/*
 * ti_raise_inherited_levels
 *		Move the quals an appendrel child inherits from its parent one
 *		security level up, so that the child's own tenant qual (level 0) is
 *		evaluated before any of them.
 *
 * Raising a level only ever delays a clause, so it cannot make a plan less
 * safe; leakproofness is recomputed because make_restrictinfo skips that
 * test for level-zero clauses, and a leakproof clause may still be used as an
 * index condition.
 */
static void
ti_raise_inherited_levels(PlannerInfo *root, RelOptInfo *parent)
{
	ListCell   *lc;

	foreach(lc, parent->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		rinfo->security_level++;
		rinfo->leakproof = !contain_leaked_vars((Node *) rinfo->clause);
	}
	parent->baserestrict_min_security++;
	foreach(lc, parent->joininfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		rinfo->security_level++;
		rinfo->leakproof = !contain_leaked_vars((Node *) rinfo->clause);
	}
}

/*
 * ti_get_relation_info
 *		Scope one relation that the planner is about to scan.
 */
static void
ti_get_relation_info(PlannerInfo *root, Oid relid, bool inhparent,
					 RelOptInfo *rel)
{
	TiRelInfo  *info;
	RangeTblEntry *rte;
	pg_uuid_t	tenant;
	RelOptInfo *parent = NULL;
	Expr	   *qual;

	if (prev_get_relation_info_hook)
		prev_get_relation_info_hook(root, relid, inhparent, rel);

	if (!ti_extension_present())
		return;
	if (unlikely(ti_is_largeobject_catalog(relid)))
		ti_check_largeobject_access(get_rel_name(relid));
	info = ti_lookup_rel(relid);
	if (!info->is_protected)
		return;

	rte = root->simple_rte_array[rel->relid];

	if (rel->reloptkind == RELOPT_OTHER_MEMBER_REL)
	{
		AppendRelInfo *appinfo = root->append_rel_array[rel->relid];
		RangeTblEntry *parent_rte = root->simple_rte_array[appinfo->parent_relid];

		/* Inheritance child of a protected parent: its quals come down. */
		if (parent_rte->rtekind == RTE_RELATION &&
			ti_lookup_rel(parent_rte->relid)->is_protected)
			return;
		parent = root->simple_rel_array[appinfo->parent_relid];
	}

	if (!ti_context_get(&tenant))
	{
		/*
		 * plan_create_index_workers() and plan_cluster_use_sort() build a
		 * bare PlannerInfo (no jointree, not through planner()) only to
		 * estimate costs for an index build or CLUSTER, which run as the
		 * table owner: no plan is made from it and no row is read through
		 * it, so there is nothing to scope.  Any other caller outside
		 * planner() is treated like a query.
		 */
		if (ti_planner_depth == 0 && root->parse->jointree == NULL)
			return;
		if (ti_unscoped_allowed())
		{
			/* unscoped: must not survive into a tenant's context */
			ti_plan_role_dependent = true;
			ti_note_unscoped_plan();
			return;
		}
		ti_audit("denied_no_context", get_rel_name(relid),
				 ERRCODE_INSUFFICIENT_PRIVILEGE, "read");
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context for table \"%s\"",
						get_rel_name(relid)),
				 errdetail("Table \"%s\" is protected by tenant_isolation.",
						   get_rel_name(relid)),
				 errhint("Call tenant_isolation.login() first.")));
	}

	if (ti_plan_runtime_tenant && OidIsValid(ti_runtime_tenant_func()))
	{
		/*
		 * A plan that may be cached and reused (see the header): the tenant
		 * is read at execution.  setrefs.c records the plan's dependency on
		 * _current_tenant_uuid, which executor.c looks for.
		 */
		qual = ti_make_tenant_qual(rel->relid, info->tenant_attno, NULL);
	}
	else
	{
		qual = ti_make_tenant_qual(rel->relid, info->tenant_attno, &tenant);
		/* the plan is only valid in this tenant's context (context.c) */
		if (OidIsValid(ti_dependency_func()))
			record_plan_function_dependency(root, ti_dependency_func());
		/* a generic plan with the constant may be cached (context.c) */
		if (root->glob->boundParams == NULL)
			ti_note_const_plan();
	}
	rte->securityQuals = lcons(list_make1(qual), rte->securityQuals);
	root->qual_security_level = Max(root->qual_security_level,
									list_length(rte->securityQuals));
	if (parent != NULL)
		ti_raise_inherited_levels(root, parent);
}

/*
 * ti_add_conflict_check
 *		Put _conflict_check(existing.tenant_column, rel) first in the ON
 *		CONFLICT DO UPDATE WHERE list of one ModifyTable (guard.c says why it
 *		must be first and why this is done on the finished plan).
 */
static void
ti_add_conflict_check(PlannedStmt *stmt, ModifyTable *mt)
{
	Index		rti;
	RangeTblEntry *rte;
	TiRelInfo  *info;
	Oid			funcid;
	Oid			argtypes[2] = {UUIDOID, OIDOID};
	Var		   *var;
	Const	   *rel;
	FuncExpr   *check;
	AttrNumber	attno;

	if (mt->onConflictAction != ONCONFLICT_UPDATE || mt->resultRelations == NIL)
		return;
	rti = linitial_int(mt->resultRelations);
	rte = rt_fetch(rti, stmt->rtable);
	info = ti_lookup_rel(rte->relid);
	if (!info->is_protected)
	{
		/*
		 * An unprotected partitioned table may route the row into a
		 * protected partition; the check is written against the target's
		 * columns, which need not hold a tenant column.  Refuse rather than
		 * let that partition's existing row reach the user's expressions.
		 */
		if (rte->relkind == RELKIND_PARTITIONED_TABLE)
		{
			List	   *children = find_all_inheritors(rte->relid, NoLock, NULL);
			ListCell   *lc;

			foreach(lc, children)
			{
				if (ti_lookup_rel(lfirst_oid(lc))->is_protected)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("ON CONFLICT DO UPDATE is not supported on table \"%s\", which has protected partitions",
									get_rel_name(rte->relid)),
							 errhint("Protect the partitioned table itself with tenant_isolation.protect_table().")));
			}
		}
		return;
	}
	/* re-read: a lookup above may have refreshed the cache entry */
	attno = ti_lookup_rel(rte->relid)->tenant_attno;

	funcid = LookupFuncName(list_make2(makeString(TI_SCHEMA),
									   makeString("_conflict_check")),
							2, argtypes, true);
	if (!OidIsValid(funcid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("INSERT ... ON CONFLICT DO UPDATE on a protected table needs tenant_isolation 1.1"),
				 errhint("Run ALTER EXTENSION tenant_isolation UPDATE.")));

	var = makeVar(rti, attno, UUIDOID, -1, InvalidOid, 0);
	rel = makeConst(OIDOID, -1, InvalidOid, sizeof(Oid),
					ObjectIdGetDatum(rte->relid), false, true);
	check = makeFuncExpr(funcid, BOOLOID, list_make2(var, rel),
						 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	mt->onConflictWhere = (Node *) lcons(check, (List *) mt->onConflictWhere);
}

/*
 * ti_add_conflict_checks
 *		Every INSERT ... ON CONFLICT DO UPDATE of the statement: the top-level
 *		one, or one in a data-modifying WITH (always a subplan's top node).
 */
static void
ti_add_conflict_checks(PlannedStmt *stmt)
{
	ListCell   *lc;

	if (stmt->planTree && IsA(stmt->planTree, ModifyTable))
		ti_add_conflict_check(stmt, (ModifyTable *) stmt->planTree);
	if (!stmt->hasModifyingCTE)
		return;
	foreach(lc, stmt->subplans)
	{
		Plan	   *plan = (Plan *) lfirst(lc);

		if (plan && IsA(plan, ModifyTable))
			ti_add_conflict_check(stmt, (ModifyTable *) plan);
	}
}

/*
 * ti_planner
 *		Mark plans that read protected tables without a qual (superuser
 *		without a context) as role dependent.
 */
static PlannedStmt *
ti_planner(Query *parse, const char *query_string, int cursorOptions,
		   ParamListInfo boundParams)
{
	PlannedStmt *result;
	bool		save = ti_plan_role_dependent;
	bool		save_runtime = ti_plan_runtime_tenant;

	ti_plan_role_dependent = false;

	/*
	 * Used once: a custom plan (bound parameters), or a Query that comes
	 * straight from parse analysis (the simple protocol, one-shot SPI,
	 * EXPLAIN).  The plan cache always plans a copy of its Query.
	 */
	ti_plan_runtime_tenant = (boundParams == NULL && parse != ti_fresh_query);
	ti_fresh_query = NULL;
	ti_planner_depth++;
	PG_TRY();
	{
		/* Citus routes an INSERT by its tenant column (citus.c) */
		if (parse->commandType == CMD_INSERT && ti_extension_present())
			ti_citus_fill_tenant_column(parse);
		/* Citus: the context carried inside the statement (citus.c) */
		if (ti_extension_present())
			ti_citus_plan_begin(parse, !ti_plan_runtime_tenant,
								ti_planner_depth == 1);
		if (prev_planner_hook)
			result = prev_planner_hook(parse, query_string, cursorOptions,
									   boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions,
									  boundParams);
		if (ti_extension_present())
			ti_citus_plan_end(parse, result);
		if (ti_plan_role_dependent)
			result->dependsOnRole = true;
		if ((result->commandType == CMD_INSERT || result->hasModifyingCTE) &&
			ti_extension_present())
			ti_add_conflict_checks(result);
	}
	PG_FINALLY();
	{
		ti_plan_role_dependent = save;
		ti_plan_runtime_tenant = save_runtime;
		ti_planner_depth--;
	}
	PG_END_TRY();
	return result;
}

/*
 * ti_rls_permissive
 *		The permissive policy that replaces the deny-all fallback.
 *
 * Visibility is left to the injected qual (USING true); WITH CHECK holds new
 * and updated rows to the tenant context, after BEFORE triggers ran.
 */
static List *
ti_rls_permissive(CmdType cmdtype, Relation relation)
{
	List	   *policies = NIL;
	TiRelInfo  *info;
	RowSecurityPolicy *policy;
	Datum		role = ObjectIdGetDatum(ACL_ID_PUBLIC);
	pg_uuid_t	tenant;

	if (prev_rls_permissive_hook)
		policies = prev_rls_permissive_hook(cmdtype, relation);

	if (!ti_extension_present())
		return policies;
	info = ti_lookup_rel(RelationGetRelid(relation));
	if (!info->is_protected)
		return policies;

	policy = (RowSecurityPolicy *) palloc0(sizeof(RowSecurityPolicy));
	policy->policy_name = pstrdup("tenant_isolation");
	policy->polcmd = '*';
	policy->roles = construct_array(&role, 1, OIDOID, sizeof(Oid), true,
									TYPALIGN_INT);
	policy->permissive = true;
	policy->qual = (Expr *) makeBoolConst(true, false);
	if (ti_context_get(NULL) && OidIsValid(ti_runtime_tenant_func()))
	{
		/*
		 * Read the context when the row is checked: the rewritten query
		 * (kept by the plan cache) is then valid in every tenant's context;
		 * without a context the function returns NULL, which fails the check
		 * like the constant false below (and executor.c refuses the plan).
		 */
		policy->with_check_qual = ti_make_tenant_qual(1, info->tenant_attno,
													  NULL);
	}
	else if (ti_context_get(&tenant) && OidIsValid(ti_dependency_func()))
	{
		OpExpr	   *check = (OpExpr *) ti_make_tenant_qual(1, info->tenant_attno,
														   &tenant);

		/*
		 * Wrap the constant in _tenant_dependency() so that the rewritten
		 * query (cached by the plan cache) records the dependency too; the
		 * planner folds the call away.
		 */
		lsecond(check->args) = makeFuncExpr(ti_dependency_func(), UUIDOID,
											list_make1(lsecond(check->args)),
											InvalidOid, InvalidOid,
											COERCE_EXPLICIT_CALL);
		policy->with_check_qual = (Expr *) check;
		ti_note_const_plan();
	}
	else if (ti_context_get(&tenant))
		policy->with_check_qual = ti_make_tenant_qual(1, info->tenant_attno,
													  &tenant);
	else
		policy->with_check_qual = (Expr *) makeBoolConst(false, false);
	policy->hassublinks = false;

	return lappend(policies, policy);
}

/*
 * Leak-safe clauses: the proof.
 *
 * A clause that the planner may evaluate on rows of another tenant (as an
 * index condition, in a bitmap recheck, or as a filter sorted ahead of the
 * tenant qual because it is marked leakproof) must not be able to reveal
 * anything about those rows.  Returning false reveals nothing: the row is
 * then dropped by the tenant qual, which runs on every row that reaches the
 * output.  What could reveal something is an error, a notice, a lock or any
 * other effect whose occurrence depends on the row value.  Like PostgreSQL's
 * own proleakproof markings, we leave out resource exhaustion (out of
 * memory) and timing; docs/isolation-model.md says so.
 *
 * A clause qualifies only in the exact shape "column op Const" (the column a
 * plain Var of the relation, possibly under a binary-compatible RelabelType,
 * the other side a non-NULL Const known when the plan is made).  A Param is
 * never accepted: its value is unknown at plan time, so none of the checks
 * below could be made (custom plans see bound parameters as Consts).  Then,
 * per operator:
 *
 *	- text/bpchar LIKE (textlike, bpcharlike).  GenericMatchText raises three
 *	  errors.  "could not determine which collation" and "nondeterministic
 *	  collations are not supported" depend only on the clause's collation: we
 *	  require a valid, deterministic collation here.  "LIKE pattern must not
 *	  end with escape character" is raised only when the scan of the pattern
 *	  reaches a trailing escape, i.e. only for rows matching the prefix before
 *	  it: we refuse any pattern with a trailing unescaped backslash (LIKE ...
 *	  ESCAPE is folded to a backslash pattern before we see it).  MatchText
 *	  recurses once per '%' and calls check_stack_depth(): the depth is bounded
 *	  by the pattern's '%' count, which we cap at TI_LIKE_MAX_PERCENT.  No other
 *	  error path reads the row value (detoasting fails only on corrupt data).
 *	- text/bpchar ILIKE (texticlike, bpchariclike).  In a multibyte database
 *	  or with an ICU collation, Generic_Text_IC_like lowercases the row value
 *	  with lower(), whose libc and ICU paths can raise conversion errors that
 *	  depend on the characters of the row.  Only a collation whose LC_CTYPE is
 *	  C lowercases byte-wise without any error path, so ILIKE qualifies only
 *	  under such a collation, with the pattern checks of LIKE.
 *	- jsonb @> (jsonb_contains, row on the left) and <@ (jsonb_contained, row
 *	  on the right).  JsonbDeepContains raises no error of its own; it calls
 *	  check_stack_depth() once per level it descends, and it descends only
 *	  where both values hold a container at the same place, so the depth is
 *	  bounded by the constant's depth, capped at TI_JSONB_MAX_DEPTH.  For a
 *	  contained array that holds a container, it pallocs an array sized by
 *	  the number of elements of the *containing* value's array: when the row
 *	  is the containing side (@>) a huge row array could make that request
 *	  exceed MaxAllocSize, an error that depends on the row.  So for @> the
 *	  constant may not hold an array with a container element; for <@ the
 *	  containing side is the constant and there is no such case.
 *	- jsonb ? text, ?| text[], ?& text[] (jsonb_exists, _any, _all): a lookup
 *	  of the constant key(s) in the row's top-level container; no error path
 *	  reads the row.  The constant array is deconstructed without reference
 *	  to the row.
 *
 * Nothing else is on the list; add nothing without a proof written here.
 */
#define TI_LIKE_MAX_PERCENT 64
#define TI_JSONB_MAX_DEPTH	32

/*
 * ti_like_pattern_is_safe
 *		The pattern checks of the proof: no trailing escape, bounded '%'.
 */
static bool
ti_like_pattern_is_safe(Const *pattern)
{
	text	   *pat = DatumGetTextPP(pattern->constvalue);
	const char *p = VARDATA_ANY(pat);
	int			plen = VARSIZE_ANY_EXHDR(pat);
	int			percent = 0;
	int			i;

	for (i = 0; i < plen; i++)
	{
		if (p[i] == '\\')
		{
			/* the escaped character follows; a trailing escape errors */
			if (i + 1 >= plen)
				return false;
			i++;
			continue;
		}
		if (p[i] == '%' && ++percent > TI_LIKE_MAX_PERCENT)
			return false;
	}
	return true;
}

/*
 * ti_jsonb_const_is_safe
 *		Depth bound, and (for @>) no array holding a container.
 */
static bool
ti_jsonb_const_is_safe(Const *con, bool row_contains)
{
	Jsonb	   *jb = DatumGetJsonbP(con->constvalue);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		in_array[TI_JSONB_MAX_DEPTH + 1];
	int			depth = 0;

	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_ARRAY || tok == WJB_BEGIN_OBJECT)
		{
			/* a container inside an array (not the raw-scalar pseudo array) */
			if (row_contains && depth > 0 && in_array[depth - 1])
				return false;
			if (depth >= TI_JSONB_MAX_DEPTH)
				return false;
			in_array[depth++] = (tok == WJB_BEGIN_ARRAY && !v.val.array.rawScalar);
		}
		else if (tok == WJB_END_ARRAY || tok == WJB_END_OBJECT)
			depth--;
	}
	return true;
}

/*
 * ti_strip_relabel
 */
static Node *
ti_strip_relabel(Node *node)
{
	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node;
}

static bool
ti_is_column_of(Node *node, Index relid)
{
	node = ti_strip_relabel(node);
	return node != NULL && IsA(node, Var) &&
		((Var *) node)->varno == relid &&
		((Var *) node)->varlevelsup == 0 &&
		((Var *) node)->varattno > 0;
}

/*
 * ti_clause_is_leak_safe
 *		Does the clause satisfy the proof above?
 */
static bool
ti_clause_is_leak_safe(Expr *clause, Index relid)
{
	OpExpr	   *op;
	Node	   *left,
			   *right;
	Const	   *con;

	if (!IsA(clause, OpExpr))
		return false;
	op = (OpExpr *) clause;
	if (list_length(op->args) != 2 || op->opretset)
		return false;
	set_opfuncid(op);
	left = linitial(op->args);
	right = lsecond(op->args);

	switch (op->opfuncid)
	{
		case F_TEXTLIKE:
		case F_BPCHARLIKE:
		case F_TEXTICLIKE:
		case F_BPCHARICLIKE:
			/* the row is the string, the constant the pattern */
			if (!ti_is_column_of(left, relid) || !IsA(right, Const))
				return false;
			con = (Const *) right;
			if (con->constisnull)
				return false;
			if (!OidIsValid(op->inputcollid))
				return false;
			if (op->opfuncid == F_TEXTICLIKE || op->opfuncid == F_BPCHARICLIKE)
			{
				if (!lc_ctype_is_c(op->inputcollid))
					return false;
			}
			else if (!lc_ctype_is_c(op->inputcollid) &&
					 !get_collation_isdeterministic(op->inputcollid))
				return false;
			return ti_like_pattern_is_safe(con);

		case F_JSONB_CONTAINS:	/* row @> const */
		case F_JSONB_CONTAINED: /* row <@ const */
			if (!ti_is_column_of(left, relid) || !IsA(right, Const))
				return false;
			con = (Const *) right;
			if (con->constisnull)
				return false;
			return ti_jsonb_const_is_safe(con, op->opfuncid == F_JSONB_CONTAINS);

		case F_JSONB_EXISTS:	/* row ? text */
		case F_JSONB_EXISTS_ANY:	/* row ?| text[] */
		case F_JSONB_EXISTS_ALL:	/* row ?& text[] */
			if (!ti_is_column_of(left, relid) || !IsA(right, Const))
				return false;
			return !((Const *) right)->constisnull;

		default:
			return false;
	}
}

/*
 * ti_get_relation_stats
 *		Statistics of one column for the estimator of one leak-safe clause.
 *
 * Outside ti_set_rel_pathlist's re-estimation this declines, and
 * examine_variable() proceeds as always: with security quals on the range
 * table entry, acl_ok is false and only leakproof functions see the
 * statistics.  During it, for exactly the column of the clause being
 * estimated, it does what examine_variable() does for a plain relation
 * except that the security quals do not clear acl_ok (the privilege checks
 * stay).  Why that holds is written at ti_set_rel_pathlist.
 */
static bool
ti_get_relation_stats(PlannerInfo *root, RangeTblEntry *rte,
					  AttrNumber attnum, VariableStatData *vardata)
{
	Oid			userid;

	if (prev_get_relation_stats_hook &&
		prev_get_relation_stats_hook(root, rte, attnum, vardata))
		return true;
	if (ti_stats_rte == NULL || rte != ti_stats_rte || attnum != ti_stats_attno ||
		rte->rtekind != RTE_RELATION)
		return false;

	vardata->statsTuple = SearchSysCache3(STATRELATTINH,
										  ObjectIdGetDatum(rte->relid),
										  Int16GetDatum(attnum),
										  BoolGetDatum(rte->inh));
	vardata->freefunc = ReleaseSysCache;
	if (HeapTupleIsValid(vardata->statsTuple))
	{
		userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
		vardata->acl_ok =
			(pg_class_aclcheck(rte->relid, userid, ACL_SELECT) == ACLCHECK_OK) ||
			(pg_attribute_aclcheck(rte->relid, attnum, userid,
								   ACL_SELECT) == ACLCHECK_OK);
	}
	return true;
}

/*
 * ti_leak_safe_column
 *		The column a leak-safe clause tests (ti_clause_is_leak_safe: always
 *		the left argument, a Var of the relation under RelabelTypes).
 */
static AttrNumber
ti_leak_safe_column(Expr *clause)
{
	Node	   *left = ti_strip_relabel(linitial(((OpExpr *) clause)->args));

	return ((Var *) left)->varattno;
}

/*
 * ti_set_rel_pathlist
 *		Let leak-safe user quals of a protected relation use its indexes.
 *
 * Estimates of leak-safe clauses.  Marking a clause leakproof is not enough
 * for the index paths to be costed as without row security: its selectivity
 * was computed (and cached in the RestrictInfo) by set_baserel_size_estimates
 * while the range table entry already held the tenant qual, and
 * examine_variable() lets no function that is not leakproof see a column's
 * statistics under security quals, so jsonb @> got the default 1% and LIKE
 * its pattern-only guess.  A GIN scan then looked a hundred times too
 * expensive and the planner ANDed it with a scan of the whole tenant's
 * (tenant_id, ...) index: 10M instead of 7M instructions for the biggest
 * tenant's jsonb query.  So each clause marked here is estimated again with
 * the statistics of its column (ti_get_relation_stats), and the relation's
 * row count is recomputed before the index paths are made.
 *
 * Why that keeps isolation.  PostgreSQL withholds statistics from functions
 * that are not leakproof because an estimator calls the clause's function on
 * the most common values and histogram entries, which are values of rows the
 * user may not see, and a leaky function could reveal them (CVE-2017-7484).
 * The estimators of the clauses accepted by ti_clause_is_leak_safe (likesel /
 * patternsel for LIKE and ILIKE, matchingsel for the jsonb operators; only
 * built-in operators are re-estimated, since CREATE OPERATOR can bind the
 * same function to any estimator) call,
 * on statistics values, only the clause's own operator with the clause's own
 * constant (mcv_selectivity, histogram_selectivity) and btree comparison
 * operators that are leakproof anyway (statistic_proc_security_check lets
 * those through regardless).  The proof at ti_clause_is_leak_safe covers the
 * operator with that constant on every value of the column, so these calls
 * reveal nothing but their results, which only shape an estimate.  The
 * statistics are opened for exactly one column, only during the one
 * clause_selectivity() call of one such clause (reset on error), and only to
 * a user who holds SELECT on the table or column, as examine_variable
 * requires.  What an estimate itself shows (EXPLAIN's row counts computed
 * from statistics of every tenant's rows) is the documented limit of contract
 * item 19, which PostgreSQL's row level security has too for every leakproof
 * operator (=, <, ...).  Which rows a plan returns does not change: only
 * costs do.
 */
static void
ti_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti,
					RangeTblEntry *rte)
{
	ListCell   *lc;
	bool		changed = false;

	if (prev_set_rel_pathlist_hook)
		prev_set_rel_pathlist_hook(root, rel, rti, rte);

	if (rte->rtekind != RTE_RELATION || rel->indexlist == NIL ||
		IS_DUMMY_REL(rel) || !ti_extension_present())
		return;
	if (!ti_lookup_rel(rte->relid)->is_protected)
		return;

	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (rinfo->leakproof ||
			rinfo->security_level <= rel->baserestrict_min_security)
			continue;
		if (ti_clause_is_leak_safe(rinfo->clause, rel->relid))
		{
			rinfo->leakproof = true;
			changed = true;

			/*
			 * Estimate it again with the column's statistics (header); only
			 * a built-in operator, whose estimator is the built-in one.
			 */
			if (((OpExpr *) rinfo->clause)->opno >= FirstNormalObjectId)
				continue;
			ti_stats_rte = rte;
			ti_stats_attno = ti_leak_safe_column(rinfo->clause);
			PG_TRY();
			{
				rinfo->norm_selec = -1;
				rinfo->outer_selec = -1;
				(void) clause_selectivity(root, (Node *) rinfo, 0,
										  JOIN_INNER, NULL);
			}
			PG_FINALLY();
			{
				ti_stats_rte = NULL;
				ti_stats_attno = InvalidAttrNumber;
			}
			PG_END_TRY();
		}
	}
	if (changed)
	{
		double		old_rows = rel->rows;

		set_baserel_size_estimates(root, rel);
		/* the paths made so far carry the old estimate */
		if (old_rows > 0 && rel->rows != old_rows)
		{
			double		f = rel->rows / old_rows;

			foreach(lc, rel->pathlist)
				((Path *) lfirst(lc))->rows =
					clamp_row_est(((Path *) lfirst(lc))->rows * f);
			foreach(lc, rel->partial_pathlist)
				((Path *) lfirst(lc))->rows =
					clamp_row_est(((Path *) lfirst(lc))->rows * f);
		}
		create_index_paths(root, rel);
	}
}
