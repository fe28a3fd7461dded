--
-- audit: the durable audit trail.  Every event is in tenant_isolation.audit_log
-- after audit_flush(), also when the statement that raised it rolled back; a
-- tenant sees only the events of its own context; the log is append-only, for
-- its owner and superusers too; no token appears in any event.
--
-- Other suites raise events in this database too: only events after :start_id
-- are shown, and only those of this suite's objects.
--
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT tenant_isolation.audit_flush();
SELECT coalesce(max(id), 0) AS start_id FROM tenant_isolation.audit_log \gset

CREATE TABLE audit_docs (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	body		text,
	PRIMARY KEY (tenant_id, id)
);
INSERT INTO audit_docs VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'a-audit'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 1, 'B-SECRET-audit');
SELECT tenant_isolation.protect_table('audit_docs');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON audit_docs TO regress_app;

-- Denials without a context, in transactions that roll back.
SET ROLE regress_app;
BEGIN;
SELECT * FROM audit_docs;
ROLLBACK;
BEGIN;
INSERT INTO audit_docs (tenant_id, id, body) VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 2, 'x');
ROLLBACK;
BEGIN;
SAVEPOINT s;
TRUNCATE audit_docs;
ROLLBACK TO SAVEPOINT s;
COMMIT;
RESET ROLE;

-- Denials in tenant A's context.
SET tenant_isolation.tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
SET ROLE regress_app;
BEGIN;
INSERT INTO audit_docs VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 2, 'B-SECRET-forged');
ROLLBACK;
TRUNCATE audit_docs;
SELECT lo_create(0) > 0;
RESET ROLE;
SELECT sqlstate_of($$ALTER TABLE audit_docs ADD COLUMN extra int DEFAULT 1$$);
RESET tenant_isolation.tenant_id;

-- A denial in tenant B's context.
SET tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
SET ROLE regress_app;
UPDATE audit_docs SET tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' WHERE id = 1;
RESET ROLE;
RESET tenant_isolation.tenant_id;

-- Administrative actions, one of them in a transaction that rolls back.
SET ROLE regress_support;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress audit ticket 42');
SELECT tenant_isolation.logout();
SELECT tenant_isolation.create_tenant('audit tenant 1', id => 'ad17ad17-0000-4000-8000-000000000001');
SELECT tenant_isolation.suspend_tenant('ad17ad17-0000-4000-8000-000000000001');
SELECT tenant_isolation.resume_tenant('ad17ad17-0000-4000-8000-000000000001');
SELECT tenant_isolation.drop_tenant('ad17ad17-0000-4000-8000-000000000001');
BEGIN;
SELECT tenant_isolation.create_tenant('audit tenant 2', id => 'ad17ad17-0000-4000-8000-000000000002');
ROLLBACK;
RESET ROLE;

-- A failed login: the reason is recorded, never the token.
SELECT sqlstate_of($$SELECT tenant_isolation.login('eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ')$$);

SELECT tenant_isolation.audit_flush();
SELECT kind, object, sqlstate, detail,
	   CASE current_role_name WHEN session_user THEN 'superuser' ELSE current_role_name END AS role,
	   left(tenant::text, 8) AS tenant,
	   session_user_name = session_user AS session_user_ok,
	   database = current_database() AS database_ok,
	   backend_pid = pg_backend_pid() AS pid_ok,
	   application_name IS NOT NULL AS has_appname,
	   event_time <= flushed_at AS time_ok
  FROM tenant_isolation.audit_log
 WHERE id > :start_id
   AND (object IN ('audit_docs', 'public.audit_docs', 'lo_create')
		OR object LIKE 'ad17ad17%' OR object LIKE 'aaaaaaaa%'
		OR kind IN ('logout', 'login_failed', 'denied_largeobject'))
 ORDER BY id;

-- no token, no row value of tenant B in any event
SELECT count(*) FROM tenant_isolation.audit_log
 WHERE id > :start_id
   AND (concat_ws(' ', object, detail, application_name) LIKE '%eyJ%'
		OR concat_ws(' ', object, detail) LIKE '%c2VjcmV0%'
		OR concat_ws(' ', object, detail) LIKE '%B-SECRET%');

-- A tenant sees the events of its own context only, even through a
-- function that is not leakproof and cheaper than the view's qual.
CREATE FUNCTION audit_probe(uuid) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
	IF $1 IS DISTINCT FROM 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' THEN
		RAISE NOTICE 'probe saw an event of another tenant';
	END IF;
	RETURN true;
END
$$;
SET tenant_isolation.tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
SET ROLE regress_app;
SELECT kind, object, detail FROM tenant_isolation.my_audit_log
 WHERE id > :start_id ORDER BY id;
SELECT count(*) > 0 AS sees_own, count(*) FILTER (WHERE tenant <> 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa') AS others
  FROM tenant_isolation.my_audit_log WHERE audit_probe(tenant);
SELECT sqlstate_of($$SELECT count(*) FROM tenant_isolation.audit_log$$);
SELECT sqlstate_of($$SELECT tenant_isolation.audit_flush()$$);
SELECT sqlstate_of($$SELECT tenant_isolation.audit_dropped()$$);
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.audit_stats$$);
RESET ROLE;
RESET tenant_isolation.tenant_id;
-- without a context, a tenant-scoped view shows nothing
SET ROLE regress_app;
SELECT count(*) FROM tenant_isolation.my_audit_log;
RESET ROLE;

-- Administrators read the whole log and the ring's counters.
SET ROLE regress_support;
SELECT count(*) > 0 AS admin_reads FROM tenant_isolation.audit_log WHERE id > :start_id;
SELECT ring_size > 0 AS has_ring, launcher_running, flush_paused,
	   tenant_isolation.audit_dropped() >= 0 AS dropped_readable
  FROM tenant_isolation.audit_stats;
RESET ROLE;

-- Append-only, for the owner and superusers too, in every replication role.
SELECT sqlstate_of($$UPDATE tenant_isolation.audit_log SET detail = 'x' WHERE id > 0$$);
SELECT sqlstate_of($$DELETE FROM tenant_isolation.audit_log$$);
SELECT sqlstate_of($$DELETE FROM tenant_isolation.audit_log WHERE false$$);
SELECT sqlstate_of($$TRUNCATE tenant_isolation.audit_log$$);
SELECT sqlstate_of($$INSERT INTO tenant_isolation.audit_log (event_time, database, kind) VALUES (now(), 'x', 'forged')$$);
SET session_replication_role = replica;
SELECT sqlstate_of($$DELETE FROM tenant_isolation.audit_log$$);
RESET session_replication_role;
SET ROLE regress_support;
SELECT sqlstate_of($$DELETE FROM tenant_isolation.audit_log$$);
RESET ROLE;
SELECT tenant_isolation.audit_flush();
SELECT kind, object, sqlstate, detail FROM tenant_isolation.audit_log
 WHERE id > :start_id AND kind = 'denied_audit_write' ORDER BY id;
SELECT count(*) FROM tenant_isolation.audit_log WHERE kind = 'forged';

DROP FUNCTION audit_probe(uuid);
SELECT tenant_isolation.unprotect_table('audit_docs');
DROP TABLE audit_docs;
