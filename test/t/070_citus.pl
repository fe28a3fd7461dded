
# Copyright (c) 2026, tenant_isolation developers

# On a real Citus cluster: a coordinator and two workers on 127.0.0.1, each
# its own initdb, shared_preload_libraries = 'citus,tenant_isolation', both
# extensions on every node, the protected tables distributed by tenant_id.
#
# Tenants A and B hash to the same shard (so a worker that did not enforce
# would hand B's rows to A's statements: the attack cases below would see
# them), C to another one.  Through the coordinator, as an ordinary
# application role logged in with a JWT, every read and write attack case
# must show none of B's markers and leave B's rows unchanged; statements
# written without a tenant filter must be router queries (EXPLAIN: one task);
# on a worker, a shard reached without a coordinator-signed context is
# refused (42501), and forged, expired or other-role assertions are refused;
# a worker connection killed in the middle of a transaction makes it fail
# and roll back.  Router reads carry the assertion inside the statement
# (one round trip): forged, expired, misplaced, doubled, conflicting or
# lone statement assertions are refused on the worker (42501), A's genuine
# one never opens B's rows whatever the statement names, and a captured
# one cannot be re-signed through a worker.  Then protect_table before create_distributed_table, and
# reference tables marked global.
#
# Needs Citus (test/scripts/citus.sh builds it from ../shared/vendor).  With
# CI=true a missing Citus is a failure; elsewhere the test skips and says so.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256_hex);
use File::Spec;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = File::Spec->rel2abs("$FindBin::RealBin/../..");
my $mint = "$top/test/scripts/mint_jwt.sh";

# Citus talks to the workers over TCP: every node listens on 127.0.0.1.
$PostgreSQL::Test::Cluster::use_tcp = 1;
$PostgreSQL::Test::Cluster::test_pghost = '127.0.0.1';
$ENV{PGHOST} = '127.0.0.1';

my $coord = PostgreSQL::Test::Cluster->new('coord');
my $libdir = $coord->config_data('--pkglibdir');
if (!-f "$libdir/citus.so")
{
	my $msg = "Citus is not installed in $libdir "
	  . "(build it with test/scripts/citus.sh from ../shared/vendor)";
	if (($ENV{CI} // '') eq 'true')
	{
		plan tests => 1;
		fail("CI=true: $msg");
		exit 0;
	}
	plan skip_all => $msg;
}

my $w1 = PostgreSQL::Test::Cluster->new('worker1');
my $w2 = PostgreSQL::Test::Cluster->new('worker2');
my @nodes = ($coord, $w1, $w2);

# The cluster key every node holds (mode 0600, like a server key).
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $cluster_key = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32);
my $keyfile = "$tmp/cluster.key";
open(my $kf, '>', $keyfile) or die "cannot write $keyfile: $!";
print $kf $cluster_key;
close($kf);
chmod(0600, $keyfile) or die "chmod $keyfile: $!";

for my $n (@nodes)
{
	$n->init;
	$n->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'citus,tenant_isolation'
tenant_isolation.cluster_key_file = '$keyfile'
citus.shard_count = 4
citus.shard_replication_factor = 1
max_connections = 60
});
	$n->start;
	$n->safe_psql('postgres',
		'CREATE EXTENSION citus; CREATE EXTENSION tenant_isolation;');
}

$coord->safe_psql('postgres',
	"SELECT citus_set_coordinator_host('127.0.0.1', " . $coord->port . ")");
for my $w ($w1, $w2)
{
	$coord->safe_psql('postgres',
		"SELECT citus_add_node('127.0.0.1', " . $w->port . ")");
}
is( $coord->safe_psql(
		'postgres', "SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND isactive"),
	'3', 'a coordinator and two workers');

# ---------------------------------------------------------------- schema
$coord->safe_psql(
	'postgres', q{
CREATE ROLE app LOGIN;
CREATE TABLE docs (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text,
	PRIMARY KEY (tenant_id, id)
);
CREATE TABLE notes (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	doc_id		int NOT NULL,
	note		text,
	PRIMARY KEY (tenant_id, id)
);
SELECT create_distributed_table('docs', 'tenant_id');
SELECT create_distributed_table('notes', 'tenant_id', colocate_with => 'docs');
CREATE TABLE plans (id int PRIMARY KEY, name text);
SELECT create_reference_table('plans');
INSERT INTO plans VALUES (1, 'free'), (2, 'pro');
});

# Tenants: B in A's shard, C in another shard.
sub shard_of
{
	my ($t) = @_;
	return $coord->safe_psql('postgres',
		"SELECT get_shard_id_for_distribution_column('docs', '$t'::uuid)");
}
my $ta = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
my ($tb, $tc);
for my $i (1 .. 400)
{
	my $cand = sprintf('bbbbbbbb-bbbb-4bbb-8bbb-%012d', $i);
	my $s = shard_of($cand);
	$tb //= $cand if $s eq shard_of($ta);
	$tc //= $cand if $s ne shard_of($ta);
	last if $tb && $tc;
}
ok($tb && $tc, 'found a tenant B in the shard of A and a tenant C elsewhere');
my $shard_a = shard_of($ta);
my $shard_name = "docs_$shard_a";
my $shard_worker = $coord->safe_psql('postgres',
	"SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = $shard_a");
my $wa = ($shard_worker == $w1->port) ? $w1 : $w2;

$coord->safe_psql(
	'postgres', qq{
INSERT INTO docs VALUES
	('$ta', 1, 'a-one'), ('$ta', 2, 'a-two'),
	('$tb', 1, 'B-SECRET one'), ('$tb', 2, 'B-SECRET two'),
	('$tc', 1, 'C-SECRET one');
INSERT INTO notes VALUES
	('$ta', 1, 1, 'a-note'), ('$tb', 1, 1, 'B-SECRET note'), ('$tc', 1, 1, 'C-SECRET note');
SELECT tenant_isolation.create_tenant('tenant a', id => '$ta');
SELECT tenant_isolation.create_tenant('tenant b', id => '$tb');
SELECT tenant_isolation.create_tenant('tenant c', id => '$tc');
SELECT tenant_isolation.protect_table('docs');
SELECT tenant_isolation.protect_table('notes');
SELECT tenant_isolation.mark_global('plans');
GRANT SELECT, INSERT, UPDATE, DELETE ON docs, notes TO app;
GRANT SELECT ON plans TO app;
CREATE FUNCTION leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
	AS \$\$BEGIN RAISE NOTICE 'leak: %', \$1; RETURN true; END\$\$;
GRANT EXECUTE ON FUNCTION leak(text) TO app;
});
pass('protect_table on distributed tables, mark_global on a reference table');

# The pieces of the protection reached the shards on the workers.
is( $wa->safe_psql(
		'postgres',
		"SET citus.override_table_visibility = off; SELECT relforcerowsecurity, (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid AND polname = 'tenant_isolation_fallback'), (SELECT count(*) FROM pg_trigger WHERE tgrelid = c.oid AND tgname = 'tenant_isolation_guard_$shard_a') FROM pg_class c WHERE relname = '$shard_name'"
	),
	't|1|1',
	'the shard on its worker has forced row security, the fallback policy and the guard trigger');

# JWT login on the coordinator.
my $secret = 'citus-test-secret-0123456789abcdef';
$coord->safe_psql('postgres',
	"SELECT tenant_isolation.add_jwt_key('k1', 'HS256', '$secret')");
my $hsfile = "$tmp/hs.key";
open(my $hf, '>', $hsfile) or die;
print $hf $secret;
close($hf);
my %token;
for my $t ($ta, $tb, $tc)
{
	my ($out, $err);
	IPC::Run::run([ 'sh', $mint, '-k', 'k1', 'HS256', $hsfile,
		qq({"sub":"u","tenant_id":"$t","exp":NOW+3600}) ], '>', \$out, '2>', \$err)
	  or die "mint_jwt.sh: $err";
	chomp $out;
	$token{$t} = $out;
}

# Run SQL as app on a node; returns (exit code, stdout, stderr).
sub as_app
{
	my ($node, $sql, $tenant) = @_;
	$sql = "SELECT 'ctx:' || tenant_isolation.login('$token{$tenant}');\n$sql"
	  if $tenant;
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-U', 'app', '-v', 'ON_ERROR_STOP=0' ]);
	return ($ret, $out // '', $err // '');
}

sub b_rows
{
	return $coord->safe_psql('postgres',
		"SELECT string_agg(tenant_id || ':' || id || ':' || body, ',' ORDER BY tenant_id, id) FROM docs WHERE tenant_id <> '$ta'"
	);
}
my $b_before = b_rows();
like($b_before, qr/B-SECRET one/, 'B rows are there to be attacked');

# ---------------------------------------------------------------- reads
my ($ret, $out, $err);
($ret, $out, $err) = as_app($coord, 'SELECT id, body FROM docs ORDER BY id;', $ta);
is($ret, 0, 'A reads docs through the coordinator');
like($out, qr/1\|a-one\n2\|a-two/, "A sees A's rows");
unlike($out . $err, qr/SECRET/, 'A sees nothing of B or C (no filter written)');

($ret, $out, $err) = as_app($coord, "SELECT count(*) FROM docs;", $ta);
like($out, qr/^2$/m, 'count(*) without a filter counts only A');

($ret, $out, $err) =
  as_app($coord, "SELECT id, body FROM docs WHERE tenant_id = '$tb';", $ta);
unlike($out . $err, qr/SECRET/,
	"A naming B's tenant_id (fast-path router to B's shard) sees nothing of B");

($ret, $out, $err) = as_app($coord,
	"SELECT d.body, n.note FROM docs d JOIN notes n ON n.doc_id = d.id ORDER BY 1;", $ta);
like($out, qr/a-one\|a-note/, 'A joins co-located tables');
unlike($out . $err, qr/SECRET/, 'the join without tenant filter shows nothing of B');

($ret, $out, $err) = as_app($coord,
	"SELECT d.body FROM docs d LEFT JOIN notes n ON n.doc_id = d.id AND n.tenant_id = '$tb' ORDER BY 1;", $ta);
unlike($out . $err, qr/SECRET/, "an outer join naming B's tenant shows nothing of B");

($ret, $out, $err) = as_app($coord,
	"SELECT d.body, p.name FROM docs d JOIN plans p ON p.id = d.id ORDER BY 1;", $ta);
like($out, qr/a-one\|free/, 'A joins a global reference table');
unlike($out . $err, qr/SECRET/, 'the join with the reference table shows nothing of B');

($ret, $out, $err) = as_app($coord,
	"SELECT body FROM docs WHERE leak(body);\nSELECT body FROM docs WHERE tenant_id = '$tb' AND leak(body);",
	$ta);
like($err, qr/leak: a-one/, 'the leaky function ran (on the worker) for A');
unlike($out . $err, qr/SECRET/,
	'a leaky function never sees a row of B, which shares the shard (the worker enforces)');

($ret, $out, $err) = as_app($coord,
	"SELECT body FROM docs WHERE id IN (SELECT doc_id FROM notes WHERE note LIKE 'B%');\n"
	  . "WITH x AS (SELECT * FROM docs) SELECT body FROM x ORDER BY 1;\n"
	  . "SELECT body FROM docs UNION ALL SELECT note FROM notes;",
	$ta);
unlike($out . $err, qr/SECRET/, 'subqueries, CTEs and UNION ALL show nothing of B');

# One session, one tenant after another, over the same cached worker
# connections: each statement sees only the tenant in force.
($ret, $out, $err) = as_app($coord,
	"SELECT 'A:' || string_agg(body, ',' ORDER BY id) FROM docs;\n"
	  . "SELECT 'ctx:' || tenant_isolation.login('$token{$tc}');\n"
	  . "SELECT 'C:' || string_agg(body, ',' ORDER BY id) FROM docs;\n"
	  . "BEGIN;\nSELECT 'ctx:' || tenant_isolation.login_local('$token{$ta}');\n"
	  . "SELECT 'A2:' || string_agg(body, ',' ORDER BY id) FROM docs;\n"
	  . "SAVEPOINT s1;\nSELECT 'ctx:' || tenant_isolation.login_local('$token{$tc}');\n"
	  . "SELECT 'C2:' || string_agg(body, ',' ORDER BY id) FROM docs;\n"
	  . "ROLLBACK TO SAVEPOINT s1;\n"
	  . "SELECT 'A3:' || string_agg(body, ',' ORDER BY id) FROM docs;\nCOMMIT;\n"
	  . "SELECT 'C3:' || string_agg(body, ',' ORDER BY id) FROM docs;",
	$ta);
like($out, qr/^A:a-one,a-two$/m, 'switching tenants: A first');
like($out, qr/^C:C-SECRET one$/m, 'then C, on the same session, sees only C');
like($out, qr/^A2:a-one,a-two$/m, 'login_local back to A inside a transaction');
like($out, qr/^C2:C-SECRET one$/m, 'C inside a savepoint');
like($out, qr/^A3:a-one,a-two$/m, 'after ROLLBACK TO SAVEPOINT the workers are back in A');
like($out, qr/^C3:C-SECRET one$/m, 'after the transaction, the session tenant C again');
unlike($out . $err, qr/B-SECRET/, 'nothing of B in any of it');

# ---------------------------------------------------------------- router plans
for my $q (
	'SELECT * FROM docs WHERE id = 1',
	'SELECT count(*) FROM docs',
	'SELECT d.body, n.note FROM docs d JOIN notes n ON n.doc_id = d.id',
	"UPDATE docs SET body = body WHERE id = 1",
	"DELETE FROM notes WHERE id = 99")
{
	($ret, $out, $err) = as_app($coord, "EXPLAIN (COSTS OFF) $q;", $ta);
	like($out, qr/Task Count: 1\n/,
		"router plan, one task, without a tenant filter: $q");
	like($out, qr/Tasks Shown: All|->  Task/, "the plan shows its single task: $q");
}

# ---------------------------------------------------------------- writes
($ret, $out, $err) = as_app($coord, "UPDATE docs SET body = body || ' (A edited)';", $ta);
is($ret, 0, 'A updates docs without a filter');
($ret, $out, $err) = as_app($coord,
	"UPDATE docs SET body = 'pwned' WHERE tenant_id = '$tb';\n"
	  . "DELETE FROM docs WHERE tenant_id = '$tb';\n"
	  . "DELETE FROM docs WHERE body LIKE 'B-SECRET%';\n"
	  . "UPDATE notes SET note = 'pwned' WHERE note LIKE 'B%';",
	$ta);
unlike($out . $err, qr/SECRET/, 'the writes aimed at B say nothing of B');

($ret, $out, $err) = as_app($coord,
	"INSERT INTO docs (tenant_id, id, body) VALUES ('$tb', 7, 'forged');", $ta);
like($err, qr/ERROR:.*(tenant|row-level security)/, "A cannot insert a row of B");

($ret, $out, $err) = as_app($coord,
	"UPDATE docs SET tenant_id = '$tb' WHERE id = 1;", $ta);
like($err, qr/ERROR/, "A cannot move its row to B");

($ret, $out, $err) = as_app($coord,
	"INSERT INTO docs (id, body) VALUES (3, 'a-three');", $ta);
is($ret, 0, 'A inserts without the tenant column') or diag($err);
is( $coord->safe_psql('postgres', "SELECT tenant_id FROM docs WHERE id = 3"),
	$ta, "the row got A's tenant (filled on the coordinator)");

is(b_rows(), $b_before, "B's rows are unchanged after every write attack");
is( $coord->safe_psql('postgres',
		"SELECT string_agg(note, ',' ORDER BY note) FROM notes WHERE tenant_id <> '$ta'"),
	'B-SECRET note,C-SECRET note', "B's and C's notes are unchanged");

# ---------------------------------------------------------------- no context
($ret, $out, $err) = as_app($coord, 'SELECT * FROM docs;');
like($err, qr/ERROR/, 'without a context app cannot read (coordinator)');
like($err, qr/no tenant context/, 'the coordinator names the missing context');
($ret, $out, $err) = as_app($coord, "SELECT * FROM docs WHERE tenant_id = '$tb';");
like($err, qr/ERROR:.*no tenant context/, 'without a context a fast-path router query is refused');
unlike($out, qr/SECRET/, 'and shows nothing');

# ---------------------------------------------------------------- on a worker
($ret, $out, $err) = as_app($wa, "SELECT * FROM $shard_name;");
like($err, qr/ERROR/, 'app reading a shard on its worker without a context is refused');
like($err, qr/no tenant context/, 'the worker names the missing context');
unlike($out, qr/SECRET/, 'nothing of the shard is shown');

($ret, $out, $err) = as_app($wa, "SELECT * FROM docs;");
like($err, qr/ERROR:.*no tenant context/, 'app reading the shell table on a worker without a context is refused');
unlike($out, qr/SECRET/, 'nothing is shown through the shell');

($ret, $out, $err) = as_app($wa, "SET tenant_isolation.tenant_id = '$tb';");
like($err, qr/ERROR:.*permission denied/, 'app cannot set tenant_id on a worker');

sub assertion
{
	my (%p) = @_;
	my $exp = $p{exp} // (time() + 60);
	my $body = "v1.$p{tenant}.$exp.0123456789abcdef";
	my $mac = hmac_sha256_hex("$body.postgres.$p{role}", $p{key});
	return "$body.$mac";
}
my $ok_assertion = assertion(tenant => $tb, role => 'app', key => $cluster_key);
my %forged = (
	'made with another key' =>
	  assertion(tenant => $tb, role => 'app', key => 'x' x 32),
	'expired' => assertion(
		tenant => $tb,
		role => 'app',
		key => $cluster_key,
		exp => time() - 5),
	'made for another role' =>
	  assertion(tenant => $tb, role => 'postgres', key => $cluster_key),
	'with a changed tenant' => do
	{
		(my $x = $ok_assertion) =~ s/\Q$tb\E/$ta/;
		$x;
	},
	'garbage' => 'v1.' . $tb);
for my $what (sort keys %forged)
{
	($ret, $out, $err) = as_app($wa,
		"BEGIN;\nSET LOCAL tenant_isolation.worker_context = '$forged{$what}';\nSELECT body FROM $shard_name;\nCOMMIT;"
	);
	like($err, qr/assertion/, "worker refuses an assertion $what");
	unlike($out, qr/SECRET/, "nothing of B through an assertion $what");
}
$wa->safe_psql('postgres', 'SELECT tenant_isolation.audit_flush()');
is( $wa->safe_psql('postgres',
		"SELECT count(*) FROM tenant_isolation.audit_log WHERE kind = 'denied_worker_context' AND session_user_name = 'app'"),
	scalar(keys %forged),
	'every refused assertion is audited on the worker');
is( $wa->safe_psql('postgres',
		"SELECT count(*) FROM tenant_isolation.audit_log WHERE detail LIKE '%v1.%' OR object LIKE '%v1.%'"),
	'0', 'the audit trail holds none of the refused assertions');

# A genuine assertion (what the coordinator sends) opens exactly its tenant.
($ret, $out, $err) = as_app($wa,
	"BEGIN;\nSET LOCAL tenant_isolation.worker_context = '$ok_assertion';\nSELECT body FROM $shard_name ORDER BY id;\nCOMMIT;"
);
like($out, qr/B-SECRET one/, 'a coordinator-signed assertion opens its tenant on the worker');
unlike($out, qr/a-one/, "and only its tenant's rows");
my $a_rows_sql = "SELECT string_agg(id || ':' || body, ',' ORDER BY id) FROM docs WHERE tenant_id = '$ta'";
my $a_before = $coord->safe_psql('postgres', $a_rows_sql);
($ret, $out, $err) = as_app($wa,
	"BEGIN;\nSET LOCAL tenant_isolation.worker_context = '$ok_assertion';\nINSERT INTO $shard_name VALUES ('$ta', 50, 'forged on a worker');\nCOMMIT;\n"
	  . "BEGIN;\nSET LOCAL tenant_isolation.worker_context = '$ok_assertion';\nUPDATE $shard_name SET body = 'pwned' WHERE tenant_id = '$ta';\nDELETE FROM $shard_name WHERE tenant_id = '$ta';\nCOMMIT;"
);
like($err, qr/ERROR:.*(tenant|row-level security)/,
	"on the worker, B's genuine context cannot insert a row of A into the shard");
is($coord->safe_psql('postgres', $a_rows_sql),
	$a_before, "on the worker, B's genuine context leaves A's rows unchanged");
($ret, $out, $err) = as_app($wa,
	"SELECT tenant_isolation.current_tenant() IS NULL;\nSELECT body FROM $shard_name;");
like($out, qr/^t$/m, 'the assertion does not outlive its transaction');
like($err, qr/ERROR:.*no tenant context/, 'after it, the shard is closed again');

# ---------------------------------------------------------------- the context inside the statement
# A router SELECT of one protected table carries the coordinator's
# assertion in its WHERE (tenant_isolation._worker_assertion('<assertion>'))
# instead of a coordinated transaction with SET LOCAL: one round trip.
{
	my $logfile = $wa->logfile;
	$wa->append_conf('postgresql.conf', "log_statement = 'all'");
	$wa->reload;
	my $pos = -s $logfile;
	($ret, $out, $err) = as_app($coord, "SELECT 'pt:' || body FROM docs WHERE id = 1;", $ta);
	like($out, qr/^pt:a-one/m, 'A point lookup through the coordinator');
	my $log = slurp_file($logfile, $pos);
	like($log, qr/tenant_isolation\._worker_assertion\('v1\.$ta\./,
		"the worker received A's assertion inside the statement");
	unlike($log, qr/worker_context|BEGIN|assign_distributed_transaction_id/,
		'and no SET LOCAL, no remote transaction for it');
	$wa->append_conf('postgresql.conf', "log_statement = 'none'");
	$wa->reload;
}
my $a_assertion = assertion(tenant => $ta, role => 'app', key => $cluster_key);
my $shard_sel = "SELECT 'row:' || body FROM $shard_name";
for my $what (sort keys %forged)
{
	($ret, $out, $err) = as_app($wa,
		"$shard_sel WHERE tenant_isolation._worker_assertion('$forged{$what}');");
	like($err, qr/ERROR:.*assertion/, "a statement carrying an assertion $what is refused");
	unlike($out, qr/row:/, "and shows no row");
}
($ret, $out, $err) = as_app($wa,
	"$shard_sel WHERE tenant_id = '$tb' AND tenant_isolation._worker_assertion('$a_assertion');\n"
	  . "$shard_sel WHERE tenant_isolation._worker_assertion('$a_assertion') AND body LIKE 'B%';");
is($ret, 0, "A's genuine assertion with B's tenant named in the statement runs");
unlike($out . $err, qr/SECRET/, "A's assertion never shows B's rows, whatever the statement asks");
($ret, $out, $err) = as_app($wa,
	"$shard_sel WHERE tenant_isolation._worker_assertion('$a_assertion') ORDER BY 1;");
like($out, qr/^row:a-one/m, "A's genuine assertion in the statement opens A's rows");
unlike($out, qr/SECRET/, 'and only A\'s');
for my $case (
	[ 'in a subquery', "SELECT * FROM (SELECT body FROM $shard_name WHERE tenant_isolation._worker_assertion('$a_assertion')) s, $shard_name t WHERE t.tenant_id = '$tb';" ],
	[ 'in the select list', "SELECT tenant_isolation._worker_assertion('$a_assertion'), body FROM $shard_name;" ],
	[ 'under OR', "$shard_sel WHERE tenant_isolation._worker_assertion('$a_assertion') OR true;" ],
	[ 'twice, for A and B', "$shard_sel WHERE tenant_isolation._worker_assertion('$a_assertion') AND tenant_isolation._worker_assertion('$ok_assertion');" ],
	[ 'against a SET LOCAL of B', "BEGIN;\nSET LOCAL tenant_isolation.worker_context = '$ok_assertion';\n$shard_sel WHERE tenant_isolation._worker_assertion('$a_assertion');\nCOMMIT;" ],
	[ 'on its own', "SELECT tenant_isolation._worker_assertion('$a_assertion');" ],
	[ 'replaced by a SET LOCAL of B within the statement', "BEGIN;\nSELECT body, set_config('tenant_isolation.worker_context', '$ok_assertion', true) FROM $shard_name WHERE tenant_isolation._worker_assertion('$a_assertion');\nCOMMIT;" ])
{
	($ret, $out, $err) = as_app($wa, $case->[1]);
	like($err, qr/ERROR:.*(42501|assertion|no tenant context|permission)/i,
		"an assertion $case->[0] is refused (42501)");
	unlike($out . $err, qr/SECRET/, "nothing of B through an assertion $case->[0]");
}
($ret, $out, $err) = as_app($wa,
	"UPDATE $shard_name SET body = 'pwned' WHERE tenant_id = '$tb' AND tenant_isolation._worker_assertion('$a_assertion');\n"
	  . "DELETE FROM $shard_name WHERE tenant_id = '$tb' AND tenant_isolation._worker_assertion('$a_assertion');");
is(b_rows(), $b_before, "writes on the worker with A's assertion aimed at B change nothing of B");
($ret, $out, $err) = as_app($wa,
	"SELECT body FROM docs WHERE tenant_isolation._worker_assertion('$a_assertion');");
like($err, qr/ERROR:.*cannot be passed on/,
	'a captured assertion cannot be re-signed through a worker (Citus routes from workers)');
unlike($out, qr/SECRET/, 'and shows nothing');
($ret, $out, $err) = as_app($wa,
	"SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid() AND tenant_isolation._worker_assertion('$a_assertion');");
my $a_mac = (split /\./, $a_assertion)[-1];
like($out, qr/<redacted>/, "the worker's pg_stat_activity shows the statement with its MAC redacted");
unlike($out, qr/$a_mac/, 'and not the MAC');
$wa->safe_psql('postgres', 'SELECT tenant_isolation.audit_flush()');
is( $wa->safe_psql('postgres',
		"SELECT count(*) FROM tenant_isolation.audit_log WHERE detail LIKE '%v1.%' OR object LIKE '%v1.%' OR detail LIKE '%$a_mac%'"),
	'0', 'the audit trail holds no assertion');

# Through the coordinator: EXPLAIN, prepared statements past the custom
# plan threshold with a tenant switch, and a read after a write of another
# tenant in one transaction (SET LOCAL and statement assertions together).
($ret, $out, $err) = as_app($coord,
	"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM docs WHERE id = 1;", $ta);
like($out, qr/Task Count: 1\n/, 'EXPLAIN ANALYZE of a point lookup: one task');
unlike($out . $err, qr/ERROR|SECRET/, 'EXPLAIN ANALYZE runs and shows nothing of B');
($ret, $out, $err) = as_app($coord,
	"PREPARE q(int) AS SELECT 'q:' || string_agg(body, ',' ORDER BY id) FROM docs WHERE id >= \$1;\n"
	  . join('', map { "EXECUTE q(1);\n" } 1 .. 7)
	  . "SELECT 'ctx:' || tenant_isolation.login('$token{$tc}');\n"
	  . join('', map { "EXECUTE q(1);\n" } 1 .. 3)
	  . "PREPARE g AS SELECT 'g:' || count(*) FROM docs;\n"
	  . join('', map { "EXECUTE g;\n" } 1 .. 7)
	  . "BEGIN;\nSELECT 'ctx:' || tenant_isolation.login_local('$token{$ta}');\n"
	  . "UPDATE docs SET body = body WHERE id = 1;\n"
	  . "SELECT 'ctx:' || tenant_isolation.login_local('$token{$tc}');\n"
	  . "SELECT 'w:' || string_agg(body, ',') FROM docs WHERE id = 1;\nCOMMIT;",
	$ta);
my @qa = ($out =~ /^q:(.*)$/mg);
is(scalar(@qa), 10, 'ten executions of the prepared statement') or diag($err);
is_deeply([ @qa[0 .. 6] ], [ ('a-one (A edited),a-two (A edited),a-three') x 7 ],
	'A: every execution, custom or generic, sees only A') or diag($out);
is_deeply([ @qa[7 .. 9] ], [ ('C-SECRET one') x 3 ],
	'after switching to C, the same prepared statement sees only C');
like($out, qr/^g:1$/m, 'a prepared count in C counts only C');
like($out, qr/^w:C-SECRET one$/m, 'a read of C after a write of A in one transaction sees only C');
($ret, $out, $err) = as_app($coord,
	"BEGIN;\nSELECT 'r1:' || string_agg(body, ',') FROM docs WHERE id = 1;\n"
	  . "SELECT 'ctx:' || tenant_isolation.login_local('$token{$tc}');\n"
	  . "UPDATE docs SET body = body WHERE id = 1;\n"
	  . "SELECT 'r2:' || string_agg(body, ',') FROM docs WHERE id = 1;\nCOMMIT;",
	$ta);
is($ret, 0, 'a read of A, then a write of C, in one transaction') or diag($err);
like($out, qr/^r1:a-one \(A edited\)$/m, 'the read sees A');
like($out, qr/^r2:C-SECRET one$/m, 'after the write of C, a read sees only C');
unlike($out . $err, qr/B-SECRET/, 'nothing of B in any of it');

# ---------------------------------------------------------------- worker killed mid-transaction
{
	my ($in, $bout, $berr) = ('', '', '');
	my $timer = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-q', '-A', '-t', '-U', 'app', '-h', '127.0.0.1',
			'-p', $coord->port, '-d', 'postgres', '-v', 'ON_ERROR_STOP=0'
		],
		'<', \$in, '>', \$bout, '2>', \$berr, $timer);
	$in .= "SELECT tenant_isolation.login('$token{$ta}');\n"
	  . "BEGIN;\nUPDATE docs SET body = 'mid-transaction' WHERE id = 1;\n"
	  . "SELECT 'updated-' || count(*) FROM docs WHERE body = 'mid-transaction';\n";
	pump_until($h, $timer, \$bout, qr/updated-1/);
	my $killed = $wa->safe_psql('postgres',
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend'"
	);
	ok($killed >= 1, "the worker's connection of the transaction was terminated");
	$in .= "SELECT body FROM docs ORDER BY id;\nCOMMIT;\nSELECT 'after:' || body FROM docs WHERE id = 1;\n\\q\n";
	$h->finish;
	like($berr, qr/connection|terminat|closed/i,
		'the transaction fails cleanly when its worker connection dies');
	unlike($bout . $berr, qr/SECRET/, 'nothing of B leaks on the failure');
	like($bout, qr/after:a-one/, 'the transaction rolled back: the row is as before');
}
is(b_rows(), $b_before, "B's rows are unchanged after the killed transaction");

# ---------------------------------------------------------------- DDL
# Citus propagates the owner's DDL to the protected shards (its connections
# have no context and run as the owner): the extension does not block it.
$coord->safe_psql('postgres',
	'ALTER TABLE docs ADD COLUMN extra int; CREATE INDEX docs_body ON docs (body); ALTER TABLE docs DROP COLUMN extra;');
($ret, $out, $err) = as_app($coord, "SELECT body FROM docs WHERE body = 'a-two (A edited)';", $ta);
like($out, qr/a-two/, 'after propagated DDL the table still works for A');
unlike($out . $err, qr/SECRET/, 'and shows nothing of B');

# ---------------------------------------------------------------- a tenant to its own shard
my $c_shard = $coord->safe_psql('postgres',
	"SELECT isolate_tenant_to_new_shard('docs', '$tc'::uuid, 'CASCADE', shard_transfer_mode => 'block_writes')"
);
like($c_shard, qr/^\d+$/, "tenant C isolated to its own shard $c_shard");
my $c_port = $coord->safe_psql('postgres',
	"SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = $c_shard");
my $wc = ($c_port == $w1->port) ? $w1 : $w2;
is( $wc->safe_psql(
		'postgres',
		"SET citus.override_table_visibility = off; SELECT relforcerowsecurity, (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid AND polname = 'tenant_isolation_fallback'), (SELECT count(*) FROM pg_trigger WHERE tgrelid = c.oid AND tgname = 'tenant_isolation_guard_$c_shard') FROM pg_class c WHERE relname = 'docs_$c_shard'"
	),
	't|1|1',
	"C's new shard is protected on its worker");
($ret, $out, $err) = as_app($wc, "SELECT * FROM docs_$c_shard;");
like($err, qr/ERROR:.*no tenant context/, "C's new shard is closed without a context");
($ret, $out, $err) = as_app($coord, "SELECT 'C:' || string_agg(body, ',') FROM docs;", $tc);
like($out, qr/^C:C-SECRET one$/m, 'C reads its rows from its own shard');
($ret, $out, $err) = as_app($coord, "SELECT 'A:' || string_agg(body, ',' ORDER BY id) FROM docs;", $ta);
like($out, qr/^A:a-one/m, 'A still reads its rows');
unlike($out . $err, qr/SECRET/, 'and nothing of B or C after the split');
is(b_rows(), $b_before, "B's and C's rows are unchanged by the split");

# ---------------------------------------------------------------- protect_table first
$coord->safe_psql(
	'postgres', qq{
CREATE TABLE early (tenant_id uuid NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
SELECT tenant_isolation.protect_table('early');
});
($ret, $out, $err) = $coord->psql('postgres',
	"SELECT create_distributed_table('early', 'tenant_id', colocate_with => 'docs')");
is($ret, 0, 'create_distributed_table after protect_table works') or diag($err);
$coord->safe_psql(
	'postgres', qq{
INSERT INTO early VALUES ('$ta', 1, 'a-early'), ('$tb', 1, 'B-SECRET early');
GRANT SELECT, INSERT ON early TO app;
});
($ret, $out, $err) = as_app($coord,
	"SELECT v FROM early ORDER BY id;\nSELECT e.v FROM early e JOIN docs d USING (tenant_id, id);\nINSERT INTO early (id, v) VALUES (2, 'a-two');\nSELECT v FROM early WHERE id = 2;",
	$ta);
like($out, qr/a-early/, 'A reads the table distributed after protection');
like($out, qr/a-two/, 'A inserts into it without the tenant column') or diag($err);
unlike($out . $err, qr/SECRET/, 'nothing of B through it');
($ret, $out, $err) = as_app($w1->port == $wa->port ? $w1 : $wa,
	"SELECT * FROM early;");
like($err, qr/ERROR:.*no tenant context/, 'its shell on a worker is closed without a context');

# unprotect_table of a table protected before it was distributed: the
# tenant column's default (set by protect_table, copied by Citus) goes too.
$coord->safe_psql(
	'postgres', q{
CREATE TABLE early2 (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT tenant_isolation.protect_table('early2');
SELECT create_distributed_table('early2', 'tenant_id', colocate_with => 'docs');
});
like( $coord->safe_psql('postgres',
		"SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'early2'::regclass"),
	qr/current_tenant/, 'protect_table set the default before the table was distributed');
($ret, $out, $err) = $coord->psql('postgres', "SELECT tenant_isolation.unprotect_table('early2')");
is($ret, 0, 'unprotect_table of a table distributed after protection works') or diag($err);
is( $coord->safe_psql('postgres',
		"SELECT count(*) FROM pg_attrdef WHERE adrelid = 'early2'::regclass"),
	'0', 'unprotect_table dropped the default on the coordinator');
is( $coord->safe_psql('postgres',
		"SELECT count(*) FROM pg_policy WHERE polrelid = 'early2'::regclass"),
	'0', 'and the fallback policy');
($ret, $out, $err) = $coord->psql('postgres',
	"SET tenant_isolation.tenant_id = '$ta'; INSERT INTO early2 (id) VALUES (1);");
like($err, qr/without a partition column value|null value in column "tenant_id"/,
	'an INSERT without the tenant column gets no tenant from a leftover default');

for my $n (reverse @nodes)
{
	$n->stop;
}
done_testing();
