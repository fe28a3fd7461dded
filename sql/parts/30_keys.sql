
-- ==== Keys (issue 5) ====
-- Per-tenant data keys, stored only wrapped under the master key
-- (docs/keys.md).  The master key itself is never in a table.
CREATE TABLE tenant_isolation.tenant_key (
	tenant		uuid NOT NULL REFERENCES tenant_isolation.tenant (id) ON DELETE CASCADE,
	version		int NOT NULL CHECK (version > 0),
	state		text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
	wrapped		bytea NOT NULL CHECK (length(wrapped) = 48),
	nonce		bytea NOT NULL CHECK (length(nonce) = 24),
	master_key_id bytea NOT NULL CHECK (length(master_key_id) = 16),
	created_at	timestamptz NOT NULL DEFAULT now(),
	retired_at	timestamptz,
	PRIMARY KEY (tenant, version)
);
-- Exactly one version of a tenant encrypts.
CREATE UNIQUE INDEX tenant_key_one_active ON tenant_isolation.tenant_key (tenant)
	WHERE state = 'active';
REVOKE ALL ON tenant_isolation.tenant_key FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_isolation.tenant_key', '');

-- Every write to tenant_key (rotation, rewrap, crypto-shredding through the
-- cascade, direct DML) wipes the cached keys of every backend.
CREATE FUNCTION tenant_isolation._tenant_keys_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_tenant_keys_changed' LANGUAGE C;
REVOKE ALL ON FUNCTION tenant_isolation._tenant_keys_changed() FROM PUBLIC;
CREATE TRIGGER tenant_key_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_isolation.tenant_key
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_isolation._tenant_keys_changed();

-- Encryption under the current tenant's keys.  encrypt may create the
-- tenant's first key, so it writes and is parallel unsafe; decrypt only
-- reads and may run in parallel workers (they inherit the master key).
CREATE FUNCTION tenant_isolation.encrypt(data bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_encrypt' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION tenant_isolation.encrypt(data text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_encrypt' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION tenant_isolation.decrypt(data bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_decrypt' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE FUNCTION tenant_isolation.decrypt_text(data bytea) RETURNS text
	AS 'MODULE_PATHNAME', 'ti_decrypt_text' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE FUNCTION tenant_isolation.reencrypt(data bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_reencrypt' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Administration (superusers and tenant_isolation_admin).
CREATE FUNCTION tenant_isolation.rotate_tenant_key(id uuid) RETURNS integer
	AS 'MODULE_PATHNAME', 'ti_rotate_tenant_key' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION tenant_isolation.rotate_master_key() RETURNS integer
	AS 'MODULE_PATHNAME', 'ti_rotate_master_key' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION tenant_isolation.master_key_id() RETURNS text
	AS 'MODULE_PATHNAME', 'ti_master_key_id' LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION tenant_isolation.rotate_tenant_key(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_isolation.rotate_master_key() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_isolation.master_key_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_isolation.rotate_tenant_key(uuid) TO tenant_isolation_admin;
GRANT EXECUTE ON FUNCTION tenant_isolation.rotate_master_key() TO tenant_isolation_admin;
GRANT EXECUTE ON FUNCTION tenant_isolation.master_key_id() TO tenant_isolation_admin;

-- DBA view: versions and states, never key bytes (the master key id is a
-- keyed hash that only tells master keys apart).
CREATE VIEW tenant_isolation.tenant_keys AS
	SELECT k.tenant, k.version, k.created_at, k.state, k.retired_at,
		   pg_catalog.encode(k.master_key_id, 'hex') AS master_key_id
	  FROM tenant_isolation.tenant_key k;
REVOKE ALL ON tenant_isolation.tenant_keys FROM PUBLIC;
GRANT SELECT ON tenant_isolation.tenant_keys TO tenant_isolation_admin;
