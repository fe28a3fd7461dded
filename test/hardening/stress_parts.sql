-- stress (STRESS_DDL=1): write a marker row into the partitioned table parts
-- as a random tenant and count it in the ledger, then read the whole table:
-- every row seen must be the tenant's own.
\set t random(1, :tenants)
\set b random(0, 3)
\set r random(1, 1000000000)
BEGIN;
SELECT tenant_isolation.login_local(token) IS NOT NULL AS in_context FROM stress_token WHERE n = :t \gset
INSERT INTO parts (bucket, payload) SELECT :b, tenant || ': parts ' || CAST(:r AS int) FROM stress_token WHERE n = :t;
UPDATE parts_ledger SET inserts = inserts + 1 WHERE n = :t;
SELECT count(*) FILTER (WHERE p.tenant_id <> k.tenant OR split_part(p.payload, ':', 1) <> k.tenant::text) AS bad
  FROM parts p, stress_token k
 WHERE k.n = :t \gset
COMMIT;
\if :bad != 0
INSERT INTO stress_violation (n, rows_seen) VALUES (:t, :bad);
SELECT stress_fail(:bad);
\endif
