/*-------------------------------------------------------------------------
 *
 * context.c
 *	  The tenant state of a session, owned here and nowhere else: the
 *	  context, whether it is transaction-scoped, the schema-tier role and
 *	  search_path switch, and which tenant the session's objects belong to.
 *
 * Everything other modules know about the context they ask here
 * (ti_context_get, ti_ctx_transaction_scoped, ti_context_claims) or learn
 * through ti_ctx_subscribe; they keep no copy.  Like sepgsql/label.c, one
 * static block holds the state, and transaction and subtransaction
 * callbacks restore it exactly.
 *
 * The states and transitions (docs/enforcement.md draws them):
 *
 *	- The context is the GUC tenant_isolation.tenant_id (PGC_SUSET).  The
 *	  GUC machinery makes it transactional exactly like SET: login() is SET,
 *	  login_local() is SET LOCAL, a (sub)transaction rollback restores the
 *	  value with its "extra", RESET ALL and DISCARD ALL clear it, parallel
 *	  workers receive it.  The extra (TiContextExtra) carries everything
 *	  that must travel with the value: the parsed tenant, the poison epoch,
 *	  and for a schema-tier entry the search_path it replaced.  So a
 *	  rollback restores the schema-tier bookkeeping together with the
 *	  search_path GUC it describes, with no code of ours.  The tenant's
 *	  role is made current by schema_tier.c, which reconciles it with the
 *	  effective context before every statement.
 *	- "Transaction-scoped" is not a flag: it is read from the GUC stack of
 *	  the variable (ti_tenant_after_commit): the context is transaction-
 *	  scoped when the value in force now is not the one that a COMMIT would
 *	  leave.  A savepoint rollback can therefore never lose it.
 *	- A failed login must leave no context although its error restores the
 *	  previous value: every value carries the poison epoch current when it
 *	  was set, a failed login bumps the epoch, and stale values are
 *	  replaced by '' at the next statement (ti_ctx_statement_start).
 *	- The objects tenant (ti_obj) is the tenant whose objects the session
 *	  may hold.  Invariant, true at every statement start: every temporary
 *	  relation, cursor and session-level custom setting of the session is
 *	  tagged with "no tenant" or with ti_obj, and ti_obj is the effective
 *	  context.  Every transition restores the invariant by discarding what
 *	  is tagged with another tenant (ti_discard_other): entering a tenant,
 *	  leaving one, the end of a login_local transaction (XACT_EVENT_PRE_COMMIT,
 *	  while catalog changes are still possible), and a failed login or a
 *	  RESET ALL (at the next statement, ti_ctx_statement_start, before
 *	  anything runs).  ti_obj and the temporary relations' tags change
 *	  through an undo log that subtransaction and transaction rollback
 *	  replay, so a rolled-back login or logout leaves the bookkeeping as it
 *	  was, exactly like the catalog changes (drops) it made.
 *
 * Tags:
 *	- Temporary relations, functions and types: tagged with the context at
 *	  creation (OAT_POST_CREATE), and retagged on every write
 *	  (ExecutorCheckPerms of an INSERT/UPDATE/DELETE/MERGE/COPY FROM target,
 *	  executor.c) and every ALTER (OAT_POST_ALTER).  nextval() and setval()
 *	  have no hook: a temporary sequence whose state changed since the last
 *	  transition was written under ti_obj.  Discarding drops them.  Not
 *	  tracked: an index built under a tenant on a table of no tenant (its
 *	  entries derive from the table's rows, unless an expression calls a
 *	  function falsely marked IMMUTABLE that reads tables).
 *	- Session-level custom settings (placeholders such as app.x and other
 *	  extensions' variables set in the session): there is no hook on
 *	  set_config(), so at every transition the settings set in the session
 *	  are compared with the values registered at the previous transition:
 *	  a value that changed since was written under ti_obj.  Discarding
 *	  resets them.  The registry maps (name, value) to a tag, so a rollback
 *	  that brings an old value back finds that value's own tag.
 *	- Cursors: PostgreSQL 15 offers no way to enumerate portals one by one
 *	  (nor to tell which context a bound portal's plan was made in), so
 *	  every transition closes every cursor that is not running, as DISCARD
 *	  ALL does.  Prepared statements survive: their plans are invalidated
 *	  (below) and re-planned under the new context.
 *
 * Cached generic plans read the tenant at execution (_current_tenant_uuid,
 * planner.c) and survive every switch between tenants; they are dropped
 * only when the session is left without a context (logout, RESET), and
 * executor.c refuses them without one.  Plans used once carry the tenant as
 * a Const, so such a plan, if cached, must never run under another context
 * than the one it was made in.  Every such plan
 * records a dependency on tenant_isolation._tenant_dependency, and
 * invalidating that one function's syscache entry locally invalidates
 * exactly those plans.  That happens when the session enters a tenant other
 * than the one the cached plans were made for; leaving a context for none
 * invalidates nothing (executor.c refuses to run a tenant-dependent plan
 * without a context), so a pooled client that logs into the same tenant
 * again reuses its plans.
 *
 * Cost of a switch: the discard walks the temporary relations the session
 * registered, the custom settings it set (a pass over the GUC array
 * looking at two fields), and the portal table; it drops only what is
 * tagged with another tenant.  Nothing is reset wholesale.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/context.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/parallel.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "tenant_isolation.h"

/* A tenant or "no tenant": what objects are tagged with. */
typedef struct TiTag
{
	bool		has;
	pg_uuid_t	tenant;
} TiTag;

/*
 * What the GUC machinery keeps next to every value of tenant_id.  Restored
 * with the value on rollback; malloc'd, as guc.c requires.
 *
 * The claims of the token that set the value live here too (since 1.1;
 * before, a second variable, tenant_isolation.claims, was written with
 * every login, which cost as much as the context itself).  Carried by the
 * value, they are exactly as transactional as the context: a rollback
 * brings back the previous value's claims with it, a value set by anything
 * but a login (SET, assume_tenant, logout, RESET) has none, and a poisoned
 * value shows none because only the effective context's claims are read.
 * Parallel workers rebuild the extra from the value's text and get no
 * claims; current_claims() is PARALLEL RESTRICTED, so only the leader
 * reads them.
 */
typedef struct TiContextExtra
{
	bool		has_tenant;
	pg_uuid_t	tenant;
	uint64		epoch;			/* ti_poison_epoch when the value was set */
	bool		schema;			/* this value entered a schema-tier tenant */
	bool		has_claims;		/* set by a login: claims follow the path */
	Size		claims_off;		/* offset of the claims in saved_search_path[] */
	char		saved_search_path[FLEXIBLE_ARRAY_MEMBER];	/* search_path before it,
															 * then the claims */
} TiContextExtra;

static char *ti_tenant_id_string = NULL;
static char *ti_claims_string = NULL;

/* The GUC record of tenant_id, to read its stack (ti_tenant_after_commit). */
static struct config_generic *ti_tenant_gconf = NULL;

/*
 * What the next value set by ti_set_guc carries in its extra; armed only
 * for the duration of that set_config_option call.
 */
static bool ti_next_armed = false;
static bool ti_next_schema = false;
static const char *ti_next_saved_search_path = NULL;
static const char *ti_next_claims = NULL;

/* Bumped by every failed login; values set before it are not effective. */
static uint64 ti_poison_epoch = 0;

/* The effective context, kept in step by the assign hook. */
static TiContextExtra *ti_current_extra = NULL;
static TiTag ti_eff;

/* The tenant whose objects the session may hold (see the header). */
static TiTag ti_obj;

/*
 * Which tenant the cached tenant-dependent plans were made for, and whether
 * unscoped plans (a superuser without a context) may be cached too.
 */
static bool ti_plans_for_has = false;
static pg_uuid_t ti_plans_for;
static bool ti_unscoped_plans = false;

/*
 * May the plan cache hold a plan or a rewritten query that carries the
 * tenant as a constant (ti_note_const_plan)?  Only then does entering
 * another tenant have anything to invalidate.  Starts true: nothing is
 * known yet.
 */
static bool ti_const_plans = true;

/* syscache hash of _tenant_dependency's pg_proc row; 0 while unknown */
static Oid	ti_dependency_funcid = InvalidOid;
static uint32 ti_dependency_hash = 0;

/* syscache hash of _current_tenant_uuid's pg_proc row; 0 while unknown */
static Oid	ti_runtime_funcid = InvalidOid;
static uint32 ti_runtime_hash = 0;

/*
 * Temporary objects of this session and their tags: relations, functions
 * and types (a function body or an enum label can hold a tenant's data).
 * Functions and types are registered at creation, when their catalog row is
 * not yet visible; "resolved" says whether we have since checked that the
 * object is in our temporary namespace and may be dropped on its own.
 */
typedef struct TiObjKey
{
	Oid			classId;
	Oid			objid;
} TiObjKey;

typedef struct TiTempRel
{
	TiObjKey	key;			/* hash key */
	TiTag		tag;
	bool		resolved;
	/* a sequence: its state at the last transition (nextval has no hook) */
	bool		is_seq;
	bool		seq_known;
	bool		seq_called;
	int64		seq_last;
} TiTempRel;

static HTAB *ti_temp_rels = NULL;

/* Did the last ti_ctx_statement_start drop temporary relations? */
static bool ti_dropped_temp_rels = false;

/* Session-level custom settings as registered at the last transition. */
#define TI_SETTING_NAMELEN 128
typedef struct TiSetting
{
	char		name[TI_SETTING_NAMELEN];	/* hash key */
	TiTag		tag;
	char	   *value;			/* in ti_ctx_cxt */
} TiSetting;

static HTAB *ti_settings = NULL;
static MemoryContext ti_ctx_cxt = NULL;

/*
 * Undo log of ti_obj and of the temporary relations' tags, for the open
 * transaction.  Entries are in time order; the entries of a subtransaction
 * and its committed children form the tail of the log while it runs.
 */
typedef struct TiUndo
{
	SubTransactionId subid;
	bool		is_obj;			/* ti_obj changed (else a temp object's entry) */
	TiObjKey	key;
	bool		had;			/* the temp object had an entry */
	bool		resolved;		/* its previous resolved flag */
	TiTag		prev;			/* previous ti_obj or tag */
} TiUndo;

static TiUndo *ti_undo = NULL;
static int	ti_nundo = 0;
static int	ti_maxundo = 0;

/* Subscribers to changes of the context. */
typedef struct TiCtxSubscriber
{
	TiCtxCallback cb;
	void	   *arg;
} TiCtxSubscriber;

#define TI_MAX_SUBSCRIBERS 8
static TiCtxSubscriber ti_subscribers[TI_MAX_SUBSCRIBERS];
static int	ti_nsubscribers = 0;

static object_access_hook_type prev_object_access_hook = NULL;

PG_FUNCTION_INFO_V1(ti_current_tenant);
PG_FUNCTION_INFO_V1(ti_logout);
PG_FUNCTION_INFO_V1(ti_assume_tenant);
PG_FUNCTION_INFO_V1(ti_internal_ddl_set);

static bool ti_tenant_id_check(char **newval, void **extra, GucSource source);
static void ti_tenant_id_assign(const char *newval, void *extra);
static const char *ti_tenant_id_show(void);
static const char *ti_claims_show(void);
static void ti_context_xact_callback(XactEvent event, void *arg);
static void ti_context_subxact_callback(SubXactEvent event,
										SubTransactionId mySubid,
										SubTransactionId parentSubid,
										void *arg);
static void ti_object_access(ObjectAccessType access, Oid classId,
							 Oid objectId, int subId, void *arg);

static inline bool
ti_tag_eq(const TiTag *a, const TiTag *b)
{
	if (a->has != b->has)
		return false;
	return !a->has || memcmp(a->tenant.data, b->tenant.data, UUID_LEN) == 0;
}

/* May an object tagged t stay while the objects tenant is keep? */
static inline bool
ti_tag_may_stay(const TiTag *t, const TiTag *keep)
{
	return !t->has || ti_tag_eq(t, keep);
}

/* The tag of an extra: its tenant if set and not poisoned. */
static TiTag
ti_extra_tag(const TiContextExtra *e)
{
	TiTag		t;

	memset(&t, 0, sizeof(t));
	if (e != NULL && e->has_tenant && e->epoch >= ti_poison_epoch)
	{
		t.has = true;
		t.tenant = e->tenant;
	}
	return t;
}

/*
 * ti_define_context_gucs
 *		Define tenant_isolation.tenant_id and the hidden claims variable, and
 *		install the callbacks that keep the state transactional.
 */
void
ti_define_context_gucs(void)
{
	struct config_generic **vars;
	int			n,
				i;

	DefineCustomStringVariable("tenant_isolation.tenant_id",
							   "The tenant context of this session.",
							   "Set by tenant_isolation.login(), login_local() and assume_tenant(); only superusers can SET it.",
							   &ti_tenant_id_string,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   ti_tenant_id_check,
							   ti_tenant_id_assign,
							   ti_tenant_id_show);

	/*
	 * The claims are shown only while the context they were verified for is
	 * effective: after a failed login, a rollback or a SET of the context,
	 * SHOW and current_setting() reveal nothing.  Since 1.1 the variable is
	 * never written: the claims travel in the extra of tenant_id's value
	 * (TiContextExtra) and the show hook reads them from there.
	 */
	DefineCustomStringVariable("tenant_isolation.claims",
							   "Claims of the token that set the tenant context.",
							   NULL,
							   &ti_claims_string,
							   "",
							   PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, ti_claims_show);

	vars = get_guc_variables();
	n = GetNumConfigOptions();
	for (i = 0; i < n; i++)
	{
		if (strcmp(vars[i]->name, "tenant_isolation.tenant_id") == 0)
		{
			ti_tenant_gconf = vars[i];
			break;
		}
	}
	if (ti_tenant_gconf == NULL)
		elog(ERROR, "tenant_isolation.tenant_id not found after its definition");

	ti_ctx_cxt = AllocSetContextCreate(TopMemoryContext,
									   "tenant_isolation session state",
									   ALLOCSET_SMALL_SIZES);

	RegisterXactCallback(ti_context_xact_callback, NULL);
	RegisterSubXactCallback(ti_context_subxact_callback, NULL);
	prev_object_access_hook = object_access_hook;
	object_access_hook = ti_object_access;
}

/*
 * ti_ctx_subscribe
 *		Call cb on every change of the context (see TiCtxEvent).  From
 *		_PG_init only.
 */
void
ti_ctx_subscribe(TiCtxCallback cb, void *arg)
{
	if (ti_nsubscribers >= TI_MAX_SUBSCRIBERS)
		elog(ERROR, "too many tenant context subscribers");
	ti_subscribers[ti_nsubscribers].cb = cb;
	ti_subscribers[ti_nsubscribers].arg = arg;
	ti_nsubscribers++;
}

static void
ti_ctx_notify(TiCtxEvent event, const pg_uuid_t *tenant, bool local)
{
	int			i;

	for (i = 0; i < ti_nsubscribers; i++)
		ti_subscribers[i].cb(event, tenant, local, ti_subscribers[i].arg);
}

/*
 * ti_tenant_id_check
 *		Accept '' or a uuid, and a uuid only from SET-like sources.
 *
 * A tenant in postgresql.conf, ALTER ROLE/DATABASE SET or a connection
 * option would hand every session of that role a context without a login,
 * and would survive RESET ALL; refuse those sources.
 */
static bool
ti_tenant_id_check(char **newval, void **extra, GucSource source)
{
	TiContextExtra *e;
	pg_uuid_t	u;
	bool		has = false;
	bool		schema = false;
	const char *sp = "";
	const char *claims = NULL;
	size_t		splen;
	size_t		claimslen = 0;

	if (*newval != NULL && (*newval)[0] != '\0')
	{
		if (!ti_uuid_from_cstring(*newval, &u))
		{
			GUC_check_errcode(ERRCODE_INVALID_TEXT_REPRESENTATION);
			GUC_check_errdetail("A tenant context is a uuid.");
			return false;
		}
		if (source != PGC_S_SESSION)
		{
			ti_audit("denied_set_context", "tenant_isolation.tenant_id",
					 ERRCODE_INSUFFICIENT_PRIVILEGE,
					 source == PGC_S_TEST ? "stored setting (ALTER ROLE/DATABASE/FUNCTION SET)" :
					 source == PGC_S_CLIENT ? "connection option" :
					 "setting outside a session");
			GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
			GUC_check_errmsg("tenant_isolation.tenant_id can only be set in a session");
			GUC_check_errhint("Use tenant_isolation.login() or assume_tenant().");
			return false;
		}
		has = true;
	}

	/* only a value set by ti_set_guc itself enters the schema tier */
	if (has && ti_next_armed && ti_next_schema)
	{
		schema = true;
		sp = ti_next_saved_search_path;
	}

	/* only a value set by ti_set_guc for a login carries claims */
	if (has && ti_next_armed && ti_next_claims != NULL)
	{
		claims = ti_next_claims;
		claimslen = strlen(claims) + 1;
	}

	splen = strlen(sp) + 1;
	e = (TiContextExtra *) malloc(offsetof(TiContextExtra, saved_search_path) +
								  splen + claimslen);
	if (e == NULL)
		return false;
	memset(e, 0, offsetof(TiContextExtra, saved_search_path));
	e->has_tenant = has;
	if (has)
		e->tenant = u;
	e->epoch = ti_poison_epoch;
	e->schema = schema;
	memcpy(e->saved_search_path, sp, splen);
	if (claims != NULL)
	{
		e->has_claims = true;
		e->claims_off = splen;
		memcpy(e->saved_search_path + splen, claims, claimslen);
	}
	*extra = e;
	return true;
}

/*
 * ti_set_effective
 *		Make tag the effective context; invalidate plans on a change.
 *
 * Called from the assign hook, also during transaction abort: it must not
 * fail and must not touch the catalogs.  Invalidation only flags plans.
 */
static void
ti_set_effective(const TiTag *tag)
{
	if (ti_tag_eq(tag, &ti_eff))
		return;
	ti_eff = *tag;

	/* no dependency to invalidate by: every change resets every plan */
	if (ti_dependency_hash == 0)
		ResetPlanCache();
	/* entering a tenant the cached plans were not made for */
	else if (tag->has && (!ti_plans_for_has || ti_unscoped_plans ||
						  memcmp(tag->tenant.data, ti_plans_for.data, UUID_LEN) != 0))
	{
		/* unscoped plans record no dependency: only a full reset finds them */
		if (ti_unscoped_plans)
			ResetPlanCache();
		/*
		 * Plans that read the tenant at execution stay valid; only those
		 * with the constant must go, and only if one may have been cached
		 * since the last invalidation (a pass over every cached plan
		 * otherwise, on every switch of a pooled session).
		 */
		if (ti_const_plans)
			ti_invalidate_tenant_plans();
		ti_const_plans = false;
		ti_plans_for = tag->tenant;
		ti_plans_for_has = true;
		ti_unscoped_plans = false;
	}
	ti_ctx_notify(TI_CTX_CHANGED, tag->has ? &tag->tenant : NULL, false);
}

/*
 * ti_remember_dependency
 *		catalog.c found _tenant_dependency: keep what invalidation needs, so
 *		that it works without catalog access (it runs during abort).
 */
void
ti_remember_dependency(Oid funcid)
{
	if (funcid == ti_dependency_funcid)
		return;
	ti_dependency_funcid = funcid;
	ti_dependency_hash = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(funcid));
}

/*
 * ti_remember_runtime_tenant
 *		catalog.c found _current_tenant_uuid (or not, InvalidOid): plans that
 *		read the tenant at execution record a dependency on it (setrefs.c
 *		records every non-built-in function a plan calls), which is how
 *		executor.c recognises them.
 */
void
ti_remember_runtime_tenant(Oid funcid)
{
	if (funcid == ti_runtime_funcid)
		return;
	ti_runtime_funcid = funcid;
	ti_runtime_hash = OidIsValid(funcid) ?
		GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(funcid)) : 0;
}

/*
 * ti_is_plan_marker_hash
 *		Is hashvalue the pg_proc hash by which tenant plans are invalidated?
 *		(Other pg_proc callbacks ignore those calls: no function changed.)
 */
bool
ti_is_plan_marker_hash(uint32 hashvalue)
{
	return (ti_dependency_hash != 0 && hashvalue == ti_dependency_hash) ||
		(ti_runtime_hash != 0 && hashvalue == ti_runtime_hash);
}

/*
 * ti_invalidate_runtime_plans
 *		Invalidate the plans that read the tenant at execution.  Needed only
 *		when such a plan met a session without a context (executor.c): they
 *		stay valid across every switch between tenants.  Never fails.
 */
void
ti_invalidate_runtime_plans(void)
{
	if (ti_runtime_hash != 0)
		CallSyscacheCallbacks(PROCOID, ti_runtime_hash);
}

/*
 * ti_invalidate_tenant_plans
 *		Invalidate, in this backend only, every cached plan that depends on
 *		the tenant context.  The plan cache treats it like a change of the
 *		function _tenant_dependency.  Never fails.
 */
void
ti_invalidate_tenant_plans(void)
{
	if (ti_dependency_hash != 0)
		CallSyscacheCallbacks(PROCOID, ti_dependency_hash);
	else
		ResetPlanCache();		/* nothing planned yet; cheap anyway */
}

/*
 * ti_note_unscoped_plan
 *		A superuser without a context planned a protected relation unscoped:
 *		that plan must not survive into any tenant's context.  It records no
 *		tenant dependency (it is valid without a context), so entering a
 *		tenant afterwards resets the whole plan cache.
 */
void
ti_note_unscoped_plan(void)
{
	ti_unscoped_plans = true;
}

/*
 * ti_note_const_plan
 *		The planner made a plan that may be cached with the tenant as a
 *		constant (a generic plan, planner.c), or the rewriter wrapped the
 *		constant in _tenant_dependency for a query the plan cache may keep:
 *		the next switch to another tenant must invalidate.  Plans made with
 *		bound parameters (custom plans) are not reported: plancache.c keeps
 *		only the generic plan of a statement, built without them, and a
 *		custom plan lives only in the portal running it, which a switch
 *		closes (or refuses to switch under, ti_check_change_allowed).  A
 *		one-shot plan (simple protocol) is reported too; it is not cached,
 *		and in a session that prepares nothing the invalidation it causes
 *		walks an empty plan cache.
 */
void
ti_note_const_plan(void)
{
	ti_const_plans = true;
}

/*
 * ti_plan_depends_on_tenant
 *		Does a PlannedStmt's invalItems list record the tenant dependency,
 *		either form (the tenant as a constant, or read at execution)?
 */
bool
ti_plan_depends_on_tenant(List *invalItems)
{
	ListCell   *lc;

	if (ti_dependency_hash == 0 && ti_runtime_hash == 0)
		return false;
	foreach(lc, invalItems)
	{
		PlanInvalItem *item = (PlanInvalItem *) lfirst(lc);

		if (item->cacheId == PROCOID &&
			((ti_dependency_hash != 0 && item->hashValue == ti_dependency_hash) ||
			 (ti_runtime_hash != 0 && item->hashValue == ti_runtime_hash)))
			return true;
	}
	return false;
}

static void
ti_tenant_id_assign(const char *newval, void *extra)
{
	TiTag		t;

	ti_current_extra = (TiContextExtra *) extra;
	t = ti_extra_tag(ti_current_extra);
	ti_set_effective(&t);
}

static const char *
ti_tenant_id_show(void)
{
	static char buf[UUID_LEN * 2 + 5];

	if (!ti_eff.has)
		return "";
	snprintf(buf, sizeof(buf), "%s", ti_uuid_to_cstring(&ti_eff.tenant));
	return buf;
}

/*
 * ti_claims_show
 *		The claims, only while the context they belong to is effective.
 */
static const char *
ti_claims_show(void)
{
	const char *claims;

	/*
	 * A parallel worker restores tenant_id without the leader's claims (the
	 * extra is the leader's memory); it shows the value the leader wrote
	 * into tenant_isolation.claims for it just before the statement started
	 * (ti_context_sync_parallel_claims), while the restored context holds.
	 */
	if (IsParallelWorker())
		return (ti_eff.has && ti_claims_string) ? ti_claims_string : "";
	claims = ti_context_claims();
	return claims ? claims : "";
}

/*
 * ti_context_sync_parallel_claims
 *		Before a statement that may start parallel workers: make the variable
 *		of tenant_isolation.claims (which is serialized to the workers; the
 *		leader never reads it) equal the claims in force.
 *
 * Login writes only tenant_id (the claims travel in its extra); the
 * variable is a copy made here, LOCAL so that it never outlives the
 * transaction, and written again whenever it differs from the claims in
 * force, which covers rollbacks, later switches and session-level logins.
 * The context cannot change while the statement runs (login functions are
 * parallel unsafe, and ti_check_change_allowed refuses a change under a
 * running statement on protected tables), so what the workers receive is
 * the claims of the context they restore.
 */
void
ti_context_sync_parallel_claims(void)
{
	const char *claims = ti_context_claims();

	if (claims == NULL)
		claims = "";
	if (strcmp(ti_claims_string ? ti_claims_string : "", claims) == 0)
		return;
	(void) set_config_option("tenant_isolation.claims", claims,
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
}

/*
 * ti_context_get
 *		The effective tenant context; false when there is none.
 *
 * Safe in parallel workers (they restore the leader's GUC state).
 */
bool
ti_context_get(pg_uuid_t *tenant)
{
	if (!ti_eff.has)
		return ti_citus_worker_context(tenant);	/* a Citus worker (citus.c) */
	if (tenant)
		*tenant = ti_eff.tenant;
	return true;
}

/*
 * ti_context_claims
 *		Claims JSON of the token behind the context, or NULL.
 *
 * The claims belong to the value of tenant_id in force (TiContextExtra):
 * a later SET or assume_tenant is another value without claims, and after
 * a failed login no context is effective, so a previous token's claims are
 * never shown.  The tenant comparison is a second lock on the same door.
 */
const char *
ti_context_claims(void)
{
	const TiContextExtra *e = ti_current_extra;

	if (!ti_eff.has || e == NULL || !e->has_claims || !e->has_tenant ||
		memcmp(e->tenant.data, ti_eff.tenant.data, UUID_LEN) != 0)
		return NULL;
	return e->saved_search_path + e->claims_off;
}

/*
 * ti_tenant_after_commit
 *		The context a COMMIT of the open transaction would leave in force.
 *
 * Read from the GUC stack of tenant_id, following AtEOXact_GUC: the newest
 * stack entry that made a session-level change (SET, or SET then SET LOCAL)
 * decides; its value is the one current when the next newer entry was
 * pushed (or the current value), or its masked value for SET then SET LOCAL.
 * Without such an entry the value before the transaction (the oldest
 * entry's prior) comes back.  The poison epoch applies as to any value.
 */
static TiTag
ti_tenant_after_commit(void)
{
	GucStack   *st;
	GucStack   *newer = NULL;
	void	   *extra = ti_current_extra;

	if (ti_tenant_gconf == NULL || ti_tenant_gconf->stack == NULL)
		return ti_extra_tag(ti_current_extra);
	for (st = ti_tenant_gconf->stack; st != NULL; newer = st, st = st->prev)
	{
		if (st->state == GUC_SET)
		{
			extra = newer ? newer->prior.extra : ti_current_extra;
			return ti_extra_tag((TiContextExtra *) extra);
		}
		if (st->state == GUC_SET_LOCAL)
			return ti_extra_tag((TiContextExtra *) st->masked.extra);
		extra = st->prior.extra;	/* GUC_LOCAL or GUC_SAVE: undone */
	}
	return ti_extra_tag((TiContextExtra *) extra);
}

/*
 * ti_ctx_transaction_scoped
 *		Is the context in force now one that the end of the transaction
 *		takes away (login_local, SET LOCAL)?  Exact after any savepoint
 *		rollback, since it is read from the GUC stack.
 */
bool
ti_ctx_transaction_scoped(void)
{
	TiTag		after;

	if (!ti_eff.has || !IsTransactionState())
		return false;
	after = ti_tenant_after_commit();
	return !ti_tag_eq(&after, &ti_eff);
}

/*
 * ti_check_change_allowed
 *		Refuse a context change inside a running statement that reads
 *		protected tables, or inside a parallel operation.
 */
static void
ti_check_change_allowed(void)
{
	if (!ti_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_isolation must be loaded via shared_preload_libraries")));
	if (IsInParallelMode())
	{
		ti_audit("denied_context_switch", NULL, ERRCODE_INVALID_TRANSACTION_STATE,
				 "parallel operation");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot change the tenant context during a parallel operation")));
	}
	if (ti_protected_running > 0)
	{
		ti_audit("denied_context_switch", NULL, ERRCODE_INSUFFICIENT_PRIVILEGE,
				 "statement on protected tables running");
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot change the tenant context while a statement that reads protected tables is running"),
				 errdetail("A statement sees the tenant context in force when it started, to its end."),
				 errhint("Change the context in a statement of its own.")));
	}
}

/* ---------- undo log ---------- */

static void
ti_undo_push(bool is_obj, const TiObjKey *key, const TiTempRel *prev_entry,
			 const TiTag *prev)
{
	TiUndo	   *u;

	if (ti_nundo >= ti_maxundo)
	{
		int			newmax = ti_maxundo ? ti_maxundo * 2 : 16;

		ti_undo = ti_undo ?
			repalloc(ti_undo, newmax * sizeof(TiUndo)) :
			MemoryContextAlloc(ti_ctx_cxt, newmax * sizeof(TiUndo));
		ti_maxundo = newmax;
	}
	u = &ti_undo[ti_nundo++];
	u->subid = GetCurrentSubTransactionId();
	u->is_obj = is_obj;
	memset(&u->key, 0, sizeof(TiObjKey));
	if (key)
		u->key = *key;
	u->had = prev_entry != NULL;
	u->resolved = prev_entry ? prev_entry->resolved : false;
	if (prev_entry)
		u->prev = prev_entry->tag;
	else if (prev)
		u->prev = *prev;
	else
		memset(&u->prev, 0, sizeof(TiTag));
}

/*
 * Replay one entry backwards.  HASH_ENTER re-enters a key the table held
 * before in this transaction; its element waits on the freelist, so this
 * does not allocate in practice.
 */
static void
ti_undo_one(TiUndo *u)
{
	if (u->is_obj)
		ti_obj = u->prev;
	else if (ti_temp_rels != NULL)
	{
		if (u->had)
		{
			TiTempRel  *r = hash_search(ti_temp_rels, &u->key, HASH_ENTER, NULL);

			r->tag = u->prev;
			r->resolved = u->resolved;
		}
		else
			(void) hash_search(ti_temp_rels, &u->key, HASH_REMOVE, NULL);
	}
}

static void
ti_set_obj(const TiTag *t)
{
	if (ti_tag_eq(t, &ti_obj))
		return;
	if (IsTransactionState())
		ti_undo_push(true, NULL, NULL, &ti_obj);
	ti_obj = *t;
}

/* ---------- temporary relations ---------- */

static void
ti_temp_rels_init(void)
{
	HASHCTL		ctl;

	if (ti_temp_rels != NULL)
		return;
	ctl.keysize = sizeof(TiObjKey);
	ctl.entrysize = sizeof(TiTempRel);
	ctl.hcxt = ti_ctx_cxt;
	ti_temp_rels = hash_create("tenant_isolation temporary relations", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Tag a temporary object of this session with the effective context:
 * create registers it (resolved: known to be ours), otherwise only a
 * registered object is retagged.
 */
static void
ti_temp_obj_tag(Oid classId, Oid objid, bool create, bool resolved)
{
	TiTempRel  *r;
	TiTempRel	prev;
	bool		found;
	TiObjKey	key;

	if (!create && (ti_temp_rels == NULL || hash_get_num_entries(ti_temp_rels) == 0))
		return;
	ti_temp_rels_init();
	key.classId = classId;
	key.objid = objid;
	r = hash_search(ti_temp_rels, &key, create ? HASH_ENTER : HASH_FIND, &found);
	if (r == NULL)
		return;
	if (found && ti_tag_eq(&r->tag, &ti_eff) && (r->resolved || !resolved))
		return;
	if (found)
		prev = *r;
	ti_undo_push(false, &key, found ? &prev : NULL, NULL);
	r->tag = ti_eff;
	if (!found)
	{
		r->resolved = resolved;
		r->is_seq = false;
		r->seq_known = false;
	}
	else
		r->resolved = r->resolved || resolved;
}

static void
ti_temp_rel_tag(Oid relid, bool create)
{
	ti_temp_obj_tag(RelationRelationId, relid, create, true);
}

/*
 * ti_ctx_note_write
 *		executor.c: a statement writes relid (INSERT, UPDATE, DELETE, MERGE,
 *		COPY FROM).  A temporary relation is retagged with the context.
 */
void
ti_ctx_note_write(Oid relid)
{
	ti_temp_rel_tag(relid, false);
}

/*
 * ti_object_access
 *		Register temporary relations at creation, retag them on ALTER.
 *
 * At OAT_POST_CREATE the new pg_class row is not visible to syscache
 * lookups yet, but heap_create has entered the relation into the relcache.
 */
static void
ti_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				 int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (IsParallelWorker())
		return;
	if (classId == ProcedureRelationId || classId == TypeRelationId)
	{
		Oid			tempns,
					temptoastns;

		/* a temporary function or type needs the temporary namespace */
		GetTempNamespaceState(&tempns, &temptoastns);
		if (access == OAT_POST_CREATE && OidIsValid(tempns))
			ti_temp_obj_tag(classId, objectId, true, false);
		else if (access == OAT_POST_ALTER)
			ti_temp_obj_tag(classId, objectId, false, false);
		return;
	}
	if (classId != RelationRelationId)
		return;
	if (access == OAT_POST_CREATE && subId == 0)
	{
		Relation	rel = RelationIdGetRelation(objectId);
		bool		track;
		bool		is_seq;

		if (rel == NULL)
			return;
		/*
		 * Tables, sequences and views; indexes and toast tables go with
		 * their table (an index of a constraint cannot be dropped alone).
		 */
		track = rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP &&
			(rel->rd_rel->relkind == RELKIND_RELATION ||
			 rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ||
			 rel->rd_rel->relkind == RELKIND_SEQUENCE ||
			 rel->rd_rel->relkind == RELKIND_VIEW);
		is_seq = rel->rd_rel->relkind == RELKIND_SEQUENCE;
		RelationClose(rel);
		if (track)
		{
			TiObjKey	key;
			TiTempRel  *r;

			ti_temp_rel_tag(objectId, true);
			key.classId = RelationRelationId;
			key.objid = objectId;
			r = hash_search(ti_temp_rels, &key, HASH_FIND, NULL);
			if (r != NULL && is_seq && !r->is_seq)
			{
				r->is_seq = true;
				r->seq_known = false;	/* no data yet: DefineSequence fills it */
			}
		}
	}
	else if (access == OAT_POST_ALTER)
		ti_temp_rel_tag(objectId, false);
}

/*
 * ti_temp_obj_droppable
 *		Is a registered object still a temporary object of this session that
 *		can be dropped on its own?  Not a relation's row type, an array or
 *		multirange type (they go with what they belong to), nor an object
 *		dropped since or an OID reused by a permanent object.
 */
static bool
ti_temp_obj_droppable(const TiObjKey *key)
{
	Oid			nsp = InvalidOid;

	if (key->classId == RelationRelationId)
	{
		nsp = get_rel_namespace(key->objid);
		if (OidIsValid(nsp) &&
			get_rel_persistence(key->objid) != RELPERSISTENCE_TEMP)
			return false;
	}
	else if (key->classId == ProcedureRelationId)
		nsp = get_func_namespace(key->objid);
	else if (key->classId == TypeRelationId)
	{
		HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(key->objid));
		Form_pg_type typ;

		if (!HeapTupleIsValid(tup))
			return false;
		typ = (Form_pg_type) GETSTRUCT(tup);
		if (!OidIsValid(typ->typrelid) && typ->typtype != TYPTYPE_MULTIRANGE &&
			!(OidIsValid(typ->typelem) && typ->typsubscript == F_ARRAY_SUBSCRIPT_HANDLER))
			nsp = typ->typnamespace;
		ReleaseSysCache(tup);
	}
	return OidIsValid(nsp) && isTempNamespace(nsp);
}

/*
 * ti_seq_state
 *		The state of a temporary sequence (its one tuple).  nextval() and
 *		setval() update that tuple in the session's local buffer in place.
 */
static bool
ti_seq_state(Oid relid, int64 *last, bool *called)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	TableScanDesc scan;
	HeapTuple	tup;
	bool		ok = false;

	if (rel == NULL)
		return false;
	if (rel->rd_rel->relkind == RELKIND_SEQUENCE)
	{
		scan = table_beginscan(rel, SnapshotAny, 0, NULL);
		tup = heap_getnext(scan, ForwardScanDirection);
		if (HeapTupleIsValid(tup))
		{
			Form_pg_sequence_data seq = (Form_pg_sequence_data) GETSTRUCT(tup);

			*last = seq->last_value;
			*called = seq->is_called;
			ok = true;
		}
		table_endscan(scan);
	}
	relation_close(rel, AccessShareLock);
	return ok;
}

/*
 * ti_seq_retag
 *		A temporary sequence whose state changed since the last transition
 *		was advanced or set under the tenant of that period (ti_obj).
 */
static void
ti_seq_retag(TiTempRel *r)
{
	int64		last;
	bool		called;

	if (!ti_seq_state(r->key.objid, &last, &called))
		return;
	if (!r->seq_known || last != r->seq_last || called != r->seq_called)
	{
		if (!ti_tag_eq(&r->tag, &ti_obj))
		{
			TiTempRel	prev = *r;

			ti_undo_push(false, &r->key, &prev, NULL);
			r->tag = ti_obj;
		}
		r->seq_known = true;
		r->seq_last = last;
		r->seq_called = called;
	}
}

/*
 * ti_discard_temp_rels
 *		Drop the temporary objects tagged with a tenant other than keep.
 *		Transactional: a rollback brings them back, and the undo log their
 *		registry entries.  Entries of objects that are gone, or were not
 *		temporary after all, are forgotten.
 */
static void
ti_discard_temp_rels(const TiTag *keep)
{
	HASH_SEQ_STATUS status;
	TiTempRel  *r;
	ObjectAddresses *targets = NULL;
	List	   *gone = NIL;
	ListCell   *lc;

	if (ti_temp_rels == NULL || hash_get_num_entries(ti_temp_rels) == 0)
		return;
	hash_seq_init(&status, ti_temp_rels);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		bool		stays;

		if (r->is_seq)
			ti_seq_retag(r);
		stays = ti_tag_may_stay(&r->tag, keep);
		if (stays && r->resolved)
			continue;
		if (!ti_temp_obj_droppable(&r->key))
		{
			TiObjKey   *k = palloc(sizeof(TiObjKey));

			*k = r->key;
			gone = lappend(gone, k);
			continue;
		}
		if (stays)
			continue;			/* resolved below */
		{
			ObjectAddress obj;
			TiObjKey   *k = palloc(sizeof(TiObjKey));

			if (targets == NULL)
				targets = new_object_addresses();
			obj.classId = r->key.classId;
			obj.objectId = r->key.objid;
			obj.objectSubId = 0;
			add_exact_object_address(&obj, targets);
			*k = r->key;
			gone = lappend(gone, k);
		}
	}
	/* what stays is known to be ours now */
	hash_seq_init(&status, ti_temp_rels);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		if (!r->resolved && ti_tag_may_stay(&r->tag, keep))
		{
			TiTempRel	prev = *r;

			ti_undo_push(false, &r->key, &prev, NULL);
			r->resolved = true;
		}
	}
	foreach(lc, gone)
	{
		TiObjKey   *k = (TiObjKey *) lfirst(lc);
		TiTempRel  *e = hash_search(ti_temp_rels, k, HASH_FIND, NULL);

		if (e == NULL)
			continue;
		ti_undo_push(false, k, e, NULL);
		(void) hash_search(ti_temp_rels, k, HASH_REMOVE, NULL);
	}
	if (targets != NULL)
	{
		performMultipleDeletions(targets, DROP_CASCADE,
								 PERFORM_DELETION_INTERNAL |
								 PERFORM_DELETION_QUIETLY);
		CommandCounterIncrement();
		ti_dropped_temp_rels = true;
	}
}

/* ---------- session-level custom settings ---------- */

/* Is gconf a custom setting that the session set itself? */
static inline bool
ti_is_session_custom(struct config_generic *gconf)
{
	return gconf->source == PGC_S_SESSION &&
		strchr(gconf->name, GUC_QUALIFIER_SEPARATOR) != NULL &&
		strncmp(gconf->name, "tenant_isolation.", 17) != 0;
}

/*
 * Indices into guc_variables of the custom settings (a qualified name that is
 * not ours), for the configuration's count of variables ti_custom_n.
 *
 * Why an index list stays exact while the count is unchanged: PostgreSQL 15
 * never removes a variable; a new one (a placeholder made by a SET of an
 * unknown qualified name, or a definition by a library) is appended and the
 * array sorted again, which changes the count and so rebuilds this list;
 * a library's definition of a name that has a placeholder replaces the
 * pointer at the same index (define_custom_variable), same name, same
 * position.  So the names at these indices are exactly the custom ones, and
 * the walk on every transition looks at a few dozen entries instead of
 * every setting of the server (~400).  The array itself is fetched afresh
 * each time (it may have been reallocated).
 */
static int *ti_custom_idx = NULL;
static int	ti_custom_count = 0;
static int	ti_custom_n = -1;

static void
ti_custom_settings_refresh(struct config_generic **vars, int n)
{
	int			i;

	if (n == ti_custom_n)
		return;
	if (ti_custom_idx)
		pfree(ti_custom_idx);
	ti_custom_idx = MemoryContextAlloc(ti_ctx_cxt, sizeof(int) * Max(n, 1));
	ti_custom_count = 0;
	for (i = 0; i < n; i++)
	{
		if (strchr(vars[i]->name, GUC_QUALIFIER_SEPARATOR) != NULL &&
			strncmp(vars[i]->name, "tenant_isolation.", 17) != 0)
			ti_custom_idx[ti_custom_count++] = i;
	}
	ti_custom_n = n;
}

/*
 * ti_discard_settings
 *		Reset the session-level custom settings written under a tenant other
 *		than keep, and register the others with their tags.
 *
 * A value that differs from the one registered at the previous transition
 * was written since, under ti_obj.  Resetting is a SET to the default, so
 * a rollback restores it as it restores any SET.
 */
static void
ti_discard_settings(const TiTag *keep)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			i;
	List	   *reset = NIL;
	ListCell   *lc;

	if (ti_settings == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = TI_SETTING_NAMELEN;
		ctl.entrysize = sizeof(TiSetting);
		ctl.hcxt = ti_ctx_cxt;
		ti_settings = hash_create("tenant_isolation custom settings", 16, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}

	ti_custom_settings_refresh(vars, n);
	for (i = 0; i < ti_custom_count; i++)
	{
		struct config_generic *gconf = vars[ti_custom_idx[i]];
		const char *value;
		TiSetting  *s = NULL;
		TiTag		tag;

		if (!ti_is_session_custom(gconf))
			continue;
		value = GetConfigOption(gconf->name, true, false);
		if (value == NULL)
			value = "";
		if (strlen(gconf->name) < TI_SETTING_NAMELEN)
			s = hash_search(ti_settings, gconf->name, HASH_FIND, NULL);
		if (s != NULL && strcmp(s->value, value) == 0)
			tag = s->tag;
		else
			tag = ti_obj;		/* written since the last transition */

		if (!ti_tag_may_stay(&tag, keep))
		{
			reset = lappend(reset, pstrdup(gconf->name));
			if (s != NULL)
			{
				pfree(s->value);
				(void) hash_search(ti_settings, gconf->name, HASH_REMOVE, NULL);
			}
			continue;
		}
		if (strlen(gconf->name) >= TI_SETTING_NAMELEN)
			continue;			/* unregistered: its next change counts */
		if (s != NULL && strcmp(s->value, value) == 0)
			continue;			/* registered, unchanged */
		if (s == NULL)
		{
			s = hash_search(ti_settings, gconf->name, HASH_ENTER, NULL);
			s->value = NULL;
		}
		if (s->value)
			pfree(s->value);
		s->value = MemoryContextStrdup(ti_ctx_cxt, value);
		s->tag = tag;
	}

	/* outside the loop: a SET may add variables to the array */
	foreach(lc, reset)
		(void) set_config_option((char *) lfirst(lc), NULL, PGC_SUSET,
								 PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
}

/* ---------- transitions ---------- */

/*
 * ti_close_portals
 *		Close every cursor that is not running.  A loop over a query (PL/pgSQL
 *		FOR, a cursor being fetched by a function) pins its portal, and
 *		PortalHashTableDeleteAll refuses to drop a pinned portal with an
 *		internal error; say what is wrong instead.
 */
static void
ti_close_portals(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		PortalHashTableDeleteAll();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		ti_audit("denied_context_switch", NULL,
				 ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "loop over a query running");
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot change the tenant context while a loop over a query is running"),
				 errdetail("Changing the tenant closes every open cursor, and this one is in use."),
				 errhint("Change the context before the loop, or in a statement of its own.")));
	}
	PG_END_TRY();
}

/*
 * Cursors still to close: a discard ran where closing them was unsafe
 * (ExecutorStart may be starting a portal that is not yet running).
 */
static bool ti_portals_dirty = false;

/*
 * ti_discard_other
 *		Restore the invariant for a new objects tenant keep: discard what is
 *		tagged with another tenant, then make keep the objects tenant.
 *		Needs a transaction that can still change the catalogs.
 */
static void
ti_discard_other(const TiTag *keep, bool close_portals)
{
	if (close_portals)
	{
		ti_close_portals();
		ti_portals_dirty = false;
	}
	else
		ti_portals_dirty = true;
	ti_discard_temp_rels(keep);
	ti_discard_settings(keep);
	if (ti_obj.has)
		ti_ctx_notify(TI_CTX_DISCARD, keep->has ? &keep->tenant : NULL, false);
	ti_set_obj(keep);
}

/*
 * ti_set_guc
 *		Write the context variable with superuser rights; claims (NULL: none)
 *		travel in the extra of the new value.
 */
static void
ti_set_guc(const char *tenant_str, const char *claims, bool local)
{
	GucAction	action = local ? GUC_ACTION_LOCAL : GUC_ACTION_SET;

	PG_TRY();
	{
		ti_next_armed = true;
		ti_next_claims = claims;
		(void) set_config_option("tenant_isolation.tenant_id", tenant_str,
								 PGC_SUSET, PGC_S_SESSION, action, true, 0, false);
	}
	PG_FINALLY();
	{
		ti_next_armed = false;
		ti_next_schema = false;
		ti_next_claims = NULL;
	}
	PG_END_TRY();
}

/*
 * ti_ctx_schema_enter
 *		Run as the tenant's role, with its schema first on the search_path,
 *		for the value about to be set (SET, or SET LOCAL for local).
 *
 * The search_path replaced is kept in the extra of that value, so that a
 * rollback restores it together with the GUC it describes; a session
 * already in the schema tier keeps what it saved when it entered.  The role
 * is switched by schema_tier.c without membership (SetCurrentRoleId, not
 * transactional), and ti_schema_tier_reconcile makes it follow the
 * effective context again before every statement.
 */
void
ti_ctx_schema_enter(const TiTenantInfo *info, bool local)
{
	Oid			roleid = get_role_oid(info->role_name, true);
	GucAction	action = local ? GUC_ACTION_LOCAL : GUC_ACTION_SET;
	const char *base;

	if (!OidIsValid(roleid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("role of schema-tier tenant %s is missing",
						ti_uuid_to_cstring(&info->id))));
	if (ti_current_extra != NULL && ti_current_extra->schema)
		base = pstrdup(ti_current_extra->saved_search_path);
	else
		base = pstrdup(GetConfigOption("search_path", false, false));
	(void) set_config_option("search_path",
							 psprintf("%s%s%s", quote_identifier(info->schema_name),
									  base[0] ? ", " : "", base),
							 PGC_SUSET, PGC_S_SESSION, action, true, 0, false);
	ti_schema_tier_enter(roleid);	/* no membership needed (schema_tier.c) */
	ti_next_schema = true;
	ti_next_saved_search_path = base;
}

/*
 * ti_ctx_schema_leave
 *		Back to the role and search_path of before the schema tier, if the
 *		value in force entered it (search_path by SET, or SET LOCAL for
 *		local).
 */
void
ti_ctx_schema_leave(bool local)
{
	GucAction	action = local ? GUC_ACTION_LOCAL : GUC_ACTION_SET;
	char	   *sp;

	if (ti_current_extra == NULL || !ti_current_extra->schema)
		return;
	sp = pstrdup(ti_current_extra->saved_search_path);
	ti_schema_tier_leave();
	(void) set_config_option("search_path", sp, PGC_SUSET,
							 PGC_S_SESSION, action, true, 0, false);
}

/*
 * ti_ctx_enter
 *		Enter the context of a tenant (login, login_local, assume_tenant).
 *
 * claims_json may be NULL.  The caller has verified the right to do so.
 * An error here (a refused mid-statement change, a pinned cursor, a
 * session limit) rolls the transaction back to the previous context, like
 * a failed SET; login() wraps its whole verification so that a failed login
 * leaves no context instead.
 */
void
ti_ctx_enter(const pg_uuid_t *tenant, const char *claims_json, bool local)
{
	char	   *tenant_str;
	TiTenantInfo info;
	TiTag		t;

	ti_check_change_allowed();
	ti_next_schema = false;		/* whatever an earlier error left */

	t.has = true;
	t.tenant = *tenant;
	if (!ti_tag_eq(&ti_obj, &t))
		ti_discard_other(&t, true);

	tenant_str = ti_uuid_to_cstring(tenant);
	if (ti_tenant_lookup(tenant, &info) && info.schema_tier &&
		info.role_name[0] != '\0')
		ti_ctx_schema_enter(&info, local);
	else
		ti_ctx_schema_leave(local);
	ti_set_guc(tenant_str, claims_json, local);
	ti_ctx_notify(TI_CTX_ENTER, tenant, local);
}

/*
 * ti_ctx_leave
 *		Leave the tenant context (logout).
 */
void
ti_ctx_leave(bool local)
{
	TiTag		none;

	ti_check_change_allowed();

	memset(&none, 0, sizeof(none));
	if (!ti_tag_eq(&ti_obj, &none))
		ti_discard_other(&none, true);
	ti_ctx_schema_leave(local);
	ti_set_guc("", NULL, local);
	ti_ctx_notify(TI_CTX_LEAVE, NULL, local);
	/*
	 * An explicit logout also drops the plans (superusers plan unscoped),
	 * those that read the tenant at execution too: without a context they
	 * would only be refused (executor.c), a new plan reports the table.
	 */
	ti_invalidate_tenant_plans();
	ti_invalidate_runtime_plans();
	ti_plans_for_has = false;
}

/*
 * ti_ctx_poison
 *		A login failed: from now on no context is effective, whatever value
 *		the coming rollback restores, until a new context is set.  What the
 *		previous tenant left is discarded at the next statement
 *		(ti_ctx_statement_start); cursors, which may be read through the
 *		protocol without any statement, are closed at once when it is safe
 *		(the caller is not unwinding an error).
 */
void
ti_ctx_poison(bool close_cursors)
{
	TiTag		none;

	memset(&none, 0, sizeof(none));
	ti_poison_epoch++;
	ti_set_effective(&none);
	ti_portals_dirty = true;
	if (close_cursors && ti_obj.has)
	{
		MemoryContext oldcxt = CurrentMemoryContext;

		/* best effort: the login error must stay the one reported */
		PG_TRY();
		{
			PortalHashTableDeleteAll();
			ti_portals_dirty = false;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(oldcxt);
			FlushErrorState();
		}
		PG_END_TRY();
	}
}

/*
 * ti_ctx_settle
 *		Restore the invariant after the effective context changed without a
 *		transition of ours (a failed login, RESET ALL, DISCARD ALL, a SET of
 *		the variable): discard what belongs to another tenant.
 */
static void
ti_ctx_settle(bool may_close_portals)
{
	if (!IsTransactionState() || IsInParallelMode())
		return;
	if (!ti_tag_eq(&ti_obj, &ti_eff))
		ti_discard_other(&ti_eff, may_close_portals);
	else if (ti_portals_dirty && may_close_portals)
	{
		ti_close_portals();
		ti_portals_dirty = false;
	}
}

/*
 * ti_ctx_statement_start
 *		At the start of every statement (executor.c, utility.c): replace a
 *		value that a failed login made stale by '', and discard what a
 *		previous tenant left behind; true if that dropped temporary
 *		relations (a statement planned before may name them).
 *		may_close_portals is false in
 *		ExecutorStart, which may run inside PortalStart of a portal that a
 *		close would free under its caller; utility statements close them.
 *
 * Not in parallel mode, where GUCs cannot change; the leader normalizes
 * before it launches workers.
 */
bool
ti_ctx_statement_start(bool may_close_portals)
{
	ti_dropped_temp_rels = false;
	if (IsInParallelMode() || !IsTransactionState())
		return false;
	if (!ti_eff.has && ti_tenant_id_string != NULL &&
		ti_tenant_id_string[0] != '\0')
	{
		ti_ctx_schema_leave(false);
		ti_set_guc("", NULL, false);
	}
	ti_ctx_settle(may_close_portals);
	return ti_dropped_temp_rels;
}

/*
 * ti_context_after_utility
 *		After RESET ALL, DISCARD or SET: restore the invariant, and drop the
 *		tenant plans if no context is left.
 */
void
ti_context_after_utility(void)
{
	if (!ti_eff.has && ti_plans_for_has)
	{
		ti_invalidate_tenant_plans();
		ti_invalidate_runtime_plans();
		ti_plans_for_has = false;
	}
	ti_ctx_settle(true);
}

/*
 * ti_is_admin
 *		Superuser or member of tenant_isolation_admin.
 */
bool
ti_is_admin(Oid roleid)
{
	Oid			admin;

	if (superuser_arg(roleid))
		return true;
	admin = ti_admin_role_oid();
	return OidIsValid(admin) && has_privs_of_role(roleid, admin);
}

/*
 * ti_ctx_token_in_statement_text
 *		Does a token appear literally in the text of the top-level utility
 *		statement running now (CALL, DO, EXECUTE, EXPLAIN, DECLARE ...), or
 *		in the text of the prepared statement an EXECUTE runs?
 *
 * PostgreSQL 15 keeps utility statements verbatim in pg_stat_statements
 * (only optimizable statements are normalized), and the server log keeps
 * them too; a token written there would be readable and replayable by
 * whoever reads those.  Bind parameters and a plain SELECT are safe.
 */
bool
ti_ctx_token_in_statement_text(const char *token, size_t len)
{
	const char *texts[2];
	int			i;
	char	   *needle;
	bool		found = false;

	if (!ti_in_toplevel_utility || len == 0)
		return false;
	texts[0] = debug_query_string;
	texts[1] = ActivePortal ? ActivePortal->sourceText : NULL;
	needle = pnstrdup(token, len);
	for (i = 0; i < 2 && !found; i++)
		found = texts[i] != NULL && strstr(texts[i], needle) != NULL;
	memset(needle, 0, len);
	pfree(needle);
	return found;
}

/*
 * ti_context_xact_callback
 *		The end of a transaction-scoped context discards what was made or
 *		written under it (before the commit, while the catalogs can still
 *		change); commit keeps the bookkeeping, abort replays its undo log.
 *		Internal DDL permission never outlives its transaction.
 */
static void
ti_context_xact_callback(XactEvent event, void *arg)
{
	TiTag		after;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			/* fast path: the context did not change in this transaction */
			if (ti_tenant_gconf->stack == NULL && ti_tag_eq(&ti_obj, &ti_eff))
				break;
			after = ti_tenant_after_commit();
			if (!ti_tag_eq(&ti_obj, &after))
				ti_discard_other(&after, true);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			ti_nundo = 0;
			ti_internal_ddl = false;
			break;
		case XACT_EVENT_ABORT:
			while (ti_nundo > 0)
				ti_undo_one(&ti_undo[--ti_nundo]);
			ti_internal_ddl = false;
			break;
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			ti_internal_ddl = false;
			break;
		default:
			break;
	}
}

/*
 * ti_context_subxact_callback
 *		A released savepoint hands its undo entries to its parent; a
 *		rolled-back one replays them (they are the tail of the log).
 */
static void
ti_context_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	int			i;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = ti_nundo - 1; i >= 0 && ti_undo[i].subid == mySubid; i--)
			ti_undo[i].subid = parentSubid;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		while (ti_nundo > 0 && ti_undo[ti_nundo - 1].subid == mySubid)
			ti_undo_one(&ti_undo[--ti_nundo]);
	}
}

/*
 * current_tenant() RETURNS uuid
 */
Datum
ti_current_tenant(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *result = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));

	/*
	 * The effective context, as the planner sees it: on a Citus worker that
	 * is the coordinator's asserted context (citus.c).  This function is
	 * also _current_tenant_uuid(), which cached plans compare the tenant
	 * column with at execution.
	 */
	if (!ti_context_get(result))
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(result);
}

/*
 * logout() RETURNS void
 */
Datum
ti_logout(PG_FUNCTION_ARGS)
{
	bool		had = ti_eff.has;

	ti_ctx_leave(false);
	if (had)
		ti_audit("logout", NULL, 0, NULL);
	PG_RETURN_VOID();
}

/*
 * assume_tenant(tenant uuid, reason text) RETURNS void
 *
 * For administrators: enter a tenant's context without a token.  Always
 * audited with its reason.  Since 1.1 EXECUTE is granted to PUBLIC and
 * this check is the gate: a refusal by core's EXECUTE check could not be
 * audited, and every refused attempt must be.
 */
Datum
ti_assume_tenant(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *tenant;
	char	   *reason;
	bool		active;
	char	   *tenant_str;

	if (!ti_is_admin(GetUserId()))
	{
		ti_audit("assume_tenant_denied", NULL, ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to assume a tenant context"),
				 errdetail("Only superusers and members of tenant_isolation_admin may assume a tenant context.")));
	}
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a reason is required to assume a tenant context")));
	tenant = PG_GETARG_UUID_P(0);
	reason = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strspn(reason, " \t\r\n\f\v") == strlen(reason))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a reason is required to assume a tenant context")));
	if (strlen(reason) > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the reason is too long"),
				 errdetail("A reason is at most 1000 bytes.")));
	tenant_str = ti_uuid_to_cstring(tenant);
	if (!ti_tenant_status(tenant, &active))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant %s does not exist", tenant_str)));

	ti_ctx_enter(tenant, NULL, false);
	ti_audit("assume_tenant", tenant_str, 0, reason);
	PG_RETURN_VOID();
}

/*
 * _internal_ddl(on boolean)
 *		Let the extension's own functions run DDL that the utility hook
 *		refuses to everybody else (dropping the guard trigger, the fallback
 *		policy, ...).  Superuser only: the provisioning functions are
 *		SECURITY DEFINER and owned by the superuser who created the
 *		extension.  Reset at the end of every transaction.
 */
Datum
ti_internal_ddl_set(PG_FUNCTION_ARGS)
{
	if (!superuser())
	{
		ti_audit("denied_internal_function", "tenant_isolation._internal_ddl",
				 ERRCODE_INSUFFICIENT_PRIVILEGE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for internal function")));
	}
	ti_internal_ddl = PG_GETARG_BOOL(0);
	PG_RETURN_VOID();
}
