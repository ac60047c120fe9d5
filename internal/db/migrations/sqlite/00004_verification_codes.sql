-- +goose Up
-- Every certificate gets a verification code that is part of its signed content
-- (canonical form V2). Existing certificates keep NULL here and canonical_version
-- 1 until knkd, which holds the signing key, gives them a code and re-signs them
-- as V2 when it starts (certificate.Service.ResignV1).
ALTER TABLE certificates ADD COLUMN verification_code TEXT;
ALTER TABLE certificates ADD COLUMN canonical_version INTEGER NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX certificates_verification_code ON certificates (verification_code);
CREATE INDEX certificates_v1 ON certificates (number) WHERE canonical_version = 1;

-- Holder-name checks on the public lookup by number: the times (Unix
-- microseconds, space-separated) of the tries of the last hour, per certificate.
CREATE TABLE certificate_name_tries (
  number TEXT PRIMARY KEY,
  tries  TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE certificate_name_tries;
DROP INDEX certificates_v1;
DROP INDEX certificates_verification_code;
ALTER TABLE certificates DROP COLUMN canonical_version;
ALTER TABLE certificates DROP COLUMN verification_code;
