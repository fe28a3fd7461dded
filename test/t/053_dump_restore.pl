
# Copyright (c) 2026, tenant_isolation developers

# pg_dump / pg_restore.
#
# A custom-format dump taken by a superuser restores into an empty database:
# pg_restore runs CREATE EXTENSION itself, the extension's catalogs (tenants,
# protected and global tables, JWT keys, settings, templates) come back
# because they are marked with pg_extension_config_dump, and protection is in
# force after the restore: the guard trigger, the fallback policy and forced
# row level security are on every protected table and partition, an ordinary
# role without a context gets 42501, a token signed with the restored key
# logs in and sees only its tenant's rows, a schema-tier tenant finds its
# schema.  The same dump restores in parallel (-j), over itself with --clean
# (with errors, see docs/operations.md), and into another cluster once the
# roles exist there (pg_dumpall --globals-only first).  A schema-filtered
# dump needs -n tenant_isolation -e tenant_isolation to carry the extension;
# without them the tables come back unregistered but closed.
#
# A dump by an ordinary role fails clearly: pg_dump connects without a tenant
# context, so COPY of a protected table gets 42501 (and so does a member of
# tenant_isolation_admin that is not a superuser): backups need a superuser.

use strict;
use warnings;

use File::Spec;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = File::Spec->rel2abs("$FindBin::RealBin/../..");
my $mint = "$top/test/scripts/mint_jwt.sh";

my $tenant_a = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
my $tenant_b = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
my $tenant_c = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc';	# schema tier
my $schema_c = 'tenant_cccccccccccc4ccc8ccccccccccccccc';

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'tenant_isolation'");
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $secret = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 16);
my $keyfile = "$tmp/hs256.key";
open(my $kf, '>', $keyfile) or die "$keyfile: $!";
print $kf $secret;
close($kf);

sub mint
{
	my ($claims) = @_;
	my ($out, $err);
	IPC::Run::run([ 'sh', $mint, 'HS256', $keyfile, $claims ],
		'>', \$out, '2>', \$err)
	  or die "mint_jwt.sh failed: $err";
	chomp $out;
	return $out;
}
my $token_a = mint(qq({"tenant_id":"$tenant_a","sub":"alice","exp":NOW+3600}));
my $token_c = mint(qq({"tenant_id":"$tenant_c","sub":"carol","exp":NOW+3600}));

# --- the source database
$node->safe_psql(
	'postgres', q{
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_admin LOGIN;
CREATE DATABASE src;
});
$node->safe_psql(
	'src', qq{
CREATE EXTENSION tenant_isolation;
GRANT tenant_isolation_admin TO regress_admin;
GRANT tenant_isolation_login TO regress_app;
CREATE TABLE docs (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text,
	PRIMARY KEY (tenant_id, id)
);
CREATE TABLE parts (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text
) PARTITION BY HASH (tenant_id);
CREATE TABLE parts_0 PARTITION OF parts FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE countries (code text PRIMARY KEY);
CREATE TABLE notes (id int PRIMARY KEY, note text);
GRANT SELECT, INSERT, UPDATE, DELETE ON docs, parts TO regress_app, regress_admin;
GRANT SELECT ON countries TO PUBLIC;
INSERT INTO countries VALUES ('DE'), ('FR');
SELECT tenant_isolation.create_tenant('tenant a', id => '$tenant_a');
SELECT tenant_isolation.create_tenant('tenant b', id => '$tenant_b');
INSERT INTO docs VALUES
	('$tenant_a', 1, 'a-one'), ('$tenant_a', 2, 'a-two'),
	('$tenant_b', 1, 'B-SECRET one'), ('$tenant_b', 2, 'B-SECRET two');
INSERT INTO parts VALUES
	('$tenant_a', 1, 'a-part'), ('$tenant_b', 1, 'B-SECRET part');
SELECT tenant_isolation.protect_table('docs');
SELECT tenant_isolation.protect_table('parts');
SELECT tenant_isolation.mark_global('countries');
SELECT tenant_isolation.add_template_table('notes');
SELECT tenant_isolation.create_tenant('tenant c', 'schema', id => '$tenant_c');
INSERT INTO $schema_c.notes VALUES (1, 'C-note');
SELECT tenant_isolation.add_jwt_key('k1', 'HS256', '$secret');
SELECT tenant_isolation.set_tenant_setting('$tenant_a', 'color', '"red"');
SELECT tenant_isolation.set_tenant_setting(NULL, 'beta', 'true');
SELECT tenant_isolation.set_tenant_placement('$tenant_b', 'eu-1');
});

# Everything of the extension's catalogs, as the superuser sees it.
my $catalog_sql = q{
SELECT 'tenant ' || concat_ws(' ', id, name, tier, status, schema_name, placement)
  FROM tenant_isolation.tenants
UNION ALL
SELECT 'protected ' || "table" || ' ' || tenant_column FROM tenant_isolation.protected_tables
UNION ALL
SELECT 'global ' || "table" FROM tenant_isolation.global_tables
UNION ALL
SELECT 'template ' || tbl FROM tenant_isolation.template_table
UNION ALL
SELECT 'jwt ' || concat_ws(' ', kid, alg, issuer, audience, fingerprint) FROM tenant_isolation.jwt_keys
UNION ALL
SELECT 'setting ' || concat_ws(' ', coalesce(tenant::text, 'default'), key, value)
  FROM tenant_isolation.tenant_settings
ORDER BY 1};

# The pieces of the protection on every protected table and partition.
my $protection_sql = q{
SELECT c.oid::regclass || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
	   || ' guard=' || EXISTS (SELECT 1 FROM pg_trigger t
								WHERE t.tgrelid = c.oid AND t.tgname = 'tenant_isolation_guard'
								  AND t.tgenabled = 'O')
	   || ' fallback=' || EXISTS (SELECT 1 FROM pg_policy p
								   WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation_fallback')
	   || ' default=' || coalesce((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
									JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
								   WHERE d.adrelid = c.oid AND a.attname = 'tenant_id'), 'none')
  FROM pg_class c
 WHERE c.relname IN ('docs', 'parts', 'parts_0', 'parts_1') AND c.relnamespace = 'public'::regnamespace
ORDER BY 1};

my $data_sql = q{
SELECT 'docs ' || string_agg(tenant_id || ':' || body, ',' ORDER BY tenant_id, id) FROM docs
UNION ALL
SELECT 'parts ' || string_agg(tenant_id || ':' || body, ',' ORDER BY tenant_id, id) FROM parts
UNION ALL
SELECT 'notes ' || string_agg(note, ',') FROM tenant_cccccccccccc4ccc8ccccccccccccccc.notes};

my $src_catalog = $node->safe_psql('src', $catalog_sql);
my $src_protection = $node->safe_psql('src', $protection_sql);
my $src_data = $node->safe_psql('src', $data_sql);
like($src_catalog, qr/jwt k1 HS256/, 'source: catalogs populated');
is(scalar(() = $src_protection =~ /rls=true force=true guard=true fallback=true/g),
	4, 'source: protection on the table, the partitioned table and its partitions');

# --- a superuser's dump
my $dump = "$tmp/src.dump";
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump -Fc by the superuser');

my ($toc, $toc_err) = ('', '');
IPC::Run::run([ 'pg_restore', '-l', $dump ], '>', \$toc, '2>', \$toc_err);
like($toc, qr/EXTENSION - tenant_isolation/,
	'the dump creates the extension itself');
like($toc, qr/TABLE DATA tenant_isolation jwt_key/,
	'the dump holds the extension catalogs (JWT keys included)');

# check_restored(NODE, DB, LABEL): the restored database matches the source
# and is protected.
sub check_restored
{
	my ($n, $db, $label) = @_;

	is($n->safe_psql($db,
			"SELECT extversion FROM pg_extension WHERE extname = 'tenant_isolation'"),
		$n->safe_psql($db,
			"SELECT default_version FROM pg_available_extensions WHERE name = 'tenant_isolation'"),
		"$label: the extension is installed");
	is($n->safe_psql($db, $catalog_sql), $src_catalog,
		"$label: tenants, tables, templates, JWT keys, settings came back");
	is($n->safe_psql($db, $protection_sql), $src_protection,
		"$label: guard trigger, fallback policy, forced RLS and default on every table and partition");
	is($n->safe_psql($db, $data_sql), $src_data,
		"$label: every row came back");
	is( $n->safe_psql(
			$db,
			"SELECT count(*) FROM pg_event_trigger WHERE evtname = 'tenant_isolation_sql_drop'"
		),
		'1',
		"$label: the extension's event trigger exists");

	my ($ret, $out, $err) = $n->psql($db, 'SELECT count(*) FROM docs',
		extra_params => [ '-U', 'regress_app' ]);
	isnt($ret, 0, "$label: regress_app without a context cannot read docs");
	like($err, qr/no tenant context for table "docs"/,
		"$label: ... and is told there is no tenant context");
	($ret, $out, $err) = $n->psql($db, 'SELECT count(*) FROM parts_1',
		extra_params => [ '-U', 'regress_app' ]);
	like($err, qr/no tenant context for table "parts_1"/,
		"$label: a partition read directly is refused too");

	($ret, $out, $err) = $n->psql(
		$db, qq{
SELECT tenant_isolation.login('$token_a');
SELECT string_agg(body, ',' ORDER BY id) FROM docs;
SELECT string_agg(body, ',' ORDER BY id) FROM parts;
SELECT tenant_isolation.tenant_setting('color'), tenant_isolation.feature_enabled('beta');
SELECT count(*) FROM countries;
},
		extra_params => [ '-U', 'regress_app' ]);
	is($out, "$tenant_a\na-one,a-two\na-part\n\"red\"|t\n2",
		"$label: the restored key verifies a token; tenant a sees its rows and settings only"
	) or diag($err);

	($ret, $out, $err) = $n->psql(
		$db, qq{
SELECT tenant_isolation.login('$token_a');
INSERT INTO docs VALUES ('$tenant_b', 9, 'forged');
},
		extra_params => [ '-U', 'regress_app', '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/ERROR:  42501/,
		"$label: the guard trigger refuses a row of another tenant");

	($ret, $out, $err) = $n->psql(
		$db, qq{
SELECT tenant_isolation.login('$token_c');
SELECT current_user, string_agg(note, ',') FROM notes GROUP BY 1;
},
		extra_params => [ '-U', 'regress_app' ]);
	is($out, "$tenant_c\n$schema_c|C-note",
		"$label: the schema-tier tenant logs in and reads its own schema")
	  or diag($err);
}

# --- restore into an empty database of the same cluster
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
	'pg_restore into an empty database');
check_restored($node, 'dst', 'restored');

# The event trigger works after the restore: dropping a protected table
# removes its catalog row.
$node->safe_psql('dst', 'DROP TABLE docs');
is( $node->safe_psql(
		'dst',
		"SELECT count(*) FROM tenant_isolation.protected_tables WHERE \"table\"::text = 'docs'"
	),
	'0',
	'restored: dropping a protected table removes it from the catalog');

# --- parallel restore
$node->safe_psql('postgres', 'CREATE DATABASE dst_parallel');
$node->command_ok(
	[
		'pg_restore', '--exit-on-error', '-j', '3', '-d',
		$node->connstr('dst_parallel'), $dump
	],
	'pg_restore -j 3 into an empty database');
check_restored($node, 'dst_parallel', 'parallel restore');

# --- pg_restore --clean over a database that already holds the protected
# tables: the DROP POLICY / DROP TRIGGER statements that pg_restore issues
# for the protection's own pieces are refused by the extension (errors that
# pg_restore reports and, without --exit-on-error, skips); the tables are
# then dropped and recreated, and protection is in force afterwards.
{
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pg_restore', '--clean', '--if-exists', '-d',
			$node->connstr('dst_parallel'), $dump
		],
		'>', \$out, '2>', \$err);
	note("pg_restore --clean exit status " . ($? >> 8) . ":\n$err");
	check_restored($node, 'dst_parallel', 'restore --clean over itself');
}

# --- another cluster: the roles must exist first
my $node2 = PostgreSQL::Test::Cluster->new('restore_target');
$node2->init;
$node2->append_conf('postgresql.conf',
	"shared_preload_libraries = 'tenant_isolation'");
$node2->start;

$node2->safe_psql('postgres', 'CREATE DATABASE noroles');
{
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pg_restore', '--exit-on-error', '-d',
			$node2->connstr('noroles'), $dump
		],
		'>', \$out, '2>', \$err);
	isnt($? >> 8, 0,
		'other cluster without the roles: pg_restore --exit-on-error fails');
	like($err, qr/role "[^"]+" does not exist/,
		'... because roles of the dump (owners, grantees, tenant roles) do not exist');
}

my $globals = "$tmp/globals.sql";
$node->command_ok(
	[
		'pg_dumpall', '--globals-only', '-f', $globals, '-d',
		$node->connstr('postgres')
	],
	'pg_dumpall --globals-only');
# The bootstrap superuser exists already: that one error is expected.
IPC::Run::run(
	[ 'psql', '-X', '-q', '-d', $node2->connstr('postgres'), '-f', $globals ],
	'>', \my $gout, '2>', \my $gerr);
like($gerr // '', qr/^(psql:[^\n]*ERROR:  role "[^"]+" already exists\n)?$/,
	'other cluster: the globals restore (only the bootstrap superuser existed)');
is($node2->safe_psql('postgres',
		"SELECT count(*) FROM pg_roles WHERE rolname IN ('regress_app', 'tenant_isolation_admin', 'tenant_isolation_login', '$schema_c')"
	),
	'4',
	'other cluster: the roles exist after the globals are restored');
$node2->safe_psql('postgres', 'CREATE DATABASE dst');
$node2->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node2->connstr('dst'), $dump ],
	'other cluster: pg_restore after the globals');
check_restored($node2, 'dst', 'other cluster');
$node2->stop;

# --- schema-filtered dumps.  The schema tenant_isolation is not a member of
# the extension (CREATE EXTENSION creates it from the control file), and a
# dump with -n includes no extension unless asked: -n public alone carries
# neither the extension nor its catalogs.
{
	my $part = "$tmp/public_only.dump";
	$node->command_ok(
		[
			'pg_dump', '-Fc', '-n', 'public', '-n', 'tenant_isolation', '-e',
			'tenant_isolation', '-f', $part, '-d', $node->connstr('src')
		],
		'pg_dump -n public -n tenant_isolation -e tenant_isolation');
	$node->safe_psql('postgres', 'CREATE DATABASE dst_schemas');
	# "schema public already exists" is the one expected error.
	IPC::Run::run([ 'pg_restore', '-d', $node->connstr('dst_schemas'), $part ],
		'>', \my $o1, '2>', \my $e1);
	unlike($e1 // '', qr/ERROR:  (?!schema "public" already exists)/,
		'schema-filtered dump with the extension restores (only "public exists")');
	my $cat = $node->safe_psql('dst_schemas', $catalog_sql);
	is($cat, $src_catalog,
		'schema-filtered dump with the extension: the catalogs came back');
	is($node->safe_psql('dst_schemas', $protection_sql), $src_protection,
		'schema-filtered dump with the extension: protection complete');

	my $bare = "$tmp/public_bare.dump";
	$node->command_ok(
		[ 'pg_dump', '-Fc', '-n', 'public', '-f', $bare, '-d', $node->connstr('src') ],
		'pg_dump -n public (without the extension)');
	$node->safe_psql('postgres', 'CREATE DATABASE dst_bare');
	$node->safe_psql('dst_bare', 'CREATE EXTENSION tenant_isolation');
	IPC::Run::run([ 'pg_restore', '-d', $node->connstr('dst_bare'), $bare ],
		'>', \my $o2, '2>', \my $e2);
	is($node->safe_psql('dst_bare',
			'SELECT count(*) FROM tenant_isolation.protected_tables'),
		'0', '-n public alone: the tables come back unregistered');
	my ($r, $out, $err) = $node->psql('dst_bare', 'SELECT count(*) FROM docs',
		extra_params => [ '-U', 'regress_app' ]);
	is($out, '0',
		'-n public alone: they stay closed (deny-all fallback), not open');
}

# --- dumps by roles that are not superusers
sub dump_as
{
	my ($role, @opts) = @_;
	my $file = "$tmp/dump_$role.sql";
	unlink $file;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pg_dump', '-U', $role, @opts, '-f', $file, '-d',
			$node->connstr('src')
		],
		'>', \$out, '2>', \$err);
	my $ret = $? >> 8;
	my $content = -f $file ? slurp_file($file) : '';
	return ($ret, $err, $content);
}

my ($ret, $err, $content) = dump_as('regress_app', '-t', 'docs');
isnt($ret, 0, 'pg_dump of a protected table by an ordinary role fails');
like($err, qr/no tenant context for table "docs"/,
	'... clearly: there is no tenant context');
unlike($content, qr/B-SECRET|a-one/, '... and the partial output holds no row');

($ret, $err, $content) = dump_as('regress_app');
isnt($ret, 0, 'pg_dump of the whole database by an ordinary role fails');
unlike($content, qr/B-SECRET|a-one/, '... without any protected row');

($ret, $err, $content) = dump_as('regress_app', '-t', 'docs', '--enable-row-security');
isnt($ret, 0, 'pg_dump --enable-row-security by an ordinary role fails');
like($err, qr/no tenant context for table "docs"/,
	'... with the no-context error');

($ret, $err, $content) = dump_as('regress_app', '-t', 'docs', '--inserts');
isnt($ret, 0, 'pg_dump --inserts by an ordinary role fails');
like($err, qr/row-level security|no tenant context/,
	'... refused by row level security (pg_dump sets row_security = off)');
unlike($content, qr/B-SECRET|a-one/, '... without any protected row');

($ret, $err, $content) = dump_as('regress_admin', '-t', 'docs');
isnt($ret, 0,
	'pg_dump by a member of tenant_isolation_admin (not a superuser) fails');
like($err, qr/no tenant context for table "docs"/,
	'... backups of protected tables need a superuser');

$node->stop;
done_testing();
