-- DDL storm: a schema-tier tenant (schema and role), created and dropped
SELECT tenant_isolation.drop_tenant(id) FROM tenant_isolation.tenant WHERE name = 'ddl storm ' || :client_id;
SELECT tenant_isolation.create_tenant('ddl storm ' || :client_id, 'schema');
SELECT tenant_isolation.drop_tenant(id) FROM tenant_isolation.tenant WHERE name = 'ddl storm ' || :client_id;
