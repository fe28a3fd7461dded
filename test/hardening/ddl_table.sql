-- DDL storm: a table protected and unprotected again, and a table created
-- and dropped.  (The protected one is never dropped: drop_tenant() of the
-- 1.0 SQL fails when a protected table it listed is dropped before it gets
-- to it; see docs/hardening.md.)
CREATE TABLE IF NOT EXISTS ddl_t_:client_id (tenant_id uuid NOT NULL, x int);
SELECT tenant_isolation.protect_table('ddl_t_:client_id');
INSERT INTO ddl_t_:client_id VALUES ('00000000-0000-4000-8000-000000000001', 1);
SELECT tenant_isolation.unprotect_table('ddl_t_:client_id');
TRUNCATE ddl_t_:client_id;
DROP TABLE IF EXISTS ddl_u_:client_id;
CREATE TABLE ddl_u_:client_id (tenant_id uuid NOT NULL, x int);
DROP TABLE ddl_u_:client_id;
