/* tenant_isolation--1.0--1.1.sql: the second release's SQL changes.
 *
 * 1.0 is released and its script is never edited: every SQL change of 1.1
 * goes here, in sections named after the issue that needs it.  A fresh
 * CREATE EXTENSION runs 1.0 and then this script, so both paths end in the
 * same objects (test/t/052_upgrade.pl compares them).
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tenant_isolation UPDATE TO '1.1'" to load this file. \quit

-- issue 13.2: INSERT ... ON CONFLICT DO UPDATE never lets a user expression
-- see another tenant's existing row.  planner.c puts a call of this function
-- first in the ON CONFLICT WHERE list of every such statement on a protected
-- table; it raises 42501 for a row of another tenant.  Executable by every
-- role that can write a protected table (it reveals only whether its argument
-- is the current tenant).
CREATE FUNCTION tenant_isolation._conflict_check(existing_tenant uuid, rel oid)
	RETURNS boolean
	LANGUAGE C VOLATILE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'ti_conflict_check';
GRANT EXECUTE ON FUNCTION tenant_isolation._conflict_check(uuid, oid) TO PUBLIC;


-- issue 13.7: every denied attempt is audited
-- set_config() calls that may name a tenant_isolation.* variable are routed
-- through this wrapper by the planner (src/denials.c): it audits the attempt
-- that core is about to refuse, then calls core's set_config().  Executable
-- by everyone, like set_config(), whose EXECUTE privilege it checks too.
CREATE FUNCTION tenant_isolation._set_config(name text, value text, is_local boolean)
RETURNS text
AS 'MODULE_PATHNAME', 'ti_set_config'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- assume_tenant() checks in C who may call it and audits a refusal; a
-- refusal by core's EXECUTE check could not be audited.
GRANT EXECUTE ON FUNCTION tenant_isolation.assume_tenant(uuid, text) TO PUBLIC;

-- issue 13.6: large objects and the fail-closed fallback
-- The lint reports every object through which a superuser or a BYPASSRLS
-- role reads a protected table for other callers: SECURITY DEFINER
-- functions (as before, and now also of BYPASSRLS owners, through views and
-- by dependency), views, rules, triggers, and grants of SET on the
-- extension's settings.  Without the library, row level security is all
-- that keeps protected tables closed, and it never applies to such owners.

-- Relations whose scan by a privileged role reads a protected table
-- unscoped: the covered relations, and security_invoker views over them (a
-- view with its owner's rights stops the path: its owner is checked).
CREATE FUNCTION tenant_isolation._lint_reaching(OUT relid oid, OUT root oid)
RETURNS SETOF record
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE reach(relid, root) AS (
		SELECT cv.relid, cv.root FROM tenant_isolation._lint_covered() cv WHERE NOT cv.is_global
		UNION
		SELECT rw.ev_class, reach.root
		  FROM reach
		  JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = reach.relid
						  AND d.classid = 'pg_rewrite'::regclass
		  JOIN pg_rewrite rw ON rw.oid = d.objid AND rw.rulename = '_RETURN'
		  JOIN pg_class v ON v.oid = rw.ev_class AND v.relkind = 'v'
		 WHERE EXISTS (SELECT 1 FROM unnest(v.reloptions) o
						WHERE split_part(o, '=', 1) = 'security_invoker'
						  AND split_part(o, '=', 2)::boolean)
	)
	SELECT reach.relid, reach.root FROM reach
$$;
REVOKE ALL ON FUNCTION tenant_isolation._lint_reaching() FROM PUBLIC;

CREATE OR REPLACE FUNCTION tenant_isolation._isolation_report(OUT severity text, OUT object text,
												   OUT problem text, OUT hint text,
												   OUT rule text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	-- computed once, used by several rules (issue 13.6)
	reach_rel	oid[];		-- relations reaching a protected table ...
	reach_root	oid[];		-- ... and the protected table they reach
	def_fn		oid[];		-- privileged definer functions reaching one ...
	def_root	oid[];		-- ... and the protected table they reach
BEGIN
	SELECT coalesce(array_agg(rc.relid), '{}'), coalesce(array_agg(rc.root), '{}')
	  INTO reach_rel, reach_root
	  FROM tenant_isolation._lint_reaching() rc;

	-- SECURITY DEFINER functions of a superuser or BYPASSRLS owner (not part
	-- of an extension) and the protected tables they reach: by dependency
	-- (SQL-standard bodies), or by name in the source text, best effort for
	-- other languages.  Names that are plain identifiers are matched as
	-- whole words of the source (one split per function, a hash join);
	-- other names (quoted, with spaces or punctuation) by a regular
	-- expression, like 1.0 did for all names.
	WITH rc AS (
		SELECT x.relid, x.root, lower(c.relname) AS lname
		  FROM unnest(reach_rel, reach_root) x(relid, root)
		  JOIN pg_class c ON c.oid = x.relid
	), fn AS (
		SELECT p.oid, p.prosrc
		  FROM pg_proc p
		  JOIN pg_namespace n ON n.oid = p.pronamespace
		  JOIN pg_roles r ON r.oid = p.proowner AND (r.rolsuper OR r.rolbypassrls)
		 WHERE p.prosecdef
		   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_isolation')
		   AND NOT EXISTS (SELECT 1 FROM pg_depend d
							WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
							  AND d.deptype = 'e')
	), refs AS (
		SELECT fn.oid AS fid, rc.root
		  FROM fn
		  CROSS JOIN LATERAL (SELECT DISTINCT w
								FROM regexp_split_to_table(lower(fn.prosrc), '[^[:alnum:]_$]+') w) words
		  JOIN rc ON rc.lname = words.w
		UNION
		SELECT fn.oid, rc.root
		  FROM fn
		  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = fn.oid
						  AND d.refclassid = 'pg_class'::regclass
		  JOIN rc ON rc.relid = d.refobjid
		UNION
		SELECT fn.oid, rc.root
		  FROM fn
		  JOIN rc ON rc.lname !~ '^[[:alnum:]_$]+$'
				 AND fn.prosrc ~* ('\m' || regexp_replace(rc.lname, '([^[:alnum:]_])', '\\\1', 'g') || '\M')
	)
	SELECT coalesce(array_agg(refs.fid), '{}'), coalesce(array_agg(refs.root), '{}')
	  INTO def_fn, def_root
	  FROM refs;

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

	-- 4. Code that reads a protected table with the rights of a superuser or
	-- a BYPASSRLS role, for whoever calls it.  Row level security, the
	-- fail-closed fallback when the library is not loaded, does not apply to
	-- such an owner, so every caller reads every tenant's rows; with the
	-- library loaded, the same code run without a context is refused for
	-- ordinary callers, but any slip in that rule would open it.  Reaching
	-- a protected table counts directly or through security_invoker views
	-- (_lint_reaching); a view that runs with its own owner's rights stops
	-- the path unless that owner is privileged too (then it is reported
	-- itself).
	--
	-- 4a. SECURITY DEFINER functions (def_fn, computed above).
	RETURN QUERY
	SELECT 'error', p.oid::regprocedure::text,
		   format('SECURITY DEFINER function owned by %s reads protected table %s',
				  CASE WHEN r.rolsuper THEN 'a superuser'
					   ELSE format('BYPASSRLS role %I', r.rolname) END,
				  string_agg(DISTINCT x.root::regclass::text, ', ' ORDER BY x.root::regclass::text)),
		   'Row level security does not apply to its owner: when the library is not loaded it runs unscoped for every caller.  Make it SECURITY INVOKER, give it to an ordinary role, or make it refuse to run while tenant_isolation.current_tenant() is null.',
		   'definer_function'
	  FROM unnest(def_fn, def_root) x(fid, root)
	  JOIN pg_proc p ON p.oid = x.fid
	  JOIN pg_roles r ON r.oid = p.proowner
	 GROUP BY p.oid, r.rolsuper, r.rolname;

	-- 4b. Views that check their tables with their owner's rights (not
	-- security_invoker) owned by a superuser or a BYPASSRLS role.
	RETURN QUERY
	SELECT 'error', v.oid::regclass::text,
		   format('view owned by %s reads protected table %s with its owner''s rights',
				  CASE WHEN r.rolsuper THEN 'a superuser'
					   ELSE format('BYPASSRLS role %I', r.rolname) END,
				  string_agg(DISTINCT rc.root::regclass::text, ', ' ORDER BY rc.root::regclass::text)),
		   format('Row level security does not apply to its owner: when the library is not loaded every caller reads every tenant''s rows through it.  ALTER VIEW %s OWNER TO an ordinary role, or ALTER VIEW %s SET (security_invoker = true).',
				  v.oid::regclass, v.oid::regclass),
		   'privileged_view'
	  FROM pg_class v
	  JOIN pg_namespace n ON n.oid = v.relnamespace
	  JOIN pg_roles r ON r.oid = v.relowner AND (r.rolsuper OR r.rolbypassrls)
	  JOIN pg_rewrite rw ON rw.ev_class = v.oid AND rw.rulename = '_RETURN'
	  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
					  AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
	  JOIN unnest(reach_rel, reach_root) rc(relid, root) ON rc.relid = d.refobjid
	 WHERE v.relkind = 'v'
	   AND NOT EXISTS (SELECT 1 FROM unnest(v.reloptions) o
						WHERE split_part(o, '=', 1) = 'security_invoker'
						  AND split_part(o, '=', 2)::boolean)
	   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_isolation')
	   AND NOT EXISTS (SELECT 1 FROM pg_depend e
						WHERE e.classid = 'pg_class'::regclass AND e.objid = v.oid AND e.deptype = 'e')
	 GROUP BY v.oid, r.rolsuper, r.rolname;

	-- 4c. Rules (other than a view's own) on a relation owned by a
	-- superuser or a BYPASSRLS role: their actions run with that owner's
	-- rights, for whoever writes to the relation.
	RETURN QUERY
	SELECT 'error', format('rule %I on %s', rw.rulename, rw.ev_class::regclass),
		   format('rule on a relation owned by %s reaches protected table %s with the owner''s rights',
				  CASE WHEN r.rolsuper THEN 'a superuser'
					   ELSE format('BYPASSRLS role %I', r.rolname) END,
				  string_agg(DISTINCT rc.root::regclass::text, ', ' ORDER BY rc.root::regclass::text)),
		   'Rule actions are checked with the rights of the relation''s owner, to which row level security does not apply: give the relation to an ordinary role, or use a trigger whose function is SECURITY INVOKER.',
		   'privileged_rule'
	  FROM pg_rewrite rw
	  JOIN pg_class c ON c.oid = rw.ev_class
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	  JOIN pg_roles r ON r.oid = c.relowner AND (r.rolsuper OR r.rolbypassrls)
	  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
					  AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> rw.ev_class
	  JOIN unnest(reach_rel, reach_root) rc(relid, root) ON rc.relid = d.refobjid
	 WHERE rw.rulename <> '_RETURN'
	   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_isolation')
	 GROUP BY rw.oid, rw.rulename, rw.ev_class, r.rolsuper, r.rolname;

	-- 4d. Triggers whose function is one of 4a: they run it for every
	-- writer of the table they are on.
	RETURN QUERY
	SELECT 'error', format('trigger %I on %s', t.tgname, t.tgrelid::regclass),
		   format('trigger runs SECURITY DEFINER function %s, owned by %s, which reads protected table %s',
				  p.oid::regprocedure,
				  CASE WHEN r.rolsuper THEN 'a superuser'
					   ELSE format('BYPASSRLS role %I', r.rolname) END,
				  string_agg(DISTINCT x.root::regclass::text, ', ' ORDER BY x.root::regclass::text)),
		   'Every writer of the table runs the function with its owner''s rights, to which row level security does not apply: make the function SECURITY INVOKER or give it to an ordinary role.',
		   'privileged_trigger'
	  FROM pg_trigger t
	  JOIN unnest(def_fn, def_root) x(fid, root) ON x.fid = t.tgfoid
	  JOIN pg_proc p ON p.oid = t.tgfoid
	  JOIN pg_roles r ON r.oid = p.proowner
	 WHERE NOT t.tgisinternal
	 GROUP BY t.oid, t.tgname, t.tgrelid, p.oid, r.rolsuper, r.rolname;

	-- 4e. A grant of SET (or ALTER SYSTEM) on one of the extension's
	-- settings lets an ordinary role forge a tenant context or weaken a
	-- security setting.
	RETURN QUERY
	SELECT 'error', format('parameter %s', pa.parname),
		   format('%s on parameter %s is granted to %s', a.privilege_type, pa.parname,
				  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END),
		   format('REVOKE %s ON PARAMETER %s FROM %s; the extension sets its context itself.',
				  a.privilege_type, pa.parname,
				  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END),
		   'parameter_grant'
	  FROM pg_parameter_acl pa, aclexplode(pa.paracl) a
	 WHERE pa.parname LIKE 'tenant\_isolation.%'
	   AND NOT EXISTS (SELECT 1 FROM pg_roles g WHERE g.oid = a.grantee AND g.rolsuper);

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

-- ==== pg_restore -j: no foreign keys between configuration tables ====
-- pg_dump orders the data of an extension's configuration tables by their
-- foreign keys, but the archive's TABLE DATA entries depend only on their
-- own table, so a parallel restore (pg_restore -j) may load tenant_setting,
-- tenant_key or tenant_limit before tenant and fail the foreign key check
-- (053_dump_restore.pl saw it about one run in three).  The cascade those
-- keys gave is kept by a row trigger on tenant instead; rows are only ever
-- written by the extension's C functions, which check that the tenant
-- exists.  Deleting a tenant_key row is what crypto-shredding means.
ALTER TABLE tenant_isolation.tenant_setting DROP CONSTRAINT tenant_setting_tenant_fkey;
ALTER TABLE tenant_isolation.tenant_key DROP CONSTRAINT tenant_key_tenant_fkey;
ALTER TABLE tenant_isolation.tenant_limit DROP CONSTRAINT tenant_limit_tenant_id_fkey;

CREATE FUNCTION tenant_isolation._tenant_deleted() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	DELETE FROM tenant_isolation.tenant_setting WHERE tenant = OLD.id;
	DELETE FROM tenant_isolation.tenant_key WHERE tenant = OLD.id;
	DELETE FROM tenant_isolation.tenant_limit WHERE tenant_id = OLD.id;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tenant_isolation._tenant_deleted() FROM PUBLIC;
CREATE TRIGGER tenant_deleted AFTER DELETE ON tenant_isolation.tenant
	FOR EACH ROW EXECUTE FUNCTION tenant_isolation._tenant_deleted();

-- ==== issue 17: cached plans read the tenant at execution ====
-- A generic (cached) plan compares the tenant column with this function
-- instead of a constant, so entering another tenant needs no re-planning
-- (src/planner.c).  It is current_tenant() under an internal name, so that
-- the plans that carry it can be told from user queries calling
-- current_tenant(): executor.c refuses them without a context.
CREATE FUNCTION tenant_isolation._current_tenant_uuid() RETURNS uuid
	AS 'MODULE_PATHNAME', 'ti_current_tenant' LANGUAGE C STABLE PARALLEL SAFE;

-- ==== issue 19: the tenant context inside a Citus router statement ====
-- A Citus coordinator adds a call of this function, with an assertion it
-- signed, to the WHERE of a single-shard SELECT; the worker's planner hook
-- verifies it and runs that statement in its tenant (src/citus.c).  The
-- call itself is true only inside the statement whose assertion was
-- verified, 42501 anywhere else.  PARALLEL UNSAFE: the statement's context
-- lives in the backend, not in state a parallel worker restores.
CREATE FUNCTION tenant_isolation._worker_assertion(text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ti_worker_assertion' LANGUAGE C STABLE PARALLEL UNSAFE;
