-- stress: delete the tenant's oldest row; the ledger counts what was deleted
\set t random(1, :tenants)
BEGIN;
SELECT tenant_isolation.login_local(token) IS NOT NULL AS in_context FROM stress_token WHERE n = :t \gset
WITH d AS (DELETE FROM items WHERE id = (SELECT min(id) FROM items) RETURNING 1)
UPDATE ledger SET deletes = deletes + (SELECT count(*) FROM d) WHERE n = :t;
COMMIT;
