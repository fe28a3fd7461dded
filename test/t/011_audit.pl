# Copyright (c) 2026, tenant_isolation developers

# The durable audit trail across sessions, restarts and crashes.
#
# - Denials raised by many concurrent sessions (pgbench) all reach
#   tenant_isolation.audit_log, none is dropped.
# - With flushing paused and a tiny ring, events beyond the ring's size are
#   counted as dropped and the statements are not held up; the stored ones
#   are flushed once flushing resumes.
# - Events not yet flushed survive a clean restart (spill file), and are lost
#   in a crash (documented in docs/audit.md).
# - The LOG destination writes one structured line per event.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('audit');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'tenant_isolation'
tenant_isolation.audit_flush_interval = 100ms
restart_after_crash = on
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION tenant_isolation;
CREATE ROLE regress_app LOGIN;
CREATE TABLE bench_docs (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT tenant_isolation.protect_table('bench_docs');
GRANT SELECT ON bench_docs TO regress_app;
});

# Number of events with this object in audit_log, after a flush.
sub events_of
{
	my ($object) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM tenant_isolation.audit_log WHERE object = '$object'");
}

sub set_paused
{
	my ($on) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET tenant_isolation.audit_flush_paused = $on; SELECT pg_reload_conf();");
	# the launcher and new sessions see the setting after the reload
	$node->poll_query_until('postgres',
		"SELECT flush_paused = '$on'::boolean FROM tenant_isolation.audit_stats")
	  or die "audit_flush_paused did not become $on";
	sleep(1);
}

# 1. Concurrent sessions: 4 clients x 50 transactions, each denied once.
my $script = $node->basedir . '/deny.sql';
open(my $fh, '>', $script) or die;
print $fh q{DO $$ BEGIN PERFORM count(*) FROM bench_docs; EXCEPTION WHEN insufficient_privilege THEN NULL; END $$;
};
close($fh);
$node->command_ok(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-t', '50', '-U', 'regress_app', '-f', $script, 'postgres' ],
	'pgbench with denied statements');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.audit_flush()'), 't', 'flush');
is(events_of('bench_docs'), '200', 'every denial of 4 concurrent sessions is in audit_log');
is($node->safe_psql('postgres',
		"SELECT count(DISTINCT backend_pid) FROM tenant_isolation.audit_log WHERE object = 'bench_docs'"),
	'4', 'with the pids of 4 sessions');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.audit_dropped()'), '0', 'nothing dropped');

# 2. A full ring drops events and counts them; the statements go on.
$node->append_conf('postgresql.conf', 'tenant_isolation.audit_ring_size = 16');
$node->restart;
set_paused('on');
$node->safe_psql('postgres',
	"SELECT tenant_isolation._audit('regress_tap', 'ringfull', NULL) FROM generate_series(1, 40)");
is($node->safe_psql('postgres', 'SELECT tenant_isolation.audit_dropped()'), '24',
	'24 of 40 events dropped by a ring of 16');
is($node->safe_psql('postgres', 'SELECT pending, dropped FROM tenant_isolation.audit_stats'),
	'16|24', 'audit_stats shows the full ring');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.audit_flush(100)'), 'f',
	'audit_flush() returns false while paused');
is(events_of('ringfull'), '0', 'nothing flushed while paused');
set_paused('off');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.audit_flush()'), 't', 'flush after resume');
is(events_of('ringfull'), '16', 'the 16 events of the ring are flushed');

# 3. Unflushed events survive a clean restart.
set_paused('on');
$node->safe_psql('postgres',
	"SELECT tenant_isolation._audit('regress_tap', 'restart', NULL) FROM generate_series(1, 5)");
$node->restart;
ok(!-e $node->data_dir . '/pg_stat/tenant_isolation_audit.ring', 'spill file read and removed at start');
set_paused('off');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.audit_flush()'), 't', 'flush after restart');
is(events_of('restart'), '5', 'events pending at a clean shutdown are kept');

# 4. A crash loses the events not yet flushed, and only those.
set_paused('on');
$node->safe_psql('postgres',
	"SELECT tenant_isolation._audit('regress_tap', 'crash', NULL) FROM generate_series(1, 3)");
my $launcher = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'tenant_isolation audit launcher'");
ok($launcher =~ /^\d+$/, 'the launcher runs');
kill 'KILL', $launcher;
$node->poll_query_until('postgres', 'SELECT launcher_running FROM tenant_isolation.audit_stats')
  or die 'no launcher after the crash';
set_paused('off');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.audit_flush()'), 't', 'flush after crash');
is(events_of('crash'), '0', 'events not flushed before a crash are lost');
is(events_of('restart') . '/' . events_of('ringfull'), '5/16', 'flushed events are kept');

# 5. The LOG destination: one structured line per event, no token.
my $offset = -s $node->logfile;
$node->safe_psql('postgres',
	"SELECT tenant_isolation._audit('regress_tap', 'logline', 'two\nlines \"quoted\"')");
$node->psql('postgres', "SELECT tenant_isolation.login('eyJhbGciOiJIUzI1NiJ9.e30.c2VjcmV0')");
my $log = slurp_file($node->logfile, $offset);
like($log, qr/tenant_isolation audit: kind=regress_tap tenant=none object="logline" sqlstate=00000 user="\w+" role="\w+" database="postgres" pid=\d+ application="[^"]*" client="" detail="two\\x0alines \\"quoted\\""/,
	'structured log line, control characters and quotes escaped');
like($log, qr/tenant_isolation audit: kind=login_failed/, 'failed login logged');
unlike($log, qr/tenant_isolation audit:[^\n]*(eyJ|c2VjcmV0)/, 'no token in audit lines');

# 5b. assume_tenant with destination both: the event goes to audit_log, the
# server-log line only with audit_log_assume_tenant = on (issue 17: an
# administrator switching per transaction would log a line per transaction).
# A refusal is always logged.
my $assumed = '5a17a000-0000-4000-8000-0000000000a1';
$node->safe_psql('postgres',
	"SELECT tenant_isolation.create_tenant('audit assume', id => '$assumed')");
$offset = -s $node->logfile;
$node->safe_psql('postgres',
	"SELECT tenant_isolation.assume_tenant('$assumed', 'tap-quiet')");
$node->psql('postgres', "SELECT tenant_isolation.assume_tenant('$assumed', 'tap-denied')",
	extra_params => [ '-U', 'regress_app' ]);
$log = slurp_file($node->logfile, $offset);
unlike($log, qr/kind=assume_tenant tenant=[^\n]*detail="tap-quiet"/,
	'assume_tenant: no log line by default');
like($log, qr/kind=assume_tenant_denied /, 'assume_tenant_denied: logged');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.audit_flush()'), 't', 'flush');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM tenant_isolation.audit_log WHERE kind = 'assume_tenant' AND detail = 'tap-quiet' AND object = '$assumed'"),
	'1', 'assume_tenant without a log line: event stored in audit_log');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET tenant_isolation.audit_log_assume_tenant = on; SELECT pg_reload_conf();");
sleep(1);
$offset = -s $node->logfile;
$node->safe_psql('postgres',
	"SELECT tenant_isolation.assume_tenant('$assumed', 'tap-loud')");
$log = slurp_file($node->logfile, $offset);
like($log, qr/kind=assume_tenant tenant=$assumed object="$assumed" [^\n]*detail="tap-loud"/,
	'assume_tenant: log line with audit_log_assume_tenant = on');
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET tenant_isolation.audit_log_assume_tenant; SELECT pg_reload_conf();");

$node->safe_psql('postgres',
	"ALTER SYSTEM SET tenant_isolation.audit_log_destination = 'table'; SELECT pg_reload_conf();");
sleep(1);
$offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT tenant_isolation._audit('regress_tap', 'tableonly', NULL)");
$log = slurp_file($node->logfile, $offset);
unlike($log, qr/object="tableonly"/, 'destination table: no log line');
is($node->safe_psql('postgres', 'SELECT tenant_isolation.audit_flush()'), 't', 'flush');
is(events_of('tableonly'), '1', 'destination table: event stored');

$node->stop;
done_testing();
