--
-- largeobj: large objects belong to no tenant.  In a tenant context an
-- ordinary role can neither change, comment on, grant nor enumerate them,
-- also not the ones it owns, and cannot probe which ids exist.  Nothing
-- changes, and every refusal is audited.  Without a context, and for
-- superusers, nothing is refused.
--
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- files a refused lo_export must not create (left over from an earlier run?)
\! rm -f /tmp/ti_regress_lo_export /tmp/ti_regress_lo_fastpath
SELECT tenant_isolation.audit_flush();
SELECT coalesce(max(id), 0) AS start_id FROM tenant_isolation.audit_log \gset

-- 515151 belongs to regress_lo, an ordinary role (and is granted to
-- regress_owner); 525252 to regress_owner.  Both are listed in pg_shdepend.
CREATE ROLE regress_lo;
-- the server-file rights lo_import/lo_export need: a refusal below is the
-- extension's, not PostgreSQL's
GRANT pg_read_server_files, pg_write_server_files TO regress_lo;
GRANT EXECUTE ON FUNCTION lo_import(text), lo_import(text, oid), lo_export(oid, text) TO regress_lo;
CREATE SCHEMA regress_lo_schema AUTHORIZATION regress_lo;
SELECT lo_from_bytea(515151, 'blob of regress_lo') IS NOT NULL AS created;
SELECT lo_from_bytea(525252, 'blob of regress_owner') IS NOT NULL AS created;
ALTER LARGE OBJECT 515151 OWNER TO regress_lo;
ALTER LARGE OBJECT 525252 OWNER TO regress_owner;
GRANT SELECT ON LARGE OBJECT 515151 TO regress_owner;
COMMENT ON LARGE OBJECT 525252 IS 'set outside any tenant context';
SELECT count(*) AS shdepend_rows FROM pg_shdepend
 WHERE classid = 'pg_largeobject'::regclass AND objid IN (515151, 525252);

-- In tenant A's context, as the owner of 515151.
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress large objects');
SET ROLE regress_lo;
COMMENT ON LARGE OBJECT 515151 IS 'changed in a tenant context';
SELECT sqlstate_of($$GRANT SELECT ON LARGE OBJECT 515151 TO PUBLIC$$);
SELECT sqlstate_of($$REVOKE SELECT ON LARGE OBJECT 515151 FROM regress_owner$$);
SELECT sqlstate_of($$ALTER LARGE OBJECT 515151 OWNER TO regress_lo$$);
SELECT sqlstate_of($$SECURITY LABEL ON LARGE OBJECT 515151 IS 'x'$$);
-- no "does not exist": the refusal comes before the lookup
SELECT sqlstate_of($$COMMENT ON LARGE OBJECT 999999 IS 'probe'$$);
SELECT sqlstate_of($$GRANT SELECT ON LARGE OBJECT 999999 TO PUBLIC$$);
SELECT sqlstate_of($$SELECT pg_get_object_address('large object', '{515151}', '{}')$$);
SELECT sqlstate_of($$SELECT pg_get_object_address('large object', '{999999}', '{}')$$);
-- enumeration through the shared dependency catalog
SELECT objid FROM pg_shdepend WHERE classid = 'pg_largeobject'::regclass;
SELECT sqlstate_of($$SELECT count(*) FROM pg_catalog.pg_shdepend$$);
-- the data functions, on the role's own object (issue 18: each one)
SELECT sqlstate_of($$SELECT lo_get(515151)$$);
SELECT sqlstate_of($$SELECT lo_get(515151, 0, 4)$$);
SELECT sqlstate_of($$SELECT lo_put(515151, 0, '\x42')$$);
SELECT sqlstate_of($$SELECT lo_import('/dev/null')$$);
SELECT sqlstate_of($$SELECT lo_import('/dev/null', 535353)$$);
SELECT sqlstate_of($$SELECT lo_export(515151, '/tmp/ti_regress_lo_export')$$);
-- libpq's fast path (psql's \lo_* commands call lo_open/loread/lo_creat
-- through it, not through SQL)
\lo_export 515151 /tmp/ti_regress_lo_fastpath
\lo_import /dev/null
RESET ROLE;
SELECT tenant_isolation.logout();
-- A descriptor opened without a context (the role owns the object) is no
-- way around it: once in a context in the same transaction, every call on
-- the open descriptor is refused too.
BEGIN;
SET ROLE regress_lo;
SELECT lo_open(515151, x'60000'::int) AS fd \gset
RESET ROLE;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress large objects');
SET ROLE regress_lo;
SAVEPOINT s;
SELECT loread(:fd, 100);
ROLLBACK TO s;
SELECT lowrite(:fd, 'B-SECRET overwrite');
ROLLBACK TO s;
SELECT lo_truncate(:fd, 0);
ROLLBACK TO s;
SELECT lo_lseek(:fd, 0, 2);
ROLLBACK TO s;
SELECT lo_close(:fd);
ROLLBACK TO s;
RESET ROLE;
COMMIT;
SELECT tenant_isolation.logout();
-- no file was written by lo_export in a context
SELECT pg_stat_file('/tmp/ti_regress_lo_export', true) IS NULL AS no_export_file,
	   pg_stat_file('/tmp/ti_regress_lo_fastpath', true) IS NULL AS no_fastpath_file;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress large objects');
SET ROLE regress_lo;
-- DROP OWNED would unlink 515151: refused, and nothing else it did stays
BEGIN;
DROP OWNED BY regress_lo;
ROLLBACK;
RESET ROLE;
SELECT tenant_isolation.logout();

-- nothing changed
SELECT l.oid, l.lomowner::regrole, l.lomacl,
	   obj_description(l.oid, 'pg_largeobject') AS comment
  FROM pg_largeobject_metadata l WHERE l.oid IN (515151, 525252) ORDER BY 1;
SELECT lo_get(515151) AS data_unchanged;
SELECT count(*) AS no_new_objects FROM pg_largeobject_metadata;
SELECT count(*) AS schema_kept FROM pg_namespace WHERE nspname = 'regress_lo_schema';

-- A superuser in a context is not refused; without a context, nor is an
-- ordinary role.
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'regress large objects');
COMMENT ON LARGE OBJECT 525252 IS 'changed by a superuser in a context';
SELECT count(*) AS superuser_reads_shdepend FROM pg_shdepend
 WHERE classid = 'pg_largeobject'::regclass AND objid IN (515151, 525252);
SELECT tenant_isolation.logout();
SET ROLE regress_lo;
COMMENT ON LARGE OBJECT 515151 IS 'changed without a context';
SELECT count(*) AS app_reads_shdepend FROM pg_shdepend
 WHERE classid = 'pg_largeobject'::regclass AND objid IN (515151, 525252);
RESET ROLE;
SELECT l.oid, obj_description(l.oid, 'pg_largeobject') AS comment
  FROM pg_largeobject_metadata l WHERE l.oid IN (515151, 525252) ORDER BY 1;

-- every refusal is in the audit log
SELECT tenant_isolation.audit_flush();
SELECT kind, object, sqlstate, left(tenant::text, 8) AS tenant, current_role_name
  FROM tenant_isolation.audit_log
 WHERE id > :start_id AND kind = 'denied_largeobject'
 ORDER BY id;

SELECT lo_unlink(515151), lo_unlink(525252);
DROP SCHEMA regress_lo_schema;
REVOKE EXECUTE ON FUNCTION lo_import(text), lo_import(text, oid), lo_export(oid, text) FROM regress_lo;
DROP ROLE regress_lo;
