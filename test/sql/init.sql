--
-- init: install the extension, the fixtures every later suite uses, and the
-- argument checks of protect_table / unprotect_table / mark_global.
--
-- Tenant A is aaaaaaaa-...; tenant B is bbbbbbbb-...  Every row of B carries
-- a marker (B-SECRET, 'b-' ids in text, amounts >= 9000) that must never
-- appear in tenant A's output in any later suite.
--
CREATE EXTENSION tenant_isolation;
SELECT extname, extnamespace::regnamespace, extrelocatable FROM pg_extension
 WHERE extname = 'tenant_isolation';
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'tenant_isolation_admin';

-- Error texts shown with their SQLSTATE, no PL/pgSQL context lines.
\set SHOW_CONTEXT never
CREATE FUNCTION public.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
GRANT EXECUTE ON FUNCTION public.sqlstate_of(text) TO PUBLIC;

-- A function that is not leakproof and tells the world every value it sees.
CREATE FUNCTION public.leak(text) RETURNS boolean
	LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
	RAISE NOTICE 'leak saw: %', $1;
	RETURN true;
END
$$;

CREATE ROLE regress_owner;
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_support LOGIN;
GRANT tenant_isolation_admin TO regress_support;
GRANT CREATE, USAGE ON SCHEMA public TO regress_owner;

SELECT tenant_isolation.create_tenant('tenant a', id => 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
SELECT tenant_isolation.create_tenant('tenant b', id => 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
SELECT tenant_isolation.create_tenant('tenant c', 'shared', 'cccccccc-cccc-4ccc-8ccc-cccccccccccc');
SELECT name, tier, status FROM tenant_isolation.tenants ORDER BY name;

-- create_tenant argument checks
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant(NULL)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('tenant a')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('x', 'gold')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('x', 'shared', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('x', 'shared', 'not-a-uuid')$$);

-- Fixtures: owned by an ordinary role, used by another ordinary role.
SET ROLE regress_owner;
CREATE TABLE docs (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	title		text,
	body		text,
	tags		jsonb,
	PRIMARY KEY (tenant_id, id)
);
CREATE INDEX docs_title ON docs (tenant_id, title text_pattern_ops);

CREATE TABLE events (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	amount		numeric
) PARTITION BY LIST (tenant_id);
CREATE TABLE events_a PARTITION OF events FOR VALUES IN ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
CREATE TABLE events_b PARTITION OF events FOR VALUES IN ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
CREATE TABLE events_rest PARTITION OF events DEFAULT;

-- A unique key without the tenant column (the lint flags these).
CREATE TABLE notes (
	tenant_id	uuid NOT NULL,
	slug		text UNIQUE,
	body		text
);

CREATE TABLE customers (
	tenant_id	uuid NOT NULL,
	id			int PRIMARY KEY,
	name		text
);
CREATE TABLE orders (
	tenant_id	uuid NOT NULL,
	id			int PRIMARY KEY,
	customer_id	int REFERENCES customers (id)
);

CREATE TABLE countries (code text PRIMARY KEY, name text);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON docs, events, notes, customers, orders, countries
	TO regress_app;
RESET ROLE;

INSERT INTO docs VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'a-report', 'alpha one', '{"k": "a", "n": 1}'),
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 2, 'a-memo', 'alpha two', '{"k": "a", "n": 2}'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 1, 'b-report', 'B-SECRET-1', '{"k": "b", "n": 1}'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 3, 'b-plan', 'B-SECRET-3', '{"k": "b", "n": 3}');
INSERT INTO events VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 10),
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 2, 20),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 1, 9001),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 2, 9002),
	('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 1, 500);
INSERT INTO notes VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'a-welcome', 'alpha note'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'b-welcome', 'B-SECRET-note');
INSERT INTO customers VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'a-customer'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 2, 'B-SECRET-customer');
INSERT INTO orders VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 10, 1),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 20, 2);
INSERT INTO countries VALUES ('fr', 'France'), ('jp', 'Japan');

-- protect_table: who may call it, and bad input
SET ROLE regress_app;
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('docs')$$);
RESET ROLE;
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table(NULL)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('docs', 'nope')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('docs', 'title')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('no_such_table')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('pg_class', 'relname')$$);
CREATE VIEW docs_view AS SELECT * FROM docs;
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('docs_view')$$);
CREATE MATERIALIZED VIEW docs_mv AS SELECT * FROM docs;
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('docs_mv')$$);
DROP MATERIALIZED VIEW docs_mv;
CREATE TEMP TABLE tmp_t (tenant_id uuid);
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('tmp_t')$$);
DROP TABLE tmp_t;

-- the real ones; the admin role may do it too
SELECT tenant_isolation.protect_table('docs');
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('docs')$$);
SET ROLE regress_support;
SELECT tenant_isolation.protect_table('events');
RESET ROLE;
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('events_a')$$);
SELECT tenant_isolation.protect_table('notes');
SELECT tenant_isolation.protect_table('customers');
SELECT tenant_isolation.protect_table('orders');
SELECT tenant_isolation.mark_global('countries');
SELECT sqlstate_of($$SELECT tenant_isolation.mark_global('countries')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.mark_global('docs')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('countries', 'code')$$);

SELECT "table", tenant_column FROM tenant_isolation.protected_tables ORDER BY "table"::text;
SELECT "table" FROM tenant_isolation.global_tables;

-- what protect_table put on each relation, partitions included
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
	   (SELECT string_agg(polname || ':' || pg_get_expr(polqual, polrelid), ',')
		  FROM pg_policy WHERE polrelid = c.oid) AS policies,
	   (SELECT string_agg(tgname, ',') FROM pg_trigger
		 WHERE tgrelid = c.oid AND NOT tgisinternal) AS triggers
  FROM pg_class c
 WHERE c.relname IN ('docs', 'events', 'events_a', 'events_b', 'events_rest', 'notes')
 ORDER BY c.relname;
SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef
 WHERE adrelid = 'docs'::regclass AND adnum = 1;

-- unprotect and protect again
SELECT tenant_isolation.unprotect_table('notes');
SELECT relrowsecurity, relforcerowsecurity,
	   (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND NOT tgisinternal)
  FROM pg_class WHERE oid = 'notes'::regclass;
SELECT sqlstate_of($$SELECT tenant_isolation.unprotect_table('notes')$$);
SELECT tenant_isolation.protect_table('notes');

-- A dropped table leaves the catalog with it.
CREATE TABLE short_lived (tenant_id uuid);
SELECT tenant_isolation.protect_table('short_lived');
DROP TABLE short_lived;
SELECT count(*) FROM tenant_isolation.protected_table WHERE tbl::text = 'short_lived';

-- ordinary roles read the DBA views but not the catalogs
SET ROLE regress_app;
SELECT count(*) FROM tenant_isolation.protected_tables;
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.protected_table$$);
SELECT sqlstate_of($$INSERT INTO tenant_isolation.tenant (id, name) VALUES (gen_random_uuid(), 'evil')$$);
SELECT sqlstate_of($$DELETE FROM tenant_isolation.protected_table$$);
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('evil')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.unprotect_table('docs')$$);
-- without a context, an ordinary role sees no tenant in the view
SELECT count(*) FROM tenant_isolation.tenants;
RESET ROLE;
