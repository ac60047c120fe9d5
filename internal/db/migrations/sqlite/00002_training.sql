-- +goose Up
CREATE TABLE sessions (
  id             TEXT PRIMARY KEY,
  organizer      TEXT NOT NULL REFERENCES organizations (id),
  title          TEXT NOT NULL,
  topics         INTEGER NOT NULL, -- bit set, bit n is Topic n
  province_code  TEXT NOT NULL,
  venue          TEXT NOT NULL DEFAULT '',
  mode           INTEGER NOT NULL,
  start_time     INTEGER NOT NULL,
  end_time       INTEGER NOT NULL,
  capacity       INTEGER NOT NULL,
  enrolled_count INTEGER NOT NULL DEFAULT 0,
  state          INTEGER NOT NULL,
  cancel_reason  TEXT NOT NULL DEFAULT '',
  create_time    INTEGER NOT NULL,
  update_time    INTEGER NOT NULL,
  version        INTEGER NOT NULL
);
CREATE INDEX sessions_start ON sessions (start_time, id);

CREATE TABLE enrollments (
  session_id  TEXT NOT NULL REFERENCES sessions (id),
  cadre_id    TEXT NOT NULL REFERENCES cadres (id),
  attended    INTEGER NOT NULL DEFAULT 0,
  create_time INTEGER NOT NULL,
  PRIMARY KEY (session_id, cadre_id)
);
CREATE INDEX enrollments_cadre ON enrollments (cadre_id);

CREATE TABLE scores (
  session_id TEXT NOT NULL,
  cadre_id   TEXT NOT NULL,
  topic      INTEGER NOT NULL,
  score      INTEGER NOT NULL,
  PRIMARY KEY (session_id, cadre_id, topic),
  FOREIGN KEY (session_id, cadre_id) REFERENCES enrollments (session_id, cadre_id) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE scores;
DROP TABLE enrollments;
DROP TABLE sessions;
