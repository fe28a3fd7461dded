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
 *	  on a worker would log it (docs/scaling.md).  A context that came from
 *	  an assertion is never signed again (ti_mint_assertion), so a captured
 *	  assertion cannot be renewed through a worker, which Citus lets route
 *	  statements too: its use ends at its expiry.
 *
 * 2a. The context inside the statement (router reads).  The coordinated
 *	  transaction costs a single-shard read two extra round trips (BEGIN
 *	  with the SET, COMMIT).  So a SELECT of one protected distributed
 *	  table, planned for one execution (planner.c's "used once": the simple
 *	  protocol, a custom plan, EXPLAIN), gets two quals in its WHERE before
 *	  Citus plans it: "<tenant column> = '<tenant>'" (unless the statement
 *	  names the column itself), which makes it a fast-path router query,
 *	  and "tenant_isolation._worker_assertion('<assertion>')" with a fresh
 *	  assertion of the same form and MAC as above.  Citus deparses both into
 *	  the SQL of the single task (it evaluates no function of a read-only
 *	  query on the coordinator), and ti_citus_ExecutorStart leaves the
 *	  statement alone: Citus sends it in one round trip.  On the worker the
 *	  planner hook (ti_citus_plan_begin, before anything is planned) looks
 *	  for the call among the top-level AND of the statement's WHERE,
 *	  verifies the assertion exactly like the setting's check hook (same
 *	  function), and makes its tenant the context of that statement until
 *	  the execution of its plan ends (ExecutorEnd), the transaction or the
 *	  subtransaction it was verified in ends, or the next statement is
 *	  planned.  Why this holds:
 *	  - Fail closed.  A call that does not verify (no key, another key,
 *		expired, another role or database, altered, malformed), two calls,
 *		or one that disagrees with a SET LOCAL in force is refused with
 *		42501 and audited.  A call anywhere else (select list, subquery,
 *		under OR) gives no context, so the shard is closed as without one,
 *		and the call itself evaluates to 42501 outside the statement whose
 *		assertion was verified (_worker_assertion): a plan that is kept and
 *		run again, or a lone call, does not pass.
 *	  - X's assertion never opens Y's rows.  The worker adds its own
 *		tenant qual (planner.c) from the context, i.e. X, as a security
 *		barrier, and the guard trigger and WITH CHECK hold writes to X; a
 *		statement that carries X's assertion and names Y's tenant_id (or
 *		is routed to Y's shard) sees nothing of Y.
 *	  - The tenant cannot change inside a statement: an assertion of
 *		another tenant planned while a plan runs (a function of the
 *		statement), or a SET LOCAL of another tenant while one is in force,
 *		is refused.  A SET LOCAL left on the worker connections of the
 *		transaction by an earlier statement of another tenant (or by a
 *		rolled-back savepoint) makes the coordinator send the current one
 *		too, so the two agree.
 *	  - The plan that carries the assertion is the first to start after
 *		its planning (ti_citus_ExecutorStart says why that is exact): a
 *		plan the plan cache keeps (generic) never carries one and takes
 *		the coordinated transaction; its cost is raised so that the plan
 *		cache prefers custom plans for such statements.
 *	  Exposure: the worker's pg_stat_activity shows the statement with the
 *	  MAC replaced once it is verified (a window of parse analysis before);
 *	  log_statement = all, log_min_error_statement and auto_explain on a
 *	  worker log the whole assertion; pg_stat_statements stores the
 *	  statement with its constants replaced.  Writes, multi-shard
 *	  statements, joins and generic plans keep the coordinated transaction.
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
#include "catalog/pg_collation.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_oper.h"
#include "parser/parsetree.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "tcop/tcopprot.h"
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
static bool ti_sent_in_xact = false;	/* a SET LOCAL went out in this xact */

/*
 * Statement assertions (part 2a of the header).  Coordinator side: the
 * Query that got one in the running planner() call, and then its plan,
 * until that plan starts executing.
 */
static Query *ti_coord_query = NULL;
static Query *ti_coord_generic_query = NULL;
static PlannedStmt *ti_coord_plan = NULL;
static pg_uuid_t ti_coord_tenant;

/* Worker side: the verified assertion of the statement being run. */
#define TI_ASSERTION_MAX	192
static struct
{
	bool		active;
	pg_uuid_t	tenant;
	long long	expiry;
	SubTransactionId subid;		/* where it was verified */
	Query	   *query;			/* its Query while planner() runs */
	PlannedStmt *plan;			/* then its plan (as planned) */
	QueryDesc  *qd;				/* then its execution, until ExecutorEnd */
	char		assertion[TI_ASSERTION_MAX];
} ti_stmt;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static int	ti_run_depth = 0;	/* ExecutorRun calls in progress */
static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static List *ti_distribute_nest = NIL;	/* GUC nest levels, innermost first */
static fmgr_hook_type prev_fmgr_hook = NULL;

static void ti_citus_ExecutorStart(QueryDesc *queryDesc, int eflags);
static void ti_citus_ExecutorEnd(QueryDesc *queryDesc);
static void ti_stmt_clear(void);
static void ti_citus_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
								 uint64 count, bool execute_once);
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
 * ti_cluster_key
 *		The key, read again only when the file's stat() changes (path,
 *		device, inode, size, mode, modification and change times), so that
 *		a statement does not open the file on every node it touches.  A
 *		rotated or re-permissioned file is read (and checked) again at the
 *		next use.  The bytes stay in this backend's memory, as the file's
 *		contents are in the page cache; they are wiped when replaced.
 */
static unsigned char *ti_key_cache = NULL;
static size_t ti_key_cache_len = 0;
static char ti_key_cache_path[MAXPGPATH];
static struct stat ti_key_cache_st;

static const unsigned char *
ti_cluster_key(size_t *len, const char **why)
{
	struct stat st;
	unsigned char *key;

	if (ti_cluster_key_file != NULL && ti_cluster_key_file[0] != '\0' &&
		stat(ti_cluster_key_file, &st) == 0)
	{
		if (ti_key_cache != NULL &&
			strcmp(ti_key_cache_path, ti_cluster_key_file) == 0 &&
			st.st_dev == ti_key_cache_st.st_dev &&
			st.st_ino == ti_key_cache_st.st_ino &&
			st.st_size == ti_key_cache_st.st_size &&
			st.st_mode == ti_key_cache_st.st_mode &&
			st.st_mtim.tv_sec == ti_key_cache_st.st_mtim.tv_sec &&
			st.st_mtim.tv_nsec == ti_key_cache_st.st_mtim.tv_nsec &&
			st.st_ctim.tv_sec == ti_key_cache_st.st_ctim.tv_sec &&
			st.st_ctim.tv_nsec == ti_key_cache_st.st_ctim.tv_nsec)
		{
			*len = ti_key_cache_len;
			return ti_key_cache;
		}
	}
	else
		memset(&st, 0, sizeof(st));
	if (ti_key_cache != NULL)
	{
		explicit_bzero(ti_key_cache, ti_key_cache_len);
		pfree(ti_key_cache);
		ti_key_cache = NULL;
	}
	key = ti_read_cluster_key(len, why);
	if (key == NULL)
		return NULL;
	if (st.st_ino != 0 && strlen(ti_cluster_key_file) < MAXPGPATH)
	{
		ti_key_cache = MemoryContextAlloc(TopMemoryContext, *len);
		memcpy(ti_key_cache, key, *len);
		ti_key_cache_len = *len;
		strlcpy(ti_key_cache_path, ti_cluster_key_file, MAXPGPATH);
		ti_key_cache_st = st;
		explicit_bzero(key, *len);
		pfree(key);
		return ti_key_cache;
	}
	/* not cacheable (the file changed or vanished under us): used once */
	return key;
}

/*
 * ti_assertion_mac
 *		Hex HMAC-SHA256 of "<body>.<database>.<role>" (65 bytes with NUL).
 */
static bool
ti_assertion_mac(const char *body, Oid roleid, char *hex, const char **why)
{
	const unsigned char *key;
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
	key = ti_cluster_key(&keylen, why);
	if (key == NULL)
		return false;
	initStringInfo(&msg);
	appendStringInfo(&msg, "%s.%s.%s", body, db, role);
	ok = HMAC(EVP_sha256(), key, (int) keylen, (unsigned char *) msg.data,
			  msg.len, mac, &maclen) != NULL && maclen == 32;
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
	pg_uuid_t	asserted;

	/*
	 * A context that came from an assertion is never signed again: a
	 * captured assertion could otherwise be renewed through a worker (Citus
	 * routes statements from workers too) for as long as anyone liked.
	 */
	if (ti_citus_worker_context(&asserted) &&
		memcmp(&asserted, tenant, sizeof(asserted)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a tenant context asserted by a Citus coordinator cannot be passed on"),
				 errhint("Run distributed statements through the coordinator.")));
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
 * ti_verify_assertion
 *		Parse "v1.<tenant>.<expiry>.<nonce>.<mac>" and, unless parse_only,
 *		check its MAC for this database and the current role and its expiry.
 *		On failure *why says why (never the value).  Shared by the setting
 *		(SET LOCAL) and by the statement form (part 2a), so both accept
 *		exactly the same assertions.
 */
static bool
ti_verify_assertion(const char *value, bool parse_only, pg_uuid_t *tenant,
					long long *expiry, const char **why)
{
	char	   *copy;
	char	   *parts[5];
	char	   *p;
	int			n = 0;
	char		mac[65];
	char	   *end;
	char	   *body;

	*why = "invalid tenant context assertion";
	if (strlen(value) >= TI_ASSERTION_MAX)
		return false;
	copy = pstrdup(value);
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
		!ti_uuid_from_cstring(parts[1], tenant) || strlen(parts[3]) != 16 ||
		strlen(parts[4]) != 64)
		return false;
	errno = 0;
	*expiry = strtoll(parts[2], &end, 10);
	if (errno != 0 || *end != '\0' || end == parts[2])
		return false;
	if (parse_only)
		return true;
	/* MAC over the part before the MAC, for this database and role */
	body = psprintf("%s.%s.%s.%s", parts[0], parts[1], parts[2], parts[3]);
	if (!ti_assertion_mac(body, GetUserId(), mac, why))
	{
		*why = psprintf("cannot verify the tenant context assertion: %s", *why);
		return false;
	}
	*why = "invalid tenant context assertion";
	if (CRYPTO_memcmp(mac, parts[4], 64) != 0)
		return false;
	if (*expiry < (long long) time(NULL))
	{
		*why = "the tenant context assertion has expired";
		return false;
	}
	return true;
}

/*
 * ti_worker_context_check
 *		Verify an assertion (worker side).  '' means none.
 */
static bool
ti_worker_context_check(char **newval, void **extra, GucSource source)
{
	TiWorkerExtra *x;
	const char *why = NULL;
	long long	expiry;
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
	if (!ti_verify_assertion(*newval, InitializingParallelWorker, &tenant,
							 &expiry, &why))
		return ti_worker_context_refuse(x, why);
	/*
	 * A statement's own assertion (part 2a) is never overridden while a
	 * plan runs; a SET issued as a statement of its own ends the previous
	 * statement's assertion (its portal may not be dropped yet).
	 */
	if (ti_stmt.active && ti_run_depth > 0 &&
		memcmp(&ti_stmt.tenant, &tenant, sizeof(tenant)) != 0)
		return ti_worker_context_refuse(x, "conflicting tenant context assertions");
	if (ti_stmt.active && ti_run_depth == 0)
		ti_stmt_clear();
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
	if (ti_stmt.active)
	{
		if (tenant)
			*tenant = ti_stmt.tenant;
		return true;
	}
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
	return ti_stmt.active || (ti_worker_extra != NULL && ti_worker_extra->has);
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
 * Statement assertions (part 2a of the header).
 */

/*
 * ti_collect_assertions
 *		The calls of _worker_assertion(text) among the top-level AND of a
 *		qual, with their (Const) argument.  Anything else in the qual is
 *		ignored: only a call the whole WHERE depends on carries a context.
 */
static void
ti_collect_assertions(Node *qual, Oid fn, List **found, int *count)
{
	if (qual == NULL)
		return;
	if (IsA(qual, List))
	{
		ListCell   *lc;

		foreach(lc, (List *) qual)
			ti_collect_assertions(lfirst(lc), fn, found, count);
		return;
	}
	if (is_andclause(qual))
	{
		ti_collect_assertions((Node *) ((BoolExpr *) qual)->args, fn, found, count);
		return;
	}
	if (IsA(qual, FuncExpr) && ((FuncExpr *) qual)->funcid == fn)
	{
		FuncExpr   *f = (FuncExpr *) qual;

		(*count)++;
		if (list_length(f->args) == 1 && IsA(linitial(f->args), Const) &&
			!((Const *) linitial(f->args))->constisnull)
			*found = lappend(*found, linitial(f->args));
	}
}

/*
 * ti_stmt_refuse
 *		Refuse a statement's assertion: audited, 42501, never echoed.
 */
static void
ti_stmt_refuse(const char *why)
{
	ti_audit("denied_worker_context", "statement", ERRCODE_INSUFFICIENT_PRIVILEGE, why);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s", why)));
}

/*
 * ti_stmt_redact_activity
 *		Replace the MAC of the statement's assertion in this backend's
 *		pg_stat_activity text (the rest of the statement stays readable).
 */
static void
ti_stmt_redact_activity(const char *assertion)
{
	const char *mac = strrchr(assertion, '.');
	const char *hit;
	StringInfoData buf;
	const char *from;

	if (debug_query_string == NULL || mac == NULL || strlen(mac + 1) != 64)
		return;
	mac++;
	hit = strstr(debug_query_string, mac);
	if (hit == NULL)
		return;
	initStringInfo(&buf);
	from = debug_query_string;
	while (hit != NULL)
	{
		appendBinaryStringInfo(&buf, from, hit - from);
		appendStringInfoString(&buf, "<redacted>");
		from = hit + 64;
		hit = strstr(from, mac);
	}
	appendStringInfoString(&buf, from);
	pgstat_report_activity(STATE_RUNNING, buf.data);
	pfree(buf.data);
}

/*
 * ti_stmt_clear
 *		The statement's assertion is no longer in force.
 */
static void
ti_stmt_clear(void)
{
	if (ti_stmt.active)
		explicit_bzero(ti_stmt.assertion, sizeof(ti_stmt.assertion));
	ti_stmt.active = false;
	ti_stmt.query = NULL;
	ti_stmt.plan = NULL;
	ti_stmt.qd = NULL;
}

/*
 * ti_var_in_qual
 *		Does the qual reference column attno of the query's only relation?
 */
typedef struct
{
	AttrNumber	attno;
} TiVarSearch;

static bool
ti_var_in_qual_walker(Node *node, TiVarSearch *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		return v->varno == 1 && v->varlevelsup == 0 &&
			(v->varattno == ctx->attno || v->varattno == 0);
	}
	return expression_tree_walker(node, ti_var_in_qual_walker, ctx);
}

/*
 * ti_coord_add_assertion
 *		Coordinator side: give an eligible statement its tenant as a Const
 *		of the distribution column and the assertion, as quals of its WHERE.
 */
static TiRelInfo *
ti_coord_eligible(Query *parse, pg_uuid_t *tenant)
{
	RangeTblEntry *rte;
	TiRelInfo  *info;
	Var		   *key;

	/* one protected distributed table, a plain SELECT: a single task */
	if (parse->commandType != CMD_SELECT || parse->utilityStmt != NULL ||
		list_length(parse->rtable) != 1 || parse->cteList != NIL ||
		parse->hasSubLinks || parse->setOperations != NULL ||
		parse->rowMarks != NIL || parse->hasModifyingCTE ||
		parse->jointree == NULL || IsParallelWorker())
		return NULL;
	rte = linitial_node(RangeTblEntry, parse->rtable);
	if (rte->rtekind != RTE_RELATION || rte->tablesample != NULL)
		return NULL;
	if (!ti_context_get(tenant))
		return NULL;
	info = ti_lookup_rel(rte->relid);
	if (!info->is_protected || !citus.is_citus_table(rte->relid))
		return NULL;
	key = citus.dist_partition_key(rte->relid);
	if (key == NULL || key->varattno != info->tenant_attno)
		return NULL;
	return info;
}

static void
ti_coord_add_assertion(Query *parse, Oid fn)
{
	TiRelInfo  *info;
	pg_uuid_t	tenant;
	pg_uuid_t  *val;
	pg_time_t	expiry;
	char	   *assertion;
	List	   *ands = NIL;
	Node	   *quals;
	TiVarSearch search;

	info = ti_coord_eligible(parse, &tenant);
	if (info == NULL)
		return;

	assertion = ti_mint_assertion(&tenant, &expiry);
	quals = parse->jointree->quals;
	if (quals != NULL && is_andclause(quals))
		ands = list_copy(((BoolExpr *) quals)->args);
	else if (quals != NULL)
		ands = list_make1(quals);

	/*
	 * The tenant as a Const of the distribution column lets Citus route by
	 * its fast path (no standard planning on the coordinator); Citus takes
	 * it only when the column appears once, so a statement that names the
	 * column keeps what it wrote (and is routed by it; the worker scopes).
	 */
	search.attno = info->tenant_attno;
	if (!ti_var_in_qual_walker(quals, &search))
	{
		Var		   *var = makeVar(1, info->tenant_attno, UUIDOID, -1, InvalidOid, 0);
		OpExpr	   *op;
		static Oid	uuid_eq = InvalidOid;

		val = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));
		*val = tenant;
		if (!OidIsValid(uuid_eq))
			uuid_eq = OpernameGetOprid(list_make2(makeString("pg_catalog"),
												  makeString("=")),
									   UUIDOID, UUIDOID);
		op = (OpExpr *) make_opclause(uuid_eq, BOOLOID, false, (Expr *) var,
									  (Expr *) makeConst(UUIDOID, -1, InvalidOid, UUID_LEN,
														 UUIDPGetDatum(val), false, false),
									  InvalidOid, InvalidOid);
		op->opfuncid = F_UUID_EQ;
		ands = lappend(ands, op);
	}
	ands = lappend(ands,
				   makeFuncExpr(fn, BOOLOID,
								list_make1(makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID, -1,
													 CStringGetTextDatum(assertion),
													 false, false)),
								InvalidOid, DEFAULT_COLLATION_OID,
								COERCE_EXPLICIT_CALL));
	parse->jointree->quals = (list_length(ands) == 1) ? linitial(ands) :
		(Node *) makeBoolExpr(AND_EXPR, ands, -1);
	ti_coord_query = parse;
	ti_coord_tenant = tenant;
}

/*
 * ti_citus_plan_begin
 *		From the planner hook, before Citus plans.  Worker side: a statement
 *		that carries an assertion is verified, and its tenant becomes the
 *		context of that statement.  Coordinator side: a statement planned
 *		for one execution (used_once, see planner.c) that reads one
 *		protected distributed table gets an assertion.
 */
void
ti_citus_plan_begin(Query *parse, bool used_once, bool top)
{
	Oid			fn;
	List	   *found = NIL;
	int			count = 0;

	if (parse->commandType == CMD_UTILITY || !ti_citus_active())
		return;
	fn = ti_worker_assertion_func();
	if (!OidIsValid(fn))
		return;

	if (parse->jointree != NULL)
		ti_collect_assertions(parse->jointree->quals, fn, &found, &count);
	if (count > 0)
	{
		const char *why = NULL;
		char	   *value;
		pg_uuid_t	tenant;
		long long	expiry;

		if (count != 1 || list_length(found) != 1)
			ti_stmt_refuse("a statement may carry one tenant context assertion");
		value = TextDatumGetCString(((Const *) linitial(found))->constvalue);
		if (!ti_verify_assertion(value, false, &tenant, &expiry, &why))
			ti_stmt_refuse(why);
		/*
		 * Another statement's assertion may still be in force when its
		 * portal is not yet dropped (the extended protocol drops the
		 * unnamed portal at the next Bind): a new statement, planned while
		 * no plan runs, replaces it.  Planned while a plan runs (a function
		 * of the running statement), it must not change the tenant of the
		 * running statement; nor may it disagree with a SET LOCAL in force.
		 */
		if ((ti_stmt.active && ti_run_depth > 0 &&
			 memcmp(&ti_stmt.tenant, &tenant, sizeof(tenant)) != 0) ||
			(ti_worker_extra != NULL && ti_worker_extra->has &&
			 memcmp(&ti_worker_extra->tenant, &tenant, sizeof(tenant)) != 0))
			ti_stmt_refuse("conflicting tenant context assertions");
		ti_stmt_redact_activity(value);
		ti_stmt.active = true;
		ti_stmt.tenant = tenant;
		ti_stmt.expiry = expiry;
		ti_stmt.subid = GetCurrentSubTransactionId();
		ti_stmt.query = parse;
		ti_stmt.plan = NULL;
		ti_stmt.qd = NULL;
		strlcpy(ti_stmt.assertion, value, sizeof(ti_stmt.assertion));
		explicit_bzero(value, strlen(value));
		return;
	}

	/* a new statement, planned while no plan runs, ends the previous one's */
	if (top && ti_run_depth == 0 && ti_stmt.active && ti_stmt.plan != NULL)
		ti_stmt_clear();

	if (top && used_once)
		ti_coord_add_assertion(parse, fn);
	else if (top)
	{
		pg_uuid_t	tenant;

		/*
		 * A generic plan of such a statement (the plan cache's, for a
		 * prepared statement with parameters) cannot carry an assertion: it
		 * takes the coordinated transaction.  Its cost is raised so that
		 * the plan cache keeps choosing custom plans, which carry one.
		 * (Citus raises it much further itself for a generic plan whose
		 * shards it cannot prune without the parameters; it does not for
		 * one that names the distribution column as a parameter.)
		 */
		if (ti_coord_eligible(parse, &tenant) != NULL)
			ti_coord_generic_query = parse;
	}
}

/*
 * ti_citus_plan_end
 *		The planner() call of ti_citus_plan_begin returned this plan.
 */
void
ti_citus_plan_end(Query *parse, PlannedStmt *result)
{
	if (ti_stmt.active && ti_stmt.query == parse && ti_stmt.plan == NULL)
	{
		ti_stmt.plan = result;
		ti_stmt.query = NULL;
	}
	if (ti_coord_generic_query == parse && parse != NULL)
	{
		if (result->planTree != NULL)
			result->planTree->total_cost += 1.0e9;
		ti_coord_generic_query = NULL;
	}
	if (ti_coord_query == parse && parse != NULL)
	{
		ti_coord_plan = result;
		ti_coord_query = NULL;
	}
}

/*
 * _worker_assertion(text) RETURNS boolean
 *		What the call evaluates to in the statement that carries it: true
 *		when its argument is the assertion verified for this very statement
 *		and still valid, 42501 otherwise (a plan kept and run again later,
 *		the call anywhere else, or on its own).
 */
PG_FUNCTION_INFO_V1(ti_worker_assertion);

Datum
ti_worker_assertion(PG_FUNCTION_ARGS)
{
	char	   *value;
	bool		ok;

	if (PG_ARGISNULL(0))
		ti_stmt_refuse("invalid tenant context assertion");
	value = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ok = ti_stmt.active && strlen(value) == strlen(ti_stmt.assertion) &&
		CRYPTO_memcmp(value, ti_stmt.assertion, strlen(value)) == 0;
	explicit_bzero(value, strlen(value));
	if (!ok)
		ti_stmt_refuse("the tenant context assertion is not the one of this statement");
	if (ti_stmt.expiry < (long long) time(NULL))
		ti_stmt_refuse("the tenant context assertion has expired");
	PG_RETURN_BOOL(true);
}

/*
 * ti_citus_ExecutorStart
 *		Hand the context to Citus for the workers (part 2 of the header).
 */
static void
ti_citus_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	pg_uuid_t	tenant;

	/*
	 * Which plan carries an assertion (part 2a).  The plan cache hands the
	 * executor a copy of the plan it planned, so the plan is not known by
	 * its address: it is the first plan to start after the planner() call
	 * that gave its statement the assertion.  Planning and starting are
	 * adjacent (the simple protocol, Bind of the extended one, SPI and
	 * EXECUTE plan a statement and start it before anything else runs), and
	 * every ExecutorStart consumes the mark, so a plan that starts later
	 * (one kept by the plan cache, whatever it carries) takes the
	 * coordinated transaction; should it carry another tenant's assertion,
	 * the worker refuses it against the SET LOCAL of the current tenant.
	 */
	if (!IsParallelWorker() && queryDesc->plannedstmt &&
		queryDesc->plannedstmt->commandType != CMD_UTILITY &&
		ti_extension_present() && ti_citus_active() &&
		ti_context_get(&tenant) &&
		ti_plan_touches_protected_citus(queryDesc->plannedstmt))
	{
		pg_time_t	now = (pg_time_t) time(NULL);
		bool		carried;

		/*
		 * A plan whose statement carries the assertion (part 2a) needs no
		 * coordinated transaction, unless a SET LOCAL of another tenant
		 * (or one a rolled-back savepoint may have left) is in force on the
		 * worker connections of this transaction: then the current one is
		 * sent too, since a worker refuses two that disagree.
		 */
		carried = ti_coord_plan != NULL &&
			memcmp(&ti_coord_tenant, &tenant, sizeof(tenant)) == 0;
		if (!carried ||
			(ti_sent_in_xact &&
			 (!ti_sent || memcmp(&ti_sent_tenant, &tenant, sizeof(tenant)) != 0)))
		{
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
				ti_sent_in_xact = true;
				ti_sent_tenant = tenant;
				ti_sent_expiry = expiry;
			}
		}
	}

	/* whatever starts now is not the plan planned last (see above) */
	ti_coord_plan = NULL;
	/* worker side: the same adjacency names the statement's execution */
	if (ti_stmt.active && ti_stmt.plan != NULL && ti_stmt.qd == NULL)
		ti_stmt.qd = queryDesc;

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * ti_citus_ExecutorRun
 *		Count running plans (for ti_citus_plan_begin).
 */
static void
ti_citus_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
					 uint64 count, bool execute_once)
{
	ti_run_depth++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		ti_run_depth--;
	}
	PG_END_TRY();
}

/*
 * ti_citus_ExecutorEnd
 *		A statement's assertion ends with the execution of its plan.
 */
static void
ti_citus_ExecutorEnd(QueryDesc *queryDesc)
{
	bool		mine = ti_stmt.active && ti_stmt.qd == queryDesc;

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
	if (mine)
		ti_stmt_clear();
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
		ti_sent_in_xact = true;
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
			ti_sent_in_xact = false;
			ti_coord_query = NULL;
			ti_coord_generic_query = NULL;
			ti_coord_plan = NULL;
			ti_stmt_clear();
			list_free(ti_distribute_nest);
			ti_distribute_nest = NIL;
			break;
		default:
			break;
	}
}

/*
 * A rolled-back savepoint takes Citus' SET LOCAL state with it: send again
 * (and ti_sent_in_xact stays set: what the workers hold is unknown now).  A
 * statement assertion verified in the aborted subtransaction ends.
 */
static void
ti_citus_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		ti_sent = false;
		if (ti_stmt.active && ti_stmt.subid == mySubid)
			ti_stmt_clear();
	}
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
 * ti_citus_define_gucs
 *		Settings; called from _PG_init before the prefix is reserved (a
 *		setting defined after MarkGUCPrefixReserved loses the value the
 *		configuration file gave it until the next reload).
 */
void
ti_citus_define_gucs(void)
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
}

/*
 * ti_citus_init
 *		Hooks; called from _PG_init.
 */
void
ti_citus_init(void)
{
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = ti_citus_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = ti_citus_fmgr_hook;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ti_citus_ExecutorStart;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = ti_citus_ExecutorEnd;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = ti_citus_ExecutorRun;
	RegisterXactCallback(ti_citus_xact_callback, NULL);
	RegisterSubXactCallback(ti_citus_subxact_callback, NULL);
}
