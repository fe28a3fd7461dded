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

--
-- Every refusal is audited (issue 13.7): a forged context by an ordinary
-- role (SET, SET LOCAL, RESET, set_config() in every form, ALTER ROLE SET,
-- a function's SET clause), assume_tenant() by a non-admin, and a context
-- switch refused inside a running statement.  Each attempt is refused as
-- before and leaves one event naming the way it was tried.
--
SELECT tenant_isolation.audit_flush();
SELECT coalesce(max(id), 0) AS start_id FROM tenant_isolation.audit_log \gset
CREATE TABLE audit_forge (tenant_id uuid NOT NULL, id int, body text);
INSERT INTO audit_forge VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'a-forge'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 1, 'B-SECRET-forge');
SELECT tenant_isolation.protect_table('audit_forge');
GRANT SELECT ON audit_forge TO regress_app, regress_support;
CREATE PROCEDURE audit_forge_proc(t text) LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE FUNCTION audit_swallow(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'not refused';
EXCEPTION WHEN insufficient_privilege THEN
	RETURN 'refused';
END
$$;

SET ROLE regress_app;
SET tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
BEGIN;
SET LOCAL tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
ROLLBACK;
RESET tenant_isolation.tenant_id;
SET Tenant_Isolation.Tenant_Id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
SELECT set_config('tenant_isolation.tenant_id', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', false);
PREPARE forge(text, text) AS SELECT set_config($1, $2, true);
EXECUTE forge('tenant_isolation.tenant_id', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
DEALLOCATE forge;
CALL audit_forge_proc(set_config('tenant_isolation.tenant_id', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', false));
-- refused inside an exception block that swallows the error: still audited
SELECT audit_swallow($$SELECT set_config('tenant_isolation.tenant_id', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', false)$$);
SELECT audit_swallow($$SET tenant_isolation.claims = '{}'$$);
SELECT audit_swallow($$SET tenant_isolation.tenant_claim = 'org_id'$$);
SELECT sqlstate_of($$ALTER ROLE regress_app SET tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'$$);
SET ROLE regress_owner;
SELECT sqlstate_of($$CREATE FUNCTION audit_forged() RETURNS int LANGUAGE sql
	SET tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' AS 'SELECT 1'$$);
SET ROLE regress_app;
-- allowed settings leave no event
SELECT set_config('application_name', 'pg_regress', false) IS NOT NULL AS allowed;
SELECT assume_tenant_denied FROM (SELECT sqlstate_of($$SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'forged')$$) AS assume_tenant_denied) s;
-- the administrators' functions and relations, refused by PostgreSQL's
-- EXECUTE and SELECT checks; what everyone may use leaves no event
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('forged tenant')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.audit_flush()$$);
SELECT sqlstate_of($$SELECT count(*) FROM tenant_isolation.audit_log$$);
SELECT sqlstate_of($$SELECT kid FROM tenant_isolation.jwt_keys$$);
SELECT sqlstate_of($$DELETE FROM tenant_isolation.tenant$$);
COPY tenant_isolation.jwt_key TO STDOUT;
SELECT sqlstate_of($$TRUNCATE tenant_isolation.tenant_key$$);
SELECT count(*) AS own_events FROM tenant_isolation.my_audit_log;
SELECT tenant_isolation.current_tenant() IS NULL AS allowed;
-- nothing was forged
SELECT tenant_isolation.current_tenant() IS NULL AS no_context,
	   current_setting('tenant_isolation.tenant_id') = '' AS setting_empty;
SELECT sqlstate_of($$SELECT body FROM audit_forge$$);
RESET ROLE;
SELECT setconfig FROM pg_db_role_setting WHERE setrole = 'regress_app'::regrole;
-- a superuser cannot store a context in a role's settings either
SELECT sqlstate_of($$ALTER ROLE regress_app SET tenant_isolation.tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'$$);

-- A context switch refused inside a statement that reads a protected table.
SET ROLE regress_support;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress switch');
SELECT sqlstate_of($$SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'mid-statement') FROM audit_forge$$);
SELECT body FROM audit_forge;
SELECT tenant_isolation.logout();
RESET ROLE;

SELECT tenant_isolation.audit_flush();
SELECT kind, object, sqlstate, detail,
	   CASE current_role_name WHEN session_user THEN 'superuser' ELSE current_role_name END AS role,
	   left(tenant::text, 8) AS tenant
  FROM tenant_isolation.audit_log
 WHERE id > :start_id
   AND kind IN ('denied_set_context', 'denied_setting', 'assume_tenant_denied',
				'denied_context_switch', 'denied_function', 'denied_relation')
 ORDER BY id;
SELECT count(*) AS b_values_in_events FROM tenant_isolation.audit_log
 WHERE id > :start_id AND concat_ws(' ', object, detail) LIKE '%B-SECRET%';

DROP FUNCTION audit_swallow(text);
DROP PROCEDURE audit_forge_proc(text);
SELECT tenant_isolation.unprotect_table('audit_forge');
DROP TABLE audit_forge;
