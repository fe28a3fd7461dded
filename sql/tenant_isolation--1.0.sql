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
