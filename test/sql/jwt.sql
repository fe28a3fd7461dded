--
-- jwt: login with JSON Web Tokens (issue 3).
--
-- Keys and tokens are made at test time with the openssl CLI
-- (test/scripts/mint_jwt.sh); exp/nbf are relative to the clock, so the
-- output never changes.  Tokens only ever travel in psql variables: the
-- expected output must not contain any.  In the JSON given to the script a
-- space follows every colon, so that psql does not read ':"x"' as a variable.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tenant_isolation;
RESET client_min_messages;

\set m 'sh test/scripts/mint_jwt.sh'
\set kd `sh test/scripts/mint_jwt.sh keygen`
\set hs256 `cat :kd/hs256.key`
\set hs384 `cat :kd/hs384.key`
\set hs512 `cat :kd/hs512.key`
\set rsa_pub `cat :kd/rsa.pub`
\set ec256_pub `cat :kd/ec256.pub`
\set ec384_pub `cat :kd/ec384.pub`
\set ed_pub `cat :kd/ed25519.pub`
\set rsa_priv `cat :kd/rsa.pem`

-- base64url of a text, to build tampered tokens in SQL
CREATE FUNCTION public.regress_jwt_b64url(t text) RETURNS text LANGUAGE sql
	AS $$ SELECT translate(encode(convert_to(t, 'UTF8'), 'base64'), E'+/=\n', '-_') $$;

CREATE ROLE regress_jwt_user;
CREATE ROLE regress_jwt_admin IN ROLE tenant_isolation_admin;
SELECT tenant_isolation.create_tenant('jwt_a', 'shared', '00000000-0000-4000-8000-0000000000a1');
SELECT tenant_isolation.create_tenant('jwt_b', 'shared', '00000000-0000-4000-8000-0000000000b2');
SELECT tenant_isolation.create_tenant('jwt_s', 'shared', '00000000-0000-4000-8000-0000000000c3');
SELECT tenant_isolation.suspend_tenant('00000000-0000-4000-8000-0000000000c3');

-- GUCs: defaults, and only superusers may change them
SHOW tenant_isolation.tenant_claim;
SHOW tenant_isolation.jwt_leeway;
SHOW tenant_isolation.jwt_max_token_size;

------------------------------------------------------------------------------
-- Key registration
------------------------------------------------------------------------------
SELECT tenant_isolation.add_jwt_key('hs256', 'HS256', :'hs256');
SELECT tenant_isolation.add_jwt_key('hs384', 'HS384', :'hs384', issuer => 'https://issuer.example');
SELECT tenant_isolation.add_jwt_key('hs512', 'HS512', :'hs512', audience => 'api');
SELECT tenant_isolation.add_jwt_key('rs256', 'RS256', :'rsa_pub');
SELECT tenant_isolation.add_jwt_key('rs384', 'RS384', :'rsa_pub');
SELECT tenant_isolation.add_jwt_key('rs512', 'RS512', :'rsa_pub');
SELECT tenant_isolation.add_jwt_key('ps256', 'PS256', :'rsa_pub');
SELECT tenant_isolation.add_jwt_key('es256', 'ES256', :'ec256_pub');
SELECT tenant_isolation.add_jwt_key('es384', 'ES384', :'ec384_pub');
SELECT tenant_isolation.add_jwt_key('ed', 'EdDSA', :'ed_pub');

-- bad input: 22023 (42710 for an existing kid), and the key is never echoed
SELECT tenant_isolation.add_jwt_key('x', 'none', :'hs256');
SELECT tenant_isolation.add_jwt_key('x', 'hs256', :'hs256');
SELECT tenant_isolation.add_jwt_key('x', 'HS256', 'short secret');
SELECT tenant_isolation.add_jwt_key('x', 'HS512', :'hs256');
SELECT tenant_isolation.add_jwt_key('x', 'HS256', :'rsa_pub');
SELECT tenant_isolation.add_jwt_key('x', 'RS256', 'not a pem key at all');
SELECT tenant_isolation.add_jwt_key('x', 'RS256', :'rsa_priv');
SELECT tenant_isolation.add_jwt_key('x', 'RS256', :'ec256_pub');
SELECT tenant_isolation.add_jwt_key('x', 'ES256', :'ec384_pub');
SELECT tenant_isolation.add_jwt_key('x', 'ES384', :'ed_pub');
SELECT tenant_isolation.add_jwt_key('x', 'EdDSA', :'rsa_pub');
SELECT tenant_isolation.add_jwt_key('', 'HS256', :'hs256');
SELECT tenant_isolation.add_jwt_key(NULL, 'HS256', :'hs256');
SELECT tenant_isolation.add_jwt_key('x', 'HS256', NULL);
SELECT tenant_isolation.add_jwt_key('x', 'HS256', :'hs256', issuer => '');
SELECT tenant_isolation.add_jwt_key('hs256', 'HS256', :'hs256');
SELECT tenant_isolation.drop_jwt_key('no such key');

-- the DBA view: no key material; fingerprints are SHA-256 (of the secret,
-- or of the DER public key, so one RSA key has one fingerprint)
SELECT kid, alg, issuer, audience, length(fingerprint) AS fp_len
  FROM tenant_isolation.jwt_keys ORDER BY kid;
SELECT fingerprint = encode(sha256(convert_to(:'hs256', 'UTF8')), 'hex') AS hs256_fp_ok
  FROM tenant_isolation.jwt_keys WHERE kid = 'hs256';
SELECT count(DISTINCT fingerprint) AS rsa_fingerprints
  FROM tenant_isolation.jwt_keys WHERE kid IN ('rs256', 'rs384', 'rs512', 'ps256');
SELECT count(*) AS view_columns FROM information_schema.columns
 WHERE table_schema = 'tenant_isolation' AND table_name = 'jwt_keys' AND column_name = 'key';

-- who may see and change keys
SET ROLE regress_jwt_admin;
SELECT count(*) FROM tenant_isolation.jwt_keys;
SELECT tenant_isolation.add_jwt_key('adm', 'HS256', :'hs256');
SELECT tenant_isolation.drop_jwt_key('adm');
SELECT count(*) FROM tenant_isolation.jwt_key;
RESET ROLE;
SET ROLE regress_jwt_user;
SELECT count(*) FROM tenant_isolation.jwt_keys;
SELECT count(*) FROM tenant_isolation.jwt_key;
SELECT tenant_isolation.add_jwt_key('usr', 'HS256', :'hs256');
SELECT tenant_isolation.drop_jwt_key('hs256');
SELECT tenant_isolation._jwt_key_check('usr', 'HS256', :'hs256', NULL, NULL);
SET tenant_isolation.jwt_leeway = 3600;
SET tenant_isolation.tenant_claim = 'sub';
SET tenant_isolation.jwt_max_token_size = 1048576;
RESET ROLE;

------------------------------------------------------------------------------
-- Good tokens for every algorithm
------------------------------------------------------------------------------
SET ROLE regress_jwt_user;
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_claims(),
       tenant_isolation.current_user_id();

\set tok `:m -k hs256 HS256 :kd/hs256.key '{"sub": "alice", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_claims()->>'sub' AS sub,
       tenant_isolation.current_user_id();
SELECT tenant_isolation.current_claims() - 'exp' AS claims;

\set tok `:m -k hs384 HS384 :kd/hs384.key '{"sub": "bob", "tenant_id": "00000000-0000-4000-8000-0000000000b2", "iss": "https://issuer.example", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_claims()->>'sub' AS sub,
       tenant_isolation.current_user_id();

\set tok `:m -k hs512 HS512 :kd/hs512.key '{"sub": "carol", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "aud": "api", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();

\set tok `:m -k rs256 RS256 :kd/rsa.pem '{"sub": "dave", "tenant_id": "00000000-0000-4000-8000-0000000000b2", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();
\set rs256_tok :tok

\set tok `:m -k rs384 RS384 :kd/rsa.pem '{"sub": "erin", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();

\set tok `:m -k rs512 RS512 :kd/rsa.pem '{"sub": "frank", "tenant_id": "00000000-0000-4000-8000-0000000000b2", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();

\set tok `:m -k ps256 PS256 :kd/rsa.pem '{"sub": "grace", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();

\set tok `:m -k es256 ES256 :kd/ec256.pem '{"sub": "heidi", "tenant_id": "00000000-0000-4000-8000-0000000000b2", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();
\set es256_tok :tok

\set tok `:m -k es384 ES384 :kd/ec384.pem '{"sub": "ivan", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();

\set tok `:m -k ed EdDSA :kd/ed25519.pem '{"sub": "judy", "tenant_id": "00000000-0000-4000-8000-0000000000b2", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();

-- without kid: only keys registered for the header's alg are tried
\set tok `:m ES384 :kd/ec384.pem '{"sub": "kim", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();

-- a token without sub logs in; current_user_id() is then NULL
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000b2", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id() IS NULL AS no_sub;

-- aud as an array, exp and nbf inside the leeway, uppercase uuid
\set tok `:m -k hs512 HS512 :kd/hs512.key '{"sub": "leo", "tenant_id": "00000000-0000-4000-8000-0000000000A1", "aud": ["web", "api"], "exp": NOW-5, "nbf": NOW+5}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();
\set leeway_tok :tok

-- the token is not readable in pg_stat_activity once login has started
-- (as superuser: the session belongs to the superuser that SET ROLE)
RESET ROLE;
SELECT tenant_isolation.login(:'tok') IS NOT NULL AS ok,
       (SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS activity;
SET ROLE regress_jwt_user;

------------------------------------------------------------------------------
-- Refused tokens: 28000, and no context left behind
------------------------------------------------------------------------------
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"sub": "alice", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
\set good :tok
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.current_tenant();
-- expired
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"sub": "alice", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW-100}'`
SELECT tenant_isolation.login(:'tok');
-- a failed login leaves no context, not even the previous one
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_claims(),
       tenant_isolation.current_user_id();
\set VERBOSITY default
SELECT tenant_isolation.login(:'tok');
\set VERBOSITY terse
-- not yet valid
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300, "nbf": NOW+100}'`
SELECT tenant_isolation.login(:'tok');
-- exp missing, or not a number; nbf not a number
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1"}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": "tomorrow"}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300, "nbf": null}'`
SELECT tenant_isolation.login(:'tok');
-- wrong or missing issuer
\set tok `:m -k hs384 HS384 :kd/hs384.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "iss": "https://evil.example", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs384 HS384 :kd/hs384.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
-- wrong or missing audience
\set tok `:m -k hs512 HS512 :kd/hs512.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "aud": "other", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs512 HS512 :kd/hs512.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "aud": ["web", ["api"]], "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs512 HS512 :kd/hs512.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
-- wrong key: another RSA key, another secret
\set tok `:m -k rs256 RS256 :kd/rsa2.pem '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs512.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m HS256 :kd/hs512.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
-- tampered payload (another tenant) and tampered header, signature kept
SELECT tenant_isolation.login(split_part(:'good', '.', 1) || '.' ||
       regress_jwt_b64url('{"sub":"alice","tenant_id":"00000000-0000-4000-8000-0000000000b2","exp":9999999999}') ||
       '.' || split_part(:'good', '.', 3));
SELECT tenant_isolation.login(regress_jwt_b64url('{"alg":"HS256","typ":"JWT","kid":"hs256","x":1}') || '.' ||
       split_part(:'good', '.', 2) || '.' || split_part(:'good', '.', 3));
-- a signature of the wrong length, or none
SELECT tenant_isolation.login(split_part(:'good', '.', 1) || '.' || split_part(:'good', '.', 2) || '.AAAA');
SELECT tenant_isolation.login(split_part(:'good', '.', 1) || '.' || split_part(:'good', '.', 2) || '.');
-- alg none, with and without kid, in any spelling
\set tok `:m -k hs256 none x '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m none x '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -h '{"alg": "None"}' HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
-- alg confusion: HS256 signed with the RSA public key PEM as the secret
\set tok `:m -k rs256 HS256 :kd/rsa.pub '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m HS256 :kd/rsa.pub '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
-- a key's alg is fixed: an RS384 signature presented as kid rs256
\set tok `:m -k rs256 RS384 :kd/rsa.pem '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
-- unknown kid
\set tok `:m -k nope HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
-- tenant claim missing, not a uuid, not a string; unknown and suspended tenants
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"sub": "alice", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "acme", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "{00000000-0000-4000-8000-0000000000a1}", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": 42, "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000ff", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000c3", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
-- malformed base64url: padding, the standard alphabet, junk, wrong shape
SELECT tenant_isolation.login(:'good' || '=');
SELECT tenant_isolation.login(translate(:'good', '-_', '+/') || '+/');
SELECT tenant_isolation.login(replace(:'good', '.', '.!'));
SELECT tenant_isolation.login('not a token');
SELECT tenant_isolation.login('a.b.c');
SELECT tenant_isolation.login(:'good' || '.' || split_part(:'good', '.', 3));
SELECT tenant_isolation.login('.' || split_part(:'good', '.', 2) || '.' || split_part(:'good', '.', 3));
-- malformed JSON: header not an object, alg not a string, kid not a
-- string, broken header, broken (but signed) payload, payload not an object
\set tok `:m -h '["HS256"]' HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -h '{"alg": 256}' HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -h '{"alg": "HS256", "kid": 1}' HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
SELECT tenant_isolation.login(regress_jwt_b64url('{"alg":"HS256"') || '.' ||
       split_part(:'good', '.', 2) || '.' || split_part(:'good', '.', 3));
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300,'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '["tenant_id", "00000000-0000-4000-8000-0000000000a1"]'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300, "x": "\u0000"}'`
SELECT tenant_isolation.login(:'tok');
-- nesting deeper than 64 is refused before the parser recurses
SELECT tenant_isolation.login(regress_jwt_b64url('{"alg":"HS256","x":' || repeat('[', 100) ||
       repeat(']', 100) || '}') || '.' || split_part(:'good', '.', 2) || '.' ||
       split_part(:'good', '.', 3));
-- duplicate claims (also through an escape), duplicate header parameters, crit
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000b2", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"sub": "alice", "s\u0075b": "root", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -h '{"alg": "HS256", "kid": "hs256", "alg": "none"}' HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
\set tok `:m -h '{"alg": "HS256", "kid": "hs256", "crit": ["exp"]}' HS256 :kd/hs256.key '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
-- oversized, empty, NULL
SELECT tenant_isolation.login(repeat('a', 20000));
SELECT tenant_isolation.login('');
SELECT tenant_isolation.login(NULL);
SELECT tenant_isolation.login_local(NULL);
SELECT tenant_isolation.current_tenant();
RESET ROLE;

------------------------------------------------------------------------------
-- login_local: for the transaction only
------------------------------------------------------------------------------
SET ROLE regress_jwt_user;
BEGIN;
SELECT tenant_isolation.login_local(:'good');
SELECT tenant_isolation.current_tenant(), tenant_isolation.current_user_id();
COMMIT;
SELECT tenant_isolation.current_tenant();
-- a failed login_local inside a transaction: the transaction fails, and no
-- context survives it
SELECT tenant_isolation.login(:'es256_tok');
BEGIN;
SELECT tenant_isolation.login_local('garbage');
ROLLBACK;
SELECT tenant_isolation.current_tenant();
RESET ROLE;

------------------------------------------------------------------------------
-- The verified-token cache never outlives what it depends on
------------------------------------------------------------------------------
SET ROLE regress_jwt_user;
-- same token twice: the second login is a cache hit
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.current_tenant();
-- a hit needs the whole token, byte for byte (the cache key is the token,
-- its hash only picks the bucket): the cached token with its last byte
-- changed, one byte shorter, one byte longer, and with a byte in the middle
-- changed are each verified in full and refused, and leave no context.
-- Whether such a token fails as malformed (base64url with non-zero trailing
-- bits) or on its signature depends on the token's last characters, which
-- change with its exp: only the SQLSTATE is shown (28000 either way).
\set VERBOSITY sqlstate
SELECT tenant_isolation.login(left(:'good', -1) ||
	CASE WHEN right(:'good', 1) = 'A' THEN 'B' ELSE 'A' END);
SELECT tenant_isolation.current_tenant();
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.login(left(:'good', -1));
SELECT tenant_isolation.current_tenant();
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.login(:'good' || 'A');
SELECT tenant_isolation.current_tenant();
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.login(overlay(:'good' PLACING
	CASE WHEN substr(:'good', 40, 1) = 'x' THEN 'y' ELSE 'x' END FROM 40 FOR 1));
\set VERBOSITY terse
SELECT tenant_isolation.current_tenant();
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.current_tenant();
RESET ROLE;
-- the tenant's status is checked on every hit
SELECT tenant_isolation.suspend_tenant('00000000-0000-4000-8000-0000000000a1');
SET ROLE regress_jwt_user;
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.current_tenant();
RESET ROLE;
SELECT tenant_isolation.resume_tenant('00000000-0000-4000-8000-0000000000a1');
SET ROLE regress_jwt_user;
SELECT tenant_isolation.login(:'good');
RESET ROLE;
-- the leeway is applied on every hit
SET tenant_isolation.jwt_leeway = 0;
SET ROLE regress_jwt_user;
SELECT tenant_isolation.login(:'leeway_tok');
RESET ROLE;
RESET tenant_isolation.jwt_leeway;
-- another tenant claim: cached tokens are checked again
SET tenant_isolation.tenant_claim = 'org';
SET ROLE regress_jwt_user;
SELECT tenant_isolation.login(:'good');
\set tok `:m -k hs256 HS256 :kd/hs256.key '{"org": "00000000-0000-4000-8000-0000000000b2", "tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
RESET ROLE;
RESET tenant_isolation.tenant_claim;
-- a smaller size limit applies to cached tokens too
SET tenant_isolation.jwt_max_token_size = 256;
SET ROLE regress_jwt_user;
SELECT length(:'rs256_tok') > 256 AS over_limit;
SELECT tenant_isolation.login(:'rs256_tok');
RESET ROLE;
RESET tenant_isolation.jwt_max_token_size;
-- a dropped key takes its cached tokens with it, here and in the same
-- transaction
SELECT tenant_isolation.drop_jwt_key('es256');
SET ROLE regress_jwt_user;
SELECT tenant_isolation.login(:'es256_tok');
-- and without kid, no key is left for ES256
\set tok `:m ES256 :kd/ec256.pem '{"tenant_id": "00000000-0000-4000-8000-0000000000a1", "exp": NOW+300}'`
SELECT tenant_isolation.login(:'tok');
RESET ROLE;
BEGIN;
SELECT tenant_isolation.login(:'good') IS NOT NULL AS ok;
SELECT tenant_isolation.drop_jwt_key('hs256');
SELECT tenant_isolation.login(:'good');
ROLLBACK;
-- the rollback brought the key back
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.logout();
-- a role held to login_local() (behind a transaction-pooling proxy)
SET tenant_isolation.allow_session_login = off;
SET ROLE regress_jwt_user;
SELECT tenant_isolation.login(:'good');
SELECT tenant_isolation.current_tenant();
BEGIN;
SELECT tenant_isolation.login_local(:'good') IS NOT NULL AS local_ok;
COMMIT;
SELECT tenant_isolation.current_tenant();
RESET ROLE;
RESET tenant_isolation.allow_session_login;
-- A plan cached under a transaction-scoped context is kept for the next
-- login into the same tenant, but never runs without a context.
CREATE TABLE jwt_docs (tenant_id uuid NOT NULL, body text);
SELECT tenant_isolation.protect_table('jwt_docs');
INSERT INTO jwt_docs VALUES ('00000000-0000-4000-8000-0000000000a1', 'a1 row'),
	('00000000-0000-4000-8000-0000000000b2', 'B-SECRET b2 row');
GRANT SELECT ON jwt_docs TO regress_jwt_user;
SET plan_cache_mode = force_generic_plan;
SET ROLE regress_jwt_user;
BEGIN;
SELECT tenant_isolation.login_local(:'good') IS NOT NULL AS local_ok;
PREPARE jq AS SELECT body FROM jwt_docs;
EXECUTE jq;
COMMIT;
EXECUTE jq;
BEGIN;
SELECT tenant_isolation.login_local(:'good') IS NOT NULL AS local_ok;
EXECUTE jq;
COMMIT;
RESET ROLE;
DEALLOCATE jq;
RESET plan_cache_mode;
DROP TABLE jwt_docs;

------------------------------------------------------------------------------
-- Clean up
------------------------------------------------------------------------------
SELECT tenant_isolation.drop_jwt_key(kid) FROM tenant_isolation.jwt_keys ORDER BY kid;
SELECT tenant_isolation.drop_tenant(id) FROM tenant_isolation.tenants
 WHERE name IN ('jwt_a', 'jwt_b', 'jwt_s') ORDER BY name;
DROP ROLE regress_jwt_user;
DROP ROLE regress_jwt_admin;
DROP FUNCTION public.regress_jwt_b64url(text);
\set rm `rm -rf :'kd'`
