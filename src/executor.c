/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  Executor hooks: which running statements read protected tables.
 *
 * "A statement sees the context in force when it started, to its end": the
 * plan carries the tenant as a constant, and context.c refuses to change the
 * context while ti_protected_running is positive, that is while the executor
 * is running (or finishing) a plan whose range table holds a protected
 * relation.  A cursor counts only while it is being fetched from; between
 * fetches it is not running, and a context change closes it instead.
 *
 * The counter is restored in PG_FINALLY on every path, errors included, as
 * auto_explain restores its nesting level.
 *
 * ExecutorStart and ExecutorEnd also hand each statement to limits.c
 * (per-tenant statement limits and statistics).
 *
 * ExecutorStart also replaces a context value that a failed login made stale
 * (context.c), before the leader can launch parallel workers with it.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/executor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "executor/executor.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"

#include "tenant_isolation.h"

int			ti_protected_running = 0;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;

static void ti_ExecutorStart(QueryDesc *queryDesc, int eflags);
static void ti_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
						   uint64 count, bool execute_once);
static void ti_ExecutorFinish(QueryDesc *queryDesc);
static void ti_ExecutorEnd(QueryDesc *queryDesc);

void
ti_install_executor_hooks(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ti_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = ti_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = ti_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = ti_ExecutorEnd;
}

/*
 * ti_plan_reads_protected
 *		Does the plan's (flattened) range table hold a protected relation?
 */
static bool
ti_plan_reads_protected(QueryDesc *queryDesc)
{
	ListCell   *lc;

	if (queryDesc->plannedstmt == NULL || !ti_extension_present())
		return false;
	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION && ti_lookup_rel(rte->relid)->is_protected)
			return true;
	}
	return false;
}

static void
ti_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (!IsParallelWorker())
		ti_context_normalize();

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (!IsParallelWorker())
		ti_limits_executor_start(queryDesc);
}

static void
ti_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
			   bool execute_once)
{
	bool		counted = !IsParallelWorker() && ti_plan_reads_protected(queryDesc);

	if (counted)
		ti_protected_running++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		if (counted)
			ti_protected_running--;
	}
	PG_END_TRY();
}

static void
ti_ExecutorFinish(QueryDesc *queryDesc)
{
	bool		counted = !IsParallelWorker() && ti_plan_reads_protected(queryDesc);

	if (counted)
		ti_protected_running++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		if (counted)
			ti_protected_running--;
	}
	PG_END_TRY();
}

static void
ti_ExecutorEnd(QueryDesc *queryDesc)
{
	if (!IsParallelWorker())
		ti_limits_executor_end(queryDesc);

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}
