--
-- leaks: the attack classes of issue 13, each tried as the application role
-- logged in as tenant A against rows of tenant B.  B's markers (B-SECRET,
-- b-slug, amounts >= 9000) must never appear in A's output, and B's rows
-- must be unchanged at the end of each class (checked as superuser).
--
\set SHOW_CONTEXT never

-- fixtures (superuser, no context)
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SET ROLE regress_owner;
CREATE TABLE lk_items (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	kind		text,
	secret		text,
	payload		jsonb,
	PRIMARY KEY (tenant_id, id)
);
-- indexes without the tenant column: an index scan or bitmap recheck on
-- them reaches every tenant's rows before the tenant qual
CREATE INDEX lk_items_kind ON lk_items (kind text_pattern_ops);
CREATE INDEX lk_items_trgm ON lk_items USING gin (secret gin_trgm_ops);
CREATE INDEX lk_items_payload ON lk_items USING gin (payload);
CREATE VIEW lk_items_v AS SELECT * FROM lk_items;
CREATE FUNCTION lk_items_f() RETURNS SETOF lk_items LANGUAGE sql STABLE
	AS 'SELECT * FROM lk_items';
GRANT SELECT, INSERT, UPDATE, DELETE ON lk_items, lk_items_v TO regress_app;
-- only a trigram index: a bitmap scan on it rechecks LIKE on every
-- tenant's heap rows
CREATE TABLE lk_trgm (tenant_id uuid NOT NULL, body text);
CREATE INDEX lk_trgm_body ON lk_trgm USING gin (body gin_trgm_ops);
GRANT SELECT ON lk_trgm TO regress_app;
RESET ROLE;
SELECT tenant_isolation.protect_table('lk_items');
SELECT tenant_isolation.protect_table('lk_trgm');
INSERT INTO lk_trgm SELECT 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'alpha-' || g
  FROM generate_series(1, 200) g;
INSERT INTO lk_trgm SELECT 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'B-SECRET-' || g
  FROM generate_series(1, 200) g;
ANALYZE lk_trgm;
INSERT INTO lk_items
SELECT 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', g, 'a-kind-' || g, 'alpha-' || g,
	   jsonb_build_object('k', 'a', 'n', g)
  FROM generate_series(1, 3000) g;
INSERT INTO lk_items
SELECT 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', g, 'B-SECRET-kind-' || g,
	   'B-SECRET-' || g, jsonb_build_object('k', 'b', 'n', 9000 + g)
  FROM generate_series(1, 500) g;
ANALYZE lk_items;

--
-- 1. Error oracles.  A LIKE pattern that ends in the escape character
-- raises an error only on rows that match the prefix before it: run on B's
-- rows (index condition, bitmap recheck, leakproof filter), it would tell A
-- that B has a row starting with 'B-SECRET-kind-4'.  Every form must answer
-- 0 without an error.
--
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress leaks');
SET ROLE regress_app;
SET enable_seqscan = off;
SELECT count(*) FROM lk_items WHERE kind LIKE 'B-SECRET-kind-4%\';
SELECT count(*) FROM lk_trgm WHERE body LIKE '%SECRET-4%\';
SELECT count(*) FROM lk_trgm WHERE body ILIKE '%secret-4%\';
SELECT count(*) FROM lk_items WHERE kind LIKE 'B-SECRET-kind-4%#' ESCAPE '#';
SELECT count(*) FROM lk_items_v WHERE kind LIKE 'B-SECRET-kind-4%\';
SELECT count(*) FROM lk_items_f() WHERE kind LIKE 'B-SECRET-kind-4%\';
SELECT count(*) FROM (SELECT kind FROM lk_items UNION ALL SELECT kind FROM lk_items) u
 WHERE kind LIKE 'B-SECRET-kind-4%\';
UPDATE lk_items SET id = id WHERE kind LIKE 'B-SECRET-kind-4%\';
DELETE FROM lk_items WHERE kind LIKE 'B-SECRET-kind-4%\';
COPY (SELECT id FROM lk_items WHERE kind LIKE 'B-SECRET-kind-4%\') TO stdout;
-- a pattern that is a parameter: unknown when a generic plan is made (a
-- sequential scan, where a leakproof filter may run first)
RESET enable_seqscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
PREPARE lk_like(text) AS SELECT count(*) FROM lk_items WHERE kind LIKE $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE lk_like('B-SECRET-kind-4%\');
EXECUTE lk_like('B-SECRET-kind-4%\');
EXECUTE lk_like('a-kind-1%');
SET plan_cache_mode = force_custom_plan;
EXECUTE lk_like('B-SECRET-kind-4%\');
RESET plan_cache_mode;
DEALLOCATE lk_like;
RESET enable_indexscan;
RESET enable_bitmapscan;
SET enable_seqscan = off;
-- the tenant's own rows still match, and a valid constant pattern keeps its
-- index (text_pattern_ops, trigram); an unsafe one (trailing escape,
-- parameter) stays behind the barrier as a filter
SELECT count(*) FROM lk_items WHERE kind LIKE 'a-kind-1%';
SELECT count(*) FROM lk_trgm WHERE body LIKE '%pha-2%';
SELECT count(*) FROM lk_items WHERE payload @> '{"k": "a"}';
SELECT count(*) FROM lk_items WHERE payload ? 'n';
EXPLAIN (COSTS OFF) SELECT id FROM lk_items WHERE kind LIKE 'a-kind-1%';
EXPLAIN (COSTS OFF) SELECT body FROM lk_trgm WHERE body LIKE '%pha-2%';
EXPLAIN (COSTS OFF) SELECT body FROM lk_trgm WHERE body LIKE '%SECRET-4%\';
SELECT id FROM lk_items WHERE payload @> '{"n": 7}';
EXPLAIN (COSTS OFF) SELECT id FROM lk_items WHERE kind LIKE 'B-SECRET-kind-4%\';
EXPLAIN (COSTS OFF) SELECT id FROM lk_items WHERE kind LIKE 'a-kind-42%';
RESET enable_seqscan;
RESET ROLE;
SELECT tenant_isolation.logout();
-- B's rows unchanged
SELECT count(*), min(secret), max(kind) FROM lk_items
 WHERE tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' AND secret LIKE 'B-SECRET-%';

--
-- 2. INSERT ... ON CONFLICT that meets B's row through a tenant-less unique
-- key: 42501 before any expression of A sees B's row (SET, WHERE,
-- RETURNING, through a view, in a WITH), nothing copied out, no lock kept.
--
SET ROLE regress_owner;
CREATE TABLE lk_slugs (
	tenant_id	uuid NOT NULL,
	slug		text UNIQUE,
	body		text,
	n			int DEFAULT 0
);
CREATE VIEW lk_slugs_v AS SELECT * FROM lk_slugs;
GRANT SELECT, INSERT, UPDATE ON lk_slugs, lk_slugs_v TO regress_app;
RESET ROLE;
SELECT tenant_isolation.protect_table('lk_slugs');
INSERT INTO lk_slugs VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'a-slug', 'alpha slug', 1),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'b-slug', 'B-SECRET-slug', 9001);
CREATE TABLE lk_stash (v text);
GRANT INSERT, SELECT ON lk_stash TO regress_app;
-- stores what it sees and answers false: with no error at all, the old
-- code let A copy B's row out
CREATE FUNCTION lk_stash_it(text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO lk_stash VALUES ($1);
	RETURN false;
END $$;

SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress leaks');
SET ROLE regress_app;
INSERT INTO lk_slugs (slug, body) VALUES ('b-slug', 'x')
	ON CONFLICT (slug) DO UPDATE SET body = lk_slugs.body::int::text;
INSERT INTO lk_slugs (slug, body) VALUES ('b-slug', 'x')
	ON CONFLICT (slug) DO UPDATE SET body = 'x' WHERE leak(lk_slugs.body);
INSERT INTO lk_slugs (slug, body) VALUES ('b-slug', 'x')
	ON CONFLICT (slug) DO UPDATE SET body = 'x' WHERE lk_stash_it(lk_slugs.body);
INSERT INTO lk_slugs (slug, body) VALUES ('b-slug', 'x')
	ON CONFLICT (slug) DO UPDATE SET body = 'x' WHERE false;
INSERT INTO lk_slugs (slug, body) VALUES ('b-slug', 'x')
	ON CONFLICT (slug) DO UPDATE SET n = lk_slugs.n + 1 RETURNING body, n;
INSERT INTO lk_slugs_v (slug, body) VALUES ('b-slug', 'x')
	ON CONFLICT (slug) DO UPDATE SET body = 'x' WHERE leak(lk_slugs_v.body);
WITH w AS (
	INSERT INTO lk_slugs (slug, body) VALUES ('b-slug', 'x')
	ON CONFLICT (slug) DO UPDATE SET body = 'x' WHERE leak(lk_slugs.body)
	RETURNING body)
SELECT * FROM w;
PREPARE lk_upsert(text) AS INSERT INTO lk_slugs (slug, body) VALUES ($1, 'x')
	ON CONFLICT (slug) DO UPDATE SET body = 'x' WHERE leak(lk_slugs.body);
SET plan_cache_mode = force_generic_plan;
EXECUTE lk_upsert('b-slug');
RESET plan_cache_mode;
-- A's own conflicts work as before
INSERT INTO lk_slugs (slug, body) VALUES ('a-slug', 'x')
	ON CONFLICT (slug) DO UPDATE SET n = lk_slugs.n + 1 RETURNING body, n;
EXECUTE lk_upsert('a-slug');
DEALLOCATE lk_upsert;
RESET ROLE;
SELECT tenant_isolation.logout();
-- B's row unchanged, nothing stashed
SELECT tenant_id, slug, body, n FROM lk_slugs ORDER BY slug;
SELECT count(*) AS stashed FROM lk_stash;

--
-- 3. TRUNCATE is judged on every relation it empties: CASCADE through a
-- foreign key from a protected table, and the protected child of an
-- unprotected inheritance parent.
--
SET ROLE regress_owner;
CREATE TABLE lk_global (id int PRIMARY KEY);
CREATE TABLE lk_refs (
	tenant_id	uuid NOT NULL,
	gid			int REFERENCES lk_global (id),
	body		text
);
CREATE TABLE lk_parent (id int, body text);
CREATE TABLE lk_kid (tenant_id uuid NOT NULL) INHERITS (lk_parent);
GRANT SELECT, TRUNCATE ON lk_global, lk_refs, lk_parent, lk_kid TO regress_app;
RESET ROLE;
SELECT tenant_isolation.protect_table('lk_refs');
SELECT tenant_isolation.protect_table('lk_kid');
INSERT INTO lk_global VALUES (1), (2);
INSERT INTO lk_refs VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 1, 'B-SECRET-ref');
INSERT INTO lk_kid VALUES (1, 'B-SECRET-kid', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress leaks');
SET ROLE regress_app;
TRUNCATE lk_global CASCADE;
TRUNCATE lk_parent;
TRUNCATE lk_refs;
TRUNCATE ONLY lk_parent;
RESET ROLE;
SELECT tenant_isolation.logout();
-- without a context, an ordinary role is refused too
SET ROLE regress_app;
TRUNCATE lk_global CASCADE;
TRUNCATE lk_parent;
RESET ROLE;
SELECT body FROM lk_refs UNION ALL SELECT body FROM lk_kid ORDER BY 1;
-- a superuser without a context is unrestricted
BEGIN;
TRUNCATE lk_global CASCADE;
SELECT count(*) FROM lk_refs;
ROLLBACK;

--
-- 4. Who counts as superuser without a context is the outer user.
--
CREATE FUNCTION lk_definer_secrets() RETURNS SETOF text LANGUAGE sql
	SECURITY DEFINER AS 'SELECT secret FROM lk_items WHERE secret LIKE ''B-%'' LIMIT 2';
CREATE FUNCTION lk_definer_count() RETURNS bigint LANGUAGE plpgsql
	SECURITY DEFINER AS $$ BEGIN RETURN (SELECT count(*) FROM lk_items); END $$;
CREATE VIEW lk_super_view AS SELECT secret FROM lk_items;
GRANT SELECT ON lk_super_view TO regress_app;
SET ROLE regress_app;
SELECT * FROM lk_definer_secrets();
SELECT lk_definer_count();
SELECT count(*) FROM lk_super_view;
RESET ROLE;
-- maintenance by a superuser, where PostgreSQL runs parts as the owner
SET max_parallel_maintenance_workers = 2;
SET min_parallel_table_scan_size = 0;
SET maintenance_work_mem = '64MB';
CREATE INDEX lk_items_secret ON lk_items (secret);
CLUSTER lk_items USING lk_items_pkey;
VACUUM FULL lk_items;
REINDEX TABLE lk_items;
SET ROLE regress_owner;
CREATE TABLE lk_part (tenant_id uuid NOT NULL, id int) PARTITION BY LIST (id);
CREATE TABLE lk_part_1 PARTITION OF lk_part FOR VALUES IN (1);
CREATE TABLE lk_part_2 (tenant_id uuid NOT NULL, id int);
RESET ROLE;
SELECT tenant_isolation.protect_table('lk_part');
INSERT INTO lk_part_2 VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 2);
CREATE INDEX lk_part_id ON lk_part (id);
ALTER TABLE lk_part ATTACH PARTITION lk_part_2 FOR VALUES IN (2);
-- referential checks of a superuser's write (run as the owner of the
-- referenced protected table)
INSERT INTO customers VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 77, 'B-SECRET-77');
INSERT INTO orders VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 770, 77);
DELETE FROM orders WHERE id = 770;
DELETE FROM customers WHERE id = 77;
-- and by the owner, outside any context
SET ROLE regress_owner;
CREATE INDEX lk_items_kind2 ON lk_items (kind);
CLUSTER lk_items USING lk_items_pkey;
VACUUM FULL lk_items;
DROP INDEX lk_items_kind2;
RESET ROLE;
RESET max_parallel_maintenance_workers;
RESET min_parallel_table_scan_size;
RESET maintenance_work_mem;
SELECT count(*) FROM lk_items;

--
-- 5. COPY FROM: core's checks (parity with an unprotected twin) plus the
-- tenant's: the guard, no trigger after it, no context switch inside, limits.
--
SET ROLE regress_owner;
CREATE TABLE lk_copy (
	tenant_id	uuid NOT NULL,
	n			int,
	g			int GENERATED ALWAYS AS (n * 2) STORED,
	note		text
);
CREATE TABLE lk_twin (LIKE lk_copy INCLUDING ALL);
GRANT SELECT, INSERT ON lk_copy, lk_twin TO regress_app;
REVOKE INSERT ON lk_copy, lk_twin FROM regress_app;
GRANT INSERT (tenant_id, n) ON lk_copy, lk_twin TO regress_app;
RESET ROLE;
SELECT tenant_isolation.protect_table('lk_copy');
SELECT tenant_isolation.create_tenant('leaks tenant', id => '1eaf0000-0000-4000-8000-00000000000d');
SELECT tenant_isolation.assume_tenant('1eaf0000-0000-4000-8000-00000000000d', 'regress leaks');
SET ROLE regress_app;
-- parity: each statement against the twin, then against the protected table
COPY lk_twin (tenant_id, n) FROM stdin WHERE g > 2;
1eaf0000-0000-4000-8000-00000000000d	1
\.
COPY lk_copy (tenant_id, n) FROM stdin WHERE g > 2;
1eaf0000-0000-4000-8000-00000000000d	1
\.
COPY lk_twin (tenant_id, n, note) FROM stdin;
1eaf0000-0000-4000-8000-00000000000d	1	x
\.
COPY lk_copy (tenant_id, n, note) FROM stdin;
1eaf0000-0000-4000-8000-00000000000d	1	x
\.
COPY lk_twin (tenant_id, n) FROM stdin WHERE nosuch > 1;
\.
COPY lk_copy (tenant_id, n) FROM stdin WHERE nosuch > 1;
\.
COPY lk_twin (tenant_id, n) FROM '/etc/hostname';
COPY lk_copy (tenant_id, n) FROM '/etc/hostname';
COPY lk_twin (tenant_id, n) FROM stdin WHERE n > 1;
1eaf0000-0000-4000-8000-00000000000d	1
1eaf0000-0000-4000-8000-00000000000d	2
1eaf0000-0000-4000-8000-00000000000d	3
\.
COPY lk_copy (tenant_id, n) FROM stdin WHERE n > 1;
1eaf0000-0000-4000-8000-00000000000d	1
1eaf0000-0000-4000-8000-00000000000d	2
1eaf0000-0000-4000-8000-00000000000d	3
\.
SELECT n, g FROM lk_twin ORDER BY n;
SELECT n, g FROM lk_copy ORDER BY n;
BEGIN READ ONLY;
COPY lk_copy (tenant_id, n) FROM stdin;
\.
ROLLBACK;
-- the tenant check: a row of B fails the whole COPY
COPY lk_copy (tenant_id, n) FROM stdin;
1eaf0000-0000-4000-8000-00000000000d	7
bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb	9007
\.
RESET ROLE;
SELECT tenant_isolation.logout();
-- a BEFORE trigger that fires after the guard could move the row to B
CREATE FUNCTION lk_retenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.tenant_id := 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
	RETURN NEW;
END $$;
CREATE TRIGGER zz_retenant BEFORE INSERT ON lk_copy
	FOR EACH ROW EXECUTE FUNCTION lk_retenant();
SELECT tenant_isolation.assume_tenant('1eaf0000-0000-4000-8000-00000000000d', 'regress leaks');
SET ROLE regress_app;
COPY lk_copy (tenant_id, n) FROM stdin;
1eaf0000-0000-4000-8000-00000000000d	8
\.
INSERT INTO lk_copy (tenant_id, n) VALUES ('1eaf0000-0000-4000-8000-00000000000d', 8);
RESET ROLE;
SELECT tenant_isolation.logout();
DROP TRIGGER zz_retenant ON lk_copy;
-- a trigger that leaves the tenant in the middle of the COPY
CREATE FUNCTION lk_switch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM tenant_isolation.logout();
	RETURN NEW;
END $$;
CREATE TRIGGER a_switch BEFORE INSERT ON lk_copy
	FOR EACH ROW EXECUTE FUNCTION lk_switch();
SELECT tenant_isolation.assume_tenant('1eaf0000-0000-4000-8000-00000000000d', 'regress leaks');
SET ROLE regress_app;
COPY lk_copy (tenant_id, n) FROM stdin;
1eaf0000-0000-4000-8000-00000000000d	9
\.
SELECT tenant_isolation.current_tenant();
RESET ROLE;
SELECT tenant_isolation.logout();
DROP TRIGGER a_switch ON lk_copy;
SELECT tenant_isolation.assume_tenant('1eaf0000-0000-4000-8000-00000000000d', 'regress leaks');
-- the row quota counts COPY rows
SELECT tenant_isolation.set_tenant_limits('1eaf0000-0000-4000-8000-00000000000d', max_rows => 4);
SET ROLE regress_app;
COPY lk_copy (tenant_id, n) FROM stdin;
1eaf0000-0000-4000-8000-00000000000d	10
1eaf0000-0000-4000-8000-00000000000d	11
\.
COPY lk_copy (tenant_id, n) FROM stdin;
1eaf0000-0000-4000-8000-00000000000d	12
\.
SELECT n FROM lk_copy ORDER BY n;
RESET ROLE;
SELECT tenant_isolation.set_tenant_limits('1eaf0000-0000-4000-8000-00000000000d', max_rows => NULL);
SELECT tenant_isolation.logout();
SELECT tenant_id, n FROM lk_copy WHERE tenant_id <> '1eaf0000-0000-4000-8000-00000000000d';

--
-- 6. EXPLAIN ANALYZE counts nothing of B: through an index without the
-- tenant column, the tenant qual filters B's rows (111 kinds 'B-SECRET-kind-4%'
-- and 200 trigram matches of 'SECRET'); no "Rows Removed", index rows, heap
-- blocks or buffers may count them.
--
-- the buffers every plan node (not the planner) touched
CREATE FUNCTION lk_plan_buffers(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	j jsonb;
BEGIN
	EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || q INTO j;
	RETURN (SELECT coalesce(sum(v::bigint), 0)
			  FROM jsonb_path_query(j, 'strict $[0].Plan.**."Shared Hit Blocks"') v)
		 + (SELECT coalesce(sum(v::bigint), 0)
			  FROM jsonb_path_query(j, 'strict $[0].Plan.**."Shared Read Blocks"') v);
END $$;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress leaks');
SET ROLE regress_app;
SET enable_seqscan = off;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
	SELECT id FROM lk_items WHERE kind LIKE 'B-SECRET-kind-4%';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
	SELECT body FROM lk_trgm WHERE body LIKE '%SECRET%';
SELECT lk_plan_buffers($$SELECT body FROM lk_trgm WHERE body LIKE '%SECRET%'$$);
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON)
	SELECT body FROM lk_trgm WHERE body LIKE '%SECRET%';
RESET enable_seqscan;
RESET ROLE;
SELECT tenant_isolation.logout();
