/*-------------------------------------------------------------------------
 *
 * limits.c
 *	  Per-tenant resource limits (sessions, concurrent statements, statement
 *	  rate, statement_timeout, work_mem, row quota) and per-tenant statistics.
 *
 * Shared state.  One hash in shared memory, keyed by tenant uuid, holds a
 * TiTenantEntry per tenant seen since the last (re)start: a copy of its
 * limits, its token bucket, its row count and its statistics counters.  The
 * hash is sized by tenant_isolation.max_tenants_tracked; when it is full, an
 * entry that nothing pins is evicted (its statistics are lost).
 *
 * Locking and lifetime rules:
 *	- The LWLock (tranche "tenant_isolation", index 1) protects the hash
 *	  itself: lookups take it shared, insertion and eviction exclusive.
 *	- An entry is pinned, and so never evicted, while a session is counted in
 *	  it, a statement holds one of its active-statement slots, or an open
 *	  transaction holds a row reservation in it.  A backend only touches an
 *	  entry it pins, or one it looked up under the LWLock; that is why the
 *	  executor hot path needs no LWLock at all: it uses the entry of the
 *	  session's own tenant, pinned by the session count.
 *	- Within an entry, the limits copy, the token bucket and the row counts
 *	  are protected by the entry's spinlock; sessions, active statements and
 *	  statistics counters are pg_atomic_* (no lock per statement).
 *
 * Limits live in tenant_isolation.tenant_limit.  A statement trigger on that
 * table bumps a generation counter in shared memory when the writing
 * transaction commits; each entry remembers the generation it loaded and
 * reloads lazily on its next use.
 *
 * Slots are released on every path: an active-statement slot at the
 * ExecutorEnd of the statement that took it, else at the end of its
 * (sub)transaction (an error skips ExecutorEnd); a session slot when the
 * session leaves the tenant (noticed when a context is set, at the start and
 * end of every statement, and at the end of a login_local transaction), and
 * at backend exit (before_shmem_exit).  A backend killed with SIGKILL makes
 * the postmaster reinitialize shared memory, which clears every count.
 *
 * Row quota: counted exactly (one count per protected table) at first use,
 * then kept by deltas.  Inserts reserve their rows at once (so concurrent
 * transactions cannot overrun the quota together) and commit them at the end
 * of the transaction; deletes are applied at commit; a rollback (of the
 * transaction or a subtransaction) releases its reservation.  Writes that
 * cannot be attributed exactly invalidate the count at commit and the next
 * use counts again.  docs/limits.md has the details.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/limits.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include "access/genam.h"
#include "access/parallel.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "portability/instr_time.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "tenant_isolation.h"

/* Index of our LWLock in the "tenant_isolation" tranche (shmem.c). */
#define TI_LIMITS_LWLOCK	1

/* Statistics counters of an entry. */
typedef enum TiCounter
{
	TI_C_SELECT,
	TI_C_INSERT,
	TI_C_UPDATE,
	TI_C_DELETE,
	TI_C_OTHER,
	TI_C_ROWS_RETURNED,
	TI_C_ROWS_PROCESSED,
	TI_C_EXEC_US,				/* total execution time, microseconds */
	TI_C_CPU_US,				/* total CPU time, microseconds */
	TI_C_DENIED,				/* denials audited in the tenant's context */
	TI_C_LIMITED,				/* statements or sessions refused by a limit */
	TI_C_LOGINS,
	TI_C_FAILED_LOGINS,
	TI_NCOUNTERS
} TiCounter;

/* One tenant in shared memory. */
typedef struct TiTenantEntry
{
	pg_uuid_t	tenant;			/* hash key: must be first */
	slock_t		mutex;			/* protects the fields down to rows_seq */

	/* limits copy; -1 (or <= 0 for the rate) means unlimited */
	uint64		limits_gen;		/* generation loaded; 0 = never */
	int32		max_sessions;
	int32		max_active;
	double		rate;			/* statements per second */
	int32		timeout_ms;
	int32		work_mem_kb;
	int64		max_rows;

	/* token bucket */
	double		tokens;
	TimestampTz last_refill;

	/* row quota */
	bool		rows_valid;		/* rows_committed is exact ... */
	uint64		rows_epoch;		/* ... if also this is the shared epoch */
	uint64		rows_seq;		/* bumped by every commit of a delta */
	int64		rows_committed;
	int64		rows_reserved;	/* inserted by transactions still open */

	int32		sessions;		/* sessions in the tenant's context */
	TimestampTz last_used;

	pg_atomic_uint32 active;	/* statements running now */
	pg_atomic_uint32 waiters;	/* sessions waiting for a statement slot */
	ConditionVariable cv;		/* signalled when a statement slot frees */

	pg_atomic_uint64 counters[TI_NCOUNTERS];
	pg_atomic_uint64 max_exec_us;
	pg_atomic_uint64 stats_reset;	/* TimestampTz */
} TiTenantEntry;

typedef struct TiLimitsShared
{
	LWLock	   *lock;
	pg_atomic_uint64 limits_gen;	/* bumped when tenant_limit changes */
	pg_atomic_uint64 rows_epoch;	/* bumped when every row count is stale */
} TiLimitsShared;

/* A row-count change of the open transaction, per tenant and subxact. */
typedef struct TiPendingRows
{
	pg_uuid_t	tenant;
	bool		all_tenants;	/* a write outside any context */
	SubTransactionId subid;
	int64		inserted;		/* reserved in the entry */
	int64		deleted;
	bool		invalidate;		/* count unknown: recount after commit */
} TiPendingRows;

/* GUCs */
static int	ti_max_tenants_tracked = 1000;
static int	ti_statement_queue_timeout = 1000;
static bool ti_track_tenant_stats = true;
static bool ti_track_tenant_cpu = false;

static TiLimitsShared *ti_lshared = NULL;
static HTAB *ti_tenant_hash = NULL;

/* The tenant this session is counted in (pinned by that count). */
static TiTenantEntry *ti_sess_entry = NULL;
static pg_uuid_t ti_sess_tenant;
static bool ti_sess_local = false;
static bool ti_exit_registered = false;

/* The outermost statement of this backend that holds an active slot. */
static QueryDesc *ti_top_qd = NULL;
static TiTenantEntry *ti_top_entry = NULL;
static SubTransactionId ti_top_subid = InvalidSubTransactionId;
static bool ti_top_tracked = false;
static bool ti_top_cpu_tracked = false;
static instr_time ti_top_start;
static struct timespec ti_top_cpu;

/* Running our own queries (row counts): no limits, no statistics. */
static bool ti_limits_internal = false;

/* Session GUCs set from the tenant's limits, and what they replaced. */
static int	ti_applied_timeout = -1;
static int	ti_saved_timeout = 0;
static bool ti_applied_timeout_local = false;
static int	ti_applied_work_mem = -1;
static int	ti_saved_work_mem = 0;
static bool ti_applied_work_mem_local = false;

/* Row-count changes of the open transaction. */
static TiPendingRows *ti_pending = NULL;
static int	ti_npending = 0;
static int	ti_maxpending = 0;

/* tenant_limit changed in this transaction: bump the generation at commit */
static bool ti_limits_changed_in_xact = false;

/* protected_table changed in this transaction: every row count is stale */
static bool ti_rows_stale_in_xact = false;

PG_FUNCTION_INFO_V1(ti_limits_changed_trigger);
PG_FUNCTION_INFO_V1(ti_rows_stale_trigger);
PG_FUNCTION_INFO_V1(ti_limits_valid_work_mem);
PG_FUNCTION_INFO_V1(ti_tenant_stats);
PG_FUNCTION_INFO_V1(ti_reset_tenant_stats);
PG_FUNCTION_INFO_V1(ti_resync_tenant_rows);


static void ti_limits_xact_callback(XactEvent event, void *arg);
static void ti_limits_subxact_callback(SubXactEvent event,
									   SubTransactionId mySubid,
									   SubTransactionId parentSubid,
									   void *arg);
static void ti_limits_exit(int code, Datum arg);
static void ti_limits_on_context(const pg_uuid_t *tenant, bool local);
static void ti_limits_on_context_end(void);
static void ti_limits_ctx_changed(TiCtxEvent event, const pg_uuid_t *tenant,
								  bool local, void *arg);
static void ti_release_top(void);
static void ti_session_release(void);
static void ti_gucs_restore(void);

/* ---------- setup ---------- */

/*
 * ti_limits_init
 *		Define the GUCs and register the transaction callbacks.  Called from
 *		_PG_init, in the postmaster, only when preloaded.
 */
void
ti_limits_init(void)
{
	ti_ctx_subscribe(ti_limits_ctx_changed, NULL);

	DefineCustomIntVariable("tenant_isolation.max_tenants_tracked",
							"Number of tenants whose limits and statistics are kept in shared memory.",
							NULL,
							&ti_max_tenants_tracked,
							1000, 10, 1000000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_isolation.statement_queue_timeout",
							"How long a statement waits for one of its tenant's active statement slots.",
							"After this time the statement fails with SQLSTATE 53300.",
							&ti_statement_queue_timeout,
							1000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("tenant_isolation.track_tenant_stats",
							 "Collects per-tenant statement statistics.",
							 NULL,
							 &ti_track_tenant_stats,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	/*
	 * CPU time needs two system calls per statement (about 0.1 us each on
	 * bare Linux, but 1.7 us each under the sandboxed kernel we measured,
	 * several per cent of a point lookup): off by default.
	 */
	DefineCustomBoolVariable("tenant_isolation.track_tenant_cpu",
							 "Collects per-tenant CPU time of statements.",
							 "Costs two system calls per statement.",
							 &ti_track_tenant_cpu,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	RegisterXactCallback(ti_limits_xact_callback, NULL);
	RegisterSubXactCallback(ti_limits_subxact_callback, NULL);
}

Size
ti_limits_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(TiLimitsShared)),
					hash_estimate_size(ti_max_tenants_tracked,
									   sizeof(TiTenantEntry)));
}

/*
 * ti_limits_shmem_startup
 *		Attach to (or create) the shared state.  The caller holds
 *		AddinShmemInitLock.  After a crash restart everything starts at zero.
 */
void
ti_limits_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	ti_lshared = ShmemInitStruct("tenant_isolation limits",
								 sizeof(TiLimitsShared), &found);
	if (!found)
	{
		ti_lshared->lock = &(GetNamedLWLockTranche("tenant_isolation"))[TI_LIMITS_LWLOCK].lock;
		pg_atomic_init_u64(&ti_lshared->limits_gen, 1);
		pg_atomic_init_u64(&ti_lshared->rows_epoch, 1);
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(pg_uuid_t);
	info.entrysize = sizeof(TiTenantEntry);
	ti_tenant_hash = ShmemInitHash("tenant_isolation tenants",
								   ti_max_tenants_tracked,
								   ti_max_tenants_tracked,
								   &info,
								   HASH_ELEM | HASH_BLOBS);
}

static void
ti_check_shmem(void)
{
	if (ti_lshared == NULL || ti_tenant_hash == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_isolation must be loaded via shared_preload_libraries")));
}

static inline bool
ti_uuid_eq(const pg_uuid_t *a, const pg_uuid_t *b)
{
	return memcmp(a->data, b->data, UUID_LEN) == 0;
}

/* ---------- entries ---------- */

static void
ti_entry_init(TiTenantEntry *e)
{
	int			i;

	SpinLockInit(&e->mutex);
	e->limits_gen = 0;
	e->max_sessions = -1;
	e->max_active = -1;
	e->rate = 0;
	e->timeout_ms = -1;
	e->work_mem_kb = -1;
	e->max_rows = -1;
	e->tokens = 0;
	e->last_refill = 0;
	e->rows_valid = false;
	e->rows_epoch = 0;
	e->rows_seq = 0;
	e->rows_committed = 0;
	e->rows_reserved = 0;
	e->sessions = 0;
	e->last_used = GetCurrentTimestamp();
	pg_atomic_init_u32(&e->active, 0);
	pg_atomic_init_u32(&e->waiters, 0);
	ConditionVariableInit(&e->cv);
	for (i = 0; i < TI_NCOUNTERS; i++)
		pg_atomic_init_u64(&e->counters[i], 0);
	pg_atomic_init_u64(&e->max_exec_us, 0);
	pg_atomic_init_u64(&e->stats_reset, (uint64) GetCurrentTimestamp());
}

/*
 * ti_entry_evict_one
 *		Remove the least recently entered entry that nothing pins.  Caller
 *		holds the LWLock exclusively.  False when every entry is pinned.
 */
static bool
ti_entry_evict_one(void)
{
	HASH_SEQ_STATUS status;
	TiTenantEntry *e;
	TiTenantEntry *victim = NULL;
	pg_uuid_t	key;

	hash_seq_init(&status, ti_tenant_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		bool		pinned;

		SpinLockAcquire(&e->mutex);
		pinned = e->sessions > 0 || e->rows_reserved != 0;
		SpinLockRelease(&e->mutex);
		if (pinned || pg_atomic_read_u32(&e->active) > 0 ||
			pg_atomic_read_u32(&e->waiters) > 0)
			continue;
		if (victim == NULL || e->last_used < victim->last_used)
			victim = e;
	}
	if (victim == NULL)
		return false;
	key = victim->tenant;
	hash_search(ti_tenant_hash, &key, HASH_REMOVE, NULL);
	return true;
}

/*
 * ti_entry_find
 *		The entry of a tenant, or NULL.  Only pinned entries may be used after
 *		the lock is released: callers pin under the lock (see ti_entry_pin).
 */
static TiTenantEntry *
ti_entry_find_locked(const pg_uuid_t *tenant)
{
	return (TiTenantEntry *) hash_search(ti_tenant_hash, tenant, HASH_FIND, NULL);
}

/*
 * ti_entry_pin_session
 *		Find or create the entry of a tenant and count a session in it.
 *
 * Creating an entry in a full hash evicts one; when every entry is pinned,
 * fail with 53400.  The caller checks max_sessions afterwards, once the
 * limits are loaded into the (then pinned) entry.
 */
static TiTenantEntry *
ti_entry_pin_session(const pg_uuid_t *tenant)
{
	TiTenantEntry *e;
	bool		found;

	LWLockAcquire(ti_lshared->lock, LW_SHARED);
	e = ti_entry_find_locked(tenant);
	if (e == NULL)
	{
		LWLockRelease(ti_lshared->lock);
		LWLockAcquire(ti_lshared->lock, LW_EXCLUSIVE);
		e = ti_entry_find_locked(tenant);
		if (e == NULL)
		{
			if (hash_get_num_entries(ti_tenant_hash) >= ti_max_tenants_tracked &&
				!ti_entry_evict_one())
			{
				LWLockRelease(ti_lshared->lock);
				ereport(ERROR,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("too many tenants in use at once"),
						 errdetail("tenant_isolation.max_tenants_tracked is %d.",
								   ti_max_tenants_tracked),
						 errhint("Raise tenant_isolation.max_tenants_tracked and restart the server.")));
			}
			e = (TiTenantEntry *) hash_search(ti_tenant_hash, tenant,
											  HASH_ENTER_NULL, &found);
			if (e == NULL)
			{
				LWLockRelease(ti_lshared->lock);
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of shared memory for tenant limits")));
			}
			if (!found)
				ti_entry_init(e);
		}
	}
	SpinLockAcquire(&e->mutex);
	e->sessions++;
	e->last_used = GetCurrentTimestamp();
	SpinLockRelease(&e->mutex);
	LWLockRelease(ti_lshared->lock);
	return e;
}

/* Undo ti_entry_pin_session. */
static void
ti_entry_unpin_session(TiTenantEntry *e)
{
	SpinLockAcquire(&e->mutex);
	if (e->sessions > 0)
		e->sessions--;
	SpinLockRelease(&e->mutex);
}

/* ---------- limits catalog ---------- */

/*
 * ti_interval_ms
 *		An interval in milliseconds (months as 30 days), clamped to int.
 */
static int32
ti_interval_ms(Interval *iv)
{
	double		ms;

	ms = (double) iv->time / 1000.0 +
		((double) iv->day + (double) iv->month * DAYS_PER_MONTH) * 86400000.0;
	if (ms < 1)
		return 1;
	if (ms > INT_MAX)
		return INT_MAX;
	return (int32) ms;
}

/*
 * ti_entry_refresh_limits
 *		Reload the entry's limits from tenant_isolation.tenant_limit when the
 *		shared generation moved since it last loaded them.
 *
 * Read with the latest snapshot: the generation is bumped after the writing
 * transaction committed, so a reader that saw the new generation sees the
 * new row.  Needs a transaction; a no-op outside one.
 */
static void
ti_entry_refresh_limits(TiTenantEntry *e, const pg_uuid_t *tenant)
{
	uint64		gen = pg_atomic_read_u64(&ti_lshared->limits_gen);
	Oid			nsp;
	Oid			relid;
	Oid			indexid;
	int32		max_sessions = -1,
				max_active = -1,
				timeout_ms = -1,
				work_mem_kb = -1;
	double		rate = 0;
	int64		max_rows = -1;

	if (e->limits_gen == gen || !IsTransactionState())
		return;

	nsp = get_namespace_oid(TI_SCHEMA, true);
	relid = OidIsValid(nsp) ? get_relname_relid("tenant_limit", nsp) : InvalidOid;
	indexid = OidIsValid(nsp) ? get_relname_relid("tenant_limit_pkey", nsp) : InvalidOid;
	if (OidIsValid(relid) && OidIsValid(indexid))
	{
		Relation	rel;
		SysScanDesc scan;
		ScanKeyData key;
		HeapTuple	tuple;
		Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());

		rel = table_open(relid, AccessShareLock);
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
					UUIDPGetDatum(tenant));
		scan = systable_beginscan(rel, indexid, true, snap, 1, &key);
		tuple = systable_getnext(scan);
		if (HeapTupleIsValid(tuple))
		{
			TupleDesc	desc = RelationGetDescr(rel);
			bool		isnull;
			Datum		d;

			d = heap_getattr(tuple, 2, desc, &isnull);
			if (!isnull)
				max_sessions = DatumGetInt32(d);
			d = heap_getattr(tuple, 3, desc, &isnull);
			if (!isnull)
				max_active = DatumGetInt32(d);
			d = heap_getattr(tuple, 4, desc, &isnull);
			if (!isnull)
				rate = DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
			d = heap_getattr(tuple, 5, desc, &isnull);
			if (!isnull)
				timeout_ms = ti_interval_ms(DatumGetIntervalP(d));
			d = heap_getattr(tuple, 6, desc, &isnull);
			if (!isnull)
			{
				int			kb;

				if (parse_int(TextDatumGetCString(d), &kb, GUC_UNIT_KB, NULL))
					work_mem_kb = kb;
			}
			d = heap_getattr(tuple, 7, desc, &isnull);
			if (!isnull)
				max_rows = DatumGetInt64(d);
		}
		systable_endscan(scan);
		table_close(rel, AccessShareLock);
		UnregisterSnapshot(snap);
	}

	SpinLockAcquire(&e->mutex);
	if (e->rate != rate)
	{
		/* a new rate starts with a full bucket */
		e->tokens = Max(rate, 1.0);
		e->last_refill = GetCurrentTimestamp();
	}
	/* counts are not kept while there is no quota: count again */
	if (e->max_rows < 0 && max_rows >= 0)
		e->rows_valid = false;
	e->max_sessions = max_sessions;
	e->max_active = max_active;
	e->rate = rate;
	e->timeout_ms = timeout_ms;
	e->work_mem_kb = work_mem_kb;
	e->max_rows = max_rows;
	e->limits_gen = gen;
	SpinLockRelease(&e->mutex);
}

/* ---------- session GUCs from the limits ---------- */

static void
ti_set_int_guc(const char *name, int value, bool local)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%d", value);
	(void) set_config_option(name, buf, PGC_SUSET, PGC_S_SESSION,
							 local ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
							 true, 0, false);
}

/*
 * ti_gucs_restore
 *		Give statement_timeout and work_mem back the values they had before
 *		a tenant's limits replaced them; only if they still hold the value we
 *		set (a rollback or the application may have changed them since).
 *		Values set LOCAL go away with their transaction by themselves.
 */
static void
ti_gucs_restore(void)
{
	if (ti_applied_timeout >= 0)
	{
		if (!ti_applied_timeout_local && StatementTimeout == ti_applied_timeout &&
			IsTransactionState())
			ti_set_int_guc("statement_timeout", ti_saved_timeout, false);
		ti_applied_timeout = -1;
	}
	if (ti_applied_work_mem >= 0)
	{
		if (!ti_applied_work_mem_local && work_mem == ti_applied_work_mem &&
			IsTransactionState())
			ti_set_int_guc("work_mem", ti_saved_work_mem, false);
		ti_applied_work_mem = -1;
	}
}

/*
 * ti_gucs_apply
 *		Set statement_timeout and work_mem from the tenant's limits (SET, or
 *		SET LOCAL for a transaction-scoped context); restore those the tenant
 *		does not limit.
 */
static void
ti_gucs_apply(TiTenantEntry *e, bool local)
{
	int32		timeout_ms = e->timeout_ms;
	int32		work_mem_kb = e->work_mem_kb;

	if (timeout_ms > 0)
	{
		if (ti_applied_timeout < 0)
			ti_saved_timeout = StatementTimeout;
		ti_set_int_guc("statement_timeout", timeout_ms, local);
		ti_applied_timeout = timeout_ms;
		ti_applied_timeout_local = local;
	}
	else if (ti_applied_timeout >= 0)
	{
		if (!ti_applied_timeout_local && StatementTimeout == ti_applied_timeout)
			ti_set_int_guc("statement_timeout", ti_saved_timeout, local);
		ti_applied_timeout = -1;
	}

	if (work_mem_kb > 0)
	{
		if (ti_applied_work_mem < 0)
			ti_saved_work_mem = work_mem;
		ti_set_int_guc("work_mem", work_mem_kb, local);
		ti_applied_work_mem = work_mem_kb;
		ti_applied_work_mem_local = local;
	}
	else if (ti_applied_work_mem >= 0)
	{
		if (!ti_applied_work_mem_local && work_mem == ti_applied_work_mem)
			ti_set_int_guc("work_mem", ti_saved_work_mem, local);
		ti_applied_work_mem = -1;
	}
}

/* ---------- sessions ---------- */

/*
 * ti_session_release
 *		This session no longer counts in its tenant.  Never fails: called
 *		from the GUC assign hook path, transaction callbacks and exit.
 */
static void
ti_session_release(void)
{
	TiTenantEntry *e = ti_sess_entry;

	if (e == NULL)
		return;
	ti_sess_entry = NULL;
	ti_sess_local = false;
	ti_entry_unpin_session(e);
}

/*
 * ti_session_enter
 *		Count this session in a tenant; with check, refuse (53300) beyond the
 *		tenant's max_sessions.  The session leaves its previous tenant only
 *		once the new one has accepted it.
 */
static void
ti_session_enter(const pg_uuid_t *tenant, bool local, bool check)
{
	TiTenantEntry *e;
	int32		max = -1;
	bool		refused = false;

	/* pinned first, so that the limits are loaded into an entry that stays */
	e = ti_entry_pin_session(tenant);
	if (check)
	{
		PG_TRY();
		{
			ti_entry_refresh_limits(e, tenant);
		}
		PG_CATCH();
		{
			ti_entry_unpin_session(e);
			PG_RE_THROW();
		}
		PG_END_TRY();

		/* we count ourselves already */
		SpinLockAcquire(&e->mutex);
		if (e->max_sessions > 0 && e->sessions > e->max_sessions)
		{
			refused = true;
			max = e->max_sessions;
			e->sessions--;
		}
		SpinLockRelease(&e->mutex);
		if (refused)
		{
			pg_atomic_fetch_add_u64(&e->counters[TI_C_LIMITED], 1);
			ti_audit("limit_exceeded", "max_sessions", ERRCODE_TOO_MANY_CONNECTIONS, NULL);
			ereport(ERROR,
					(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
					 errmsg("too many sessions for tenant %s", ti_uuid_to_cstring(tenant)),
					 errdetail("The tenant is limited to %d concurrent sessions.", max),
					 errhint("Close another session of the tenant, or raise its max_sessions with tenant_isolation.set_tenant_limits().")));
		}
	}

	ti_session_release();
	ti_sess_entry = e;
	ti_sess_tenant = *tenant;
	ti_sess_local = local;
	if (!ti_exit_registered)
	{
		before_shmem_exit(ti_limits_exit, (Datum) 0);
		ti_exit_registered = true;
	}
}

/*
 * ti_limits_on_context
 *		context.c set a tenant context (login, login_local, assume_tenant);
 *		tenant NULL: the session left its context (logout).
 *
 * Counts the session in the tenant (53300 beyond max_sessions; entering the
 * tenant it already counts in does not count twice) and applies the
 * tenant's statement_timeout and work_mem.
 */
static void
ti_limits_on_context(const pg_uuid_t *tenant, bool local)
{
	if (ti_lshared == NULL || IsParallelWorker())
		return;

	if (tenant == NULL)
	{
		ti_session_release();
		ti_gucs_restore();
		return;
	}

	if (ti_sess_entry != NULL && ti_uuid_eq(&ti_sess_tenant, tenant))
	{
		/* the same tenant: a session-level login outlives a local one */
		ti_sess_local = ti_sess_local && local;
		ti_entry_refresh_limits(ti_sess_entry, tenant);
	}
	else
		ti_session_enter(tenant, local, true);

	ti_gucs_apply(ti_sess_entry, local);
}

/*
 * ti_limits_on_context_end
 *		The effective context changed behind our back (RESET ALL, DISCARD
 *		ALL, a rollback, a failed login, the end of a login_local
 *		transaction): release the session's slot if it no longer is in the
 *		tenant it counts in.  Never fails and never sets a GUC, so that the
 *		GUC assign hook may call it; the next statement restores the GUCs and
 *		counts the session in the restored tenant, if any.
 */
static void
ti_limits_on_context_end(void)
{
	pg_uuid_t	cur;

	if (ti_lshared == NULL || IsParallelWorker() || ti_sess_entry == NULL)
		return;
	if (ti_context_get(&cur) && ti_uuid_eq(&cur, &ti_sess_tenant))
		return;
	ti_session_release();
}

/*
 * ti_limits_ctx_changed
 *		Subscriber of context.c: login, login_local and assume_tenant count
 *		the session in the tenant (and may refuse it), logout releases it,
 *		and any other change (rollback, RESET ALL, a failed login, the end of
 *		a login_local transaction) releases it if it no longer applies.
 */
static void
ti_limits_ctx_changed(TiCtxEvent event, const pg_uuid_t *tenant, bool local,
					  void *arg)
{
	switch (event)
	{
		case TI_CTX_ENTER:
			ti_limits_on_context(tenant, local);
			break;
		case TI_CTX_LEAVE:
			ti_limits_on_context(NULL, local);
			break;
		case TI_CTX_CHANGED:
			ti_limits_on_context_end();
			break;
		case TI_CTX_DISCARD:
			break;
	}
}

/*
 * ti_session_sync
 *		At statement boundaries: make the counted tenant the effective one.
 *
 * A rollback that restores a previous tenant re-counts the session there
 * without checking max_sessions (the session was in that tenant before; the
 * tenant may exceed its limit until a session leaves).
 */
static void
ti_session_sync(void)
{
	pg_uuid_t	cur;
	bool		has = ti_context_get(&cur);

	if (ti_sess_entry != NULL && (!has || !ti_uuid_eq(&cur, &ti_sess_tenant)))
	{
		ti_session_release();
		ti_gucs_restore();
	}
	if (has && ti_sess_entry == NULL)
		ti_session_enter(&cur, ti_ctx_transaction_scoped(), false);
}

static void
ti_limits_exit(int code, Datum arg)
{
	ti_release_top();
	ti_session_release();
}

/* ---------- active statements and rate ---------- */

/*
 * ti_take_active_slot
 *		Count a statement as running in the tenant; beyond max_active wait up
 *		to statement_queue_timeout for a slot, then fail with 53300.
 */
static void
ti_take_active_slot(TiTenantEntry *e)
{
	int32		max = e->max_active;
	uint32		cur;
	TimestampTz deadline;
	bool		waiting = false;

	if (max <= 0)
	{
		pg_atomic_fetch_add_u32(&e->active, 1);
		return;
	}

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   ti_statement_queue_timeout);
	for (;;)
	{
		long		remaining;

		cur = pg_atomic_read_u32(&e->active);
		while (cur < (uint32) max)
		{
			if (pg_atomic_compare_exchange_u32(&e->active, &cur, cur + 1))
			{
				if (waiting)
				{
					pg_atomic_fetch_sub_u32(&e->waiters, 1);
					ConditionVariableCancelSleep();
				}
				return;
			}
		}
		if (!waiting)
		{
			pg_atomic_fetch_add_u32(&e->waiters, 1);
			ConditionVariablePrepareToSleep(&e->cv);
			waiting = true;
			continue;			/* check again before the first sleep */
		}
		remaining = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (remaining <= 0)
			break;
		(void) ConditionVariableTimedSleep(&e->cv, remaining, PG_WAIT_EXTENSION);
	}

	pg_atomic_fetch_sub_u32(&e->waiters, 1);
	ConditionVariableCancelSleep();
	pg_atomic_fetch_add_u64(&e->counters[TI_C_LIMITED], 1);
	ti_audit("limit_exceeded", "max_active_statements", ERRCODE_TOO_MANY_CONNECTIONS, NULL);
	ereport(ERROR,
			(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
			 errmsg("too many active statements for tenant %s",
					ti_uuid_to_cstring(&e->tenant)),
			 errdetail("The tenant is limited to %d concurrent statements; no slot freed within %d ms.",
					   max, ti_statement_queue_timeout)));
}

static void
ti_release_active_slot(TiTenantEntry *e)
{
	pg_atomic_fetch_sub_u32(&e->active, 1);
	if (pg_atomic_read_u32(&e->waiters) > 0)
		ConditionVariableBroadcast(&e->cv);
}

/*
 * ti_check_rate
 *		Take a token from the tenant's bucket (capacity: one second's worth,
 *		at least one); none left: 53400.
 */
static void
ti_check_rate(TiTenantEntry *e)
{
	TimestampTz now;
	bool		ok;
	double		rate;

	if (e->rate <= 0)
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&e->mutex);
	rate = e->rate;
	if (now > e->last_refill)
	{
		e->tokens = Min(Max(rate, 1.0),
						e->tokens + rate * (double) (now - e->last_refill) / 1000000.0);
		e->last_refill = now;
	}
	ok = e->tokens >= 1.0;
	if (ok)
		e->tokens -= 1.0;
	SpinLockRelease(&e->mutex);

	if (!ok)
	{
		char		ratebuf[64];

		snprintf(ratebuf, sizeof(ratebuf), "%g", rate);
		pg_atomic_fetch_add_u64(&e->counters[TI_C_LIMITED], 1);
		ti_audit("limit_exceeded", "statements_per_second",
				 ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("statement rate limit of tenant %s exceeded",
						ti_uuid_to_cstring(&e->tenant)),
				 errdetail("The tenant is limited to %s statements per second.", ratebuf)));
	}
}

/*
 * ti_release_top
 *		Release the active slot of the outermost statement.  Never fails.
 */
static void
ti_release_top(void)
{
	TiTenantEntry *e = ti_top_entry;

	ti_top_qd = NULL;
	ti_top_entry = NULL;
	ti_top_tracked = false;
	if (e != NULL)
		ti_release_active_slot(e);
}

/* ---------- row quota ---------- */

static TiPendingRows *
ti_pending_get(const pg_uuid_t *tenant, bool all)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	int			i;
	TiPendingRows *p;

	for (i = 0; i < ti_npending; i++)
	{
		p = &ti_pending[i];
		if (p->subid == subid && p->all_tenants == all &&
			(all || ti_uuid_eq(&p->tenant, tenant)))
			return p;
	}
	if (ti_npending >= ti_maxpending)
	{
		int			newmax = Max(8, ti_maxpending * 2);

		if (ti_pending == NULL)
			ti_pending = MemoryContextAlloc(TopMemoryContext,
											newmax * sizeof(TiPendingRows));
		else
			ti_pending = repalloc(ti_pending, newmax * sizeof(TiPendingRows));
		ti_maxpending = newmax;
	}
	p = &ti_pending[ti_npending++];
	memset(p, 0, sizeof(*p));
	if (tenant)
		p->tenant = *tenant;
	p->all_tenants = all;
	p->subid = subid;
	return p;
}

/* Rows of a tenant this transaction inserted minus those it deleted. */
static int64
ti_pending_net(const pg_uuid_t *tenant, int64 *deleted)
{
	int64		net = 0;
	int			i;

	*deleted = 0;
	for (i = 0; i < ti_npending; i++)
	{
		TiPendingRows *p = &ti_pending[i];

		if (!p->all_tenants && ti_uuid_eq(&p->tenant, tenant))
		{
			net += p->inserted - p->deleted;
			*deleted += p->deleted;
		}
	}
	return net;
}

/*
 * ti_count_rows
 *		Count a tenant's rows in every protected table, with the latest
 *		snapshot, as the bootstrap superuser (the counting function is
 *		SECURITY DEFINER and its EXECUTE is not granted to anybody).
 */
static int64
ti_count_rows(const pg_uuid_t *tenant)
{
	Oid			save_userid;
	int			save_sec;
	int64		result = 0;
	Datum		arg = UUIDPGetDatum(tenant);
	Oid			argtype = UUIDOID;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	PushActiveSnapshot(GetLatestSnapshot());
	ti_limits_internal = true;
	PG_TRY();
	{
		bool		isnull;

		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
							   save_sec | SECURITY_LOCAL_USERID_CHANGE);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT tenant_isolation._count_tenant_rows($1)",
								  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not count the rows of a tenant");
		result = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull)
			result = 0;
		SPI_finish();
	}
	PG_FINALLY();
	{
		ti_limits_internal = false;
		SetUserIdAndSecContext(save_userid, save_sec);
		PopActiveSnapshot();
	}
	PG_END_TRY();
	return result;
}

static inline bool
ti_rows_known(TiTenantEntry *e)
{
	return e->rows_valid &&
		e->rows_epoch == pg_atomic_read_u64(&ti_lshared->rows_epoch);
}

/*
 * ti_rows_ensure
 *		Make the entry's committed row count exact, counting if needed.
 *
 * The count sees this transaction's own rows; they are subtracted (they are
 * applied at commit).  A transaction that commits a delta while we count
 * bumps rows_seq, and we count again, so no committed delta is lost.
 */
static void
ti_rows_ensure(TiTenantEntry *e, const pg_uuid_t *tenant)
{
	int			attempt;

	for (attempt = 0; attempt < 5; attempt++)
	{
		uint64		seq;
		uint64		epoch;
		int64		n;
		int64		own_deleted;
		bool		done = false;

		SpinLockAcquire(&e->mutex);
		if (e->rows_valid &&
			e->rows_epoch == pg_atomic_read_u64(&ti_lshared->rows_epoch))
			done = true;
		seq = e->rows_seq;
		SpinLockRelease(&e->mutex);
		if (done)
			return;

		epoch = pg_atomic_read_u64(&ti_lshared->rows_epoch);
		n = ti_count_rows(tenant) - ti_pending_net(tenant, &own_deleted);

		SpinLockAcquire(&e->mutex);
		if (e->rows_seq == seq)
		{
			e->rows_committed = n;
			e->rows_epoch = epoch;
			e->rows_valid = true;
			done = true;
		}
		SpinLockRelease(&e->mutex);
		if (done)
			return;
	}
	/* still busy: leave it unknown, the next statement tries again */
}

/*
 * ti_resolve_dml
 *		Does the statement write a protected table, and can its effect on row
 *		counts be read from es_processed?  Sets *exact accordingly.
 */
static bool
ti_writes_protected(QueryDesc *qd, bool *exact)
{
	PlannedStmt *ps = qd->plannedstmt;
	ListCell   *lc;
	bool		found = false;

	*exact = false;
	if (ps == NULL || ps->resultRelations == NIL || !ti_extension_present())
		return false;
	foreach(lc, ps->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), ps->rtable);

		if (rte->rtekind == RTE_RELATION && ti_lookup_rel(rte->relid)->is_protected)
		{
			found = true;
			break;
		}
	}
	if (!found)
		return false;
	/* es_processed counts the rows of the main INSERT or DELETE only */
	if ((qd->operation == CMD_INSERT || qd->operation == CMD_DELETE) &&
		!ps->hasModifyingCTE && ps->planTree && IsA(ps->planTree, ModifyTable) &&
		((ModifyTable *) ps->planTree)->onConflictAction != ONCONFLICT_UPDATE)
		*exact = true;
	return true;
}

/*
 * ti_rows_statement_end
 *		Account the rows an INSERT or DELETE wrote in a protected table.
 *		Inserts beyond the tenant's quota fail with 53400.
 */
static void
ti_rows_statement_end(QueryDesc *qd, TiTenantEntry *e, const pg_uuid_t *tenant)
{
	bool		exact;
	int64		n;
	TiPendingRows *p;

	if (qd->operation == CMD_SELECT || qd->operation == CMD_UPDATE ||
		qd->operation == CMD_UTILITY || qd->estate == NULL)
		return;
	if (!ti_writes_protected(qd, &exact))
		return;

	if (e == NULL)
	{
		/* no context: nobody knows which tenants changed */
		p = ti_pending_get(NULL, true);
		p->invalidate = true;
		return;
	}
	if (e->max_rows < 0)
		return;					/* no quota, no count kept */

	p = ti_pending_get(tenant, false);
	if (!exact)
	{
		p->invalidate = true;
		return;
	}
	n = (int64) qd->estate->es_processed;
	if (n == 0)
		return;
	if (qd->operation == CMD_DELETE)
	{
		p->deleted += n;
		return;
	}

	/* INSERT: reserve the rows, unless that exceeds the quota */
	{
		int64		own_deleted;
		int64		max;
		int64		have = 0;
		bool		refused = false;

		(void) ti_pending_net(tenant, &own_deleted);
		SpinLockAcquire(&e->mutex);
		max = e->max_rows;
		if (ti_rows_known(e) && max >= 0)
		{
			have = e->rows_committed + e->rows_reserved - own_deleted;
			refused = have + n > max;
		}
		if (!refused)
			e->rows_reserved += n;
		SpinLockRelease(&e->mutex);

		if (refused)
		{
			pg_atomic_fetch_add_u64(&e->counters[TI_C_LIMITED], 1);
			ti_audit("limit_exceeded", "max_rows", ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, NULL);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("row quota of tenant %s exceeded", ti_uuid_to_cstring(tenant)),
					 errdetail("The tenant is limited to " INT64_FORMAT " rows in protected tables; it has " INT64_FORMAT " and the statement adds " INT64_FORMAT ".",
							   max, Max(have, 0), n)));
		}
		/* after ti_pending_net: the array may have moved, look it up again */
		p = ti_pending_get(tenant, false);
		p->inserted += n;
	}
}

/*
 * ti_pending_finish
 *		End of the transaction: apply (commit) or drop (abort) every pending
 *		row-count change.  Never fails.
 */
static void
ti_pending_finish(bool commit)
{
	int			i;

	if (ti_npending == 0)
		return;
	for (i = 0; i < ti_npending; i++)
	{
		TiPendingRows *p = &ti_pending[i];
		TiTenantEntry *e;

		if (p->all_tenants)
		{
			if (commit && p->invalidate)
				pg_atomic_fetch_add_u64(&ti_lshared->rows_epoch, 1);
			continue;
		}
		LWLockAcquire(ti_lshared->lock, LW_SHARED);
		e = ti_entry_find_locked(&p->tenant);
		if (e != NULL)
		{
			SpinLockAcquire(&e->mutex);
			e->rows_reserved -= p->inserted;
			if (commit)
			{
				e->rows_committed += p->inserted - p->deleted;
				e->rows_seq++;
				if (p->invalidate)
					e->rows_valid = false;
			}
			SpinLockRelease(&e->mutex);
		}
		LWLockRelease(ti_lshared->lock);
	}
	ti_npending = 0;
}

/* ---------- executor ---------- */

/*
 * ti_limits_executor_start
 *		Called by executor.c after standard_ExecutorStart, leader only.
 *
 * The outermost statement of the backend (no other statement holds an
 * active slot) is the one that is limited and measured: rate, active slot,
 * statistics.  Statements run by functions inside it count once, as part of
 * it.  An INSERT of a tenant with a row quota gets an exact count first.
 */
void
ti_limits_executor_start(QueryDesc *queryDesc)
{
	pg_uuid_t	tenant;
	TiTenantEntry *e;

	if (ti_lshared == NULL || ti_limits_internal ||
		(queryDesc->estate &&
		 (queryDesc->estate->es_top_eflags & EXEC_FLAG_EXPLAIN_ONLY)))
		return;

	ti_session_sync();
	if (!ti_context_get(&tenant) || ti_sess_entry == NULL)
		return;
	e = ti_sess_entry;

	if (ti_top_qd == NULL)
	{
		ti_entry_refresh_limits(e, &tenant);
		ti_check_rate(e);
		ti_take_active_slot(e);
		ti_top_qd = queryDesc;
		ti_top_entry = e;
		ti_top_subid = GetCurrentSubTransactionId();
		ti_top_tracked = ti_track_tenant_stats;
		ti_top_cpu_tracked = ti_top_tracked && ti_track_tenant_cpu;
		if (ti_top_tracked)
			INSTR_TIME_SET_CURRENT(ti_top_start);
		if (ti_top_cpu_tracked)
			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ti_top_cpu);
	}

	if (queryDesc->operation == CMD_INSERT && e->max_rows >= 0)
	{
		bool		exact;

		if (ti_writes_protected(queryDesc, &exact) && exact)
			ti_rows_ensure(e, &tenant);
	}
}

/*
 * ti_limits_executor_end
 *		Called by executor.c before standard_ExecutorEnd, leader only.
 */
void
ti_limits_executor_end(QueryDesc *queryDesc)
{
	pg_uuid_t	tenant;
	bool		has;
	TiTenantEntry *e;

	if (ti_lshared == NULL || ti_limits_internal ||
		(queryDesc->estate &&
		 (queryDesc->estate->es_top_eflags & EXEC_FLAG_EXPLAIN_ONLY)))
		return;

	has = ti_context_get(&tenant);
	e = (has && ti_sess_entry != NULL && ti_uuid_eq(&tenant, &ti_sess_tenant)) ?
		ti_sess_entry : NULL;
	if (!has)
		ti_rows_statement_end(queryDesc, NULL, NULL);
	else if (e != NULL)
		ti_rows_statement_end(queryDesc, e, &tenant);

	if (queryDesc == ti_top_qd)
	{
		TiTenantEntry *te = ti_top_entry;

		if (ti_top_tracked && te != NULL && queryDesc->estate != NULL)
		{
			instr_time	now;
			struct timespec cpu;
			uint64		us;
			uint64		cpu_us;
			uint64		cur;
			int			kind;
			uint64		rows = queryDesc->estate->es_processed;

			INSTR_TIME_SET_CURRENT(now);
			INSTR_TIME_SUBTRACT(now, ti_top_start);
			us = INSTR_TIME_GET_MICROSEC(now);
			if (ti_top_cpu_tracked)
			{
				clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
				cpu_us = (uint64) ((cpu.tv_sec - ti_top_cpu.tv_sec) * 1000000 +
								   (cpu.tv_nsec - ti_top_cpu.tv_nsec) / 1000);
			}
			else
				cpu_us = 0;

			switch (queryDesc->operation)
			{
				case CMD_SELECT:
					kind = TI_C_SELECT;
					break;
				case CMD_INSERT:
					kind = TI_C_INSERT;
					break;
				case CMD_UPDATE:
					kind = TI_C_UPDATE;
					break;
				case CMD_DELETE:
					kind = TI_C_DELETE;
					break;
				default:
					kind = TI_C_OTHER;
					break;
			}
			pg_atomic_fetch_add_u64(&te->counters[kind], 1);
			if (rows > 0)
				pg_atomic_fetch_add_u64(&te->counters[queryDesc->operation == CMD_SELECT ?
													  TI_C_ROWS_RETURNED : TI_C_ROWS_PROCESSED],
										rows);
			pg_atomic_fetch_add_u64(&te->counters[TI_C_EXEC_US], us);
			if (cpu_us > 0)
				pg_atomic_fetch_add_u64(&te->counters[TI_C_CPU_US], cpu_us);
			cur = pg_atomic_read_u64(&te->max_exec_us);
			while (us > cur &&
				   !pg_atomic_compare_exchange_u64(&te->max_exec_us, &cur, us))
				;
		}
		ti_release_top();
		/* a statement that called logout() or the like */
		ti_session_sync();
	}
}

/* ---------- transaction callbacks ---------- */

static void
ti_limits_xact_callback(XactEvent event, void *arg)
{
	if (ti_lshared == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			if (ti_limits_changed_in_xact)
				pg_atomic_fetch_add_u64(&ti_lshared->limits_gen, 1);
			if (ti_rows_stale_in_xact)
				pg_atomic_fetch_add_u64(&ti_lshared->rows_epoch, 1);
			ti_limits_changed_in_xact = false;
			ti_rows_stale_in_xact = false;
			ti_pending_finish(true);
			break;
		case XACT_EVENT_ABORT:
			ti_limits_changed_in_xact = false;
			ti_rows_stale_in_xact = false;
			ti_pending_finish(false);
			break;
		default:
			return;
	}

	/* errors skip ExecutorEnd; a cursor may outlive its statement */
	if (ti_top_qd != NULL)
		ti_release_top();

	/* a login_local context ends with its transaction */
	if (ti_sess_local)
		ti_session_release();
	if (ti_applied_timeout_local)
		ti_applied_timeout = -1;
	if (ti_applied_work_mem_local)
		ti_applied_work_mem = -1;
	ti_applied_timeout_local = false;
	ti_applied_work_mem_local = false;
}

static void
ti_limits_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	int			i,
				j;

	if (ti_lshared == NULL)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = 0; i < ti_npending; i++)
			if (ti_pending[i].subid == mySubid)
				ti_pending[i].subid = parentSubid;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* the outermost statement failed inside a savepoint */
		if (ti_top_qd != NULL && ti_top_subid == mySubid)
			ti_release_top();

		for (i = 0, j = 0; i < ti_npending; i++)
		{
			TiPendingRows *p = &ti_pending[i];

			if (p->subid != mySubid)
			{
				ti_pending[j++] = *p;
				continue;
			}
			if (p->inserted != 0)
			{
				TiTenantEntry *e;

				LWLockAcquire(ti_lshared->lock, LW_SHARED);
				e = ti_entry_find_locked(&p->tenant);
				if (e != NULL)
				{
					SpinLockAcquire(&e->mutex);
					e->rows_reserved -= p->inserted;
					SpinLockRelease(&e->mutex);
				}
				LWLockRelease(ti_lshared->lock);
			}
		}
		ti_npending = j;
	}
}

/* ---------- audit events ---------- */

/*
 * ti_limits_note_audit
 *		Count an audit event in the tenant's statistics: logins, failed
 *		logins, denials.  Only existing entries are counted (never creates
 *		one, never fails): meant to be called from ti_audit().
 */
void
ti_limits_note_audit(const char *kind, const pg_uuid_t *tenant, int sqlerrcode)
{
	TiTenantEntry *e;
	int			counter;

	if (ti_lshared == NULL || tenant == NULL || kind == NULL ||
		IsParallelWorker() || !ti_track_tenant_stats)
		return;
	if (strcmp(kind, "login") == 0)
		counter = TI_C_LOGINS;
	else if (strcmp(kind, "login_failed") == 0)
		counter = TI_C_FAILED_LOGINS;
	else if (strcmp(kind, "limit_exceeded") == 0)
		return;					/* counted as "limited" already */
	else if (sqlerrcode != 0)
		counter = TI_C_DENIED;
	else
		return;

	if (ti_sess_entry != NULL && ti_uuid_eq(&ti_sess_tenant, tenant))
	{
		pg_atomic_fetch_add_u64(&ti_sess_entry->counters[counter], 1);
		return;
	}
	LWLockAcquire(ti_lshared->lock, LW_SHARED);
	e = ti_entry_find_locked(tenant);
	if (e != NULL)
		pg_atomic_fetch_add_u64(&e->counters[counter], 1);
	LWLockRelease(ti_lshared->lock);
}

/* ---------- SQL functions ---------- */

/*
 * _limits_changed() trigger, FOR EACH STATEMENT on tenant_limit: every
 * backend reloads limits once the writing transaction commits.
 */
Datum
ti_limits_changed_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function must be called as a trigger")));
	ti_limits_changed_in_xact = true;
	return PointerGetDatum(NULL);
}

/*
 * _rows_stale() trigger, FOR EACH STATEMENT on protected_table: the set of
 * counted tables changed (protect, unprotect, a dropped table), so every
 * tenant's row count is counted again after the commit.
 */
Datum
ti_rows_stale_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function must be called as a trigger")));
	ti_rows_stale_in_xact = true;
	return PointerGetDatum(NULL);
}

/*
 * _valid_work_mem(text) RETURNS integer: the value in kB, NULL when it is
 * not a valid work_mem setting.
 */
Datum
ti_limits_valid_work_mem(PG_FUNCTION_ARGS)
{
	char	   *s;
	int			kb;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!parse_int(s, &kb, GUC_UNIT_KB, NULL) || kb < 64 || kb > MAX_KILOBYTES)
		PG_RETURN_NULL();
	PG_RETURN_INT32(kb);
}

/*
 * _tenant_stats() RETURNS SETOF record: one row per tracked tenant for
 * administrators; for everybody else only the row of the context's tenant
 * (the views tenant_stats and tenant_limits filter the same way).
 */
Datum
ti_tenant_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS status;
	TiTenantEntry *e;
	uint64		epoch;
	bool		admin;
	bool		has_ctx;
	pg_uuid_t	ctx;

	ti_check_shmem();
	admin = ti_is_admin(GetUserId());
	has_ctx = ti_context_get(&ctx);
	InitMaterializedSRF(fcinfo, 0);
	epoch = pg_atomic_read_u64(&ti_lshared->rows_epoch);

	LWLockAcquire(ti_lshared->lock, LW_SHARED);
	hash_seq_init(&status, ti_tenant_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		Datum		values[22];
		bool		nulls[22];
		int			i = 0;
		int32		sessions;
		bool		rows_known;
		int64		rows;
		int64		reserved;

		if (!admin && !(has_ctx && ti_uuid_eq(&ctx, &e->tenant)))
			continue;
		memset(nulls, 0, sizeof(nulls));
		SpinLockAcquire(&e->mutex);
		sessions = e->sessions;
		rows_known = e->rows_valid && e->rows_epoch == epoch && e->max_rows >= 0;
		rows = e->rows_committed;
		reserved = e->rows_reserved;
		SpinLockRelease(&e->mutex);

		values[i++] = UUIDPGetDatum(&e->tenant);
		values[i++] = Int32GetDatum(sessions);
		values[i++] = Int32GetDatum((int32) pg_atomic_read_u32(&e->active));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_SELECT]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_INSERT]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_UPDATE]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_DELETE]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_OTHER]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_ROWS_RETURNED]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_ROWS_PROCESSED]));
		values[i++] = Float8GetDatum((double) pg_atomic_read_u64(&e->counters[TI_C_EXEC_US]) / 1000.0);
		values[i++] = Float8GetDatum((double) pg_atomic_read_u64(&e->max_exec_us) / 1000.0);
		values[i++] = Float8GetDatum((double) pg_atomic_read_u64(&e->counters[TI_C_CPU_US]) / 1000.0);
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_DENIED]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_LIMITED]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_LOGINS]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[TI_C_FAILED_LOGINS]));
		if (rows_known)
			values[i++] = Int64GetDatum(rows);
		else
			nulls[i++] = true;
		values[i++] = Int64GetDatum(reserved);
		values[i++] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&e->stats_reset));
		Assert(i == 20);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(ti_lshared->lock);
	return (Datum) 0;
}

/*
 * reset_tenant_stats(id uuid DEFAULT NULL): zero the statistics of one
 * tenant, or of all.  Limits, sessions, active statements and row counts
 * are not statistics and stay.  EXECUTE is granted to the admin role only.
 */
Datum
ti_reset_tenant_stats(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS status;
	TiTenantEntry *e;
	pg_uuid_t  *only = PG_ARGISNULL(0) ? NULL : PG_GETARG_UUID_P(0);
	TimestampTz now = GetCurrentTimestamp();

	ti_check_shmem();
	if (!ti_is_admin(GetUserId()))
	{
		ti_audit("denied_admin_function", "reset_tenant_stats",
				 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to reset tenant statistics")));
	}
	if (only != NULL)
	{
		bool		active;

		if (!ti_tenant_status(only, &active))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant %s does not exist", ti_uuid_to_cstring(only))));
	}

	LWLockAcquire(ti_lshared->lock, LW_SHARED);
	hash_seq_init(&status, ti_tenant_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		int			i;

		if (only != NULL && !ti_uuid_eq(only, &e->tenant))
			continue;
		for (i = 0; i < TI_NCOUNTERS; i++)
			pg_atomic_write_u64(&e->counters[i], 0);
		pg_atomic_write_u64(&e->max_exec_us, 0);
		pg_atomic_write_u64(&e->stats_reset, (uint64) now);
	}
	LWLockRelease(ti_lshared->lock);
	PG_RETURN_VOID();
}

/*
 * resync_tenant_rows(id uuid DEFAULT NULL) RETURNS bigint
 *
 * Count a tenant's rows again now and return the count; with NULL, mark
 * every tenant's count stale (each is counted again at its next insert) and
 * return NULL.  Admin only.  Counting another tenant than the context's is
 * refused: the count would be scoped to the context.
 */
Datum
ti_resync_tenant_rows(PG_FUNCTION_ARGS)
{
	pg_uuid_t	tenant;
	pg_uuid_t	ctx;
	TiTenantEntry *e;
	int64		n;
	int64		own;
	int64		own_deleted;

	ti_check_shmem();
	if (!ti_is_admin(GetUserId()))
	{
		ti_audit("denied_admin_function", "resync_tenant_rows",
				 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to resynchronise tenant row counts")));
	}
	if (PG_ARGISNULL(0))
	{
		pg_atomic_fetch_add_u64(&ti_lshared->rows_epoch, 1);
		PG_RETURN_NULL();
	}
	tenant = *PG_GETARG_UUID_P(0);
	{
		bool		active;

		if (!ti_tenant_status(&tenant, &active))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant %s does not exist", ti_uuid_to_cstring(&tenant))));
	}
	if (ti_context_get(&ctx) && !ti_uuid_eq(&ctx, &tenant))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot count the rows of another tenant in a tenant context"),
				 errhint("Call tenant_isolation.logout() first.")));

	n = ti_count_rows(&tenant);
	own = n - ti_pending_net(&tenant, &own_deleted);

	LWLockAcquire(ti_lshared->lock, LW_SHARED);
	e = ti_entry_find_locked(&tenant);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		e->rows_committed = own;
		e->rows_epoch = pg_atomic_read_u64(&ti_lshared->rows_epoch);
		e->rows_valid = true;
		e->rows_seq++;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(ti_lshared->lock);
	PG_RETURN_INT64(n);
}
