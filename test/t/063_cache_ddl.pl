
# Copyright (c) 2026, tenant_isolation developers

# The per-backend catalog cache under concurrent DDL (issue 16).
#
# Opening tenant_isolation.protected_table or pg_inherits takes a lock, and
# taking a lock accepts pending invalidations: a CREATE SCHEMA committed by
# another session runs our pg_namespace callback right there, in the middle
# of a cache (re)build.  The first release reset the cache in that callback
# and then hashed into the table it had just freed: SIGSEGV, and the
# postmaster restarted the whole cluster.
#
# 1. Deterministic, no protected table at all: session 1 locks
#    protected_table and creates a schema; session 2 plans a plain catalog
#    query and blocks inside the cache build on that lock; session 1 commits.
# 2. The same on pg_inherits, for a partition of a protected table: session
#    2 blocks while looking up the partition's ancestors; in a tenant context
#    its query must still see exactly its tenant's rows.
# 3. pgbench: clients alternating CREATE/DROP SCHEMA (and a sinval overflow
#    by many catalog changes in one transaction) against clients planning
#    catalog queries and reading the protected table as a tenant.
#
# Each part checks that every session survived and, at the end, that the
# server log holds no "terminated by signal".

use strict;
use warnings;

use File::Spec;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $ta = 'aaaaaaaa-0000-4000-8000-000000000063';
my $tb = 'bbbbbbbb-0000-4000-8000-000000000063';

my $node = PostgreSQL::Test::Cluster->new('cache_ddl');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'tenant_isolation'
restart_after_crash = on
max_connections = 40
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION tenant_isolation');

# The postmaster's start time: it changes when a crash reinitializes.  Waits
# for the server to accept connections again after a crash.
sub start_time
{
	foreach my $i (1 .. 300)
	{
		my ($ret, $out) =
		  $node->psql('postgres', 'SELECT pg_postmaster_start_time()');
		return $out if $ret == 0;
		select(undef, undef, undef, 0.1);
	}
	return 'unreachable';
}

# Backends killed by a signal so far, from the server log.
sub crashes
{
	my @m = (slurp_file($node->logfile) =~ /terminated by signal/g);
	return scalar @m;
}

# A blocked session's lock wait, seen from a session whose cache is warm (a
# fresh backend would block on the same lock while planning the poll).
my $mon;

sub warm_monitor
{
	eval { $mon->quit } if $mon;
	$mon = $node->background_psql('postgres', on_error_stop => 0);
	$mon->query_safe('SELECT count(*) FROM pg_locks');
}

sub wait_for_lock_wait
{
	my ($pid) = @_;
	foreach my $i (1 .. 600)
	{
		my $r = eval {
			$mon->query_safe(
				"SELECT count(*) > 0 FROM pg_locks WHERE pid = $pid AND NOT granted");
		};
		return 1 if ($r // '') eq 't';
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

# --- 1. a lock on protected_table, a CREATE SCHEMA, a catalog query
my $before = crashes();
warm_monitor();
my $s1 = $node->background_psql('postgres', on_error_stop => 0);
my $s2 = $node->background_psql('postgres', on_error_stop => 0);
my $pid2 = $s2->query_safe('SELECT pg_backend_pid()');

$s1->query_safe('BEGIN');
$s1->query_safe('LOCK TABLE tenant_isolation.protected_table IN ACCESS EXCLUSIVE MODE');
$s1->query_safe('CREATE SCHEMA cache_ddl_1');

# A fresh backend: its first planned query builds the cache.
$s2->query_until(qr/planning/, "\\echo planning\n"
	  . "SELECT obj_description(s.oid, 'pg_subscription') FROM pg_subscription s;\n"
	  . "SELECT count(*) > 0 AS planned FROM pg_class;\n");
ok(wait_for_lock_wait($pid2), 'session 2 waits for protected_table inside planning');
$s1->query_safe('COMMIT');

my $out = eval { $s2->query_safe('SELECT 4711') };
like($out // '', qr/4711/, 'session 2 planned its queries after the commit and is alive');
start_time();
is(crashes(), $before, 'no backend killed by a signal in part 1');
eval { $s2->quit };
eval { $s1->quit };

# --- 2. a lock on pg_inherits while a partition's ancestors are looked up
$node->safe_psql(
	'postgres', qq{
SELECT tenant_isolation.create_tenant('a', 'shared', '$ta');
SELECT tenant_isolation.create_tenant('b', 'shared', '$tb');
CREATE TABLE part (tenant_id uuid NOT NULL, id int NOT NULL, body text)
	PARTITION BY LIST (id);
CREATE TABLE part_1 PARTITION OF part FOR VALUES IN (1, 2, 3);
SELECT tenant_isolation.protect_table('part');
INSERT INTO part VALUES ('$ta', 1, 'a-row'), ('$tb', 2, 'B-SECRET-63');
});

# a fresh backend in tenant a's context (a superuser in a context is scoped)
$before = crashes();
warm_monitor();
$s1 = $node->background_psql('postgres', on_error_stop => 0);
$s2 = $node->background_psql('postgres', on_error_stop => 0);
$pid2 = $s2->query_safe('SELECT pg_backend_pid()');
$s2->query_safe("SELECT tenant_isolation.assume_tenant('$ta', 'tap')");

$s1->query_safe('BEGIN');
$s1->query_safe('LOCK TABLE pg_catalog.pg_inherits IN ACCESS EXCLUSIVE MODE');
$s1->query_safe('CREATE SCHEMA cache_ddl_2');
# the relcache callback of the partition too
$s1->query_safe("COMMENT ON TABLE part_1 IS 'touched'");

$s2->query_until(qr/planning/, "\\echo planning\n"
	  . "SELECT string_agg(body, ',' ORDER BY id) AS seen FROM part_1;\n");
ok(wait_for_lock_wait($pid2), 'session 2 waits for pg_inherits inside planning');
$s1->query_safe('COMMIT');

$out = eval { $s2->query_safe('SELECT 4712') };
like($out // '', qr/4712/, 'session 2 survived the pg_inherits wait');
like($out // '', qr/a-row/, 'it saw its own row');
unlike($out // '', qr/B-SECRET-63/, "it did not see the other tenant's row");
start_time();
is(crashes(), $before, 'no backend killed by a signal in part 2');
eval { $s2->quit };
eval { $s1->quit };
eval { $mon->quit };

my $dir = PostgreSQL::Test::Utils::tempdir;

# --- 3. a login whose key load is interrupted (lock_timeout on jwt_key)
# must not leave an empty key cache behind: the next login loads again.
my $top = File::Spec->rel2abs("$FindBin::RealBin/../..");
my $secret = 'cache-ddl-063-secret-0123456789ab';
open(my $kf, '>', "$dir/hs256.key") or die;
print $kf $secret;
close $kf;
my ($token, $merr);
IPC::Run::run(
	[
		'sh', "$top/test/scripts/mint_jwt.sh", 'HS256', "$dir/hs256.key",
		qq({"tenant_id":"$ta","sub":"u63","exp":NOW+3600})
	],
	'>', \$token, '2>', \$merr) or die "mint_jwt.sh failed: $merr";
chomp $token;
$node->safe_psql('postgres',
	"SELECT tenant_isolation.add_jwt_key('k63', 'HS256', '$secret')");

$s1 = $node->background_psql('postgres', on_error_stop => 0);
$s2 = $node->background_psql('postgres', on_error_stop => 0);
$s1->query_safe('BEGIN');
$s1->query_safe('LOCK TABLE tenant_isolation.jwt_key IN ACCESS EXCLUSIVE MODE');
$s2->query_safe("SET lock_timeout = '300ms'");
$s2->query("SELECT tenant_isolation.login('$token')");
like($s2->{stderr}, qr/lock timeout/, 'a login that waits too long for jwt_key fails');
$s2->{stderr} = '';
$s1->query_safe('ROLLBACK');
$s2->query_safe('RESET lock_timeout');
$out = $s2->query("SELECT tenant_isolation.login('$token')");
note($s2->{stderr});
is($out, $ta, 'the next login in that session loads the keys again and succeeds');
eval { $s1->quit };
eval { $s2->quit };

# --- 4. pgbench: DDL against planning
open(my $fh, '>', "$dir/ddl.sql") or die;
print $fh "CREATE SCHEMA IF NOT EXISTS storm_:client_id;\n"
  . "DROP SCHEMA IF EXISTS storm_:client_id;\n";
close $fh;
open($fh, '>', "$dir/overflow.sql") or die;
# more invalidation messages than the sinval queue holds (4096): the other
# backends fall behind and reset all their caches.  Renames of one schema:
# four catcache messages each, one lock.
print $fh "BEGIN;\n"
  . "CREATE SCHEMA ovf_:client_id;\n"
  . "DO \$\$ BEGIN FOR i IN 1..600 LOOP "
  . "ALTER SCHEMA ovf_:client_id RENAME TO ovfx_:client_id; "
  . "ALTER SCHEMA ovfx_:client_id RENAME TO ovf_:client_id; END LOOP; END \$\$;\n"
  . "DROP SCHEMA ovf_:client_id;\n"
  . "COMMIT;\n";
close $fh;
open($fh, '>', "$dir/plan.sql") or die;
print $fh "SELECT count(*) FROM pg_class;\n"
  . "SELECT obj_description(s.oid, 'pg_subscription') FROM pg_subscription s;\n";
close $fh;
open($fh, '>', "$dir/tenant.sql") or die;
print $fh "BEGIN;\n"
  . "SELECT tenant_isolation.assume_tenant('$ta', 'tap');\n"
  . "SELECT count(*) AS foreign_rows FROM part WHERE tenant_id <> '$ta' OR body LIKE 'B-%' \\gset\n"
  . "\\if :foreign_rows > 0\n"
  . "SELECT 1/0 AS cross_tenant_row;\n"
  . "\\endif\n"
  . "SELECT tenant_isolation.logout();\n"
  . "COMMIT;\n";
close $fh;

my ($stdout, $stderr);
$before = crashes();
my $ok = IPC::Run::run(
	[
		'pgbench', '-n', '-h', $node->host, '-p', $node->port,
		'-c', '8', '-j', '2', '-T', '8',
		'-f', "$dir/ddl.sql\@4", '-f', "$dir/overflow.sql\@1",
		'-f', "$dir/plan.sql\@4", '-f', "$dir/tenant.sql\@2",
		'postgres'
	],
	'>', \$stdout, '2>', \$stderr);
my ($txns) = ($stdout // '') =~ /number of transactions actually processed: (\d+)/;
note("pgbench: " . ($txns // 'none') . " transactions");
note($stderr) if !$ok;
ok($ok, 'pgbench storm: every client finished without an error');
ok(($txns // 0) > 0, 'pgbench storm ran transactions');
start_time();
is(crashes(), $before, 'no backend killed by a signal in the storm');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'the server log shows no backend terminated by a signal');

$node->stop;
done_testing();
