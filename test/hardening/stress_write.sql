-- stress: insert a row (tenant_id from the context's default, payload
-- prefixed with the tenant the client believes it is), update the newest
-- row of the tenant, count the insert in the unprotected ledger.  (No colon
-- directly before a letter in literals: pgbench -M prepared would take it
-- for a variable.)
\set t random(1, :tenants)
\set r random(1, 1000000000)
BEGIN;
SELECT tenant_isolation.login_local(token) IS NOT NULL AS in_context FROM stress_token WHERE n = :t \gset
INSERT INTO items (payload) SELECT tenant || ': written ' || CAST(:r AS int) FROM stress_token WHERE n = :t;
UPDATE items SET payload = split_part(payload, ':', 1) || ': updated ' || CAST(:r AS int)
 WHERE id = (SELECT max(id) FROM items);
UPDATE ledger SET inserts = inserts + 1 WHERE n = :t;
COMMIT;
