/* tenant_isolation--1.0--1.1.sql: the second release's SQL changes.
 *
 * 1.0 is released and its script is never edited: every SQL change of 1.1
 * goes here, in sections named after the issue that needs it.  A fresh
 * CREATE EXTENSION runs 1.0 and then this script, so both paths end in the
 * same objects (test/t/052_upgrade.pl compares them).
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tenant_isolation UPDATE TO '1.1'" to load this file. \quit

