# Copyright (c) 2026, tenant_isolation developers

# Code that reads a protected table with a privileged owner's rights, with
# the library not preloaded (issue 13.6).
#
# Without the library the fail-closed fallback is row level security, and
# PostgreSQL never applies row level security to a superuser or a BYPASSRLS
# role, also not when they own a view (checked with its owner's rights) or a
# SECURITY DEFINER function.  Through such an object an ordinary role still
# reads every tenant's rows.  Nothing in PostgreSQL can stop that without
# the library, so it must never go unnoticed: the isolation lint (which
# needs no library) reports each such object, and verify() fails.  After the
# fix the lint is silent and the same reads return nothing.
#
# This test shows the limit (the reads through the privileged objects DO
# return tenant B's rows without the library) next to the lint that reports
# it, and the security_invoker / ordinary-owner alternatives that stay
# closed.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $tenant_a = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
my $tenant_b = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

my $node = PostgreSQL::Test::Cluster->new('privileged_code');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'tenant_isolation'");
$node->start;

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION tenant_isolation;
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_owner;
CREATE ROLE regress_bypass BYPASSRLS;
CREATE TABLE docs (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text,
	PRIMARY KEY (tenant_id, id)
);
INSERT INTO docs VALUES
	('$tenant_a', 1, 'a-one'),
	('$tenant_b', 1, 'B-SECRET one');
SELECT tenant_isolation.create_tenant('tenant a', id => '$tenant_a');
SELECT tenant_isolation.create_tenant('tenant b', id => '$tenant_b');
SELECT tenant_isolation.protect_table('docs');
GRANT SELECT ON docs TO regress_app, regress_owner, regress_bypass;

-- privileged: a superuser's view, a superuser's definer function, a
-- BYPASSRLS role's view
CREATE VIEW su_docs AS SELECT body FROM docs;
CREATE FUNCTION su_bodies() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
	AS 'SELECT body FROM public.docs';
CREATE VIEW bypass_docs AS SELECT body FROM docs;
ALTER VIEW bypass_docs OWNER TO regress_bypass;
-- not privileged: checked as the caller, or as an ordinary owner
CREATE VIEW invoker_docs WITH (security_invoker = true) AS SELECT body FROM docs;
CREATE VIEW owner_docs AS SELECT body FROM docs;
ALTER VIEW owner_docs OWNER TO regress_owner;
GRANT SELECT ON su_docs, bypass_docs, invoker_docs, owner_docs TO regress_app;
});

sub as_app
{
	my ($sql) = @_;
	my ($ret, $stdout, $stderr) =
	  $node->psql('postgres', $sql, extra_params => [ '-U', 'regress_app' ]);
	return ($ret, $stdout, $stderr);
}

my $lint_sql = q{SELECT string_agg(rule || ' ' || object, ',' ORDER BY rule, object)
  FROM tenant_isolation.isolation_report
 WHERE rule IN ('definer_function', 'privileged_view', 'privileged_rule', 'privileged_trigger')};

is( $node->safe_psql('postgres', $lint_sql),
	'definer_function public.su_bodies(),privileged_view public.bypass_docs,privileged_view public.su_docs',
	'preloaded: the lint reports the three privileged objects, not the others');

# --- without the library
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'restarted without tenant_isolation');

my ($ret, $stdout, $stderr);
($ret, $stdout, $stderr) = as_app('SELECT count(*) FROM docs');
is($stdout, '0', 'not preloaded: the table itself stays closed to regress_app');
($ret, $stdout, $stderr) = as_app('SELECT count(*) FROM invoker_docs');
is($stdout, '0', 'not preloaded: a security_invoker view stays closed');
($ret, $stdout, $stderr) = as_app('SELECT count(*) FROM owner_docs');
is($stdout, '0', "not preloaded: an ordinary owner's view stays closed");

# The documented limit: PostgreSQL exempts privileged owners from row level
# security, so these read every tenant's rows.
($ret, $stdout, $stderr) = as_app('SELECT string_agg(body, \',\' ORDER BY body) FROM su_docs');
is($stdout, 'B-SECRET one,a-one',
	"not preloaded: a superuser's view reads every tenant (the limit the lint reports)");
($ret, $stdout, $stderr) = as_app('SELECT string_agg(b, \',\' ORDER BY b) FROM su_bodies() b');
is($stdout, 'B-SECRET one,a-one',
	"not preloaded: a superuser's SECURITY DEFINER function reads every tenant");
($ret, $stdout, $stderr) = as_app('SELECT string_agg(body, \',\' ORDER BY body) FROM bypass_docs');
is($stdout, 'B-SECRET one,a-one',
	"not preloaded: a BYPASSRLS role's view reads every tenant");

# The lint needs no library: it reports the same objects, and verify() fails.
is( $node->safe_psql('postgres', $lint_sql),
	'definer_function public.su_bodies(),privileged_view public.bypass_docs,privileged_view public.su_docs',
	'not preloaded: the lint reports the three privileged objects');
($ret, $stdout, $stderr) = $node->psql('postgres',
	'SELECT count(*) FROM tenant_isolation.verify()');
isnt($ret, 0, 'not preloaded: verify() fails');
like($stderr, qr/tenant isolation check failed/, 'not preloaded: verify() says why');
like($stderr, qr/su_docs/, 'not preloaded: verify() names the view');

# The fixes the hints name close the reads and silence the lint.
$node->safe_psql(
	'postgres', q{
ALTER VIEW su_docs OWNER TO regress_owner;
ALTER FUNCTION su_bodies() SECURITY INVOKER;
ALTER VIEW bypass_docs SET (security_invoker = true);
});
($ret, $stdout, $stderr) = as_app(
	'SELECT (SELECT count(*) FROM su_docs) + (SELECT count(*) FROM su_bodies()) + (SELECT count(*) FROM bypass_docs)');
is($stdout, '0', 'not preloaded: after the fixes regress_app reads nothing through them');
is($node->safe_psql('postgres', $lint_sql), '', 'not preloaded: after the fixes the lint is silent');

$node->stop;
done_testing();
