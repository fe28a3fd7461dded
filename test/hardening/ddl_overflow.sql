-- DDL storm: more invalidation messages in one transaction than the shared
-- invalidation queue holds (4096): every other backend falls behind and
-- resets all its caches.  2400 renames of one schema, one lock.
DROP SCHEMA IF EXISTS ovf_:client_id;
BEGIN;
CREATE SCHEMA ovf_:client_id;
DO $$ BEGIN FOR i IN 1..1200 LOOP ALTER SCHEMA ovf_:client_id RENAME TO ovfx_:client_id; ALTER SCHEMA ovfx_:client_id RENAME TO ovf_:client_id; END LOOP; END $$;
DROP SCHEMA ovf_:client_id;
COMMIT;
