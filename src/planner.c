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
 * The tenant is a Const, so the planner sees the value (per-tenant
 * statistics, plan-time pruning); the plan records a dependency on
 * _tenant_dependency() so that context.c can invalidate it when the session
 * enters another tenant.
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
 * built-in operators cannot raise an error at all on their row argument when
 * the other argument is a constant (jsonb containment and existence, LIKE and
 * ILIKE with a constant pattern), so evaluating them on another tenant's rows
 * inside an index scan or a bitmap recheck reveals nothing.  After the
 * standard paths of a protected relation exist, set_rel_pathlist_hook marks
 * exactly those clauses leakproof (only "Var op Const/Param", nothing else
 * around the column) and asks for the index paths again, so that GIN and
 * text_pattern_ops indexes serve them as they would without row security.
 * They still run after the tenant qual wherever they are plain filters.
 *
 * The permissive row security policy hook opens the fail-closed fallback
 * (protect_table enables forced row level security with a deny-all policy)
 * while the library is loaded, and adds a WITH CHECK qual that holds new rows
 * to the tenant after every BEFORE trigger ran.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/planner.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "optimizer/pathnode.h"
#include "optimizer/plancat.h"
#include "optimizer/planmain.h"
#include "optimizer/planner.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "rewrite/rowsecurity.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "tenant_isolation.h"

static get_relation_info_hook_type prev_get_relation_info_hook = NULL;
static planner_hook_type prev_planner_hook = NULL;
static row_security_policy_hook_type prev_rls_permissive_hook = NULL;
static set_rel_pathlist_hook_type prev_set_rel_pathlist_hook = NULL;

static Oid	ti_uuid_eq_opr = InvalidOid;

/* Set while planning when a plan left a protected relation unscoped. */
static bool ti_plan_role_dependent = false;

static void ti_get_relation_info(PlannerInfo *root, Oid relid, bool inhparent,
								 RelOptInfo *rel);
static PlannedStmt *ti_planner(Query *parse, const char *query_string,
							   int cursorOptions, ParamListInfo boundParams);
static List *ti_rls_permissive(CmdType cmdtype, Relation relation);
static void ti_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti,
								RangeTblEntry *rte);

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
}

/*
 * ti_make_tenant_qual
 *		"Var(varno, attno) = '<tenant>'::uuid", fully prepared (the planner's
 *		expression preprocessing has already run when we add it).
 */
static Expr *
ti_make_tenant_qual(Index varno, AttrNumber attno, const pg_uuid_t *tenant)
{
	Var		   *var;
	Const	   *con;
	pg_uuid_t  *val;
	OpExpr	   *op;

	var = makeVar(varno, attno, UUIDOID, -1, InvalidOid, 0);
	val = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));
	*val = *tenant;
	con = makeConst(UUIDOID, -1, InvalidOid, UUID_LEN, UUIDPGetDatum(val),
					false, false);
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
		if (superuser())
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

	qual = ti_make_tenant_qual(rel->relid, info->tenant_attno, &tenant);
	rte->securityQuals = lcons(list_make1(qual), rte->securityQuals);
	/* the plan is only valid in this tenant's context (context.c) */
	if (OidIsValid(ti_dependency_func()))
		record_plan_function_dependency(root, ti_dependency_func());
	root->qual_security_level = Max(root->qual_security_level,
									list_length(rte->securityQuals));
	if (parent != NULL)
		ti_raise_inherited_levels(root, parent);
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

	ti_plan_role_dependent = false;
	PG_TRY();
	{
		if (prev_planner_hook)
			result = prev_planner_hook(parse, query_string, cursorOptions,
									   boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions,
									  boundParams);
		if (ti_plan_role_dependent)
			result->dependsOnRole = true;
	}
	PG_FINALLY();
	{
		ti_plan_role_dependent = save;
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
	if (ti_context_get(&tenant) && OidIsValid(ti_dependency_func()))
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
 * ti_leak_safe_function
 *		Built-ins that raise no error whatever their row argument holds, when
 *		their other argument is a constant.  Audited list: add nothing whose
 *		error messages could carry an argument value or depend on it.
 */
static bool
ti_leak_safe_function(Oid funcid)
{
	switch (funcid)
	{
		case F_JSONB_CONTAINS:	/* jsonb @> jsonb */
		case F_JSONB_CONTAINED: /* jsonb <@ jsonb */
		case F_JSONB_EXISTS:	/* jsonb ? text */
		case F_JSONB_EXISTS_ANY:	/* jsonb ?| text[] */
		case F_JSONB_EXISTS_ALL:	/* jsonb ?& text[] */
		case F_TEXTLIKE:		/* text ~~ text (constant pattern) */
		case F_TEXTICLIKE:		/* text ~~* text (constant pattern) */
		case F_BPCHARLIKE:
		case F_BPCHARICLIKE:
			return true;
		default:
			return false;
	}
}

/*
 * ti_clause_is_leak_safe
 *		"column op constant" (or the reverse) with a leak-safe operator,
 *		where the column is a plain Var of the relation and the other side a
 *		Const or a Param: nothing else may touch the row value.
 */
static bool
ti_clause_is_leak_safe(Expr *clause, Index relid)
{
	OpExpr	   *op;
	Node	   *left,
			   *right;

	if (!IsA(clause, OpExpr))
		return false;
	op = (OpExpr *) clause;
	if (list_length(op->args) != 2 || op->opretset)
		return false;
	set_opfuncid(op);
	if (!ti_leak_safe_function(op->opfuncid))
		return false;
	left = linitial(op->args);
	right = lsecond(op->args);
	/* the pattern of LIKE is always the right argument */
	if (IsA(left, Var) && ((Var *) left)->varno == relid &&
		((Var *) left)->varlevelsup == 0 &&
		(IsA(right, Const) || IsA(right, Param)))
		return true;
	if (op->opfuncid != F_TEXTLIKE && op->opfuncid != F_TEXTICLIKE &&
		op->opfuncid != F_BPCHARLIKE && op->opfuncid != F_BPCHARICLIKE &&
		IsA(right, Var) && ((Var *) right)->varno == relid &&
		((Var *) right)->varlevelsup == 0 &&
		(IsA(left, Const) || IsA(left, Param)))
		return true;
	return false;
}

/*
 * ti_set_rel_pathlist
 *		Let leak-safe user quals of a protected relation use its indexes.
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
		}
	}
	if (changed)
		create_index_paths(root, rel);
}
