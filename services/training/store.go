package training

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/topic"
)

const columns = `id, organizer, title, topics, province_code, venue, mode, start_time, end_time,
	capacity, enrolled_count, state, cancel_reason, create_time, update_time, version`

func micros(ts *timestamppb.Timestamp) int64 { return ts.AsTime().UnixMicro() }

func stamp(us int64) *timestamppb.Timestamp { return timestamppb.New(time.UnixMicro(us)) }

func scan(row db.Scanner) (*knkv1.Session, error) {
	var (
		s                                knkv1.Session
		id, organizer                    string
		topics, start, end, ct, ut, vers int64
		mode, state, capacity, enrolled  int32
	)
	err := row.Scan(&id, &organizer, &s.Title, &topics, &s.ProvinceCode, &s.Venue, &mode, &start, &end,
		&capacity, &enrolled, &state, &s.CancelReason, &ct, &ut, &vers)
	if err != nil {
		return nil, err
	}
	s.Name, s.Organizer = "sessions/"+id, "organizations/"+organizer
	s.Topics = topic.List(topics)
	s.Mode, s.State = knkv1.Session_Mode(mode), knkv1.Session_State(state)
	s.StartTime, s.EndTime = stamp(start), stamp(end)
	s.Capacity, s.EnrolledCount = capacity, enrolled
	s.CreateTime, s.UpdateTime = stamp(ct), stamp(ut)
	s.Etag = strconv.FormatInt(vers, 10)
	s.Days = sessionDays(s.ProvinceCode, s.StartTime.AsTime(), s.EndTime.AsTime())
	return &s, nil
}

func sessionID(name string) string { return strings.TrimPrefix(name, "sessions/") }

func get(ctx context.Context, q db.Querier, id string) (*knkv1.Session, error) {
	return scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM sessions WHERE id = ?`, id))
}

// getForUpdate reads a session in a write transaction and locks its row.
func getForUpdate(ctx context.Context, tx *db.Tx, id string) (*knkv1.Session, error) {
	return scan(tx.QueryRowContext(ctx, `SELECT `+columns+` FROM sessions WHERE id = ?`+tx.ForUpdate(), id))
}

func insert(ctx context.Context, tx *db.Tx, s *knkv1.Session) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+columns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '', ?, ?, 1)`,
		sessionID(s.Name), strings.TrimPrefix(s.Organizer, "organizations/"), s.Title, topic.Bits(s.Topics),
		s.ProvinceCode, s.Venue, int32(s.Mode), micros(s.StartTime), micros(s.EndTime), s.Capacity,
		int32(s.State), micros(s.CreateTime), micros(s.UpdateTime))
	return err
}

// update writes s if its version is still the one in its etag; false otherwise.
func update(ctx context.Context, tx *db.Tx, s *knkv1.Session, now time.Time) (bool, error) {
	version, _ := strconv.ParseInt(s.Etag, 10, 64)
	res, err := tx.ExecContext(ctx, `UPDATE sessions SET title = ?, topics = ?, venue = ?, mode = ?,
		start_time = ?, end_time = ?, capacity = ?, state = ?, cancel_reason = ?, update_time = ?,
		version = version + 1 WHERE id = ? AND version = ?`,
		s.Title, topic.Bits(s.Topics), s.Venue, int32(s.Mode), micros(s.StartTime), micros(s.EndTime),
		s.Capacity, int32(s.State), s.CancelReason, now.UnixMicro(), sessionID(s.Name), version)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	s.Etag, s.UpdateTime = strconv.FormatInt(version+1, 10), timestamppb.New(now)
	return true, nil
}

// Enrolment states as stored.
const (
	enrolled   = int32(knkv1.Enrollment_STATE_ENROLLED)
	waitlisted = int32(knkv1.Enrollment_STATE_WAITLISTED)
)

// enrolmentState returns the state of cadreID's enrolment in session, 0 if none.
func enrolmentState(ctx context.Context, q db.Querier, session, cadreID string) (int32, error) {
	var st int32
	err := q.QueryRowContext(ctx, `SELECT state FROM enrollments WHERE session_id = ? AND cadre_id = ?`,
		session, cadreID).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return st, err
}

// addEnrollment inserts cadreID into session in state, at the end of the
// session's queue (the caller holds the session's row lock), and returns the
// cadre's waitlist position (0 when enrolled).
func addEnrollment(ctx context.Context, tx *db.Tx, session, cadreID string, state int32, now time.Time) (int32, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO enrollments (session_id, cadre_id, create_time, state, queue)
		VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(queue), 0) + 1 FROM enrollments WHERE session_id = ?))`,
		session, cadreID, now.UnixMicro(), state, session); err != nil {
		return 0, err
	}
	if state != waitlisted {
		return 0, nil
	}
	var pos int32
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM enrollments WHERE session_id = ? AND state = ?`,
		session, waitlisted).Scan(&pos)
	return pos, err
}

// takePlace counts one more enrolled cadre in session if it has room; false if full.
func takePlace(ctx context.Context, tx *db.Tx, session string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE sessions SET enrolled_count = enrolled_count + 1
		WHERE id = ? AND enrolled_count < capacity`, session)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// removeEnrollment deletes cadreID's enrolment in session, freeing its place if
// it held one, and returns the state it had (0 if there was none).
func removeEnrollment(ctx context.Context, tx *db.Tx, session, cadreID string) (int32, error) {
	st, err := enrolmentState(ctx, tx, session, cadreID)
	if err != nil || st == 0 {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM enrollments WHERE session_id = ? AND cadre_id = ?`, session, cadreID); err != nil {
		return 0, err
	}
	if st == enrolled {
		_, err = tx.ExecContext(ctx, `UPDATE sessions SET enrolled_count = enrolled_count - 1 WHERE id = ?`, session)
	}
	return st, err
}

// cadresIn returns the ids of session's cadres in state, in queue order.
func cadresIn(ctx context.Context, q db.Querier, session string, state int32) ([]string, error) {
	return db.All(ctx, q, func(row db.Scanner) (string, error) {
		var c string
		return c, row.Scan(&c)
	}, `SELECT cadre_id FROM enrollments WHERE session_id = ? AND state = ? ORDER BY queue, cadre_id`, session, state)
}

// setEnrollment sets the state and waitlist note of cadreID's enrolment in session.
func setEnrollment(ctx context.Context, tx *db.Tx, session, cadreID string, state int32, note string) error {
	_, err := tx.ExecContext(ctx, `UPDATE enrollments SET state = ?, waitlist_note = ? WHERE session_id = ? AND cadre_id = ?`,
		state, note, session, cadreID)
	return err
}

// recordAttendance sets a cadre's attendance in session: mask of days present,
// attended when present every day.
func recordAttendance(ctx context.Context, tx *db.Tx, session, cadreID string, attended bool, mask int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE enrollments SET attended = ?, days_present = ? WHERE session_id = ? AND cadre_id = ?`,
		boolInt(attended), mask, session, cadreID)
	return err
}

// passedScores returns, for each enrolled cadre of session with a score of at
// least pass, its passed topics' bits, whether it attended every day and its
// mask of days present.
func passedScores(ctx context.Context, tx *db.Tx, session string, pass int32) (map[string]int64, map[string]bool, map[string]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT sc.cadre_id, sc.topic, e.attended, e.days_present FROM scores sc
		JOIN enrollments e ON e.session_id = sc.session_id AND e.cadre_id = sc.cadre_id
		WHERE sc.session_id = ? AND e.state = ? AND sc.score >= ?`, session, enrolled, pass)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rows.Close()
	topics, attended, masks := map[string]int64{}, map[string]bool{}, map[string]int64{}
	for rows.Next() {
		var (
			cid     string
			t, mask int64
			all     bool
		)
		if err := rows.Scan(&cid, &t, &all, &mask); err != nil {
			return nil, nil, nil, err
		}
		topics[cid] |= 1 << t
		attended[cid], masks[cid] = all, mask
	}
	return topics, attended, masks, rows.Err()
}

// overlapping reports whether cadreID is enrolled in a session other than
// sessionID that is not cancelled and whose time overlaps [start, end).
func overlapping(ctx context.Context, q db.Querier, cadreID, sessionID string, start, end int64) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM enrollments e JOIN sessions s ON s.id = e.session_id
		WHERE e.cadre_id = ? AND e.state = ? AND s.id <> ? AND s.state <> ? AND s.start_time < ? AND s.end_time > ?`,
		cadreID, enrolled, sessionID, int32(knkv1.Session_STATE_CANCELLED), end, start).Scan(&n)
	return n > 0, err
}

type sessionFilter struct {
	province     string
	topic        knkv1.Topic
	state        knkv1.Session_State
	after, until int64 // start-time window; 0 = open
}

func list(ctx context.Context, q db.Querier, f sessionFilter, afterStart int64, afterID string, limit int) ([]*knkv1.Session, error) {
	where, args := []string{"(start_time > ? OR (start_time = ? AND id > ?))"}, []any{afterStart, afterStart, afterID}
	if f.province != "" {
		where, args = append(where, "province_code = ?"), append(args, f.province)
	}
	if f.topic != knkv1.Topic_TOPIC_UNSPECIFIED {
		where, args = append(where, "(topics & ?) <> 0"), append(args, int64(1)<<f.topic)
	}
	if f.state != knkv1.Session_STATE_UNSPECIFIED {
		where, args = append(where, "state = ?"), append(args, int32(f.state))
	}
	if f.after != 0 {
		where, args = append(where, "start_time >= ?"), append(args, f.after)
	}
	if f.until != 0 {
		where, args = append(where, "start_time < ?"), append(args, f.until)
	}
	return db.All(ctx, q, scan, `SELECT `+columns+` FROM sessions WHERE `+strings.Join(where, " AND ")+
		` ORDER BY start_time, id LIMIT ?`, append(args, limit)...)
}

// enrollmentColumns are the columns scanEnrollments reads, over enrollments e
// joined with scores sc; a waitlisted enrolment's position counts the
// waitlisted enrolments of its session queued up to it.
const enrollmentColumns = `e.session_id, e.cadre_id, e.attended, e.create_time, e.state, e.waitlist_note,
	e.days_present, ss.province_code, ss.start_time, ss.end_time,
	CASE WHEN e.state = 2 THEN (SELECT COUNT(*) FROM enrollments w
		WHERE w.session_id = e.session_id AND w.state = e.state AND w.queue <= e.queue) ELSE 0 END,
	sc.topic, sc.score`

// enrollments returns a page of a session's enrolments with their scores,
// among those that scope (a condition over cadre_id, with its args) keeps.
func enrollments(ctx context.Context, q db.Querier, session, afterCadre string, limit int, scope string, scopeArgs ...any) ([]*knkv1.Enrollment, error) {
	args := append(append([]any{session, afterCadre}, scopeArgs...), limit)
	return scanEnrollments(q.QueryContext(ctx, `SELECT `+enrollmentColumns+`
		FROM (SELECT * FROM enrollments WHERE session_id = ? AND cadre_id > ? AND `+scope+` ORDER BY cadre_id LIMIT ?) e
		JOIN sessions ss ON ss.id = e.session_id
		LEFT JOIN scores sc ON sc.session_id = e.session_id AND sc.cadre_id = e.cadre_id
		ORDER BY e.cadre_id, sc.topic`, args...))
}

// cadreEnrollments returns every enrolment of a cadre with its scores, by session.
func cadreEnrollments(ctx context.Context, q db.Querier, cadreID string) ([]*knkv1.Enrollment, error) {
	return scanEnrollments(q.QueryContext(ctx, `SELECT `+enrollmentColumns+`
		FROM enrollments e JOIN sessions ss ON ss.id = e.session_id LEFT JOIN scores sc ON sc.session_id = e.session_id AND sc.cadre_id = e.cadre_id
		WHERE e.cadre_id = ? ORDER BY e.session_id, sc.topic`, cadreID))
}

// scanEnrollments reads rows of enrollmentColumns, one per score and grouped by enrolment, into enrolments.
func scanEnrollments(rows *sql.Rows, err error) ([]*knkv1.Enrollment, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*knkv1.Enrollment
	for rows.Next() {
		var (
			session, cadreID string
			attended         bool
			ct               int64
			state, pos       int32
			note, province   string
			mask, start, end int64
			topicN, score    *int64
		)
		if err := rows.Scan(&session, &cadreID, &attended, &ct, &state, &note, &mask, &province, &start, &end,
			&pos, &topicN, &score); err != nil {
			return nil, err
		}
		name := "sessions/" + session + "/enrollments/" + cadreID
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, &knkv1.Enrollment{Name: name, Cadre: "cadres/" + cadreID, Attended: attended,
				CreateTime: stamp(ct), Scores: map[string]int32{},
				State: knkv1.Enrollment_State(state), WaitlistPosition: pos, WaitlistNote: note})
			days := sessionDays(province, time.UnixMicro(start), time.UnixMicro(end))
			if attended {
				mask = allDays(len(days))
			}
			out[len(out)-1].DaysPresent = presentDays(days, mask)
		}
		if topicN != nil {
			out[len(out)-1].Scores[knkv1.Topic(*topicN).String()] = int32(*score)
		}
	}
	return out, rows.Err()
}
