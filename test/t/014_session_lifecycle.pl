
# Copyright (c) 2026, tenant_isolation developers

# Session lifecycle on a pooled connection (issue 14), what the regress suite
# "lifecycle" cannot show:
#
# - Tokens never become readable: with pg_stat_statements loaded (it keeps
#   utility statements verbatim in PostgreSQL 15), login() and login_local()
#   refuse a token written literally into CALL, DO or EXECUTE (28000) and
#   the token appears in neither pg_stat_statements nor the server log; a
#   plain SELECT with the literal (normalized by pg_stat_statements) works.
# - A protocol-level named prepared statement, as node-postgres and pgbench
#   -M prepared make them once per connection, keeps working while the
#   connection switches between tenants A and B, with a generic plan, and
#   every execution sees only the tenant then in force.
#
# Needs the openssl CLI (test/scripts/mint_jwt.sh).

use strict;
use warnings;

use File::Spec;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $FindBin::RealBin;
use TenantIsolation;


my $node = TenantIsolation::new_node('lifecycle',
	"shared_preload_libraries = 'tenant_isolation, pg_stat_statements'\n"
	  . "pg_stat_statements.track_utility = on\n"
	  . "pg_stat_statements.track = all\n"
	  . "log_min_error_statement = error\n"
	  . "log_statement = none\n");	# log_statement = all logs any token (documented)

my $tmp = PostgreSQL::Test::Utils::tempdir;
my ($secret, $keyfile) = TenantIsolation::hs256_key();

my $ta = '14a00000-0000-4000-8000-00000000000a';
my $tb = '14b00000-0000-4000-8000-00000000000b';

sub mint { return TenantIsolation::mint($keyfile, $_[0]); }
my $tok_a = mint(qq({"tenant_id":"$ta","sub":"a-user","exp":NOW+3600}));
my $tok_b = mint(qq({"tenant_id":"$tb","sub":"B-SECRET-user","exp":NOW+3600}));

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION tenant_isolation;
CREATE EXTENSION pg_stat_statements;
SELECT tenant_isolation.add_jwt_key('k1', 'HS256', '$secret');
SELECT tenant_isolation.create_tenant('a', id => '$ta');
SELECT tenant_isolation.create_tenant('b', id => '$tb');
CREATE TABLE docs (tenant_id uuid NOT NULL, id int NOT NULL, body text);
INSERT INTO docs VALUES ('$ta', 1, 'a-one'), ('$ta', 2, 'a-two'),
	('$tb', 1, 'B-SECRET one'), ('$tb', 2, 'B-SECRET two');
SELECT tenant_isolation.protect_table('docs');
CREATE PROCEDURE do_login(tok text) LANGUAGE plpgsql
	AS \$\$ BEGIN PERFORM tenant_isolation.login(tok); END \$\$;
});

# ---------------------------------------------------------------- tokens
# The signature part is what makes a token replayable; look for it.
my ($sig_b) = $tok_b =~ /\.([^.]+)$/;
my ($sig_a) = $tok_a =~ /\.([^.]+)$/;

$node->safe_psql('postgres', 'SELECT pg_stat_statements_reset()');
my $log_start = -s $node->logfile;

my @attempts = (
	[ 'CALL', "CALL do_login('$tok_b')" ],
	[ 'DO', "DO \$\$ BEGIN PERFORM tenant_isolation.login('$tok_b'); END \$\$" ],
	[ 'EXECUTE of a PREPARE with the literal',
		"PREPARE p AS SELECT tenant_isolation.login('$tok_b'); EXECUTE p" ],
	[ 'EXECUTE with the literal',
		"PREPARE q(text) AS SELECT tenant_isolation.login_local(\$1); BEGIN; EXECUTE q('$tok_b')" ],
	[ 'EXPLAIN ANALYZE',
		"EXPLAIN ANALYZE SELECT tenant_isolation.login('$tok_b')" ]);
for my $a (@attempts)
{
	my ($what, $sql) = @$a;
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\n\\set SHOW_CONTEXT never\n$sql;\nSELECT tenant_isolation.current_tenant();");
	like($err, qr/28000/, "$what: login refused with 28000");
	unlike($err . $out, qr/\Q$sig_b\E/, "$what: the error does not echo the token");
	unlike($out, qr/$tb/, "$what: no context of B");
}

# the documented ways work: a plain SELECT, and a bind parameter (below)
my $got = $node->safe_psql('postgres',
	"SELECT tenant_isolation.login('$tok_a'); SELECT tenant_isolation.current_tenant()");
like($got, qr/$ta/, 'a plain SELECT with the token logs in');

my $pgss = $node->safe_psql('postgres',
	"SELECT string_agg(query, E'\\n') FROM pg_stat_statements");
unlike($pgss, qr/\Q$sig_b\E/, 'pg_stat_statements keeps no token of B');
unlike($pgss, qr/\Q$sig_a\E/, 'pg_stat_statements keeps no token of A (normalized)');
like($pgss, qr/tenant_isolation\.login\(\$1\)/,
	'pg_stat_statements recorded the plain SELECT, normalized');

my $log = slurp_file($node->logfile, $log_start);
unlike($log, qr/\Q$sig_b\E/, 'the server log keeps no token');

# ------------------------------------------- a driver's prepared statement
# pgbench -M prepared prepares each command once per connection (Parse with
# a statement name) and then only binds and executes it, like node-postgres
# named statements.  The connection alternates between A and B; the token
# comes from a table, bound as a parameter.
$node->safe_psql(
	'postgres', qq{
CREATE TABLE tokens (turn int PRIMARY KEY, tok text);
INSERT INTO tokens VALUES (0, '$tok_a'), (1, '$tok_b');
CREATE SEQUENCE turns MINVALUE 0 START 0;
CREATE TABLE seen (n serial, turn int, tenant uuid, bodies text);
});
my $script = "$tmp/switch.sql";
open(my $sf, '>', $script) or die "$script: $!";
print $sf <<'EOS';
SELECT nextval('turns') % 2 AS turn \gset
SELECT tenant_isolation.login(tok) AS logged_in FROM tokens WHERE turn = :turn \gset
SELECT coalesce(string_agg(body, ',' ORDER BY id), '') AS bodies FROM docs \gset
INSERT INTO seen (turn, tenant, bodies) VALUES (:turn, tenant_isolation.current_tenant(), :bodies);
EOS
close($sf);
{
	local $ENV{PGOPTIONS} = '-c plan_cache_mode=force_generic_plan';
	my ($out, $err);
	my $ok = IPC::Run::run(
		[
			'pgbench', '-n', '-M', 'prepared', '-c', '1', '-t', '12',
			'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	ok($ok, 'pgbench -M prepared ran every transaction') or diag($err);
}
my $seen = $node->safe_psql('postgres',
	"SELECT turn || '|' || tenant || '|' || bodies FROM seen ORDER BY n");
my @rows = split /\n/, $seen;
is(scalar(@rows), 12, 'twelve executions recorded');
is(scalar(grep { /^0\|$ta\|a-one,a-two$/ } @rows), 6,
	"A's six executions saw exactly A's rows");
is(scalar(grep { /^1\|$tb\|B-SECRET one,B-SECRET two$/ } @rows), 6,
	"B's six executions saw exactly B's rows");
unlike(join("\n", grep { /^0\|/ } @rows), qr/B-SECRET/, 'no B-SECRET under A');

$node->stop;
done_testing();
