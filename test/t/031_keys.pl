
# Copyright (c) 2026, tenant_isolation developers

# Per-tenant encryption keys across restarts (docs/keys.md).
#
# - Without a master key, or with a missing, group-readable or malformed key
#   file, a failing or conflicting command: the server starts, the log says
#   why (never the key), key functions fail with 55000, the rest works.
# - Cached keys of other backends follow rotation and crypto-shredding.
# - Master key rotation: new key first, old key second, restart,
#   rotate_master_key(), restart with the new key only.  With the old key
#   only (a stolen backup plus a retired master key) nothing decrypts.
# - master_key_command gives the same result as the file.

use strict;
use warnings;

use MIME::Base64;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $tenant_a = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
my $tenant_b = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

sub random_key
{
	open my $fh, '<:raw', '/dev/urandom' or die "cannot open /dev/urandom: $!";
	read($fh, my $bytes, 32) == 32 or die "short read from /dev/urandom";
	close $fh;
	return $bytes;
}

my $k1 = random_key();
my $k2 = random_key();
my $k1_hex = unpack('H*', $k1);
my $k2_hex = unpack('H*', $k2);
my $k2_b64 = encode_base64($k2, '');

my $node = PostgreSQL::Test::Cluster->new('keys');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'tenant_isolation'");
my $dir = $node->basedir;

sub write_file
{
	my ($name, $mode, $content) = @_;
	my $path = "$dir/$name";
	open my $fh, '>', $path or die "cannot write $path: $!";
	print $fh $content;
	close $fh;
	chmod $mode, $path;
	return $path;
}

# Restart with these key settings; returns the log offset before the start.
sub restart_with
{
	my ($file, $command) = @_;
	$node->append_conf('postgresql.conf',
		"tenant_isolation.master_key_file = '$file'\n"
		  . "tenant_isolation.master_key_command = '$command'\n");
	my $offset = -s $node->logfile;
	$node->restart;
	return $offset;
}

# Run SQL; returns (exit code, stdout, stderr).
sub run
{
	my ($sql) = @_;
	my ($ret, $stdout, $stderr) =
	  $node->psql('postgres', $sql, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($ret, $stdout, $stderr);
}

my ($ret, $stdout, $stderr, $offset);

# --- no master key configured
$node->start;
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION tenant_isolation;
SELECT tenant_isolation.create_tenant('tenant a', id => '$tenant_a');
SELECT tenant_isolation.create_tenant('tenant b', id => '$tenant_b');
CREATE TABLE ct (label text PRIMARY KEY, data bytea);
});

($ret, $stdout, $stderr) = run(qq{
SELECT tenant_isolation.assume_tenant('$tenant_a', 'tap');
SELECT tenant_isolation.encrypt('x');});
isnt($ret, 0, 'no master key: encrypt fails');
like($stderr, qr/55000: tenant_isolation master key is not loaded/,
	'no master key: 55000 and a clear message');
is( $node->safe_psql(
		'postgres',
		"SELECT tenant_isolation.assume_tenant('$tenant_a', 'tap'); SELECT tenant_isolation.current_tenant()"
	),
	"\n$tenant_a",
	'no master key: everything else works');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.master_key_id() IS NULL'),
	't', 'no master key: master_key_id() is NULL');

# --- bad configurations: the server starts, the log says why
my $good = write_file('k1.key', 0600, "# tenant_isolation master key\n$k1_hex\n");
my $open = write_file('open.key', 0640, "$k1_hex\n");
my $junk = write_file('junk.key', 0600, "$k1_hex\nnot a key at all\n");
my $short = write_file('short.key', 0600, substr($k1_hex, 0, 62) . "\n");

my @bad = (
	[ $open, '', qr/master key file "\Q$open\E" has group or world access/,
		'group-readable file' ],
	[ $junk, '', qr/line 2 is not a 32-byte key in hex/, 'malformed file' ],
	[ $short, '', qr/line 1 is not a 32-byte key/, 'short key' ],
	[ "$dir/missing.key", '', qr/could not open master key file/,
		'missing file' ],
	[ $good, "cat $good", qr/both tenant_isolation.master_key_file and tenant_isolation.master_key_command are set/,
		'file and command' ],
	[ '', 'exit 3', qr/master_key_command failed: child process exited with exit code 3/,
		'failing command' ],
	[ '', 'true', qr/no key found/, 'empty command output' ]);
foreach my $case (@bad)
{
	my ($file, $command, $re, $name) = @$case;
	$offset = restart_with($file, $command);
	ok($node->log_contains(qr/WARNING:  tenant_isolation: master key not loaded: $re/, $offset),
		"$name: WARNING in the log");
	($ret, $stdout, $stderr) = run(qq{
SELECT tenant_isolation.assume_tenant('$tenant_a', 'tap');
SELECT tenant_isolation.encrypt('x');});
	like($stderr, qr/55000: tenant_isolation master key is not loaded/,
		"$name: server up, key functions fail with 55000");
}

# --- a good key file
$offset = restart_with($good, '');
ok($node->log_contains(qr/LOG:  tenant_isolation: 1 master key\(s\) loaded, active key id [0-9a-f]{32}/, $offset),
	'key file: loaded');
my $id1 = $node->safe_psql('postgres', 'SELECT tenant_isolation.master_key_id()');
like($id1, qr/^[0-9a-f]{32}$/, 'key file: master_key_id() is a 32-digit hex id');

$node->safe_psql(
	'postgres', qq{
SELECT tenant_isolation.assume_tenant('$tenant_a', 'tap');
INSERT INTO ct VALUES ('a1', tenant_isolation.encrypt('alpha one'));
});

# --- other backends follow rotation and crypto-shredding
my $s1 = $node->background_psql('postgres', on_error_stop => 0);
$s1->query_safe("SELECT tenant_isolation.assume_tenant('$tenant_b', 'tap')");
$s1->query_safe(
	"INSERT INTO ct VALUES ('b1', tenant_isolation.encrypt('B-SECRET one'))");
is($s1->query_safe("SELECT tenant_isolation.decrypt_text(data) FROM ct WHERE label = 'b1'"),
	'B-SECRET one', 'session 1 decrypts B data (key cached)');

$node->safe_psql('postgres', "SELECT tenant_isolation.rotate_tenant_key('$tenant_b')");
is($s1->query_safe("SELECT encode(substr(tenant_isolation.encrypt('x'), 3, 4), 'hex')"),
	'00000002', 'session 1 encrypts with the version another session made active');
is($s1->query_safe("SELECT tenant_isolation.decrypt_text(data) FROM ct WHERE label = 'b1'"),
	'B-SECRET one', 'session 1 still decrypts the retired version');

$node->safe_psql('postgres', "SELECT tenant_isolation.drop_tenant('$tenant_b', force => true)");
($stdout, $ret) = $s1->query("SELECT tenant_isolation.decrypt_text(data) FROM ct WHERE label = 'b1'");
like($s1->{stderr}, qr/could not decrypt data/,
	'after drop_tenant in another session, session 1 cannot decrypt (keys shredded)');
unlike($stdout, qr/B-SECRET/, 'no plaintext of the dropped tenant');
$s1->{stderr} = '';
$s1->quit;

# --- master key rotation: new key first, the previous one after it
write_file('k2k1.key', 0600, "$k2_b64\n$k1_hex\n");
$offset = restart_with("$dir/k2k1.key", '');
ok($node->log_contains(qr/2 master key\(s\) loaded/, $offset),
	'rotation: both master keys loaded');
my $id2 = $node->safe_psql('postgres', 'SELECT tenant_isolation.master_key_id()');
isnt($id2, $id1, 'rotation: the active master key changed');
is( $node->safe_psql(
		'postgres', qq{
SELECT tenant_isolation.assume_tenant('$tenant_a', 'tap');
SELECT tenant_isolation.decrypt_text(data) FROM ct WHERE label = 'a1';}),
	"\nalpha one",
	'rotation: data keys wrapped with the previous master key still unwrap');
is($node->safe_psql('postgres', 'SELECT DISTINCT master_key_id FROM tenant_isolation.tenant_keys'),
	$id1, 'rotation: before rotate_master_key() every data key names the old master key');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.rotate_master_key()'),
	'1', 'rotation: rotate_master_key() rewraps every data key');
is($node->safe_psql('postgres', 'SELECT DISTINCT master_key_id FROM tenant_isolation.tenant_keys'),
	$id2, 'rotation: every data key now names the new master key');

# new key only
write_file('k2.key', 0600, "$k2_hex\n");
restart_with("$dir/k2.key", '');
is( $node->safe_psql(
		'postgres', qq{
SELECT tenant_isolation.assume_tenant('$tenant_a', 'tap');
SELECT tenant_isolation.decrypt_text(data) FROM ct WHERE label = 'a1';}),
	"\nalpha one",
	'rotation: the new master key alone decrypts everything');

# the retired master key alone decrypts nothing
restart_with($good, '');
($ret, $stdout, $stderr) = run(qq{
SELECT tenant_isolation.assume_tenant('$tenant_a', 'tap');
SELECT tenant_isolation.decrypt_text(data) FROM ct WHERE label = 'a1';});
like($stderr, qr/55000: key version 1 of tenant $tenant_a is wrapped with a master key that is not loaded/,
	'old master key only: data keys do not unwrap');
unlike($stdout, qr/alpha/, 'old master key only: no plaintext');

# --- the command gives the same key
restart_with('', "cat $dir/k2.key");
is( $node->safe_psql(
		'postgres', qq{
SELECT tenant_isolation.assume_tenant('$tenant_a', 'tap');
SELECT tenant_isolation.decrypt_text(data) FROM ct WHERE label = 'a1';}),
	"\nalpha one",
	'master_key_command: decrypts with the key it printed');

# --- no key material in the log, ever
my $log = slurp_file($node->logfile);
my $leaks = 0;
foreach my $secret ($k1_hex, $k2_hex, $k2_b64, substr($k1_hex, 0, 16),
	substr($k2_hex, 0, 16))
{
	$leaks++ if index(lc($log), lc($secret)) >= 0;
}
is($leaks, 0, 'no master key bytes in the server log');

$node->stop;
done_testing();
