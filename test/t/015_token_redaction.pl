
# Copyright (c) 2026, tenant_isolation developers

# Token redaction seen from another session (issue 18).  login() replaces
# its session's activity text with "<tenant_isolation.login redacted>"
# (src/jwt.c); the regress suites could only look at their own backend.
# Here a second session, a superuser who may read every query text, looks at
# the first one while it is idle after a successful login, after a failed
# login (bad signature: the verification errors out), and after a login
# refused for a tenant that does not exist; also add_jwt_key's secret.  The
# token, its signature and the key must not be in pg_stat_activity, nor in
# the server log.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TenantIsolation;

my $ta = '15a00000-0000-4000-8000-00000000000a';
# log_statement = all (the test default) logs any token as sent: documented
my $node = TenantIsolation::new_node('redaction', "log_statement = none\n");
my ($secret, $keyfile) = TenantIsolation::hs256_key();
my $tok = TenantIsolation::mint($keyfile, qq({"tenant_id":"$ta","sub":"a-user","exp":NOW+3600}));
my $tok_unknown = TenantIsolation::mint($keyfile,
	qq({"tenant_id":"15f00000-0000-4000-8000-00000000000f","sub":"x","exp":NOW+3600}));
my $bad_sig = $tok;
$bad_sig =~ s/\.([^.]+)$/.AAAA$1/;

$node->safe_psql('postgres', qq{
CREATE EXTENSION tenant_isolation;
CREATE ROLE regress_app LOGIN;
SELECT tenant_isolation.create_tenant('a', id => '$ta');
});

# The key's secret goes through add_jwt_key in the watched session too.
my $watched = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $watched->query_safe('SELECT pg_backend_pid()');

sub activity
{
	return $node->safe_psql('postgres',
		"SELECT state || ' | ' || query FROM pg_stat_activity WHERE pid = $pid");
}

sub secret_parts
{
	my ($t) = @_;
	my @p = split /\./, $t;
	return ($t, $p[1], $p[2]);
}

sub check_clean
{
	my ($what, @secrets) = @_;
	my $act = activity();
	like($act, qr/^idle \| <tenant_isolation\.(login|add_jwt_key) redacted>$/,
		"$what: the idle session shows the redacted text") or diag($act);
	foreach my $s (@secrets)
	{
		unlike($act, qr/\Q$s\E/, "$what: no part of the secret in pg_stat_activity");
	}
}

$watched->query_safe("SELECT tenant_isolation.add_jwt_key('k1', 'HS256', '$secret')");
check_clean('add_jwt_key', $secret);

$watched->query_safe("SET ROLE regress_app");
my $r = $watched->query_safe("SELECT tenant_isolation.login('$tok')");
is($r, $ta, 'a successful login');
check_clean('after a successful login', secret_parts($tok));

$watched->query_safe('SELECT tenant_isolation.logout()');
my ($out, $ret) = $watched->query("SELECT tenant_isolation.login('$bad_sig')");
like($watched->{stderr}, qr/28000|signature/, 'a forged signature is refused');
$watched->{stderr} = '';
check_clean('after a failed login (bad signature)', secret_parts($bad_sig));

($out, $ret) = $watched->query("SELECT tenant_isolation.login('$tok_unknown')");
like($watched->{stderr}, qr/ERROR/, 'a token for an unknown tenant is refused');
$watched->{stderr} = '';
check_clean('after a failed login (unknown tenant)', secret_parts($tok_unknown));

$watched->quit;

my $log = slurp_file($node->logfile);
foreach my $s ($secret, secret_parts($tok), secret_parts($bad_sig), secret_parts($tok_unknown))
{
	unlike($log, qr/\Q$s\E/, 'the server log holds no token or key part');
}

$node->stop;
done_testing();
