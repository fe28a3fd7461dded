--
-- lifecycle: one pooled server connection serves tenant B, then tenant A
-- (issue 14).  Nothing B made, wrote or verified may reach A: temporary
-- tables, cursors, custom settings, claims, tokens.  Every row, setting and
-- claim of B carries the marker B-SECRET; it must never appear in a step
-- that runs after the switch to A (or to no tenant).  Each attack runs
-- through login(), login_local() and assume_tenant(), with savepoint and
-- rollback variants.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tenant_isolation;
RESET client_min_messages;

\set m 'sh test/scripts/mint_jwt.sh'
\set kd `sh test/scripts/mint_jwt.sh keygen`
\set hs256 `cat :kd/hs256.key`
SELECT tenant_isolation.add_jwt_key('lc', 'HS256', :'hs256');
SELECT tenant_isolation.create_tenant('lc a', 'shared', '14a00000-0000-4000-8000-00000000000a');
SELECT tenant_isolation.create_tenant('lc b', 'shared', '14b00000-0000-4000-8000-00000000000b');
\set tokA `:m -k lc HS256 :kd/hs256.key '{"sub": "a-user", "tenant_id": "14a00000-0000-4000-8000-00000000000a", "exp": NOW+3600}'`
\set tokB `:m -k lc HS256 :kd/hs256.key '{"sub": "B-SECRET-user", "tenant_id": "14b00000-0000-4000-8000-00000000000b", "exp": NOW+3600}'`

CREATE TABLE lc_docs (tenant_id uuid NOT NULL, id int NOT NULL, body text);
INSERT INTO lc_docs VALUES
	('14a00000-0000-4000-8000-00000000000a', 1, 'a-one'),
	('14a00000-0000-4000-8000-00000000000a', 2, 'a-two'),
	('14b00000-0000-4000-8000-00000000000b', 1, 'B-SECRET one'),
	('14b00000-0000-4000-8000-00000000000b', 2, 'B-SECRET two');
SELECT tenant_isolation.protect_table('lc_docs');
CREATE ROLE regress_lc_app;
GRANT SELECT, INSERT ON lc_docs TO regress_lc_app;
-- read at run time, under whatever context is in force then
CREATE FUNCTION lc_bodies() RETURNS text LANGUAGE sql STABLE
	AS $$ SELECT string_agg(body, ', ' ORDER BY id) FROM lc_docs $$;
GRANT EXECUTE ON FUNCTION lc_bodies() TO regress_lc_app;
-- a login through CALL, as an ORM might write it
CREATE PROCEDURE lc_login(tok text) LANGUAGE plpgsql
	AS $$ BEGIN PERFORM tenant_isolation.login(tok); END $$;

SET ROLE regress_lc_app;

------------------------------------------------------------------------------
-- 1. Objects made before a login_local transaction and written in it.
------------------------------------------------------------------------------
-- B's client: a temp table the connection had already (no tenant), filled
-- in B's transaction; a holdable cursor declared before B's login_local.
CREATE TEMP TABLE scratch (v text);
BEGIN;
DECLARE held CURSOR WITH HOLD FOR SELECT lc_bodies() AS v;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
INSERT INTO scratch SELECT body FROM lc_docs;
COMMIT;
-- the next client on the connection (A, before and after its login)
FETCH ALL FROM held;
SELECT v FROM scratch;
BEGIN;
SELECT tenant_isolation.login_local(:'tokA') IS NOT NULL AS a_in;
SELECT lc_bodies();
SELECT v FROM scratch;
COMMIT;

-- the same inside a savepoint that is released
CREATE TEMP TABLE scratch (v text);
BEGIN;
SAVEPOINT s;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
INSERT INTO scratch SELECT body FROM lc_docs;
RELEASE s;
COMMIT;
SELECT v FROM scratch;

-- B's transaction rolls back: its rows are gone, the table was never
-- written by B and stays (the connection's own object, no tenant)
CREATE TEMP TABLE scratch (v text);
INSERT INTO scratch VALUES ('mine, no tenant');
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
INSERT INTO scratch SELECT body FROM lc_docs;
ROLLBACK;
SELECT v FROM scratch;
-- B's write rolled back to a savepoint: the same
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
SAVEPOINT s;
INSERT INTO scratch SELECT body FROM lc_docs;
ROLLBACK TO s;
SELECT count(*) FROM scratch;
COMMIT;
SELECT v FROM scratch;
-- read under B only: not B's, stays
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
SELECT count(*) FROM scratch;
COMMIT;
SELECT v FROM scratch;
-- written by COPY FROM in B's transaction: B's
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
COPY scratch FROM stdin;
B-SECRET copied
\.
COMMIT;
SELECT v FROM scratch;

-- session login(): B fills the connection's table, A logs in
CREATE TEMP TABLE scratch (v text);
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
INSERT INTO scratch SELECT body FROM lc_docs;
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
SELECT v FROM scratch;
SELECT tenant_isolation.logout();

-- assume_tenant (an administrator serving B, then A)
RESET ROLE;
CREATE TEMP TABLE scratch (v text);
SELECT tenant_isolation.assume_tenant('14b00000-0000-4000-8000-00000000000b', 'lifecycle');
INSERT INTO scratch SELECT body FROM lc_docs;
SELECT tenant_isolation.assume_tenant('14a00000-0000-4000-8000-00000000000a', 'lifecycle');
SELECT v FROM scratch;
SELECT tenant_isolation.logout();
SET ROLE regress_lc_app;

-- temporary functions and types can hold B's data too; the connection's
-- own (made with no tenant) stay
CREATE FUNCTION pg_temp.mine() RETURNS text LANGUAGE sql AS $$ SELECT 'mine'::text $$;
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
DO $$
BEGIN
	EXECUTE format('CREATE FUNCTION pg_temp.b_fn() RETURNS text LANGUAGE sql AS %L',
				   'SELECT ' || quote_literal(lc_bodies()));
	EXECUTE format('CREATE TYPE pg_temp.b_enum AS ENUM (%L)', lc_bodies());
END
$$;
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
SELECT pg_temp.b_fn();
SELECT enum_range(NULL::pg_temp.b_enum);
SELECT pg_temp.mine();
SELECT tenant_isolation.logout();
-- a temporary sequence of the connection, advanced by B to a count of B's
-- rows, is B's; one only read stays
CREATE TEMP SEQUENCE counter;
CREATE TEMP SEQUENCE untouched;
SELECT nextval('untouched');
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
SELECT setval('counter', (SELECT count(*) + 9000 FROM lc_docs)) > 0 AS set;
SELECT currval('untouched');
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
SELECT last_value FROM counter;
SELECT currval('counter');
SELECT last_value FROM untouched;
SELECT tenant_isolation.logout();

------------------------------------------------------------------------------
-- 2. A savepoint rollback does not make a login_local context session-wide.
------------------------------------------------------------------------------
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
SAVEPOINT s;
SELECT tenant_isolation.logout();
ROLLBACK TO s;
SELECT tenant_isolation.current_tenant();
DECLARE held2 CURSOR WITH HOLD FOR SELECT lc_bodies() AS v;
ROLLBACK;
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
SAVEPOINT s;
SELECT tenant_isolation.logout();
ROLLBACK TO s;
CREATE TEMP TABLE kept ON COMMIT PRESERVE ROWS AS SELECT lc_bodies() AS v;
ROLLBACK;
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
SAVEPOINT s;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_again;
ROLLBACK TO s;
CREATE TEMP TABLE kept2 (v text) ON COMMIT PRESERVE ROWS;
ROLLBACK;
-- a plain temp table made in B's transaction goes away with it
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
SAVEPOINT s;
SELECT tenant_isolation.logout();
ROLLBACK TO s;
CREATE TEMP TABLE kept3 AS SELECT lc_bodies() AS v;
COMMIT;
-- the next client, before any login
FETCH ALL FROM held2;
SELECT v FROM kept;
SELECT v FROM kept2;
SELECT v FROM kept3;

------------------------------------------------------------------------------
-- 3. A failed login leaves nothing of B: no cursor, temp table, setting,
--    claims; not after A's successful retry either.
------------------------------------------------------------------------------
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
SELECT current_setting('tenant_isolation.claims') LIKE '%B-SECRET-user%' AS b_claims_visible_to_b;
BEGIN;
DECLARE bcur CURSOR WITH HOLD FOR SELECT body FROM lc_docs ORDER BY id;
COMMIT;
CREATE TEMP TABLE bt AS SELECT body FROM lc_docs;
SELECT set_config('app.note', 'B-SECRET note', false) IS NOT NULL AS set;
SELECT tenant_isolation.login('not.a.token');
SHOW tenant_isolation.claims;
SELECT current_setting('tenant_isolation.claims');
SELECT tenant_isolation.current_claims();
FETCH ALL FROM bcur;
SELECT body FROM bt;
SELECT current_setting('app.note', true);
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
SELECT current_setting('tenant_isolation.claims') LIKE '%B-SECRET%' AS b_claims,
	   current_setting('tenant_isolation.claims') LIKE '%a-user%' AS a_claims;
FETCH ALL FROM bcur;
SELECT body FROM bt;
SELECT current_setting('app.note', true);
SELECT tenant_isolation.logout();

-- the same with login_local, the failure inside a savepoint
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
BEGIN;
DECLARE bcur CURSOR WITH HOLD FOR SELECT body FROM lc_docs ORDER BY id;
COMMIT;
CREATE TEMP TABLE bt AS SELECT body FROM lc_docs;
BEGIN;
SAVEPOINT s;
SELECT tenant_isolation.login_local('not.a.token');
ROLLBACK TO s;
SELECT tenant_isolation.current_tenant();
SHOW tenant_isolation.claims;
FETCH ALL FROM bcur;
SELECT body FROM bt;
COMMIT;
SELECT body FROM bt;

-- assume_tenant into B, then a failed login
RESET ROLE;
SELECT tenant_isolation.assume_tenant('14b00000-0000-4000-8000-00000000000b', 'lifecycle');
CREATE TEMP TABLE bt AS SELECT body FROM lc_docs;
SELECT tenant_isolation.login('not.a.token');
SELECT body FROM bt;
SELECT tenant_isolation.current_tenant();
SET ROLE regress_lc_app;

------------------------------------------------------------------------------
-- 4. Rolled-back login and logout restore the bookkeeping too.
------------------------------------------------------------------------------
-- a rolled-back login brings B's table back, and the session still knows
-- it is B's: A's later login discards it
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
CREATE TEMP TABLE bt AS SELECT body FROM lc_docs;
BEGIN;
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
ROLLBACK;
SELECT tenant_isolation.current_tenant();
SELECT count(*) AS b_rows_back_in_b FROM bt;
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
SELECT body FROM bt;
SELECT tenant_isolation.logout();

-- a rolled-back logout: the session still knows it is in B
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
CREATE TEMP TABLE bt AS SELECT body FROM lc_docs;
BEGIN;
SELECT tenant_isolation.logout();
ROLLBACK;
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
SELECT body FROM bt;
SELECT tenant_isolation.logout();

-- the same to a savepoint, through login_local
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
CREATE TEMP TABLE bt AS SELECT body FROM lc_docs;
BEGIN;
SAVEPOINT s;
SELECT tenant_isolation.login_local(:'tokA') IS NOT NULL AS a_in;
ROLLBACK TO s;
SAVEPOINT s2;
SELECT tenant_isolation.logout();
ROLLBACK TO s2;
COMMIT;
SELECT count(*) AS b_rows_back_in_b FROM bt;
BEGIN;
SELECT tenant_isolation.login_local(:'tokA') IS NOT NULL AS a_in;
SELECT body FROM bt;
ROLLBACK;
SELECT tenant_isolation.logout();

-- and through assume_tenant
RESET ROLE;
SELECT tenant_isolation.assume_tenant('14b00000-0000-4000-8000-00000000000b', 'lifecycle');
CREATE TEMP TABLE bt AS SELECT body FROM lc_docs;
BEGIN;
SELECT tenant_isolation.logout();
ROLLBACK;
SELECT tenant_isolation.assume_tenant('14a00000-0000-4000-8000-00000000000a', 'lifecycle');
SELECT body FROM bt;
SELECT tenant_isolation.logout();
SET ROLE regress_lc_app;

------------------------------------------------------------------------------
-- 5. Custom settings written under B are not readable by A; those of the
--    connection itself (no tenant) stay.
------------------------------------------------------------------------------
SELECT set_config('app.mine', 'connection setting', false) IS NOT NULL AS set;
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
SELECT set_config('app.secret', 'B-SECRET setting', false) IS NOT NULL AS set;
SET app.other = 'B-SECRET other';
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
SELECT current_setting('app.secret', true) AS secret,
	   current_setting('app.other', true) AS other,
	   current_setting('app.mine', true) AS mine;
SELECT tenant_isolation.logout();

BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
SAVEPOINT s;
SELECT set_config('app.secret', 'B-SECRET setting', false) IS NOT NULL AS set;
RELEASE s;
COMMIT;
SELECT current_setting('app.secret', true) AS secret,
	   current_setting('app.mine', true) AS mine;

-- B's setting rolled back with B's transaction: the old value, unchanged
SELECT set_config('app.secret', 'connection value', false) IS NOT NULL AS set;
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
SELECT set_config('app.secret', 'B-SECRET setting', false) IS NOT NULL AS set;
ROLLBACK;
SELECT current_setting('app.secret', true) AS secret;

RESET ROLE;
SELECT tenant_isolation.assume_tenant('14b00000-0000-4000-8000-00000000000b', 'lifecycle');
SELECT set_config('app.secret', 'B-SECRET setting', false) IS NOT NULL AS set;
SELECT tenant_isolation.assume_tenant('14a00000-0000-4000-8000-00000000000a', 'lifecycle');
SELECT current_setting('app.secret', true) AS secret;
SELECT tenant_isolation.logout();
SET ROLE regress_lc_app;

------------------------------------------------------------------------------
-- 6. A token written literally into a utility statement is refused (28000)
--    and echoed nowhere; a plain SELECT or a bind parameter is the way.
------------------------------------------------------------------------------
RESET ROLE;
CALL lc_login(:'tokB');
SELECT format('DO $d$BEGIN PERFORM tenant_isolation.login(%L); END$d$', :'tokB') AS do_login \gset
:do_login ;
SELECT format('PREPARE lc_p AS SELECT tenant_isolation.login(%L)', :'tokB') AS prep_login \gset
:prep_login ;
EXECUTE lc_p;
DEALLOCATE lc_p;
PREPARE lc_q(text) AS SELECT tenant_isolation.login_local($1);
BEGIN;
EXECUTE lc_q(:'tokB');
ROLLBACK;
DEALLOCATE lc_q;
SELECT tenant_isolation.current_tenant();
-- a token that is not in the text is fine inside CALL or DO
SELECT set_config('lc.tok', :'tokA', false) IS NOT NULL AS set;
DO $$ BEGIN PERFORM tenant_isolation.login(current_setting('lc.tok')); END $$;
SELECT tenant_isolation.current_tenant();
SELECT tenant_isolation.logout();
SELECT set_config('lc.tok', '', false) IS NOT NULL AS cleared;
SET ROLE regress_lc_app;

------------------------------------------------------------------------------
-- 7. A named prepared statement (as drivers prepare once per connection)
--    keeps working across switches and sees only the tenant in force.
------------------------------------------------------------------------------
SET plan_cache_mode = force_generic_plan;
PREPARE lc_stmt(int) AS SELECT left(tenant_id::text, 8) AS tenant, id, body
	FROM lc_docs WHERE id >= $1 ORDER BY id;
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
EXECUTE lc_stmt(0);
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
EXECUTE lc_stmt(0);
SELECT tenant_isolation.logout();
BEGIN;
SELECT tenant_isolation.login_local(:'tokB') IS NOT NULL AS b_in;
EXECUTE lc_stmt(1);
COMMIT;
BEGIN;
SELECT tenant_isolation.login_local(:'tokA') IS NOT NULL AS a_in;
EXECUTE lc_stmt(1);
COMMIT;
RESET plan_cache_mode;
DEALLOCATE lc_stmt;

------------------------------------------------------------------------------
-- 8. The schema tier's role and search_path switch is undone exactly by a
--    rollback (to a savepoint too), and a later logout still restores them.
------------------------------------------------------------------------------
RESET ROLE;
SELECT tenant_isolation.create_tenant('lc s', 'schema', '14c00000-0000-4000-8000-00000000000c');
SELECT current_user = session_user AS own_role, current_setting('search_path') AS search_path;
BEGIN;
SELECT tenant_isolation.assume_tenant('14c00000-0000-4000-8000-00000000000c', 'lifecycle');
SELECT current_user = session_user AS own_role, current_setting('search_path') AS search_path;
ROLLBACK;
SELECT current_user = session_user AS own_role, current_setting('search_path') AS search_path;
SELECT tenant_isolation.assume_tenant('14c00000-0000-4000-8000-00000000000c', 'lifecycle');
BEGIN;
SAVEPOINT s;
SELECT tenant_isolation.logout();
SELECT current_user = session_user AS own_role, current_setting('search_path') AS search_path;
ROLLBACK TO s;
SELECT current_user = session_user AS own_role, current_setting('search_path') AS search_path;
COMMIT;
BEGIN;
SELECT tenant_isolation.logout();
ROLLBACK;
SELECT current_user = session_user AS own_role, current_setting('search_path') AS search_path,
	   tenant_isolation.current_tenant();
SELECT tenant_isolation.logout();
SELECT current_user = session_user AS own_role, current_setting('search_path') AS search_path,
	   tenant_isolation.current_tenant();
-- a failed login leaves the schema tier as well
SELECT tenant_isolation.assume_tenant('14c00000-0000-4000-8000-00000000000c', 'lifecycle');
SELECT tenant_isolation.login('not.a.token');
SELECT current_user = session_user AS own_role, current_setting('search_path') AS search_path,
	   tenant_isolation.current_tenant();
SET client_min_messages = warning;
SELECT tenant_isolation.drop_tenant('14c00000-0000-4000-8000-00000000000c');
RESET client_min_messages;

------------------------------------------------------------------------------
-- cleanup
------------------------------------------------------------------------------
RESET ROLE;
DISCARD ALL;
DROP TABLE lc_docs;
DROP FUNCTION lc_bodies();
DROP PROCEDURE lc_login(text);
DROP ROLE regress_lc_app;
SELECT tenant_isolation.drop_jwt_key('lc');
SELECT tenant_isolation.drop_tenant('14a00000-0000-4000-8000-00000000000a');
SELECT tenant_isolation.drop_tenant('14b00000-0000-4000-8000-00000000000b');
