-- +goose Up
-- transfer_requests: a federation asks for a cadre registered by another one
-- (issue 10). The requester never learns the cadre or its federation until the
-- current federation (or admin) approves.
CREATE TABLE transfer_requests (
  id              TEXT PRIMARY KEY,
  cadre_id        TEXT NOT NULL REFERENCES cadres (id),
  from_federation TEXT NOT NULL,
  to_federation   TEXT NOT NULL,
  state           INTEGER NOT NULL, -- TransferRequest.State
  reject_reason   TEXT NOT NULL DEFAULT '',
  create_time     INTEGER NOT NULL,
  decide_time     INTEGER NOT NULL DEFAULT 0
);
-- One pending request per cadre and requesting federation.
CREATE UNIQUE INDEX transfer_requests_one_pending ON transfer_requests (cadre_id, to_federation) WHERE state = 1;
CREATE INDEX transfer_requests_from ON transfer_requests (from_federation, id);
CREATE INDEX transfer_requests_to ON transfer_requests (to_federation, id);

-- +goose Down
DROP TABLE transfer_requests;
