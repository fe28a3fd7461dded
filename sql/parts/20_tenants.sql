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
