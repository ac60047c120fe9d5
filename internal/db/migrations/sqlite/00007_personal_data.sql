-- +goose Up
-- access_log is the trail of reads of cadres' personal data (UU 27/2022): one
-- row per request, never a NIK. id is a ULID of the access time, so entries are
-- in time order and the retention sweep deletes a range of ids.
CREATE TABLE access_log (
  id           TEXT PRIMARY KEY,
  access_time  INTEGER NOT NULL,
  key_id       TEXT NOT NULL,
  organization TEXT NOT NULL,
  method       TEXT NOT NULL,
  fields       INTEGER NOT NULL,
  request_id   TEXT NOT NULL,
  cadre_count  INTEGER NOT NULL
);

-- access_log_cadres names the cadres each entry read (a list page names many).
CREATE TABLE access_log_cadres (
  cadre_id TEXT NOT NULL,
  entry_id TEXT NOT NULL,
  PRIMARY KEY (cadre_id, entry_id)
) WITHOUT ROWID;
CREATE INDEX access_log_cadres_entry ON access_log_cadres (entry_id);

-- Erasure of withdrawn cadres after the retention period: when the cadre was
-- withdrawn, when its personal fields were erased, and the keyed hash (HMAC) of
-- its NIK that lets a re-registration of the same person be recognised.
ALTER TABLE cadres ADD COLUMN withdraw_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cadres ADD COLUMN erase_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cadres ADD COLUMN nik_hash TEXT NOT NULL DEFAULT '';
UPDATE cadres SET withdraw_time = update_time WHERE state = 3;
CREATE INDEX cadres_erasable ON cadres (withdraw_time) WHERE withdraw_time > 0 AND erase_time = 0;
CREATE INDEX cadres_nik_hash ON cadres (nik_hash) WHERE nik_hash <> '';

-- +goose Down
DROP INDEX cadres_nik_hash;
DROP INDEX cadres_erasable;
ALTER TABLE cadres DROP COLUMN nik_hash;
ALTER TABLE cadres DROP COLUMN erase_time;
ALTER TABLE cadres DROP COLUMN withdraw_time;
DROP TABLE access_log_cadres;
DROP TABLE access_log;
