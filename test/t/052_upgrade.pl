
# Copyright (c) 2026, tenant_isolation developers

# Upgrades: ALTER EXTENSION tenant_isolation UPDATE from every installable
# version to the newest one keeps the data and the protection.
#
# For each version listed by pg_available_extension_versions that has an
# update path to the default version, a database gets the extension at that
# version (run by the newest library, as after a package upgrade), tenants
# of both tiers (a schema-tier tenant with a template table and rows in its
# schema), a protected table (and a partitioned one), a JWT key, a global
# table, settings and per-tenant encryption keys with data encrypted under
# them; then ALTER EXTENSION ... UPDATE.  Afterwards
# the catalogs hold the same rows, an ordinary role without a context is
# refused with 42501, a token logs in and sees only its tenant's rows, the
# guard trigger still refuses a foreign row, and the set of member objects
# of the extension is exactly that of a fresh CREATE EXTENSION of the newest
# version (an upgrade script that forgets an object, or leaves one behind,
# fails here).  After the update: the schema-tier tenant logs in and sees its
# schema, data encrypted before decrypts, a migration runs per tenant as the
# tenant's role, the 1.0 internal DDL switch is gone, and a member of
# tenant_isolation_admin (not a superuser) provisions without becoming one
# (issue 15).

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

my $tenant_s = '5c5c5c5c-5c5c-45c5-85c5-5c5c5c5c5c5c';
my $schema_s = 'tenant_5c5c5c5c5c5c45c585c55c5c5c5c5c5c';

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $masterfile = "$tmp/master.key";
open(my $mf, '>', $masterfile) or die "$masterfile: $!";
print $mf join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32), "\n";
close($mf);
chmod 0600, $masterfile;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'tenant_isolation'\n"
	  . "tenant_isolation.master_key_file = '$masterfile'\n");
$node->start;

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

my $token_s = mint(qq({"tenant_id":"$tenant_s","sub":"sam","exp":NOW+3600}));

$node->safe_psql('postgres', 'CREATE ROLE regress_app LOGIN');
$node->safe_psql('postgres', 'CREATE ROLE regress_admin LOGIN');

my $default = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'tenant_isolation'"
);
ok($default ne '', "default version is $default");

my @versions = split /\n/,
  $node->safe_psql(
	'postgres', qq{
SELECT version FROM pg_available_extension_versions
 WHERE name = 'tenant_isolation' ORDER BY version});
ok(scalar(@versions) >= 1, 'installable versions: ' . join(', ', @versions));

# Member objects of the extension in a database, with a digest of each
# function's definition, one per line.
sub members
{
	my ($db) = @_;
	return $node->safe_psql(
		$db, q{
SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
	   || CASE WHEN d.classid = 'pg_proc'::regclass
			   THEN ' ' || md5(pg_get_functiondef(d.objid)) ELSE '' END
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND e.extname = 'tenant_isolation'
 ORDER BY 1});
}

# The reference: a fresh install of the newest version.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION tenant_isolation');
my $fresh_members = members('fresh');
ok($fresh_members =~ /function tenant_isolation\.login\(text\)/,
	'a fresh install lists its member objects');

# What a database holds before the update, through the 1.0 interface.
my $populate = qq{
CREATE TABLE docs (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text,
	PRIMARY KEY (tenant_id, id)
);
CREATE TABLE events (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text
) PARTITION BY LIST (tenant_id);
CREATE TABLE events_a PARTITION OF events FOR VALUES IN ('$tenant_a');
CREATE TABLE events_b PARTITION OF events FOR VALUES IN ('$tenant_b');
CREATE TABLE countries (code text PRIMARY KEY);
GRANT SELECT, INSERT, UPDATE, DELETE ON docs, events TO regress_app;
GRANT SELECT ON countries TO regress_app;
INSERT INTO countries VALUES ('DE'), ('FR');
SELECT tenant_isolation.create_tenant('tenant a', id => '$tenant_a');
SELECT tenant_isolation.create_tenant('tenant b', id => '$tenant_b');
INSERT INTO docs VALUES
	('$tenant_a', 1, 'a-one'), ('$tenant_a', 2, 'a-two'),
	('$tenant_b', 1, 'B-SECRET one'), ('$tenant_b', 2, 'B-SECRET two');
INSERT INTO events VALUES ('$tenant_a', 1, 'a-event'), ('$tenant_b', 1, 'B-SECRET event');
SELECT tenant_isolation.protect_table('docs');
SELECT tenant_isolation.protect_table('events');
SELECT tenant_isolation.mark_global('countries');
SELECT tenant_isolation.add_jwt_key('k1', 'HS256', '$secret');
-- the schema tier: a template, a tenant with its own schema and rows in it
CREATE TABLE widgets (tenant_id uuid NOT NULL, id int NOT NULL, name text, PRIMARY KEY (tenant_id, id));
SELECT tenant_isolation.protect_table('widgets');
SELECT tenant_isolation.add_template_table('widgets');
SELECT tenant_isolation.create_tenant('tenant s', 'schema', '$tenant_s');
INSERT INTO $schema_s.widgets VALUES ('$tenant_s', 1, 's-widget');
GRANT tenant_isolation_login TO regress_app;
GRANT tenant_isolation_admin TO regress_admin;
-- per-tenant keys, and data encrypted under them
CREATE TABLE secrets (tenant_id uuid NOT NULL, id int NOT NULL, v bytea);
SELECT tenant_isolation.protect_table('secrets');
GRANT SELECT ON secrets TO regress_app;
SELECT tenant_isolation.assume_tenant('$tenant_a', 'upgrade test');
INSERT INTO secrets (id, v) VALUES (1, tenant_isolation.encrypt('a-secret'));
SELECT tenant_isolation.rotate_tenant_key('$tenant_a');
INSERT INTO secrets (id, v) VALUES (2, tenant_isolation.encrypt('a-secret-2'));
SELECT tenant_isolation.logout();
SELECT tenant_isolation.assume_tenant('$tenant_b', 'upgrade test');
INSERT INTO secrets (id, v) VALUES (1, tenant_isolation.encrypt('B-SECRET key'));
SELECT tenant_isolation.logout();
SELECT tenant_isolation.set_tenant_setting('$tenant_a', 'color', '"blue"');
SELECT tenant_isolation.suspend_tenant('$tenant_b');
};

# Catalog contents that must survive the update unchanged.
my $catalog_sql = q{
SELECT 'tenant ' || id || ' ' || name || ' ' || tier || ' ' || status
  FROM tenant_isolation.tenants
UNION ALL
SELECT 'protected ' || "table" || ' ' || tenant_column FROM tenant_isolation.protected_tables
UNION ALL
SELECT 'global ' || "table" FROM tenant_isolation.global_tables
UNION ALL
SELECT 'jwt ' || kid || ' ' || alg || ' ' || fingerprint FROM tenant_isolation.jwt_keys
UNION ALL
SELECT 'schema ' || name || ' ' || coalesce(schema_name, '-') FROM tenant_isolation.tenants
UNION ALL
SELECT 'template ' || tbl FROM tenant_isolation.template_table
UNION ALL
SELECT 'key ' || tenant || ' ' || version || ' ' || state || ' ' || master_key_id
  FROM tenant_isolation.tenant_keys
UNION ALL
SELECT 'setting ' || coalesce(tenant::text, '-') || ' ' || key || ' ' || value
  FROM tenant_isolation.tenant_settings
UNION ALL
SELECT 'schema table ' || c.oid::regclass || ' ' || pg_get_userbyid(c.relowner)
  FROM pg_class c WHERE c.relnamespace::regnamespace::text LIKE 'tenant\_%'
UNION ALL
SELECT 'guard ' || tgrelid::regclass FROM pg_trigger WHERE tgname = 'tenant_isolation_guard'
UNION ALL
SELECT 'fallback ' || polrelid::regclass FROM pg_policy WHERE polname = 'tenant_isolation_fallback'
UNION ALL
SELECT 'rls ' || oid::regclass || ' ' || relrowsecurity || ' ' || relforcerowsecurity
  FROM pg_class WHERE relname IN ('docs', 'events', 'events_a', 'events_b')
ORDER BY 1};

my $n = 0;
for my $from (@versions)
{
	my $has_path = $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM pg_extension_update_paths('tenant_isolation')
 WHERE source = '$from' AND target = '$default'
   AND (path IS NOT NULL OR source = target)});
	# A version equal to the default has the trivial path.
	if ($from ne $default && $has_path eq '0')
	{
		note("no update path from $from to $default; skipped");
		next;
	}
	$n++;
	my $db = "up_$n";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db,
		"CREATE EXTENSION tenant_isolation VERSION '$from'");
	is($node->safe_psql($db,
			"SELECT extversion FROM pg_extension WHERE extname = 'tenant_isolation'"),
		$from, "$from: installed");
	$node->safe_psql($db, $populate);
	my $before = $node->safe_psql($db, $catalog_sql);
	my $rows_before = $node->safe_psql($db,
		'SELECT string_agg(tenant_id || body, \',\' ORDER BY tenant_id, id) FROM docs');

	my ($ret, $out, $err) =
	  $node->psql($db, 'ALTER EXTENSION tenant_isolation UPDATE');
	is($ret, 0, "$from -> $default: ALTER EXTENSION UPDATE runs")
	  or diag($err);
	is($node->safe_psql($db,
			"SELECT extversion FROM pg_extension WHERE extname = 'tenant_isolation'"),
		$default, "$from -> $default: now at $default");

	is($node->safe_psql($db, $catalog_sql),
		$before, "$from -> $default: catalogs, triggers, policies unchanged");
	is( $node->safe_psql(
			$db,
			'SELECT string_agg(tenant_id || body, \',\' ORDER BY tenant_id, id) FROM docs'
		),
		$rows_before,
		"$from -> $default: the superuser without a context sees every row");
	is(members($db), $fresh_members,
		"$from -> $default: the member objects are those of a fresh install");

	# Protection in force.
	($ret, $out, $err) = $node->psql($db, 'SELECT count(*) FROM docs',
		extra_params => [ '-U', 'regress_app' ]);
	like($err, qr/no tenant context for table "docs"/,
		"$from -> $default: no context, regress_app is refused");
	($ret, $out, $err) = $node->psql($db, 'SELECT count(*) FROM events_b',
		extra_params => [ '-U', 'regress_app' ]);
	like($err, qr/no tenant context for table "events_b"/,
		"$from -> $default: a partition is refused too");

	($ret, $out, $err) = $node->psql(
		$db, qq{
SELECT tenant_isolation.login('$token_a');
SELECT string_agg(body, ',' ORDER BY id) FROM docs;
SELECT string_agg(body, ',' ORDER BY id) FROM events;
SELECT tenant_isolation.current_user_id();
SELECT count(*) FROM countries;
},
		extra_params => [ '-U', 'regress_app' ]);
	is($out, "$tenant_a\na-one,a-two\na-event\nalice\n2",
		"$from -> $default: a token logs in and sees only its tenant's rows");
	unlike($out, qr/B-SECRET/, "$from -> $default: nothing of tenant b");

	($ret, $out, $err) = $node->psql(
		$db, qq{
SELECT tenant_isolation.login('$token_a');
INSERT INTO docs VALUES ('$tenant_b', 9, 'forged');
},
		extra_params => [ '-U', 'regress_app', '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/ERROR:  42501/,
		"$from -> $default: writing a row of another tenant is refused");

	my $token_b = mint(qq({"tenant_id":"$tenant_b","sub":"bob","exp":NOW+3600}));
	($ret, $out, $err) = $node->psql($db,
		"SELECT tenant_isolation.login('$token_b')",
		extra_params => [ '-U', 'regress_app' ]);
	like($err, qr/tenant suspended/,
		"$from -> $default: the suspended tenant still cannot log in");

	# The schema tier and the keys still hold.
	($ret, $out, $err) = $node->psql(
		$db, qq{
SELECT tenant_isolation.login('$token_s');
SELECT current_user, id, name FROM widgets;
},
		extra_params => [ '-U', 'regress_app' ]);
	is($out, "$tenant_s\n$schema_s|1|s-widget",
		"$from -> $default: the schema-tier tenant logs in and sees its schema")
	  or diag($err);
	($ret, $out, $err) = $node->psql(
		$db, qq{
SELECT tenant_isolation.login('$token_a');
SELECT string_agg(tenant_isolation.decrypt_text(v), ',' ORDER BY id) FROM secrets;
SELECT tenant_isolation.tenant_setting('color');
},
		extra_params => [ '-U', 'regress_app' ]);
	is($out, "$tenant_a\na-secret,a-secret-2\n\"blue\"",
		"$from -> $default: data encrypted before the update decrypts, settings hold")
	  or diag($err);
	unlike($out, qr/B-SECRET/, "$from -> $default: no key or row of tenant b");

	# Provisioning after the update (issue 15).
	is($node->safe_psql($db,
			"SELECT count(*) FROM pg_proc WHERE proname = '_internal_ddl'"),
		'0', "$from -> $default: the internal DDL switch is not callable from SQL");
	($ret, $out, $err) = $node->psql(
		$db,
		"SELECT * FROM tenant_isolation.migrate_tenant_schemas('ALTER ROLE regress_admin SUPERUSER')",
		extra_params => [ '-U', 'regress_admin' ]);
	like($err, qr/must be superuser/,
		"$from -> $default: an admin's migration runs with the admin's rights");
	is($node->safe_psql($db,
			"SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_admin'"),
		'f', "$from -> $default: the admin is no superuser");
	$node->safe_psql($db,
		"SELECT * FROM tenant_isolation.migrate_tenant_schemas('ALTER TABLE widgets ADD COLUMN n$n int; CREATE TABLE made_$n (x int)')");
	is($node->safe_psql($db, qq{
SELECT string_agg(c.relname || ':' || pg_get_userbyid(c.relowner), ',' ORDER BY c.relname)
  FROM pg_class c WHERE c.relnamespace = '$schema_s'::regnamespace AND c.relkind = 'r'
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = '$schema_s.widgets'::regclass
				AND a.attname = 'n$n')}),
		"made_$n:$schema_s,widgets:$schema_s",
		"$from -> $default: a migration runs in the tenant schema as its role");
	($ret, $out, $err) = $node->psql(
		$db, qq{
SELECT tenant_isolation.drop_tenant('$tenant_b');
SELECT tenant_isolation.create_tenant('tenant t', 'schema');
},
		extra_params => [ '-U', 'regress_admin' ]);
	is($ret, 0, "$from -> $default: an admin drops and creates tenants")
	  or diag($err);
	is($node->safe_psql($db, qq{
SELECT (SELECT count(*) FROM docs WHERE tenant_id = '$tenant_b')
	 + (SELECT count(*) FROM events WHERE tenant_id = '$tenant_b')
	 + (SELECT count(*) FROM secrets WHERE tenant_id = '$tenant_b')
	 || ' ' || (SELECT count(*) FROM docs WHERE tenant_id = '$tenant_a')
	 || ' ' || (SELECT count(*) FROM tenant_isolation.tenant_keys WHERE tenant = '$tenant_b')}),
		'0 2 0', "$from -> $default: drop_tenant removed b's rows and keys, not a's");
}
ok($n >= 1, "updated from $n version(s)");

$node->stop;
done_testing();
