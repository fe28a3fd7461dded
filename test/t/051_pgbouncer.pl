
# Copyright (c) 2026, tenant_isolation developers

# Behind PgBouncer in transaction pooling mode.
#
# Many clients, each a different tenant with its own JWT, share two or three
# server connections through a PgBouncer this test starts on loopback.  Each
# transaction calls tenant_isolation.login_local(token) and reads a protected
# table whose rows carry their tenant's id in a payload.  The test checks
# every returned row: no transaction ever sees another tenant's context or
# rows, and a transaction that forgets to log in gets the 42501 "no tenant
# context" error, never the previous client's tenant, although the server
# connection it runs on served other tenants just before.  A schema-tier
# tenant's login_local switches role and search_path for the transaction
# only: the next client on that server connection is back to its own role.
#
# Then session-scoped login() behind transaction pooling, which is not
# supported (docs/operations.md): without server_reset_query_always the
# context of one client's login() stays on the server connection and the next
# client inherits it; with server_reset_query = DISCARD ALL and
# server_reset_query_always = 1 it does not survive the transaction, so the
# mistake fails closed (42501) instead of leaking.
#
# Needs the pgbouncer binary (Debian package pgbouncer; PGBOUNCER=/path
# overrides the lookup) and the openssl CLI (test/scripts/mint_jwt.sh).

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

my $pgbouncer = $ENV{PGBOUNCER};
if (!$pgbouncer)
{
	for my $d (split(/:/, $ENV{PATH}), '/usr/sbin', '/usr/local/sbin')
	{
		if (-x "$d/pgbouncer")
		{
			$pgbouncer = "$d/pgbouncer";
			last;
		}
	}
}
if (!($pgbouncer && -x $pgbouncer))
{
	# In CI (CI=true) a missing pgbouncer is a failure, not a silent skip.
	if ($ENV{CI} && $ENV{CI} ne 'false')
	{
		plan tests => 1;
		fail('pgbouncer not found but CI is set: install it (apt-get install pgbouncer) or set PGBOUNCER');
		exit 1;
	}
	plan skip_all => 'pgbouncer not found (apt-get install pgbouncer)';
}

my $n_tenants = 12;			# concurrent clients with a login, one tenant each
my $n_forgetful = 3;		# concurrent clients that never log in
my $n_xacts = 30;			# transactions per client
my $rows_per_tenant = 5;
my $pool_size = 3;

my $node = PostgreSQL::Test::Cluster->new('pgbouncer');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'tenant_isolation'\nmax_connections = 40\n");
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;

# --- tenants, a protected table, an HS256 key and one token per tenant
my $secret = join('', map { sprintf('%02x', int(rand(256))) } 1 .. 16);
my $keyfile = "$tmp/hs256.key";
open(my $kf, '>', $keyfile) or die "$keyfile: $!";
print $kf $secret;			# 32 bytes, no newline
close($kf);

my @tenants = map { sprintf('%08x-0000-4000-8000-%012x', $_, $_) } 1 .. $n_tenants;

$node->safe_psql('postgres', 'CREATE DATABASE app');
my $setup = qq{
CREATE EXTENSION tenant_isolation;
CREATE ROLE regress_app LOGIN;
CREATE TABLE items (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	payload		text NOT NULL,
	PRIMARY KEY (tenant_id, id)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO regress_app;
SELECT tenant_isolation.add_jwt_key('k1', 'HS256', '$secret');
};
for my $i (0 .. $#tenants)
{
	my $t = $tenants[$i];
	$setup .= "SELECT tenant_isolation.create_tenant('tenant $i', id => '$t');\n";
	$setup .= "INSERT INTO items SELECT '$t', g, 'tenant:$t:row:' || g "
	  . "FROM generate_series(1, $rows_per_tenant) g;\n";
}
$setup .= "SELECT tenant_isolation.protect_table('items');\n";
# A schema-tier tenant: login_local also switches role and search_path.
my $tenant_s = 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee';
my $schema_s = 'tenant_eeeeeeeeeeee4eee8eeeeeeeeeeeeeee';
$setup .= qq{
GRANT tenant_isolation_login TO regress_app;
CREATE TABLE notes (id int PRIMARY KEY, note text);
SELECT tenant_isolation.add_template_table('notes');
SELECT tenant_isolation.create_tenant('schema tenant', 'schema', id => '$tenant_s');
INSERT INTO $schema_s.notes VALUES (1, 'S-SECRET note');
};
$node->safe_psql('app', $setup);

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

my %token;
for my $i (0 .. $#tenants)
{
	$token{ $tenants[$i] } =
	  mint(qq({"tenant_id":"$tenants[$i]","sub":"user-$i","exp":NOW+3600}));
}
$token{$tenant_s} =
  mint(qq({"tenant_id":"$tenant_s","sub":"user-s","exp":NOW+3600}));

# The tokens work directly against the node.
is( $node->safe_psql(
		'app',
		"SET ROLE regress_app; SELECT tenant_isolation.login('$token{$tenants[0]}')"
	),
	$tenants[0],
	'a minted token logs in directly on the node');

# --- PgBouncer
my @bouncer_pidfiles;

END
{
	# Stop every PgBouncer this test started, by the pid in its pid file.
	for my $pf (@bouncer_pidfiles)
	{
		stop_pgbouncer($pf);
	}
}

sub stop_pgbouncer
{
	my ($pidfile) = @_;
	return unless -f $pidfile;
	open(my $fh, '<', $pidfile) or return;
	my $pid = <$fh>;
	close($fh);
	return unless defined $pid && $pid =~ /^\s*(\d+)\s*$/;
	$pid = $1;
	kill 'INT', $pid;
	for (1 .. 100)
	{
		last unless kill(0, $pid);
		select(undef, undef, undef, 0.1);
	}
	kill 'KILL', $pid if kill(0, $pid);
	unlink $pidfile;
	@bouncer_pidfiles = grep { $_ ne $pidfile } @bouncer_pidfiles;
}

# start_pgbouncer(NAME, EXTRA_INI): starts a PgBouncer in transaction pooling
# mode on 127.0.0.1 and a free port; returns (port, pidfile).
sub start_pgbouncer
{
	my ($name, $extra) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $dir = "$tmp/$name";
	mkdir $dir or die "mkdir $dir: $!";
	my $ini = "$dir/pgbouncer.ini";
	my $pidfile = "$dir/pgbouncer.pid";
	my $host = $node->host;
	my $nport = $node->port;

	open(my $af, '>', "$dir/userlist.txt") or die $!;
	print $af qq{"regress_app" ""\n};
	close($af);

	open(my $fh, '>', $ini) or die "$ini: $!";
	print $fh <<"EOF";
[databases]
app = host=$host port=$nport dbname=app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
logfile = $dir/pgbouncer.log
pidfile = $pidfile
pool_mode = transaction
max_client_conn = 100
default_pool_size = $pool_size
min_pool_size = 0
reserve_pool_size = 0
$extra
EOF
	close($fh);

	my ($o, $e) = ('', '');
	IPC::Run::run([ $pgbouncer, '-d', $ini ], '>', \$o, '2>', \$e)
	  or die "pgbouncer failed to start: $o $e";
	push @bouncer_pidfiles, $pidfile;

	# Wait until it accepts connections.
	for (1 .. 100)
	{
		my ($ret) = bouncer_psql($port, 'SELECT 1');
		return ($port, $pidfile) if $ret == 0;
		select(undef, undef, undef, 0.1);
	}
	die "pgbouncer on port $port did not come up:\n"
	  . slurp_file("$dir/pgbouncer.log");
}

# bouncer_psql(PORT, SQL): one psql session through PgBouncer as
# regress_app; returns (exit code, stdout, stderr).
sub bouncer_psql
{
	my ($port, $sql) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'psql', '-X', '-q', '-A', '-t',
			'-v', 'VERBOSITY=verbose',
			'-h', '127.0.0.1', '-p', $port, '-U', 'regress_app', '-d', 'app'
		],
		'<', \$sql, '>', \$out, '2>', \$err);
	chomp $out;
	return ($? >> 8, $out, $err);
}

my ($bport, $bpid) = start_pgbouncer('txn',
	"server_reset_query = DISCARD ALL\nserver_reset_query_always = 0");

# ---------------------------------------------------------------------------
# 1. Many tenants, a few server connections, login_local per transaction.
#    Every fourth transaction of a tenant client "forgets" to log in.
# ---------------------------------------------------------------------------
sub client_script
{
	my ($tenant) = @_;
	my $s = '';
	for my $x (1 .. $n_xacts)
	{
		my $forget = !defined($tenant) || $x % 4 == 0;
		$s .= "BEGIN;\n";
		if (!$forget)
		{
			$s .= "SELECT 'login', $x, tenant_isolation.login_local('$token{$tenant}');\n";
		}
		$s .= "SELECT 'ctx', $x, coalesce(tenant_isolation.current_tenant()::text, 'none'), "
		  . "coalesce(tenant_isolation.current_user_id(), 'none'), pg_backend_pid();\n";
		$s .= "SELECT pg_sleep(random() * 0.004);\n";
		$s .= "SELECT 'row', $x, tenant_id, payload FROM items ORDER BY id;\n";
		$s .= "SELECT 'end', $x, coalesce(tenant_isolation.current_tenant()::text, 'none');\n";
		$s .= "COMMIT;\n";
	}
	return $s;
}

my @clients;
for my $i (0 .. $#tenants)
{
	push @clients, { tenant => $tenants[$i], user => "user-$i" };
}
push @clients, { tenant => undef } for 1 .. $n_forgetful;

for my $c (@clients)
{
	$c->{script} = client_script($c->{tenant});
	$c->{out} = '';
	$c->{err} = '';
	$c->{h} = IPC::Run::start(
		[
			'psql', '-X', '-q', '-A', '-t',
			'-v', 'VERBOSITY=verbose', '-v', 'ON_ERROR_STOP=0',
			'-h', '127.0.0.1', '-p', $bport, '-U', 'regress_app', '-d', 'app'
		],
		'<', \$c->{script}, '>', \$c->{out}, '2>', \$c->{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}
$_->{h}->finish for @clients;

my %tenants_of_pid;			# server backend pid -> tenants it served
my ($bad_ctx, $bad_rows, $missing_rows, $bad_forgot, $bad_errors) = (0) x 5;
my ($ok_xacts, $forgot_xacts) = (0, 0);

for my $c (@clients)
{
	my $me = $c->{tenant};
	my (%ctx, %rows, %end, %login);
	for my $line (split /\n/, $c->{out})
	{
		my @f = split /\|/, $line;
		next unless @f;
		if ($f[0] eq 'login')
		{
			$login{ $f[1] } = $f[2];
		}
		elsif ($f[0] eq 'ctx')
		{
			$ctx{ $f[1] } = [ $f[2], $f[3], $f[4] ];
		}
		elsif ($f[0] eq 'row')
		{
			push @{ $rows{ $f[1] } }, [ $f[2], $f[3] ];
		}
		elsif ($f[0] eq 'end')
		{
			$end{ $f[1] } = $f[2];
		}
	}

	my $expected_errors = 0;
	for my $x (1 .. $n_xacts)
	{
		my $forget = !defined($me) || $x % 4 == 0;
		my $ctx = $ctx{$x};
		if (!$ctx)
		{
			$bad_ctx++;
			diag("client " . ($me // 'forgetful') . " xact $x: no ctx line");
			next;
		}
		my ($tenant, $user, $pid) = @$ctx;
		if ($forget)
		{
			$expected_errors++;
			$forgot_xacts++;
			# no context at all, and no row of anybody
			if ($tenant ne 'none' || $user ne 'none' || $rows{$x})
			{
				$bad_forgot++;
				diag("client "
					  . ($me // 'forgetful')
					  . " xact $x without login saw context $tenant/$user and "
					  . scalar(@{ $rows{$x} // [] })
					  . " rows");
			}
			next;
		}
		$tenants_of_pid{$pid}{$me} = 1;
		if (   ($login{$x} // '') ne $me
			|| $tenant ne $me
			|| $user ne $c->{user}
			|| ($end{$x} // '') ne $me)
		{
			$bad_ctx++;
			diag("client $me xact $x: login "
				  . ($login{$x} // 'none')
				  . ", context $tenant/$user, at end "
				  . ($end{$x} // 'none'));
		}
		my @r = @{ $rows{$x} // [] };
		$missing_rows++ if @r != $rows_per_tenant;
		for my $r (@r)
		{
			if ($r->[0] ne $me || index($r->[1], "tenant:$me:") != 0)
			{
				$bad_rows++;
				diag("client $me xact $x saw a foreign row: $r->[0] $r->[1]");
			}
		}
		$ok_xacts++;
	}

	my @denied =
	  ($c->{err} =~ /ERROR:  42501: no tenant context for table "items"/g);
	if (@denied != $expected_errors)
	{
		$bad_errors++;
		diag("client "
			  . ($me // 'forgetful')
			  . ": expected $expected_errors no-context errors, got "
			  . scalar(@denied)
			  . "; stderr:\n$c->{err}");
	}
	# The only errors are the expected ones (and "current transaction is
	# aborted" for the statements after them).
	my @all_errors = ($c->{err} =~ /^ERROR:  (?!25P02)/mg);
	if (@all_errors != $expected_errors)
	{
		$bad_errors++;
		diag("client " . ($me // 'forgetful') . ": unexpected errors:\n$c->{err}");
	}
}

my $n_logged = $n_tenants * ($n_xacts - int($n_xacts / 4));
my $n_forgot = $n_tenants * int($n_xacts / 4) + $n_forgetful * $n_xacts;
is($ok_xacts, $n_logged, "all $n_logged logged-in transactions ran");
is($forgot_xacts, $n_forgot, "all $n_forgot transactions without login ran");
is($bad_ctx, 0,
	'every logged-in transaction saw its own tenant and user, start to end');
is($bad_rows, 0, 'no transaction saw a row of another tenant');
is($missing_rows, 0,
	"every logged-in transaction saw all $rows_per_tenant rows of its tenant");
is($bad_forgot, 0,
	'a transaction without login saw no context and no rows, never the previous client\'s tenant');
is($bad_errors, 0,
	'each transaction without login got exactly one 42501 "no tenant context" error, and nothing else failed');

my @pids = keys %tenants_of_pid;
cmp_ok(scalar(@pids), '<=', $pool_size,
	"the clients shared at most $pool_size server connections");
my $max_shared = 0;
for my $p (@pids)
{
	my $n = scalar keys %{ $tenants_of_pid{$p} };
	$max_shared = $n if $n > $max_shared;
}
cmp_ok($max_shared, '>=', 2,
	'one server connection served several tenants in turn');

# ---------------------------------------------------------------------------
# 2. The same with pgbench: one pgbench per tenant, all in parallel, with the
#    check inside the transaction (a division by zero aborts the client on a
#    foreign context or row).  Extended protocol: the token is a parameter.
# ---------------------------------------------------------------------------
my $bench_script = "$tmp/tenant.sql";
open(my $bs, '>', $bench_script) or die $!;
print $bs <<'EOF';
\set id random(1, 5)
BEGIN;
SELECT tenant_isolation.login_local(:tok);
SELECT 1 / (tenant_isolation.current_tenant() = CAST(:tid AS uuid))::int;
SELECT 1 / (count(*) = 5 AND bool_and(tenant_id = CAST(:tid AS uuid)
			AND payload LIKE 'tenant:' || CAST(:tid AS text) || ':%'))::int FROM items;
SELECT 1 / count(*)::int FROM items WHERE id = :id AND tenant_id = CAST(:tid AS uuid);
COMMIT;
EOF
close($bs);

my @benches;
for my $t (@tenants)
{
	my $b = { out => '', err => '' };
	$b->{h} = IPC::Run::start(
		[
			'pgbench', '-n', '-M', 'extended', '-c', '1', '-t', '50',
			'-D', "tok=$token{$t}", '-D', "tid=$t", '-f', $bench_script,
			'-h', '127.0.0.1', '-p', $bport, '-U', 'regress_app', 'app'
		],
		'>', \$b->{out}, '2>', \$b->{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	push @benches, $b;
}
my $bench_ok = 0;
for my $b (@benches)
{
	$b->{h}->finish;
	if ($b->{h}->result == 0
		&& $b->{out} =~ m{number of transactions actually processed: 50/50})
	{
		$bench_ok++;
	}
	else
	{
		diag("pgbench failed:\n$b->{out}\n$b->{err}");
	}
}
is($bench_ok, scalar(@tenants),
	'pgbench: every tenant ran 50 transactions in its own context through the pool');

stop_pgbouncer($bpid);

# ---------------------------------------------------------------------------
# 3. Session-scoped login() behind transaction pooling: unsupported.
#    One server connection, so consecutive clients share it for sure.
# ---------------------------------------------------------------------------
$pool_size = 1;

# 3a. Without server_reset_query_always, the server connection keeps a
#     session login() of one client, and the next client inherits it.  This is
#     the hazard that makes login() unsupported behind transaction pooling.
($bport, $bpid) = start_pgbouncer('session_login_unsafe',
	"server_reset_query = DISCARD ALL\nserver_reset_query_always = 0");

# First, login_local into a schema-tier tenant: role and search_path are
# transaction-scoped too, so the next client on the same server connection
# (no reset query runs here) is back to regress_app and cannot read the schema.
my ($ret, $out, $err) = bouncer_psql($bport,
	"BEGIN;
SELECT tenant_isolation.login_local('$token{$tenant_s}');
SELECT current_user || ' ' || note || ' ' || pg_backend_pid() FROM notes;
COMMIT;");
my ($s_line) = grep { /^$schema_s / } split /\n/, $out;
ok(defined $s_line && $s_line =~ /^$schema_s S-SECRET note \d+$/,
	'unsafe pool: login_local into a schema-tier tenant runs as its role and reads its schema'
) or diag("$out\n$err");
my $pid_s = defined $s_line ? (split / /, $s_line)[-1] : '';

($ret, $out, $err) = bouncer_psql($bport,
	"SELECT pg_backend_pid() || ' ' || current_user || ' ' || coalesce(tenant_isolation.current_tenant()::text, 'none') || ' ' || current_setting('search_path');
SELECT note FROM $schema_s.notes;");
is($out, qq{$pid_s regress_app none "\$user", public},
	'unsafe pool: the next client on that connection is regress_app again, no context, default search_path'
);
like($err, qr/permission denied for schema $schema_s/,
	'unsafe pool: ... and cannot read the schema-tier tenant\'s table');

($ret, $out, $err) = bouncer_psql($bport,
	"SELECT tenant_isolation.login('$token{$tenants[0]}');\nSELECT pg_backend_pid();");
is($ret, 0, 'unsafe pool: client A calls login() (session-scoped)');
my $pid_a = (split /\n/, $out)[-1];

($ret, $out, $err) = bouncer_psql($bport,
	"SELECT pg_backend_pid() || ' ' || coalesce(tenant_isolation.current_tenant()::text, 'none');"
);
my ($pid_b, $ctx_b) = split / /, $out;
is($pid_b, $pid_a, 'unsafe pool: client B runs on the server connection of A');
is($ctx_b, $tenants[0],
	'unsafe pool: without server_reset_query_always, B inherits A\'s session login() (why login() is unsupported here)'
);
stop_pgbouncer($bpid);

# 3b. With server_reset_query = DISCARD ALL and server_reset_query_always = 1
#     the context never outlives the transaction: it fails closed.
($bport, $bpid) = start_pgbouncer('session_login_reset',
	"server_reset_query = DISCARD ALL\nserver_reset_query_always = 1");

($ret, $out, $err) = bouncer_psql(
	$bport, "SELECT tenant_isolation.login('$token{$tenants[0]}');
SELECT 'pid ' || pg_backend_pid();
SELECT 'ctx ' || coalesce(tenant_isolation.current_tenant()::text, 'none');
SELECT 'row ' || payload FROM items;");
my @l = split /\n/, $out;
is($l[0], $tenants[0], 'reset pool: client A\'s login() succeeds');
($pid_a) = grep { s/^pid // } @l;
my ($ctx_a2) = grep { s/^ctx // } @l;
is($ctx_a2, 'none',
	'reset pool: A\'s own next transaction has no context any more');
ok(!grep(/^row /, @l), 'reset pool: A\'s next transaction reads no row');
like(
	$err,
	qr/ERROR:  42501: no tenant context for table "items"/,
	'reset pool: A\'s next transaction gets 42501, so the misuse shows at once');

($ret, $out, $err) = bouncer_psql($bport,
	"SELECT 'pid ' || pg_backend_pid();
SELECT 'ctx ' || coalesce(tenant_isolation.current_tenant()::text, 'none');
SELECT 'row ' || payload FROM items;");
@l = split /\n/, $out;
($pid_b) = grep { s/^pid // } @l;
($ctx_b) = grep { s/^ctx // } @l;
is($pid_b, $pid_a, 'reset pool: client B runs on the server connection of A');
is($ctx_b, 'none', 'reset pool: B does not inherit A\'s context');
ok(!grep(/^row /, @l), 'reset pool: B reads no row');
like(
	$err,
	qr/ERROR:  42501: no tenant context for table "items"/,
	'reset pool: B gets the 42501 no-context error');

# login_local still works on that pool (DISCARD ALL after each transaction
# costs a round trip but breaks nothing).
($ret, $out, $err) = bouncer_psql($bport,
	"BEGIN;
SELECT tenant_isolation.login_local('$token{$tenants[1]}');
SELECT count(*) FROM items WHERE payload LIKE 'tenant:$tenants[1]:%';
SELECT count(*) FROM items;
COMMIT;");
is($out, "$tenants[1]\n$rows_per_tenant\n$rows_per_tenant",
	'reset pool: login_local works, scoped to its tenant');

stop_pgbouncer($bpid);

# 3c. The documented remedy for the pool of 3a: allow_session_login = off for
#     the role behind the proxy.  Server connections made after the ALTER ROLE
#     (a new PgBouncer, no reset query) refuse login() with 28000, so nothing
#     is left for the next client; login_local still works.
$node->safe_psql('app',
	'ALTER ROLE regress_app SET tenant_isolation.allow_session_login = off');
($bport, $bpid) = start_pgbouncer('no_session_login',
	"server_reset_query = DISCARD ALL\nserver_reset_query_always = 0");
($ret, $out, $err) = bouncer_psql($bport,
	"SELECT tenant_isolation.login('$token{$tenants[0]}');\nSELECT 'pid ' || pg_backend_pid();");
like($err, qr/ERROR:  28000: /,
	'allow_session_login = off behind the pool: login() fails with 28000');
unlike("$out$err", qr/\Q$token{$tenants[0]}\E/,
	'allow_session_login = off: the refusal does not echo the token');
unlike($out, qr/^\Q$tenants[0]\E$/m, 'allow_session_login = off: login() returned no tenant');
($pid_a) = grep { s/^pid // } split /\n/, $out;
($ret, $out, $err) = bouncer_psql($bport,
	"SELECT pg_backend_pid() || ' ' || coalesce(tenant_isolation.current_tenant()::text, 'none');
SELECT 'row ' || payload FROM items;");
($pid_b, $ctx_b) = split / /, (split /\n/, $out)[0];
is($pid_b, $pid_a, 'allow_session_login = off: client B runs on the server connection of A');
is($ctx_b, 'none', 'allow_session_login = off: B has no context from A');
unlike($out, qr/^row /m, 'allow_session_login = off: B reads no row');
($ret, $out, $err) = bouncer_psql($bport,
	"BEGIN;
SELECT tenant_isolation.login_local('$token{$tenants[1]}');
SELECT count(*) FROM items;
COMMIT;");
is($out, "$tenants[1]\n$rows_per_tenant",
	'allow_session_login = off: login_local still works, scoped to its tenant');
stop_pgbouncer($bpid);
$node->safe_psql('app',
	'ALTER ROLE regress_app RESET tenant_isolation.allow_session_login');

$node->stop;
done_testing();
