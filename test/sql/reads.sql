--
-- reads: in tenant A's context, no statement returns, counts or shows a row
-- of tenant B (markers B-SECRET, b-*, amounts >= 9000), at any query level.
--
\set SHOW_CONTEXT never

-- fixtures of this suite (as superuser, outside any context)
CREATE VIEW docs_owner_view AS SELECT id, body FROM docs;
ALTER VIEW docs_owner_view OWNER TO regress_owner;
CREATE VIEW docs_barrier_view WITH (security_barrier) AS SELECT id, body FROM docs;
GRANT SELECT ON docs_view, docs_owner_view, docs_barrier_view TO regress_app;
GRANT SELECT ON events_a, events_b, events_rest TO regress_app;
CREATE FUNCTION all_bodies() RETURNS SETOF text LANGUAGE sql STABLE
	AS 'SELECT body FROM docs';
CREATE FUNCTION all_bodies_union() RETURNS SETOF text LANGUAGE sql STABLE
	AS 'SELECT body FROM docs UNION ALL SELECT name FROM customers';
CREATE FUNCTION count_docs_plpgsql() RETURNS bigint LANGUAGE plpgsql
	AS $$ BEGIN RETURN (SELECT count(*) FROM docs); END $$;
CREATE FUNCTION dyn_bodies() RETURNS SETOF text LANGUAGE plpgsql
	AS $$ BEGIN RETURN QUERY EXECUTE 'SELECT body FROM ' || 'docs'; END $$;
-- owned by the superuser who runs this suite, SECURITY DEFINER
CREATE FUNCTION definer_bodies() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
	AS 'SELECT body FROM docs';
CREATE FUNCTION definer_count() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	AS $$ BEGIN RETURN (SELECT count(*) FROM docs); END $$;
CREATE INDEX docs_tags ON docs USING gin (tags);
ANALYZE docs;

SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress reads');
SET ROLE regress_app;

-- plain reads, and predicates that ask for B
SELECT tenant_id, id, title, body, tags FROM docs ORDER BY id;
SELECT count(*) FROM docs WHERE body LIKE 'B-SECRET%';
SELECT count(*) FROM docs WHERE tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
SELECT id FROM docs WHERE tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' OR true ORDER BY id;
SELECT count(*) FROM docs WHERE tags @> '{"k": "b"}';

-- subqueries, sublinks
SELECT * FROM (SELECT id, body FROM docs) s ORDER BY id;
SELECT (SELECT string_agg(body, ',' ORDER BY id) FROM docs) AS bodies;
SELECT code FROM countries WHERE EXISTS (SELECT 1 FROM docs WHERE body LIKE 'B-%');
SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers) ORDER BY id;
SELECT code, (SELECT max(amount) FROM events) FROM countries ORDER BY code;
-- anti-joins whose inner side matches only B's rows: A's doc 1 has a twin
-- id in B (B-SECRET-1) and A has no id 3 (B's doc 3 would show)
SELECT id FROM docs d WHERE NOT EXISTS
	(SELECT 1 FROM docs x WHERE x.id = d.id AND x.tenant_id <> d.tenant_id) ORDER BY id;
SELECT v.id FROM (VALUES (1), (2), (3)) v(id)
 WHERE NOT EXISTS (SELECT 1 FROM docs d WHERE d.id = v.id) ORDER BY 1;
SELECT v.n FROM (VALUES (9001), (9002), (10)) v(n)
 WHERE v.n NOT IN (SELECT amount FROM events) ORDER BY 1;

-- CTEs: plain, materialized, recursive, data-modifying
WITH d AS (SELECT body FROM docs) SELECT * FROM d ORDER BY 1;
WITH d AS MATERIALIZED (SELECT body FROM docs) SELECT * FROM d ORDER BY 1;
WITH RECURSIVE r AS (
	SELECT id, body FROM docs WHERE id = 1
	UNION
	SELECT d.id, d.body FROM docs d JOIN r ON d.id = r.id + 1
) SELECT * FROM r ORDER BY id;
WITH u AS (UPDATE docs SET title = title RETURNING id, body) SELECT * FROM u ORDER BY id;
WITH x AS (SELECT id FROM events) SELECT count(*) FROM x;

-- joins, outer joins, LATERAL
SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id;
SELECT c.code, d.body FROM countries c LEFT JOIN docs d ON d.id = 1 ORDER BY c.code;
SELECT d.id, d.body, e.amount FROM docs d FULL JOIN events e ON e.id = d.id ORDER BY 1, 3;
SELECT c.name, l.body FROM customers c,
	LATERAL (SELECT body FROM docs d WHERE d.id >= c.id ORDER BY d.id LIMIT 1) l;

-- set operations
SELECT body FROM docs UNION SELECT name FROM customers ORDER BY 1;
-- each of these would change with one of B's rows on either side: B has
-- (B, 1) in both tables, doc 3 and amounts 9001/9002
SELECT tenant_id, id FROM docs INTERSECT SELECT tenant_id, id FROM events ORDER BY 1, 2;
SELECT id FROM docs INTERSECT SELECT * FROM (VALUES (1), (3)) v(id) ORDER BY 1;
SELECT amount FROM events INTERSECT SELECT * FROM (VALUES (10), (9001), (500)) v(a) ORDER BY 1;
SELECT id FROM docs EXCEPT SELECT id FROM events ORDER BY 1;
SELECT * FROM (VALUES (1), (2), (3)) v(id) EXCEPT SELECT id FROM docs ORDER BY 1;
SELECT * FROM (VALUES (10), (9001), (9002)) v(a) EXCEPT ALL SELECT amount FROM events ORDER BY 1;
SELECT body FROM docs UNION ALL SELECT body FROM notes ORDER BY 1;

-- views: superuser-owned, owned by another role, security barrier
SELECT id, body FROM docs_view ORDER BY id;
SELECT id, body FROM docs_owner_view ORDER BY id;
SELECT id, body FROM docs_barrier_view ORDER BY id;

-- functions: inlined SQL (also a UNION ALL inside), plpgsql, dynamic SQL,
-- a superuser's SECURITY DEFINER functions
SELECT * FROM all_bodies() ORDER BY 1;
SELECT * FROM all_bodies_union() ORDER BY 1;
SELECT count_docs_plpgsql();
SELECT * FROM dyn_bodies() ORDER BY 1;
SELECT * FROM definer_bodies() ORDER BY 1;
SELECT definer_count();

-- cursors, prepared statements, FOR UPDATE
BEGIN;
DECLARE c CURSOR FOR SELECT id, body FROM docs ORDER BY id;
FETCH ALL FROM c;
CLOSE c;
COMMIT;
PREPARE by_id(int) AS SELECT body FROM docs WHERE id = $1;
EXECUTE by_id(1);
EXECUTE by_id(3);
DEALLOCATE by_id;
SELECT id FROM docs ORDER BY id FOR UPDATE;

-- EXPLAIN ANALYZE shows A's 2 rows and no count of B's: the tenant qual
-- removes B's 2 rows, and no "Rows Removed by Filter" line may tell
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM docs;

-- COPY out, both forms
COPY (SELECT id, body FROM docs ORDER BY id) TO STDOUT;
COPY docs TO STDOUT;
COPY docs (id, body) TO STDOUT;

-- partitions: through the parent, directly, and pruning
SELECT tenant_id, id, amount FROM events ORDER BY id;
SELECT count(*) FROM events_b;
SELECT count(*) FROM events_rest;
SELECT sum(amount) FROM events;

-- Security barrier: a function that is not leakproof sees tenant A's rows
-- only, wherever it appears.
SELECT id FROM docs WHERE leak(body) ORDER BY id;
SELECT count(*) FROM (SELECT body FROM docs UNION ALL SELECT name FROM customers) u
 WHERE leak(u.body);
SELECT count(*) FROM all_bodies() b WHERE leak(b);
SELECT count(*) FROM all_bodies_union() b WHERE leak(b);
SELECT count(*) FROM docs_barrier_view WHERE leak(body);
SELECT count(*) FROM docs d JOIN countries c ON leak(d.body || c.code);

-- statistics of protected tables are hidden from ordinary roles
SELECT count(*) FROM pg_stats WHERE tablename = 'docs';
RESET ROLE;

-- A superuser in a tenant context is scoped the same way (row level
-- security does not apply to superusers: only the injected qual does).
SELECT tenant_id, id, body FROM docs ORDER BY id;
SELECT id FROM docs WHERE leak(body) ORDER BY id;
SELECT count(*) FROM (SELECT body FROM docs UNION ALL SELECT name FROM customers) u
 WHERE leak(u.body);
SELECT count(*) FROM all_bodies_union() b WHERE leak(b);
COPY docs TO STDOUT;
SELECT * FROM definer_bodies() ORDER BY 1;

-- The plans: the tenant qual is an index condition on (tenant_id, ...),
-- prunes partitions, and runs before a leaky user qual.  (The tables are
-- tiny: sequential scans are disabled to show the index paths.)
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM docs WHERE id = 1;
EXPLAIN (COSTS OFF) SELECT * FROM docs WHERE title LIKE 'a-%';
EXPLAIN (COSTS OFF) SELECT * FROM events;
EXPLAIN (COSTS OFF) SELECT id FROM docs WHERE leak(body);
EXPLAIN (COSTS OFF) SELECT * FROM all_bodies();
RESET enable_seqscan;
-- Leak-safe built-ins keep their indexes (they raise no error whatever the
-- row holds): the LIKE prefix becomes a range on (tenant_id, title), jsonb
-- containment uses the GIN index, for an ordinary role as for a superuser.
SET enable_seqscan = off;
SET ROLE regress_app;
EXPLAIN (COSTS OFF) SELECT id FROM docs WHERE title LIKE 'a-%';
SELECT id FROM docs WHERE title LIKE 'b-%' OR tags @> '{"k": "b"}';
SELECT id, title FROM docs WHERE title LIKE 'a-%' AND tags @> '{"k": "a"}' ORDER BY id;
-- anything else around the column stays behind the barrier
EXPLAIN (COSTS OFF) SELECT id FROM docs WHERE lower(title) LIKE 'a-%';
RESET ROLE;
RESET enable_seqscan;
-- jsonb containment through a GIN index (its only index: without the
-- leak-safe marking there would be no index path at all)
CREATE TABLE payloads (tenant_id uuid NOT NULL, id int NOT NULL, payload jsonb);
CREATE INDEX payloads_gin ON payloads USING gin (payload);
INSERT INTO payloads
SELECT CASE WHEN g % 2 = 0 THEN 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'::uuid
			ELSE 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'::uuid END,
	   g, jsonb_build_object('k', g % 500, 'secret', CASE WHEN g % 2 = 1 THEN 'B-SECRET' END)
  FROM generate_series(1, 4000) g;
SELECT tenant_isolation.protect_table('payloads');
GRANT SELECT ON payloads TO regress_app;
ANALYZE payloads;
SET ROLE regress_app;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM payloads WHERE payload @> '{"k": 7}';
EXPLAIN (COSTS OFF) SELECT id FROM payloads WHERE leak(payload::text);
-- through the GIN index: k = 7 matches B's rows only (odd ids), k = 8 A's
-- only, so a leak shows as a count above 0 / above 8 and odd ids
SELECT count(*) FROM payloads WHERE payload @> '{"k": 7}';
SELECT count(*), min(id), max(id), count(*) FILTER (WHERE id % 2 = 1) AS odd
  FROM payloads WHERE payload @> '{"k": 7}' OR payload @> '{"k": 8}';
RESET enable_seqscan;
SELECT count(*), min(id), max(id), count(*) FILTER (WHERE id % 2 = 1) AS odd
  FROM payloads WHERE payload->>'k' IN ('7', '8');
SELECT count(*) FROM payloads WHERE payload @> '{"secret": "B-SECRET"}';
RESET ROLE;
-- estimates of leak-safe clauses use the column's statistics (issue 17):
-- with the default 1% for @> the planner ANDed the GIN scan with a scan of
-- A's whole (tenant_id) index; with the statistics (k = 7 matches 0.1%) the
-- GIN scan alone, rechecked, and the tenant qual as a filter.  The rows are
-- still only A's (ids divisible by 4), never B's (B-SECRET).
CREATE TABLE est_events (tenant_id uuid NOT NULL, id int NOT NULL, payload jsonb NOT NULL);
CREATE INDEX est_events_tenant ON est_events (tenant_id);
CREATE INDEX est_events_gin ON est_events USING gin (payload);
INSERT INTO est_events
SELECT CASE WHEN g % 4 = 0 THEN 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'::uuid
			ELSE 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'::uuid END,
	   g, jsonb_build_object('k', (g / 4) % 1000, 'secret', CASE WHEN g % 4 <> 0 THEN 'B-SECRET' END)
  FROM generate_series(1, 40000) g;
SELECT tenant_isolation.protect_table('est_events');
GRANT SELECT ON est_events TO regress_app;
VACUUM ANALYZE est_events;
SET ROLE regress_app;
EXPLAIN (COSTS OFF) SELECT id FROM est_events WHERE payload @> '{"k": 7}';
SELECT count(*), count(*) FILTER (WHERE id % 4 <> 0) AS not_a,
	   count(*) FILTER (WHERE payload ? 'secret' AND payload->>'secret' IS NOT NULL) AS b_secret
  FROM est_events WHERE payload @> '{"k": 7}';
RESET ROLE;

SELECT tenant_isolation.logout();
