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
