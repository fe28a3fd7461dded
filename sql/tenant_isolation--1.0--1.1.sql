/* tenant_isolation--1.0--1.1.sql: the second release's SQL changes.
 *
 * 1.0 is released and its script is never edited: every SQL change of 1.1
 * goes here, in sections named after the issue that needs it.  A fresh
 * CREATE EXTENSION runs 1.0 and then this script, so both paths end in the
 * same objects (test/t/052_upgrade.pl compares them).
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tenant_isolation UPDATE TO '1.1'" to load this file. \quit


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
