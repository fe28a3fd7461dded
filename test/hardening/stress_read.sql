-- stress: read as a random tenant; every row must be the tenant's own
\set t random(1, :tenants)
\set lo random(1, :tenants * 60)
BEGIN;
SELECT tenant_isolation.login_local(token) IS NOT NULL AS in_context FROM stress_token WHERE n = :t \gset
SELECT count(*) FILTER (WHERE i.tenant_id <> k.tenant OR split_part(i.payload, ':', 1) <> k.tenant::text) AS bad,
	   count(*) AS seen
  FROM items i, stress_token k
 WHERE k.n = :t AND i.id BETWEEN :lo AND :lo + 500 \gset
SELECT CAST(:bad AS bigint) + count(*) FILTER (WHERE i.tenant_id <> k.tenant OR split_part(i.payload, ':', 1) <> k.tenant::text) AS bad
  FROM items i, stress_token k
 WHERE k.n = :t \gset
COMMIT;
\if :bad != 0
INSERT INTO stress_violation (n, rows_seen) VALUES (:t, :bad);
SELECT stress_fail(:bad);
\endif
