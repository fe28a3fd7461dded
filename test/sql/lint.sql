--
-- lint: every rule of tenant_isolation.isolation_report fires on a crafted
-- bad schema and stays silent on a clean one; verify() fails (P0001) when
-- there is an error.
--
-- The init fixtures are bad on purpose: notes has a unique key without the
-- tenant column, customers and orders a primary key and a foreign key
-- without it.  Only this suite's objects and the fixtures are shown: other
-- suites leave their own tables behind.
--
\set SHOW_CONTEXT never
\set VERBOSITY terse

-- crafted bad schema
CREATE TABLE lint_unprotected (tenant_id uuid NOT NULL, id int);
CREATE TABLE lint_org (org_id uuid NOT NULL, id int);
CREATE TABLE lint_nullable (tenant_id uuid, id int);
CREATE INDEX ON lint_nullable (tenant_id, id);
CREATE TABLE lint_noindex (tenant_id uuid NOT NULL, id int);
CREATE TABLE lint_uidx (tenant_id uuid NOT NULL, code text);
CREATE UNIQUE INDEX lint_uidx_code ON lint_uidx (code);
CREATE INDEX ON lint_uidx (tenant_id);
CREATE TABLE lint_parted (tenant_id uuid NOT NULL, id int NOT NULL, UNIQUE (id, tenant_id))
	PARTITION BY HASH (id);
CREATE TABLE lint_parted_0 PARTITION OF lint_parted FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE lint_parted_1 PARTITION OF lint_parted FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE lint_parted_code (tenant_id uuid NOT NULL, code text, UNIQUE (code))
	PARTITION BY LIST (code);
CREATE TABLE lint_parted_code_x PARTITION OF lint_parted_code FOR VALUES IN ('x');
SELECT tenant_isolation.protect_table('lint_nullable');
SELECT tenant_isolation.protect_table('lint_noindex');
SELECT tenant_isolation.protect_table('lint_uidx');
SELECT tenant_isolation.protect_table('lint_parted');
SELECT tenant_isolation.protect_table('lint_parted_code');
-- a foreign key that pairs the tenant columns the wrong way round
CREATE TABLE lint_parent (tenant_id uuid NOT NULL, other uuid NOT NULL, id int,
						  PRIMARY KEY (tenant_id, id), UNIQUE (other, tenant_id, id));
CREATE TABLE lint_child (tenant_id uuid NOT NULL, other uuid NOT NULL, parent_id int,
						 FOREIGN KEY (tenant_id, other, parent_id) REFERENCES lint_parent (other, tenant_id, id));
CREATE INDEX ON lint_child (tenant_id);
SELECT tenant_isolation.protect_table('lint_parent');
SELECT tenant_isolation.protect_table('lint_child');
CREATE FUNCTION lint_definer() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	AS 'SELECT count(*) FROM public.lint_noindex';
CREATE VIEW lint_view AS SELECT id FROM docs;
CREATE MATERIALIZED VIEW lint_mv AS SELECT id FROM lint_view;
CREATE MATERIALIZED VIEW lint_mv_direct AS SELECT count(*) FROM events_a;
CREATE ROLE regress_lint_bypass LOGIN BYPASSRLS;
CREATE ROLE regress_lint_super LOGIN SUPERUSER;
-- issue 13.6: code that reads a protected table with the rights of a
-- superuser or a BYPASSRLS role, for any caller (row level security, the
-- fallback without the library, never applies to such owners).
CREATE VIEW lint_invoker_view WITH (security_invoker = true) AS SELECT id, body FROM docs;
CREATE FUNCTION lint_definer_via_view() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	AS $$ BEGIN RETURN (SELECT count(*) FROM public.lint_invoker_view); END $$;
CREATE FUNCTION lint_definer_atomic() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	BEGIN ATOMIC SELECT count(*) FROM public.lint_noindex; END;
CREATE FUNCTION lint_definer_bypass() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	AS 'SELECT count(*) FROM public.docs';
ALTER FUNCTION lint_definer_bypass() OWNER TO regress_lint_bypass;
CREATE VIEW lint_bypass_view AS SELECT id FROM docs;
ALTER VIEW lint_bypass_view OWNER TO regress_lint_bypass;
CREATE VIEW lint_view_over_invoker AS SELECT id FROM lint_invoker_view;
CREATE TABLE lint_rule_log (id int);
CREATE TABLE lint_rule_sink (id int, body text);
CREATE RULE lint_rule_copy AS ON INSERT TO lint_rule_log
	DO ALSO INSERT INTO lint_rule_sink SELECT id, body FROM docs WHERE id = NEW.id;
CREATE TABLE lint_trg_tab (id int);
CREATE FUNCTION lint_trigger_definer() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
	AS $$ BEGIN PERFORM count(*) FROM public.docs; RETURN NEW; END $$;
CREATE TRIGGER lint_trg BEFORE INSERT ON lint_trg_tab
	FOR EACH ROW EXECUTE FUNCTION lint_trigger_definer();
CREATE ROLE regress_lint_param;
GRANT SET ON PARAMETER tenant_isolation.tenant_id TO regress_lint_param;

-- clean counterparts: none of them may appear
CREATE TABLE lint_clean (tenant_id uuid NOT NULL, id int NOT NULL, code text,
						 PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, code));
CREATE TABLE lint_clean_child (tenant_id uuid NOT NULL, parent_id int,
							   FOREIGN KEY (tenant_id, parent_id) REFERENCES lint_clean (tenant_id, id));
CREATE INDEX ON lint_clean_child (tenant_id, parent_id);
SELECT tenant_isolation.protect_table('lint_clean');
SELECT tenant_isolation.protect_table('lint_clean_child');
CREATE TABLE lint_shared (tenant_id uuid, code text UNIQUE);
SELECT tenant_isolation.mark_global('lint_shared');
CREATE FUNCTION lint_invoker() RETURNS bigint LANGUAGE sql
	AS 'SELECT count(*) FROM public.lint_noindex';
CREATE FUNCTION lint_definer_other() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	AS $$ BEGIN RETURN (SELECT count(*) FROM public.lint_noindexes_elsewhere); END $$;
CREATE FUNCTION lint_definer_ordinary() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	AS 'SELECT 1 /* lint_noindex */';
ALTER FUNCTION lint_definer_ordinary() OWNER TO regress_owner;
CREATE MATERIALIZED VIEW lint_mv_global AS SELECT code FROM countries;
CREATE ROLE regress_lint_nologin NOLOGIN BYPASSRLS;
-- an ordinary owner's view, and a superuser's view over it: checked as the
-- ordinary owner, scoped by row level security
CREATE VIEW lint_owner_view AS SELECT id FROM docs;
ALTER VIEW lint_owner_view OWNER TO regress_owner;
CREATE VIEW lint_view_over_owner AS SELECT id FROM lint_owner_view;
CREATE FUNCTION lint_definer_over_owner() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	AS 'SELECT count(*) FROM public.lint_owner_view';
-- a superuser's view of a global table, a rule of an ordinary owner
CREATE VIEW lint_global_view AS SELECT code FROM lint_shared;
CREATE TABLE lint_owner_log (id int);
ALTER TABLE lint_owner_log OWNER TO regress_owner;
CREATE RULE lint_owner_rule AS ON INSERT TO lint_owner_log
	DO ALSO INSERT INTO lint_rule_sink SELECT id, body FROM docs WHERE id = NEW.id;

SELECT severity, object, problem, rule FROM tenant_isolation.isolation_report
 WHERE object ~ 'lint_' OR rule = 'parameter_grant'
	OR object ~ '^(constraint \w+ on )?public\.(notes|customers|orders|docs|events)$'
 ORDER BY severity, rule, object;
-- the hints say what to do
SELECT rule, hint FROM tenant_isolation.isolation_report
 WHERE object IN ('public.lint_unprotected', 'constraint notes_slug_key on public.notes',
				  'constraint orders_customer_id_fkey on public.orders', 'public.lint_definer()',
				  'public.lint_mv', 'public.lint_noindex', 'public.lint_nullable',
				  'role regress_lint_bypass', 'public.lint_bypass_view',
				  'rule lint_rule_copy on public.lint_rule_log', 'trigger lint_trg on public.lint_trg_tab',
				  'parameter tenant_isolation.tenant_id')
 ORDER BY rule, object;

-- The tenant column named by tenant_isolation.tenant_claim counts too.
SET tenant_isolation.tenant_claim = 'org_id';
SELECT severity, object, rule FROM tenant_isolation.isolation_report
 WHERE object = 'public.lint_org';
RESET tenant_isolation.tenant_claim;
SELECT count(*) FROM tenant_isolation.isolation_report WHERE object = 'public.lint_org';

-- Who may read it.
SET ROLE regress_app;
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.isolation_report$$);
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.verify()$$);
RESET ROLE;
SET ROLE regress_support;
SELECT count(*) > 0 AS admin_reads FROM tenant_isolation.isolation_report;
RESET ROLE;

-- verify() fails here: the schema has errors.
SET client_min_messages = warning;
DO $$
BEGIN
	PERFORM * FROM tenant_isolation.verify();
	RAISE WARNING 'verify passed';
EXCEPTION WHEN raise_exception THEN
	RAISE WARNING 'verify failed with SQLSTATE %', SQLSTATE;
END
$$;
RESET client_min_messages;

-- Fixing the mistakes makes them disappear from the report.
DROP MATERIALIZED VIEW lint_mv, lint_mv_direct;
DROP FUNCTION lint_definer();
ALTER VIEW lint_view OWNER TO regress_owner;
ALTER VIEW lint_bypass_view SET (security_invoker = on);
ALTER FUNCTION lint_definer_via_view() SECURITY INVOKER;
ALTER FUNCTION lint_definer_atomic() OWNER TO regress_owner;
ALTER FUNCTION lint_definer_bypass() OWNER TO regress_owner;
ALTER VIEW lint_view_over_invoker OWNER TO regress_owner;
DROP RULE lint_rule_copy ON lint_rule_log;
DROP TRIGGER lint_trg ON lint_trg_tab;
ALTER FUNCTION lint_trigger_definer() SECURITY INVOKER;
REVOKE SET ON PARAMETER tenant_isolation.tenant_id FROM regress_lint_param;
ALTER TABLE lint_nullable ALTER COLUMN tenant_id SET NOT NULL;
CREATE INDEX ON lint_noindex (tenant_id);
SELECT tenant_isolation.mark_global('lint_unprotected');
SELECT severity, object, rule FROM tenant_isolation.isolation_report
 WHERE object ~ 'lint_' OR rule = 'parameter_grant' ORDER BY severity, rule, object;

-- A clean database passes verify().
\set regress_db :DBNAME
CREATE DATABASE regress_lint_clean;
\c regress_lint_clean
SET client_min_messages = warning;
CREATE EXTENSION tenant_isolation;
RESET client_min_messages;
CREATE TABLE items (tenant_id uuid NOT NULL, id int NOT NULL, sku text,
					PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, sku));
CREATE TABLE item_notes (tenant_id uuid NOT NULL, item_id int NOT NULL, note text,
						 FOREIGN KEY (tenant_id, item_id) REFERENCES items (tenant_id, id));
CREATE INDEX ON item_notes (tenant_id, item_id);
CREATE TABLE currencies (code text PRIMARY KEY);
SELECT tenant_isolation.protect_table('items');
SELECT tenant_isolation.protect_table('item_notes');
SELECT tenant_isolation.mark_global('currencies');
SELECT severity, object, rule FROM tenant_isolation.verify()
 WHERE rule <> 'privileged_login_role';
SELECT count(*) FROM tenant_isolation.verify() WHERE severity = 'error';
\c :regress_db
DROP DATABASE regress_lint_clean WITH (FORCE);

DROP MATERIALIZED VIEW lint_mv_global;
DROP VIEW lint_view, lint_view_over_invoker, lint_bypass_view, lint_view_over_owner,
	lint_owner_view, lint_global_view;
DROP FUNCTION lint_invoker(), lint_definer_other(), lint_definer_ordinary(),
	lint_definer_via_view(), lint_definer_atomic(), lint_definer_bypass(),
	lint_definer_over_owner();
DROP VIEW lint_invoker_view;
DROP TABLE lint_rule_log, lint_rule_sink, lint_owner_log, lint_trg_tab;
DROP FUNCTION lint_trigger_definer();
DROP TABLE lint_unprotected, lint_org, lint_nullable, lint_noindex, lint_uidx, lint_parted,
	lint_parted_code, lint_child, lint_parent, lint_clean_child, lint_clean, lint_shared;
DROP ROLE regress_lint_bypass, regress_lint_super, regress_lint_nologin, regress_lint_param;
