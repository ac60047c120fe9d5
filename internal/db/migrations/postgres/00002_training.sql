-- +goose Up
CREATE TABLE sessions (
  id             TEXT PRIMARY KEY,
  organizer      TEXT NOT NULL REFERENCES organizations (id),
  title          TEXT NOT NULL,
  topics         BIGINT NOT NULL, -- bit set, bit n is Topic n
  province_code  TEXT NOT NULL,
  venue          TEXT NOT NULL DEFAULT '',
  mode           BIGINT NOT NULL,
  start_time     BIGINT NOT NULL,
  end_time       BIGINT NOT NULL,
  capacity       BIGINT NOT NULL,
  enrolled_count BIGINT NOT NULL DEFAULT 0,
  state          BIGINT NOT NULL,
  cancel_reason  TEXT NOT NULL DEFAULT '',
  create_time    BIGINT NOT NULL,
  update_time    BIGINT NOT NULL,
  version        BIGINT NOT NULL
);
CREATE INDEX sessions_start ON sessions (start_time, id);

CREATE TABLE enrollments (
  session_id  TEXT NOT NULL REFERENCES sessions (id),
  cadre_id    TEXT NOT NULL REFERENCES cadres (id),
  attended    BIGINT NOT NULL DEFAULT 0,
  create_time BIGINT NOT NULL,
  PRIMARY KEY (session_id, cadre_id)
);
CREATE INDEX enrollments_cadre ON enrollments (cadre_id);

CREATE TABLE scores (
  session_id TEXT NOT NULL,
  cadre_id   TEXT NOT NULL,
  topic      BIGINT NOT NULL,
  score      BIGINT NOT NULL,
  PRIMARY KEY (session_id, cadre_id, topic),
  FOREIGN KEY (session_id, cadre_id) REFERENCES enrollments (session_id, cadre_id) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE scores;
DROP TABLE enrollments;
DROP TABLE sessions;
