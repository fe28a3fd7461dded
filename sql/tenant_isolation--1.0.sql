/* sql/tenant_isolation--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION tenant_isolation" to load this file. \quit

-- Refuse to install when the library is not in shared_preload_libraries:
-- without the hooks nothing would be scoped.
CREATE FUNCTION tenant_isolation._assert_preloaded() RETURNS void
	AS 'MODULE_PATHNAME', 'ti_assert_preloaded' LANGUAGE C STRICT;
SELECT tenant_isolation._assert_preloaded();

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenant_isolation_admin') THEN
		CREATE ROLE tenant_isolation_admin NOLOGIN;
	END IF;
	-- Schema-tier tenants' roles are granted to this NOINHERIT role: its
	-- members (application roles, GRANTed it by the DBA) may become a tenant's
	-- role when login() enters that tenant, but never hold its privileges
	-- otherwise.
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenant_isolation_login') THEN
		CREATE ROLE tenant_isolation_login NOLOGIN NOINHERIT;
	END IF;
END
$$;
GRANT tenant_isolation_login TO tenant_isolation_admin;

GRANT USAGE ON SCHEMA tenant_isolation TO PUBLIC;

------------------------------------------------------------------------------
-- Catalogs.  Ordinary roles cannot write them; provisioning goes through
-- SECURITY DEFINER functions whose EXECUTE is granted to the admin role only.
------------------------------------------------------------------------------
CREATE TABLE tenant_isolation.tenant (
	id			uuid PRIMARY KEY,
	name		text NOT NULL UNIQUE CHECK (name ~ '[^[:space:]]' AND length(name) <= 200),
	tier		text NOT NULL DEFAULT 'shared' CHECK (tier IN ('shared', 'schema')),
	status		text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
	created_at	timestamptz NOT NULL DEFAULT now(),
	suspended_at timestamptz,
	schema_name	name UNIQUE,		-- tier 'schema': the tenant's own schema
	role_name	name UNIQUE,		-- tier 'schema': the tenant's NOLOGIN role
	placement	text				-- where a router serves the tenant; NULL: here
);

CREATE TABLE tenant_isolation.protected_table (
	tbl			regclass PRIMARY KEY,
	tenant_column name NOT NULL,
	protected_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_isolation.global_table (
	tbl			regclass PRIMARY KEY,
	marked_at	timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON tenant_isolation.tenant, tenant_isolation.protected_table,
	tenant_isolation.global_table FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.tenant', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.protected_table', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.global_table', '');

------------------------------------------------------------------------------
-- Tenant context
------------------------------------------------------------------------------
CREATE FUNCTION tenant_isolation.current_tenant() RETURNS uuid
	AS 'MODULE_PATHNAME', 'ti_current_tenant' LANGUAGE C STABLE PARALLEL SAFE;

-- The identity on uuid.  Every plan that depends on the tenant context (the
-- injected quals, the WITH CHECK of the row security policy) records a
-- dependency on it, so that a change of tenant invalidates exactly those
-- plans (see src/context.c).
CREATE FUNCTION tenant_isolation._tenant_dependency(uuid) RETURNS uuid
	AS 'MODULE_PATHNAME', 'ti_tenant_dependency' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION tenant_isolation.logout() RETURNS void
	AS 'MODULE_PATHNAME', 'ti_logout' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION tenant_isolation.assume_tenant(tenant uuid, reason text) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_assume_tenant' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_isolation.assume_tenant(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.assume_tenant(uuid, text) TO tenant_isolation_admin;

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------
CREATE FUNCTION tenant_isolation._internal_ddl(on_off boolean) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_internal_ddl_set' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION tenant_isolation._internal_ddl(boolean) FROM PUBLIC;

CREATE FUNCTION tenant_isolation._invalidate(tbl regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_invalidate_rel' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION tenant_isolation._invalidate(regclass) FROM PUBLIC;

CREATE FUNCTION tenant_isolation.guard_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_guard_trigger' LANGUAGE C;

CREATE FUNCTION tenant_isolation._audit(kind text, object text, detail text) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_audit_sql' LANGUAGE C;
REVOKE ALL ON FUNCTION tenant_isolation._audit(text, text, text) FROM PUBLIC;

-- The fail-closed fallback on one relation: row level security, forced, with
-- a deny-all policy.  The loaded library adds its own permissive policy
-- (row_security_policy_hook_permissive); without the library the table is
-- unreadable for every role subject to row security.
CREATE FUNCTION tenant_isolation._apply_fallback(rel regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- Partitions receive a clone of their parent's row trigger from PostgreSQL.
	IF NOT (SELECT relispartition FROM pg_class WHERE oid = rel)
	   AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'tenant_isolation_guard') THEN
		EXECUTE format('CREATE TRIGGER tenant_isolation_guard BEFORE INSERT OR UPDATE ON %s '
					   'FOR EACH ROW EXECUTE FUNCTION tenant_isolation.guard_trigger()', rel);
	END IF;
	EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', rel);
	IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = rel AND polname = 'tenant_isolation_fallback') THEN
		EXECUTE format('CREATE POLICY tenant_isolation_fallback ON %s AS PERMISSIVE FOR ALL USING (false)', rel);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_isolation._apply_fallback(regclass) FROM PUBLIC;

CREATE FUNCTION tenant_isolation._remove_fallback(rel regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT (SELECT relispartition FROM pg_class WHERE oid = rel) THEN
		EXECUTE format('DROP TRIGGER IF EXISTS tenant_isolation_guard ON %s', rel);
	END IF;
	EXECUTE format('DROP POLICY IF EXISTS tenant_isolation_fallback ON %s', rel);
	EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', rel);
	IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = rel) THEN
		EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', rel);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_isolation._remove_fallback(regclass) FROM PUBLIC;

CREATE FUNCTION tenant_isolation.protect_table(tbl regclass, tenant_column name DEFAULT 'tenant_id')
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c			pg_class%ROWTYPE;
	att			pg_attribute%ROWTYPE;
	part		regclass;
	anc			regclass;
BEGIN
	IF tbl IS NULL OR tenant_column IS NULL THEN
		RAISE EXCEPTION 'table and tenant column must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO c FROM pg_class WHERE oid = tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'relation with OID % does not exist', tbl::oid USING ERRCODE = '42P01';
	END IF;
	IF c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
						  'tenant_isolation'::regnamespace) OR c.relnamespace::regnamespace::text LIKE 'pg_toast%' THEN
		RAISE EXCEPTION 'cannot protect system table %', tbl USING ERRCODE = '42809';
	END IF;
	IF c.relkind = 'm' THEN
		RAISE EXCEPTION 'cannot protect materialized view %', tbl USING ERRCODE = '42809',
			HINT = 'A materialized view stores rows of every tenant; build it per tenant or query the base table.';
	END IF;
	IF c.relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809',
			HINT = 'Protect the tables a view reads; the view is then scoped too.';
	END IF;
	IF c.relpersistence = 't' THEN
		RAISE EXCEPTION 'cannot protect temporary table %', tbl USING ERRCODE = '42809';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_isolation.protected_table p WHERE p.tbl = protect_table.tbl) THEN
		RAISE EXCEPTION 'table % is already protected', tbl USING ERRCODE = '42710';
	END IF;
	-- A child of a protected table is covered by its ancestor already.
	FOR anc IN WITH RECURSIVE up(r) AS (
				   SELECT inhparent FROM pg_inherits WHERE inhrelid = tbl
				   UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.r)
			   SELECT r FROM up LOOP
		IF EXISTS (SELECT 1 FROM tenant_isolation.protected_table p WHERE p.tbl = anc) THEN
			RAISE EXCEPTION 'table % is already protected through %', tbl, anc USING ERRCODE = '42710';
		END IF;
	END LOOP;
	IF EXISTS (SELECT 1 FROM tenant_isolation.global_table g WHERE g.tbl = protect_table.tbl) THEN
		RAISE EXCEPTION 'table % is marked global', tbl USING ERRCODE = '42710';
	END IF;
	SELECT * INTO att FROM pg_attribute
	 WHERE attrelid = tbl AND attname = tenant_column AND attnum > 0 AND NOT attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', tenant_column, tbl
			USING ERRCODE = '42703';
	END IF;
	IF att.atttypid <> 'uuid'::regtype THEN
		RAISE EXCEPTION 'tenant column "%" of table % must be of type uuid, not %',
			tenant_column, tbl, format_type(att.atttypid, att.atttypmod) USING ERRCODE = '42804';
	END IF;

	PERFORM tenant_isolation._internal_ddl(true);
	INSERT INTO tenant_isolation.protected_table (tbl, tenant_column) VALUES (tbl, tenant_column);
	EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT tenant_isolation.current_tenant()',
				   tbl, tenant_column);
	FOR part IN SELECT tbl UNION ALL SELECT relid FROM pg_partition_tree(tbl) WHERE relid <> tbl
				UNION ALL
				SELECT r::regclass FROM (WITH RECURSIVE down(r) AS (
					SELECT inhrelid FROM pg_inherits WHERE inhparent = tbl AND c.relkind = 'r'
					UNION SELECT i.inhrelid FROM pg_inherits i JOIN down ON i.inhparent = down.r)
					SELECT r FROM down) d LOOP
		PERFORM tenant_isolation._apply_fallback(part);
		PERFORM tenant_isolation._invalidate(part);
	END LOOP;
	PERFORM tenant_isolation._internal_ddl(false);
	PERFORM tenant_isolation._audit('protect_table', tbl::text, tenant_column);
END
$$;

CREATE FUNCTION tenant_isolation.unprotect_table(tbl regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	col		name;
	part	regclass;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT p.tenant_column INTO col FROM tenant_isolation.protected_table p WHERE p.tbl = unprotect_table.tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not protected', tbl USING ERRCODE = '22023';
	END IF;
	PERFORM tenant_isolation._internal_ddl(true);
	DELETE FROM tenant_isolation.protected_table p WHERE p.tbl = unprotect_table.tbl;
	EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', tbl, col);
	FOR part IN SELECT tbl UNION ALL SELECT relid FROM pg_partition_tree(tbl) WHERE relid <> tbl
				UNION ALL
				SELECT r::regclass FROM (WITH RECURSIVE down(r) AS (
					SELECT inhrelid FROM pg_inherits WHERE inhparent = tbl
					UNION SELECT i.inhrelid FROM pg_inherits i JOIN down ON i.inhparent = down.r)
					SELECT r FROM down) d
				 WHERE NOT EXISTS (SELECT 1 FROM pg_partition_tree(tbl) pt WHERE pt.relid = d.r) LOOP
		PERFORM tenant_isolation._remove_fallback(part);
		PERFORM tenant_isolation._invalidate(part);
	END LOOP;
	PERFORM tenant_isolation._internal_ddl(false);
	PERFORM tenant_isolation._audit('unprotect_table', tbl::text, NULL);
END
$$;

CREATE FUNCTION tenant_isolation.mark_global(tbl regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k	"char";
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT relkind INTO k FROM pg_class WHERE oid = tbl;
	IF k IS NULL THEN
		RAISE EXCEPTION 'relation with OID % does not exist', tbl::oid USING ERRCODE = '42P01';
	END IF;
	IF k NOT IN ('r', 'p', 'v', 'm', 'f') THEN
		RAISE EXCEPTION '"%" is not a table or view', tbl USING ERRCODE = '42809';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_isolation.protected_table p WHERE p.tbl = mark_global.tbl) THEN
		RAISE EXCEPTION 'table % is protected; unprotect it first', tbl USING ERRCODE = '42710';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_isolation.global_table g WHERE g.tbl = mark_global.tbl) THEN
		RAISE EXCEPTION 'table % is already marked global', tbl USING ERRCODE = '42710';
	END IF;
	INSERT INTO tenant_isolation.global_table (tbl) VALUES (tbl);
	PERFORM tenant_isolation._audit('mark_global', tbl::text, NULL);
END
$$;

CREATE VIEW tenant_isolation.protected_tables AS
	SELECT p.tbl AS "table", p.tenant_column, p.protected_at
	  FROM tenant_isolation.protected_table p;
GRANT SELECT ON tenant_isolation.protected_tables TO PUBLIC;

CREATE VIEW tenant_isolation.global_tables AS
	SELECT g.tbl AS "table", g.marked_at FROM tenant_isolation.global_table g;
GRANT SELECT ON tenant_isolation.global_tables TO PUBLIC;

-- Catalog rows of dropped tables go with them.
CREATE FUNCTION tenant_isolation._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o record;
BEGIN
	FOR o IN SELECT * FROM pg_event_trigger_dropped_objects()
			  WHERE classid = 'pg_class'::regclass AND objsubid = 0 LOOP
		DELETE FROM tenant_isolation.protected_table WHERE tbl::oid = o.objid;
		DELETE FROM tenant_isolation.global_table WHERE tbl::oid = o.objid;
	END LOOP;
END
$$;
CREATE EVENT TRIGGER tenant_isolation_sql_drop ON sql_drop
	EXECUTE FUNCTION tenant_isolation._on_sql_drop();

DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_proc p
			  WHERE p.pronamespace = 'tenant_isolation'::regnamespace
				AND p.proname IN ('protect_table', 'unprotect_table', 'mark_global')
	LOOP
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO tenant_isolation_admin', f);
	END LOOP;
END
$$;

-- ==== JWT (issue 3) ====
-- JWT login (docs/jwt.md).  Keys are read by the library directly, so
-- login() needs no privilege on the key table and no SECURITY DEFINER (a SET
-- clause would undo login_local's SET LOCAL at function exit).
CREATE TABLE tenant_isolation.jwt_key (
	kid			text PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 256),
	alg			text NOT NULL CHECK (alg IN ('HS256', 'HS384', 'HS512', 'RS256', 'RS384',
											 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA')),
	key			text NOT NULL,
	issuer		text CHECK (issuer <> ''),
	audience	text CHECK (audience <> ''),
	fingerprint	text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenant_isolation.jwt_key FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.jwt_key', '');

-- Every write to jwt_key invalidates the key and token caches of all backends.
CREATE FUNCTION tenant_isolation._jwt_keys_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_jwt_keys_changed' LANGUAGE C;
REVOKE ALL ON FUNCTION tenant_isolation._jwt_keys_changed() FROM PUBLIC;
CREATE TRIGGER jwt_key_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_isolation.jwt_key
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_isolation._jwt_keys_changed();

-- Validates kid, alg and key (22023, never echoing the key; 42710 for an
-- existing kid) and returns the fingerprint.
CREATE FUNCTION tenant_isolation._jwt_key_check(kid text, alg text, key text,
												issuer text, audience text) RETURNS text
	AS 'MODULE_PATHNAME', 'ti_jwt_key_check' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_isolation._jwt_key_check(text, text, text, text, text) FROM PUBLIC;

CREATE FUNCTION tenant_isolation.add_jwt_key(kid text, alg text, key text,
											 issuer text DEFAULT NULL,
											 audience text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	fp text;
BEGIN
	fp := tenant_isolation._jwt_key_check(add_jwt_key.kid, add_jwt_key.alg, add_jwt_key.key,
										  add_jwt_key.issuer, add_jwt_key.audience);
	INSERT INTO tenant_isolation.jwt_key (kid, alg, key, issuer, audience, fingerprint)
		VALUES (add_jwt_key.kid, add_jwt_key.alg, add_jwt_key.key,
				add_jwt_key.issuer, add_jwt_key.audience, fp);
	PERFORM tenant_isolation._audit('add_jwt_key', add_jwt_key.kid, add_jwt_key.alg);
END
$$;

CREATE FUNCTION tenant_isolation.drop_jwt_key(kid text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF kid IS NULL THEN
		RAISE EXCEPTION 'JWT key id must not be null' USING ERRCODE = '22023';
	END IF;
	IF length(kid) > 256 THEN
		RAISE EXCEPTION 'JWT key id is too long' USING ERRCODE = '22023',
			DETAIL = 'Key ids are at most 256 characters.';
	END IF;
	DELETE FROM tenant_isolation.jwt_key k WHERE k.kid = drop_jwt_key.kid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'JWT key "%" does not exist', kid USING ERRCODE = '22023';
	END IF;
	PERFORM tenant_isolation._audit('drop_jwt_key', kid, NULL);
END
$$;

REVOKE ALL ON FUNCTION tenant_isolation.add_jwt_key(text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_isolation.drop_jwt_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.add_jwt_key(text, text, text, text, text) TO tenant_isolation_admin;
GRANT EXECUTE ON FUNCTION tenant_isolation.drop_jwt_key(text) TO tenant_isolation_admin;

-- DBA view: never the key material.
CREATE VIEW tenant_isolation.jwt_keys AS
	SELECT k.kid, k.alg, k.issuer, k.audience, k.created_at, k.fingerprint
	  FROM tenant_isolation.jwt_key k;
REVOKE ALL ON tenant_isolation.jwt_keys FROM PUBLIC;
GRANT SELECT ON tenant_isolation.jwt_keys TO tenant_isolation_admin;

CREATE FUNCTION tenant_isolation.login(token text) RETURNS uuid
	AS 'MODULE_PATHNAME', 'ti_login' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION tenant_isolation.login_local(token text) RETURNS uuid
	AS 'MODULE_PATHNAME', 'ti_login_local' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION tenant_isolation.current_claims() RETURNS jsonb
	AS 'MODULE_PATHNAME', 'ti_current_claims' LANGUAGE C STABLE PARALLEL RESTRICTED;

CREATE FUNCTION tenant_isolation.current_user_id() RETURNS text
	LANGUAGE sql STABLE PARALLEL RESTRICTED
	AS $$ SELECT tenant_isolation.current_claims() OPERATOR(pg_catalog.->>) 'sub' $$;
------------------------------------------------------------------------------
-- Tenant lifecycle and the schema tier (docs/tenants.md)
--
-- Tier 'shared': the tenant's rows live in protected shared tables.
-- Tier 'schema': the tenant has a schema and a NOLOGIN role of its own, both
-- named tenant_<32 hex digits of the id>; the schema holds a copy of every
-- template table (add_template_table), owned by the tenant's role.  login()
-- into such a tenant sets the role and puts the schema first on the
-- search_path, so other tenants' schemas are closed by privileges.
--
-- Every function that reads or writes other tenants' data refuses to run in
-- a tenant context: it would be scoped to that context.
------------------------------------------------------------------------------

CREATE TABLE tenant_isolation.template_table (
	tbl			regclass PRIMARY KEY,
	added_at	timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tenant_isolation.setting_default (
	key			text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
	value		jsonb NOT NULL
);
CREATE TABLE tenant_isolation.tenant_setting (
	tenant		uuid NOT NULL REFERENCES tenant_isolation.tenant (id) ON DELETE CASCADE,
	key			text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
	value		jsonb NOT NULL,
	PRIMARY KEY (tenant, key)
);
REVOKE ALL ON tenant_isolation.template_table, tenant_isolation.setting_default,
	tenant_isolation.tenant_setting FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.template_table', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.setting_default', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.tenant_setting', '');

-- Refuse to run in a tenant context (statements would be scoped to it).
CREATE FUNCTION tenant_isolation._require_no_context(what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF tenant_isolation.current_tenant() IS NOT NULL THEN
		RAISE EXCEPTION '% cannot run in a tenant context', what
			USING ERRCODE = '55000', HINT = 'Call tenant_isolation.logout() first.';
	END IF;
END
$$;

CREATE FUNCTION tenant_isolation._require_tenant(tid uuid) RETURNS tenant_isolation.tenant
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t tenant_isolation.tenant;
BEGIN
	IF tid IS NULL THEN
		RAISE EXCEPTION 'tenant id must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO t FROM tenant_isolation.tenant WHERE id = tid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant % does not exist', tid USING ERRCODE = '22023';
	END IF;
	RETURN t;
END
$$;

-- The tenant catalog changed: every backend re-reads what it cached of it.
CREATE FUNCTION tenant_isolation._tenants_changed() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT tenant_isolation._invalidate('tenant_isolation.tenant'::regclass) $$;

-- Name of the schema and role of a schema-tier tenant.
CREATE FUNCTION tenant_isolation.tenant_schema(id uuid) RETURNS name
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ('tenant_' || replace(id::text, '-', ''))::name $$;

-- Create the copy of one template table in one tenant schema.
CREATE FUNCTION tenant_isolation._create_from_template(tmpl regclass, sch name, owner name)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	relname name := (SELECT c.relname FROM pg_class c WHERE c.oid = tmpl);
BEGIN
	EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING ALL)', sch, relname, tmpl);
	EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', sch, relname, owner);
END
$$;

-- Schema, role and template tables of a schema-tier tenant.
CREATE FUNCTION tenant_isolation._create_tenant_schema(tid uuid) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sch name := tenant_isolation.tenant_schema(tid);
	tmpl regclass;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = sch) THEN
		EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', sch);
	END IF;
	EXECUTE format('GRANT %I TO tenant_isolation_login', sch);
	EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', sch, sch);
	FOR tmpl IN SELECT tbl FROM tenant_isolation.template_table ORDER BY tbl::oid LOOP
		PERFORM tenant_isolation._create_from_template(tmpl, sch, sch);
	END LOOP;
	UPDATE tenant_isolation.tenant SET schema_name = sch, role_name = sch WHERE id = tid;
END
$$;

CREATE FUNCTION tenant_isolation._drop_tenant_schema(tid uuid) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sch name := tenant_isolation.tenant_schema(tid);
BEGIN
	EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', sch);
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = sch) THEN
		EXECUTE format('DROP OWNED BY %I CASCADE', sch);
		EXECUTE format('DROP ROLE %I', sch);
	END IF;
	UPDATE tenant_isolation.tenant SET schema_name = NULL, role_name = NULL WHERE id = tid;
END
$$;

CREATE FUNCTION tenant_isolation.create_tenant(name text, tier text DEFAULT 'shared',
											   id uuid DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	new_id uuid := coalesce(id, gen_random_uuid());
BEGIN
	IF name IS NULL OR name !~ '[^[:space:]]' THEN
		RAISE EXCEPTION 'tenant name must not be empty' USING ERRCODE = '22023';
	END IF;
	IF length(name) > 200 THEN
		RAISE EXCEPTION 'tenant name is too long' USING ERRCODE = '22023',
			DETAIL = 'Tenant names are at most 200 characters.';
	END IF;
	IF tier IS NULL OR tier NOT IN ('shared', 'schema') THEN
		RAISE EXCEPTION 'unknown tenant tier "%"', left(tier, 40) USING ERRCODE = '22023',
			HINT = 'Use ''shared'' or ''schema''.';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_isolation.tenant t WHERE t.name = create_tenant.name) THEN
		RAISE EXCEPTION 'tenant "%" already exists', name USING ERRCODE = '42710';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_isolation.tenant t WHERE t.id = new_id) THEN
		RAISE EXCEPTION 'tenant % already exists', new_id USING ERRCODE = '42710';
	END IF;
	INSERT INTO tenant_isolation.tenant (id, name, tier) VALUES (new_id, name, tier);
	IF tier = 'schema' THEN
		PERFORM tenant_isolation._create_tenant_schema(new_id);
	END IF;
	PERFORM tenant_isolation._tenants_changed();
	PERFORM tenant_isolation._audit('create_tenant', new_id::text, tier);
	RETURN new_id;
END
$$;

CREATE FUNCTION tenant_isolation._set_tenant_status(tid uuid, new_status text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_isolation._require_tenant(tid);
	UPDATE tenant_isolation.tenant
	   SET status = new_status,
		   suspended_at = CASE WHEN new_status = 'suspended' THEN now() END
	 WHERE id = tid;
	PERFORM tenant_isolation._tenants_changed();
	PERFORM tenant_isolation._audit(CASE new_status WHEN 'suspended' THEN 'suspend_tenant'
									ELSE 'resume_tenant' END, tid::text, NULL);
END
$$;

-- A suspended tenant cannot log in; sessions already in its context are
-- refused from their next statement on (executor.c).
CREATE FUNCTION tenant_isolation.suspend_tenant(id uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT tenant_isolation._set_tenant_status(id, 'suspended') $$;

CREATE FUNCTION tenant_isolation.resume_tenant(id uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT tenant_isolation._set_tenant_status(id, 'active') $$;

-- Removes the tenant's rows in every protected table, its schema and role,
-- its settings and (through the catalog's foreign keys) its keys.  Refuses
-- while sessions are in the tenant's context (as counted by tenant_stats),
-- unless forced; those sessions are refused from their next statement on.
CREATE FUNCTION tenant_isolation.drop_tenant(id uuid, force boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t tenant_isolation.tenant;
	r record;
	n bigint;
BEGIN
	PERFORM tenant_isolation._require_no_context('drop_tenant()');
	t := tenant_isolation._require_tenant(id);
	SELECT s.sessions INTO n FROM tenant_isolation._tenant_stats() s WHERE s.tenant_id = id;
	IF coalesce(n, 0) > 0 AND NOT coalesce(force, false) THEN
		RAISE EXCEPTION 'tenant % has % open session(s)', id, n USING ERRCODE = '55006',
			HINT = 'Suspend the tenant first, or call drop_tenant(id, force => true).';
	END IF;
	FOR r IN SELECT p.tbl, p.tenant_column FROM tenant_isolation.protected_table p LOOP
		EXECUTE format('DELETE FROM %s WHERE %I = $1', r.tbl, r.tenant_column) USING id;
	END LOOP;
	IF t.tier = 'schema' THEN
		PERFORM tenant_isolation._drop_tenant_schema(id);
	END IF;
	DELETE FROM tenant_isolation.tenant x WHERE x.id = drop_tenant.id;
	PERFORM tenant_isolation._tenants_changed();
	PERFORM tenant_isolation._audit('drop_tenant', id::text, NULL);
END
$$;

CREATE FUNCTION tenant_isolation.set_tenant_placement(id uuid, placement text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_isolation._require_tenant(id);
	IF placement IS NOT NULL AND (placement !~ '[^[:space:]]' OR length(placement) > 200) THEN
		RAISE EXCEPTION 'invalid placement label' USING ERRCODE = '22023',
			HINT = 'A placement is a non-empty label of at most 200 characters, or NULL for this database.';
	END IF;
	UPDATE tenant_isolation.tenant x SET placement = set_tenant_placement.placement
	 WHERE x.id = set_tenant_placement.id;
	PERFORM tenant_isolation._audit('set_tenant_placement', id::text, placement);
END
$$;

-- security_barrier: a caller's leaky function in WHERE must not see the
-- names of other tenants before the scoping qual ran.
CREATE VIEW tenant_isolation.tenants WITH (security_barrier) AS
	SELECT t.id, t.name, t.tier, t.status, t.created_at, t.suspended_at,
		   t.schema_name, t.placement
	  FROM tenant_isolation.tenant t
	 WHERE pg_catalog.pg_has_role('tenant_isolation_admin', 'MEMBER')
		OR t.id = tenant_isolation.current_tenant();
-- The view runs with its owner's rights; its WHERE clause does the scoping.
GRANT SELECT ON tenant_isolation.tenants TO PUBLIC;

-- Exact row counts of one tenant per table (protected tables and the
-- tenant's own schema).  Counts every row: run it off peak.
CREATE FUNCTION tenant_isolation.tenant_row_counts(id uuid)
RETURNS TABLE (tbl regclass, row_count bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t tenant_isolation.tenant;
	r record;
	n bigint;
BEGIN
	PERFORM tenant_isolation._require_no_context('tenant_row_counts()');
	t := tenant_isolation._require_tenant(id);
	FOR r IN SELECT p.tbl, p.tenant_column FROM tenant_isolation.protected_table p
			  ORDER BY p.tbl::text LOOP
		EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', r.tbl, r.tenant_column)
		   INTO n USING id;
		tbl := r.tbl; row_count := n;
		RETURN NEXT;
	END LOOP;
	IF t.schema_name IS NOT NULL THEN
		FOR r IN SELECT c.oid::regclass AS tbl FROM pg_class c
				  WHERE c.relnamespace = t.schema_name::regnamespace AND c.relkind IN ('r', 'p')
				  ORDER BY c.relname LOOP
			EXECUTE format('SELECT count(*) FROM %s', r.tbl) INTO n;
			tbl := r.tbl; row_count := n;
			RETURN NEXT;
		END LOOP;
	END IF;
END
$$;

------------------------------------------------------------------------------
-- Templates and migrations of the schema tier
------------------------------------------------------------------------------

-- A table whose definition (columns, defaults, constraints, indexes) every
-- schema-tier tenant gets, now and at create_tenant.
CREATE FUNCTION tenant_isolation.add_template_table(tbl regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k "char";
	t record;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT relkind INTO k FROM pg_class WHERE oid = tbl;
	IF k IS NULL THEN
		RAISE EXCEPTION 'relation with OID % does not exist', tbl::oid USING ERRCODE = '42P01';
	END IF;
	IF k NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_isolation.template_table x WHERE x.tbl = add_template_table.tbl) THEN
		RAISE EXCEPTION 'table % is already a template', tbl USING ERRCODE = '42710';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_isolation.template_table x
				WHERE (SELECT relname FROM pg_class WHERE oid = x.tbl) =
					  (SELECT relname FROM pg_class WHERE oid = add_template_table.tbl)) THEN
		RAISE EXCEPTION 'a template named like % exists already', tbl USING ERRCODE = '42710';
	END IF;
	INSERT INTO tenant_isolation.template_table (tbl) VALUES (tbl);
	FOR t IN SELECT schema_name, role_name FROM tenant_isolation.tenant
			  WHERE tier = 'schema' ORDER BY id LOOP
		PERFORM tenant_isolation._create_from_template(tbl, t.schema_name, t.role_name);
	END LOOP;
	PERFORM tenant_isolation._audit('add_template_table', tbl::text, NULL);
END
$$;

-- Apply DDL to the templates and to every schema-tier tenant, in ONE
-- transaction: all schemas change, or none does (the first error rolls
-- everything back and names the schema).  The DDL is run once with the
-- caller's search_path (for the templates) and once per tenant with only the
-- tenant's schema on the search_path, so it must use unqualified names.
CREATE FUNCTION tenant_isolation.migrate_tenant_schemas(ddl text)
RETURNS TABLE (tenant uuid, schema_name name, status text)
LANGUAGE plpgsql SECURITY DEFINER
AS $$
DECLARE
	t record;
	caller_path text := current_setting('search_path');
BEGIN
	IF ddl IS NULL OR ddl !~ '[^[:space:]]' THEN
		RAISE EXCEPTION 'ddl must not be empty' USING ERRCODE = '22023';
	END IF;
	PERFORM tenant_isolation._require_no_context('migrate_tenant_schemas()');
	EXECUTE ddl;
	tenant := NULL; schema_name := NULL; status := 'templates';
	RETURN NEXT;
	FOR t IN SELECT x.id, x.schema_name, x.role_name FROM tenant_isolation.tenant x
			  WHERE x.tier = 'schema' ORDER BY x.id LOOP
		PERFORM pg_catalog.set_config('search_path', pg_catalog.quote_ident(t.schema_name), true);
		BEGIN
			EXECUTE ddl;
		EXCEPTION WHEN OTHERS THEN
			RAISE EXCEPTION 'migration failed in schema %: %', t.schema_name, SQLERRM
				USING ERRCODE = SQLSTATE;
		END;
		tenant := t.id; schema_name := t.schema_name; status := 'migrated';
		RETURN NEXT;
	END LOOP;
	PERFORM pg_catalog.set_config('search_path', caller_path, true);
	-- Objects the DDL created belong to each tenant's role.
	FOR t IN SELECT x.schema_name, x.role_name FROM tenant_isolation.tenant x
			  WHERE x.tier = 'schema' LOOP
		PERFORM tenant_isolation._own_schema_objects(t.schema_name, t.role_name);
	END LOOP;
	PERFORM tenant_isolation._audit('migrate_tenant_schemas', NULL, left(ddl, 200));
END
$$;

CREATE FUNCTION tenant_isolation._own_schema_objects(sch name, owner name) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
			  WHERE c.relnamespace = sch::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
				AND c.relowner <> owner::regrole LOOP
		EXECUTE format('ALTER TABLE %s OWNER TO %I', r.rel, owner);
	END LOOP;
END
$$;

------------------------------------------------------------------------------
-- Moving a tenant between tiers, and exporting it
------------------------------------------------------------------------------

-- Column list shared by a protected table and its copy in a tenant schema,
-- without the column named skip_col.
CREATE FUNCTION tenant_isolation._common_columns(a regclass, b regclass, skip_col name DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
	SELECT string_agg(quote_ident(x.attname), ', ' ORDER BY x.attnum)
	  FROM pg_attribute x
	 WHERE x.attrelid = a AND x.attnum > 0 AND NOT x.attisdropped AND x.attgenerated = ''
	   AND x.attname IS DISTINCT FROM skip_col
	   AND EXISTS (SELECT 1 FROM pg_attribute y
					WHERE y.attrelid = b AND y.attname = x.attname AND y.attnum > 0
					  AND NOT y.attisdropped AND y.attgenerated = '')
$$;

-- Move a tenant between the shared and the schema tier with its rows, in one
-- transaction.  The rows that move are those of the protected tables that
-- are also templates; a tenant with rows in any other protected table cannot
-- move to the schema tier (they would have nowhere to go).  The protected
-- tables are locked against writes while the move runs.  Sessions already in
-- the tenant's context keep their old tier until they log in again.
CREATE FUNCTION tenant_isolation.move_tenant(id uuid, tier text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t tenant_isolation.tenant;
	r record;
	cols text;
	collist text;
	n bigint;
	target regclass;
BEGIN
	PERFORM tenant_isolation._require_no_context('move_tenant()');
	t := tenant_isolation._require_tenant(id);
	IF tier IS NULL OR tier NOT IN ('shared', 'schema') THEN
		RAISE EXCEPTION 'unknown tenant tier "%"', left(tier, 40) USING ERRCODE = '22023',
			HINT = 'Use ''shared'' or ''schema''.';
	END IF;
	IF t.tier = tier THEN
		RAISE EXCEPTION 'tenant % is already in tier "%"', id, tier USING ERRCODE = '22023';
	END IF;
	FOR r IN SELECT p.tbl FROM tenant_isolation.protected_table p ORDER BY p.tbl::oid LOOP
		EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', r.tbl);
	END LOOP;

	IF tier = 'schema' THEN
		FOR r IN SELECT p.tbl, p.tenant_column FROM tenant_isolation.protected_table p
				  WHERE NOT EXISTS (SELECT 1 FROM tenant_isolation.template_table x WHERE x.tbl = p.tbl) LOOP
			EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', r.tbl, r.tenant_column) INTO n USING id;
			IF n > 0 THEN
				RAISE EXCEPTION 'tenant % has rows in %, which is not a template table', id, r.tbl
					USING ERRCODE = '55000', HINT = 'Make the table a template with add_template_table() first.';
			END IF;
		END LOOP;
		PERFORM tenant_isolation._create_tenant_schema(id);
		FOR r IN SELECT p.tbl, p.tenant_column, c.relname FROM tenant_isolation.protected_table p
				   JOIN tenant_isolation.template_table x ON x.tbl = p.tbl
				   JOIN pg_class c ON c.oid = p.tbl LOOP
			target := format('%I.%I', tenant_isolation.tenant_schema(id), r.relname)::regclass;
			cols := tenant_isolation._common_columns(r.tbl, target);
			EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM %s WHERE %I = $1',
						   target, cols, cols, r.tbl, r.tenant_column) USING id;
			EXECUTE format('DELETE FROM %s WHERE %I = $1', r.tbl, r.tenant_column) USING id;
		END LOOP;
		UPDATE tenant_isolation.tenant x SET tier = 'schema' WHERE x.id = move_tenant.id;
	ELSE
		FOR r IN SELECT c.oid::regclass AS src, c.relname FROM pg_class c
				  WHERE c.relnamespace = t.schema_name::regnamespace AND c.relkind IN ('r', 'p') LOOP
			SELECT p.tbl, p.tenant_column INTO target, cols
			  FROM tenant_isolation.protected_table p
			  JOIN tenant_isolation.template_table x ON x.tbl = p.tbl
			  JOIN pg_class pc ON pc.oid = p.tbl
			 WHERE pc.relname = r.relname;
			EXECUTE format('SELECT count(*) FROM %s', r.src) INTO n;
			IF target IS NULL THEN
				IF n > 0 THEN
					RAISE EXCEPTION 'table % has no protected shared table to move to', r.src
						USING ERRCODE = '55000';
				END IF;
				CONTINUE;
			END IF;
			-- cols holds the tenant column's name here; the rows get the
			-- tenant's id whatever the copies in the schema say
			collist := coalesce(tenant_isolation._common_columns(r.src, target, cols) || ', ', '');
			EXECUTE format('INSERT INTO %s (%s%I) SELECT %s$1 FROM %s',
						   target, collist, cols, collist, r.src) USING id;
		END LOOP;
		PERFORM tenant_isolation._drop_tenant_schema(id);
		UPDATE tenant_isolation.tenant x SET tier = 'shared' WHERE x.id = move_tenant.id;
	END IF;
	PERFORM tenant_isolation._tenants_changed();
	PERFORM tenant_isolation._audit('move_tenant', id::text, tier);
END
$$;

-- Every row the tenant owns, for data-portability requests.
CREATE FUNCTION tenant_isolation.export_tenant(id uuid)
RETURNS TABLE (tbl regclass, "row" jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t tenant_isolation.tenant;
	r record;
BEGIN
	PERFORM tenant_isolation._require_no_context('export_tenant()');
	t := tenant_isolation._require_tenant(id);
	FOR r IN SELECT p.tbl, p.tenant_column FROM tenant_isolation.protected_table p
			  ORDER BY p.tbl::text LOOP
		RETURN QUERY EXECUTE format('SELECT %L::regclass, to_jsonb(x) FROM %s x WHERE x.%I = $1',
									r.tbl, r.tbl, r.tenant_column) USING id;
	END LOOP;
	IF t.schema_name IS NOT NULL THEN
		FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
				  WHERE c.relnamespace = t.schema_name::regnamespace AND c.relkind IN ('r', 'p')
				  ORDER BY c.relname LOOP
			RETURN QUERY EXECUTE format('SELECT %L::regclass, to_jsonb(x) FROM %s x', r.rel, r.rel);
		END LOOP;
	END IF;
	PERFORM tenant_isolation._audit('export_tenant', id::text, NULL);
END
$$;

------------------------------------------------------------------------------
-- Per-tenant settings and feature flags
------------------------------------------------------------------------------

-- id NULL sets the global default; value NULL removes the setting.
CREATE FUNCTION tenant_isolation.set_tenant_setting(id uuid, key text, value jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF key IS NULL OR key !~ '[^[:space:]]' OR length(key) > 200 THEN
		RAISE EXCEPTION 'setting key must be a non-empty text of at most 200 characters'
			USING ERRCODE = '22023';
	END IF;
	IF id IS NULL THEN
		IF value IS NULL THEN
			DELETE FROM tenant_isolation.setting_default d WHERE d.key = set_tenant_setting.key;
		ELSE
			INSERT INTO tenant_isolation.setting_default AS d (key, value) VALUES (key, value)
			ON CONFLICT ON CONSTRAINT setting_default_pkey DO UPDATE SET value = EXCLUDED.value;
		END IF;
	ELSE
		PERFORM tenant_isolation._require_tenant(id);
		IF value IS NULL THEN
			DELETE FROM tenant_isolation.tenant_setting s
			 WHERE s.tenant = set_tenant_setting.id AND s.key = set_tenant_setting.key;
		ELSE
			INSERT INTO tenant_isolation.tenant_setting AS s (tenant, key, value) VALUES (id, key, value)
			ON CONFLICT ON CONSTRAINT tenant_setting_pkey DO UPDATE SET value = EXCLUDED.value;
		END IF;
	END IF;
	PERFORM tenant_isolation._audit('set_tenant_setting', coalesce(id::text, 'default'), key);
END
$$;

-- The current tenant's value of a setting, else the global default, else NULL.
CREATE FUNCTION tenant_isolation.tenant_setting(key text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(
		(SELECT s.value FROM tenant_isolation.tenant_setting s
		  WHERE s.tenant = tenant_isolation.current_tenant() AND s.key = tenant_setting.key),
		(SELECT d.value FROM tenant_isolation.setting_default d WHERE d.key = tenant_setting.key))
$$;

-- A feature flag is a setting whose value is the JSON boolean true.
CREATE FUNCTION tenant_isolation.feature_enabled(flag text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(tenant_isolation.tenant_setting(flag) = 'true'::jsonb, false) $$;

-- Admins see every tenant's settings.
CREATE VIEW tenant_isolation.tenant_settings AS
	SELECT s.tenant, s.key, s.value FROM tenant_isolation.tenant_setting s
	UNION ALL
	SELECT NULL, d.key, d.value FROM tenant_isolation.setting_default d;
REVOKE ALL ON tenant_isolation.tenant_settings FROM PUBLIC;
GRANT SELECT ON tenant_isolation.tenant_settings TO tenant_isolation_admin;

DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_proc p
			  WHERE p.pronamespace = 'tenant_isolation'::regnamespace
				AND p.proname IN ('create_tenant', 'suspend_tenant', 'resume_tenant', 'drop_tenant',
								  'set_tenant_placement', 'tenant_row_counts', 'add_template_table',
								  'migrate_tenant_schemas', 'move_tenant', 'export_tenant',
								  'set_tenant_setting', '_set_tenant_status', '_create_tenant_schema',
								  '_drop_tenant_schema', '_create_from_template', '_own_schema_objects',
								  '_tenants_changed', '_require_no_context', '_require_tenant',
								  '_common_columns')
	LOOP
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO tenant_isolation_admin', f);
	END LOOP;
END
$$;

-- ==== Keys (issue 5) ====
-- Per-tenant data keys, stored only wrapped under the master key
-- (docs/keys.md).  The master key itself is never in a table.
CREATE TABLE tenant_isolation.tenant_key (
	tenant		uuid NOT NULL REFERENCES tenant_isolation.tenant (id) ON DELETE CASCADE,
	version		int NOT NULL CHECK (version > 0),
	state		text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
	wrapped		bytea NOT NULL CHECK (length(wrapped) = 48),
	nonce		bytea NOT NULL CHECK (length(nonce) = 24),
	master_key_id bytea NOT NULL CHECK (length(master_key_id) = 16),
	created_at	timestamptz NOT NULL DEFAULT now(),
	retired_at	timestamptz,
	PRIMARY KEY (tenant, version)
);
-- Exactly one version of a tenant encrypts.
CREATE UNIQUE INDEX tenant_key_one_active ON tenant_isolation.tenant_key (tenant)
	WHERE state = 'active';
REVOKE ALL ON tenant_isolation.tenant_key FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.tenant_key', '');

-- Every write to tenant_key (rotation, rewrap, crypto-shredding through the
-- cascade, direct DML) wipes the cached keys of every backend.
CREATE FUNCTION tenant_isolation._tenant_keys_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_tenant_keys_changed' LANGUAGE C;
REVOKE ALL ON FUNCTION tenant_isolation._tenant_keys_changed() FROM PUBLIC;
CREATE TRIGGER tenant_key_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_isolation.tenant_key
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_isolation._tenant_keys_changed();

-- Encryption under the current tenant's keys.  encrypt may create the
-- tenant's first key, so it writes and is parallel unsafe; decrypt only
-- reads and may run in parallel workers (they inherit the master key).
CREATE FUNCTION tenant_isolation.encrypt(data bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_encrypt' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION tenant_isolation.encrypt(data text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_encrypt' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION tenant_isolation.decrypt(data bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_decrypt' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE FUNCTION tenant_isolation.decrypt_text(data bytea) RETURNS text
	AS 'MODULE_PATHNAME', 'ti_decrypt_text' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE FUNCTION tenant_isolation.reencrypt(data bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_reencrypt' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Administration (superusers and tenant_isolation_admin).
CREATE FUNCTION tenant_isolation.rotate_tenant_key(id uuid) RETURNS integer
	AS 'MODULE_PATHNAME', 'ti_rotate_tenant_key' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION tenant_isolation.rotate_master_key() RETURNS integer
	AS 'MODULE_PATHNAME', 'ti_rotate_master_key' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION tenant_isolation.master_key_id() RETURNS text
	AS 'MODULE_PATHNAME', 'ti_master_key_id' LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION tenant_isolation.rotate_tenant_key(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_isolation.rotate_master_key() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_isolation.master_key_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.rotate_tenant_key(uuid) TO tenant_isolation_admin;
GRANT EXECUTE ON FUNCTION tenant_isolation.rotate_master_key() TO tenant_isolation_admin;
GRANT EXECUTE ON FUNCTION tenant_isolation.master_key_id() TO tenant_isolation_admin;

-- DBA view: versions and states, never key bytes (the master key id is a
-- keyed hash that only tells master keys apart).
CREATE VIEW tenant_isolation.tenant_keys AS
	SELECT k.tenant, k.version, k.created_at, k.state, k.retired_at,
		   pg_catalog.encode(k.master_key_id, 'hex') AS master_key_id
	  FROM tenant_isolation.tenant_key k;
REVOKE ALL ON tenant_isolation.tenant_keys FROM PUBLIC;
GRANT SELECT ON tenant_isolation.tenant_keys TO tenant_isolation_admin;
-- ==== Audit trail and isolation lint (issue 6) ====
-- docs/audit.md.  Events are written by the library into a ring in shared
-- memory at the moment they happen and copied into audit_log by a background
-- worker in a transaction of its own, so denied statements that roll back
-- still leave their event.  Each database keeps its own events.
CREATE TABLE tenant_isolation.audit_log (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_time	timestamptz NOT NULL,
	database	name NOT NULL,
	session_user_name name,
	current_role_name name,
	backend_pid	integer,
	application_name text,
	client_addr	inet,
	tenant		uuid,
	kind		text NOT NULL,
	object		text,
	sqlstate	text,
	detail		text,
	flushed_at	timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant ON tenant_isolation.audit_log (tenant, event_time);
CREATE INDEX audit_log_time ON tenant_isolation.audit_log (event_time);

-- Administrators read it; nobody writes it but the flush worker, not even its
-- owner: the privileges are revoked, and a trigger that fires in every
-- session_replication_role refuses INSERT, UPDATE, DELETE and TRUNCATE.
REVOKE ALL ON tenant_isolation.audit_log FROM PUBLIC;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
	ON tenant_isolation.audit_log FROM CURRENT_USER;
GRANT SELECT ON tenant_isolation.audit_log TO tenant_isolation_admin;

CREATE FUNCTION tenant_isolation._audit_log_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_audit_log_guard' LANGUAGE C;
REVOKE ALL ON FUNCTION tenant_isolation._audit_log_guard() FROM PUBLIC;
CREATE TRIGGER audit_log_append_only
	BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_isolation.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_isolation._audit_log_guard();
ALTER TABLE tenant_isolation.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;

-- A tenant's own events: those that happened in its context.  The view runs
-- with its owner's rights; security_barrier keeps the caller's functions from
-- seeing rows of other tenants before the tenant qual.
CREATE VIEW tenant_isolation.my_audit_log WITH (security_barrier) AS
	SELECT a.id, a.event_time, a.tenant, a.session_user_name, a.current_role_name,
		   a.application_name, a.kind, a.object, a.sqlstate, a.detail
	  FROM tenant_isolation.audit_log a
	 WHERE a.tenant = tenant_isolation.current_tenant();
GRANT SELECT ON tenant_isolation.my_audit_log TO PUBLIC;

CREATE FUNCTION tenant_isolation.audit_flush(timeout_ms integer DEFAULT 10000) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ti_audit_flush' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_isolation.audit_flush(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.audit_flush(integer) TO tenant_isolation_admin;

CREATE FUNCTION tenant_isolation.audit_dropped() RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_audit_dropped' LANGUAGE C VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION tenant_isolation.audit_dropped() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.audit_dropped() TO tenant_isolation_admin, pg_monitor;

CREATE FUNCTION tenant_isolation._audit_stats(OUT ring_size integer, OUT pending bigint,
											  OUT written bigint, OUT flushed bigint,
											  OUT dropped bigint, OUT discarded bigint,
											  OUT flush_paused boolean,
											  OUT launcher_running boolean)
	AS 'MODULE_PATHNAME', 'ti_audit_stats' LANGUAGE C VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION tenant_isolation._audit_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation._audit_stats() TO tenant_isolation_admin, pg_monitor;

CREATE VIEW tenant_isolation.audit_stats AS
	SELECT * FROM tenant_isolation._audit_stats();
REVOKE ALL ON tenant_isolation.audit_stats FROM PUBLIC;
GRANT SELECT ON tenant_isolation.audit_stats TO tenant_isolation_admin, pg_monitor;

------------------------------------------------------------------------------
-- Isolation lint: schema mistakes that defeat or weaken tenant isolation.
-- 'error' rows make verify() fail; 'warning' rows are reported only.
------------------------------------------------------------------------------
-- Relations covered by a protection (registered tables and all their
-- partitions and inheritance children) or by mark_global, with the number of
-- the tenant column in each.
CREATE FUNCTION tenant_isolation._lint_covered(OUT relid oid, OUT root oid,
											   OUT tenant_attnum int2, OUT is_global boolean)
RETURNS SETOF record
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE down(relid, root, tenant_column, is_global) AS (
		SELECT p.tbl::oid, p.tbl::oid, p.tenant_column, false FROM tenant_isolation.protected_table p
		UNION ALL
		SELECT g.tbl::oid, g.tbl::oid, NULL::name, true FROM tenant_isolation.global_table g
		UNION
		SELECT i.inhrelid, d.root, d.tenant_column, d.is_global
		  FROM pg_inherits i JOIN down d ON i.inhparent = d.relid
	)
	SELECT d.relid, d.root, a.attnum, d.is_global
	  FROM down d
	  LEFT JOIN pg_attribute a ON a.attrelid = d.relid AND a.attname = d.tenant_column
							  AND a.attnum > 0 AND NOT a.attisdropped
$$;
REVOKE ALL ON FUNCTION tenant_isolation._lint_covered() FROM PUBLIC;

CREATE FUNCTION tenant_isolation._isolation_report(OUT severity text, OUT object text,
												   OUT problem text, OUT hint text,
												   OUT rule text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- 1. A table with a tenant-like column that is neither protected nor global.
	RETURN QUERY
	SELECT 'error', c.oid::regclass::text,
		   format('table has a tenant column %I but is neither protected nor marked global',
				  min(a.attname::text)),
		   format('Protect it with tenant_isolation.protect_table(%L, %L), or declare it shared by all tenants with tenant_isolation.mark_global(%L).',
				  c.oid::regclass::text, min(a.attname::text), c.oid::regclass::text),
		   'unprotected_tenant_table'
	  FROM pg_class c
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	 WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND NOT c.relispartition
	   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_isolation')
	   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
	   AND a.attname IN (SELECT 'tenant_id'::name
						 UNION SELECT nullif(current_setting('tenant_isolation.tenant_claim', true), '')::name
						 UNION SELECT p.tenant_column FROM tenant_isolation.protected_table p)
	   AND NOT EXISTS (SELECT 1 FROM tenant_isolation._lint_covered() cv WHERE cv.relid = c.oid)
	 GROUP BY c.oid;

	-- 2. A unique key of a protected table without the tenant column: other
	-- tenants can probe for its values through unique violations.
	RETURN QUERY
	SELECT 'error',
		   CASE WHEN con.oid IS NOT NULL
				THEN format('constraint %I on %s', con.conname, c.oid::regclass)
				ELSE format('index %s', ic.oid::regclass) END,
		   format('%s of a protected table does not include the tenant column %I',
				  CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique constraint'
					   ELSE 'unique index' END,
				  a.attname),
		   format('Tenants can learn which values other tenants use through unique violations; make %I the first column of the key.',
				  a.attname),
		   'unique_without_tenant'
	  FROM tenant_isolation._lint_covered() cv
	  JOIN pg_class c ON c.oid = cv.relid
	  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = cv.tenant_attnum
	  JOIN pg_index i ON i.indrelid = c.oid AND i.indisunique
	  JOIN pg_class ic ON ic.oid = i.indexrelid
	  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = c.oid
								 AND con.contype IN ('p', 'u')
	 WHERE NOT cv.is_global
	   AND NOT (cv.tenant_attnum = ANY (i.indkey::int2[]))
	   AND NOT EXISTS (SELECT 1 FROM pg_inherits ih WHERE ih.inhrelid = i.indexrelid);

	-- 3. A foreign key between protected tables that does not pair the tenant
	-- columns: rows may reference another tenant's key value.
	RETURN QUERY
	SELECT 'error', format('constraint %I on %s', con.conname, con.conrelid::regclass),
		   format('foreign key to protected table %s does not include the tenant column', con.confrelid::regclass),
		   format('Reference (%I, ...) of a key of %s that starts with its tenant column, so that a row can only reference a row of its own tenant.',
				  a.attname, con.confrelid::regclass),
		   'foreign_key_without_tenant'
	  FROM pg_constraint con
	  JOIN tenant_isolation._lint_covered() ca ON ca.relid = con.conrelid AND NOT ca.is_global
	  JOIN tenant_isolation._lint_covered() cb ON cb.relid = con.confrelid AND NOT cb.is_global
	  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ca.tenant_attnum
	 WHERE con.contype = 'f' AND con.conparentid = 0
	   AND (array_position(con.conkey, ca.tenant_attnum) IS NULL
			OR array_position(con.conkey, ca.tenant_attnum)
			   IS DISTINCT FROM array_position(con.confkey, cb.tenant_attnum));

	-- 4. A SECURITY DEFINER function owned by a superuser that names a
	-- protected table (best effort: its source text).  Called without a
	-- tenant context it runs unscoped, for any caller.
	RETURN QUERY
	SELECT 'error', p.oid::regprocedure::text,
		   format('SECURITY DEFINER function owned by a superuser reads protected table %s',
				  string_agg(t.tbl::text, ', ' ORDER BY t.tbl::text)),
		   'Without a tenant context it runs unscoped for every caller: make it SECURITY INVOKER, give it to an ordinary role, or make it refuse to run while tenant_isolation.current_tenant() is null.',
		   'definer_function'
	  FROM pg_proc p
	  JOIN pg_namespace n ON n.oid = p.pronamespace
	  JOIN pg_roles r ON r.oid = p.proowner AND r.rolsuper
	  JOIN tenant_isolation.protected_table t
		ON p.prosrc ~* ('\m' || regexp_replace((SELECT relname FROM pg_class WHERE oid = t.tbl),
											   '([^[:alnum:]_])', '\\\1', 'g') || '\M')
	 WHERE p.prosecdef
	   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_isolation')
	   AND NOT EXISTS (SELECT 1 FROM pg_depend d
						WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
	 GROUP BY p.oid;

	-- 5. A materialized view that reads a protected table, directly or through
	-- views: it stores the rows of every tenant and is not scoped.
	RETURN QUERY
	WITH RECURSIVE reads(mv, ref) AS (
		SELECT rw.ev_class, d.refobjid
		  FROM pg_rewrite rw
		  JOIN pg_class m ON m.oid = rw.ev_class AND m.relkind = 'm'
		  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
						  AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> rw.ev_class
		UNION
		SELECT reads.mv, d.refobjid
		  FROM reads
		  JOIN pg_class v ON v.oid = reads.ref AND v.relkind = 'v'
		  JOIN pg_rewrite rw ON rw.ev_class = v.oid
		  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
						  AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
	)
	SELECT 'error', reads.mv::regclass::text,
		   format('materialized view stores rows of protected table %s for every tenant',
				  string_agg(DISTINCT cv.root::regclass::text, ', ')),
		   'Materialized views are not scoped; use a view, or a protected table filled per tenant.',
		   'materialized_view'
	  FROM reads
	  JOIN tenant_isolation._lint_covered() cv ON cv.relid = reads.ref AND NOT cv.is_global
	 GROUP BY reads.mv;

	-- 6. A protected table whose tenant column may be NULL, or that has no
	-- index starting with the tenant column (unless partitioned by it).
	RETURN QUERY
	SELECT 'warning', p.tbl::text,
		   format('tenant column %I is nullable', p.tenant_column),
		   format('Rows with a NULL tenant belong to nobody; ALTER TABLE %s ALTER COLUMN %I SET NOT NULL.',
				  p.tbl, p.tenant_column),
		   'nullable_tenant_column'
	  FROM tenant_isolation.protected_table p
	  JOIN pg_attribute a ON a.attrelid = p.tbl AND a.attname = p.tenant_column
	 WHERE NOT a.attnotnull;

	RETURN QUERY
	SELECT 'warning', p.tbl::text,
		   format('no index starts with the tenant column %I', p.tenant_column),
		   format('Every statement filters on %I; CREATE INDEX ON %s (%I, ...).',
				  p.tenant_column, p.tbl, p.tenant_column),
		   'tenant_column_not_indexed'
	  FROM tenant_isolation.protected_table p
	  JOIN pg_attribute a ON a.attrelid = p.tbl AND a.attname = p.tenant_column
	 WHERE NOT EXISTS (SELECT 1 FROM pg_index i
						WHERE i.indrelid = p.tbl AND i.indkey[0] = a.attnum)
	   AND NOT EXISTS (SELECT 1 FROM pg_partitioned_table pt
						WHERE pt.partrelid = p.tbl AND pt.partattrs[0] = a.attnum);

	-- 7. Roles that can log in and are not scoped without a context
	-- (superusers) or skip the fail-closed fallback policy (BYPASSRLS).
	RETURN QUERY
	SELECT 'warning', format('role %I', r.rolname),
		   CASE WHEN r.rolsuper THEN 'superuser can log in'
				ELSE 'role with BYPASSRLS can log in' END,
		   CASE WHEN r.rolsuper
				THEN 'A superuser without a tenant context sees the rows of every tenant; connect applications with ordinary roles.'
				ELSE 'BYPASSRLS skips the fail-closed policy of protected tables when the library is not loaded; use NOBYPASSRLS or NOLOGIN.' END,
		   'privileged_login_role'
	  FROM pg_roles r
	 WHERE r.rolcanlogin AND (r.rolsuper OR r.rolbypassrls);
END
$$;
REVOKE ALL ON FUNCTION tenant_isolation._isolation_report() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation._isolation_report() TO tenant_isolation_admin;

CREATE VIEW tenant_isolation.isolation_report AS
	SELECT r.severity, r.object, r.problem, r.hint, r.rule
	  FROM tenant_isolation._isolation_report() r
	 ORDER BY r.severity = 'warning', r.rule, r.object;
REVOKE ALL ON tenant_isolation.isolation_report FROM PUBLIC;
GRANT SELECT ON tenant_isolation.isolation_report TO tenant_isolation_admin;

-- For CI: the report's rows, and an error (P0001) when any is an 'error'.
CREATE FUNCTION tenant_isolation.verify() RETURNS SETOF tenant_isolation.isolation_report
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r		tenant_isolation.isolation_report;
	errors	int := 0;
BEGIN
	FOR r IN SELECT * FROM tenant_isolation.isolation_report LOOP
		IF r.severity = 'error' THEN
			errors := errors + 1;
			RAISE NOTICE 'isolation error: %: %', r.object, r.problem;
		END IF;
		RETURN NEXT r;
	END LOOP;
	IF errors > 0 THEN
		RAISE EXCEPTION 'tenant isolation check failed: % error(s)', errors
			USING ERRCODE = 'P0001',
				  HINT = 'SELECT * FROM tenant_isolation.isolation_report WHERE severity = ''error'' lists them.';
	END IF;
	RETURN;
END
$$;
REVOKE ALL ON FUNCTION tenant_isolation.verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.verify() TO tenant_isolation_admin;

-- ==== Limits and statistics (issue 7) ====
-- Per-tenant resource limits and statistics (docs/limits.md).  The limits
-- are stored here and mirrored lazily into shared memory: a statement
-- trigger tells every backend to reload them once the writing transaction
-- commits.
CREATE TABLE tenant_isolation.tenant_limit (
	tenant_id	uuid PRIMARY KEY REFERENCES tenant_isolation.tenant (id) ON DELETE CASCADE,
	max_sessions int CHECK (max_sessions > 0),
	max_active_statements int CHECK (max_active_statements > 0),
	statements_per_second numeric CHECK (statements_per_second > 0),
	statement_timeout interval CHECK (statement_timeout > '0'::interval),
	work_mem	text,
	max_rows	bigint CHECK (max_rows >= 0),
	updated_at	timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenant_isolation.tenant_limit FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.tenant_limit', '');

CREATE FUNCTION tenant_isolation._limits_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_limits_changed_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION tenant_isolation._limits_changed() FROM PUBLIC;
CREATE TRIGGER tenant_limit_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_isolation.tenant_limit
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_isolation._limits_changed();

-- Protecting, unprotecting or dropping a table changes what a tenant's rows
-- are: every row count is counted again after such a commit.
CREATE FUNCTION tenant_isolation._rows_stale() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_rows_stale_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION tenant_isolation._rows_stale() FROM PUBLIC;
CREATE TRIGGER protected_table_rows_stale
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_isolation.protected_table
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_isolation._rows_stale();

-- work_mem in kB, NULL when the text is not a valid work_mem setting
CREATE FUNCTION tenant_isolation._valid_work_mem(value text) RETURNS integer
	AS 'MODULE_PATHNAME', 'ti_limits_valid_work_mem' LANGUAGE C IMMUTABLE STRICT;

CREATE FUNCTION tenant_isolation.set_tenant_limits(id uuid,
												   max_sessions int DEFAULT NULL,
												   max_active_statements int DEFAULT NULL,
												   statements_per_second numeric DEFAULT NULL,
												   statement_timeout interval DEFAULT NULL,
												   work_mem text DEFAULT NULL,
												   max_rows bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF id IS NULL THEN
		RAISE EXCEPTION 'tenant id must not be null' USING ERRCODE = '22023';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM tenant_isolation.tenant t WHERE t.id = set_tenant_limits.id) THEN
		RAISE EXCEPTION 'tenant % does not exist', id USING ERRCODE = '22023';
	END IF;
	IF max_sessions <= 0 THEN
		RAISE EXCEPTION 'max_sessions must be positive' USING ERRCODE = '22023',
			HINT = 'NULL means unlimited; suspend_tenant() keeps a tenant out.';
	END IF;
	IF max_active_statements <= 0 THEN
		RAISE EXCEPTION 'max_active_statements must be positive' USING ERRCODE = '22023',
			HINT = 'NULL means unlimited.';
	END IF;
	IF statements_per_second <= 0 OR statements_per_second = 'NaN'::numeric
	   OR statements_per_second > 1000000000 THEN
		RAISE EXCEPTION 'statements_per_second must be positive and at most 1000000000'
			USING ERRCODE = '22023', HINT = 'NULL means unlimited.';
	END IF;
	IF statement_timeout <= '0'::interval
	   OR extract(epoch FROM statement_timeout) * 1000 < 1
	   OR extract(epoch FROM statement_timeout) * 1000 > 2147483647 THEN
		RAISE EXCEPTION 'statement_timeout must be between 1 millisecond and 2147483647 milliseconds'
			USING ERRCODE = '22023', HINT = 'NULL means unlimited.';
	END IF;
	IF work_mem IS NOT NULL AND tenant_isolation._valid_work_mem(work_mem) IS NULL THEN
		RAISE EXCEPTION 'invalid work_mem "%"', work_mem USING ERRCODE = '22023',
			HINT = 'Use a size such as ''4MB''; the minimum is 64kB.';
	END IF;
	IF max_rows < 0 THEN
		RAISE EXCEPTION 'max_rows must not be negative' USING ERRCODE = '22023',
			HINT = 'NULL means unlimited.';
	END IF;

	INSERT INTO tenant_isolation.tenant_limit AS l
		(tenant_id, max_sessions, max_active_statements, statements_per_second,
		 statement_timeout, work_mem, max_rows, updated_at)
	VALUES (id, max_sessions, max_active_statements, statements_per_second,
			statement_timeout, work_mem, max_rows, now())
	ON CONFLICT (tenant_id) DO UPDATE
		SET max_sessions = EXCLUDED.max_sessions,
			max_active_statements = EXCLUDED.max_active_statements,
			statements_per_second = EXCLUDED.statements_per_second,
			statement_timeout = EXCLUDED.statement_timeout,
			work_mem = EXCLUDED.work_mem,
			max_rows = EXCLUDED.max_rows,
			updated_at = EXCLUDED.updated_at;
	PERFORM tenant_isolation._audit('set_tenant_limits', id::text, NULL);
END
$$;
REVOKE ALL ON FUNCTION tenant_isolation.set_tenant_limits(uuid, int, int, numeric, interval, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.set_tenant_limits(uuid, int, int, numeric, interval, text, bigint)
	TO tenant_isolation_admin;

-- The rows of a tenant in every protected table (a table counted through a
-- registered ancestor is not counted again).  STABLE, so that it reads with
-- the snapshot its caller pushed (the latest one).  Called by the library as
-- superuser; nobody else may call it.
CREATE FUNCTION tenant_isolation._count_tenant_rows(tid uuid) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r		record;
	n		bigint;
	total	bigint := 0;
BEGIN
	FOR r IN SELECT p.tbl, p.tenant_column FROM tenant_isolation.protected_table p
			  WHERE NOT EXISTS (
				  WITH RECURSIVE up(rel) AS (
					  SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = p.tbl
					  UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.rel)
				  SELECT 1 FROM up JOIN tenant_isolation.protected_table q ON q.tbl = up.rel) LOOP
		EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', r.tbl, r.tenant_column)
			INTO n USING tid;
		total := total + n;
	END LOOP;
	RETURN total;
END
$$;
REVOKE ALL ON FUNCTION tenant_isolation._count_tenant_rows(uuid) FROM PUBLIC;

CREATE FUNCTION tenant_isolation.resync_tenant_rows(id uuid DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_resync_tenant_rows' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_isolation.resync_tenant_rows(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.resync_tenant_rows(uuid) TO tenant_isolation_admin;

CREATE FUNCTION tenant_isolation._tenant_stats(
	OUT tenant_id uuid,
	OUT sessions integer,
	OUT active_statements integer,
	OUT selects bigint,
	OUT inserts bigint,
	OUT updates bigint,
	OUT deletes bigint,
	OUT others bigint,
	OUT rows_returned bigint,
	OUT rows_processed bigint,
	OUT total_exec_time double precision,
	OUT max_exec_time double precision,
	OUT cpu_time double precision,
	OUT denied bigint,
	OUT limited bigint,
	OUT logins bigint,
	OUT failed_logins bigint,
	OUT row_count bigint,
	OUT rows_reserved bigint,
	OUT stats_reset timestamptz)
RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'ti_tenant_stats' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
-- Callable by everybody: it returns other tenants' rows to administrators only.
GRANT EXECUTE ON FUNCTION tenant_isolation._tenant_stats() TO PUBLIC;

CREATE FUNCTION tenant_isolation.reset_tenant_stats(id uuid DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_reset_tenant_stats' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_isolation.reset_tenant_stats(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.reset_tenant_stats(uuid) TO tenant_isolation_admin;

-- Ordinary roles see their own tenant's row only, like the tenants view.
CREATE VIEW tenant_isolation.tenant_limits WITH (security_barrier) AS
	SELECT l.tenant_id, t.name AS tenant_name, l.max_sessions, l.max_active_statements,
		   l.statements_per_second, l.statement_timeout, l.work_mem, l.max_rows,
		   s.row_count, l.updated_at
	  FROM tenant_isolation.tenant_limit l
	  JOIN tenant_isolation.tenant t ON t.id = l.tenant_id
	  LEFT JOIN tenant_isolation._tenant_stats() s ON s.tenant_id = l.tenant_id
	 WHERE pg_catalog.pg_has_role('tenant_isolation_admin', 'MEMBER')
		OR l.tenant_id = tenant_isolation.current_tenant();
GRANT SELECT ON tenant_isolation.tenant_limits TO PUBLIC;

CREATE VIEW tenant_isolation.tenant_stats WITH (security_barrier) AS
	SELECT s.tenant_id, t.name AS tenant_name, s.sessions, s.active_statements,
		   s.selects, s.inserts, s.updates, s.deletes, s.others,
		   s.rows_returned, s.rows_processed, s.total_exec_time, s.max_exec_time,
		   s.cpu_time, s.denied, s.limited, s.logins, s.failed_logins,
		   s.row_count, s.stats_reset
	  FROM tenant_isolation._tenant_stats() s
	  LEFT JOIN tenant_isolation.tenant t ON t.id = s.tenant_id
	 WHERE pg_catalog.pg_has_role('tenant_isolation_admin', 'MEMBER')
		OR s.tenant_id = tenant_isolation.current_tenant();
GRANT SELECT ON tenant_isolation.tenant_stats TO PUBLIC;
