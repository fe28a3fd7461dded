/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The audit trail of denied and privileged access.
 *
 * A denied statement is rolled back, so an audit row written by the
 * statement's own transaction would vanish with it.  Events are therefore
 * written, at the moment they happen, into a ring of fixed-size records in
 * shared memory, and background workers copy them into the table
 * tenant_isolation.audit_log of the database the event happened in, each in a
 * transaction of its own.  A structured LOG line can be written as well
 * (tenant_isolation.audit_log_destination).
 *
 * Processes:
 *	- every backend (parallel workers included) appends events to the ring
 *	  (ti_audit);
 *	- the launcher, a static background worker connected to no database,
 *	  wakes every tenant_isolation.audit_flush_interval (or when the ring is
 *	  half full, or when audit_flush() asks), finds the databases that have
 *	  pending events and starts one short-lived flush worker per database;
 *	- a flush worker connects to its database, inserts that database's
 *	  pending events into tenant_isolation.audit_log (or discards them with a
 *	  counter when the extension is not installed there), marks them done,
 *	  and exits when nothing is left.  It never lingers, so it does not hold
 *	  up DROP DATABASE for more than a moment.
 *
 * Locking: the ring (head, tail, every record and its state) is protected by
 * the LWLock of index 0 of the "tenant_isolation" tranche.  ti_audit holds it
 * exclusively for one memcpy of one record; flush workers hold it shared
 * while copying at most TI_AUDIT_BATCH records, exclusively while marking
 * them done.  Nothing that can raise an error runs while it is held.  The
 * counters are atomics and are read without the lock.
 *
 * Lifetime of a record: EMPTY -> READY (ti_audit, seq = head++) -> DONE (a
 * flush worker committed it, or it was discarded) -> EMPTY (the tail passes
 * it).  The tail only passes DONE records, so a READY record copied by a
 * flush worker cannot be overwritten before the worker marks it.  When
 * head - tail reaches the ring size, new events are counted in "dropped" and
 * not stored: the statement never waits for the flush.
 *
 * What can be lost: at a clean shutdown the READY records are written to
 * pg_stat/tenant_isolation_audit.ring by the postmaster and read back at the
 * next start.  After a crash (and a crash-restart reinitialising shared
 * memory) the records that were not yet flushed are gone; the LOG lines, if
 * enabled, are the only trace of them.
 *
 * ti_audit is called just before an ERROR is raised: it never raises an
 * error itself, allocates next to nothing (the record lives on the stack;
 * names are copied out of the syscache), and takes no lock but the ring's.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/audit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "common/ip.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "tenant_isolation.h"

PG_FUNCTION_INFO_V1(ti_audit_sql);
PG_FUNCTION_INFO_V1(ti_audit_flush);
PG_FUNCTION_INFO_V1(ti_audit_dropped);
PG_FUNCTION_INFO_V1(ti_audit_stats);
PG_FUNCTION_INFO_V1(ti_audit_log_guard);

PGDLLEXPORT void ti_audit_launcher_main(Datum main_arg);
PGDLLEXPORT void ti_audit_flusher_main(Datum main_arg);

/* Field sizes of a record; longer strings are truncated (multibyte-safe). */
#define TI_AUDIT_KIND_LEN		32
#define TI_AUDIT_OBJECT_LEN		192
#define TI_AUDIT_DETAIL_LEN		256
#define TI_AUDIT_ADDR_LEN		64

/* Records a flush worker copies and inserts per transaction. */
#define TI_AUDIT_BATCH			128

/* Flush workers running at once (one per database). */
#define TI_AUDIT_MAX_FLUSHERS	4

#define TI_AUDIT_SPILL_FILE		"pg_stat/tenant_isolation_audit.ring"
#define TI_AUDIT_SPILL_MAGIC	0x54494131	/* "TIA1" */

typedef enum TiAuditState
{
	TI_AUDIT_EMPTY = 0,
	TI_AUDIT_READY,				/* written, not yet in the table */
	TI_AUDIT_DONE				/* in the table, or discarded */
} TiAuditState;

typedef struct TiAuditRecord
{
	uint64		seq;			/* position in the ring's history */
	int32		state;			/* TiAuditState */
	int32		pid;			/* backend (leader of a parallel worker) */
	Oid			dboid;			/* database the event happened in */
	int			sqlerrcode;		/* 0 for events that are not denials */
	TimestampTz time;
	bool		has_tenant;		/* tenant context at the time */
	pg_uuid_t	tenant;
	char		session_user[NAMEDATALEN];
	char		current_role[NAMEDATALEN];
	char		appname[NAMEDATALEN];
	char		client_addr[TI_AUDIT_ADDR_LEN];
	char		kind[TI_AUDIT_KIND_LEN];
	char		object[TI_AUDIT_OBJECT_LEN];
	char		detail[TI_AUDIT_DETAIL_LEN];
} TiAuditRecord;

typedef struct TiAuditRing
{
	LWLock	   *lock;			/* tranche "tenant_isolation", index 0 */
	int			size;			/* number of records */
	uint64		head;			/* seq of the next record to write */
	uint64		tail;			/* oldest record not yet released */
	Latch	   *launcher_latch; /* NULL while no launcher runs */
	pg_atomic_uint64 written;	/* events stored in the ring */
	pg_atomic_uint64 flushed;	/* events inserted into an audit_log */
	pg_atomic_uint64 dropped;	/* events lost because the ring was full */
	pg_atomic_uint64 discarded; /* events of databases without the extension */
	TiAuditRecord records[FLEXIBLE_ARRAY_MEMBER];
} TiAuditRing;

/* GUCs */
typedef enum TiAuditDestination
{
	TI_AUDIT_DEST_TABLE,
	TI_AUDIT_DEST_LOG,
	TI_AUDIT_DEST_BOTH
} TiAuditDestination;

static const struct config_enum_entry ti_audit_destination_options[] = {
	{"table", TI_AUDIT_DEST_TABLE, false},
	{"log", TI_AUDIT_DEST_LOG, false},
	{"both", TI_AUDIT_DEST_BOTH, false},
	{NULL, 0, false}
};

static int	ti_audit_ring_size = 4096;
static int	ti_audit_destination = TI_AUDIT_DEST_BOTH;
static bool ti_audit_logins = false;
static bool ti_audit_log_assume = false;
static int	ti_audit_flush_interval = 1000;
static bool ti_audit_flush_paused = false;

static TiAuditRing *ti_ring = NULL;

/* Set in flush workers only: the append-only trigger lets them insert. */
static bool ti_audit_in_flusher = false;

/* Per-backend caches of facts that do not change during a session. */
static bool ti_client_addr_done = false;
static char ti_client_addr[TI_AUDIT_ADDR_LEN];
static char ti_database_name[NAMEDATALEN];

static void ti_audit_shmem_exit(int code, Datum arg);

/*
 * ti_audit_init
 *		Define the audit GUCs and register the launcher.  Called from
 *		_PG_init while shared_preload_libraries is processed.
 */
void
ti_audit_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("tenant_isolation.audit_ring_size",
							"Number of audit events the shared memory ring holds until they are flushed.",
							"Events that find the ring full are counted as dropped.",
							&ti_audit_ring_size,
							4096, 8, 1024 * 1024,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("tenant_isolation.audit_log_destination",
							 "Where audit events go: the audit_log table, the server log, or both.",
							 NULL,
							 &ti_audit_destination,
							 TI_AUDIT_DEST_BOTH,
							 ti_audit_destination_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("tenant_isolation.audit_logins",
							 "Records successful logins in the audit trail.",
							 "Failed logins, assume_tenant and denials are always recorded.",
							 &ti_audit_logins,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("tenant_isolation.audit_log_assume_tenant",
							 "Also writes a server-log line for every successful assume_tenant when audit_log_destination is both.",
							 "The event is stored in audit_log either way; with destination log the line is always written.",
							 &ti_audit_log_assume,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_isolation.audit_flush_interval",
							"Time between two flushes of the audit ring into audit_log.",
							NULL,
							&ti_audit_flush_interval,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("tenant_isolation.audit_flush_paused",
							 "Stops flushing the audit ring into audit_log (for maintenance and tests).",
							 "Events keep being collected in the ring until it is full.",
							 &ti_audit_flush_paused,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "tenant_isolation", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "ti_audit_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "tenant_isolation audit launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "tenant_isolation audit launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/*
 * ti_audit_shmem_size
 *		Shared memory of the ring, requested by shmem.c.
 */
Size
ti_audit_shmem_size(void)
{
	return add_size(offsetof(TiAuditRing, records),
					mul_size(ti_audit_ring_size, sizeof(TiAuditRecord)));
}

/*
 * ti_audit_spill_load
 *		Put the events a clean shutdown left in the spill file back into the
 *		ring, then remove the file.  Postmaster only, at startup.
 */
static void
ti_audit_spill_load(void)
{
	FILE	   *file;
	uint32		header[3];
	TiAuditRecord rec;
	uint32		i;

	file = AllocateFile(TI_AUDIT_SPILL_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", TI_AUDIT_SPILL_FILE)));
		return;
	}
	if (fread(header, sizeof(header), 1, file) != 1 ||
		header[0] != TI_AUDIT_SPILL_MAGIC ||
		header[1] != sizeof(TiAuditRecord))
	{
		ereport(LOG,
				(errmsg("ignoring audit spill file \"%s\" of another format",
						TI_AUDIT_SPILL_FILE)));
		header[2] = 0;
	}
	for (i = 0; i < header[2]; i++)
	{
		TiAuditRecord *slot;

		if (fread(&rec, sizeof(rec), 1, file) != 1)
			break;
		if (ti_ring->head - ti_ring->tail >= (uint64) ti_ring->size)
		{
			pg_atomic_fetch_add_u64(&ti_ring->dropped, 1);
			continue;
		}
		slot = &ti_ring->records[ti_ring->head % ti_ring->size];
		memcpy(slot, &rec, sizeof(rec));
		slot->seq = ti_ring->head++;
		slot->state = TI_AUDIT_READY;
		pg_atomic_fetch_add_u64(&ti_ring->written, 1);
	}
	FreeFile(file);
	unlink(TI_AUDIT_SPILL_FILE);
}

/*
 * ti_audit_shmem_startup
 *		Attach the ring (create it in the postmaster).  Called by shmem.c
 *		under AddinShmemInitLock.
 */
void
ti_audit_shmem_startup(void)
{
	bool		found;
	int			i;

	ti_ring = ShmemInitStruct("tenant_isolation audit ring",
							  ti_audit_shmem_size(), &found);
	if (!found)
	{
		ti_ring->lock = &(GetNamedLWLockTranche("tenant_isolation"))[0].lock;
		ti_ring->size = ti_audit_ring_size;
		ti_ring->head = 0;
		ti_ring->tail = 0;
		ti_ring->launcher_latch = NULL;
		pg_atomic_init_u64(&ti_ring->written, 0);
		pg_atomic_init_u64(&ti_ring->flushed, 0);
		pg_atomic_init_u64(&ti_ring->dropped, 0);
		pg_atomic_init_u64(&ti_ring->discarded, 0);
		for (i = 0; i < ti_ring->size; i++)
			ti_ring->records[i].state = TI_AUDIT_EMPTY;
		if (!IsUnderPostmaster)
			ti_audit_spill_load();
	}

	/* The postmaster writes the unflushed events out at a clean shutdown. */
	if (!IsUnderPostmaster)
		on_shmem_exit(ti_audit_shmem_exit, (Datum) 0);
}

/*
 * ti_audit_shmem_exit
 *		At a clean shutdown of the postmaster, save the READY records to the
 *		spill file.  After a crash (code != 0) shared memory cannot be
 *		trusted and nothing is written.
 */
static void
ti_audit_shmem_exit(int code, Datum arg)
{
	FILE	   *file;
	uint32		header[3];
	uint64		seq;

	if (code != 0 || ti_ring == NULL)
		return;

	header[0] = TI_AUDIT_SPILL_MAGIC;
	header[1] = sizeof(TiAuditRecord);
	header[2] = 0;
	for (seq = ti_ring->tail; seq < ti_ring->head; seq++)
		if (ti_ring->records[seq % ti_ring->size].state == TI_AUDIT_READY)
			header[2]++;
	if (header[2] == 0)
	{
		unlink(TI_AUDIT_SPILL_FILE);
		return;
	}

	file = AllocateFile(TI_AUDIT_SPILL_FILE ".tmp", PG_BINARY_W);
	if (file == NULL)
		goto error;
	if (fwrite(header, sizeof(header), 1, file) != 1)
		goto error;
	for (seq = ti_ring->tail; seq < ti_ring->head; seq++)
	{
		TiAuditRecord *rec = &ti_ring->records[seq % ti_ring->size];

		if (rec->state == TI_AUDIT_READY &&
			fwrite(rec, sizeof(*rec), 1, file) != 1)
			goto error;
	}
	if (FreeFile(file))
	{
		file = NULL;
		goto error;
	}
	(void) durable_rename(TI_AUDIT_SPILL_FILE ".tmp", TI_AUDIT_SPILL_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", TI_AUDIT_SPILL_FILE ".tmp")));
	if (file)
		FreeFile(file);
	unlink(TI_AUDIT_SPILL_FILE ".tmp");
}

/*
 * ti_audit_copy
 *		Copy a string into a fixed-size field, truncated at a character
 *		boundary of the database encoding.
 */
static void
ti_audit_copy(char *dst, const char *src, int size)
{
	int			len;

	if (src == NULL)
	{
		dst[0] = '\0';
		return;
	}
	len = strnlen(src, size * 4);
	if (len >= size)
		len = pg_mbcliplen(src, len, size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * ti_audit_role_name
 *		Copy a role's name out of the syscache, without palloc and without
 *		an error for a role that is gone.
 */
static void
ti_audit_role_name(Oid roleid, char *dst)
{
	HeapTuple	tuple;

	dst[0] = '\0';
	if (!OidIsValid(roleid) || !IsTransactionState())
		return;
	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(roleid));
	if (!HeapTupleIsValid(tuple))
		return;
	strlcpy(dst, NameStr(((Form_pg_authid) GETSTRUCT(tuple))->rolname),
			NAMEDATALEN);
	ReleaseSysCache(tuple);
}

/*
 * ti_audit_client_addr
 *		The numeric address of the client, computed once per backend; empty
 *		for Unix-domain sockets and for processes without a client (parallel
 *		workers).  An IPv6 zone suffix is cut so that the text is valid inet
 *		input.
 */
static const char *
ti_audit_client_addr(void)
{
	if (!ti_client_addr_done)
	{
		ti_client_addr_done = true;
		ti_client_addr[0] = '\0';
		if (MyBEEntry != NULL && MyBEEntry->st_clientaddr.salen > 0 &&
			MyBEEntry->st_clientaddr.addr.ss_family != AF_UNIX)
		{
			char		host[NI_MAXHOST];
			char	   *zone;

			if (pg_getnameinfo_all(&MyBEEntry->st_clientaddr.addr,
								   MyBEEntry->st_clientaddr.salen,
								   host, sizeof(host), NULL, 0,
								   NI_NUMERICHOST) == 0)
			{
				zone = strchr(host, '%');
				if (zone)
					*zone = '\0';
				strlcpy(ti_client_addr, host, sizeof(ti_client_addr));
			}
		}
	}
	return ti_client_addr;
}

/*
 * ti_audit_log_append
 *		Append " key=value" to a bounded buffer; quoted values get \" \\ and
 *		control characters escaped so that one event is always one line.
 */
static void
ti_audit_log_append(char *buf, size_t size, size_t *len, const char *key,
					const char *value, bool quote)
{
	const char *p;

	*len += snprintf(buf + *len, size - *len, " %s=", key);
	if (*len >= size - 1)
	{
		*len = size - 1;
		return;
	}
	if (quote)
		buf[(*len)++] = '"';
	for (p = value; *p && *len < size - 6; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c == '"' || c == '\\')
		{
			buf[(*len)++] = '\\';
			buf[(*len)++] = c;
		}
		else if (c < 0x20 || c == 0x7f)
			*len += snprintf(buf + *len, size - *len, "\\x%02x", c);
		else
			buf[(*len)++] = c;
	}
	if (quote)
		buf[(*len)++] = '"';
	buf[*len] = '\0';
}

/*
 * ti_audit_log_line
 *		The structured server log line of an event.
 */
static void
ti_audit_log_line(const TiAuditRecord *rec)
{
	char		buf[1536];
	size_t		len = 0;
	char		tenant[37];
	char		pid[16];

	buf[0] = '\0';
	if (rec->has_tenant)
	{
		static const char hex[] = "0123456789abcdef";
		int			i,
					j = 0;

		for (i = 0; i < UUID_LEN; i++)
		{
			if (i == 4 || i == 6 || i == 8 || i == 10)
				tenant[j++] = '-';
			tenant[j++] = hex[rec->tenant.data[i] >> 4];
			tenant[j++] = hex[rec->tenant.data[i] & 0xf];
		}
		tenant[j] = '\0';
	}
	else
		strcpy(tenant, "none");
	snprintf(pid, sizeof(pid), "%d", rec->pid);

	ti_audit_log_append(buf, sizeof(buf), &len, "kind", rec->kind, false);
	ti_audit_log_append(buf, sizeof(buf), &len, "tenant", tenant, false);
	ti_audit_log_append(buf, sizeof(buf), &len, "object", rec->object, true);
	ti_audit_log_append(buf, sizeof(buf), &len, "sqlstate",
						rec->sqlerrcode ? unpack_sql_state(rec->sqlerrcode) : "00000",
						false);
	ti_audit_log_append(buf, sizeof(buf), &len, "user", rec->session_user, true);
	ti_audit_log_append(buf, sizeof(buf), &len, "role", rec->current_role, true);
	ti_audit_log_append(buf, sizeof(buf), &len, "database", ti_database_name, true);
	ti_audit_log_append(buf, sizeof(buf), &len, "pid", pid, false);
	ti_audit_log_append(buf, sizeof(buf), &len, "application", rec->appname, true);
	ti_audit_log_append(buf, sizeof(buf), &len, "client", rec->client_addr, true);
	ti_audit_log_append(buf, sizeof(buf), &len, "detail", rec->detail, true);

	ereport(LOG,
			(errmsg("tenant_isolation audit:%s", buf),
			 errhidestmt(true),
			 errhidecontext(true)));
}

/*
 * ti_audit_advance_tail
 *		Release the DONE records at the tail.  Caller holds the lock
 *		exclusively.
 */
static void
ti_audit_advance_tail(void)
{
	while (ti_ring->tail < ti_ring->head)
	{
		TiAuditRecord *rec = &ti_ring->records[ti_ring->tail % ti_ring->size];

		if (rec->state != TI_AUDIT_DONE)
			break;
		rec->state = TI_AUDIT_EMPTY;
		ti_ring->tail++;
	}
}

/*
 * ti_audit_ring_put
 *		Store one event; count it as dropped when the ring is full.  Never
 *		waits for a flush.
 */
static bool
ti_audit_ring_put(const TiAuditRecord *rec)
{
	TiAuditRecord *slot;
	uint64		used;
	Latch	   *latch;

	LWLockAcquire(ti_ring->lock, LW_EXCLUSIVE);
	if (ti_ring->head - ti_ring->tail >= (uint64) ti_ring->size)
	{
		latch = ti_ring->launcher_latch;
		LWLockRelease(ti_ring->lock);
		pg_atomic_fetch_add_u64(&ti_ring->dropped, 1);
		if (latch)
			SetLatch(latch);
		return false;
	}
	slot = &ti_ring->records[ti_ring->head % ti_ring->size];
	memcpy(slot, rec, sizeof(TiAuditRecord));
	slot->seq = ti_ring->head++;
	slot->state = TI_AUDIT_READY;
	used = ti_ring->head - ti_ring->tail;
	latch = ti_ring->launcher_latch;
	LWLockRelease(ti_ring->lock);

	pg_atomic_fetch_add_u64(&ti_ring->written, 1);
	/* Wake the launcher early when the ring fills up. */
	if (latch && used >= (uint64) ti_ring->size / 2)
		SetLatch(latch);
	return true;
}

/*
 * ti_audit
 *		Record a security event.  The detail must never contain a token, a
 *		key or another tenant's row values.
 *
 * Called right before an ERROR is raised and in parallel workers: raises no
 * error, allocates nothing but what the LOG line needs.
 */
void
ti_audit(const char *kind, const char *object, int sqlerrcode,
		 const char *detail)
{
	TiAuditRecord rec;
	bool		stored = false;

	if (kind == NULL)
		return;

	memset(&rec, 0, offsetof(TiAuditRecord, session_user));
	rec.has_tenant = ti_context_get(&rec.tenant);
	/* per-tenant counters of tenant_stats (denials, logins); never fails */
	ti_limits_note_audit(kind, rec.has_tenant ? &rec.tenant : NULL, sqlerrcode);
	/* successful logins are recorded only on request: they are frequent */
	if (!ti_audit_logins && strcmp(kind, "login") == 0)
		return;

	rec.time = GetCurrentTimestamp();
	rec.pid = MyProcPid;
	if (MyProc != NULL && MyProc->lockGroupLeader != NULL &&
		MyProc->lockGroupLeader != MyProc)
		rec.pid = MyProc->lockGroupLeader->pid;
	rec.dboid = MyDatabaseId;
	rec.sqlerrcode = sqlerrcode;
	ti_audit_role_name(GetSessionUserId(), rec.session_user);
	/* the role the session acts as (SET ROLE), not a definer's owner */
	ti_audit_role_name(GetOuterUserId(), rec.current_role);
	ti_audit_copy(rec.appname, application_name, NAMEDATALEN);
	strlcpy(rec.client_addr, ti_audit_client_addr(), TI_AUDIT_ADDR_LEN);
	ti_audit_copy(rec.kind, kind, TI_AUDIT_KIND_LEN);
	ti_audit_copy(rec.object, object, TI_AUDIT_OBJECT_LEN);
	ti_audit_copy(rec.detail, detail, TI_AUDIT_DETAIL_LEN);

	if (ti_audit_destination != TI_AUDIT_DEST_LOG && ti_ring != NULL)
		stored = ti_audit_ring_put(&rec);

	/*
	 * An administrator who switches tenants per transaction (assume_tenant
	 * in a pool) would write a server-log line per transaction, ~45 µs,
	 * more than the switch itself.  With destination both, the successful
	 * assume_tenant is therefore only stored in the ring, on its way to
	 * audit_log, unless audit_log_assume_tenant asks for the line too.  The
	 * line is still written when it is the only record: destination log,
	 * no ring, or a full ring that dropped the event.  Refusals
	 * (assume_tenant_denied) are always logged.
	 */
	if (stored && !ti_audit_log_assume && strcmp(kind, "assume_tenant") == 0)
		return;

	if (ti_audit_destination != TI_AUDIT_DEST_TABLE || ti_ring == NULL)
	{
		if (ti_database_name[0] == '\0' && OidIsValid(MyDatabaseId) &&
			IsTransactionState())
		{
			char	   *name = get_database_name(MyDatabaseId);

			if (name)
				strlcpy(ti_database_name, name, NAMEDATALEN);
		}
		ti_audit_log_line(&rec);
	}
}

/*
 * _audit(kind, object, detail): SQL entry to ti_audit for the provisioning
 * functions.  EXECUTE is revoked from PUBLIC.
 */
Datum
ti_audit_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	ti_audit(text_to_cstring(PG_GETARG_TEXT_PP(0)),
			 PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
			 0,
			 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Background workers
 * ---------------------------------------------------------------------
 */

/*
 * ti_audit_mark_db_done
 *		Mark every READY record of a database DONE; returns how many.
 */
static uint64
ti_audit_mark_db_done(Oid dboid)
{
	uint64		seq;
	uint64		n = 0;

	LWLockAcquire(ti_ring->lock, LW_EXCLUSIVE);
	for (seq = ti_ring->tail; seq < ti_ring->head; seq++)
	{
		TiAuditRecord *rec = &ti_ring->records[seq % ti_ring->size];

		if (rec->state == TI_AUDIT_READY && rec->dboid == dboid)
		{
			rec->state = TI_AUDIT_DONE;
			n++;
		}
	}
	ti_audit_advance_tail();
	LWLockRelease(ti_ring->lock);
	return n;
}

/*
 * ti_audit_launcher_exit
 *		Nobody may set the latch of a launcher that is gone.
 */
static void
ti_audit_launcher_exit(int code, Datum arg)
{
	LWLockAcquire(ti_ring->lock, LW_EXCLUSIVE);
	ti_ring->launcher_latch = NULL;
	LWLockRelease(ti_ring->lock);
}

typedef struct TiAuditFlusher
{
	Oid			dboid;
	BackgroundWorkerHandle *handle;
} TiAuditFlusher;

/*
 * ti_audit_database_exists
 *		Does the database still exist?  The launcher is connected to no
 *		database, but pg_database is a shared catalog.
 */
static bool
ti_audit_database_exists(Oid dboid)
{
	bool		exists;

	if (!OidIsValid(dboid))
		return false;
	StartTransactionCommand();
	exists = SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dboid));
	CommitTransactionCommand();
	return exists;
}

/*
 * ti_audit_launch_cycle
 *		Start a flush worker for every database with pending events (at
 *		most TI_AUDIT_MAX_FLUSHERS at once); discard the events of databases
 *		that were dropped.
 */
static void
ti_audit_launch_cycle(TiAuditFlusher *flushers)
{
	Oid			dbs[TI_AUDIT_MAX_FLUSHERS];
	int			ndbs = 0;
	int			i,
				j;
	uint64		seq;

	/* forget the flush workers that have exited */
	for (i = 0; i < TI_AUDIT_MAX_FLUSHERS; i++)
	{
		pid_t		pid;

		if (flushers[i].handle != NULL &&
			GetBackgroundWorkerPid(flushers[i].handle, &pid) == BGWH_STOPPED)
		{
			pfree(flushers[i].handle);
			flushers[i].handle = NULL;
			flushers[i].dboid = InvalidOid;
		}
	}

	LWLockAcquire(ti_ring->lock, LW_EXCLUSIVE);
	ti_audit_advance_tail();
	for (seq = ti_ring->tail;
		 seq < ti_ring->head && ndbs < TI_AUDIT_MAX_FLUSHERS; seq++)
	{
		TiAuditRecord *rec = &ti_ring->records[seq % ti_ring->size];

		if (rec->state != TI_AUDIT_READY)
			continue;
		for (j = 0; j < ndbs; j++)
			if (dbs[j] == rec->dboid)
				break;
		if (j == ndbs)
			dbs[ndbs++] = rec->dboid;
	}
	LWLockRelease(ti_ring->lock);

	for (j = 0; j < ndbs; j++)
	{
		BackgroundWorker worker;
		BackgroundWorkerHandle *handle;
		int			free_slot = -1;
		MemoryContext oldcxt;

		for (i = 0; i < TI_AUDIT_MAX_FLUSHERS; i++)
		{
			if (flushers[i].handle != NULL && flushers[i].dboid == dbs[j])
				break;
			if (flushers[i].handle == NULL && free_slot < 0)
				free_slot = i;
		}
		if (i < TI_AUDIT_MAX_FLUSHERS)
			continue;			/* already running; it loops until done */

		if (!ti_audit_database_exists(dbs[j]))
		{
			pg_atomic_fetch_add_u64(&ti_ring->discarded,
									ti_audit_mark_db_done(dbs[j]));
			continue;
		}
		if (free_slot < 0)
			break;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
			BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = BGW_NEVER_RESTART;
		strlcpy(worker.bgw_library_name, "tenant_isolation", BGW_MAXLEN);
		strlcpy(worker.bgw_function_name, "ti_audit_flusher_main", BGW_MAXLEN);
		snprintf(worker.bgw_name, BGW_MAXLEN,
				 "tenant_isolation audit flush for database %u", dbs[j]);
		strlcpy(worker.bgw_type, "tenant_isolation audit flush", BGW_MAXLEN);
		worker.bgw_main_arg = ObjectIdGetDatum(dbs[j]);
		worker.bgw_notify_pid = MyProcPid;

		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		if (RegisterDynamicBackgroundWorker(&worker, &handle))
		{
			flushers[free_slot].dboid = dbs[j];
			flushers[free_slot].handle = handle;
		}
		MemoryContextSwitchTo(oldcxt);
		/* no free worker slot: try again at the next cycle */
	}
}

/*
 * ti_audit_launcher_main
 *		Entry point of the launcher background worker.
 */
void
ti_audit_launcher_main(Datum main_arg)
{
	TiAuditFlusher flushers[TI_AUDIT_MAX_FLUSHERS];

	memset(flushers, 0, sizeof(flushers));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	if (ti_ring == NULL)
		proc_exit(0);

	before_shmem_exit(ti_audit_launcher_exit, (Datum) 0);
	LWLockAcquire(ti_ring->lock, LW_EXCLUSIVE);
	ti_ring->launcher_latch = MyLatch;
	LWLockRelease(ti_ring->lock);

	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!ti_audit_flush_paused)
			ti_audit_launch_cycle(flushers);

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ti_audit_flush_interval, PG_WAIT_EXTENSION);
	}
}

/*
 * ti_audit_flush_batch
 *		Insert up to TI_AUDIT_BATCH pending events of this database into
 *		tenant_isolation.audit_log in one transaction, then mark them DONE.
 *		Returns the number of events handled, 0 when none is left.
 *
 * The records are marked only after the commit: a flush worker that fails
 * leaves them READY for the next one.
 */
static int
ti_audit_flush_batch(TiAuditRecord *batch, SPIPlanPtr *plan)
{
	int			n = 0;
	int			i;
	uint64		seq;
	bool		present = false;
	Oid			nsp;

	LWLockAcquire(ti_ring->lock, LW_SHARED);
	for (seq = ti_ring->tail; seq < ti_ring->head && n < TI_AUDIT_BATCH; seq++)
	{
		TiAuditRecord *rec = &ti_ring->records[seq % ti_ring->size];

		if (rec->state == TI_AUDIT_READY && rec->dboid == MyDatabaseId)
			memcpy(&batch[n++], rec, sizeof(TiAuditRecord));
	}
	LWLockRelease(ti_ring->lock);
	if (n == 0)
		return 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "flushing tenant_isolation audit events");

	nsp = get_namespace_oid(TI_SCHEMA, true);
	present = OidIsValid(get_extension_oid("tenant_isolation", true)) &&
		OidIsValid(nsp) && OidIsValid(get_relname_relid("audit_log", nsp));

	if (present)
	{
		Oid			argtypes[12] = {TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID,
			INT4OID, TEXTOID, TEXTOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
		char	   *dbname = get_database_name(MyDatabaseId);

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (*plan == NULL)
		{
			*plan = SPI_prepare("INSERT INTO tenant_isolation.audit_log "
								"(event_time, database, session_user_name, current_role_name, "
								"backend_pid, application_name, client_addr, tenant, kind, "
								"object, sqlstate, detail) "
								"VALUES ($1, $2, $3, $4, $5, $6, $7::pg_catalog.inet, $8, $9, $10, $11, $12)",
								12, argtypes);
			if (*plan == NULL)
				elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
			SPI_keepplan(*plan);
		}
		for (i = 0; i < n; i++)
		{
			TiAuditRecord *rec = &batch[i];
			Datum		values[12];
			char		nulls[12];

			memset(nulls, ' ', sizeof(nulls));
#define TI_TEXT_OR_NULL(k, s) \
			do { \
				if ((s)[0] == '\0') { values[k] = (Datum) 0; nulls[k] = 'n'; } \
				else values[k] = CStringGetTextDatum(s); \
			} while (0)
			values[0] = TimestampTzGetDatum(rec->time);
			values[1] = CStringGetTextDatum(dbname ? dbname : "");
			TI_TEXT_OR_NULL(2, rec->session_user);
			TI_TEXT_OR_NULL(3, rec->current_role);
			values[4] = Int32GetDatum(rec->pid);
			TI_TEXT_OR_NULL(5, rec->appname);
			TI_TEXT_OR_NULL(6, rec->client_addr);
			if (rec->has_tenant)
				values[7] = UUIDPGetDatum(&rec->tenant);
			else
			{
				values[7] = (Datum) 0;
				nulls[7] = 'n';
			}
			values[8] = CStringGetTextDatum(rec->kind);
			TI_TEXT_OR_NULL(9, rec->object);
			if (rec->sqlerrcode != 0)
				values[10] = CStringGetTextDatum(unpack_sql_state(rec->sqlerrcode));
			else
			{
				values[10] = (Datum) 0;
				nulls[10] = 'n';
			}
			TI_TEXT_OR_NULL(11, rec->detail);
#undef TI_TEXT_OR_NULL
			if (SPI_execute_plan(*plan, values, nulls, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not insert into tenant_isolation.audit_log");
		}
		SPI_finish();
	}

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	LWLockAcquire(ti_ring->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		TiAuditRecord *rec = &ti_ring->records[batch[i].seq % ti_ring->size];

		/* only the flush worker of this database changes READY records */
		if (rec->seq == batch[i].seq && rec->state == TI_AUDIT_READY)
			rec->state = TI_AUDIT_DONE;
	}
	ti_audit_advance_tail();
	LWLockRelease(ti_ring->lock);

	if (present)
		pg_atomic_fetch_add_u64(&ti_ring->flushed, n);
	else
		pg_atomic_fetch_add_u64(&ti_ring->discarded, n);
	return n;
}

/*
 * ti_audit_flusher_main
 *		Entry point of a flush worker: one database, as the bootstrap
 *		superuser, until its pending events are all handled.
 */
void
ti_audit_flusher_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	TiAuditRecord *batch;
	SPIPlanPtr	plan = NULL;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("tenant_isolation audit flush");

	if (ti_ring == NULL)
		proc_exit(0);
	ti_audit_in_flusher = true;
	batch = MemoryContextAlloc(TopMemoryContext,
							   sizeof(TiAuditRecord) * TI_AUDIT_BATCH);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ti_audit_flush_batch(batch, &plan) == 0)
			break;
	}
	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

static void
ti_audit_require_ring(void)
{
	if (ti_ring == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_isolation must be loaded via shared_preload_libraries")));
}

/*
 * audit_flush(timeout_ms integer) RETURNS boolean
 *
 * Ask the launcher to flush now and wait until every event of this
 * database that was in the ring when the call started is in audit_log (true)
 * or the timeout expires (false).  Returns false at once while flushing is
 * paused.  Administrators only.
 */
Datum
ti_audit_flush(PG_FUNCTION_ARGS)
{
	int			timeout_ms = PG_ARGISNULL(0) ? 10000 : PG_GETARG_INT32(0);
	uint64		target;
	TimestampTz start = GetCurrentTimestamp();

	if (!ti_is_admin(GetUserId()))
	{
		ti_audit("denied_admin_function", "audit_flush",
				 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to flush the audit log"),
				 errdetail("Only superusers and members of tenant_isolation_admin may flush the audit log.")));
	}
	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	ti_audit_require_ring();
	if (ti_audit_flush_paused)
		PG_RETURN_BOOL(false);

	LWLockAcquire(ti_ring->lock, LW_SHARED);
	target = ti_ring->head;
	LWLockRelease(ti_ring->lock);

	for (;;)
	{
		uint64		seq;
		bool		pending = false;
		Latch	   *latch;

		LWLockAcquire(ti_ring->lock, LW_SHARED);
		for (seq = ti_ring->tail; seq < target; seq++)
		{
			TiAuditRecord *rec = &ti_ring->records[seq % ti_ring->size];

			if (rec->state == TI_AUDIT_READY && rec->dboid == MyDatabaseId)
			{
				pending = true;
				break;
			}
		}
		latch = ti_ring->launcher_latch;
		LWLockRelease(ti_ring->lock);

		if (!pending)
			PG_RETURN_BOOL(true);
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), timeout_ms))
			PG_RETURN_BOOL(false);
		if (latch)
			SetLatch(latch);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * audit_dropped() RETURNS bigint: events lost because the ring was full.
 */
Datum
ti_audit_dropped(PG_FUNCTION_ARGS)
{
	ti_audit_require_ring();
	PG_RETURN_INT64((int64) pg_atomic_read_u64(&ti_ring->dropped));
}

/*
 * _audit_stats(): the ring's size, fill and counters since the start.
 */
Datum
ti_audit_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8];
	uint64		pending;
	bool		launcher;

	ti_audit_require_ring();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(ti_ring->lock, LW_SHARED);
	pending = ti_ring->head - ti_ring->tail;
	launcher = ti_ring->launcher_latch != NULL;
	LWLockRelease(ti_ring->lock);

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int32GetDatum(ti_ring->size);
	values[1] = Int64GetDatum((int64) pending);
	values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&ti_ring->written));
	values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&ti_ring->flushed));
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&ti_ring->dropped));
	values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&ti_ring->discarded));
	values[6] = BoolGetDatum(ti_audit_flush_paused);
	values[7] = BoolGetDatum(launcher);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * _audit_log_guard(): statement trigger that makes audit_log append-only.
 *
 * Fires (ENABLE ALWAYS, so session_replication_role does not switch it off)
 * before INSERT, UPDATE, DELETE and TRUNCATE.  Only the flush worker may
 * insert; everything else is refused with 42501, for the table's owner and
 * superusers too, and the attempt is audited.
 */
Datum
ti_audit_log_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "_audit_log_guard: not called by trigger manager");

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		if (ti_audit_in_flusher)
			return PointerGetDatum(NULL);
		what = "INSERT";
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		what = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		what = "DELETE";
	else
		what = "TRUNCATE";

	ti_audit("denied_audit_write", "tenant_isolation.audit_log",
			 ERRCODE_INSUFFICIENT_PRIVILEGE, what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("tenant_isolation.audit_log is append-only"),
			 errdetail("%s is not allowed; only the audit flush worker writes to the audit log.",
					   what)));
	PG_RETURN_NULL();			/* keep the compiler quiet */
}
