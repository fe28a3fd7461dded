-- stress: the whole table through a forced parallel plan (workers get the
-- leader's tenant context); every row must be the tenant's own
\set t random(1, :tenants)
BEGIN;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL min_parallel_index_scan_size = 0;
SELECT tenant_isolation.login_local(token) IS NOT NULL AS in_context FROM stress_token WHERE n = :t \gset
SELECT count(*) FILTER (WHERE i.tenant_id <> k.tenant OR split_part(i.payload, ':', 1) <> k.tenant::text) AS bad,
	   count(*) AS seen
  FROM items i, stress_token k
 WHERE k.n = :t \gset
COMMIT;
\if :bad != 0
INSERT INTO stress_violation (n, rows_seen) VALUES (:t, :bad);
SELECT stress_fail(:bad);
\endif
