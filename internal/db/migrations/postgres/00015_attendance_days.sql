-- +goose Up
-- Daily attendance (issue 15): bit i set = present on day i of the session
-- (days counted in the province's legal time from the day of start_time).
-- Rows from before keep attended = 1 as "present every day".
ALTER TABLE enrollments ADD COLUMN days_present BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE enrollments DROP COLUMN days_present;
