-- Benchmark data and variants, run by test/bench/run.sh as the superuser.
-- psql variables: ntenants, nrows, top_share (fraction of rows held by the
-- biggest tenant), jwt_secret.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION tenant_isolation;
CREATE EXTENSION pg_prewarm;
-- pgcrypto only mints the distinct tokens of the login cost section.
CREATE EXTENSION pgcrypto;

CREATE ROLE bench LOGIN;
CREATE ROLE bench_admin LOGIN;
GRANT tenant_isolation_admin TO bench_admin;

-- Tenants: rank 1 is the biggest.  Sizes follow r^-s, with s chosen by
-- bisection so that rank 1 holds top_share of the rows.
CREATE TABLE bench_tenant (
	rank	int PRIMARY KEY,
	id		uuid NOT NULL UNIQUE,
	nrows	int NOT NULL
);

CREATE FUNCTION pg_temp.zipf_share(n int, s float8) RETURNS float8
LANGUAGE sql AS $$ SELECT 1.0 / sum(power(r, -s)) FROM generate_series(1, n) r $$;

SET bench.ntenants = :ntenants;
SET bench.nrows = :nrows;
SET bench.top_share = :top_share;
DO $$
DECLARE
	n	int := current_setting('bench.ntenants')::int;
	tot	bigint := current_setting('bench.nrows')::bigint;
	want float8 := current_setting('bench.top_share')::float8;
	lo	float8 := 0;
	hi	float8 := 4;
	s	float8;
	norm float8;
BEGIN
	FOR i IN 1..60 LOOP
		s := (lo + hi) / 2;
		IF pg_temp.zipf_share(n, s) < want THEN lo := s; ELSE hi := s; END IF;
	END LOOP;
	SELECT sum(power(r, -s)) INTO norm FROM generate_series(1, n) r;
	INSERT INTO bench_tenant
	SELECT r, md5('tenant_isolation bench tenant ' || r)::uuid,
		   greatest(1, round(tot * power(r, -s) / norm))::int
	  FROM generate_series(1, n) r;
	PERFORM set_config('bench.zipf_s', s::text, false);
END
$$;
CREATE TABLE bench_meta AS SELECT current_setting('bench.zipf_s')::float8 AS zipf_s;

-- The events of every tenant, in time order across tenants (an append-only
-- log: a tenant's rows are spread over the whole heap).  All values derive
-- from hashes of (rank, id), so every run builds the same data.
CREATE TABLE events_literal (
	tenant_id	uuid NOT NULL,
	id			bigint NOT NULL,
	created_at	timestamptz NOT NULL,
	kind		text NOT NULL,
	payload		jsonb NOT NULL,
	amount		numeric(12,2) NOT NULL
);

INSERT INTO events_literal
SELECT t.id, g.i,
	   timestamptz '2024-01-01 00:00:00+00'
		 + (g.i::float8 / t.nrows) * interval '365 days'
		 + (h.h1 % 3600) * interval '1 second',
	   CASE h.h2 % 100
		 WHEN 0 THEN 'refund.requested'
		 WHEN 1 THEN 'refund.completed'
		 ELSE (ARRAY['order.created', 'order.paid', 'order.shipped', 'invoice.sent',
					 'user.login', 'user.logout', 'page.view', 'cart.add',
					 'cart.remove', 'search'])[1 + (h.h2 / 100) % 10]
	   END,
	   jsonb_build_object('k', h.h3 % 1000,
						  'src', (ARRAY['web', 'api', 'mobile', 'batch'])[1 + (h.h3 / 1000) % 4],
						  'v', h.h1 % 10),
	   round((h.h1 % 100000) / 100.0, 2)
  FROM bench_tenant t
 CROSS JOIN LATERAL generate_series(1, t.nrows) g(i)
 CROSS JOIN LATERAL (SELECT abs(hashint8(t.rank * 100000000::bigint + g.i)::bigint) AS h1,
							abs(hashint8(-(t.rank * 100000000::bigint + g.i))::bigint) AS h2,
							abs(hashint8(t.rank * 100000000::bigint + g.i + 4611686018427387904)::bigint) AS h3) h
 ORDER BY 3;

-- One copy per variant: same rows in the same physical order, same indexes.
CREATE TABLE events_rls_setting (LIKE events_literal INCLUDING ALL);
CREATE TABLE events_rls_json (LIKE events_literal INCLUDING ALL);
CREATE TABLE events_rls_select (LIKE events_literal INCLUDING ALL);
CREATE TABLE events_ext (LIKE events_literal INCLUDING ALL);
INSERT INTO events_rls_setting SELECT * FROM events_literal;
INSERT INTO events_rls_json SELECT * FROM events_literal;
INSERT INTO events_rls_select SELECT * FROM events_literal;
INSERT INTO events_ext SELECT * FROM events_literal;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['events_literal', 'events_rls_setting', 'events_rls_json',
							 'events_rls_select', 'events_ext'] LOOP
		EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (tenant_id, id)', t);
		EXECUTE format('CREATE INDEX %I ON %I (tenant_id, created_at)', t || '_created', t);
		EXECUTE format('CREATE INDEX %I ON %I USING gin (payload)', t || '_payload', t);
		EXECUTE format('CREATE INDEX %I ON %I (tenant_id, kind text_pattern_ops)', t || '_kind', t);
		-- run.sh vacuums between repetitions; no auto-analyze half way
		EXECUTE format('ALTER TABLE %I SET (autovacuum_enabled = false)', t);
		EXECUTE format('GRANT SELECT, INSERT ON %I TO bench, bench_admin', t);
	END LOOP;
END
$$;

-- The second table of the join workload: lines of an event (an order and
-- its lines), keyed by (tenant_id, event_id, line) with a foreign key to the
-- event.  Every fourth event has 1-3 lines; values derive from the event's.
CREATE TABLE items_literal (
	tenant_id	uuid NOT NULL,
	event_id	bigint NOT NULL,
	line		int NOT NULL,
	sku			text NOT NULL,
	qty			int NOT NULL
);
INSERT INTO items_literal
SELECT e.tenant_id, e.id, l, 'sku-' || ((e.id * 7 + l) % 500), 1 + (e.id + l) % 5
  FROM events_literal e
 CROSS JOIN LATERAL generate_series(1, 1 + (e.id / 4)::int % 3) l
 WHERE e.id % 4 = 0
 ORDER BY e.created_at, l;
CREATE TABLE items_rls_setting (LIKE items_literal INCLUDING ALL);
CREATE TABLE items_rls_json (LIKE items_literal INCLUDING ALL);
CREATE TABLE items_rls_select (LIKE items_literal INCLUDING ALL);
CREATE TABLE items_ext (LIKE items_literal INCLUDING ALL);
INSERT INTO items_rls_setting SELECT * FROM items_literal;
INSERT INTO items_rls_json SELECT * FROM items_literal;
INSERT INTO items_rls_select SELECT * FROM items_literal;
INSERT INTO items_ext SELECT * FROM items_literal;
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['literal', 'rls_setting', 'rls_json', 'rls_select', 'ext'] LOOP
		EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (tenant_id, event_id, line)', 'items_' || t);
		EXECUTE format('ALTER TABLE %I ADD FOREIGN KEY (tenant_id, event_id) REFERENCES %I (tenant_id, id)',
					   'items_' || t, 'events_' || t);
		EXECUTE format('ALTER TABLE %I SET (autovacuum_enabled = false)', 'items_' || t);
		EXECUTE format('GRANT SELECT ON %I TO bench, bench_admin', 'items_' || t);
		-- the update workload
		EXECUTE format('GRANT UPDATE (amount) ON %I TO bench, bench_admin', 'events_' || t);
	END LOOP;
END
$$;

-- Ids of inserted rows; run.sh deletes them after the insert workload.
CREATE SEQUENCE bench_ins_seq START 1000000000000;
GRANT USAGE ON SEQUENCE bench_ins_seq TO bench, bench_admin;
GRANT SELECT ON bench_tenant TO bench, bench_admin;

-- (2) native RLS, custom setting
ALTER TABLE events_rls_setting ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON events_rls_setting
	USING (tenant_id = current_setting('app.tenant_id')::uuid);
ALTER TABLE items_rls_setting ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON items_rls_setting
	USING (tenant_id = current_setting('app.tenant_id')::uuid);
-- (3) native RLS, PostgREST-style JSON claims
ALTER TABLE events_rls_json ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON events_rls_json
	USING (tenant_id = (current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id')::uuid);
ALTER TABLE items_rls_json ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON items_rls_json
	USING (tenant_id = (current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id')::uuid);
-- (4) native RLS, InitPlan wrapping
ALTER TABLE events_rls_select ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON events_rls_select
	USING (tenant_id = (SELECT current_setting('app.tenant_id')::uuid));
ALTER TABLE items_rls_select ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON items_rls_select
	USING (tenant_id = (SELECT current_setting('app.tenant_id')::uuid));

-- (5) this extension
SELECT count(tenant_isolation.create_tenant('bench tenant ' || rank, 'shared', id)) AS tenants
  FROM bench_tenant \gset
SELECT tenant_isolation.protect_table('events_ext') \g /dev/null
SELECT tenant_isolation.protect_table('items_ext') \g /dev/null
SELECT to_regprocedure('tenant_isolation.login_local(text)') IS NOT NULL AS has_login \gset
\if :has_login
SELECT tenant_isolation.add_jwt_key('bench', 'HS256', :'jwt_secret') \g /dev/null
\endif

VACUUM (ANALYZE) events_literal, events_rls_setting, events_rls_json,
	events_rls_select, events_ext, bench_tenant, items_literal, items_rls_setting,
	items_rls_json, items_rls_select, items_ext;
SELECT count(pg_prewarm(c.oid)) AS prewarmed
  FROM pg_class c
 WHERE (c.relname LIKE 'events\_%' OR c.relname LIKE 'items\_%') AND c.relkind IN ('r', 'i') \gset
