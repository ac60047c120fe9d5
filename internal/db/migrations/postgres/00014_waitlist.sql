-- +goose Up
-- Waitlist (issue 15): an enrolment is ENROLLED (1) or WAITLISTED (2);
-- queue orders the waitlist (and records the order of arrival), per session.
ALTER TABLE enrollments ADD COLUMN state BIGINT NOT NULL DEFAULT 1;
ALTER TABLE enrollments ADD COLUMN queue BIGINT NOT NULL DEFAULT 0;
ALTER TABLE enrollments ADD COLUMN waitlist_note TEXT NOT NULL DEFAULT '';
CREATE INDEX enrollments_waitlist ON enrollments (session_id, state, queue);

-- +goose Down
DROP INDEX enrollments_waitlist;
ALTER TABLE enrollments DROP COLUMN waitlist_note;
ALTER TABLE enrollments DROP COLUMN queue;
ALTER TABLE enrollments DROP COLUMN state;
