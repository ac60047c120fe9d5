-- +goose Up
-- Per-province counters behind GET /v1/stats/provinces, kept by triggers in the
-- same transaction as every change that moves them, whoever makes it (any
-- service, an older replica during an upgrade, migrate-store). A count is the sum
-- of its row in province_counts and of its rows in province_count_deltas.
-- metric: cadres, certified, topic_N (passed topic N), sessions_completed,
-- forum_members, certificates_N (certificates in state N).
CREATE TABLE province_counts (
  province_code TEXT NOT NULL,
  metric        TEXT NOT NULL,
  n             BIGINT NOT NULL,
  PRIMARY KEY (province_code, metric)
);
-- SQLite has one writer, so the triggers add to province_counts directly (no row
-- is contended); the delta table stays empty and exists for the shared read query.
CREATE TABLE province_count_deltas (
  id            INTEGER PRIMARY KEY,
  province_code TEXT NOT NULL,
  metric        TEXT NOT NULL,
  n             BIGINT NOT NULL
);
-- +goose StatementBegin
CREATE TRIGGER cadres_count_insert AFTER INSERT ON cadres BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT NEW.province_code, metric, 1 FROM (
      SELECT 'cadres' AS metric WHERE TRUE
      UNION ALL SELECT 'certified' AS metric WHERE NEW.state = 2
      UNION ALL SELECT 'topic_1' AS metric WHERE (NEW.passed_topics & 2) <> 0
      UNION ALL SELECT 'topic_2' AS metric WHERE (NEW.passed_topics & 4) <> 0
      UNION ALL SELECT 'topic_3' AS metric WHERE (NEW.passed_topics & 8) <> 0
      UNION ALL SELECT 'topic_4' AS metric WHERE (NEW.passed_topics & 16) <> 0
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER cadres_count_update AFTER UPDATE OF province_code, state, passed_topics ON cadres BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT OLD.province_code, metric, -1 FROM (
      SELECT 'cadres' AS metric WHERE TRUE
      UNION ALL SELECT 'certified' AS metric WHERE OLD.state = 2
      UNION ALL SELECT 'topic_1' AS metric WHERE (OLD.passed_topics & 2) <> 0
      UNION ALL SELECT 'topic_2' AS metric WHERE (OLD.passed_topics & 4) <> 0
      UNION ALL SELECT 'topic_3' AS metric WHERE (OLD.passed_topics & 8) <> 0
      UNION ALL SELECT 'topic_4' AS metric WHERE (OLD.passed_topics & 16) <> 0
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
  INSERT INTO province_counts (province_code, metric, n)
    SELECT NEW.province_code, metric, 1 FROM (
      SELECT 'cadres' AS metric WHERE TRUE
      UNION ALL SELECT 'certified' AS metric WHERE NEW.state = 2
      UNION ALL SELECT 'topic_1' AS metric WHERE (NEW.passed_topics & 2) <> 0
      UNION ALL SELECT 'topic_2' AS metric WHERE (NEW.passed_topics & 4) <> 0
      UNION ALL SELECT 'topic_3' AS metric WHERE (NEW.passed_topics & 8) <> 0
      UNION ALL SELECT 'topic_4' AS metric WHERE (NEW.passed_topics & 16) <> 0
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER cadres_count_delete AFTER DELETE ON cadres BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT OLD.province_code, metric, -1 FROM (
      SELECT 'cadres' AS metric WHERE TRUE
      UNION ALL SELECT 'certified' AS metric WHERE OLD.state = 2
      UNION ALL SELECT 'topic_1' AS metric WHERE (OLD.passed_topics & 2) <> 0
      UNION ALL SELECT 'topic_2' AS metric WHERE (OLD.passed_topics & 4) <> 0
      UNION ALL SELECT 'topic_3' AS metric WHERE (OLD.passed_topics & 8) <> 0
      UNION ALL SELECT 'topic_4' AS metric WHERE (OLD.passed_topics & 16) <> 0
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_count_insert AFTER INSERT ON sessions BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT NEW.province_code, metric, 1 FROM (
      SELECT 'sessions_completed' AS metric WHERE NEW.state = 2
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_count_update AFTER UPDATE OF province_code, state ON sessions BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT OLD.province_code, metric, -1 FROM (
      SELECT 'sessions_completed' AS metric WHERE OLD.state = 2
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
  INSERT INTO province_counts (province_code, metric, n)
    SELECT NEW.province_code, metric, 1 FROM (
      SELECT 'sessions_completed' AS metric WHERE NEW.state = 2
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_count_delete AFTER DELETE ON sessions BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT OLD.province_code, metric, -1 FROM (
      SELECT 'sessions_completed' AS metric WHERE OLD.state = 2
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER forum_memberships_count_insert AFTER INSERT ON forum_memberships BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT NEW.province_code, metric, 1 FROM (
      SELECT 'forum_members' AS metric WHERE NEW.state = 1
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER forum_memberships_count_update AFTER UPDATE OF province_code, state ON forum_memberships BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT OLD.province_code, metric, -1 FROM (
      SELECT 'forum_members' AS metric WHERE OLD.state = 1
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
  INSERT INTO province_counts (province_code, metric, n)
    SELECT NEW.province_code, metric, 1 FROM (
      SELECT 'forum_members' AS metric WHERE NEW.state = 1
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER forum_memberships_count_delete AFTER DELETE ON forum_memberships BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT OLD.province_code, metric, -1 FROM (
      SELECT 'forum_members' AS metric WHERE OLD.state = 1
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER certificates_count_insert AFTER INSERT ON certificates BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT NEW.province_code, metric, 1 FROM (
      SELECT 'certificates_1' AS metric WHERE NEW.state = 1
      UNION ALL SELECT 'certificates_2' AS metric WHERE NEW.state = 2
      UNION ALL SELECT 'certificates_3' AS metric WHERE NEW.state = 3
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER certificates_count_update AFTER UPDATE OF province_code, state ON certificates BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT OLD.province_code, metric, -1 FROM (
      SELECT 'certificates_1' AS metric WHERE OLD.state = 1
      UNION ALL SELECT 'certificates_2' AS metric WHERE OLD.state = 2
      UNION ALL SELECT 'certificates_3' AS metric WHERE OLD.state = 3
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
  INSERT INTO province_counts (province_code, metric, n)
    SELECT NEW.province_code, metric, 1 FROM (
      SELECT 'certificates_1' AS metric WHERE NEW.state = 1
      UNION ALL SELECT 'certificates_2' AS metric WHERE NEW.state = 2
      UNION ALL SELECT 'certificates_3' AS metric WHERE NEW.state = 3
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER certificates_count_delete AFTER DELETE ON certificates BEGIN
  INSERT INTO province_counts (province_code, metric, n)
    SELECT OLD.province_code, metric, -1 FROM (
      SELECT 'certificates_1' AS metric WHERE OLD.state = 1
      UNION ALL SELECT 'certificates_2' AS metric WHERE OLD.state = 2
      UNION ALL SELECT 'certificates_3' AS metric WHERE OLD.state = 3
    ) WHERE TRUE
    ON CONFLICT (province_code, metric) DO UPDATE SET n = n + excluded.n;
END;
-- +goose StatementEnd
-- The rows already stored.
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'cadres', COUNT(*) FROM cadres r WHERE TRUE GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'certified', COUNT(*) FROM cadres r WHERE r.state = 2 GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'topic_1', COUNT(*) FROM cadres r WHERE (r.passed_topics & 2) <> 0 GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'topic_2', COUNT(*) FROM cadres r WHERE (r.passed_topics & 4) <> 0 GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'topic_3', COUNT(*) FROM cadres r WHERE (r.passed_topics & 8) <> 0 GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'topic_4', COUNT(*) FROM cadres r WHERE (r.passed_topics & 16) <> 0 GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'sessions_completed', COUNT(*) FROM sessions r WHERE r.state = 2 GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'forum_members', COUNT(*) FROM forum_memberships r WHERE r.state = 1 GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'certificates_1', COUNT(*) FROM certificates r WHERE r.state = 1 GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'certificates_2', COUNT(*) FROM certificates r WHERE r.state = 2 GROUP BY r.province_code;
INSERT INTO province_counts (province_code, metric, n)
  SELECT r.province_code, 'certificates_3', COUNT(*) FROM certificates r WHERE r.state = 3 GROUP BY r.province_code;

-- +goose Down
DROP TRIGGER cadres_count_insert;
DROP TRIGGER cadres_count_update;
DROP TRIGGER cadres_count_delete;
DROP TRIGGER sessions_count_insert;
DROP TRIGGER sessions_count_update;
DROP TRIGGER sessions_count_delete;
DROP TRIGGER forum_memberships_count_insert;
DROP TRIGGER forum_memberships_count_update;
DROP TRIGGER forum_memberships_count_delete;
DROP TRIGGER certificates_count_insert;
DROP TRIGGER certificates_count_update;
DROP TRIGGER certificates_count_delete;
DROP TABLE province_count_deltas;
DROP TABLE province_counts;
