--
-- parallel: parallel workers run under the leader's context.
--
\set SHOW_CONTEXT never
CREATE FUNCTION leak_ps(text) RETURNS boolean LANGUAGE plpgsql
	PARALLEL SAFE COST 0.0000001 AS $$
BEGIN
	RAISE NOTICE 'leak_ps saw: %', $1;
	RETURN true;
END
$$;
SET force_parallel_mode = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;

SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress parallel');
SET ROLE regress_app;
EXPLAIN (COSTS OFF) SELECT count(*) FROM docs;
SELECT count(*), string_agg(body, ',' ORDER BY body) FROM docs;
SELECT DISTINCT tenant_isolation.current_tenant() FROM docs;
SELECT sum(amount), count(*) FROM events;
SELECT count(*) FROM docs WHERE body LIKE 'B-%';
-- one worker, no leader participation: NOTICEs arrive in a stable order
SET max_parallel_workers_per_gather = 1;
SET parallel_leader_participation = off;
SELECT count(*) FROM docs WHERE leak_ps(body);
RESET ROLE;
SELECT count(*) FROM docs WHERE leak_ps(body);
RESET parallel_leader_participation;
SELECT tenant_isolation.logout();
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
