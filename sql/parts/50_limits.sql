
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
