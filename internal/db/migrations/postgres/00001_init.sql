-- +goose Up
CREATE TABLE organizations (
  id            TEXT PRIMARY KEY,
  kind          BIGINT NOT NULL,
  display_name  TEXT NOT NULL,
  province_code TEXT NOT NULL DEFAULT '',
  create_time   BIGINT NOT NULL
);

CREATE TABLE api_keys (
  id              TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations (id),
  secret_hash     BYTEA NOT NULL,
  create_time     BIGINT NOT NULL,
  revoke_time     BIGINT
);
CREATE INDEX api_keys_organization ON api_keys (organization_id, id);

CREATE TABLE cadres (
  id                  TEXT PRIMARY KEY,
  nik                 TEXT NOT NULL UNIQUE,
  display_name        TEXT NOT NULL,
  birth_date          TEXT NOT NULL,
  gender              BIGINT NOT NULL,
  phone               TEXT NOT NULL DEFAULT '',
  email               TEXT NOT NULL DEFAULT '',
  province_code       TEXT NOT NULL,
  regency             TEXT NOT NULL DEFAULT '',
  employer_name       TEXT NOT NULL DEFAULT '',
  employer_nib        TEXT NOT NULL DEFAULT '',
  federation          TEXT NOT NULL REFERENCES organizations (id),
  union_member_number TEXT NOT NULL DEFAULT '',
  bpjs_kpj            TEXT NOT NULL DEFAULT '',
  state               BIGINT NOT NULL,
  withdraw_reason     TEXT NOT NULL DEFAULT '',
  passed_topics       BIGINT NOT NULL DEFAULT 0,
  certificate         TEXT NOT NULL DEFAULT '',
  forum               TEXT NOT NULL DEFAULT '',
  create_time         BIGINT NOT NULL,
  update_time         BIGINT NOT NULL,
  version             BIGINT NOT NULL
);
CREATE INDEX cadres_province ON cadres (province_code, id);
CREATE INDEX cadres_federation ON cadres (federation, id);

-- request_ids makes creates idempotent (AIP-155): a retry with the same id returns
-- the resource the first call created.
CREATE TABLE request_ids (
  principal   TEXT NOT NULL,
  method      TEXT NOT NULL,
  request_id  TEXT NOT NULL,
  resource    TEXT NOT NULL,
  create_time BIGINT NOT NULL,
  PRIMARY KEY (principal, method, request_id)
);

-- events is the change log. Sequences come from event_counter, whose row each
-- writing transaction locks until it commits: gap-free, and in commit order, so a
-- reader never sees sequence n+1 before n.
CREATE TABLE event_counter (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  last BIGINT NOT NULL
);
INSERT INTO event_counter (id, last) VALUES (1, 0);

CREATE TABLE events (
  sequence    BIGINT PRIMARY KEY,
  type        TEXT NOT NULL,
  resource    TEXT NOT NULL,
  actor       TEXT NOT NULL DEFAULT '',
  create_time BIGINT NOT NULL
);

-- +goose Down
DROP TABLE events;
DROP TABLE event_counter;
DROP TABLE event_counter;
DROP TABLE request_ids;
DROP TABLE cadres;
DROP TABLE api_keys;
DROP TABLE organizations;
