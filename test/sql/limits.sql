--
-- limits: per-tenant limits and statistics (issue 7).
--
-- Single-session behaviour only; concurrency (max_sessions across sessions,
-- active statement slots, row quota races) is in test/specs/limits_*.spec,
-- killed backends in test/t/021_limits.pl.  Own tenants and table, so the
-- suite runs after init alone or after every other suite.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tenant_isolation;
RESET client_min_messages;

SELECT tenant_isolation.create_tenant('limits one', id => '7e000000-0000-4000-8000-000000000001');
SELECT tenant_isolation.create_tenant('limits two', id => '7e000000-0000-4000-8000-000000000002');
CREATE TABLE lim_items (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT tenant_isolation.protect_table('lim_items');
GRANT SELECT, INSERT, DELETE ON lim_items TO regress_app;
INSERT INTO lim_items VALUES ('7e000000-0000-4000-8000-000000000002', 1);

-- GUCs: defaults; only superusers change them
SHOW tenant_isolation.max_tenants_tracked;
SHOW tenant_isolation.statement_queue_timeout;
SHOW tenant_isolation.track_tenant_stats;
SET ROLE regress_app;
SELECT sqlstate_of($$SET tenant_isolation.track_tenant_stats = off$$);
SELECT sqlstate_of($$SET tenant_isolation.statement_queue_timeout = 0$$);
RESET ROLE;

------------------------------------------------------------------------------
-- set_tenant_limits: who may call it, and bad values (22023, nothing changed)
------------------------------------------------------------------------------
SET ROLE regress_app;
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', max_sessions => 5)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.reset_tenant_stats()$$);
SELECT sqlstate_of($$SELECT tenant_isolation.resync_tenant_rows()$$);
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.tenant_limit$$);
-- no context: no row
SELECT count(*) FROM tenant_isolation._tenant_stats();
RESET ROLE;

SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001',
	max_sessions => 3, work_mem => '8MB');
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits(NULL, max_sessions => 5)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-0000000000ff', max_sessions => 5)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', max_sessions => 0)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', max_sessions => -1)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', max_active_statements => 0)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', statements_per_second => 0)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', statements_per_second => -2.5)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', statements_per_second => 'NaN')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', statement_timeout => '0')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', statement_timeout => '-1 second')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', statement_timeout => '100 days')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', work_mem => 'lots')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', work_mem => '12 parsecs')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', work_mem => '10kB')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', work_mem => '')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', max_rows => -1)$$);
-- nothing changed
SELECT tenant_name, max_sessions, max_active_statements, statements_per_second,
	   statement_timeout, work_mem, max_rows
  FROM tenant_isolation.tenant_limits WHERE tenant_name LIKE 'limits%' ORDER BY tenant_id;

-- the admin role may set limits
SET ROLE regress_support;
SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000002',
	statement_timeout => '1500 milliseconds', max_rows => 1000);
RESET ROLE;
SELECT tenant_name, max_sessions, max_active_statements, statements_per_second,
	   statement_timeout, work_mem, max_rows
  FROM tenant_isolation.tenant_limits WHERE tenant_name LIKE 'limits%' ORDER BY tenant_id;

------------------------------------------------------------------------------
-- statement_timeout and work_mem follow the context
------------------------------------------------------------------------------
SET statement_timeout = '7s';
SHOW work_mem;
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
SHOW work_mem;
SHOW statement_timeout;
-- another tenant: its own values; what it does not limit goes back
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000002', 'limits test');
SHOW work_mem;
SHOW statement_timeout;
SELECT tenant_isolation.logout();
SHOW work_mem;
SHOW statement_timeout;
-- a switch that rolls back takes the tenant's settings with it
BEGIN;
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
SHOW work_mem;
ROLLBACK;
SHOW work_mem;
RESET statement_timeout;

------------------------------------------------------------------------------
-- sessions: one session counts once, whatever it does
------------------------------------------------------------------------------
SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', max_sessions => 1);
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
SELECT sessions FROM tenant_isolation.tenant_stats
 WHERE tenant_id = '7e000000-0000-4000-8000-000000000001';
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000002', 'limits test');
SELECT tenant_name, sessions FROM tenant_isolation.tenant_stats
 WHERE tenant_name LIKE 'limits%' ORDER BY tenant_id;
-- a switch that rolls back: the session is back in tenant two, counted once
BEGIN;
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
ROLLBACK;
SELECT tenant_name, sessions FROM tenant_isolation.tenant_stats
 WHERE tenant_name LIKE 'limits%' ORDER BY tenant_id;
SELECT tenant_isolation.logout();
SELECT tenant_name, sessions FROM tenant_isolation.tenant_stats
 WHERE tenant_name LIKE 'limits%' ORDER BY tenant_id;

------------------------------------------------------------------------------
-- statement rate: a token bucket of one second's worth
------------------------------------------------------------------------------
SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', statements_per_second => 1);
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
-- each refused statement is sent in the same query string as the accepted
-- one before it (\;), so no client round trip, however slow the machine, can
-- refill the bucket in between; the sleeps only need to last >= 1 s
SELECT 1 AS first \; SELECT 2 AS refused;
\! sleep 1.2
SELECT 3 AS refilled \; SELECT 4 AS refused;
\! sleep 1.2
SELECT tenant_isolation.logout();
SELECT limited FROM tenant_isolation.tenant_stats
 WHERE tenant_id = '7e000000-0000-4000-8000-000000000001';

------------------------------------------------------------------------------
-- active statements: statements run by a function count once
------------------------------------------------------------------------------
SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', max_active_statements => 1);
CREATE FUNCTION lim_nested() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	SELECT count(*) INTO n FROM lim_items;
	PERFORM 1 FROM lim_items;
	RETURN n + (SELECT active_statements FROM tenant_isolation.tenant_stats
				WHERE tenant_id = tenant_isolation.current_tenant());
END
$$;
SELECT tenant_isolation.reset_tenant_stats('7e000000-0000-4000-8000-000000000001');
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
SELECT lim_nested();
-- an error skips ExecutorEnd: the slot is released all the same
SELECT 1 / 0;
SELECT lim_nested();
BEGIN;
SAVEPOINT s;
SELECT 1 / 0;
ROLLBACK TO s;
SELECT lim_nested();
COMMIT;
-- counters: the three calls only, failures are not counted as statements;
-- the statement reading the view holds its own slot
SELECT selects, inserts, updates, deletes, others, rows_returned, active_statements, limited
  FROM tenant_isolation.tenant_stats WHERE tenant_id = tenant_isolation.current_tenant();
SELECT tenant_isolation.logout();

------------------------------------------------------------------------------
-- row quota
------------------------------------------------------------------------------
SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001', max_rows => 3);
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
INSERT INTO lim_items (id) VALUES (1), (2);
INSERT INTO lim_items (id) VALUES (3), (4);
SELECT row_count FROM tenant_isolation.tenant_limits WHERE tenant_id = tenant_isolation.current_tenant();
INSERT INTO lim_items (id) VALUES (3);
-- the quota is reached: 3 of 3 rows, and the next row is refused
SELECT row_count, max_rows, row_count = max_rows AS reached
  FROM tenant_isolation.tenant_limits WHERE tenant_id = tenant_isolation.current_tenant();
INSERT INTO lim_items (id) VALUES (4);
DELETE FROM lim_items WHERE id = 1;
INSERT INTO lim_items (id) VALUES (4);
SELECT row_count FROM tenant_isolation.tenant_limits WHERE tenant_id = tenant_isolation.current_tenant();
-- rolled back inserts give their rows back
BEGIN;
DELETE FROM lim_items WHERE id = 4;
INSERT INTO lim_items (id) VALUES (5);
ROLLBACK;
SELECT row_count FROM tenant_isolation.tenant_limits WHERE tenant_id = tenant_isolation.current_tenant();
BEGIN;
DELETE FROM lim_items WHERE id = 4;
SAVEPOINT s;
INSERT INTO lim_items (id) VALUES (5);
ROLLBACK TO s;
INSERT INTO lim_items (id) VALUES (6);
COMMIT;
SELECT id FROM lim_items ORDER BY id;
SELECT row_count FROM tenant_isolation.tenant_limits WHERE tenant_id = tenant_isolation.current_tenant();
-- nested inserts count too; the refused one is rolled back by its exception block
DO $$
BEGIN
	INSERT INTO lim_items (id) VALUES (7);
EXCEPTION WHEN configuration_limit_exceeded THEN
	RAISE NOTICE 'quota: %', SQLERRM;
END
$$;
-- an upsert cannot be counted from the executor: the count is redone
INSERT INTO lim_items (id) VALUES (6) ON CONFLICT (tenant_id, id) DO UPDATE SET id = 6;
SELECT row_count FROM tenant_isolation.tenant_limits WHERE tenant_id = tenant_isolation.current_tenant();
INSERT INTO lim_items (id) VALUES (8);
SELECT row_count FROM tenant_isolation.tenant_limits WHERE tenant_id = tenant_isolation.current_tenant();
-- resynchronise: only the context's own tenant, or none
SELECT sqlstate_of($$SELECT tenant_isolation.resync_tenant_rows('7e000000-0000-4000-8000-000000000002')$$);
SELECT tenant_isolation.resync_tenant_rows('7e000000-0000-4000-8000-000000000001');
SELECT tenant_isolation.logout();
-- a write outside any context makes every count stale
DELETE FROM lim_items WHERE tenant_id = '7e000000-0000-4000-8000-000000000001' AND id = 2;
SELECT tenant_name, row_count FROM tenant_isolation.tenant_limits WHERE tenant_name LIKE 'limits%' ORDER BY tenant_id;
SELECT tenant_isolation.resync_tenant_rows('7e000000-0000-4000-8000-000000000002');
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
INSERT INTO lim_items (id) VALUES (9);
INSERT INTO lim_items (id) VALUES (10);
SELECT row_count FROM tenant_isolation.tenant_limits WHERE tenant_id = tenant_isolation.current_tenant();
SELECT tenant_isolation.logout();

------------------------------------------------------------------------------
-- statistics
------------------------------------------------------------------------------
SELECT tenant_isolation.set_tenant_limits('7e000000-0000-4000-8000-000000000001');
SELECT tenant_isolation.reset_tenant_stats();
SELECT tenant_isolation.assume_tenant('7e000000-0000-4000-8000-000000000001', 'limits test');
SELECT id FROM lim_items ORDER BY id;
INSERT INTO lim_items (id) VALUES (20), (21), (22);
UPDATE lim_items SET id = id + 10 WHERE id >= 20;
DELETE FROM lim_items WHERE id >= 30;
MERGE INTO lim_items t USING (SELECT 40 AS id) s ON t.id = s.id
	WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id);
SELECT selects, inserts, updates, deletes, others, rows_returned, rows_processed,
	   total_exec_time >= max_exec_time AS times_ok, max_exec_time > 0 AS max_ok,
	   cpu_time >= 0 AS cpu_ok, sessions, active_statements, stats_reset IS NOT NULL AS reset_ok
  FROM tenant_isolation.tenant_stats WHERE tenant_id = tenant_isolation.current_tenant();
-- off: nothing counted
SET tenant_isolation.track_tenant_stats = off;
SELECT count(*) FROM lim_items;
RESET tenant_isolation.track_tenant_stats;
-- the first SELECT and the statistics query above
SELECT selects FROM tenant_isolation.tenant_stats WHERE tenant_id = tenant_isolation.current_tenant();

-- ordinary roles see their own tenant only, nothing without a context
SET ROLE regress_app;
SELECT tenant_name FROM tenant_isolation.tenant_stats;
SELECT tenant_name FROM tenant_isolation.tenant_limits;
RESET ROLE;
SELECT tenant_isolation.logout();
SET ROLE regress_app;
SELECT count(*) FROM tenant_isolation.tenant_stats;
SELECT count(*) FROM tenant_isolation.tenant_limits;
RESET ROLE;
SELECT tenant_name FROM tenant_isolation.tenant_stats WHERE tenant_name LIKE 'limits%' ORDER BY 1;

-- a dropped tenant takes its limits with it
SELECT tenant_isolation.drop_tenant('7e000000-0000-4000-8000-000000000002');
SELECT tenant_name FROM tenant_isolation.tenant_limits WHERE tenant_name LIKE 'limits%' ORDER BY 1;

DROP FUNCTION lim_nested();
SELECT tenant_isolation.drop_tenant('7e000000-0000-4000-8000-000000000001');
SELECT tenant_isolation.unprotect_table('lim_items');
DROP TABLE lim_items;
