--
-- utility: the protection cannot be taken apart by DDL, and it follows
-- partitions and inheritance children created or attached later.
--
\set SHOW_CONTEXT never
SELECT tenant_isolation.create_tenant('tenant d', id => 'dddddddd-dddd-4ddd-8ddd-dddddddddddd');

-- the table owner cannot disable the pieces
SET ROLE regress_owner;
ALTER TABLE docs DISABLE ROW LEVEL SECURITY;
SELECT sqlstate_of($$ALTER TABLE docs NO FORCE ROW LEVEL SECURITY$$);
SELECT sqlstate_of($$ALTER TABLE docs DISABLE TRIGGER USER$$);
SELECT sqlstate_of($$ALTER TABLE docs DISABLE TRIGGER tenant_isolation_guard$$);
SELECT sqlstate_of($$ALTER TABLE docs ENABLE REPLICA TRIGGER tenant_isolation_guard$$);
SELECT sqlstate_of($$DROP TRIGGER tenant_isolation_guard ON docs$$);
SELECT sqlstate_of($$DROP POLICY tenant_isolation_fallback ON docs$$);
SELECT sqlstate_of($$DROP POLICY tenant_isolation_fallback ON events_a$$);
SELECT sqlstate_of($$ALTER TABLE events_a DISABLE ROW LEVEL SECURITY$$);
SELECT sqlstate_of($$ALTER TABLE docs DROP COLUMN tenant_id$$);
SELECT sqlstate_of($$ALTER TABLE docs ALTER COLUMN tenant_id TYPE text$$);
SELECT sqlstate_of($$ALTER TABLE docs RENAME COLUMN tenant_id TO owner_id$$);
SELECT sqlstate_of($$ALTER TRIGGER tenant_isolation_guard ON docs RENAME TO x$$);
-- other DDL is fine
ALTER TABLE docs ADD COLUMN extra int;
ALTER TABLE docs DROP COLUMN extra;

-- partitions created or attached later are covered at once
CREATE TABLE events_d PARTITION OF events FOR VALUES IN ('dddddddd-dddd-4ddd-8ddd-dddddddddddd');
CREATE TABLE events_e (tenant_id uuid NOT NULL, id int NOT NULL, amount numeric);
ALTER TABLE events ATTACH PARTITION events_e FOR VALUES IN ('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee');
-- a legacy inheritance child
CREATE TABLE docs_archive () INHERITS (docs);
GRANT SELECT ON events_d, events_e, docs_archive TO regress_app;
RESET ROLE;
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
	   (SELECT string_agg(polname, ',') FROM pg_policy WHERE polrelid = c.oid) AS policies,
	   (SELECT string_agg(tgname, ',') FROM pg_trigger
		 WHERE tgrelid = c.oid AND NOT tgisinternal) AS triggers
  FROM pg_class c WHERE c.relname IN ('events_d', 'events_e', 'docs_archive')
 ORDER BY c.relname;

INSERT INTO events VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', 1, 9100);
INSERT INTO events_e VALUES ('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee', 1, 9200);
INSERT INTO docs_archive VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 90, 'b-archived', 'B-SECRET-archived', NULL),
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 91, 'a-archived', 'alpha archived', NULL);

SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress utility');
SET ROLE regress_app;
SELECT count(*) FROM events_d;
SELECT count(*) FROM events_e;
SELECT id, amount FROM events ORDER BY id;
SELECT id, body FROM docs WHERE id >= 90 ORDER BY id;
SELECT id, body FROM docs_archive ORDER BY id;
SELECT id FROM docs_archive WHERE leak(body);
RESET ROLE;
SELECT tenant_isolation.assume_tenant('dddddddd-dddd-4ddd-8ddd-dddddddddddd', 'regress utility');
SET ROLE regress_app;
SELECT tenant_id, id, amount FROM events ORDER BY id;
RESET ROLE;
SELECT tenant_isolation.logout();

-- A protected table that becomes the child of an unprotected parent stays
-- scoped when read through the parent, barrier included.
CREATE TABLE note_parent (tenant_id uuid, body text);
GRANT SELECT ON note_parent TO regress_app;
ALTER TABLE notes INHERIT note_parent;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress utility');
SET ROLE regress_app;
SELECT body FROM note_parent ORDER BY body;
SELECT count(*) FROM note_parent WHERE leak(body);
RESET ROLE;
SELECT count(*) FROM note_parent WHERE leak(body);
SELECT tenant_isolation.logout();
ALTER TABLE notes NO INHERIT note_parent;
DROP TABLE note_parent;

-- A detached partition keeps its deny-all fallback: closed to ordinary
-- roles until an administrator decides what to do with it.
ALTER TABLE events DETACH PARTITION events_e;
SELECT tenant_isolation.create_tenant('tenant e', id => 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee');
SELECT tenant_isolation.assume_tenant('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee', 'regress utility');
SET ROLE regress_app;
SELECT count(*) FROM events_e;
RESET ROLE;
SELECT tenant_isolation.logout();
SELECT count(*) FROM events_e;
DROP TABLE events_e;

-- unprotect_table removes every piece, on partitions too
CREATE TABLE scratch (tenant_id uuid NOT NULL, v text) PARTITION BY LIST (tenant_id);
CREATE TABLE scratch_a PARTITION OF scratch FOR VALUES IN ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
SELECT tenant_isolation.protect_table('scratch');
SELECT tenant_isolation.unprotect_table('scratch');
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
	   (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) AS policies,
	   (SELECT count(*) FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal) AS triggers
  FROM pg_class c WHERE c.relname IN ('scratch', 'scratch_a') ORDER BY 1;
DROP TABLE scratch;

-- Large objects have no tenant: in a context an ordinary role can neither
-- create, read nor enumerate them.
SELECT lo_from_bytea(424242, 'shared blob') IS NOT NULL AS created;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress large objects');
SET ROLE regress_app;
SELECT lo_get(424242);
SELECT sqlstate_of($$SELECT lo_create(0)$$);
SELECT sqlstate_of($$SELECT lo_from_bytea(0, 'x')$$);
SELECT sqlstate_of($$SELECT lo_open(424242, 262144)$$);
SELECT sqlstate_of($$SELECT lo_unlink(424242)$$);
SELECT sqlstate_of($$SELECT count(*) FROM pg_largeobject_metadata$$);
RESET ROLE;
SELECT tenant_isolation.logout();
-- without a context nothing changes
SELECT count(*) FROM pg_largeobject_metadata WHERE oid = 424242;
SELECT lo_unlink(424242);

-- In a tenant context, DDL on a protected table is refused: an index
-- expression, a table rewrite, a trigger, a rule or a policy would run over
-- every tenant's rows.
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress ddl');
SET ROLE regress_owner;
CREATE INDEX ON docs (leak(body));
SELECT sqlstate_of($$ALTER TABLE docs ADD COLUMN leaked boolean DEFAULT leak(random()::text)$$);
SELECT sqlstate_of($$ALTER TABLE docs ALTER COLUMN title TYPE text USING (CASE WHEN leak(body) THEN title END)$$);
SELECT sqlstate_of($$CREATE TRIGGER peek BEFORE UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION tenant_isolation.guard_trigger()$$);
SELECT sqlstate_of($$CREATE RULE peek AS ON UPDATE TO docs DO ALSO NOTIFY peek$$);
SELECT sqlstate_of($$CREATE POLICY peek ON docs USING (leak(body))$$);
SELECT sqlstate_of($$CLUSTER docs USING docs_pkey$$);
SELECT sqlstate_of($$REINDEX TABLE docs$$);
SELECT sqlstate_of($$CREATE INDEX ON events_a (amount)$$);
-- unprotected tables are not affected
CREATE TABLE scratch_ctx (v text);
CREATE INDEX ON scratch_ctx (v);
DROP TABLE scratch_ctx;
RESET ROLE;
SELECT tenant_isolation.logout();
