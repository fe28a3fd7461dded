--
-- keys: per-tenant encryption keys (docs/keys.md).
--
-- The instance must have a master key: test/keys.conf sets
-- tenant_isolation.master_key_command to print a fixed test key.  Restarts
-- with a missing, malformed or rotated master key are in test/t/031_keys.pl.
--
\set SHOW_CONTEXT never
\set a '''aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'''
\set b '''bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'''
\set d '''5e5e5e5e-0000-4000-8000-00000000005e'''

-- the master key is loaded; its id is a keyed hash of the test key
SELECT tenant_isolation.master_key_id();

-- keys are created lazily: none yet
SELECT count(*) FROM tenant_isolation.tenant_keys;

-- no tenant context, no encryption (superusers included)
SELECT sqlstate_of($$SELECT tenant_isolation.encrypt('x'::bytea)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.decrypt('\xa7'::bytea)$$);
SELECT tenant_isolation.encrypt('x');

CREATE TABLE key_ct (label text PRIMARY KEY, ct bytea);
GRANT SELECT ON key_ct TO regress_app;

------------------------------------------------------------------------------
-- Round trips in tenant A
------------------------------------------------------------------------------
SELECT tenant_isolation.assume_tenant(:a, 'keys regress');
SELECT tenant, version, state FROM tenant_isolation.tenant_keys ORDER BY 1, 2;
WITH v(label, plain) AS (VALUES
	('empty', ''::bytea),
	('one byte', '\x00'::bytea),
	('short', 'hello'::bytea),
	('1 MB', convert_to(repeat('0123456789abcdef', 65536), 'UTF8')))
SELECT label, length(plain) AS plain_len, length(ct) - length(plain) AS overhead,
	   tenant_isolation.decrypt(ct) = plain AS round_trip,
	   encode(substr(ct, 1, 6), 'hex') AS header
  FROM (SELECT label, plain, tenant_isolation.encrypt(plain) AS ct FROM v) s
 ORDER BY plain_len;
-- the first encrypt created version 1 of A's key
SELECT tenant, version, state, length(master_key_id) FROM tenant_isolation.tenant_keys ORDER BY 1, 2;
-- NULL in, NULL out
SELECT tenant_isolation.encrypt(NULL::bytea) IS NULL AS enc_bytea,
	   tenant_isolation.encrypt(NULL::text) IS NULL AS enc_text,
	   tenant_isolation.decrypt(NULL) IS NULL AS dec,
	   tenant_isolation.decrypt_text(NULL) IS NULL AS dec_text,
	   tenant_isolation.reencrypt(NULL) IS NULL AS reenc;
-- text in the database encoding; a fresh nonce every time
SELECT tenant_isolation.decrypt_text(tenant_isolation.encrypt('h€llo wörld'));
SELECT tenant_isolation.encrypt('same') <> tenant_isolation.encrypt('same') AS nonces_differ;
-- binary data is not text
SELECT sqlstate_of($$SELECT tenant_isolation.decrypt_text(tenant_isolation.encrypt('\xff'::bytea))$$);

INSERT INTO key_ct VALUES ('a1', tenant_isolation.encrypt('alpha secret'));

------------------------------------------------------------------------------
-- Tenant B: A's ciphertext does not decrypt, altered ciphertexts neither
------------------------------------------------------------------------------
SELECT tenant_isolation.assume_tenant(:b, 'keys regress');
INSERT INTO key_ct VALUES ('b1', tenant_isolation.encrypt('B-SECRET bravo'));
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'b1';
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'a1';
-- one bit of the ciphertext, of the tag, of the nonce, of the key version
SELECT tenant_isolation.decrypt(set_byte(ct, 35, get_byte(ct, 35) # 1)) FROM key_ct WHERE label = 'b1';
SELECT tenant_isolation.decrypt(set_byte(ct, length(ct) - 1, get_byte(ct, length(ct) - 1) # 128))
  FROM key_ct WHERE label = 'b1';
SELECT tenant_isolation.decrypt(set_byte(ct, 10, get_byte(ct, 10) # 1)) FROM key_ct WHERE label = 'b1';
SELECT tenant_isolation.decrypt(set_byte(ct, 5, 2)) FROM key_ct WHERE label = 'b1';
-- truncated, foreign format, not a ciphertext at all
SELECT tenant_isolation.decrypt(substr(ct, 1, 45)) FROM key_ct WHERE label = 'b1';
SELECT tenant_isolation.decrypt(set_byte(ct, 1, 2)) FROM key_ct WHERE label = 'b1';
SELECT sqlstate_of($$SELECT tenant_isolation.decrypt('\x00'::bytea)$$);
-- back in A, A's ciphertext decrypts
SELECT tenant_isolation.assume_tenant(:a, 'keys regress');
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'a1';

------------------------------------------------------------------------------
-- Rotation of a tenant key
------------------------------------------------------------------------------
SELECT tenant_isolation.rotate_tenant_key(:b);
SELECT tenant, version, state, retired_at IS NOT NULL AS retired
  FROM tenant_isolation.tenant_keys ORDER BY 1, 2;
SELECT tenant_isolation.assume_tenant(:b, 'keys regress');
INSERT INTO key_ct VALUES ('b2', tenant_isolation.encrypt('B-SECRET after rotation'));
-- old and new ciphertexts both decrypt; each names its key version
SELECT label, encode(substr(ct, 3, 4), 'hex') AS version, tenant_isolation.decrypt_text(ct)
  FROM key_ct WHERE label IN ('b1', 'b2') ORDER BY label;
-- reencrypt moves a ciphertext to the active version
SELECT encode(substr(tenant_isolation.reencrypt(ct), 3, 4), 'hex') AS version,
	   tenant_isolation.decrypt_text(tenant_isolation.reencrypt(ct))
  FROM key_ct WHERE label = 'b1';
-- rotating again in the same session: the next encrypt uses version 3 at once
SELECT tenant_isolation.rotate_tenant_key(:b);
SELECT encode(substr(tenant_isolation.encrypt('x'), 3, 4), 'hex') AS version;
SELECT sqlstate_of($$SELECT tenant_isolation.rotate_tenant_key(NULL)$$);
SELECT sqlstate_of($$SELECT tenant_isolation.rotate_tenant_key('5e5e5e5e-0000-4000-8000-0000000000ff')$$);
-- a rotation that rolls back leaves no trace, in the catalog or the cache
BEGIN;
SELECT tenant_isolation.rotate_tenant_key(:b);
ROLLBACK;
SELECT encode(substr(tenant_isolation.encrypt('x'), 3, 4), 'hex') AS version;
SELECT count(*) FROM tenant_isolation.tenant_keys WHERE tenant = :b;

------------------------------------------------------------------------------
-- Master key rotation: every data key is rewrapped, nothing else changes
------------------------------------------------------------------------------
CREATE TABLE key_before AS SELECT * FROM tenant_isolation.tenant_key;
SELECT tenant_isolation.rotate_master_key() = (SELECT count(*) FROM key_before) AS count_ok;
SELECT count(*) = (SELECT count(*) FROM key_before) AS same_rows,
	   bool_and(k.wrapped <> b.wrapped AND k.nonce <> b.nonce) AS all_rewrapped,
	   bool_and(k.state = b.state AND k.created_at = b.created_at
				AND k.master_key_id = b.master_key_id) AS same_state
  FROM tenant_isolation.tenant_key k JOIN key_before b USING (tenant, version);
SELECT label, tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label IN ('b1', 'b2') ORDER BY label;
-- a wrapped key copied to another tenant's row does not unwrap
BEGIN;
UPDATE tenant_isolation.tenant_key k SET wrapped = o.wrapped, nonce = o.nonce
  FROM tenant_isolation.tenant_key o
 WHERE k.tenant = :b AND k.version = 1 AND o.tenant = :a AND o.version = 1;
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'b1';
ROLLBACK;
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'b1';

------------------------------------------------------------------------------
-- Who can see what: no key bytes for ordinary roles by any path
------------------------------------------------------------------------------
SELECT tenant_isolation.logout();
SET ROLE regress_app;
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.tenant_key$$);
SELECT sqlstate_of($$SELECT * FROM tenant_isolation.tenant_keys$$);
SELECT sqlstate_of($$SELECT tenant_isolation.rotate_tenant_key('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')$$);
SELECT sqlstate_of($$SELECT tenant_isolation.rotate_master_key()$$);
SELECT sqlstate_of($$SELECT tenant_isolation.master_key_id()$$);
SELECT sqlstate_of($$SHOW tenant_isolation.master_key_command$$);
SELECT sqlstate_of($$SELECT current_setting('tenant_isolation.master_key_file')$$);
SELECT name, setting FROM pg_settings WHERE name LIKE 'tenant_isolation.master_key%' ORDER BY name;
SELECT sqlstate_of($$SELECT tenant_isolation.encrypt('x')$$);
RESET ROLE;
-- the superuser sees the settings
SELECT name, setting <> '' AS set FROM pg_settings WHERE name LIKE 'tenant_isolation.master_key%' ORDER BY name;
-- an ordinary role in a context encrypts and decrypts its tenant's data only
SELECT tenant_isolation.assume_tenant(:a, 'keys regress');
SET ROLE regress_app;
SELECT tenant_isolation.decrypt_text(tenant_isolation.encrypt('app data'));
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'a1';
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'b2';
RESET ROLE;
-- the admin role manages keys and reads the view, not the wrapped keys
SET ROLE regress_support;
SELECT tenant, version, state FROM tenant_isolation.tenant_keys
 WHERE tenant IN (:a, :b) ORDER BY 1, 2;
SELECT tenant_isolation.master_key_id() = (SELECT DISTINCT master_key_id FROM tenant_isolation.tenant_keys);
SELECT sqlstate_of($$SELECT wrapped FROM tenant_isolation.tenant_key$$);
SELECT tenant_isolation.rotate_tenant_key('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
RESET ROLE;
SELECT tenant_isolation.logout();

-- an ordinary role's first encrypt creates its tenant's key, with the rights
-- of the extension's owner; not in a read-only transaction
SELECT tenant_isolation.assume_tenant('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'keys regress');
SET ROLE regress_app;
BEGIN READ ONLY;
SELECT tenant_isolation.encrypt('x');
ROLLBACK;
SELECT tenant_isolation.decrypt_text(tenant_isolation.encrypt('charlie'));
RESET ROLE;
SELECT version, state FROM tenant_isolation.tenant_keys
 WHERE tenant = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc';
SELECT tenant_isolation.logout();

------------------------------------------------------------------------------
-- Crypto-shredding: dropping a tenant destroys its keys
------------------------------------------------------------------------------
SELECT tenant_isolation.create_tenant('tenant keys d', id => :d);
SELECT tenant_isolation.assume_tenant(:d, 'keys regress');
INSERT INTO key_ct VALUES ('d1', tenant_isolation.encrypt('D-SECRET delta'));
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'd1';
-- a "backup" of D's wrapped keys, taken before the drop
CREATE TABLE key_backup AS SELECT * FROM tenant_isolation.tenant_key WHERE tenant = :d;
SELECT tenant_isolation.logout();
SELECT tenant_isolation.drop_tenant(:d);
SELECT count(*) FROM tenant_isolation.tenant_key WHERE tenant = :d;
-- a session left in D's context (a superuser can SET it) cannot decrypt
SET tenant_isolation.tenant_id = :d;
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'd1';
-- nor make a new key for a tenant that no longer exists
SELECT sqlstate_of($$SELECT tenant_isolation.encrypt('x')$$);
RESET tenant_isolation.tenant_id;
-- A recreated tenant with the same id gets a new key: old data stays unreadable.
SELECT tenant_isolation.create_tenant('tenant keys d', id => :d);
SELECT tenant_isolation.assume_tenant(:d, 'keys regress');
SELECT length(tenant_isolation.encrypt('new life')) > 0;
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'd1';
SELECT tenant_isolation.logout();
-- The limit of shredding (docs/keys.md): a backup holding the wrapped key,
-- restored into a server that has the same master key, decrypts again.
DELETE FROM tenant_isolation.tenant_key WHERE tenant = :d;
INSERT INTO tenant_isolation.tenant_key SELECT * FROM key_backup;
SELECT tenant_isolation.assume_tenant(:d, 'keys regress');
SELECT tenant_isolation.decrypt_text(ct) FROM key_ct WHERE label = 'd1';
SELECT tenant_isolation.logout();
SELECT tenant_isolation.drop_tenant(:d);

DROP TABLE key_ct, key_before, key_backup;
