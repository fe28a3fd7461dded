--
-- cache: plans cached under one tenant re-execute under the next one.
--
\set SHOW_CONTEXT never
SET plan_cache_mode = force_generic_plan;
CREATE FUNCTION bodies_fn() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	SELECT string_agg(body, ',' ORDER BY id) INTO r FROM docs WHERE id < 10;
	RETURN r;
END
$$;

SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress cache');
SET ROLE regress_app;
PREPARE q AS SELECT tenant_id, id, body FROM docs WHERE id < 10 ORDER BY id;
PREPARE q2(int) AS SELECT count(*), string_agg(body, ',' ORDER BY id) FROM docs WHERE id < $1;
EXECUTE q;
EXECUTE q2(10);
SELECT bodies_fn();
RESET ROLE;

SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'regress cache');
SET ROLE regress_app;
EXECUTE q;
EXECUTE q2(10);
SELECT bodies_fn();
RESET ROLE;

SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress cache');
SET ROLE regress_app;
EXECUTE q2(10);
SELECT bodies_fn();
RESET ROLE;

-- after logout the same cached statements are refused
SELECT tenant_isolation.logout();
SET ROLE regress_app;
EXECUTE q;
SELECT sqlstate_of($$SELECT bodies_fn()$$);
RESET ROLE;

-- A plan a superuser made without a context (unscoped) is never reused by
-- an ordinary role.
PREPARE s AS SELECT count(*) FROM docs;
EXECUTE s;
SET ROLE regress_app;
EXECUTE s;
RESET ROLE;
DEALLOCATE ALL;

-- The end of a transaction-scoped context keeps the plans cached for its
-- tenant (a pooled client that logs into the same tenant again reuses them),
-- but such a plan never runs without a context.
BEGIN;
SET LOCAL tenant_isolation.tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
SET LOCAL ROLE regress_app;
PREPARE r AS SELECT count(*), string_agg(body, ',' ORDER BY id) FROM docs WHERE id < 10;
EXECUTE r;
COMMIT;
SET ROLE regress_app;
EXECUTE r;
RESET ROLE;
BEGIN;
SET LOCAL tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
SET LOCAL ROLE regress_app;
EXECUTE r;
COMMIT;
-- a superuser sees all rows without a context (the role changed: replanned)
EXECUTE r;
DEALLOCATE r;
-- a superuser's own plan made in a context is not run without one: the
-- first execution is refused and drops the plan, the second sees all rows
BEGIN;
SET LOCAL tenant_isolation.tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
PREPARE s2 AS SELECT count(*) FROM docs WHERE id < 10;
EXECUTE s2;
COMMIT;
EXECUTE s2;
EXECUTE s2;
DEALLOCATE s2;
RESET plan_cache_mode;
