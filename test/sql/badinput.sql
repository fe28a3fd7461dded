--
-- badinput: every SQL function of the contract that exists, called with
-- NULL, empty, oversized and wrongly typed arguments, by the wrong role and
-- in the wrong context.  Each call must fail with a clear message and the
-- SQLSTATE of the contract (22023 / 22P02 bad argument, 28000 login,
-- 42501 denied, 55000 wrong state) and change nothing: a snapshot of the
-- extension's catalogs and of the fixture rows is compared before and after.
--
-- Runs after the other suites; it relies only on init's fixtures (tenants A
-- and B, table docs, roles regress_app and regress_support, sqlstate_of) and
-- creates and removes what else it needs.  No count made by another suite
-- is printed.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\set A 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'
\set B 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'
\set NOBODY '99999999-9999-4999-8999-999999999999'

CREATE TABLE public.badinput_t (tenant_id uuid NOT NULL, id int NOT NULL);
CREATE VIEW public.badinput_v AS SELECT * FROM public.badinput_t;
GRANT SELECT, INSERT ON public.badinput_t TO regress_app;
INSERT INTO public.badinput_t VALUES (:'A', 1), (:'B', 2);

-- Everything a bad call could change, as one md5.  Superuser, no context.
CREATE FUNCTION public.badinput_snapshot() RETURNS text
LANGUAGE sql VOLATILE AS $$
SELECT md5(concat_ws('|',
	(SELECT string_agg(concat_ws(',', id, name, tier, status, suspended_at, schema_name, role_name, placement),
					   ';' ORDER BY id) FROM tenant_isolation.tenant),
	(SELECT string_agg(tbl::oid || ',' || tenant_column, ';' ORDER BY tbl::oid)
	   FROM tenant_isolation.protected_table),
	(SELECT string_agg(tbl::oid::text, ';' ORDER BY tbl::oid) FROM tenant_isolation.global_table),
	(SELECT string_agg(tbl::oid::text, ';' ORDER BY tbl::oid) FROM tenant_isolation.template_table),
	(SELECT string_agg(concat_ws(',', kid, alg, issuer, audience, fingerprint), ';' ORDER BY kid)
	   FROM tenant_isolation.jwt_key),
	(SELECT string_agg(concat_ws(',', tenant, key, value), ';' ORDER BY tenant, key)
	   FROM tenant_isolation.tenant_setting),
	(SELECT string_agg(concat_ws(',', key, value), ';' ORDER BY key)
	   FROM tenant_isolation.setting_default),
	(SELECT string_agg(nspname, ';' ORDER BY nspname) FROM pg_namespace WHERE nspname LIKE 'tenant\_%'),
	(SELECT string_agg(rolname, ';' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'tenant\_%'),
	(SELECT string_agg(concat_ws(',', relname, relrowsecurity, relforcerowsecurity), ';' ORDER BY relname)
	   FROM pg_class WHERE relname IN ('docs', 'badinput_t')),
	(SELECT count(*) FROM pg_trigger WHERE tgname = 'tenant_isolation_guard'),
	(SELECT count(*) FROM pg_policy WHERE polname = 'tenant_isolation_fallback'),
	(SELECT string_agg(concat_ws(',', tenant_id, id, title, body), ';' ORDER BY tenant_id, id) FROM public.docs),
	(SELECT string_agg(concat_ws(',', tenant_id, id), ';' ORDER BY tenant_id, id) FROM public.badinput_t)))
$$;

-- Like sqlstate_of, for statements that must fail: 'ok' is a finding.
-- Messages that echo an oversized argument are cut at 120 characters.
CREATE FUNCTION public.badinput_try(q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok (accepted!)';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || CASE WHEN length(SQLERRM) > 120
		THEN left(SQLERRM, 120) || '... (' || length(SQLERRM) || ' characters)' ELSE SQLERRM END;
END
$$;
GRANT EXECUTE ON FUNCTION public.badinput_try(text) TO PUBLIC;

RESET client_min_messages;

SELECT public.badinput_snapshot() AS snap \gset

------------------------------------------------------------------------------
-- Context: assume_tenant, logout, current_tenant, the GUC
------------------------------------------------------------------------------
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant(NULL, 'r')$$);
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '')$$);
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', E' \t\n')$$);
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant('99999999-9999-4999-8999-999999999999', 'r')$$);
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant('not-a-uuid', 'r')$$);
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant('', 'r')$$);
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant(42, 'r')$$);
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant(repeat('a', 1000000)::uuid, 'r')$$);
SELECT tenant_isolation.current_tenant() IS NULL AS no_context;
-- an oversized reason is refused (22023) and sets no context
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', repeat('r', 100000))$$);
SELECT tenant_isolation.current_tenant() IS NULL AS still_no_context;
SELECT tenant_isolation.logout();
SELECT tenant_isolation.logout();
SELECT tenant_isolation.current_tenant() IS NULL AS no_context;

SELECT badinput_try($$SET tenant_isolation.tenant_id = 'not-a-uuid'$$);
SELECT badinput_try($$SET tenant_isolation.tenant_id = '{aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa}'$$);
SELECT badinput_try($$SET tenant_isolation.tenant_id = 'aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa'$$);
SELECT badinput_try($$SET tenant_isolation.tenant_id = ' aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'$$);
SELECT badinput_try(format('SET tenant_isolation.tenant_id = %L', repeat('a', 100000)));
SELECT badinput_try($$SELECT set_config('tenant_isolation.tenant_id', 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz', false)$$);
SELECT badinput_try($$SET tenant_isolation.jwt_leeway = -1$$);
SELECT badinput_try($$SET tenant_isolation.jwt_leeway = 'soon'$$);
SELECT badinput_try($$SET tenant_isolation.jwt_max_token_size = 0$$);
SELECT badinput_try($$SET tenant_isolation.tenant_claim = ''$$);
SHOW tenant_isolation.tenant_id;
SHOW tenant_isolation.jwt_leeway;
SHOW tenant_isolation.tenant_claim;

------------------------------------------------------------------------------
-- Login: every malformed token is 28000 and leaves no context
------------------------------------------------------------------------------
SELECT badinput_try($$SELECT tenant_isolation.login(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.login('')$$);
SELECT badinput_try($$SELECT tenant_isolation.login('.')$$);
SELECT badinput_try($$SELECT tenant_isolation.login('..')$$);
SELECT badinput_try($$SELECT tenant_isolation.login('a.b.c.d')$$);
SELECT badinput_try($$SELECT tenant_isolation.login('not a token')$$);
SELECT badinput_try($$SELECT tenant_isolation.login('eyJhbGciOiJub25lIn0.eyJ0ZW5hbnRfaWQiOiJ4In0.')$$);
SELECT badinput_try($$SELECT tenant_isolation.login(E'\u00e9\u00e9.\u00e9.\u00e9')$$);
SELECT badinput_try($$SELECT tenant_isolation.login(repeat('A', 16385))$$);
SELECT badinput_try($$SELECT tenant_isolation.login(repeat('A', 20000000))$$);
SELECT badinput_try($$SELECT tenant_isolation.login(repeat('A', 100) || '.' || repeat('B', 100) || '.' || repeat('C', 100))$$);
SELECT badinput_try($$SELECT tenant_isolation.login(42)$$);
SELECT badinput_try($$SELECT tenant_isolation.login_local(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.login_local('')$$);
SELECT badinput_try($$SELECT tenant_isolation.login_local(repeat('x.', 8000))$$);
SELECT tenant_isolation.current_tenant() IS NULL AS no_context,
	   tenant_isolation.current_claims() IS NULL AS no_claims,
	   tenant_isolation.current_user_id() IS NULL AS no_user;
-- a failed login in a tenant context leaves no context at all
SELECT tenant_isolation.assume_tenant(:'A', 'badinput');
SELECT badinput_try($$SELECT tenant_isolation.login('x.y.z')$$);
SELECT tenant_isolation.current_tenant() IS NULL AS no_context_after_failed_login;
SELECT tenant_isolation.logout();

------------------------------------------------------------------------------
-- Tenants
------------------------------------------------------------------------------
SELECT badinput_try($$SELECT tenant_isolation.create_tenant(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('')$$);
-- a name of blanks and tabs is empty too (22023)
SELECT badinput_try($$SELECT tenant_isolation.create_tenant(E' \t ')$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant(repeat('n', 201))$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant(repeat('n', 1000000))$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('badinput', NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('badinput', '')$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('badinput', 'SHARED')$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('badinput', 'shared', 'not-a-uuid')$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('badinput', 'shared', '')$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('badinput', 'shared', 7)$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('badinput', 'shared', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('tenant a')$$);
SELECT badinput_try($$SELECT tenant_isolation.suspend_tenant(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.suspend_tenant('99999999-9999-4999-8999-999999999999')$$);
SELECT badinput_try($$SELECT tenant_isolation.suspend_tenant('nope')$$);
SELECT badinput_try($$SELECT tenant_isolation.resume_tenant(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.resume_tenant('99999999-9999-4999-8999-999999999999')$$);
SELECT badinput_try($$SELECT tenant_isolation.drop_tenant(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.drop_tenant('99999999-9999-4999-8999-999999999999')$$);
SELECT badinput_try($$SELECT tenant_isolation.drop_tenant('')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_placement(NULL, 'eu')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_placement('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_placement('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', repeat('p', 201))$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_placement('99999999-9999-4999-8999-999999999999', 'eu')$$);
SELECT badinput_try($$SELECT tenant_isolation.move_tenant(NULL, 'schema')$$);
SELECT badinput_try($$SELECT tenant_isolation.move_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.move_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '')$$);
SELECT badinput_try($$SELECT tenant_isolation.move_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', repeat('s', 100000))$$);
SELECT badinput_try($$SELECT tenant_isolation.move_tenant('99999999-9999-4999-8999-999999999999', 'schema')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.export_tenant(NULL)$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.export_tenant('99999999-9999-4999-8999-999999999999')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.tenant_row_counts(NULL)$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.tenant_row_counts('99999999-9999-4999-8999-999999999999')$$);
-- nothing of a blank-named tenant exists
SELECT count(tenant_isolation.drop_tenant(id)) AS leftover_blank_tenants
  FROM tenant_isolation.tenant WHERE btrim(name, E' \t\r\n') = '';
SELECT tenant_isolation.tenant_schema(NULL) IS NULL AS schema_of_null_is_null;
SELECT badinput_try($$SELECT tenant_isolation.tenant_schema('x')$$);

------------------------------------------------------------------------------
-- Templates, migrations, settings
------------------------------------------------------------------------------
SELECT badinput_try($$SELECT tenant_isolation.add_template_table(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.add_template_table('no_such_table')$$);
SELECT badinput_try($$SELECT tenant_isolation.add_template_table('')$$);
SELECT badinput_try($$SELECT tenant_isolation.add_template_table('badinput_v')$$);
-- an OID that names no relation: 42P01, no dangling template row (which
-- would break every later schema-tier create_tenant)
SELECT badinput_try($$SELECT tenant_isolation.add_template_table(0)$$);
SELECT badinput_try($$SELECT tenant_isolation.add_template_table(4294967295)$$);
WITH d AS (DELETE FROM tenant_isolation.template_table x
			WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.tbl) RETURNING 1)
SELECT count(*) AS leftover_template_rows FROM d;
SELECT badinput_try($$SELECT * FROM tenant_isolation.migrate_tenant_schemas(NULL)$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.migrate_tenant_schemas('')$$);
-- DDL of blanks and newlines is empty (22023)
SELECT badinput_try($$SELECT * FROM tenant_isolation.migrate_tenant_schemas(E' \n ')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.migrate_tenant_schemas('this is not sql')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_setting('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', NULL, '1')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_setting('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '', '1')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_setting('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', repeat('k', 201), '1')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_setting('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'k', 'not json')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_setting('99999999-9999-4999-8999-999999999999', 'k', '1')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_setting('nope', 'k', '1')$$);
SELECT tenant_isolation.tenant_setting(NULL) IS NULL AS setting_of_null_is_null,
	   tenant_isolation.tenant_setting('') IS NULL AS setting_of_empty_is_null,
	   tenant_isolation.feature_enabled(NULL) AS flag_null,
	   tenant_isolation.feature_enabled(repeat('f', 100000)) AS flag_huge;

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------
SELECT badinput_try($$SELECT tenant_isolation.protect_table(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.protect_table('badinput_t', NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.protect_table('badinput_t', '')$$);
SELECT badinput_try($$SELECT tenant_isolation.protect_table('badinput_t', repeat('c', 1000))$$);
SELECT badinput_try($$SELECT tenant_isolation.protect_table('badinput_t', 'id')$$);
SELECT badinput_try($$SELECT tenant_isolation.protect_table('')$$);
-- an OID that names no relation: 42P01
SELECT badinput_try($$SELECT tenant_isolation.protect_table(0)$$);
SELECT badinput_try($$SELECT tenant_isolation.protect_table(4294967295)$$);
SELECT badinput_try($$SELECT tenant_isolation.protect_table('badinput_v')$$);
SELECT badinput_try($$SELECT tenant_isolation.unprotect_table(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.unprotect_table('badinput_t')$$);
SELECT badinput_try($$SELECT tenant_isolation.unprotect_table(0)$$);
SELECT badinput_try($$SELECT tenant_isolation.mark_global(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.mark_global('')$$);
SELECT badinput_try($$SELECT tenant_isolation.mark_global('docs')$$);
-- an OID that names no relation: 42P01, no dangling row in global_table
SELECT badinput_try($$SELECT tenant_isolation.mark_global(0)$$);
SELECT badinput_try($$SELECT tenant_isolation.mark_global(4294967295)$$);
SELECT badinput_try($$SELECT tenant_isolation.mark_global('pg_class_oid_index')$$);
WITH d AS (DELETE FROM tenant_isolation.global_table g
			WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.tbl) RETURNING 1)
SELECT count(*) AS leftover_global_rows FROM d;

------------------------------------------------------------------------------
-- JWT keys
------------------------------------------------------------------------------
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key(NULL, 'HS256', repeat('k', 32))$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('', 'HS256', repeat('k', 32))$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key(repeat('i', 257), 'HS256', repeat('k', 32))$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', NULL, repeat('k', 32))$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', '', repeat('k', 32))$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', 'none', repeat('k', 32))$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', 'HS256', NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', 'HS256', '')$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', 'RS256', '')$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', 'RS256', repeat('-----BEGIN PUBLIC KEY-----', 10000))$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', 'ES256', E'-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', 'HS256', repeat('k', 32), issuer => '')$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('badinput', 'HS256', repeat('k', 32), audience => '')$$);
SELECT badinput_try($$SELECT tenant_isolation.drop_jwt_key(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.drop_jwt_key('')$$);
SELECT badinput_try($$SELECT tenant_isolation.drop_jwt_key(repeat('i', 100000))$$);

------------------------------------------------------------------------------
-- Keys, limits, audit
------------------------------------------------------------------------------
SELECT badinput_try($$SELECT tenant_isolation.rotate_tenant_key(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.rotate_tenant_key('99999999-9999-4999-8999-999999999999')$$);
SELECT badinput_try($$SELECT tenant_isolation.decrypt('\x'::bytea)$$);
SELECT tenant_isolation.decrypt(NULL) IS NULL AS decrypt_null_is_null;
SELECT tenant_isolation.assume_tenant(:'A', 'badinput: ciphertexts');
SELECT badinput_try($$SELECT tenant_isolation.decrypt('\x'::bytea)$$);
SELECT badinput_try($$SELECT tenant_isolation.decrypt('\x0102030405'::bytea)$$);
SELECT badinput_try($$SELECT tenant_isolation.decrypt(decode(repeat('00', 100), 'hex'))$$);
SELECT badinput_try($$SELECT tenant_isolation.decrypt(decode(repeat('ff', 100000), 'hex'))$$);
SELECT badinput_try($$SELECT tenant_isolation.decrypt_text(decode(repeat('ab', 64), 'hex'))$$);
SELECT badinput_try($$SELECT tenant_isolation.reencrypt(decode(repeat('ab', 64), 'hex'))$$);
SELECT tenant_isolation.logout();
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_limits(NULL, max_sessions => 1)$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_limits('99999999-9999-4999-8999-999999999999', max_sessions => 1)$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_limits('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', max_sessions => -1)$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_limits('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', statements_per_second => -0.5)$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_limits('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', statement_timeout => '-1 s')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_limits('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', work_mem => 'lots')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_limits('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', max_rows => -1)$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_limits('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', max_sessions => 'many')$$);
-- an unknown tenant: 22023, as everywhere
SELECT badinput_try($$SELECT tenant_isolation.reset_tenant_stats('99999999-9999-4999-8999-999999999999')$$);
SELECT badinput_try($$SELECT tenant_isolation.resync_tenant_rows('99999999-9999-4999-8999-999999999999')$$);
-- a negative timeout: 22023
SELECT badinput_try($$SELECT tenant_isolation.audit_flush(-1)$$);

------------------------------------------------------------------------------
-- Wrong role: an ordinary role is denied every provisioning call (42501),
-- whatever the arguments
------------------------------------------------------------------------------
SET ROLE regress_app;
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'r')$$);
SELECT badinput_try($$SELECT tenant_isolation.assume_tenant(NULL, NULL)$$);
SELECT badinput_try($$SET tenant_isolation.tenant_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'$$);
SELECT badinput_try($$SET tenant_isolation.tenant_id = 'garbage'$$);
SELECT badinput_try($$SET tenant_isolation.jwt_leeway = 5$$);
SELECT badinput_try($$SET tenant_isolation.tenant_claim = 'org'$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant('evil')$$);
SELECT badinput_try($$SELECT tenant_isolation.create_tenant(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.drop_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb')$$);
SELECT badinput_try($$SELECT tenant_isolation.suspend_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb')$$);
SELECT badinput_try($$SELECT tenant_isolation.resume_tenant(NULL)$$);
SELECT badinput_try($$SELECT tenant_isolation.move_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'schema')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_placement('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'x')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.export_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.tenant_row_counts('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb')$$);
SELECT badinput_try($$SELECT tenant_isolation.add_template_table('badinput_t')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.migrate_tenant_schemas('SELECT 1')$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_setting('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'k', '1')$$);
SELECT badinput_try($$SELECT tenant_isolation.protect_table('badinput_t')$$);
SELECT badinput_try($$SELECT tenant_isolation.unprotect_table('docs')$$);
SELECT badinput_try($$SELECT tenant_isolation.mark_global('badinput_t')$$);
SELECT badinput_try($$SELECT tenant_isolation.add_jwt_key('evil', 'HS256', repeat('k', 32))$$);
SELECT badinput_try($$SELECT tenant_isolation.drop_jwt_key('evil')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.jwt_key$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.jwt_keys$$);
SELECT badinput_try($$SELECT tenant_isolation._internal_ddl(true)$$);
SELECT badinput_try($$SELECT tenant_isolation._audit('x', 'y', 'z')$$);
SELECT badinput_try($$SELECT tenant_isolation.rotate_tenant_key('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb')$$);
SELECT badinput_try($$SELECT tenant_isolation.rotate_master_key()$$);
SELECT badinput_try($$SELECT tenant_isolation.set_tenant_limits('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', max_sessions => 1)$$);
SELECT badinput_try($$SELECT tenant_isolation.reset_tenant_stats()$$);
SELECT badinput_try($$SELECT tenant_isolation.audit_flush()$$);
-- login failures are 28000 for ordinary roles too
SELECT badinput_try($$SELECT tenant_isolation.login('')$$);
SELECT badinput_try($$SELECT tenant_isolation.login('a.b.c')$$);
-- without a context the protected table stays closed
SELECT badinput_try($$SELECT count(*) FROM docs$$);
SELECT tenant_isolation.current_tenant() IS NULL AS no_context;
RESET ROLE;

------------------------------------------------------------------------------
-- Wrong state: provisioning refuses to run inside a tenant context (55000)
------------------------------------------------------------------------------
SELECT tenant_isolation.assume_tenant(:'A', 'badinput: wrong state');
SELECT badinput_try($$SELECT tenant_isolation.drop_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb')$$);
SELECT badinput_try($$SELECT tenant_isolation.move_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'schema')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.export_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.tenant_row_counts('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb')$$);
SELECT badinput_try($$SELECT * FROM tenant_isolation.migrate_tenant_schemas('SELECT 1')$$);
-- writing a row of B in A's context is denied
SELECT badinput_try($$INSERT INTO docs VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 99, 'x', 'x', NULL)$$);
SELECT badinput_try($$INSERT INTO docs VALUES (NULL, 99, 'x', 'x', NULL)$$);
SELECT badinput_try($$UPDATE docs SET tenant_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'$$);
SELECT badinput_try($$TRUNCATE docs$$);
SELECT tenant_isolation.logout();

------------------------------------------------------------------------------
-- Nothing changed
------------------------------------------------------------------------------
SELECT public.badinput_snapshot() = :'snap' AS catalogs_and_rows_unchanged;
SELECT tenant_isolation.current_tenant() IS NULL AS no_context;

DROP VIEW public.badinput_v;
DROP TABLE public.badinput_t;
DROP FUNCTION public.badinput_try(text);
DROP FUNCTION public.badinput_snapshot();
