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

