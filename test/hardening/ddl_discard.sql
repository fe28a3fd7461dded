-- DDL storm: a session-level login as a random tenant, a read of both
-- protected tables (only the tenant's rows), then DISCARD ALL, which must
-- leave no context behind.
\set t random(1, :tenants)
SELECT tenant_isolation.login(token) IS NOT NULL AS in_context FROM stress_token WHERE n = :t \gset
SELECT (SELECT count(*) FILTER (WHERE i.tenant_id <> k.tenant) FROM items i)
	 + (SELECT count(*) FILTER (WHERE p.tenant_id <> k.tenant) FROM parts p) AS bad
  FROM stress_token k WHERE k.n = :t \gset
DISCARD ALL;
SELECT count(tenant_isolation.current_tenant()) AS leftover \gset
\if :bad != 0
INSERT INTO stress_violation (n, rows_seen) VALUES (:t, :bad);
SELECT stress_fail(:bad);
\endif
\if :leftover != 0
SELECT stress_fail(-1);
\endif
