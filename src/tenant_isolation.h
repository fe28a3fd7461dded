/*-------------------------------------------------------------------------
 *
 * tenant_isolation.h
 *	  Declarations shared by the files of the tenant_isolation extension.
 *
 * Each .c file owns one concern; this header is the contract between them.
 * Nothing declared here may be called from a parallel worker unless its
 * comment says so.
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/tenant_isolation.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_ISOLATION_H
#define TENANT_ISOLATION_H

#include "postgres.h"

#include "access/attnum.h"
#include "nodes/pg_list.h"
#include "utils/uuid.h"

#define TI_SCHEMA			"tenant_isolation"
#define TI_ADMIN_ROLE		"tenant_isolation_admin"
#define TI_GUARD_TRIGGER	"tenant_isolation_guard"
#define TI_FALLBACK_POLICY	"tenant_isolation_fallback"

/* tenant_isolation.c: GUC values and load state */
extern bool ti_preloaded;
extern char *ti_tenant_claim;
extern int	ti_jwt_leeway;
extern int	ti_jwt_max_token_size;

/*
 * context.c: the tenant state of this session, and its only owner.
 *
 * The context lives in the GUC tenant_isolation.tenant_id, so it is
 * transactional like SET (login_local is SET LOCAL), serialized to parallel
 * workers, and cleared by RESET ALL and DISCARD ALL.  Only C code and
 * superusers can set it.  Other modules read the state through the
 * functions below or subscribe to its changes; they keep no copy of it.
 */
extern void ti_define_context_gucs(void);

/* reading the state */
extern bool ti_context_get(pg_uuid_t *tenant);	/* the effective context */
extern const char *ti_context_claims(void);
extern void ti_context_sync_parallel_claims(void);
extern bool ti_ctx_transaction_scoped(void);	/* ends with the transaction */

/*
 * Subscribing to changes.  TI_CTX_ENTER and TI_CTX_LEAVE come from a
 * transition of ours (login, login_local, assume_tenant, logout), after the
 * variable was set, and may refuse with an ERROR (which rolls the change
 * back); local tells login_local from login.  TI_CTX_CHANGED comes from the
 * GUC assign hook whenever the effective context changes, also during
 * transaction abort: a subscriber must not fail, touch the catalogs or set
 * a GUC then.  TI_CTX_DISCARD: what the session held for a tenant other
 * than tenant (NULL: any tenant) has been discarded; drop caches of it.
 */
typedef enum TiCtxEvent
{
	TI_CTX_ENTER,
	TI_CTX_LEAVE,
	TI_CTX_CHANGED,
	TI_CTX_DISCARD
} TiCtxEvent;
typedef void (*TiCtxCallback) (TiCtxEvent event, const pg_uuid_t *tenant,
							   bool local, void *arg);
extern void ti_ctx_subscribe(TiCtxCallback cb, void *arg);

/* transitions (the caller has checked the right to make them) */
struct TiTenantInfo;
extern void ti_ctx_enter(const pg_uuid_t *tenant, const char *claims_json,
						 bool local);
extern void ti_ctx_leave(bool local);
extern void ti_ctx_poison(bool close_cursors);	/* a login failed */
extern void ti_ctx_schema_enter(const struct TiTenantInfo *info, bool local);
extern void ti_ctx_schema_leave(bool local);

/* statement boundaries and object bookkeeping (executor.c, utility.c) */
extern bool ti_ctx_statement_start(bool may_close_portals);
extern void ti_context_after_utility(void);
extern void ti_ctx_note_write(Oid relid);
extern bool ti_ctx_token_in_statement_text(const char *token, size_t len);

extern bool ti_is_admin(Oid roleid);
extern void ti_remember_dependency(Oid funcid);
extern void ti_remember_runtime_tenant(Oid funcid);
extern void ti_invalidate_tenant_plans(void);
extern void ti_invalidate_runtime_plans(void);
extern bool ti_is_plan_marker_hash(uint32 hashvalue);
extern void ti_note_unscoped_plan(void);
extern void ti_note_const_plan(void);
extern bool ti_plan_depends_on_tenant(List *invalItems);

/* executor.c: statements that read protected tables and are running now */
extern void ti_check_session_tenant(void);
extern int	ti_protected_running;
extern void ti_install_executor_hooks(void);

/* instrument.c: EXPLAIN ANALYZE counters of other tenants' rows */
struct QueryDesc;
extern void ti_scrub_instrumentation(struct QueryDesc *queryDesc);

/* catalog.c: per-backend caches of the extension catalogs */
typedef struct TiRelInfo
{
	Oid			relid;			/* hash key */
	bool		valid;			/* entry is up to date */
	bool		is_protected;	/* the table or one of its ancestors is */
	bool		directly;		/* registered itself in protected_table */
	Oid			root_relid;		/* the registered ancestor (or relid) */
	AttrNumber	tenant_attno;	/* tenant column in *this* relation */
	char		tenant_column[NAMEDATALEN];
} TiRelInfo;

typedef struct TiTenantInfo
{
	pg_uuid_t	id;				/* hash key */
	bool		exists;
	bool		active;
	bool		schema_tier;
	char		schema_name[NAMEDATALEN];
	char		role_name[NAMEDATALEN];
} TiTenantInfo;

extern void ti_catalog_init(void);
extern void ti_register_relcache_callback(void (*func) (Datum arg, Oid relid));
extern bool ti_tenant_lookup(const pg_uuid_t *tenant, TiTenantInfo *out);
extern bool ti_extension_present(void);
extern TiRelInfo *ti_lookup_rel(Oid relid);
extern bool ti_tenant_status(const pg_uuid_t *tenant, bool *active);
extern Oid	ti_admin_role_oid(void);
extern Oid	ti_dependency_func(void);
extern Oid	ti_runtime_tenant_func(void);
extern Oid	ti_worker_assertion_func(void);

/* planner.c */
extern void ti_install_planner_hooks(void);

/* largeobj.c */
extern void ti_install_largeobject_hooks(void);
extern void ti_check_largeobject_access(const char *what);
extern bool ti_is_largeobject_catalog(Oid relid);
extern void ti_check_largeobject_utility(Node *parsetree);

/* denials.c: refusals made by core on our behalf, audited first */
extern void ti_install_denial_hooks(void);

/* utility.c */
extern void ti_install_utility_hook(void);
extern bool ti_internal_ddl;
extern bool ti_in_toplevel_utility;

/* provision.c: provisioning, each privileged step under an explicit identity */
extern bool ti_provisioning;
extern void ti_provision_init(void);
extern void ti_apply_fallback(Oid relid, Oid as_role);
extern void ti_protect_new_relation(Oid relid);

/* schema_tier.c: tenant roles, entered without membership */
extern void ti_install_schema_tier_hook(void);
extern bool ti_role_tenant(Oid roleid, pg_uuid_t *tenant);
extern void ti_schema_tier_enter(Oid roleid);
extern void ti_schema_tier_leave(void);
extern void ti_schema_tier_reconcile(void);

/* shmem.c: one request and startup for every module's shared state */
#define TI_LWLOCK_COUNT 4		/* 0: audit ring, 1: tenant hash, 2-3 spare */
extern void ti_install_shmem_hooks(void);

/* audit.c: the audit trail */
extern void ti_audit_init(void);
extern Size ti_audit_shmem_size(void);
extern void ti_audit_shmem_startup(void);
extern void ti_audit(const char *kind, const char *object, int sqlerrcode,
					 const char *detail);

/* limits.c: per-tenant limits and statistics */
struct QueryDesc;
extern void ti_limits_init(void);
extern Size ti_limits_shmem_size(void);
extern void ti_limits_shmem_startup(void);
extern void ti_limits_note_audit(const char *kind, const pg_uuid_t *tenant,
								 int sqlerrcode);
extern void ti_limits_executor_start(struct QueryDesc *queryDesc);
extern void ti_limits_executor_end(struct QueryDesc *queryDesc);

/* keys.c: per-tenant encryption keys */
extern void ti_keys_init(void);

/* jwt.c */
extern void ti_jwt_init(void);

/* identity.c: who may touch protected tables without a tenant context */
extern bool ti_unscoped_allowed(void);

/* citus.c: Citus coordinators and workers */
extern void ti_citus_init(void);
extern void ti_citus_define_gucs(void);
extern bool ti_citus_is_distributed(Oid relid);
extern Oid	ti_citus_shell_of(Oid relid);
extern bool ti_citus_worker_protected(Oid relid, Oid shell, char *tenant_column);
extern bool ti_citus_worker_context(pg_uuid_t *tenant);
extern bool ti_citus_context_asserted(void);
extern bool ti_is_guard_trigger_name(const char *name);
extern bool ti_citus_internal_ddl(Node *parsetree, int *nestlevel);
extern void ti_citus_internal_ddl_done(int nestlevel);
struct Query;
extern void ti_citus_fill_tenant_column(struct Query *parse);
struct PlannedStmt;
extern void ti_citus_plan_begin(struct Query *parse, bool used_once, bool top);
extern void ti_citus_plan_end(struct Query *parse, struct PlannedStmt *result);
extern void ti_citus_copy_from_context(Oid relid);
extern bool ti_citus_schema_sharding_begin(int *nestlevel);
extern void ti_citus_schema_sharding_end(int nestlevel);
extern void ti_citus_tenant_schema_convert(Oid nspid);

/* helpers */
extern char *ti_uuid_to_cstring(const pg_uuid_t *u);
extern bool ti_uuid_from_cstring(const char *s, pg_uuid_t *out);

#endif							/* TENANT_ISOLATION_H */
