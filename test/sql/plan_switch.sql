--
-- plan_switch: a generic plan cached under one tenant and executed after a
-- switch to another (issue 17).  Cached plans read the tenant at execution
-- (_current_tenant_uuid()), plans used once carry it as a constant; either
-- way B's rows (markers B-SECRET) never reach A and A's (A-ONLY) never B.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tenant_isolation;
RESET client_min_messages;

CREATE TABLE ps_items (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text,
	PRIMARY KEY (tenant_id, id)
);
CREATE TABLE ps_parts (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text
) PARTITION BY LIST (tenant_id);
CREATE TABLE ps_parts_a PARTITION OF ps_parts FOR VALUES IN ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
CREATE TABLE ps_parts_b PARTITION OF ps_parts FOR VALUES IN ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
INSERT INTO ps_items VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'A-ONLY-1'),
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 2, 'A-ONLY-2'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 1, 'B-SECRET-1'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 3, 'B-SECRET-3');
INSERT INTO ps_parts SELECT * FROM ps_items;
SELECT tenant_isolation.protect_table('ps_items');
SELECT tenant_isolation.protect_table('ps_parts');
GRANT SELECT, INSERT, UPDATE, DELETE ON ps_items, ps_parts TO regress_app;

SET plan_cache_mode = force_generic_plan;

-- Prepared under A, by the application role.
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress plan_switch');
SET ROLE regress_app;
PREPARE sel(int) AS SELECT tenant_id, id, body FROM ps_items WHERE id <= $1 ORDER BY id;
PREPARE psel(int) AS SELECT tenant_id, id, body FROM ps_parts WHERE id <= $1 ORDER BY id;
PREPARE upd(int, text) AS UPDATE ps_items SET body = body || $2 WHERE id = $1 RETURNING tenant_id, id, body;
PREPARE del(int) AS DELETE FROM ps_items WHERE id = $1 RETURNING tenant_id, id, body;
PREPARE ins(uuid, int, text) AS INSERT INTO ps_items VALUES ($1, $2, $3) RETURNING tenant_id, id, body;
PREPARE pins(uuid, int, text) AS INSERT INTO ps_parts VALUES ($1, $2, $3) RETURNING tenant_id, id, body;
-- the cached plan reads the tenant at execution: no constant in it
EXPLAIN (COSTS OFF) EXECUTE sel(10);
EXPLAIN (COSTS OFF) EXECUTE psel(10);
EXECUTE sel(10);
EXECUTE psel(10);
RESET ROLE;

-- Switch to B with assume_tenant: the same cached plans show B's rows only.
SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'regress plan_switch');
SET ROLE regress_app;
EXECUTE sel(10);
EXECUTE psel(10);
-- UPDATE and DELETE by a key both tenants use: only B's row changes
EXECUTE upd(1, '-upd-by-B');
EXECUTE del(3);
-- WITH CHECK reads the context at execution: B inserts for B, not for A
EXECUTE ins('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 4, 'B-SECRET-4');
EXECUTE ins('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 5, 'planted-by-B');
EXECUTE pins('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 4, 'B-SECRET-4');
EXECUTE pins('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 5, 'planted-by-B');
RESET ROLE;

-- Back to A with a session-level SET (what login() does): A's rows are
-- untouched by B's statements, and B's writes are invisible.
SELECT tenant_isolation.logout();
SET tenant_isolation.tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
SET ROLE regress_app;
PREPARE sel2(int) AS SELECT tenant_id, id, body FROM ps_items WHERE id <= $1 ORDER BY id;
EXECUTE sel2(10);
EXECUTE psel(10);
EXECUTE upd(3, '-upd-by-A');
EXECUTE del(4);
EXECUTE ins('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 6, 'planted-by-A');
EXECUTE ins('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 6, 'A-ONLY-6');
RESET ROLE;
RESET tenant_isolation.tenant_id;

-- Transaction-scoped switches (what login_local() does), B then A then B:
-- the plan made under the first transaction's tenant serves the others.
BEGIN;
SET LOCAL tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
SET LOCAL ROLE regress_app;
EXECUTE sel2(10);
EXECUTE psel(10);
COMMIT;
BEGIN;
SET LOCAL tenant_isolation.tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
SET LOCAL ROLE regress_app;
EXECUTE sel2(10);
EXECUTE psel(10);
COMMIT;
-- without a context the cached plan is refused, never run unscoped
SET ROLE regress_app;
SELECT sqlstate_of($$EXECUTE sel2(10)$$);
RESET ROLE;

-- A custom plan carries the constant (it is used once); the next tenant's
-- custom plan carries the next tenant.
SET plan_cache_mode = force_custom_plan;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress plan_switch');
SET ROLE regress_app;
EXPLAIN (COSTS OFF) EXECUTE sel(10);
EXECUTE sel(10);
RESET ROLE;
SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'regress plan_switch');
SET ROLE regress_app;
EXECUTE sel(10);
RESET ROLE;
SET plan_cache_mode = force_generic_plan;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress plan_switch');
SET ROLE regress_app;
PREPARE sel3 AS SELECT tenant_id, id, body FROM ps_items ORDER BY id;
RESET ROLE;
COMMENT ON TABLE ps_items IS 'invalidates sel3';
SET ROLE regress_app;
-- re-analysed (the plan cache plans a copy): still the run-time form
EXPLAIN (COSTS OFF) EXECUTE sel3;
EXECUTE sel3;
RESET ROLE;
SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'regress plan_switch');
SET ROLE regress_app;
EXECUTE sel3;
EXPLAIN (COSTS OFF) EXECUTE sel3;
RESET ROLE;

-- Simple-protocol statements plan with the constant.
SET ROLE regress_app;
EXPLAIN (COSTS OFF) SELECT body FROM ps_items WHERE id = 1;
SELECT tenant_id, id, body FROM ps_items ORDER BY id;
RESET ROLE;

-- What each tenant holds in the end, read by the superuser unscoped.
SELECT tenant_isolation.logout();
DEALLOCATE ALL;
RESET plan_cache_mode;
SELECT tenant_id, id, body FROM ps_items ORDER BY tenant_id, id;
SELECT tenant_id, id, body FROM ps_parts ORDER BY tenant_id, id;
SELECT tenant_isolation.unprotect_table('ps_items');
SELECT tenant_isolation.unprotect_table('ps_parts');
DROP TABLE ps_items, ps_parts;
