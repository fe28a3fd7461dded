
# Copyright (c) 2026, tenant_isolation developers

# Operations on a Citus cluster (a coordinator and two workers on 127.0.0.1,
# each its own initdb, shared_preload_libraries = 'citus,tenant_isolation'),
# the part of issue 19 that 070_citus.pl does not cover:
#
#   1. moving a big tenant: B (which shares A's shard) is isolated to its
#      own shard and that shard moved to the other worker, then A's shard is
#      moved, each while a session of A reads in a loop through the
#      coordinator: A never sees a marker of B and always its own rows; B's
#      rows are unchanged (count and checksum); every new shard is protected
#      on its worker (closed without a context);
#   2. COPY through the coordinator: COPY FROM by A (without the tenant
#      column; claiming B's tenant is refused, 42501; a trigger that fires
#      after the shard's guard is refused), COPY TO of the table and of a
#      query: nothing of B;
#   3. the schema tier on Citus schema-based sharding: a schema-tier
#      tenant's schema is a distributed schema (its tables on one node, also
#      those migrate_tenant_schemas creates), A's session cannot read B's
#      schema through the coordinator nor A's role on the worker; the
#      tenant roles must be allowed to log in on the workers (Citus
#      connects as them); drop_tenant removes schema and role everywhere;
#   4. mark_global tables as reference tables, marked before or after
#      create_reference_table; a join of a protected table with them is a
#      router query for one tenant.
#
# Needs Citus (test/scripts/citus.sh builds it from ../shared/vendor).  With
# CI=true a missing Citus is a failure; elsewhere the test skips and says so.

use strict;
use warnings;

use File::Spec;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

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

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $cluster_key = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32);
my $keyfile = "$tmp/cluster.key";
open(my $kf, '>', $keyfile) or die "cannot write $keyfile: $!";
print $kf $cluster_key;
close($kf);
chmod(0600, $keyfile) or die "chmod $keyfile: $!";

# wal_level = logical: shard moves and splits may replicate logically.
for my $n (@nodes)
{
	$n->init;
	$n->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'citus,tenant_isolation'
tenant_isolation.cluster_key_file = '$keyfile'
citus.shard_count = 4
citus.shard_replication_factor = 1
max_connections = 80
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
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

sub node_of_port
{
	my ($port) = @_;
	return $port == $w1->port ? $w1 : $port == $w2->port ? $w2 : $coord;
}

sub placement
{
	my ($shard) = @_;
	return node_of_port($coord->safe_psql('postgres',
		"SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = $shard"));
}

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
	note		text,
	PRIMARY KEY (tenant_id, id)
);
SELECT create_distributed_table('docs', 'tenant_id');
SELECT create_distributed_table('notes', 'tenant_id', colocate_with => 'docs');
});

sub shard_of
{
	my ($t) = @_;
	return $coord->safe_psql('postgres',
		"SELECT get_shard_id_for_distribution_column('docs', '$t'::uuid)");
}
my $ta = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
my $tb;
for my $i (1 .. 400)
{
	my $cand = sprintf('bbbbbbbb-bbbb-4bbb-8bbb-%012d', $i);
	if (shard_of($cand) eq shard_of($ta))
	{
		$tb = $cand;
		last;
	}
}
ok($tb, 'found a tenant B in the shard of A');

# B is the big tenant: 100000 rows, each a marker.
my $b_rows_n = 100000;
$coord->safe_psql(
	'postgres', qq{
INSERT INTO docs SELECT '$ta', g, 'a-' || g FROM generate_series(1, 50) g;
INSERT INTO docs SELECT '$tb', g, 'B-SECRET ' || g FROM generate_series(1, $b_rows_n) g;
INSERT INTO notes VALUES ('$ta', 1, 'a-note'), ('$tb', 1, 'B-SECRET note');
SELECT tenant_isolation.create_tenant('tenant a', id => '$ta');
SELECT tenant_isolation.create_tenant('tenant b', id => '$tb');
SELECT tenant_isolation.protect_table('docs');
SELECT tenant_isolation.protect_table('notes');
GRANT SELECT, INSERT, UPDATE, DELETE ON docs, notes TO app;
});

# JWT login on the coordinator.
my $secret = 'citus-ops-secret-0123456789abcdef';
$coord->safe_psql('postgres',
	"SELECT tenant_isolation.add_jwt_key('k1', 'HS256', '$secret')");
my $hsfile = "$tmp/hs.key";
open(my $hf, '>', $hsfile) or die;
print $hf $secret;
close($hf);
my %token;

sub mint_for
{
	my ($t) = @_;
	my ($out, $err);
	IPC::Run::run([ 'sh', $mint, '-k', 'k1', 'HS256', $hsfile,
		qq({"sub":"u","tenant_id":"$t","exp":NOW+3600}) ], '>', \$out, '2>', \$err)
	  or die "mint_jwt.sh: $err";
	chomp $out;
	$token{$t} = $out;
}
mint_for($_) for ($ta, $tb);

# Run SQL as app on a node; returns (exit code, stdout, stderr).
sub as_app
{
	my ($node, $sql, $tenant, $stdin) = @_;
	$sql = "SELECT 'ctx:' || tenant_isolation.login('$token{$tenant}');\n$sql"
	  if $tenant;
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-U', 'app', '-v', 'ON_ERROR_STOP=0' ]);
	return ($ret, $out // '', $err // '');
}

# B's rows: count and checksum, read by the superuser.
my $b_sum_sql =
  "SELECT count(*) || ':' || md5(string_agg(id || ':' || body, ',' ORDER BY id)) FROM docs WHERE tenant_id = '$tb'";
my $b_before = $coord->safe_psql('postgres', $b_sum_sql);
like($b_before, qr/^$b_rows_n:[0-9a-f]{32}$/, "B's $b_rows_n rows are there to be attacked");
my $a_sum_sql =
  "SELECT count(*) || ':' || md5(string_agg(id || ':' || body, ',' ORDER BY id)) FROM docs WHERE tenant_id = '$ta'";
my $a_before = $coord->safe_psql('postgres', $a_sum_sql);

# ---------------------------------------------------------------- 1. moving a big tenant
#
# A reader of A runs statement after statement through the coordinator
# while an operation runs in another session; each answer must be A's 50
# rows and nothing of B.
my ($rin, $rout, $rerr) = ('', '', '');
my $rtimer = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
my $reader = IPC::Run::start(
	[
		'psql', '-X', '-q', '-A', '-t', '-U', 'app', '-h', '127.0.0.1',
		'-p', $coord->port, '-d', 'postgres', '-v', 'ON_ERROR_STOP=0'
	],
	'<', \$rin, '>', \$rout, '2>', \$rerr, $rtimer);
$rin .= "SELECT 'ctx:' || tenant_isolation.login('$token{$ta}');\n";
pump_until($reader, $rtimer, \$rout, qr/ctx:/);
my $reads_total = 0;

# Runs $sql as the superuser in the background and reads as A until it
# ends; returns (seconds, reads made, the operation's output and errors).
sub during
{
	my ($sql) = @_;
	my ($mout, $merr) = ('', '');
	my $start = time();
	my $op = IPC::Run::start(
		[
			'psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1',
			'-p', $coord->port, '-d', 'postgres', '-v', 'ON_ERROR_STOP=1',
			'-c', $sql
		],
		'>', \$mout, '2>', \$merr);
	my $reads = 0;
	while (1)
	{
		$reads++;
		$rin .= "SELECT 'r$reads_total-$reads:' || count(*) || ':' || string_agg(body, ',' ORDER BY id) FROM docs;\n"
		  . "\\echo done-$reads_total-$reads\n";
		pump_until($reader, $rtimer, \$rout, qr/done-$reads_total-$reads\n/)
		  or last;
		$op->pump_nb;
		last unless $op->pumpable;
	}
	my $rc = $op->finish ? 0 : ($? >> 8) || 1;
	my $secs = time() - $start;
	$reads_total += $reads;
	return ($secs, $reads, $rc, $mout, $merr);
}

# What A's reader saw: every answer A's 50 rows, nothing of B.  A read
# that meets the end of a split or move may fail with Citus' "could not find
# valid entry for shard" (its shard metadata changed under the plan): that
# fails closed and is counted, any other error is a failure.
sub reader_ok
{
	my ($what, $reads) = @_;
	my @answers = ($rout =~ /^(r\d+-\d+:.*)$/mg);
	my $good = grep { /^r\d+-\d+:50:a-1,a-2,a-3,/ } @answers;
	my @errors = ($rerr =~ /^(.*ERROR:.*)$/mg);
	my @other = grep { !/could not find valid entry for shard/ } @errors;
	note("$what: $good reads returned A's rows, " . scalar(@errors) . ' failed closed');
	is($good + scalar(@errors), $reads,
		"$what: each of the $reads reads of A during it returned A's 50 rows or failed closed");
	ok($good > 0, "$what: $good reads of A returned A's rows during it");
	is(join("\n", @other), '', "$what: no other error");
	unlike($rout . $rerr, qr/SECRET/, "$what: A's reader saw nothing of B");
	($rout, $rerr) = ('', '');
}

sub shard_protected
{
	my ($shard, $what) = @_;
	my $node = placement($shard);
	my $name = $coord->safe_psql('postgres',
		"SELECT shard_name(logicalrelid, shardid) FROM pg_dist_shard WHERE shardid = $shard");
	my ($table) = $name =~ /^(\w+?)_\d+$/;
	is( $node->safe_psql(
			'postgres',
			"SET citus.override_table_visibility = off; SELECT relforcerowsecurity, (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid AND polname = 'tenant_isolation_fallback'), (SELECT count(*) FROM pg_trigger WHERE tgrelid = c.oid AND tgname = 'tenant_isolation_guard_$shard') FROM pg_class c WHERE relname = '$name'"
		),
		't|1|1',
		"$what: shard $name on its worker has forced row security, the fallback policy and the guard trigger");
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM $name;",
		extra_params => [ '-U', 'app', '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/ERROR:\s+42501: no tenant context/,
		"$what: app reading shard $name on its worker without a context is refused (42501)");
	unlike($out, qr/SECRET/, "$what: nothing of shard $name is shown");
	($ret, $out, $err) = as_app($node,
		"SET client_min_messages = error; SELECT * FROM $name WHERE tenant_id = '$tb';");
	unlike($out, qr/SECRET/, "$what: nothing of B through shard $name with B's tenant named");
	return $node;
}

my ($secs, $reads, $rc, $mout, $merr);

# 1a. B to a shard of its own (split), A reading.
($secs, $reads, $rc, $mout, $merr) = during(
	"SELECT isolate_tenant_to_new_shard('docs', '$tb'::uuid, 'CASCADE', shard_transfer_mode => 'block_writes')");
is($rc, 0, 'isolate_tenant_to_new_shard of B while A reads') or diag($merr);
my ($b_shard) = $mout =~ /(\d+)/;
note(sprintf('split of B: %.2f s, %d reads of A during it', $secs, $reads));
reader_ok('split of B', $reads);
isnt($b_shard, shard_of($ta), "B's rows are in a shard of their own ($b_shard)");
is($coord->safe_psql('postgres', $b_sum_sql), $b_before, "B's rows are unchanged by the split (count and checksum)");
my $b_node = shard_protected($b_shard, 'after the split');
shard_protected(shard_of($ta), 'after the split');

# 1b. B's shard to the other worker, A reading.
my $to = $b_node == $w1 ? $w2 : $w1;
my $mode = 'force_logical';
($secs, $reads, $rc, $mout, $merr) = during(
	"SELECT citus_move_shard_placement($b_shard, '127.0.0.1', "
	  . $b_node->port . ", '127.0.0.1', " . $to->port
	  . ", shard_transfer_mode => '$mode')");
is($rc, 0, "citus_move_shard_placement of B's shard ($mode) while A reads") or diag($merr);
note(sprintf('move of B (%d rows, %s): %.2f s, %d reads of A during it', $b_rows_n, $mode, $secs, $reads));
reader_ok("move of B's shard", $reads);
ok(placement($b_shard) == $to, "B's shard is on the other worker now");
is($coord->safe_psql('postgres', $b_sum_sql), $b_before, "B's rows are unchanged by the move (count and checksum)");
shard_protected($b_shard, 'after the move of B');

# 1c. A's own shard moves while A reads it (block_writes).
my $a_shard = shard_of($ta);
my $a_node = placement($a_shard);
$to = $a_node == $w1 ? $w2 : $w1;
($secs, $reads, $rc, $mout, $merr) = during(
	"SELECT citus_move_shard_placement($a_shard, '127.0.0.1', "
	  . $a_node->port . ", '127.0.0.1', " . $to->port
	  . ", shard_transfer_mode => 'block_writes')");
is($rc, 0, "citus_move_shard_placement of A's shard (block_writes) while A reads it") or diag($merr);
note(sprintf("move of A's shard (block_writes): %.2f s, %d reads of A during it", $secs, $reads));
reader_ok("move of A's shard", $reads);
shard_protected($a_shard, "after the move of A's shard");

# Through the coordinator after all of it.
my ($ret, $out, $err) = as_app($coord,
	"SELECT 'A:' || count(*) FROM docs;\nSELECT body FROM docs WHERE tenant_id = '$tb';\n"
	  . "SELECT d.body FROM docs d JOIN notes n USING (tenant_id) WHERE d.id = 1;\n"
	  . "UPDATE docs SET body = 'pwned' WHERE tenant_id = '$tb';\nDELETE FROM docs WHERE body LIKE 'B-SECRET%';",
	$ta);
like($out, qr/^A:50$/m, 'after the moves A reads its 50 rows through the coordinator');
unlike($out . $err, qr/SECRET/, 'and nothing of B, reads or writes aimed at B');
is($coord->safe_psql('postgres', $b_sum_sql), $b_before, "B's rows are unchanged after the attacks");
($ret, $out, $err) = as_app($coord,
	"SELECT 'B:' || count(*) FROM docs;\nSELECT body FROM docs WHERE tenant_id = '$ta';", $tb);
like($out, qr/^B:$b_rows_n$/m, "B reads its $b_rows_n rows from its moved shard");
unlike($out . $err, qr/a-\d/, "and nothing of A");
is($coord->safe_psql('postgres', $a_sum_sql), $a_before, "A's rows are unchanged by the moves");

$rin .= "\\q\n";
$reader->finish;

# ---------------------------------------------------------------- 2. COPY through the coordinator
#
# The coordinator's COPY FROM of a protected Citus table goes to Citus (it
# routes each row to its shard by the tenant column); the shards' guard
# trigger checks each row on the workers in A's context.
($ret, $out, $err) = as_app($coord,
	"COPY docs (id, body) FROM STDIN;\n1001\ta-copied-1\n1002\ta-copied-2\n\\.\n"
	  . "SELECT 'copied:' || string_agg(body, ',' ORDER BY id) FROM docs WHERE id > 1000;",
	$ta);
like($out, qr/^copied:a-copied-1,a-copied-2$/m,
	'A copies rows without the tenant column in through the coordinator') or diag($err);
is( $coord->safe_psql('postgres',
		"SELECT string_agg(DISTINCT tenant_id::text, ',') FROM docs WHERE body LIKE 'a-copied%'"),
	$ta, "the copied rows got A's tenant");

($ret, $out, $err) = as_app($coord,
	"COPY docs (tenant_id, id, body) FROM STDIN;\n$ta\t1003\ta-copied-3\n\\.\n"
	  . "SELECT 'copied3:' || count(*) FROM docs WHERE id = 1003;",
	$ta);
like($out, qr/^copied3:1$/m, "A copies a row naming A's own tenant") or diag($err);

my $a_mid = $coord->safe_psql('postgres', $a_sum_sql);
($ret, $out, $err) = as_app($coord,
	"COPY docs (tenant_id, id, body) FROM STDIN;\n$ta\t1004\ta-copied-4\n$tb\t1\tpwned by copy\n$tb\t200001\tB-forged\n\\.\n",
	$ta);
like($err, qr/ERROR:.*(tenant|row-level security)/,
	"A's COPY FROM with a row claiming B's tenant is refused");
($ret, $out, $err) = $coord->psql('postgres', "COPY docs (tenant_id, id, body) FROM STDIN;\n$tb\t200002\tB-forged\n\\.\n",
	extra_params => [ '-U', 'app', '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+42501/, 'COPY FROM without a context is refused, 42501');
is($coord->safe_psql('postgres', $b_sum_sql), $b_before, "B's rows are unchanged by the COPY attacks");
is($coord->safe_psql('postgres', $a_sum_sql), $a_mid, "the refused COPY left nothing behind (not even A's row of it)");

# A trigger of the owner that fires after the guard (names sort after
# tenant_isolation_guard_<shard>) and changes the tenant column: COPY FROM
# has no WITH CHECK stage after it, so the worker's COPY must refuse the
# table, as on one server, instead of storing a row of B.
$coord->safe_psql(
	'postgres', qq{
CREATE FUNCTION retenant() RETURNS trigger LANGUAGE plpgsql AS
	\$\$BEGIN NEW.tenant_id := '$tb'; RETURN NEW; END\$\$;
SET citus.enable_unsafe_triggers = on;
CREATE TRIGGER zz_retenant BEFORE INSERT ON docs FOR EACH ROW EXECUTE FUNCTION retenant();
});
($ret, $out, $err) = as_app($coord,
	"COPY docs (id, body) FROM STDIN;\n1005\tretenanted by a late trigger\n\\.\n", $ta);
like($err, qr/ERROR:.*COPY FROM into protected table .* is not supported while trigger "zz_retenant_\d+" fires after the tenant guard/,
	"COPY FROM is refused on the worker while a trigger fires after the shard's guard");
is($coord->safe_psql('postgres', "SELECT count(*) FROM docs WHERE body LIKE 'retenanted%'"),
	'0', 'no row was stored through the late trigger');
$coord->safe_psql('postgres',
	'SET citus.enable_unsafe_triggers = on; DROP TRIGGER zz_retenant ON docs; DROP FUNCTION retenant()');
is($coord->safe_psql('postgres', $b_sum_sql), $b_before, "B's rows are unchanged by the late-trigger attack");

($ret, $out, $err) = as_app($coord,
	"COPY docs TO STDOUT;\nCOPY docs (id, body) TO STDOUT;\nCOPY (SELECT id, body FROM docs ORDER BY id) TO STDOUT;\n"
	  . "COPY (SELECT * FROM docs WHERE tenant_id = '$tb') TO STDOUT;\nCOPY notes TO STDOUT;\n"
	  . "COPY (SELECT d.body, n.note FROM docs d JOIN notes n USING (tenant_id)) TO STDOUT;",
	$ta);
is($ret, 0, 'A copies out of the protected tables through the coordinator') or diag($err);
like($out, qr/a-copied-2/, "COPY TO shows A's rows");
my $copied_lines = () = $out =~ /^/mg;
unlike($out . $err, qr/SECRET|pwned|forged/, 'COPY TO of the table, of its columns, of queries naming B: nothing of B');
($ret, $out, $err) = as_app($coord, "COPY docs TO STDOUT;");
like($err, qr/ERROR:.*no tenant context/, 'COPY TO without a context is refused');
unlike($out, qr/SECRET/, 'and shows nothing');

# ---------------------------------------------------------------- 3. schema tier on schema-based sharding
$coord->safe_psql(
	'postgres', q{
CREATE SCHEMA tmpl;
CREATE TABLE tmpl.items (id int PRIMARY KEY, secret text);
SELECT tenant_isolation.add_template_table('tmpl.items');
});
my $sa = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc';
my $sb = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd';
(my $sch_a = "tenant_$sa") =~ s/-//g;
(my $sch_b = "tenant_$sb") =~ s/-//g;
($ret, $out, $err) = $coord->psql(
	'postgres', qq{
SET citus.enable_schema_based_sharding = on;
SELECT tenant_isolation.create_tenant('schema a', 'schema', '$sa');
SELECT tenant_isolation.create_tenant('schema b', 'schema', '$sb');
});
is($ret, 0, 'schema-tier tenants created on the coordinator with schema-based sharding on') or diag($err);
mint_for($_) for ($sa, $sb);
is( $coord->safe_psql('postgres',
		"SELECT string_agg(schema_name::text, ',' ORDER BY schema_name::text) FROM citus_schemas WHERE schema_name::text IN ('$sch_a', '$sch_b')"),
	"$sch_a,$sch_b", 'both tenant schemas are distributed schemas');
is( $coord->safe_psql('postgres',
		"SELECT count(DISTINCT nodeport) || ':' || count(*) FROM citus_shards WHERE table_name::text LIKE '$sch_b.%'"),
	'1:1', "tenant B's schema table is one shard on one node");
$coord->safe_psql(
	'postgres', qq{
INSERT INTO $sch_a.items VALUES (1, 'sa-one');
INSERT INTO $sch_b.items VALUES (1, 'SB-SECRET one'), (2, 'SB-SECRET two');
});
my $sb_sum_sql = "SELECT count(*) || ':' || md5(string_agg(id || secret, ',' ORDER BY id)) FROM $sch_b.items";
my $sb_before = $coord->safe_psql('postgres', $sb_sum_sql);

# Citus opens its connections to the workers as the current role, and a
# schema-tier tenant's role is NOLOGIN: reading the tenant's own tables
# fails closed until the role may log in on the workers.
($ret, $out, $err) = as_app($coord, "SELECT 'own:' || string_agg(secret, ',') FROM items;", $sa);
like($err, qr/ERROR:.*"$sch_a" is not permitted to log in/,
	"a NOLOGIN tenant role cannot reach its schema's shard on the worker: fails closed");
unlike($out, qr/own:/, 'and returns nothing');
for my $sch ($sch_a, $sch_b)
{
	is( $coord->safe_psql('postgres',
			"SELECT bool_and(success) || coalesce(string_agg(CASE WHEN NOT success THEN ' ' || result END, ''), '') FROM run_command_on_workers('SET citus.enable_ddl_propagation TO off; ALTER ROLE $sch LOGIN')"),
		'true', "role $sch may log in on the workers (only there)");
}
is( $coord->safe_psql('postgres',
		"SELECT string_agg(rolcanlogin::text, ',') FROM pg_roles WHERE rolname IN ('$sch_a', '$sch_b')"),
	'false,false', 'the tenant roles still cannot log in on the coordinator');
($ret, $out, $err) = as_app($coord,
	"SELECT 'own:' || string_agg(secret, ',') FROM items;\nSELECT 'own2:' || string_agg(secret, ',') FROM $sch_a.items;",
	$sa);
like($out, qr/^own:sa-one$/m, "schema tenant A reads its own schema's table through the coordinator") or diag($err);
like($out, qr/^own2:sa-one$/m, 'also schema-qualified');
($ret, $out, $err) = as_app($coord,
	"SELECT secret FROM $sch_b.items;\nCOPY $sch_b.items TO STDOUT;\n"
	  . "UPDATE $sch_b.items SET secret = 'pwned';\nDELETE FROM $sch_b.items;\nINSERT INTO $sch_b.items VALUES (9, 'forged');\n"
	  . "SELECT * FROM citus_shards WHERE table_name::text LIKE '$sch_b.%';",
	$sa);
like($err, qr/permission denied for (schema|table)/, "schema tenant A is refused B's schema through the coordinator");
unlike($out . $err, qr/SB-SECRET/, "nothing of B's schema reaches A");
($ret, $out, $err) = as_app($coord, "SELECT secret FROM $sch_b.items;", $ta);
like($err, qr/permission denied for schema/, "a shared-tier tenant's session is refused B's schema too");
unlike($out, qr/SB-SECRET/, 'and sees nothing of it');

# On the worker that holds B's schema shard, A's tenant role (which may log
# in there now) has no privilege on it: the schema's grants went with it.
my ($sb_shard, $sb_port) = split /\|/, $coord->safe_psql('postgres',
	"SELECT shard_name, nodeport FROM citus_shards WHERE table_name::text = '$sch_b.items'");
my $sb_node = node_of_port($sb_port);
($ret, $out, $err) = $sb_node->psql('postgres',
	"SET citus.override_table_visibility = off; SELECT secret FROM $sb_shard;\nSELECT secret FROM $sch_b.items;",
	extra_params => [ '-U', $sch_a ]);
like($err, qr/permission denied for schema/, "A's tenant role on the worker is refused B's schema shard");
unlike($out, qr/SB-SECRET/, 'and sees nothing of it');
is($coord->safe_psql('postgres', $sb_sum_sql), $sb_before, "B's schema rows are unchanged");

# ---------------------------------------------------------------- 4. mark_global and reference tables
$coord->safe_psql(
	'postgres', q{
CREATE TABLE plans (id int PRIMARY KEY, name text);
SELECT tenant_isolation.mark_global('plans');
SELECT create_reference_table('plans');
CREATE TABLE regions (id int PRIMARY KEY, name text);
SELECT create_reference_table('regions');
SELECT tenant_isolation.mark_global('regions');
INSERT INTO plans VALUES (1, 'free'), (2, 'pro');
INSERT INTO regions VALUES (1, 'eu'), (2, 'us');
GRANT SELECT ON plans, regions TO app;
});
is( $coord->safe_psql('postgres',
		"SELECT string_agg(logicalrelid::text || ':' || partmethod::text, ',' ORDER BY logicalrelid::text) FROM pg_dist_partition WHERE logicalrelid::text IN ('plans', 'regions')"),
	'plans:n,regions:n', 'both global tables are reference tables');
is( $coord->safe_psql('postgres',
		"SELECT string_agg(\"table\"::text, ',' ORDER BY \"table\"::text) FROM tenant_isolation.global_tables WHERE \"table\"::text IN ('plans', 'regions')"),
	'plans,regions', 'and both are still marked global (mark_global before or after create_reference_table)');
($ret, $out, $err) = $coord->psql('postgres', "SELECT tenant_isolation.protect_table('regions')");
like($err, qr/marked global/, 'a global reference table cannot be protected');
for my $q (
	'SELECT d.body, p.name FROM docs d JOIN plans p ON p.id = d.id',
	'SELECT d.body, r.name FROM docs d JOIN regions r ON r.id = d.id JOIN plans p ON p.id = r.id')
{
	($ret, $out, $err) = as_app($coord, "EXPLAIN (COSTS OFF) $q;", $ta);
	like($out, qr/Task Count: 1\n/, "router plan for one tenant: $q");
	($ret, $out, $err) = as_app($coord, "$q ORDER BY 1;\n$q AND d.tenant_id = '$tb';", $ta);
	like($out, qr/a-1\|/, "A reads its rows joined to the reference tables: $q");
	unlike($out . $err, qr/SECRET/, "nothing of B: $q");
}
is($coord->safe_psql('postgres', $b_sum_sql), $b_before, "B's rows are unchanged at the end");

# migrate_tenant_schemas on Citus: its CREATE TABLE runs from SPI, which
# Citus does not convert; the extension converts the new tables of a
# distributed tenant schema afterwards, so they live with the schema.
($ret, $out, $err) = $coord->psql('postgres',
	"SELECT count(*) FROM tenant_isolation.migrate_tenant_schemas('CREATE TABLE more (id int, secret text)') WHERE status = 'migrated'");
is($out, '2', 'migrate_tenant_schemas creates a table in both distributed tenant schemas') or diag($err);
$coord->safe_psql('postgres', "INSERT INTO $sch_b.more VALUES (1, 'SB-SECRET more')");
($ret, $out, $err) = as_app($coord, "SELECT secret FROM $sch_b.more;\nSELECT 'own:' || count(*) FROM more;", $sa);
like($out, qr/^own:0$/m, "A's session reads its own new table");
like($err, qr/permission denied for schema/, "and is refused B's new table");
unlike($out, qr/SB-SECRET/, 'nothing of it reaches A');
is( $coord->safe_psql('postgres',
		"SELECT string_agg(citus_table_type, ',') FROM citus_tables WHERE table_name::text = '$sch_b.more'"),
	'schema', "the new table of B's distributed schema is a tenant schema table");
is( $coord->safe_psql('postgres',
		"SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name::text LIKE '$sch_b.%'"),
	'1', "B's schema tables, old and new, are on one node");

# drop_tenant of a schema-tier tenant: Citus drops the schema and the role
# on every node.
$coord->safe_psql('postgres', "SELECT tenant_isolation.drop_tenant('$sb')");
is( $coord->safe_psql('postgres',
		"SELECT string_agg(result, ',') FROM run_command_on_all_nodes(\$\$SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = '$sch_b') || ':' || (SELECT count(*) FROM pg_roles WHERE rolname = '$sch_b')\$\$)"),
	'0:0,0:0,0:0', "drop_tenant removes B's schema and role on the coordinator and both workers");
($ret, $out, $err) = as_app($coord, "SELECT 'own:' || string_agg(secret, ',') FROM items;", $sa);
like($out, qr/^own:sa-one$/m, "schema tenant A still reads its own schema after B's drop");

for my $n (reverse @nodes)
{
	$n->stop;
}
done_testing();
