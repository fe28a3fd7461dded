--
-- gaps: promises that had no test (issue 18).  Tenant A is aaaaaaaa-...,
-- tenant B bbbbbbbb-...; every value of B carries B-SECRET or an amount
-- >= 9000 and must never show in A's output.
--   1. audit_logins: successful logins audited only when on, never the token
--   2. a successful login() rolled back leaves no context
--   3. track_tenant_cpu: cpu_time measured only when on
--   4. ALTER TABLE ... INHERIT into a protected parent
--   5. multi-level partitions
--   6. superuser-owned triggers and rules fired in A's context
--   7. logins need no membership in tenant_isolation_login (1.1), and a
--      schema tenant's role is refused outside its context
--
\set VERBOSITY terse
\set SHOW_CONTEXT never

\set m 'sh test/scripts/mint_jwt.sh'
\set kd `sh test/scripts/mint_jwt.sh keygen`
\set hs256 `cat :kd/hs256.key`
SELECT tenant_isolation.add_jwt_key('gaps', 'HS256', :'hs256');
\set tokA `:m -k gaps HS256 :kd/hs256.key '{"sub": "a-user", "tenant_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "exp": NOW+3600}'`
\set tokB `:m -k gaps HS256 :kd/hs256.key '{"sub": "B-SECRET-user", "tenant_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "exp": NOW+3600}'`
-- own fixture, so the suite does not depend on what earlier suites wrote
CREATE TABLE gp_docs (tenant_id uuid NOT NULL, id int NOT NULL, body text);
INSERT INTO gp_docs VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'alpha one'),
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 2, 'alpha two'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 1, 'B-SECRET-1'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 2, 'B-SECRET-2'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 3, 'B-SECRET-3');
SELECT tenant_isolation.protect_table('gp_docs');
GRANT SELECT ON gp_docs TO regress_app;
SELECT tenant_isolation.audit_flush();
SELECT coalesce(max(id), 0) AS start_id FROM tenant_isolation.audit_log \gset
SELECT coalesce((SELECT logins FROM tenant_isolation.tenant_stats
 WHERE tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 0) AS a_logins0 \gset

------------------------------------------------------------------------------
-- 1. audit_logins
------------------------------------------------------------------------------
SHOW tenant_isolation.audit_logins;
SET ROLE regress_app;
SELECT sqlstate_of($$SET tenant_isolation.audit_logins = on$$);
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS logged_in_off;
SELECT tenant_isolation.logout();
RESET ROLE;
SET tenant_isolation.audit_logins = on;
SET ROLE regress_app;
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS logged_in_on;
SELECT tenant_isolation.logout();
SELECT sqlstate_of(format('SELECT tenant_isolation.login(%L)', :'tokB' || 'x'));
RESET ROLE;
RESET tenant_isolation.audit_logins;
SELECT tenant_isolation.audit_flush();
-- one login event (the one with audit_logins on), the failed login always
SELECT kind, left(tenant::text, 8) AS tenant, current_role_name
  FROM tenant_isolation.audit_log
 WHERE id > :start_id AND kind IN ('login', 'login_failed') ORDER BY id;
-- no event carries a token or a part of one
SELECT count(*) AS events_with_token FROM tenant_isolation.audit_log
 WHERE id > :start_id
   AND (concat_ws(' ', object, detail) LIKE '%' || split_part(:'tokA', '.', 3) || '%'
		OR concat_ws(' ', object, detail) LIKE '%' || split_part(:'tokB', '.', 2) || '%');
-- tenant_stats counts both logins either way
SELECT logins - :a_logins0 AS a_logins FROM tenant_isolation.tenant_stats
 WHERE tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';

------------------------------------------------------------------------------
-- 2. a successful login() in a transaction that rolls back
------------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
SELECT count(*) AS b_rows FROM gp_docs;
ROLLBACK;
SELECT tenant_isolation.current_tenant() IS NULL AS no_context;
SELECT sqlstate_of($$SELECT body FROM gp_docs$$);
-- the same under a savepoint: the outer transaction goes on without it
BEGIN;
SAVEPOINT s;
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
ROLLBACK TO s;
SELECT tenant_isolation.current_tenant() IS NULL AS no_context;
SELECT sqlstate_of($$SELECT body FROM gp_docs$$);
COMMIT;
-- rolled back after A was in: back to A, not to B and not unscoped
SELECT tenant_isolation.login(:'tokA') IS NOT NULL AS a_in;
BEGIN;
SELECT tenant_isolation.login(:'tokB') IS NOT NULL AS b_in;
ROLLBACK;
SELECT left(tenant_isolation.current_tenant()::text, 8) AS tenant;
SELECT id, body FROM gp_docs ORDER BY id;
SELECT tenant_isolation.logout();
RESET ROLE;

------------------------------------------------------------------------------
-- 3. track_tenant_cpu
------------------------------------------------------------------------------
SHOW tenant_isolation.track_tenant_cpu;
SET ROLE regress_app;
SELECT sqlstate_of($$SET tenant_isolation.track_tenant_cpu = on$$);
RESET ROLE;
SELECT tenant_isolation.reset_tenant_stats('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'gaps cpu');
SELECT count(*) > 0 AS busy FROM generate_series(1, 200000) g, gp_docs WHERE g % 7 = gp_docs.id;
SELECT tenant_isolation.logout();
SELECT coalesce(cpu_time, 0) = 0 AS no_cpu_when_off, selects > 0 AS counted
  FROM tenant_isolation.tenant_stats WHERE tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
SET tenant_isolation.track_tenant_cpu = on;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'gaps cpu');
SELECT count(*) > 0 AS busy FROM generate_series(1, 200000) g, gp_docs WHERE g % 7 = gp_docs.id;
SELECT tenant_isolation.logout();
RESET tenant_isolation.track_tenant_cpu;
-- A's CPU time is A's: B's tenant accumulated none of it
SELECT tenant_name, cpu_time > 0 AS cpu_measured, cpu_time <= total_exec_time * 1.5 + 50 AS plausible
  FROM tenant_isolation.tenant_stats
 WHERE tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';

------------------------------------------------------------------------------
-- 4. ALTER TABLE ... INHERIT into a protected parent
------------------------------------------------------------------------------
CREATE TABLE inh_parent (tenant_id uuid NOT NULL, id int NOT NULL, body text);
INSERT INTO inh_parent VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'a-parent');
SELECT tenant_isolation.protect_table('inh_parent');
-- a table of B's rows, made outside any context, attached afterwards
CREATE TABLE inh_child (tenant_id uuid NOT NULL, id int NOT NULL, body text);
INSERT INTO inh_child VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 2, 'a-child'),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 3, 'B-SECRET child');
ALTER TABLE inh_child INHERIT inh_parent;
GRANT SELECT, UPDATE, DELETE ON inh_parent, inh_child TO regress_app;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'gaps inherit');
SET ROLE regress_app;
SELECT tableoid::regclass, id, body FROM inh_parent ORDER BY id;
SELECT count(*) FROM inh_parent WHERE body LIKE 'B-%';
SELECT id FROM inh_parent WHERE leak(body) ORDER BY id;
UPDATE inh_parent SET body = body || ' (a)' RETURNING id, body;
DELETE FROM inh_parent WHERE id = 3;
-- the child read directly (the contract: children are protected through
-- their root, also when attached later)
SELECT tenant_id, id, body FROM inh_child ORDER BY id;
SELECT count(*) FROM inh_child WHERE body LIKE 'B-%';
RESET ROLE;
-- a superuser attaches another child of B's rows while in A's context: it
-- is scoped from the next statement on
CREATE TABLE inh_child2 (tenant_id uuid NOT NULL, id int NOT NULL, body text);
INSERT INTO inh_child2 VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 4, 'B-SECRET child2');
ALTER TABLE inh_child2 INHERIT inh_parent;
SELECT tableoid::regclass, id, body FROM inh_parent ORDER BY id;
SELECT count(*) FROM inh_child2;
SELECT tenant_isolation.logout();
SELECT tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' AS is_b, id, body FROM inh_parent ORDER BY id;
SELECT count(*) AS inherits FROM pg_inherits WHERE inhparent = 'inh_parent'::regclass;

------------------------------------------------------------------------------
-- 5. multi-level partitions
------------------------------------------------------------------------------
CREATE TABLE ml (tenant_id uuid NOT NULL, id int NOT NULL, amount numeric)
	PARTITION BY RANGE (id);
CREATE TABLE ml_low PARTITION OF ml FOR VALUES FROM (0) TO (100) PARTITION BY LIST (tenant_id);
CREATE TABLE ml_low_ab PARTITION OF ml_low FOR VALUES IN
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
CREATE TABLE ml_low_rest PARTITION OF ml_low DEFAULT;
CREATE TABLE ml_high PARTITION OF ml FOR VALUES FROM (100) TO (1000) PARTITION BY HASH (id);
CREATE TABLE ml_high_0 PARTITION OF ml_high FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE ml_high_1 PARTITION OF ml_high FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO ml VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 10),
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 101, 20),
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 102, 30),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 2, 9001),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 103, 9002),
	('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 104, 9003),
	('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 3, 9004);
SELECT tenant_isolation.protect_table('ml');
GRANT SELECT, INSERT, UPDATE, DELETE ON ml, ml_low, ml_low_ab, ml_high, ml_high_0, ml_high_1 TO regress_app;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'gaps partitions');
SET ROLE regress_app;
SELECT tableoid::regclass, id, amount FROM ml ORDER BY id;
SELECT tableoid::regclass, id, amount FROM ml_low ORDER BY id;
SELECT tableoid::regclass, id, amount FROM ml_high ORDER BY id;
SELECT id, amount FROM ml_high_1 ORDER BY id;
SELECT id, amount FROM ml_low_ab ORDER BY id;
SELECT sum(amount), max(amount) FROM ml;
SELECT count(*) FROM ml WHERE amount >= 9000;
-- writes through each level land in A; B's rows are not touched
INSERT INTO ml_high (id, amount) VALUES (105, 40) RETURNING left(tenant_id::text, 8), id;
SELECT sqlstate_of($$INSERT INTO ml_low VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 5, 1)$$);
SELECT sqlstate_of($$INSERT INTO ml_low_ab VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 5, 1)$$);
UPDATE ml SET amount = amount + 1 RETURNING id, amount;
UPDATE ml_high SET id = id + 1 WHERE id = 103 RETURNING id;
DELETE FROM ml_high_0 RETURNING id;
RESET ROLE;
SELECT tenant_isolation.logout();
SELECT left(tenant_id::text, 8) AS tenant, id, amount FROM ml
 WHERE tenant_id <> 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' ORDER BY id;

------------------------------------------------------------------------------
-- 6. superuser-owned triggers and rules fired in A's context
------------------------------------------------------------------------------
-- An unprotected log table that a superuser's trigger and rule fill with
-- what they read from the protected gp_docs: in A's context they read A's
-- rows only (row level security would not scope a superuser; the injected
-- qual does).
CREATE TABLE trg_log (what text, val text);
CREATE TABLE trg_source (v int);
GRANT INSERT, SELECT ON trg_source TO regress_app;
CREATE FUNCTION trg_copy_docs() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
	INSERT INTO trg_log SELECT 'trigger', body FROM gp_docs;
	RETURN NEW;
END
$$;
CREATE TRIGGER trg_copy AFTER INSERT ON trg_source FOR EACH ROW EXECUTE FUNCTION trg_copy_docs();
CREATE TABLE rule_target (v int);
GRANT INSERT ON rule_target TO regress_app;
CREATE RULE rule_copy AS ON INSERT TO rule_target
	DO ALSO INSERT INTO trg_log SELECT 'rule', body FROM gp_docs;
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'gaps triggers');
SET ROLE regress_app;
INSERT INTO trg_source VALUES (1);
INSERT INTO rule_target VALUES (1);
RESET ROLE;
-- the superuser itself, in A's context
INSERT INTO trg_source VALUES (2);
SELECT tenant_isolation.logout();
SELECT what, val FROM trg_log ORDER BY what, val;
SELECT count(*) AS b_values FROM trg_log WHERE val LIKE 'B-SECRET%';

------------------------------------------------------------------------------
-- 7. no membership needed, a tenant role refused outside its context
------------------------------------------------------------------------------
CREATE ROLE regress_gaps_login LOGIN;
SELECT count(*) AS member_of_login_role FROM pg_auth_members
 WHERE member = 'regress_gaps_login'::regrole;
SELECT tenant_isolation.create_tenant('gaps s', 'schema', '18500000-0000-4000-8000-00000000005c');
\set tokS `:m -k gaps HS256 :kd/hs256.key '{"sub": "s-user", "tenant_id": "18500000-0000-4000-8000-00000000005c", "exp": NOW+3600}'`
SET ROLE regress_gaps_login;
-- a role in no group logs into the schema tenant: the extension switches
BEGIN;
SELECT left(tenant_isolation.login_local(:'tokS')::text, 8) AS tenant;
SELECT current_user AS cur, session_user = 'postgres' AS su_session;
COMMIT;
SELECT current_user AS cur_after_commit;
-- outside its context its role cannot be taken, by this role nor a superuser
SELECT sqlstate_of($$SET ROLE tenant_1850000000004000800000000000005c$$);
RESET ROLE;
SELECT sqlstate_of($$SET ROLE tenant_1850000000004000800000000000005c$$);
SELECT sqlstate_of($$SET SESSION AUTHORIZATION tenant_1850000000004000800000000000005c$$);
-- nor inside another tenant's context
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'gaps schema');
SELECT sqlstate_of($$SET ROLE tenant_1850000000004000800000000000005c$$);
SELECT tenant_isolation.logout();
SELECT current_user = session_user AS own_role;

------------------------------------------------------------------------------
-- cleanup
------------------------------------------------------------------------------
SET client_min_messages = warning;
SELECT tenant_isolation.drop_tenant('18500000-0000-4000-8000-00000000005c');
RESET client_min_messages;
DROP ROLE regress_gaps_login;
DROP TABLE trg_source, rule_target, trg_log;
DROP FUNCTION trg_copy_docs();
SELECT tenant_isolation.unprotect_table('ml');
DROP TABLE ml;
SELECT tenant_isolation.unprotect_table('inh_parent');
DROP TABLE inh_parent CASCADE;
SELECT tenant_isolation.unprotect_table('gp_docs');
DROP TABLE gp_docs;
SELECT tenant_isolation.drop_jwt_key('gaps');
