
# Copyright (c) 2026, tenant_isolation developers

# TenantIsolation: what the TAP tests of test/t share, so each file holds
# only its attack.
#
#   my $node = TenantIsolation::new_node('name', "extra.conf = lines\n");
#       a cluster with tenant_isolation preloaded (plus the extra lines),
#       started.
#   my ($secret, $keyfile) = TenantIsolation::hs256_key();
#       a random 32-byte HS256 secret, and a file holding it (no newline)
#       for test/scripts/mint_jwt.sh.
#   my $tok = TenantIsolation::mint($keyfile, '{"tenant_id":"...","exp":NOW+3600}');
#       an HS256 token signed with that key; dies if minting fails.
#   TenantIsolation::top(): the top of the source tree.
#
# Use it with:  use FindBin; use lib $FindBin::RealBin; use TenantIsolation;

package TenantIsolation;

use strict;
use warnings;

use File::Spec;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

sub top
{
	return File::Spec->rel2abs("$FindBin::RealBin/../..");
}

sub new_node
{
	my ($name, $extra_conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'tenant_isolation'\n"
		  . (defined $extra_conf ? $extra_conf : ''));
	$node->start;
	return $node;
}

sub hs256_key
{
	my $tmp = PostgreSQL::Test::Utils::tempdir;
	my $secret = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 16);
	my $keyfile = "$tmp/hs256.key";
	open(my $kf, '>', $keyfile) or die "$keyfile: $!";
	print $kf $secret;			# 32 bytes, no newline
	close($kf);
	return ($secret, $keyfile);
}

sub mint
{
	my ($keyfile, $claims) = @_;
	my ($out, $err);
	IPC::Run::run([ 'sh', top() . '/test/scripts/mint_jwt.sh', 'HS256', $keyfile, $claims ],
		'>', \$out, '2>', \$err)
	  or die "mint_jwt.sh failed: $err";
	chomp $out;
	return $out;
}

1;
