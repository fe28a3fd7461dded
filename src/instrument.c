/*-------------------------------------------------------------------------
 *
 * instrument.c
 *	  EXPLAIN ANALYZE never counts another tenant's rows.
 *
 * The tenant qual is a filter or a recheck wherever the index that serves a
 * scan does not lead with the tenant column, so the executor's counters of a
 * scan on a protected relation include rows of every tenant: "Rows Removed
 * by Filter" and "by Index Recheck" (nfiltered1/2), the rows a Bitmap Index
 * Scan or an index-only scan's heap fetches found (ntuples/ntuples2), the
 * exact and lossy heap blocks of a Bitmap Heap Scan, and the buffers each
 * node touched (which a parent node adds up).  In a tenant context they
 * would tell tenant A how many rows tenant B has.
 *
 * EXPLAIN ANALYZE prints them after ExecutorFinish and before ExecutorEnd;
 * auto_explain prints them in ExecutorEnd.  So executor.c calls
 * ti_scrub_instrumentation() at the end of ExecutorFinish: in a tenant
 * context, for a plan that scans a protected relation, those counters of
 * every scan node on a protected relation are zeroed (the leader's and each
 * parallel worker's), and the buffer and WAL usage of every node of the plan
 * is zeroed, since a node's buffers include those of the scans below it.
 * What stays is what the tenant may see: the rows each node returned (the
 * tenant qual runs before anything that returns rows) and loops.  Timing is
 * outside this (TIMING OFF is the reviewer's friend); planner estimates and
 * PostgreSQL's cumulative statistics views are documented limits.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/instrument.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/execdesc.h"
#include "executor/instrument.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"

#include "tenant_isolation.h"

typedef struct TiScrubState
{
	List	   *rtable;
	bool		any_protected;
} TiScrubState;

/*
 * ti_scan_is_protected
 *		Is this plan node a scan of a protected relation?
 */
static bool
ti_scan_is_protected(Plan *plan, List *rtable)
{
	Index		scanrelid;
	RangeTblEntry *rte;

	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapIndexScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
		case T_ForeignScan:
		case T_CustomScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			break;
		default:
			return false;
	}
	if (scanrelid == 0 || scanrelid > list_length(rtable))
		return false;
	rte = rt_fetch(scanrelid, rtable);
	return rte->rtekind == RTE_RELATION &&
		ti_lookup_rel(rte->relid)->is_protected;
}

static void
ti_scrub_counters(Instrumentation *instr, bool scan)
{
	if (instr == NULL)
		return;
	if (scan)
	{
		instr->nfiltered1 = 0;
		instr->nfiltered2 = 0;
		instr->ntuples2 = 0;
	}
	memset(&instr->bufusage, 0, sizeof(BufferUsage));
	memset(&instr->walusage, 0, sizeof(WalUsage));
}

static bool ti_scrub_walker(PlanState *ps, void *context);

static bool
ti_scrub_walker(PlanState *ps, void *context)
{
	TiScrubState *st = (TiScrubState *) context;
	bool		scan;
	int			i;

	if (ps == NULL)
		return false;
	scan = ti_scan_is_protected(ps->plan, st->rtable);
	ti_scrub_counters(ps->instrument, scan);
	if (ps->worker_instrument)
	{
		for (i = 0; i < ps->worker_instrument->num_workers; i++)
			ti_scrub_counters(&ps->worker_instrument->instrument[i], scan);
	}
	if (scan)
	{
		/* a Bitmap Index Scan returns TIDs of every tenant */
		if (IsA(ps, BitmapIndexScanState) && ps->instrument)
			ps->instrument->ntuples = ps->instrument->tuplecount = 0;
		if (IsA(ps, BitmapHeapScanState))
		{
			BitmapHeapScanState *bh = (BitmapHeapScanState *) ps;

			/* (PostgreSQL 15 keeps no per-worker page counts) */
			bh->exact_pages = 0;
			bh->lossy_pages = 0;
		}
	}
	return planstate_tree_walker(ps, ti_scrub_walker, context);
}

static bool
ti_any_protected_walker(PlanState *ps, void *context)
{
	TiScrubState *st = (TiScrubState *) context;

	if (ps == NULL)
		return false;
	if (ti_scan_is_protected(ps->plan, st->rtable))
	{
		st->any_protected = true;
		return true;
	}
	return planstate_tree_walker(ps, ti_any_protected_walker, context);
}

/*
 * ti_scrub_instrumentation
 *		Called at the end of ExecutorFinish, leader only.
 */
void
ti_scrub_instrumentation(QueryDesc *queryDesc)
{
	TiScrubState st;

	if (queryDesc->instrument_options == 0 || queryDesc->planstate == NULL ||
		queryDesc->plannedstmt == NULL || !ti_extension_present() ||
		!ti_context_get(NULL))
		return;
	st.rtable = queryDesc->plannedstmt->rtable;
	st.any_protected = false;
	(void) ti_any_protected_walker(queryDesc->planstate, &st);
	if (!st.any_protected)
		return;
	(void) ti_scrub_walker(queryDesc->planstate, &st);
}
