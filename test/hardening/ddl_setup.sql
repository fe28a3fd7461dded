-- stress.sh with STRESS_DDL=1: what the DDL storm and its tenant workload
-- need besides items.  parts is a protected partitioned table that tenants
-- write marker rows into (bucket 0-3, permanent partitions) while the storm
-- creates, attaches, detaches and drops other partitions of it.
CREATE TABLE parts (
	tenant_id	uuid NOT NULL,
	bucket		int NOT NULL,
	id			bigserial,
	payload		text NOT NULL
) PARTITION BY LIST (bucket);
CREATE TABLE parts_0 PARTITION OF parts FOR VALUES IN (0);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES IN (1);
CREATE TABLE parts_2 PARTITION OF parts FOR VALUES IN (2);
CREATE TABLE parts_3 PARTITION OF parts FOR VALUES IN (3);
CREATE INDEX parts_tenant ON parts (tenant_id);
SELECT tenant_isolation.protect_table('parts');
CREATE TABLE parts_ledger (
	n		int PRIMARY KEY,
	inserts	bigint NOT NULL DEFAULT 0
);
INSERT INTO parts_ledger (n) SELECT n FROM stress_token;
CREATE TABLE stress_seen_parts (n int PRIMARY KEY, rows_seen bigint);
SELECT tenant_isolation.mark_global('parts_ledger');
SELECT tenant_isolation.mark_global('stress_seen_parts');
GRANT SELECT, INSERT ON parts TO stress_app;
GRANT USAGE ON SEQUENCE parts_id_seq TO stress_app;
GRANT SELECT, UPDATE ON parts_ledger TO stress_app;
GRANT INSERT ON stress_seen_parts TO stress_app;
