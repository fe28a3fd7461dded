--
-- privilege: the boundary between tenant_isolation_admin and the superuser
-- (issue 15).  A member of the admin role provisions; it never obtains the
-- rights of a superuser or of another role through a function of the
-- extension, and it never weakens a protection unaudited.
--
-- Runs after init (roles regress_support, regress_owner; sqlstate_of).
--
\set SHOW_CONTEXT never
SELECT current_user AS superuser_name \gset

-- An administrator who is not a superuser and owns tables of its own.
CREATE ROLE regress_priv_admin LOGIN;
GRANT tenant_isolation_admin TO regress_priv_admin;
GRANT CREATE, USAGE ON SCHEMA public TO regress_priv_admin;
SELECT tenant_isolation.create_tenant('priv victim', 'shared', 'f1f1f1f1-f1f1-4f1f-8f1f-f1f1f1f1f1f1');
SELECT tenant_isolation.create_tenant('priv schema', 'schema', '5e5e5e5e-5e5e-45e5-85e5-5e5e5e5e5e5e');

-- 1. migrate_tenant_schemas(ddl) ran the caller's DDL as the superuser that
-- owns the extension: one call made an administrator a superuser.
\c - regress_priv_admin
\set SHOW_CONTEXT never
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.migrate_tenant_schemas('ALTER ROLE regress_priv_admin SUPERUSER')$$);
-- The per-tenant pass runs as the tenant's role: DDL that only does harm
-- when it is not run by the caller is refused there too.
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.migrate_tenant_schemas(
	'DO $x$ BEGIN IF current_user <> ''regress_priv_admin'' THEN ALTER ROLE regress_priv_admin SUPERUSER; END IF; END $x$')$$);
-- Nor can a migration leave objects behind in the caller's session.
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.migrate_tenant_schemas(
	'DO $x$ BEGIN IF current_user <> ''regress_priv_admin'' THEN CREATE TEMP TABLE priv_planted (x int); END IF; END $x$')$$);
\c - :superuser_name
\set SHOW_CONTEXT never
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_priv_admin';
-- A legitimate migration by the administrator: objects in the tenant's
-- schema are created by, and belong to, the tenant's role.
CREATE TABLE priv_tmpl (tenant_id uuid NOT NULL, id int NOT NULL);
ALTER TABLE priv_tmpl OWNER TO regress_priv_admin;
SELECT tenant_isolation.add_template_table('priv_tmpl');
\c - regress_priv_admin
\set SHOW_CONTEXT never
SELECT status, count(*) FROM tenant_isolation.migrate_tenant_schemas(
	'ALTER TABLE priv_tmpl ADD COLUMN note text; CREATE TABLE priv_made_by_migration (x int)')
 GROUP BY status ORDER BY status;
\c - :superuser_name
\set SHOW_CONTEXT never
SELECT c.relname, pg_get_userbyid(c.relowner) = n.nspname AS owned_by_tenant_role
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'tenant_5e5e5e5e5e5e45e585e55e5e5e5e5e5e' AND c.relkind = 'r'
 ORDER BY 1;
SELECT pg_get_userbyid(relowner) AS template_column_added_by FROM pg_class
 WHERE oid = 'priv_tmpl'::regclass
   AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'priv_tmpl'::regclass AND attname = 'note');

-- 2. _internal_ddl(true) outlived a protect_table that failed inside a
-- savepoint: the table owner then disabled the protection of another table,
-- with no error, no warning and no audit event.
\c - regress_priv_admin
\set SHOW_CONTEXT never
CREATE TABLE priv_t (tenant_id uuid NOT NULL, v text);
SELECT tenant_isolation.protect_table('priv_t');
CREATE TABLE priv_gen (tenant_id uuid GENERATED ALWAYS AS ('f1f1f1f1-f1f1-4f1f-8f1f-f1f1f1f1f1f1'::uuid) STORED, v text);
BEGIN;
SAVEPOINT s;
SELECT tenant_isolation.protect_table('priv_gen');
ROLLBACK TO SAVEPOINT s;
SELECT sqlstate_of($$ALTER TABLE priv_t DISABLE ROW LEVEL SECURITY$$);
SELECT sqlstate_of($$ALTER TABLE priv_t NO FORCE ROW LEVEL SECURITY$$);
SELECT sqlstate_of($$ALTER TABLE priv_t DISABLE TRIGGER tenant_isolation_guard$$);
SELECT sqlstate_of($$DROP POLICY tenant_isolation_fallback ON priv_t$$);
COMMIT;
SELECT relrowsecurity, relforcerowsecurity,
	   (SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'priv_t'::regclass
		   AND tgname = 'tenant_isolation_guard') AS guard,
	   (SELECT count(*) FROM pg_policy WHERE polrelid = 'priv_t'::regclass) AS policies
  FROM pg_class WHERE oid = 'priv_t'::regclass;
-- Nothing in SQL can switch the internal DDL state on.
SELECT count(*) AS internal_ddl_functions FROM pg_proc
 WHERE pronamespace = 'tenant_isolation'::regnamespace AND proname = '_internal_ddl';

-- 3. The row work of drop_tenant ran as the superuser, and with it every
-- trigger of a protected table: a table owner's trigger ran with superuser
-- rights.  It now runs as the table's owner, in the tenant's context.
CREATE FUNCTION priv_escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'trigger runs as superuser: %, sees tenant %',
		(SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
		tenant_isolation.current_tenant();
	BEGIN
		ALTER ROLE regress_priv_admin SUPERUSER;
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	-- a setting left behind would follow the caller's session
	PERFORM set_config('search_path', 'owner_planted', false);
	RETURN OLD;
END
$$;
CREATE TRIGGER priv_escalate BEFORE DELETE ON priv_t
	FOR EACH ROW EXECUTE FUNCTION priv_escalate();
\c - :superuser_name
\set SHOW_CONTEXT never
INSERT INTO priv_t VALUES ('f1f1f1f1-f1f1-4f1f-8f1f-f1f1f1f1f1f1', 'victim row'),
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'a row stays');
\c - regress_priv_admin
\set SHOW_CONTEXT never
SHOW search_path;
SELECT tenant_isolation.drop_tenant('f1f1f1f1-f1f1-4f1f-8f1f-f1f1f1f1f1f1');
SHOW search_path;
\c - :superuser_name
\set SHOW_CONTEXT never
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_priv_admin';
SELECT tenant_id, v FROM priv_t ORDER BY v;

-- The same for move_tenant: the rows a tenant brings into a shared table are
-- inserted as that table's owner, in the tenant's context.
CREATE FUNCTION priv_escalate_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'insert trigger runs as superuser: %, sees tenant %',
		(SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
		tenant_isolation.current_tenant();
	BEGIN
		ALTER ROLE regress_priv_admin SUPERUSER;
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	RETURN NEW;
END
$$;
\c - :superuser_name
\set SHOW_CONTEXT never
SELECT tenant_isolation.protect_table('priv_tmpl');
CREATE TRIGGER priv_escalate_ins BEFORE INSERT ON priv_tmpl
	FOR EACH ROW EXECUTE FUNCTION priv_escalate_ins();
ALTER FUNCTION priv_escalate_ins() OWNER TO regress_priv_admin;
INSERT INTO tenant_5e5e5e5e5e5e45e585e55e5e5e5e5e5e.priv_tmpl VALUES
	('5e5e5e5e-5e5e-45e5-85e5-5e5e5e5e5e5e', 1, 'moving row');
\c - regress_priv_admin
\set SHOW_CONTEXT never
SELECT tenant_isolation.move_tenant('5e5e5e5e-5e5e-45e5-85e5-5e5e5e5e5e5e', 'shared');
\c - :superuser_name
\set SHOW_CONTEXT never
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_priv_admin';
SELECT tenant_id, id, note FROM priv_tmpl ORDER BY id;
SELECT tenant_isolation.move_tenant('5e5e5e5e-5e5e-45e5-85e5-5e5e5e5e5e5e', 'schema');

-- 4. Everything a member of the admin role can execute.  None of it is
-- SECURITY DEFINER PL/pgSQL or SQL that builds statements (EXECUTE): what
-- runs with other rights is C with fixed statements (src/provision.c).
SELECT p.oid::regprocedure AS function, l.lanname AS language, p.prosecdef AS definer
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'tenant_isolation'::regnamespace
   AND has_function_privilege('regress_priv_admin', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;
SELECT p.oid::regprocedure AS definer_function_with_dynamic_sql
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant_isolation'::regnamespace AND p.prosecdef
   AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
   AND p.prosrc ~* '\mexecute\M';
-- Every function that is not C and runs as its definer fixes its search_path.
SELECT p.oid::regprocedure AS definer_function_without_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant_isolation'::regnamespace AND p.prosecdef
   AND NOT coalesce(array_to_string(p.proconfig, ',') LIKE '%search_path=%', false);

-- The internal helpers are not callable by the admin role.
\c - regress_priv_admin
\set SHOW_CONTEXT never
SELECT sqlstate_of($$SELECT tenant_isolation._apply_fallback('priv_gen')$$);
SELECT sqlstate_of($$SELECT tenant_isolation._remove_fallback('priv_t')$$);
SELECT sqlstate_of($$SELECT tenant_isolation._count_tenant_rows('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')$$);
SELECT sqlstate_of($$SELECT tenant_isolation._invalidate('priv_t')$$);
-- An administrator cannot protect a catalog of the extension.
SELECT sqlstate_of($$SELECT tenant_isolation.protect_table('tenant_isolation.tenant', 'id')$$);

-- 5. The schema tier without membership.  The 1.0 docs had DBAs grant
-- tenant_isolation_login (a member of every tenant's role) to the
-- application: it could SET ROLE to any tenant's role and, as that role,
-- run utility commands that no executor hook sees.
\c - :superuser_name
\set SHOW_CONTEXT never
SELECT tenant_isolation.create_tenant('priv schema b', 'schema', '6e6e6e6e-6e6e-46e6-86e6-6e6e6e6e6e6e');
INSERT INTO tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl VALUES
	('6e6e6e6e-6e6e-46e6-86e6-6e6e6e6e6e6e', 1, 'B-SECRET-schema-row');
GRANT tenant_isolation_login TO regress_app;
SELECT r.rolname, pg_has_role('regress_app', r.oid, 'MEMBER') AS app_is_member
  FROM pg_roles r WHERE r.rolname LIKE 'tenant\_%' ORDER BY 1;
CREATE FUNCTION public.priv_leak_imm(text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RAISE NOTICE 'index expression saw: %', $1;
	RETURN $1;
END
$$;
\c - regress_app
\set SHOW_CONTEXT never
SELECT sqlstate_of($$SET ROLE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e$$);
SELECT sqlstate_of($$CREATE INDEX ON tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl ((public.priv_leak_imm(note)))$$);
SELECT sqlstate_of($$GRANT USAGE ON SCHEMA tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e TO regress_app$$);
SELECT sqlstate_of($$TRUNCATE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl$$);
RESET ROLE;
\c - :superuser_name
\set SHOW_CONTEXT never
-- Even a superuser is refused SET ROLE into a tenant's role outside its
-- context, and a session that becomes one anyway (set_config) is refused
-- every command but leaving it.
SELECT sqlstate_of($$SET ROLE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e$$);
SELECT sqlstate_of($$SET SESSION AUTHORIZATION tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e$$);
SELECT set_config('role', 'tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e', false) IS NOT NULL AS became_tenant_role;
SELECT sqlstate_of($$GRANT USAGE ON SCHEMA tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e TO regress_app$$);
SELECT sqlstate_of($$GRANT SELECT ON tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl TO PUBLIC$$);
SELECT sqlstate_of($$TRUNCATE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl$$);
SELECT sqlstate_of($$CREATE TABLE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.planted (x int)$$);
SELECT sqlstate_of($$CREATE INDEX ON tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl ((public.priv_leak_imm(note)))$$);
SELECT sqlstate_of($$ALTER TABLE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl ADD CHECK (public.leak(note))$$);
SELECT sqlstate_of($$COMMENT ON TABLE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl IS 'x'$$);
SELECT sqlstate_of($$DROP TABLE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl$$);
SELECT sqlstate_of($$SELECT * FROM tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl$$);
RESET ROLE;
SELECT current_user = :'superuser_name' AS left_the_role;
-- B's rows, privileges and objects are unchanged.
SELECT id, note FROM tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl;
SELECT c.relname, c.relacl IS NULL AS no_grants,
	   (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) AS indexes,
	   (SELECT count(*) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c') AS checks
  FROM pg_class c WHERE c.relnamespace = 'tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e'::regnamespace
   AND c.relkind = 'r' ORDER BY 1;
SELECT nspacl IS NULL AS schema_no_grants FROM pg_namespace
 WHERE nspname = 'tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e';
-- Entering a schema-tier tenant needs no membership: the extension
-- switches to the tenant's role itself, and back on logout.
\c - regress_priv_admin
\set SHOW_CONTEXT never
SELECT tenant_isolation.assume_tenant('5e5e5e5e-5e5e-45e5-85e5-5e5e5e5e5e5e', 'privilege test');
SELECT current_user, session_user;
SELECT count(*) FROM priv_tmpl;
-- as tenant 5e5e's role, tenant 6e6e's schema stays closed
SELECT sqlstate_of($$GRANT USAGE ON SCHEMA tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e TO tenant_5e5e5e5e5e5e45e585e55e5e5e5e5e5e$$);
SELECT sqlstate_of($$TRUNCATE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e.priv_tmpl$$);
SELECT sqlstate_of($$SET ROLE tenant_6e6e6e6e6e6e46e686e66e6e6e6e6e6e$$);
SELECT tenant_isolation.logout();
SELECT current_user;
-- a login_local transaction leaves the role at its end; so does a rollback
BEGIN;
SELECT tenant_isolation.assume_tenant('5e5e5e5e-5e5e-45e5-85e5-5e5e5e5e5e5e', 'privilege test');
SELECT current_user;
ROLLBACK;
SELECT current_user, tenant_isolation.current_tenant();
SELECT tenant_isolation.assume_tenant('5e5e5e5e-5e5e-45e5-85e5-5e5e5e5e5e5e', 'privilege test');
BEGIN;
SAVEPOINT s;
SELECT tenant_isolation.logout();
SELECT current_user;
ROLLBACK TO SAVEPOINT s;
SELECT current_user, tenant_isolation.current_tenant();
COMMIT;
SELECT tenant_isolation.logout();
SELECT current_user, tenant_isolation.current_tenant();
\c - :superuser_name
\set SHOW_CONTEXT never
REVOKE tenant_isolation_login FROM regress_app;
SELECT tenant_isolation.drop_tenant('6e6e6e6e-6e6e-46e6-86e6-6e6e6e6e6e6e');

\c - :superuser_name
\set SHOW_CONTEXT never
SELECT tenant_isolation.drop_tenant('5e5e5e5e-5e5e-45e5-85e5-5e5e5e5e5e5e');
SELECT tenant_isolation.unprotect_table('priv_t');
SELECT tenant_isolation.unprotect_table('priv_tmpl');
DELETE FROM tenant_isolation.template_table WHERE tbl = 'priv_tmpl'::regclass;
DROP TABLE priv_t, priv_gen, priv_tmpl, priv_made_by_migration;
DROP FUNCTION priv_escalate(), priv_escalate_ins(), public.priv_leak_imm(text);
REVOKE CREATE, USAGE ON SCHEMA public FROM regress_priv_admin;
DROP ROLE regress_priv_admin;
