
# Copyright (c) 2026, tenant_isolation developers

# docs/reference.md documents every function, view and setting of the
# installed extension: test/scripts/check_reference.sh against a fresh
# installation.  The check itself is checked with a copy of the reference
# that lacks one name.

use strict;
use warnings;

use File::Spec;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = File::Spec->rel2abs("$FindBin::RealBin/../..");
my $check = "$top/test/scripts/check_reference.sh";
my $reference = "$top/docs/reference.md";

my $node = PostgreSQL::Test::Cluster->new('reference');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'tenant_isolation'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION tenant_isolation');

sub run_check
{
	my (@args) = @_;
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	local $ENV{PGUSER} = 'postgres';
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'sh', $check, @args ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

my ($ret, $out, $err) = run_check($reference);
is($ret, 0, 'docs/reference.md documents every function, view and setting')
  or diag("$out\n$err");
note($out);

# A reference without the functions logout and login (login_local, which
# starts with the same name, stays), the view tenants and the setting
# jwt_leeway must fail, naming exactly those.
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $text = slurp_file($reference);
$text =~ s/tenant_isolation\.logout\b/REMOVED/g;
$text =~ s/tenant_isolation\.login(?![A-Za-z0-9_])/REMOVED/g;
$text =~ s/tenant_isolation\.tenants\b/REMOVED/g;
$text =~ s/tenant_isolation\.jwt_leeway\b/REMOVED/g;
open(my $fh, '>', "$tmp/reference.md") or die $!;
print $fh $text;
close($fh);

($ret, $out, $err) = run_check("$tmp/reference.md");
is($ret, 1, 'the check fails when names are missing');
like($out, qr/function tenant_isolation\.logout$/m, '... names the function');
like($out, qr/view tenant_isolation\.tenants$/m, '... names the view');
like($out, qr/setting tenant_isolation\.jwt_leeway$/m, '... names the setting');
like($out, qr/function tenant_isolation\.login$/m,
	'... names login although login_local is documented');
unlike($out, qr/tenant_isolation\.login_local$/m,
	'... and not a name that is documented');
unlike($out, qr/tenant_isolation\._/, '... and never an internal name');

# Without the extension in the database the check cannot run: exit 2.
$node->safe_psql('postgres', 'CREATE DATABASE empty');
{
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'empty';
	local $ENV{PGUSER} = 'postgres';
	IPC::Run::run([ 'sh', $check, $reference ], '>', \$out, '2>', \$err);
	is($? >> 8, 2, 'without the extension the check reports that it cannot run');
}

$node->stop;
done_testing();
