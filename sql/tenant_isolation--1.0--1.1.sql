/* tenant_isolation--1.0--1.1.sql: the second release's SQL changes.
 *
 * 1.0 is released and its script is never edited: every SQL change of 1.1
 * goes here, in sections named after the issue that needs it.  A fresh
 * CREATE EXTENSION runs 1.0 and then this script, so both paths end in the
 * same objects (test/t/052_upgrade.pl compares them).
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tenant_isolation UPDATE TO '1.1'" to load this file. \quit


-- ==== issue 15: provisioning in C, no SECURITY DEFINER dynamic SQL ====
-- The provisioning functions were SECURITY DEFINER PL/pgSQL run with the
-- extension owner's (a superuser's) rights, the caller's DDL and the
-- triggers of the tables they wrote included.  They are now LANGUAGE C,
-- run as their caller, and switch identity for each fixed statement
-- (src/provision.c): the extension owner for catalog rows and fallback DDL,
-- a table's owner for row work on it, the tenant's role for migration DDL.
-- Same names, arguments, defaults and grants (CREATE OR REPLACE keeps the
-- grants and drops SECURITY DEFINER and the SET clauses).
CREATE OR REPLACE FUNCTION tenant_isolation._apply_fallback(rel regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_apply_fallback_sql' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation._remove_fallback(rel regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_remove_fallback_sql' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.protect_table(tbl regclass, tenant_column name DEFAULT 'tenant_id')
RETURNS void AS 'MODULE_PATHNAME', 'ti_protect_table' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.unprotect_table(tbl regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_unprotect_table' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.mark_global(tbl regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_mark_global' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.create_tenant(name text, tier text DEFAULT 'shared',
														  id uuid DEFAULT NULL) RETURNS uuid
	AS 'MODULE_PATHNAME', 'ti_create_tenant' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.suspend_tenant(id uuid) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_suspend_tenant' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.resume_tenant(id uuid) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_resume_tenant' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.drop_tenant(id uuid, force boolean DEFAULT false) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_drop_tenant' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.set_tenant_placement(id uuid, placement text) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_set_tenant_placement' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.tenant_row_counts(id uuid)
RETURNS TABLE (tbl regclass, row_count bigint)
	AS 'MODULE_PATHNAME', 'ti_tenant_row_counts' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.add_template_table(tbl regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_add_template_table' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.migrate_tenant_schemas(ddl text)
RETURNS TABLE (tenant uuid, schema_name name, status text)
	AS 'MODULE_PATHNAME', 'ti_migrate_tenant_schemas' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.move_tenant(id uuid, tier text) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_move_tenant' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.export_tenant(id uuid)
RETURNS TABLE (tbl regclass, "row" jsonb)
	AS 'MODULE_PATHNAME', 'ti_export_tenant' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION tenant_isolation.set_tenant_setting(id uuid, key text, value jsonb) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_set_tenant_setting' LANGUAGE C VOLATILE PARALLEL UNSAFE;
-- Called by the library as the bootstrap superuser (limits.c); nobody else.
CREATE OR REPLACE FUNCTION tenant_isolation._count_tenant_rows(tid uuid) RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_count_tenant_rows_sql' LANGUAGE C STABLE STRICT PARALLEL UNSAFE;

-- The internal DDL permission is no longer reachable from SQL, and the
-- PL/pgSQL helpers of the old provisioning functions (granted to the admin
-- role) are gone with them.
DROP FUNCTION tenant_isolation._internal_ddl(boolean);
DROP FUNCTION tenant_isolation._set_tenant_status(uuid, text);
DROP FUNCTION tenant_isolation._create_tenant_schema(uuid);
DROP FUNCTION tenant_isolation._drop_tenant_schema(uuid);
DROP FUNCTION tenant_isolation._create_from_template(regclass, name, name);
DROP FUNCTION tenant_isolation._own_schema_objects(name, name);
DROP FUNCTION tenant_isolation._common_columns(regclass, regclass, name);
DROP FUNCTION tenant_isolation._require_no_context(text);
DROP FUNCTION tenant_isolation._require_tenant(uuid);
DROP FUNCTION tenant_isolation._tenants_changed();

-- ==== issue 15: the schema tier without membership ====
-- The extension now switches into a tenant's role itself (src/schema_tier.c);
-- no role is a member of a tenant's role any more.  tenant_isolation_login
-- stays (roles are cluster-wide and granted by DBAs) but holds nothing.
DO $$
DECLARE
	r name;
BEGIN
	FOR r IN SELECT t.role_name FROM tenant_isolation.tenant t
			  WHERE t.role_name IS NOT NULL
				AND pg_catalog.pg_has_role('tenant_isolation_login', t.role_name, 'MEMBER') LOOP
		EXECUTE pg_catalog.format('REVOKE %I FROM tenant_isolation_login', r);
	END LOOP;
END
$$;
