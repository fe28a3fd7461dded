
# Copyright (c) 2026, tenant_isolation developers

# Fail-closed behaviour across restarts.
#
# With the library preloaded, an ordinary role without a tenant context is
# refused by the planner hook.  Started without the library, nothing of the
# extension runs; a protected table must then stay closed through the
# fallback protect_table() installed: forced row level security with a
# deny-all policy.  Superusers bypass row level security by nature (even
# FORCE ROW LEVEL SECURITY does not apply to them), so they still see every
# row; that is the documented limit of the fallback.  Preloaded again, the
# tenant's rows are readable in its context.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TenantIsolation;

my $tenant_a = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
my $tenant_b = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

my $node = TenantIsolation::new_node('failclosed');

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION tenant_isolation;
CREATE ROLE regress_app LOGIN;
CREATE TABLE docs (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text,
	PRIMARY KEY (tenant_id, id)
);
INSERT INTO docs VALUES
	('$tenant_a', 1, 'a-one'),
	('$tenant_a', 2, 'a-two'),
	('$tenant_b', 1, 'B-SECRET one'),
	('$tenant_b', 2, 'B-SECRET two');
SELECT tenant_isolation.create_tenant('tenant a', id => '$tenant_a');
SELECT tenant_isolation.create_tenant('tenant b', id => '$tenant_b');
SELECT tenant_isolation.protect_table('docs');
GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO regress_app;
CREATE ROLE regress_owner;
CREATE VIEW docs_view AS SELECT id, body FROM docs;
CREATE VIEW docs_owner_view AS SELECT id, body FROM docs;
GRANT SELECT ON docs TO regress_owner;
ALTER VIEW docs_owner_view OWNER TO regress_owner;
GRANT SELECT ON docs_view, docs_owner_view TO regress_app;
CREATE FUNCTION definer_bodies() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
	AS 'SELECT body FROM docs';
CREATE FUNCTION definer_bodies_plpgsql() RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER
	AS \$\$ BEGIN RETURN QUERY SELECT body FROM docs; END \$\$;
});

# Run SQL as regress_app; returns (exit code, stdout, stderr).
sub as_app
{
	my ($db, $sql) = @_;
	my ($ret, $stdout, $stderr) =
	  $node->psql($db, "\\set VERBOSITY verbose\n$sql",
		extra_params => [ '-U', 'regress_app' ]);
	return ($ret, $stdout, $stderr);
}

my ($ret, $stdout, $stderr);

# --- preloaded: no context, no rows
# Every read path that would print B's bodies: the table, a superuser's
# view, another owner's view, a superuser's SECURITY DEFINER functions.  Each
# must fail with 42501 and print nothing at all (not just no B-SECRET).
my @reads = (
	'SELECT body FROM docs',
	'SELECT body FROM docs_view',
	'SELECT body FROM docs_owner_view',
	'SELECT * FROM definer_bodies()',
	'SELECT * FROM definer_bodies_plpgsql()',
	'COPY docs TO STDOUT');
foreach my $q (@reads)
{
	($ret, $stdout, $stderr) = as_app('postgres', $q);
	isnt($ret, 0, "preloaded: no context: $q fails");
	like($stderr, qr/ERROR:  42501: no tenant context for table "docs"/,
		"preloaded: no context: $q fails with 42501 naming the context");
	is($stdout, '', "preloaded: no context: $q prints no row");
}
foreach my $q (
	"INSERT INTO docs VALUES ('$tenant_b', 3, 'forged')",
	"UPDATE docs SET body = 'forged'",
	"DELETE FROM docs")
{
	($ret, $stdout, $stderr) = as_app('postgres', $q);
	like($stderr, qr/ERROR:  42501: no tenant context for table "docs"/,
		"preloaded: no context: $q fails with 42501 naming the context");
}

($ret, $stdout, $stderr) = as_app('postgres',
	"SELECT tenant_isolation.assume_tenant('$tenant_a', 'not allowed')");
isnt($ret, 0, 'regress_app cannot assume a tenant');
like($stderr, qr/permission denied/, 'assume_tenant is refused to regress_app');

# --- restart without the library: the row level security fallback
$node->safe_psql('postgres', 'ANALYZE docs');
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'restarted without tenant_isolation');

($ret, $stdout, $stderr) = as_app('postgres', 'SELECT count(*) FROM docs');
is($ret, 0, 'not preloaded: SELECT by regress_app runs');
is($stdout, '0', 'not preloaded: regress_app sees no row (deny-all policy)');
foreach my $q ('SELECT body FROM docs', 'SELECT body FROM docs_owner_view')
{
	($ret, $stdout, $stderr) = as_app('postgres', $q);
	is($ret, 0, "not preloaded: $q runs");
	unlike("$stdout$stderr", qr/B-SECRET|a-one/,
		"not preloaded: $q shows no row");
}
# KNOWN LEAK (issue 18 finding): a superuser's view or SECURITY DEFINER
# function reads the table with the superuser's rights, and superusers
# bypass row level security, so the deny-all fallback does not apply: an
# ordinary role reads every tenant's rows through them while the library is
# not preloaded.  Kept as TODO tests so the leak stays visible until fixed.
TODO:
{
	local $TODO = 'fallback: superuser-owned views/definer functions bypass RLS';
	foreach my $q (
		'SELECT body FROM docs_view',
		'SELECT * FROM definer_bodies()',
		'SELECT * FROM definer_bodies_plpgsql()')
	{
		($ret, $stdout, $stderr) = as_app('postgres', $q);
		unlike("$stdout$stderr", qr/B-SECRET|a-one/,
			"not preloaded: $q shows no row");
	}
}

($ret, $stdout, $stderr) = as_app('postgres', 'COPY docs TO STDOUT');
is($ret, 0, 'not preloaded: COPY TO by regress_app runs');
is($stdout, '', 'not preloaded: COPY TO returns no row to regress_app');

($ret, $stdout, $stderr) = as_app('postgres',
	"SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = 'docs'");
is($stdout, '0',
	'not preloaded: pg_stats shows regress_app no statistics of docs');
isnt(
	$node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = 'docs'"
	),
	'0',
	'not preloaded: the statistics exist (the superuser sees them)');

($ret, $stdout, $stderr) = as_app('postgres',
	"INSERT INTO docs VALUES ('$tenant_b', 3, 'forged')");
isnt($ret, 0, 'not preloaded: INSERT by regress_app is refused');
# the guard trigger's C function is loaded on demand even when not preloaded
like($stderr, qr/ERROR:  42501: no tenant context for table "docs"/,
	'not preloaded: the INSERT is refused by the guard trigger (42501)');
($ret, $stdout, $stderr) = as_app('postgres',
	"UPDATE docs SET body = 'forged' RETURNING body");
is($stdout, '', 'not preloaded: UPDATE by regress_app touches no row');
is($node->safe_psql('postgres',
		"SELECT string_agg(body, ',' ORDER BY tenant_id, id) FROM docs"),
	'a-one,a-two,B-SECRET one,B-SECRET two',
	'not preloaded: no row was changed or added');

# Superusers bypass row level security, FORCE included: the fallback cannot
# hide rows from them.  Without the library there is no tenant context, and
# a superuser without a context sees every row anyway.
is($node->safe_psql('postgres', 'SELECT count(*) FROM docs'),
	'4', 'not preloaded: a superuser still sees all rows (bypasses RLS)');

$node->safe_psql('postgres', 'CREATE DATABASE other');
($ret, $stdout, $stderr) =
  $node->psql('other', 'CREATE EXTENSION tenant_isolation');
isnt($ret, 0, 'not preloaded: CREATE EXTENSION fails');
like(
	$stderr,
	qr/must be loaded via shared_preload_libraries/,
	'not preloaded: CREATE EXTENSION says the library must be preloaded');
is( $node->safe_psql(
		'other',
		"SELECT count(*) FROM pg_extension WHERE extname = 'tenant_isolation'"),
	'0',
	'not preloaded: nothing was installed in the new database');

# --- preloaded again
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries',
	"'tenant_isolation'");
$node->restart;

($ret, $stdout, $stderr) = as_app('postgres', 'SELECT count(*) FROM docs');
isnt($ret, 0, 'preloaded again: regress_app without a context is refused');
like($stderr, qr/no tenant context/, 'preloaded again: error names the context');

$stdout = $node->safe_psql(
	'postgres', qq{
SELECT tenant_isolation.assume_tenant('$tenant_a', 'tap test');
SET ROLE regress_app;
SELECT string_agg(body, ',' ORDER BY id) FROM docs;
});
# assume_tenant() returns void: its row prints as an empty line.
my @lines = split /\n/, $stdout;
is($lines[-1], 'a-one,a-two',
	'preloaded again: regress_app reads the rows of its tenant, and only those');
unlike($stdout, qr/B-SECRET/, 'preloaded again: nothing of tenant B is shown');

$node->stop;
done_testing();
