
# Copyright (c) 2026, tenant_isolation developers

# Crash in the middle of provisioning.
#
# A backend running create_tenant (schema tier), move_tenant (both ways) or
# drop_tenant (both tiers) is paused at a chosen step, then killed with
# SIGKILL.  The postmaster reinitializes (restart_after_crash), crash
# recovery replays the WAL, and the catalogs must be consistent: no
# half-created tenant, no schema or role of a tenant without its tenant row,
# no schema-tier tenant without its schema, role and template copies, no row
# lost or duplicated by an interrupted move.  Each operation then runs to its
# end on the recovered cluster, which proves nothing half-made is left in its
# way.
#
# The pause: a statement trigger on the protected table and event triggers
# on CREATE SCHEMA / DROP SCHEMA call crash_pause(), which waits for an
# advisory lock that a second session holds, when the victim session has set
# crash.pause = on.  rotate_tenant_key does not exist yet (keys are being
# written); audit durability across crashes is tested elsewhere.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'tenant_isolation'
restart_after_crash = on
log_min_messages = warning
});
$node->start;

my %id = (
	c1 => 'c1c1c1c1-0000-4000-8000-000000000001',
	m1 => 'a1a1a1a1-0000-4000-8000-000000000002',
	m2 => 'b2b2b2b2-0000-4000-8000-000000000003',
	d1 => 'd1d1d1d1-0000-4000-8000-000000000004',
	d2 => 'd2d2d2d2-0000-4000-8000-000000000005',
	keep => 'eeeeeeee-0000-4000-8000-000000000006',);

sub hexid { (my $h = shift) =~ s/-//g; return "tenant_$h"; }

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION tenant_isolation;
CREATE TABLE items (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text,
	PRIMARY KEY (tenant_id, id)
);
SELECT tenant_isolation.protect_table('items');
SELECT tenant_isolation.add_template_table('items');

CREATE FUNCTION crash_pause() RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
	IF current_setting('crash.pause', true) = 'on' THEN
		PERFORM pg_advisory_xact_lock(4711);
	END IF;
END
\$\$;
CREATE FUNCTION crash_pause_trg() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN PERFORM public.crash_pause(); RETURN NULL; END
\$\$;
CREATE FUNCTION crash_pause_evt() RETURNS event_trigger LANGUAGE plpgsql AS \$\$
BEGIN PERFORM public.crash_pause(); END
\$\$;
CREATE TRIGGER crash_pause BEFORE DELETE ON items
	FOR EACH STATEMENT EXECUTE FUNCTION crash_pause_trg();
CREATE EVENT TRIGGER crash_pause_create ON ddl_command_end
	WHEN TAG IN ('CREATE SCHEMA') EXECUTE FUNCTION crash_pause_evt();
CREATE EVENT TRIGGER crash_pause_drop ON sql_drop
	WHEN TAG IN ('DROP SCHEMA') EXECUTE FUNCTION crash_pause_evt();

SELECT tenant_isolation.create_tenant('keep', 'shared', '$id{keep}');
SELECT tenant_isolation.create_tenant('m1', 'shared', '$id{m1}');
SELECT tenant_isolation.create_tenant('m2', 'schema', '$id{m2}');
SELECT tenant_isolation.create_tenant('d1', 'schema', '$id{d1}');
SELECT tenant_isolation.create_tenant('d2', 'shared', '$id{d2}');
INSERT INTO items SELECT '$id{keep}', i, 'keep ' || i FROM generate_series(1, 3) i;
INSERT INTO items SELECT '$id{m1}', i, 'm1 ' || i FROM generate_series(1, 5) i;
INSERT INTO items SELECT '$id{d2}', i, 'd2 ' || i FROM generate_series(1, 4) i;
INSERT INTO ${\hexid($id{m2})}.items SELECT '$id{m2}', i, 'm2 ' || i FROM generate_series(1, 6) i;
INSERT INTO ${\hexid($id{d1})}.items SELECT '$id{d1}', i, 'd1 ' || i FROM generate_series(1, 2) i;
});

# Every inconsistency between the tenant catalog, schemas, roles and rows,
# one per line; empty when consistent.
my $consistency = q{
SELECT coalesce(string_agg(problem, E'\n' ORDER BY problem), '') FROM (
	SELECT 'orphan schema ' || n.nspname AS problem FROM pg_namespace n
	 WHERE n.nspname ~ '^tenant_[0-9a-f]{32}$'
	   AND NOT EXISTS (SELECT 1 FROM tenant_isolation.tenant t WHERE t.schema_name = n.nspname)
	UNION ALL
	SELECT 'orphan role ' || r.rolname FROM pg_roles r
	 WHERE r.rolname ~ '^tenant_[0-9a-f]{32}$'
	   AND NOT EXISTS (SELECT 1 FROM tenant_isolation.tenant t WHERE t.role_name = r.rolname)
	UNION ALL
	SELECT 'schema-tier tenant without schema or role ' || t.name FROM tenant_isolation.tenant t
	 WHERE t.tier = 'schema'
	   AND (NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = t.schema_name)
			OR NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = t.role_name))
	UNION ALL
	SELECT 'schema-tier tenant without template copy ' || t.name FROM tenant_isolation.tenant t
	 WHERE t.tier = 'schema' AND to_regclass(quote_ident(t.schema_name) || '.items') IS NULL
	UNION ALL
	SELECT 'shared tenant with schema or role ' || t.name FROM tenant_isolation.tenant t
	 WHERE t.tier = 'shared' AND (t.schema_name IS NOT NULL OR t.role_name IS NOT NULL)
	UNION ALL
	SELECT 'shared rows without tenant ' || i.tenant_id FROM items i
	 WHERE NOT EXISTS (SELECT 1 FROM tenant_isolation.tenant t WHERE t.id = i.tenant_id)
	 GROUP BY i.tenant_id
	UNION ALL
	SELECT 'shared rows of schema-tier tenant ' || t.name FROM items i
	  JOIN tenant_isolation.tenant t ON t.id = i.tenant_id
	 WHERE t.tier = 'schema' GROUP BY t.name
	UNION ALL
	SELECT 'protected table row of a missing table ' || p.tbl::oid
	  FROM tenant_isolation.protected_table p
	 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.tbl::oid)
) x
};

# Rows of one tenant, wherever they are (shared table or its schema).
sub tenant_rows
{
	my ($key) = @_;
	my $sch = hexid($id{$key});
	return $node->safe_psql(
		'postgres', qq{
SELECT (SELECT count(*) FROM items WHERE tenant_id = '$id{$key}')
	 + coalesce((SELECT (xpath('/row/c/text()',
			query_to_xml('SELECT count(*) AS c FROM $sch.items', false, true, '')))[1]::text::int
		  WHERE to_regclass('$sch.items') IS NOT NULL), 0)});
}

sub tenant_state
{
	my ($key) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce((SELECT tier FROM tenant_isolation.tenant WHERE id = '$id{$key}'), 'absent')"
	);
}

# Run $sql in a session paused by crash_pause(), kill -9 its backend, wait
# for the cluster to be back.
sub crash_during
{
	my ($what, $sql) = @_;

	my $holder = $node->background_psql('postgres', on_error_stop => 0);
	$holder->query_safe('SELECT pg_advisory_lock(4711)');

	my $victim = $node->background_psql('postgres', on_error_stop => 0);
	my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
	$victim->query_until(qr/started/,
		"SET crash.pause = on;\n\\echo started\n$sql;\n");

	ok( $node->poll_query_until(
			'postgres',
			"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $victim_pid
				 AND wait_event_type = 'Lock' AND wait_event = 'advisory')"),
		"$what: paused inside the operation");

	my $log_offset = -s $node->logfile;
	is(kill('KILL', $victim_pid), 1, "$what: backend $victim_pid killed");
	# Both psql sessions lost their server; they may be gone already.
	eval { $victim->quit; };
	eval { $holder->quit; };

	# Not before the postmaster noticed: the old backends must be gone.
	$node->wait_for_log(qr/all server processes terminated; reinitializing/,
		$log_offset);
	ok( $node->poll_query_until(
			'postgres', 'SELECT NOT pg_is_in_recovery()'),
		"$what: cluster recovered");
	is($node->safe_psql('postgres', $consistency),
		'', "$what: catalogs consistent after the crash");
}

my $rows_m1 = tenant_rows('m1');
my $rows_m2 = tenant_rows('m2');
my $rows_d1 = tenant_rows('d1');
my $rows_d2 = tenant_rows('d2');
my $rows_keep = tenant_rows('keep');
is($node->safe_psql('postgres', $consistency), '', 'consistent before any crash');

# 1. create_tenant, schema tier: killed after CREATE SCHEMA
crash_during('create_tenant (schema)',
	"SELECT tenant_isolation.create_tenant('c1', 'schema', '$id{c1}')");
is(tenant_state('c1'), 'absent', 'create_tenant: no half-created tenant');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_namespace WHERE nspname = '${\hexid($id{c1})}'"),
	'0',
	'create_tenant: no schema left');

# 2. move_tenant shared -> schema: killed when the rows are copied and are
#    about to leave the shared table
crash_during('move_tenant (shared -> schema)',
	"SELECT tenant_isolation.move_tenant('$id{m1}', 'schema')");
is(tenant_state('m1'), 'shared', 'move to schema: tenant still shared');
is(tenant_rows('m1'), $rows_m1, 'move to schema: no row lost or duplicated');

# 3. move_tenant schema -> shared: killed at DROP SCHEMA, rows already copied
crash_during('move_tenant (schema -> shared)',
	"SELECT tenant_isolation.move_tenant('$id{m2}', 'shared')");
is(tenant_state('m2'), 'schema', 'move to shared: tenant still in its schema');
is(tenant_rows('m2'), $rows_m2, 'move to shared: no row lost or duplicated');

# 4. drop_tenant, schema tier: killed at DROP SCHEMA
crash_during('drop_tenant (schema)',
	"SELECT tenant_isolation.drop_tenant('$id{d1}')");
is(tenant_state('d1'), 'schema', 'drop schema tenant: tenant still there');
is(tenant_rows('d1'), $rows_d1, 'drop schema tenant: rows still there');

# 5. drop_tenant, shared tier: killed when its rows are about to be deleted
crash_during('drop_tenant (shared)',
	"SELECT tenant_isolation.drop_tenant('$id{d2}')");
is(tenant_state('d2'), 'shared', 'drop shared tenant: tenant still there');
is(tenant_rows('d2'), $rows_d2, 'drop shared tenant: rows still there');

is(tenant_rows('keep'), $rows_keep, 'a bystander tenant kept its rows');

# Every interrupted operation now completes on the recovered cluster.
$node->safe_psql(
	'postgres', qq{
SELECT tenant_isolation.create_tenant('c1', 'schema', '$id{c1}');
SELECT tenant_isolation.move_tenant('$id{m1}', 'schema');
SELECT tenant_isolation.move_tenant('$id{m2}', 'shared');
SELECT tenant_isolation.drop_tenant('$id{d1}');
SELECT tenant_isolation.drop_tenant('$id{d2}');
});
is(tenant_state('c1'), 'schema', 'create_tenant completes after the crash');
is(tenant_state('m1'), 'schema', 'move to schema completes after the crash');
is(tenant_rows('m1'), $rows_m1, 'moved rows all arrived in the schema');
is(tenant_state('m2'), 'shared', 'move to shared completes after the crash');
is(tenant_rows('m2'), $rows_m2, 'moved rows all arrived in the shared table');
is(tenant_state('d1'), 'absent', 'drop schema tenant completes after the crash');
is(tenant_state('d2'), 'absent', 'drop shared tenant completes after the crash');
is(tenant_rows('d2'), '0', 'dropped tenant has no rows left');
is($node->safe_psql('postgres', $consistency), '', 'consistent at the end');

$node->stop;
done_testing();
