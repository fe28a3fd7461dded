-- DDL storm: a schema with a table in it, created and dropped
DROP SCHEMA IF EXISTS storm_:client_id CASCADE;
CREATE SCHEMA storm_:client_id;
CREATE TABLE storm_:client_id.t (tenant_id uuid, x int);
DROP SCHEMA storm_:client_id CASCADE;
