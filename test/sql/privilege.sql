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
SELECT tenant_isolation.drop_tenant('f1f1f1f1-f1f1-4f1f-8f1f-f1f1f1f1f1f1');
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

\c - :superuser_name
\set SHOW_CONTEXT never
SELECT tenant_isolation.drop_tenant('5e5e5e5e-5e5e-45e5-85e5-5e5e5e5e5e5e');
SELECT tenant_isolation.unprotect_table('priv_t');
SELECT tenant_isolation.unprotect_table('priv_tmpl');
DELETE FROM tenant_isolation.template_table WHERE tbl = 'priv_tmpl'::regclass;
DROP TABLE priv_t, priv_gen, priv_tmpl, priv_made_by_migration;
DROP FUNCTION priv_escalate(), priv_escalate_ins();
REVOKE CREATE, USAGE ON SCHEMA public FROM regress_priv_admin;
DROP ROLE regress_priv_admin;
