-- +goose Up
-- Every filter of ListCadres and ListCertificates has an index that also serves
-- its keyset order, so a page costs the same at any depth and registry size
-- (tests: internal/server/indexes_test.go). Topic filters use one partial index
-- per topic; the query writes the topic's bit as a literal so that the planner
-- can match it.
CREATE INDEX cadres_state ON cadres (state, id);
CREATE INDEX cadres_topic_1 ON cadres (id) WHERE (passed_topics & 2) <> 0;
CREATE INDEX cadres_topic_2 ON cadres (id) WHERE (passed_topics & 4) <> 0;
CREATE INDEX cadres_topic_3 ON cadres (id) WHERE (passed_topics & 8) <> 0;
CREATE INDEX cadres_topic_4 ON cadres (id) WHERE (passed_topics & 16) <> 0;
CREATE INDEX certificates_state ON certificates (state, number);
CREATE INDEX certificates_province ON certificates (province_code, number);
CREATE INDEX certificates_issuer ON certificates (issuer, number);

-- +goose Down
DROP INDEX certificates_issuer;
DROP INDEX certificates_province;
DROP INDEX certificates_state;
DROP INDEX cadres_topic_4;
DROP INDEX cadres_topic_3;
DROP INDEX cadres_topic_2;
DROP INDEX cadres_topic_1;
DROP INDEX cadres_state;
