/*-------------------------------------------------------------------------
 *
 * citus.c
 *	  Running on a Citus cluster: the coordinator and every worker enforce,
 *	  and the tenant context travels from the coordinator to the workers
 *	  in a form an ordinary role cannot forge.
 *
 * Nothing here links against Citus.  When citus.so is loaded (it must come
 * first in shared_preload_libraries) the few functions used are found with
 * dlsym(); without Citus every entry point returns at once.
 *
 * What this file owns, and why each part holds:
 *
 * 1. Which relations are protected on a node that holds shards.  Citus
 *	  stores a distributed table's rows in shard tables (docs_102008) on the
 *	  workers, and keeps a "shell" of the table on every node.  The
 *	  extension's catalog on the coordinator registers the shell; the
 *	  workers' catalogs register nothing.  A shard (or shell) is protected
 *	  here when its shell is registered (a coordinator that holds shards) or
 *	  when it carries the fail-closed fallback policy tenant_isolation_fallback
 *	  (a worker): protect_table() creates that policy, the guard trigger and
 *	  forced row level security on the shell, and Citus propagates all three
 *	  to every shard and shell (also when the table is distributed after
 *	  protect_table, and to the shards a tenant isolation, split or shard
 *	  move creates, since Citus creates shards from the table's DDL).
 *	  The tenant column on a worker is the distribution column, which
 *	  row-based sharding by tenant makes the tenant column.  So a worker
 *	  scopes a shard exactly like a local protected table: the qual as a
 *	  security barrier (planner.c), the guard trigger, the WITH CHECK policy
 *	  and, without the library, the deny-all fallback.  The policy cannot be
 *	  dropped from a protected relation except by unprotect_table()
 *	  (utility.c), and adding it only ever closes a table.  A relation of a
 *	  worker whose shell carries no fallback is not protected there; its
 *	  coordinator-side registration alone would then not protect it, which
 *	  is why 070_citus.pl checks that a worker refuses a shard query without
 *	  a context.
 *
 * 2. The context on the workers.  Citus opens its own connections to the
 *	  workers as the same role.  tenant_isolation.tenant_id is superuser-only
 *	  there as everywhere, so the coordinator sends instead
 *		SET LOCAL tenant_isolation.worker_context = 'v1.<tenant>.<expiry>.<nonce>.<mac>'
 *	  where mac = HMAC-SHA256(key, "v1.<tenant>.<expiry>.<nonce>.<database>.<role>")
 *	  with the cluster key every node reads from the file named by the
 *	  superuser-only setting tenant_isolation.cluster_key_file.  The
 *	  setting's check hook on the worker recomputes the MAC for its own
 *	  database and current role and compares in constant time, and refuses
 *	  an expired assertion (42501): without the key nobody can make one, and
 *	  one made for another role or database does not verify.  A verified
 *	  assertion is the worker's context for that remote transaction (SET
 *	  LOCAL), through ti_context_get(); a superuser-set tenant_id still takes
 *	  precedence.  Without either, an ordinary role is refused (42501) by
 *	  the same code as on one server.
 *
 *	  Transport: when a statement that touches a protected Citus table
 *	  starts executing in a tenant context, the coordinator asks Citus for
 *	  a coordinated transaction (remote BEGIN ... COMMIT even for a
 *	  single-shard read) and hands the SET LOCAL to Citus' own propagation
 *	  of SET LOCAL (PostprocessVariableSetStmt): Citus sends it to the
 *	  connections already in the transaction and prepends it to the BEGIN
 *	  of every connection it opens later in the transaction, savepoints
 *	  included.  A new assertion is sent when the tenant changes or half of
 *	  its lifetime has passed.
 *
 *	  Replay: an assertion is valid for tenant_isolation.worker_context_ttl
 *	  seconds for its role and database.  The worker replaces the activity
 *	  text of the session (pg_stat_activity) while the SET runs, so that
 *	  other sessions of the role do not read it there; log_statement = all
 *	  on a worker would log it (docs/scaling.md).
 *
 * 3. DDL of protect_table on a distributed table.  Citus refuses ALTER
 *	  COLUMN ... SET/DROP DEFAULT on the distribution column when it
 *	  propagates DDL; that internal statement runs on the coordinator's
 *	  table only (citus.enable_ddl_propagation off for it).  The default
 *	  matters on the coordinator alone: Citus evaluates the defaults of an
 *	  INSERT and of COPY FROM there before it routes a row by its tenant
 *	  column (COPY FROM without the tenant column, see 6; INSERT is filled
 *	  before that anyway, see 4).  The guard trigger is created with
 *	  citus.enable_unsafe_triggers on, so that Citus propagates it to the
 *	  shards.
 *
 * 4. INSERT on the coordinator.  An INSERT that omits the tenant column of
 *	  a protected distributed table gets it as a Const of the context
 *	  before Citus plans it (Citus needs the distribution column's value to
 *	  route the row); the guard trigger on the worker checks it again.
 *
 * 5. create_distributed_table() of a protected table: see
 *	  ti_citus_fmgr_hook.
 *
 * 6. COPY FROM into a protected Citus table on the coordinator.  Citus runs
 *	  it in its utility hook (after ours, it is preloaded first) and sends
 *	  each row to its shard with COPY on the workers: that never passes
 *	  ExecutorStart, so utility.c calls ti_citus_copy_from_context() first,
 *	  which hands Citus the same SET LOCAL as part 2.  On the worker the
 *	  shard's COPY is the extension's COPY FROM of a protected table
 *	  (utility.c) in the asserted context, so the guard trigger refuses a
 *	  row of another tenant (42501) and the whole COPY rolls back.  Without
 *	  a context the coordinator refuses the COPY before Citus sees it.
 *
 * 7. The schema tier on Citus schema-based sharding.  With
 *	  citus.enable_schema_based_sharding on, Citus makes a new schema a
 *	  distributed ("tenant") schema, but converts only tables created by a
 *	  top-level CREATE TABLE; create_tenant() creates the template copies
 *	  from SPI, which would leave them local tables in a distributed schema.
 *	  So create_tenant() creates the schema and its tables with the setting
 *	  off and then calls citus_schema_distribute() on it
 *	  (ti_citus_schema_sharding_begin/end): Citus moves every table of the
 *	  schema into one colocation group, one shard each, on one node.
 *	  migrate_tenant_schemas() runs its DDL from SPI as well: the tables it
 *	  creates are converted the same way afterwards, as the tenant's role
 *	  (ti_citus_tenant_schema_convert).  Isolation between schema-tier
 *	  tenants is unchanged: PostgreSQL privileges, checked on the
 *	  coordinator for the tenant's role and on the workers, where Citus
 *	  propagates the role and the schema's grants (and connects as that
 *	  role, which must therefore be allowed to log in there:
 *	  docs/scaling.md).
 *
 * Copyright (c) 2026, tenant_isolation developers
 *
 * IDENTIFICATION
 *	  src/citus.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parsetree.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "tenant_isolation.h"

#define TI_WORKER_CONTEXT_GUC	"tenant_isolation.worker_context"
#define TI_WORKER_REDACTED		"<tenant_isolation.worker_context redacted>"
#define TI_CLUSTER_KEY_MIN		32
#define TI_CLUSTER_KEY_MAX		1024

/* Citus functions, found with dlsym() when citus.so is loaded */
typedef bool (*citus_bool_void) (void);
typedef bool (*citus_bool_oid) (Oid);
typedef Var *(*citus_var_oid) (Oid);
typedef uint64 (*citus_shardid_name) (const char *, bool);
typedef Oid (*citus_oid_shardid) (uint64);
typedef void (*citus_void_void) (void);
typedef void (*citus_set_stmt) (VariableSetStmt *, const char *);

static struct
{
	bool		looked_up;
	bool		present;
	citus_bool_void has_been_loaded;
	citus_bool_oid is_citus_table;
	citus_var_oid dist_partition_key;
	citus_bool_oid is_known_shard;
	citus_shardid_name shard_id_from_name;
	citus_oid_shardid relation_for_shard;
	citus_void_void use_coordinated_transaction;
	citus_set_stmt propagate_set_local;
} citus;

/* GUCs */
static char *ti_cluster_key_file = NULL;
static int	ti_worker_context_ttl = 60;
static char *ti_worker_context_string = NULL;

/* The verified assertion in force on this node (worker side). */
typedef struct TiWorkerExtra
{
	bool		has;
	pg_uuid_t	tenant;
} TiWorkerExtra;
static TiWorkerExtra *ti_worker_extra = NULL;

/* What the coordinator has handed to Citus in this transaction. */
static bool ti_sent = false;
static pg_uuid_t ti_sent_tenant;
static pg_time_t ti_sent_expiry = 0;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static List *ti_distribute_nest = NIL;	/* GUC nest levels, innermost first */
static fmgr_hook_type prev_fmgr_hook = NULL;

static void ti_citus_ExecutorStart(QueryDesc *queryDesc, int eflags);
static bool ti_worker_context_check(char **newval, void **extra, GucSource source);
static void ti_worker_context_assign(const char *newval, void *extra);
static void ti_citus_xact_callback(XactEvent event, void *arg);
static void ti_citus_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									  SubTransactionId parentSubid, void *arg);

/*
 * ti_citus_lookup
 *		Find Citus' functions once.  Citus is either preloaded before us or
 *		not at all (it refuses to load later), so one look suffices.
 */
static bool
ti_citus_lookup(void)
{
	if (citus.looked_up)
		return citus.present;
	citus.looked_up = true;
	citus.has_been_loaded = (citus_bool_void) dlsym(RTLD_DEFAULT, "CitusHasBeenLoaded");
	citus.is_citus_table = (citus_bool_oid) dlsym(RTLD_DEFAULT, "IsCitusTable");
	citus.dist_partition_key = (citus_var_oid) dlsym(RTLD_DEFAULT, "DistPartitionKey");
	citus.is_known_shard = (citus_bool_oid) dlsym(RTLD_DEFAULT, "RelationIsAKnownShard");
	citus.shard_id_from_name = (citus_shardid_name) dlsym(RTLD_DEFAULT, "ExtractShardIdFromTableName");
	citus.relation_for_shard = (citus_oid_shardid) dlsym(RTLD_DEFAULT, "RelationIdForShard");
	citus.use_coordinated_transaction = (citus_void_void) dlsym(RTLD_DEFAULT, "UseCoordinatedTransaction");
	citus.propagate_set_local = (citus_set_stmt) dlsym(RTLD_DEFAULT, "PostprocessVariableSetStmt");
	citus.present = citus.has_been_loaded && citus.is_citus_table &&
		citus.dist_partition_key && citus.is_known_shard &&
		citus.shard_id_from_name && citus.relation_for_shard &&
		citus.use_coordinated_transaction && citus.propagate_set_local;
	if (!citus.present && citus.has_been_loaded)
		ereport(WARNING,
				(errmsg("tenant_isolation does not support this version of Citus"),
				 errdetail("A function it uses was not found in citus.so.")));
	return citus.present;
}

/*
 * ti_citus_active
 *		Citus is loaded and its extension exists in this database.
 */
static bool
ti_citus_active(void)
{
	return ti_citus_lookup() && IsTransactionState() && citus.has_been_loaded();
}

/*
 * ti_citus_is_distributed
 *		A Citus table (distributed, reference or Citus local) on this node.
 */
bool
ti_citus_is_distributed(Oid relid)
{
	return OidIsValid(relid) && ti_citus_active() && citus.is_citus_table(relid);
}

/*
 * ti_citus_shell_of
 *		The Citus table a relation stands for: itself for a shell, the shell
 *		for a shard of this node; InvalidOid otherwise.
 */
Oid
ti_citus_shell_of(Oid relid)
{
	uint64		shardid;
	char	   *name;

	if (!OidIsValid(relid) || !ti_citus_active())
		return InvalidOid;
	if (citus.is_citus_table(relid))
		return relid;
	if (!citus.is_known_shard(relid))
		return InvalidOid;
	name = get_rel_name(relid);
	if (name == NULL)
		return InvalidOid;
	shardid = citus.shard_id_from_name(name, true);
	if (shardid == 0)
		return InvalidOid;
	return citus.relation_for_shard(shardid);
}

/*
 * ti_is_guard_trigger_name
 *		The guard trigger's name, or its name on a Citus shard, where Citus
 *		appends "_<shard id>" to trigger names.
 */
bool
ti_is_guard_trigger_name(const char *name)
{
	size_t		len = strlen(TI_GUARD_TRIGGER);
	const char *p;

	if (name == NULL || strncmp(name, TI_GUARD_TRIGGER, len) != 0)
		return false;
	if (name[len] == '\0')
		return true;
	if (name[len] != '_' || name[len + 1] == '\0')
		return false;
	for (p = name + len + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/*
 * ti_has_fallback_policy
 *		Does the relation carry the fail-closed fallback policy?
 */
static bool
ti_has_fallback_policy(Oid relid)
{
	Relation	rel;
	ScanKeyData key[2];
	SysScanDesc scan;
	bool		found;

	rel = table_open(PolicyRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_policy_polrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_policy_polname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(TI_FALLBACK_POLICY));
	scan = systable_beginscan(rel, PolicyPolrelidPolnameIndexId, true, NULL,
							  2, key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * ti_citus_worker_protected
 *		Part 1 of the header: is this shard or shell protected on a node
 *		whose catalog does not register it?  Fills the tenant column name.
 */
bool
ti_citus_worker_protected(Oid relid, Oid shell, char *tenant_column)
{
	Var		   *key;
	char	   *name;

	if (!OidIsValid(shell) || !ti_has_fallback_policy(relid))
		return false;
	key = citus.dist_partition_key(shell);
	if (key == NULL)
		return false;			/* a reference table: its fallback stays closed */
	name = get_attname(shell, key->varattno, true);
	if (name == NULL)
		return false;
	strlcpy(tenant_column, name, NAMEDATALEN);
	return true;
}

/*
 * Cluster key and assertions (part 2 of the header).
 */

/*
 * ti_read_cluster_key
 *		The key bytes (trailing newlines removed), or NULL with *why set.
 */
static unsigned char *
ti_read_cluster_key(size_t *len, const char **why)
{
	FILE	   *f;
	unsigned char *buf;
	size_t		n;
	struct stat st;

	if (ti_cluster_key_file == NULL || ti_cluster_key_file[0] == '\0')
	{
		*why = "tenant_isolation.cluster_key_file is not set";
		return NULL;
	}
	f = AllocateFile(ti_cluster_key_file, "rb");
	if (f == NULL)
	{
		*why = "the cluster key file cannot be read";
		return NULL;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		FreeFile(f);
		*why = "the cluster key file must not be accessible to group or others";
		return NULL;
	}
	buf = palloc(TI_CLUSTER_KEY_MAX + 1);
	n = fread(buf, 1, TI_CLUSTER_KEY_MAX + 1, f);
	FreeFile(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n < TI_CLUSTER_KEY_MIN || n > TI_CLUSTER_KEY_MAX)
	{
		explicit_bzero(buf, TI_CLUSTER_KEY_MAX + 1);
		pfree(buf);
		*why = "the cluster key must be 32 to 1024 bytes long";
		return NULL;
	}
	*len = n;
	return buf;
}

/*
 * ti_assertion_mac
 *		Hex HMAC-SHA256 of "<body>.<database>.<role>" (65 bytes with NUL).
 */
static bool
ti_assertion_mac(const char *body, Oid roleid, char *hex, const char **why)
{
	unsigned char *key;
	size_t		keylen;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	StringInfoData msg;
	char	   *db = get_database_name(MyDatabaseId);
	char	   *role = GetUserNameFromId(roleid, true);
	bool		ok;

	if (db == NULL || role == NULL)
	{
		*why = "unknown database or role";
		return false;
	}
	key = ti_read_cluster_key(&keylen, why);
	if (key == NULL)
		return false;
	initStringInfo(&msg);
	appendStringInfo(&msg, "%s.%s.%s", body, db, role);
	ok = HMAC(EVP_sha256(), key, (int) keylen, (unsigned char *) msg.data,
			  msg.len, mac, &maclen) != NULL && maclen == 32;
	explicit_bzero(key, keylen);
	pfree(key);
	pfree(msg.data);
	if (!ok)
	{
		*why = "HMAC failed";
		return false;
	}
	hex_encode((char *) mac, 32, hex);
	hex[64] = '\0';
	return true;
}

/*
 * ti_mint_assertion
 *		The coordinator's assertion for a tenant and the current role.
 */
static char *
ti_mint_assertion(const pg_uuid_t *tenant, pg_time_t *expiry)
{
	unsigned char nonce[8];
	char		nonce_hex[17];
	char		mac[65];
	char	   *body;
	const char *why = NULL;

	if (!pg_strong_random(nonce, sizeof(nonce)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random nonce")));
	hex_encode((char *) nonce, sizeof(nonce), nonce_hex);
	nonce_hex[16] = '\0';
	*expiry = (pg_time_t) time(NULL) + ti_worker_context_ttl;
	body = psprintf("v1.%s.%lld.%s", ti_uuid_to_cstring(tenant),
					(long long) *expiry, nonce_hex);
	if (!ti_assertion_mac(body, GetUserId(), mac, &why))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot send the tenant context to the Citus workers: %s", why),
				 errhint("Every node needs tenant_isolation.cluster_key_file naming the same key, readable only by the server.")));
	return psprintf("%s.%s", body, mac);
}

/*
 * ti_worker_context_refuse
 *		Refuse an assertion: audited, 42501, the value never echoed.
 */
static bool
ti_worker_context_refuse(TiWorkerExtra *x, const char *why)
{
	free(x);
	ti_audit("denied_worker_context", TI_WORKER_CONTEXT_GUC,
			 ERRCODE_INSUFFICIENT_PRIVILEGE, why);
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("%s", why);
	return false;
}

/*
 * ti_worker_context_check
 *		Verify an assertion (worker side).  '' means none.
 */
static bool
ti_worker_context_check(char **newval, void **extra, GucSource source)
{
	TiWorkerExtra *x;
	char	   *copy;
	char	   *parts[5];
	char	   *p;
	int			n = 0;
	char		mac[65];
	const char *why = NULL;
	long long	expiry;
	char	   *end;
	pg_uuid_t	tenant;

	x = (TiWorkerExtra *) malloc(sizeof(TiWorkerExtra));
	if (x == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		return false;
	}
	memset(x, 0, sizeof(*x));
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		*extra = x;
		return true;
	}
	/* only verified at run time, never from a file or the command line */
	if (source < PGC_S_INTERACTIVE || !IsTransactionState())
		return ti_worker_context_refuse(x, "tenant_isolation.worker_context can only be set by SET LOCAL in a transaction");
	/*
	 * A parallel worker receives the value its leader verified, from the
	 * leader's shared memory: parse it, do not verify it again (the worker
	 * is not yet running as the leader's role here).
	 */
	if (!InitializingParallelWorker)
	{
		/* the assertion must not stay readable in pg_stat_activity */
		pgstat_report_activity(STATE_RUNNING, TI_WORKER_REDACTED);
	}

	copy = pstrdup(*newval);
	p = copy;
	while (n < 5)
	{
		parts[n++] = p;
		p = strchr(p, '.');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	if (n != 5 || p != NULL || strcmp(parts[0], "v1") != 0 ||
		!ti_uuid_from_cstring(parts[1], &tenant) || strlen(parts[3]) != 16 ||
		strlen(parts[4]) != 64)
		return ti_worker_context_refuse(x, "invalid tenant context assertion");
	errno = 0;
	expiry = strtoll(parts[2], &end, 10);
	if (errno != 0 || *end != '\0' || end == parts[2])
		return ti_worker_context_refuse(x, "invalid tenant context assertion");
	/* MAC over the part before the MAC, for this database and role */
	if (!InitializingParallelWorker)
	{
		char	   *body = psprintf("%s.%s.%s.%s", parts[0], parts[1], parts[2], parts[3]);

		if (!ti_assertion_mac(body, GetUserId(), mac, &why))
			return ti_worker_context_refuse(x, psprintf("cannot verify the tenant context assertion: %s", why));
	}
	if (!InitializingParallelWorker && CRYPTO_memcmp(mac, parts[4], 64) != 0)
		return ti_worker_context_refuse(x, "invalid tenant context assertion");
	if (!InitializingParallelWorker && expiry < (long long) time(NULL))
		return ti_worker_context_refuse(x, "the tenant context assertion has expired");
	x->has = true;
	x->tenant = tenant;
	*extra = x;
	return true;
}

static void
ti_worker_context_assign(const char *newval, void *extra)
{
	ti_worker_extra = (TiWorkerExtra *) extra;
}

/*
 * ti_citus_worker_context
 *		The tenant of a verified assertion in force, if any.
 */
bool
ti_citus_worker_context(pg_uuid_t *tenant)
{
	if (ti_worker_extra == NULL || !ti_worker_extra->has)
		return false;
	if (tenant)
		*tenant = ti_worker_extra->tenant;
	return true;
}

/*
 * ti_citus_context_asserted
 *		Is a coordinator's assertion in force?  The coordinator checked the
 *		tenant (active, provisioned) in its own catalog before it signed;
 *		the workers' catalogs need not list tenants.
 */
bool
ti_citus_context_asserted(void)
{
	return ti_worker_extra != NULL && ti_worker_extra->has;
}

/*
 * ti_plan_touches_protected_citus
 *		Does the plan read or write a protected Citus table?
 */
static bool
ti_plan_touches_protected_citus(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION &&
			ti_lookup_rel(rte->relid)->is_protected &&
			citus.is_citus_table(rte->relid))
			return true;
	}
	return false;
}

/*
 * ti_citus_ExecutorStart
 *		Hand the context to Citus for the workers (part 2 of the header).
 */
static void
ti_citus_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	pg_uuid_t	tenant;

	if (!IsParallelWorker() && queryDesc->plannedstmt &&
		queryDesc->plannedstmt->commandType != CMD_UTILITY &&
		ti_extension_present() && ti_citus_active() &&
		ti_context_get(&tenant) &&
		ti_plan_touches_protected_citus(queryDesc->plannedstmt))
	{
		pg_time_t	now = (pg_time_t) time(NULL);

		citus.use_coordinated_transaction();
		if (!ti_sent || memcmp(&ti_sent_tenant, &tenant, sizeof(tenant)) != 0 ||
			ti_sent_expiry - now < ti_worker_context_ttl / 2)
		{
			pg_time_t	expiry;
			char	   *assertion = ti_mint_assertion(&tenant, &expiry);
			VariableSetStmt *set = makeNode(VariableSetStmt);
			char	   *cmd;

			set->kind = VAR_SET_VALUE;
			set->name = TI_WORKER_CONTEXT_GUC;
			set->is_local = true;
			cmd = psprintf("SET LOCAL %s = %s", TI_WORKER_CONTEXT_GUC,
						   quote_literal_cstr(assertion));
			citus.propagate_set_local(set, cmd);
			ti_sent = true;
			ti_sent_tenant = tenant;
			ti_sent_expiry = expiry;
		}
	}

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * ti_citus_schema_sharding_begin
 *		Part 7 of the header: is a new tenant schema to be distributed?
 *		If so, *nestlevel holds citus.enable_schema_based_sharding off until
 *		ti_citus_schema_sharding_end(), which distributes the schema.
 */
bool
ti_citus_schema_sharding_begin(int *nestlevel)
{
	const char *on;

	*nestlevel = 0;
	if (!ti_citus_active())
		return false;
	on = GetConfigOption("citus.enable_schema_based_sharding", true, false);
	if (on == NULL || strcmp(on, "on") != 0)
		return false;
	*nestlevel = NewGUCNestLevel();
	(void) set_config_option("citus.enable_schema_based_sharding", "off",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return true;
}

/*
 * ti_citus_schema_sharding_end
 *		Restore the setting; the caller then runs citus_schema_distribute().
 */
void
ti_citus_schema_sharding_end(int nestlevel)
{
	if (nestlevel > 0)
		AtEOXact_GUC(true, nestlevel);
}

/*
 * ti_citus_tenant_schema_convert
 *		Part 7 of the header, for migrate_tenant_schemas(): the tables its
 *		DDL created (from SPI) in the distributed tenant schema nspid become
 *		tenant schema tables, one shard each in the schema's colocation
 *		group, as a top-level CREATE TABLE would have made them.  Citus'
 *		own functions decide and convert (ShouldCreateTenantSchemaTable,
 *		CreateTenantSchemaTable); partitions go with their parent.  The
 *		caller runs this as the tenant's role, the tables' owner (Citus
 *		requires the owner), so Citus reaches the workers as that role.
 *		Without those functions the tables stay local, with a warning.
 */
void
ti_citus_tenant_schema_convert(Oid nspid)
{
	static bool looked_up = false;
	static citus_bool_oid should_convert = NULL;
	static void (*convert) (Oid) = NULL;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *rels = NIL;
	ListCell   *lc;

	if (!ti_citus_active())
		return;
	if (!looked_up)
	{
		looked_up = true;
		should_convert = (citus_bool_oid) dlsym(RTLD_DEFAULT, "ShouldCreateTenantSchemaTable");
		convert = (void (*) (Oid)) dlsym(RTLD_DEFAULT, "CreateTenantSchemaTable");
	}

	rel = table_open(RelationRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_class_relnamespace, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(nspid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_class form = (Form_pg_class) GETSTRUCT(tup);

		if ((form->relkind == RELKIND_RELATION ||
			 form->relkind == RELKIND_PARTITIONED_TABLE) &&
			!form->relispartition && !citus.is_citus_table(form->oid))
			rels = lappend_oid(rels, form->oid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	foreach(lc, rels)
	{
		Oid			relid = lfirst_oid(lc);

		if (should_convert == NULL || convert == NULL)
		{
			ereport(WARNING,
					(errmsg("table %s stays a local table in a distributed schema",
							get_rel_name(relid)),
					 errdetail("This version of Citus has no function to convert it.")));
			continue;
		}
		if (should_convert(relid))
			convert(relid);
	}
	list_free(rels);
}

/*
 * ti_citus_copy_from_context
 *		Part 6 of the header: before Citus runs COPY FROM into relid in the
 *		context's tenant, make the transaction coordinated and hand Citus
 *		the assertion, as ti_citus_ExecutorStart does for a statement.
 */
void
ti_citus_copy_from_context(Oid relid)
{
	pg_uuid_t	tenant;
	pg_time_t	now;

	if (IsParallelWorker() || !ti_citus_is_distributed(relid) ||
		!ti_lookup_rel(relid)->is_protected || !ti_context_get(&tenant))
		return;
	now = (pg_time_t) time(NULL);
	citus.use_coordinated_transaction();
	if (!ti_sent || memcmp(&ti_sent_tenant, &tenant, sizeof(tenant)) != 0 ||
		ti_sent_expiry - now < ti_worker_context_ttl / 2)
	{
		pg_time_t	expiry;
		char	   *assertion = ti_mint_assertion(&tenant, &expiry);
		VariableSetStmt *set = makeNode(VariableSetStmt);

		set->kind = VAR_SET_VALUE;
		set->name = TI_WORKER_CONTEXT_GUC;
		set->is_local = true;
		citus.propagate_set_local(set,
								  psprintf("SET LOCAL %s = %s", TI_WORKER_CONTEXT_GUC,
										   quote_literal_cstr(assertion)));
		ti_sent = true;
		ti_sent_tenant = tenant;
		ti_sent_expiry = expiry;
	}
}

static void
ti_citus_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			ti_sent = false;
			list_free(ti_distribute_nest);
			ti_distribute_nest = NIL;
			break;
		default:
			break;
	}
}

/* A rolled-back savepoint takes Citus' SET LOCAL state with it: send again. */
static void
ti_citus_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		ti_sent = false;
}

/*
 * ti_citus_internal_ddl
 *		Part 3 of the header.  Called by utility.c for the extension's own
 *		DDL (ti_internal_ddl).  Returns true when the statement is to be
 *		skipped; otherwise *nestlevel is a GUC nest level to close with
 *		ti_citus_internal_ddl_done() (0: none).
 */
bool
ti_citus_internal_ddl(Node *parsetree, int *nestlevel)
{
	*nestlevel = 0;
	if (!ti_citus_active())
		return false;

	if (IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		Var		   *key;
		ListCell   *lc;
		bool		all_default = stmt->cmds != NIL;

		if (!OidIsValid(relid) || !citus.is_citus_table(relid))
			return false;
		key = citus.dist_partition_key(relid);
		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			if (cmd->subtype != AT_ColumnDefault || key == NULL ||
				cmd->name == NULL ||
				get_attnum(relid, cmd->name) != key->varattno)
				all_default = false;
		}
		if (all_default)
		{
			/* the coordinator's table only (part 3 of the header) */
			*nestlevel = NewGUCNestLevel();
			(void) set_config_option("citus.enable_ddl_propagation", "off",
									 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
									 true, 0, false);
			return false;
		}
	}
	*nestlevel = NewGUCNestLevel();
	(void) set_config_option("citus.enable_unsafe_triggers", "on",
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return false;
}

void
ti_citus_internal_ddl_done(int nestlevel)
{
	if (nestlevel > 0)
		AtEOXact_GUC(true, nestlevel);
}

/*
 * ti_citus_fill_tenant_column
 *		Part 4 of the header, from the planner hook before Citus plans: an
 *		INSERT into a protected Citus table that omits the tenant column
 *		gets the context's tenant as a Const.
 */
void
ti_citus_fill_tenant_column(Query *parse)
{
	RangeTblEntry *rte;
	TiRelInfo  *info;
	pg_uuid_t	tenant;
	pg_uuid_t  *val;
	ListCell   *lc;
	List	   *tlist = NIL;
	bool		added = false;
	AttrNumber	attno;

	if (parse->commandType != CMD_INSERT || parse->resultRelation == 0 ||
		!ti_context_get(&tenant) || !ti_citus_active())
		return;
	rte = rt_fetch(parse->resultRelation, parse->rtable);
	if (rte->rtekind != RTE_RELATION || !citus.is_citus_table(rte->relid))
		return;
	info = ti_lookup_rel(rte->relid);
	if (!info->is_protected)
		return;
	attno = info->tenant_attno;
	foreach(lc, parse->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (tle->resno == attno)
			return;				/* given (or the column default): kept */
	}
	val = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));
	*val = tenant;
	/* the rewriter left the target list in attribute order: keep it so */
	foreach(lc, parse->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (!added && tle->resno > attno)
		{
			tlist = lappend(tlist,
							makeTargetEntry((Expr *) makeConst(UUIDOID, -1, InvalidOid,
															   UUID_LEN, UUIDPGetDatum(val),
															   false, false),
											attno, pstrdup(info->tenant_column), false));
			added = true;
		}
		tlist = lappend(tlist, tle);
	}
	if (!added)
		tlist = lappend(tlist,
						makeTargetEntry((Expr *) makeConst(UUIDOID, -1, InvalidOid,
														   UUID_LEN, UUIDPGetDatum(val),
														   false, false),
										attno, pstrdup(info->tenant_column), false));
	parse->targetList = tlist;
}

/*
 * Distributing a protected table (part 5 of the header).
 *
 * create_distributed_table() and its siblings refuse a table with triggers
 * unless citus.enable_unsafe_triggers is on, and a protected table has the
 * guard trigger.  Dropping the trigger is refused (utility.c), so for these
 * functions, called on a protected table, the setting is switched on for the
 * duration of the call only (a GUC nest level, popped at the end or by the
 * abort).  Citus then creates the shards from the table's definition: guard
 * trigger, forced row level security and fallback policy included.
 */
static bool
ti_is_citus_distribute_function(Oid fn_oid)
{
	char	   *name;
	Oid			nsp;

	if (!ti_citus_lookup() || fn_oid < FirstNormalObjectId)
		return false;
	nsp = get_func_namespace(fn_oid);
	if (!OidIsValid(nsp) || nsp != get_namespace_oid("pg_catalog", true))
		return false;
	name = get_func_name(fn_oid);
	return name != NULL &&
		(strcmp(name, "create_distributed_table") == 0 ||
		 strcmp(name, "create_distributed_table_concurrently") == 0 ||
		 strcmp(name, "create_reference_table") == 0 ||
		 strcmp(name, "alter_distributed_table") == 0 ||
		 strcmp(name, "isolate_tenant_to_new_shard") == 0 ||
		 strcmp(name, "citus_split_shard_by_split_points") == 0 ||
		 strcmp(name, "citus_move_shard_placement") == 0);
}

static bool
ti_citus_needs_fmgr_hook(Oid fn_oid)
{
	if (prev_needs_fmgr_hook && prev_needs_fmgr_hook(fn_oid))
		return true;
	return ti_is_citus_distribute_function(fn_oid);
}

static void
ti_citus_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);
	if (!ti_is_citus_distribute_function(flinfo->fn_oid))
		return;
	/*
	 * *private is shared with identity.c's hook, which reads it as a flag:
	 * our nest levels are kept on a stack of our own.
	 */
	switch (event)
	{
		case FHET_START:
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				ti_distribute_nest = lcons_int(NewGUCNestLevel(), ti_distribute_nest);
				MemoryContextSwitchTo(old);
				(void) set_config_option("citus.enable_unsafe_triggers", "on",
										 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
										 true, 0, false);
			}
			break;
		case FHET_END:
			if (ti_distribute_nest != NIL)
			{
				AtEOXact_GUC(true, linitial_int(ti_distribute_nest));
				ti_distribute_nest = list_delete_first(ti_distribute_nest);
			}
			break;
		case FHET_ABORT:
			/* the (sub)transaction abort pops the GUC level itself */
			if (ti_distribute_nest != NIL)
				ti_distribute_nest = list_delete_first(ti_distribute_nest);
			break;
	}
}

/*
 * ti_citus_init
 *		Settings and hooks; called from _PG_init.
 */
void
ti_citus_init(void)
{
	DefineCustomStringVariable("tenant_isolation.cluster_key_file",
							   "File holding the key that signs tenant contexts sent to Citus workers.",
							   "Every node of a Citus cluster names a file with the same key (32 to 1024 bytes).",
							   &ti_cluster_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_isolation.worker_context_ttl",
							"Lifetime in seconds of a tenant context sent to Citus workers.",
							NULL,
							&ti_worker_context_ttl,
							60, 2, 3600,
							PGC_SIGHUP,
							GUC_SUPERUSER_ONLY | GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomStringVariable(TI_WORKER_CONTEXT_GUC,
							   "Tenant context signed by a Citus coordinator (set by the coordinator only).",
							   NULL,
							   &ti_worker_context_string,
							   "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   ti_worker_context_check, ti_worker_context_assign, NULL);

	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = ti_citus_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = ti_citus_fmgr_hook;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ti_citus_ExecutorStart;
	RegisterXactCallback(ti_citus_xact_callback, NULL);
	RegisterSubXactCallback(ti_citus_subxact_callback, NULL);
}
