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
-- Writers only append here (one row per province and metric per statement), so
-- no counter row is held locked across a transaction, however long (an import
-- batch) and however many replicas write; knkd folds the deltas into
-- province_counts every few seconds (stats.Compact).
CREATE TABLE province_count_deltas (
  id            BIGSERIAL PRIMARY KEY,
  province_code TEXT NOT NULL,
  metric        TEXT NOT NULL,
  n             BIGINT NOT NULL
);
-- +goose StatementBegin
CREATE FUNCTION cadres_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT r.province_code, v.metric, COUNT(*) FROM new_rows r
      CROSS JOIN LATERAL (VALUES ('cadres', TRUE), ('certified', r.state = 2), ('topic_1', (r.passed_topics & 2) <> 0), ('topic_2', (r.passed_topics & 4) <> 0), ('topic_3', (r.passed_topics & 8) <> 0), ('topic_4', (r.passed_topics & 16) <> 0)) AS v(metric, counted)
      WHERE v.counted GROUP BY r.province_code, v.metric;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT r.province_code, v.metric, -COUNT(*) FROM old_rows r
      CROSS JOIN LATERAL (VALUES ('cadres', TRUE), ('certified', r.state = 2), ('topic_1', (r.passed_topics & 2) <> 0), ('topic_2', (r.passed_topics & 4) <> 0), ('topic_3', (r.passed_topics & 8) <> 0), ('topic_4', (r.passed_topics & 16) <> 0)) AS v(metric, counted)
      WHERE v.counted GROUP BY r.province_code, v.metric;
  ELSE
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT c.province_code, c.metric, SUM(c.n) FROM (
        SELECT r.province_code, v.metric, -1 AS n FROM old_rows r
          CROSS JOIN LATERAL (VALUES ('cadres', TRUE), ('certified', r.state = 2), ('topic_1', (r.passed_topics & 2) <> 0), ('topic_2', (r.passed_topics & 4) <> 0), ('topic_3', (r.passed_topics & 8) <> 0), ('topic_4', (r.passed_topics & 16) <> 0)) AS v(metric, counted) WHERE v.counted
        UNION ALL
        SELECT r.province_code, v.metric, 1 AS n FROM new_rows r
          CROSS JOIN LATERAL (VALUES ('cadres', TRUE), ('certified', r.state = 2), ('topic_1', (r.passed_topics & 2) <> 0), ('topic_2', (r.passed_topics & 4) <> 0), ('topic_3', (r.passed_topics & 8) <> 0), ('topic_4', (r.passed_topics & 16) <> 0)) AS v(metric, counted) WHERE v.counted
      ) c GROUP BY c.province_code, c.metric HAVING SUM(c.n) <> 0;
  END IF;
  RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER cadres_count_insert AFTER INSERT ON cadres REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cadres_count();
CREATE TRIGGER cadres_count_update AFTER UPDATE ON cadres REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cadres_count();
CREATE TRIGGER cadres_count_delete AFTER DELETE ON cadres REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cadres_count();
-- +goose StatementBegin
CREATE FUNCTION sessions_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT r.province_code, v.metric, COUNT(*) FROM new_rows r
      CROSS JOIN LATERAL (VALUES ('sessions_completed', r.state = 2)) AS v(metric, counted)
      WHERE v.counted GROUP BY r.province_code, v.metric;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT r.province_code, v.metric, -COUNT(*) FROM old_rows r
      CROSS JOIN LATERAL (VALUES ('sessions_completed', r.state = 2)) AS v(metric, counted)
      WHERE v.counted GROUP BY r.province_code, v.metric;
  ELSE
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT c.province_code, c.metric, SUM(c.n) FROM (
        SELECT r.province_code, v.metric, -1 AS n FROM old_rows r
          CROSS JOIN LATERAL (VALUES ('sessions_completed', r.state = 2)) AS v(metric, counted) WHERE v.counted
        UNION ALL
        SELECT r.province_code, v.metric, 1 AS n FROM new_rows r
          CROSS JOIN LATERAL (VALUES ('sessions_completed', r.state = 2)) AS v(metric, counted) WHERE v.counted
      ) c GROUP BY c.province_code, c.metric HAVING SUM(c.n) <> 0;
  END IF;
  RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER sessions_count_insert AFTER INSERT ON sessions REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION sessions_count();
CREATE TRIGGER sessions_count_update AFTER UPDATE ON sessions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION sessions_count();
CREATE TRIGGER sessions_count_delete AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION sessions_count();
-- +goose StatementBegin
CREATE FUNCTION forum_memberships_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT r.province_code, v.metric, COUNT(*) FROM new_rows r
      CROSS JOIN LATERAL (VALUES ('forum_members', r.state = 1)) AS v(metric, counted)
      WHERE v.counted GROUP BY r.province_code, v.metric;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT r.province_code, v.metric, -COUNT(*) FROM old_rows r
      CROSS JOIN LATERAL (VALUES ('forum_members', r.state = 1)) AS v(metric, counted)
      WHERE v.counted GROUP BY r.province_code, v.metric;
  ELSE
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT c.province_code, c.metric, SUM(c.n) FROM (
        SELECT r.province_code, v.metric, -1 AS n FROM old_rows r
          CROSS JOIN LATERAL (VALUES ('forum_members', r.state = 1)) AS v(metric, counted) WHERE v.counted
        UNION ALL
        SELECT r.province_code, v.metric, 1 AS n FROM new_rows r
          CROSS JOIN LATERAL (VALUES ('forum_members', r.state = 1)) AS v(metric, counted) WHERE v.counted
      ) c GROUP BY c.province_code, c.metric HAVING SUM(c.n) <> 0;
  END IF;
  RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER forum_memberships_count_insert AFTER INSERT ON forum_memberships REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION forum_memberships_count();
CREATE TRIGGER forum_memberships_count_update AFTER UPDATE ON forum_memberships REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION forum_memberships_count();
CREATE TRIGGER forum_memberships_count_delete AFTER DELETE ON forum_memberships REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION forum_memberships_count();
-- +goose StatementBegin
CREATE FUNCTION certificates_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT r.province_code, v.metric, COUNT(*) FROM new_rows r
      CROSS JOIN LATERAL (VALUES ('certificates_1', r.state = 1), ('certificates_2', r.state = 2), ('certificates_3', r.state = 3)) AS v(metric, counted)
      WHERE v.counted GROUP BY r.province_code, v.metric;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT r.province_code, v.metric, -COUNT(*) FROM old_rows r
      CROSS JOIN LATERAL (VALUES ('certificates_1', r.state = 1), ('certificates_2', r.state = 2), ('certificates_3', r.state = 3)) AS v(metric, counted)
      WHERE v.counted GROUP BY r.province_code, v.metric;
  ELSE
    INSERT INTO province_count_deltas (province_code, metric, n)
      SELECT c.province_code, c.metric, SUM(c.n) FROM (
        SELECT r.province_code, v.metric, -1 AS n FROM old_rows r
          CROSS JOIN LATERAL (VALUES ('certificates_1', r.state = 1), ('certificates_2', r.state = 2), ('certificates_3', r.state = 3)) AS v(metric, counted) WHERE v.counted
        UNION ALL
        SELECT r.province_code, v.metric, 1 AS n FROM new_rows r
          CROSS JOIN LATERAL (VALUES ('certificates_1', r.state = 1), ('certificates_2', r.state = 2), ('certificates_3', r.state = 3)) AS v(metric, counted) WHERE v.counted
      ) c GROUP BY c.province_code, c.metric HAVING SUM(c.n) <> 0;
  END IF;
  RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER certificates_count_insert AFTER INSERT ON certificates REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION certificates_count();
CREATE TRIGGER certificates_count_update AFTER UPDATE ON certificates REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION certificates_count();
CREATE TRIGGER certificates_count_delete AFTER DELETE ON certificates REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION certificates_count();
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
DROP TRIGGER cadres_count_insert ON cadres;
DROP TRIGGER cadres_count_update ON cadres;
DROP TRIGGER cadres_count_delete ON cadres;
DROP FUNCTION cadres_count();
DROP TRIGGER sessions_count_insert ON sessions;
DROP TRIGGER sessions_count_update ON sessions;
DROP TRIGGER sessions_count_delete ON sessions;
DROP FUNCTION sessions_count();
DROP TRIGGER forum_memberships_count_insert ON forum_memberships;
DROP TRIGGER forum_memberships_count_update ON forum_memberships;
DROP TRIGGER forum_memberships_count_delete ON forum_memberships;
DROP FUNCTION forum_memberships_count();
DROP TRIGGER certificates_count_insert ON certificates;
DROP TRIGGER certificates_count_update ON certificates;
DROP TRIGGER certificates_count_delete ON certificates;
DROP FUNCTION certificates_count();
DROP TABLE province_count_deltas;
DROP TABLE province_counts;
