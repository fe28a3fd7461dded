--
-- tenants: provisioning in both tiers, the schema tier's privilege wall,
-- templates and migrations, moves between tiers, export, settings, drop.
--
\set SHOW_CONTEXT never
SELECT current_user AS superuser_name \gset
CREATE TABLE widgets (
	tenant_id	uuid NOT NULL,
	id			int NOT NULL,
	name		text NOT NULL,
	PRIMARY KEY (tenant_id, id)
);
SELECT tenant_isolation.protect_table('widgets');
SELECT tenant_isolation.add_template_table('widgets');
SELECT sqlstate_of($$SELECT tenant_isolation.add_template_table('widgets')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.add_template_table(NULL)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.add_template_table('docs_view')$$);
GRANT SELECT, INSERT, UPDATE, DELETE ON widgets TO regress_app;

-- bad input changes nothing
SELECT count(*) AS tenants_before FROM tenant_isolation.tenant \gset
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('tenant a')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant('x', 'dedicated')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.create_tenant(repeat('x', 201))$$);
SELECT sqlstate_of($$SELECT tenant_isolation.suspend_tenant(NULL)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.suspend_tenant('99999999-9999-4999-8999-999999999999')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.drop_tenant('99999999-9999-4999-8999-999999999999')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.move_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'shared')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.move_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'moon')$$);
SELECT count(*) = :tenants_before AS unchanged FROM tenant_isolation.tenant;

-- two schema-tier tenants
SELECT tenant_isolation.create_tenant('schema one', 'schema', '51515151-5151-4515-8515-515151515151');
SELECT tenant_isolation.create_tenant('schema two', 'schema', '52525252-5252-4525-8525-525252525252');
SELECT name, tier, status, schema_name FROM tenant_isolation.tenants
 WHERE tier = 'schema' ORDER BY name;
SELECT tenant_isolation.tenant_schema('51515151-5151-4515-8515-515151515151');
SELECT n.nspname, pg_get_userbyid(n.nspowner) AS owner,
	   (SELECT string_agg(c.relname || ':' || pg_get_userbyid(c.relowner), ',' ORDER BY c.relname)
		  FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind = 'r') AS tables
  FROM pg_namespace n WHERE n.nspname LIKE 'tenant\_5%' ORDER BY 1;
SELECT r.rolname, r.rolcanlogin, r.rolinherit,
	   pg_has_role('tenant_isolation_login', r.oid, 'MEMBER') AS login_may_use
  FROM pg_roles r WHERE r.rolname LIKE 'tenant\_5%' ORDER BY 1;

-- rows of each schema tenant, written as superuser outside any context
INSERT INTO tenant_51515151515145158515515151515151.widgets VALUES
	('51515151-5151-4515-8515-515151515151', 1, 'one-widget');
INSERT INTO tenant_52525252525245258525525252525252.widgets VALUES
	('52525252-5252-4525-8525-525252525252', 1, 'TWO-SECRET-widget');

-- An administrator (not a superuser) enters schema one: its role, its schema
-- first on the search_path; schema two is closed by privileges.
\c - regress_support
\set SHOW_CONTEXT never
SELECT tenant_isolation.assume_tenant('51515151-5151-4515-8515-515151515151', 'schema tier test');
SELECT current_user, current_schemas(false);
SELECT id, name FROM widgets;
SELECT * FROM tenant_52525252525245258525525252525252.widgets;
-- a manual SET ROLE to another tenant's role is refused, and so is every statement as it
RESET ROLE;
SET ROLE tenant_52525252525245258525525252525252;
SELECT * FROM tenant_52525252525245258525525252525252.widgets;
RESET ROLE;
SELECT tenant_isolation.logout();
SELECT current_user, current_schemas(false);
\c - :superuser_name
\set SHOW_CONTEXT never

-- templates reach existing and new schema tenants; migrations reach all
SELECT r.status, count(*) FROM tenant_isolation.migrate_tenant_schemas(
	'ALTER TABLE widgets ADD COLUMN color text DEFAULT ''grey''') r GROUP BY 1 ORDER BY 1;
SELECT c.relnamespace::regnamespace AS schema, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relname = 'widgets' AND a.attname = 'color' ORDER BY 1;
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.migrate_tenant_schemas('ALTER TABLE no_such_table ADD COLUMN x int')$$);
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.migrate_tenant_schemas('')$$);
-- a failed migration changed nothing anywhere
SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relname = 'widgets' AND a.attname = 'x';

-- move a shared tenant with its rows to the schema tier and back
SELECT tenant_isolation.create_tenant('mover', 'shared', '53535353-5353-4535-8535-535353535353');
INSERT INTO widgets (tenant_id, id, name) VALUES
	('53535353-5353-4535-8535-535353535353', 1, 'mover-1'),
	('53535353-5353-4535-8535-535353535353', 2, 'mover-2'),
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'a-widget');
SELECT tenant_isolation.move_tenant('53535353-5353-4535-8535-535353535353', 'schema');
SELECT tier, schema_name FROM tenant_isolation.tenants WHERE name = 'mover';
SELECT tenant_id, id, name FROM widgets ORDER BY tenant_id, id;
SELECT tenant_id, id, name, color FROM tenant_53535353535345358535535353535353.widgets ORDER BY id;
SELECT tenant_isolation.assume_tenant('53535353-5353-4535-8535-535353535353', 'after move');
SELECT id, name FROM widgets ORDER BY id;
SELECT tenant_isolation.logout();
SELECT tenant_isolation.move_tenant('53535353-5353-4535-8535-535353535353', 'shared');
SELECT tier, schema_name FROM tenant_isolation.tenants WHERE name = 'mover';
SELECT tenant_id, id, name FROM widgets WHERE tenant_id = '53535353-5353-4535-8535-535353535353' ORDER BY id;
SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_53535353535345358535535353535353';
SELECT count(*) FROM pg_roles WHERE rolname = 'tenant_53535353535345358535535353535353';
-- a tenant with rows in a protected table that is no template cannot move
SELECT sqlstate_of($$SELECT tenant_isolation.move_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'schema')$$);
SELECT tier FROM tenant_isolation.tenants WHERE name = 'tenant a';

-- export: every row of one tenant, nothing of another
SELECT tbl, "row" - 'tenant_id' AS "row" FROM tenant_isolation.export_tenant('53535353-5353-4535-8535-535353535353')
 ORDER BY 1::text, 2::text;
SELECT tbl, "row" FROM tenant_isolation.export_tenant('52525252-5252-4525-8525-525252525252');
SELECT count(*) FROM tenant_isolation.export_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')
 WHERE "row"::text LIKE '%SECRET%' OR "row"::text LIKE '%bbbbbbbb%';
SELECT tbl, row_count FROM tenant_isolation.tenant_row_counts('53535353-5353-4535-8535-535353535353')
 WHERE row_count > 0;
-- these functions refuse to run inside a context (they would be scoped)
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'export test');
SELECT sqlstate_of($$SELECT count(*) FROM tenant_isolation.export_tenant('53535353-5353-4535-8535-535353535353')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.drop_tenant('53535353-5353-4535-8535-535353535353')$$);
SELECT tenant_isolation.logout();

-- settings and feature flags: global default, per-tenant override
SELECT tenant_isolation.set_tenant_setting(NULL, 'beta', 'false');
SELECT tenant_isolation.set_tenant_setting(NULL, 'theme', '"light"');
SELECT tenant_isolation.set_tenant_setting('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'beta', 'true');
SELECT tenant_isolation.set_tenant_setting('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'theme', '"B-SECRET-theme"');
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_setting('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '', '1')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_setting('99999999-9999-4999-8999-999999999999', 'k', '1')$$);
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'settings test');
SET ROLE regress_app;
SELECT tenant_isolation.feature_enabled('beta') AS beta, tenant_isolation.tenant_setting('theme') AS theme,
	   tenant_isolation.feature_enabled('nope') AS nope, tenant_isolation.tenant_setting('nope') AS nope_value;
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_setting('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'beta', 'false')$$);
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.tenant_settings$$);
RESET ROLE;
SELECT tenant_isolation.assume_tenant('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'settings test');
SELECT tenant_isolation.feature_enabled('beta') AS beta, tenant_isolation.tenant_setting('theme') AS theme;
SELECT tenant_isolation.logout();
SELECT tenant_isolation.feature_enabled('beta') AS beta_without_context;

-- placement for the dedicated-database model
SELECT tenant_isolation.set_tenant_placement('52525252-5252-4525-8525-525252525252', 'db-eu-2');
SELECT sqlstate_of($$SELECT tenant_isolation.set_tenant_placement('52525252-5252-4525-8525-525252525252', ' ')$$);
SELECT name, placement FROM tenant_isolation.tenants WHERE placement IS NOT NULL;

-- Suspension: a session already in the tenant loses access at its next
-- statement, and can still leave the context.
SELECT tenant_isolation.assume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'suspend test');
SET ROLE regress_app;
SELECT count(*) FROM docs;
RESET ROLE;
SELECT tenant_isolation.suspend_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
SET ROLE regress_app;
SELECT count(*) FROM docs;
SELECT tenant_isolation.logout();
RESET ROLE;
SELECT tenant_isolation.resume_tenant('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
SELECT name, status, suspended_at IS NULL AS not_suspended FROM tenant_isolation.tenants WHERE name = 'tenant a';

-- drop: rows, schema, role and settings go; the other tenants stay intact
SELECT tenant_isolation.set_tenant_setting('53535353-5353-4535-8535-535353535353', 'beta', 'true');
SELECT tenant_isolation.drop_tenant('53535353-5353-4535-8535-535353535353');
SELECT tenant_isolation.drop_tenant('52525252-5252-4525-8525-525252525252');
SELECT count(*) FROM widgets WHERE tenant_id = '53535353-5353-4535-8535-535353535353';
SELECT count(*) FROM tenant_isolation.tenant_setting WHERE tenant = '53535353-5353-4535-8535-535353535353';
SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_52525252525245258525525252525252';
SELECT count(*) FROM pg_roles WHERE rolname = 'tenant_52525252525245258525525252525252';
SELECT name, tier FROM tenant_isolation.tenants ORDER BY name;
SELECT tenant_id, id, name FROM widgets ORDER BY tenant_id, id;
SELECT id, name FROM tenant_51515151515145158515515151515151.widgets;
SELECT tenant_isolation.drop_tenant('51515151-5151-4515-8515-515151515151');
SELECT count(*) FROM pg_roles WHERE rolname LIKE 'tenant\_5%';
