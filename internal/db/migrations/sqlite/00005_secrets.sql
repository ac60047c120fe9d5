-- +goose Up
-- 1 when private_key is sealed under the key-encryption key (internal/secretbox),
-- 0 for a plaintext seed written before; knkd seals those on start.
ALTER TABLE signing_keys ADD COLUMN key_encrypted INTEGER NOT NULL DEFAULT 0;
-- A revoked key: certificates it signed at or after revoked_from are not valid
-- until re-signed; revoke_time is when that was decided.
ALTER TABLE signing_keys ADD COLUMN revoke_time INTEGER;
ALTER TABLE signing_keys ADD COLUMN revoked_from INTEGER;
-- Re-signing finds the certificates of a revoked key.
CREATE INDEX certificates_key ON certificates (key_id, issue_time);
-- An API key stops working at expire_time (NULL: never).
ALTER TABLE api_keys ADD COLUMN expire_time INTEGER;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN expire_time;
DROP INDEX certificates_key;
ALTER TABLE signing_keys DROP COLUMN revoked_from;
ALTER TABLE signing_keys DROP COLUMN revoke_time;
ALTER TABLE signing_keys DROP COLUMN key_encrypted;
