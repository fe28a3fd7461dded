--
-- context: who may set the tenant context, deny by default, and what a
-- change of context leaves behind.
--
\set SHOW_CONTEXT never

-- ordinary roles cannot set the context by any path
SET ROLE regress_app;
SHOW tenant_isolation.tenant_id;
SELECT tenant_isolation.current_tenant();
SELECT sqlstate_of($$SET tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'$$);
SELECT sqlstate_of($$SET LOCAL tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'$$);
SELECT sqlstate_of($$RESET tenant_isolation.tenant_id$$);
SELECT sqlstate_of($$SELECT set_config('tenant_isolation.tenant_id', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', false)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'x')$$);
SELECT tenant_isolation.current_tenant();

-- deny by default: every statement on a protected table, no rows, no values
SELECT * FROM docs;
SELECT sqlstate_of($$SELECT count(*) FROM docs$$);
SELECT sqlstate_of($$SELECT * FROM events_b$$);
SELECT sqlstate_of($$SELECT 1 FROM countries WHERE EXISTS (SELECT 1 FROM docs)$$);
SELECT sqlstate_of($$INSERT INTO docs (id, body) VALUES (50, 'x')$$);
SELECT sqlstate_of($$UPDATE docs SET body = 'x'$$);
SELECT sqlstate_of($$DELETE FROM docs$$);
SELECT sqlstate_of($$EXPLAIN SELECT * FROM docs$$);
-- a global table needs no context
SELECT code FROM countries ORDER BY code;
RESET ROLE;

-- a superuser without a context is unrestricted
SELECT tenant_id, id, body FROM docs ORDER BY tenant_id, id;

-- the context comes only from a session-level SET (login and friends)
ALTER ROLE regress_app SET tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
SET tenant_isolation.tenant_id = 'not-a-uuid';

-- assume_tenant: admins only, with a reason, for an existing tenant
SET ROLE regress_support;
SELECT sqlstate_of($$SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '  ')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', NULL)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.assume_tenant(NULL, 'reason')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.assume_tenant('dddddddd-dddd-4ddd-8ddd-dddddddddddd', 'reason')$$);
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'support ticket 1');
SHOW tenant_isolation.tenant_id;
RESET ROLE;

-- the context survives SET ROLE; the app now sees tenant A only
SET ROLE regress_app;
SELECT tenant_isolation.current_tenant();
SELECT tenant_id, id, body FROM docs ORDER BY id;
SELECT name FROM tenant_isolation.tenants;
RESET ROLE;

-- logout
SELECT tenant_isolation.logout();
SELECT tenant_isolation.current_tenant();
SHOW tenant_isolation.tenant_id;

-- a context change is transactional, like SET
BEGIN;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'rollback test');
ROLLBACK;
SELECT tenant_isolation.current_tenant();
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'rollback test');
BEGIN;
SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'rollback test');
ROLLBACK;
SELECT tenant_isolation.current_tenant();
BEGIN;
SELECT tenant_isolation.logout();
ROLLBACK;
SELECT tenant_isolation.current_tenant();

-- RESET ALL and DISCARD ALL clear it, also for an ordinary role
RESET ALL;
SELECT tenant_isolation.current_tenant();
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'discard test');
DISCARD ALL;
SELECT tenant_isolation.current_tenant();
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'reset test');
SET ROLE regress_app;
RESET ALL;
SELECT tenant_isolation.current_tenant();
SELECT sqlstate_of($$SELECT count(*) FROM docs$$);
RESET ROLE;

-- One context per statement: a statement that reads a protected table
-- cannot change the context half way; the refused statement rolls back to
-- the context it started with.
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'mid-statement test');
SELECT id, tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'sneaky') FROM docs;
SELECT tenant_isolation.current_tenant();
SHOW tenant_isolation.tenant_id;
SET ROLE regress_app;
SELECT id FROM docs ORDER BY id;
RESET ROLE;
SELECT tenant_isolation.logout();

-- Between statements of a function the context may change; each statement
-- runs under the context in force when it started.
CREATE FUNCTION public.sum_ids_as(t uuid) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
	PERFORM tenant_isolation.assume_tenant(t, 'function test');
	RETURN (SELECT sum(id) FROM docs);
END
$$;
SELECT sum_ids_as('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa') AS a,
	   sum_ids_as('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb') AS b;
SELECT tenant_isolation.logout();

-- Switching tenants closes cursors and drops temporary objects of the
-- previous tenant: nothing of A stays reachable under B.
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'cursor test');
SET ROLE regress_app;
BEGIN;
DECLARE held CURSOR WITH HOLD FOR SELECT id, body FROM docs ORDER BY id;
COMMIT;
FETCH 1 FROM held;
CREATE TEMP TABLE a_copy AS SELECT body FROM docs;
RESET ROLE;
SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'cursor test');
SET ROLE regress_app;
FETCH 1 FROM held;
SELECT * FROM a_copy;
CREATE TEMP TABLE b_copy AS SELECT body FROM docs;
RESET ROLE;
-- entering the same tenant again keeps them
SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'cursor test');
SELECT count(*) FROM b_copy;
-- logout discards them
SELECT tenant_isolation.logout();
SELECT count(*) FROM b_copy;

-- A loop over a query pins its cursor: switching tenants inside it is
-- refused with a clear error (the switch would close that cursor).
CREATE FUNCTION public.switch_in_loop() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT code FROM countries LOOP
		PERFORM tenant_isolation.assume_tenant(
			CASE WHEN r.code = 'fr' THEN 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'::uuid
				 ELSE 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'::uuid END, 'loop test');
	END LOOP;
END
$$;
SELECT switch_in_loop();
SELECT tenant_isolation.current_tenant();
