// Package training implements TrainingService: sessions on the four KNK topics,
// enrolment, attendance and scores, and topic credits on completion.
package training

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/disclosure"
	"github.com/knk-id/knk/internal/idn"
	"github.com/knk-id/knk/internal/text"
	"github.com/knk-id/knk/internal/topic"
	"github.com/knk-id/knk/services/cadre"
	"github.com/knk-id/knk/services/organization"
)

// Service implements knkv1.TrainingServiceServer.
type Service struct {
	knkv1.UnimplementedTrainingServiceServer
	DB     *db.DB
	Orgs   *organization.Service
	Cadres *cadre.Service
	Now    func() time.Time
	// PassMark is the lowest score that passes a topic (a programme rule; default 70).
	PassMark int32
	// AttendanceThreshold is the lowest share of a session's days, in percent,
	// a cadre must be present on to be credited (default 80).
	AttendanceThreshold int32
}

var _ knkv1.TrainingServiceServer = (*Service)(nil)

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

func precondition(reason, msg string) error { return api.Error(codes.FailedPrecondition, reason, msg) }

// Sessions are dated from 2014, the year of the KNK guidelines (Kepmenakertrans
// No. 257 of 2014), up to MaxAhead after now.
var (
	earliestSession = time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC)
	// MaxAhead is how far ahead a session may be scheduled.
	MaxAhead = 2 * 365 * 24 * time.Hour
)

// check validates a session's own fields and stores its title and venue in
// normalised form; violations name fields relative to it.
func check(in *knkv1.Session, now time.Time) api.Violations {
	var v api.Violations
	in.Title = v.Text("title", in.GetTitle(), text.Name.Must())
	venue := strings.TrimSpace(in.GetVenue())
	in.Venue = v.Text("venue", in.GetVenue(), text.Name)
	if len(in.GetTopics()) == 0 {
		v.Add("topics", "needs at least one topic: TOPIC_K3, TOPIC_PKWT, TOPIC_WAGE_SCALE or TOPIC_SOCIAL_SECURITY")
	}
	for i, t := range in.GetTopics() {
		if !topic.Valid(t) {
			v.Add(fmt.Sprintf("topics[%d]", i), "is not a topic")
		}
	}
	if !idn.ValidProvince(in.GetProvinceCode()) {
		v.Add("province_code", "must be one of the 38 two-digit province codes")
	}
	switch in.GetMode() {
	case knkv1.Session_MODE_IN_PERSON:
		if venue == "" {
			v.Add("venue", "is required for an in-person session")
		}
	case knkv1.Session_MODE_ONLINE:
	default:
		v.Add("mode", "must be MODE_IN_PERSON or MODE_ONLINE")
	}
	latest := now.Add(MaxAhead)
	window := "must lie between " + earliestSession.Format(time.DateOnly) + " and " + latest.Format(time.DateOnly) +
		" (sessions are dated from 2014, the year of the KNK guidelines, to at most two years ahead)"
	switch start, end := in.GetStartTime(), in.GetEndTime(); {
	case start == nil:
		v.Add("start_time", "is required")
	case end == nil:
		v.Add("end_time", "is required")
	case !start.IsValid() || start.AsTime().Before(earliestSession) || start.AsTime().After(latest):
		v.Add("start_time", window)
	case !end.IsValid() || end.AsTime().After(latest):
		v.Add("end_time", window)
	case !start.AsTime().Before(end.AsTime()):
		v.Add("end_time", "must be after start_time")
	}
	if c := in.GetCapacity(); c < 1 || c > 10000 {
		v.Add("capacity", "must be between 1 and 10000")
	}
	return v
}

// canManage refuses a training unit acting on a session outside its province;
// the central unit (no province) and admin act anywhere.
func canManage(p auth.Principal, s *knkv1.Session) error {
	if p.Kind == auth.Admin || (p.Kind == auth.TrainingUnit && p.InProvince(s.ProvinceCode)) {
		return nil
	}
	return api.Denied("your key covers sessions in province " + p.Province + " only")
}

func parseName(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "sessions/")
	if _, err := ulid.ParseStrict(id); !ok || err != nil {
		return "", api.Invalid(field, "must be sessions/{session_id}")
	}
	return id, nil
}

// CreateSession schedules a session.
func (s *Service) CreateSession(ctx context.Context, req *knkv1.CreateSessionRequest) (*knkv1.Session, error) {
	p, _ := auth.FromContext(ctx)
	in := req.GetSession()
	if in == nil {
		in = &knkv1.Session{}
	}
	v := check(in, s.now())
	organizer := strings.TrimSpace(in.GetOrganizer())
	if organizer != "" && !strings.HasPrefix(organizer, "organizations/") {
		organizer = "organizations/" + organizer
	}
	switch p.Kind {
	case auth.TrainingUnit:
		if organizer != "" && organizer != p.OrgName() {
			return nil, api.Denied("a training unit schedules its own sessions: leave organizer empty or set it to " + p.OrgName())
		}
		organizer = p.OrgName()
		if !p.InProvince(in.GetProvinceCode()) && idn.ValidProvince(in.GetProvinceCode()) {
			return nil, api.Denied("your key covers sessions in province " + p.Province + " only")
		}
	default:
		org, err := s.Orgs.Get(ctx, strings.TrimPrefix(organizer, "organizations/"))
		switch {
		case errors.Is(err, db.ErrNotFound) || (err == nil && org.Kind != auth.TrainingUnit):
			v.Add("organizer", "must name a registered training unit")
		case err != nil:
			return nil, err
		case org.ProvinceCode != "" && org.ProvinceCode != in.GetProvinceCode():
			v.Add("organizer", "is a provincial unit of province "+org.ProvinceCode+" and cannot organise elsewhere")
		}
	}
	rid := req.GetRequestId()
	if len(rid) > 128 {
		v.Add("request_id", "must be at most 128 characters")
	}
	for _, fv := range v {
		if fv.Field != "request_id" {
			fv.Field = "session." + fv.Field
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	out := &knkv1.Session{
		Name: "sessions/" + ulid.Make().String(), Organizer: organizer,
		Title: in.GetTitle(), Topics: topic.List(topic.Bits(in.GetTopics())),
		ProvinceCode: in.GetProvinceCode(), Venue: in.GetVenue(), Mode: in.GetMode(),
		StartTime: truncate(in.GetStartTime()), EndTime: truncate(in.GetEndTime()), Capacity: in.GetCapacity(),
		State: knkv1.Session_STATE_SCHEDULED, CreateTime: timestamppb.New(now), UpdateTime: timestamppb.New(now), Etag: "1",
	}
	out.Days = sessionDays(out.ProvinceCode, out.StartTime.AsTime(), out.EndTime.AsTime())
	err := s.DB.Write(ctx, func(tx *db.Tx) error {
		if rid != "" {
			first, err := tx.ClaimRequestID(ctx, p.Org, "CreateSession", rid, out.Name, now)
			if err != nil || first != "" {
				if err == nil {
					out, err = get(ctx, tx, sessionID(first))
				}
				return err
			}
		}
		if err := insert(ctx, tx, out); err != nil {
			return err
		}
		return tx.Event(ctx, "session.created", out.Name, p.OrgName(), now)
	})
	return out, api.StoreError(out.Name, err)
}

func truncate(ts *timestamppb.Timestamp) *timestamppb.Timestamp {
	return timestamppb.New(ts.AsTime().Truncate(time.Microsecond))
}

// GetSession returns one session.
func (s *Service) GetSession(ctx context.Context, req *knkv1.GetSessionRequest) (*knkv1.Session, error) {
	id, err := parseName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	out, err := get(ctx, s.DB, id)
	return out, api.StoreError(req.GetName(), s.DB.Translate(err))
}

// ListSessions lists sessions by start time.
func (s *Service) ListSessions(ctx context.Context, req *knkv1.ListSessionsRequest) (*knkv1.ListSessionsResponse, error) {
	f := sessionFilter{province: req.GetProvinceCode(), topic: req.GetTopic(), state: req.GetState()}
	var v api.Violations
	if f.province != "" && !idn.ValidProvince(f.province) {
		v.Add("province_code", "is not one of the 38 province codes")
	}
	if f.topic != knkv1.Topic_TOPIC_UNSPECIFIED && !topic.Valid(f.topic) {
		v.Add("topic", "is not a topic")
	}
	if _, ok := knkv1.Session_State_name[int32(f.state)]; !ok {
		v.Add("state", "is not a session state")
	}
	if req.GetStartAfter() != nil {
		f.after = micros(req.GetStartAfter())
	}
	if req.GetStartBefore() != nil {
		f.until = micros(req.GetStartBefore())
	}
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	filter := []any{f.province, f.topic, f.state, f.after, f.until}
	token, err := api.DecodePageToken(req.GetPageToken(), filter...)
	if err != nil {
		return nil, err
	}
	afterStart, afterID := int64(-1<<62), ""
	if token != "" {
		start, id, _ := strings.Cut(token, "|")
		if afterStart, err = strconv.ParseInt(start, 10, 64); err != nil {
			return nil, api.Invalid("page_token", "is not a token this API returned")
		}
		afterID = id
	}
	sessions, err := list(ctx, s.DB, f, afterStart, afterID, size+1)
	if err != nil {
		return nil, err
	}
	resp := &knkv1.ListSessionsResponse{Sessions: sessions}
	if len(sessions) > size {
		last := sessions[size-1]
		resp.Sessions = sessions[:size]
		resp.NextPageToken = api.EncodePageToken(strconv.FormatInt(micros(last.StartTime), 10)+"|"+sessionID(last.Name), filter...)
	}
	return resp, nil
}

// sessionUpdatable lists the update_mask paths UpdateSession accepts.
var sessionUpdatable = []string{"title", "topics", "venue", "mode", "start_time", "end_time", "capacity"}

// UpdateSession changes a scheduled session.
func (s *Service) UpdateSession(ctx context.Context, req *knkv1.UpdateSessionRequest) (*knkv1.Session, error) {
	p, _ := auth.FromContext(ctx)
	in := req.GetSession()
	id, err := parseName("session.name", in.GetName())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	var v api.Violations
	if len(paths) == 0 {
		v.Add("update_mask", "is required: name the fields to change ("+strings.Join(sessionUpdatable, ", ")+")")
	}
	for _, path := range paths {
		if !slices.Contains(sessionUpdatable, path) {
			v.Add("update_mask", fmt.Sprintf("%q cannot be updated; updatable fields are %s", path, strings.Join(sessionUpdatable, ", ")))
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	var out *knkv1.Session
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		cur, err := s.scheduled(ctx, tx, p, id, in.GetEtag())
		if err != nil {
			return err
		}
		next := proto.Clone(cur).(*knkv1.Session)
		for _, path := range paths {
			switch path {
			case "title":
				next.Title = in.GetTitle()
			case "topics":
				next.Topics = topic.List(topic.Bits(in.GetTopics()))
				if len(in.GetTopics()) > 0 && len(next.Topics) == 0 {
					next.Topics = in.GetTopics() // let check name the bad value
				}
			case "venue":
				next.Venue = in.GetVenue()
			case "mode":
				next.Mode = in.GetMode()
			case "start_time":
				next.StartTime = in.GetStartTime()
			case "end_time":
				next.EndTime = in.GetEndTime()
			case "capacity":
				next.Capacity = in.GetCapacity()
			}
		}
		v := check(next, now)
		for _, fv := range v {
			fv.Field = "session." + fv.Field
		}
		if err := v.Err(); err != nil {
			return err
		}
		next.StartTime, next.EndTime = truncate(next.StartTime), truncate(next.EndTime)
		if next.Capacity < cur.EnrolledCount {
			return precondition("CAPACITY_BELOW_ENROLLED", fmt.Sprintf("%d cadres are enrolled: capacity cannot go below that", cur.EnrolledCount))
		}
		if err := s.checkNewTimes(ctx, tx, next); err != nil {
			return err
		}
		ok, err := update(ctx, tx, next, now)
		if err := api.Updated(next.Name, ok, err); err != nil {
			return err
		}
		out = next
		if err := tx.Event(ctx, "session.updated", next.Name, p.OrgName(), now); err != nil {
			return err
		}
		// A raised capacity (or new times that end a clash) frees places.
		if err := fillFromWaitlist(ctx, tx, next.Name, p.OrgName(), now); err != nil {
			return err
		}
		fresh, err := get(ctx, tx, sessionID(next.Name))
		out = fresh
		return err
	})
	if err != nil {
		return nil, api.StoreError(in.GetName(), err)
	}
	return out, nil
}

// checkNewTimes refuses new times that would put an enrolled cadre in two
// overlapping sessions.
func (s *Service) checkNewTimes(ctx context.Context, tx *db.Tx, next *knkv1.Session) error {
	cadres, err := cadresIn(ctx, tx, sessionID(next.Name), enrolled)
	if err != nil {
		return err
	}
	for _, c := range cadres {
		clash, err := overlapping(ctx, tx, c, sessionID(next.Name), micros(next.StartTime), micros(next.EndTime))
		if err != nil {
			return err
		}
		if clash {
			return precondition("ENROLLED_CADRE_BUSY", "cadres/"+c+" is enrolled in another session at the new time")
		}
	}
	return nil
}

// scheduled loads a session that p may manage, checking the etag if given, and
// refuses one that is no longer SCHEDULED.
func (s *Service) scheduled(ctx context.Context, tx *db.Tx, p auth.Principal, id, etag string) (*knkv1.Session, error) {
	cur, err := getForUpdate(ctx, tx, id)
	if err != nil {
		return nil, tx.Translate(err)
	}
	if err := canManage(p, cur); err != nil {
		return nil, err
	}
	if etag != "" && etag != cur.Etag {
		return nil, api.StaleEtag(cur.Name)
	}
	return cur, isScheduled(cur)
}

func isScheduled(cur *knkv1.Session) error {
	switch cur.State {
	case knkv1.Session_STATE_CANCELLED:
		return precondition("SESSION_CANCELLED", cur.Name+" is cancelled")
	case knkv1.Session_STATE_COMPLETED:
		return precondition("SESSION_COMPLETED", cur.Name+" is completed and its results are locked")
	}
	return nil
}

// CancelSession cancels a scheduled session. Its enrolments stay on record but no
// longer hold the cadres' time, and no topic is credited.
func (s *Service) CancelSession(ctx context.Context, req *knkv1.CancelSessionRequest) (*knkv1.Session, error) {
	p, _ := auth.FromContext(ctx)
	id, err := parseName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	reason, err := api.Reason(req.GetReason())
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out *knkv1.Session
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		cur, err := s.scheduled(ctx, tx, p, id, "")
		if err != nil {
			return err
		}
		cur.State, cur.CancelReason = knkv1.Session_STATE_CANCELLED, reason
		ok, err := update(ctx, tx, cur, now)
		if err := api.Updated(cur.Name, ok, err); err != nil {
			return err
		}
		out = cur
		return tx.Event(ctx, "session.cancelled", cur.Name, p.OrgName(), now)
	})
	if err != nil {
		return nil, api.StoreError(req.GetName(), err)
	}
	return out, nil
}

// EnrollCadre enrols a cadre into a scheduled session with room.
func (s *Service) EnrollCadre(ctx context.Context, req *knkv1.EnrollCadreRequest) (*knkv1.Enrollment, error) {
	p, _ := auth.FromContext(ctx)
	id, err := parseName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out *knkv1.Enrollment
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		sess, err := getForUpdate(ctx, tx, id)
		if err != nil {
			return api.StoreError(req.GetParent(), tx.Translate(err))
		}
		// A federation enrols its own cadres into any session; a unit enrols
		// cadres of its province into its sessions. A cadre outside the caller's
		// scope is NOT_FOUND, as if it did not exist.
		c, err := s.Cadres.GetVisibleForUpdate(ctx, tx, p, req.GetCadre())
		if err != nil {
			return err
		}
		if p.Kind != auth.Federation {
			if err := canManage(p, sess); err != nil {
				return err
			}
		}
		if err := isScheduled(sess); err != nil {
			return err
		}
		if c.State == knkv1.Cadre_STATE_WITHDRAWN {
			return precondition("CADRE_WITHDRAWN", c.Name+" is withdrawn from the programme")
		}
		cadreID := strings.TrimPrefix(c.Name, "cadres/")
		switch st, err := enrolmentState(ctx, tx, id, cadreID); {
		case err != nil:
			return err
		case st == waitlisted:
			return api.Error(codes.AlreadyExists, "ALREADY_WAITLISTED", c.Name+" is already on the waitlist of "+sess.Name)
		case st != 0:
			return api.Error(codes.AlreadyExists, "ALREADY_ENROLLED", c.Name+" is already enrolled in "+sess.Name)
		}
		state, event := enrolled, "enrollment.created"
		room, err := takePlace(ctx, tx, id)
		switch {
		case err != nil:
			return err
		case !room && req.GetNoWaitlist():
			return precondition("SESSION_FULL", fmt.Sprintf("%s is full (capacity %d)", sess.Name, sess.Capacity))
		case !room:
			// A waitlisted cadre does not hold the time slot: no overlap check
			// until promotion.
			state, event = waitlisted, "enrollment.waitlisted"
		default:
			clash, err := overlapping(ctx, tx, cadreID, id, micros(sess.StartTime), micros(sess.EndTime))
			if err != nil {
				return err
			}
			if clash {
				return precondition("OVERLAPPING_SESSION", c.Name+" is enrolled in another session at an overlapping time")
			}
		}
		pos, err := addEnrollment(ctx, tx, id, cadreID, state, now)
		if err != nil {
			return err
		}
		out = &knkv1.Enrollment{Name: sess.Name + "/enrollments/" + cadreID, Cadre: c.Name, CadreDisplayName: c.DisplayName,
			Scores: map[string]int32{}, CreateTime: timestamppb.New(now),
			State: knkv1.Enrollment_State(state), WaitlistPosition: pos}
		disclosure.Apply(out, disclosure.InScope(p, sess.Organizer))
		return tx.Event(ctx, event, out.Name, p.OrgName(), now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fillFromWaitlist promotes waitlisted cadres of session, first come first
// served, while it has room, in the caller's transaction (which holds the
// session's row lock). A cadre enrolled in another session at an overlapping
// time is passed over, with the reason noted on its enrolment, and keeps its
// place on the waitlist.
func fillFromWaitlist(ctx context.Context, tx *db.Tx, session, actor string, now time.Time) error {
	sess, err := get(ctx, tx, sessionID(session))
	if err != nil {
		return err
	}
	room := sess.Capacity - sess.EnrolledCount
	if room <= 0 {
		return nil
	}
	queue, err := cadresIn(ctx, tx, sessionID(session), waitlisted)
	if err != nil {
		return err
	}
	for _, cid := range queue {
		if room == 0 {
			return nil
		}
		clash, err := overlapping(ctx, tx, cid, sessionID(session), micros(sess.StartTime), micros(sess.EndTime))
		if err != nil {
			return err
		}
		if clash {
			note := "passed over on " + now.Format(time.DateOnly) + ": enrolled in another session at an overlapping time"
			if err := setEnrollment(ctx, tx, sessionID(session), cid, waitlisted, note); err != nil {
				return err
			}
			continue
		}
		ok, err := takePlace(ctx, tx, sessionID(session))
		if err != nil || !ok {
			return err
		}
		if err := setEnrollment(ctx, tx, sessionID(session), cid, enrolled, ""); err != nil {
			return err
		}
		if err := tx.Event(ctx, "enrollment.promoted", session+"/enrollments/"+cid, actor, now); err != nil {
			return err
		}
		room--
	}
	return nil
}

// seesAllEnrollments reports whether p reads every enrolment of session: admin,
// the central unit and national inspectorates everywhere, a provincial unit in
// the sessions it runs, a provincial inspectorate in its province's sessions.
// Others read the enrolments of cadres in their scope only.
func seesAllEnrollments(p auth.Principal, session *knkv1.Session) bool {
	switch p.Kind {
	case auth.Admin:
		return true
	case auth.TrainingUnit:
		return p.Province == "" || session.Organizer == p.OrgName()
	case auth.Inspector:
		return p.InProvince(session.ProvinceCode)
	}
	return false
}

// ListEnrollments lists a session's enrolments that the caller may read, in
// cadre order.
func (s *Service) ListEnrollments(ctx context.Context, req *knkv1.ListEnrollmentsRequest) (*knkv1.ListEnrollmentsResponse, error) {
	p, _ := auth.FromContext(ctx)
	id, err := parseName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := api.DecodePageToken(req.GetPageToken(), "enrollments", id)
	if err != nil {
		return nil, err
	}
	sess, err := get(ctx, s.DB, id)
	if err != nil {
		return nil, api.StoreError(req.GetParent(), s.DB.Translate(err))
	}
	scope, args := "1 = 1", []any(nil)
	if !seesAllEnrollments(p, sess) {
		scope, args = cadre.ScopeSQL(p, "cadre_id")
	}
	list, err := enrollments(ctx, s.DB, id, after, size+1, scope, args...)
	if err != nil {
		return nil, err
	}
	resp := &knkv1.ListEnrollmentsResponse{Enrollments: list}
	if len(list) > size {
		resp.Enrollments = list[:size]
		resp.NextPageToken = api.EncodePageToken(strings.TrimPrefix(list[size-1].Cadre, "cadres/"), "enrollments", id)
	}
	if err := s.present(ctx, p, sess.Organizer, resp.Enrollments); err != nil {
		return nil, err
	}
	return resp, nil
}

// DeleteEnrollment removes a cadre from a scheduled session.
func (s *Service) DeleteEnrollment(ctx context.Context, req *knkv1.DeleteEnrollmentRequest) (*emptypb.Empty, error) {
	p, _ := auth.FromContext(ctx)
	rest, _ := strings.CutPrefix(req.GetName(), "sessions/")
	sid, cid, ok := strings.Cut(rest, "/enrollments/")
	if _, err := ulid.ParseStrict(sid); !ok || err != nil || cid == "" {
		return nil, api.Invalid("name", "must be sessions/{session_id}/enrollments/{cadre_id}")
	}
	now := s.now()
	err := s.DB.Write(ctx, func(tx *db.Tx) error {
		sess, err := getForUpdate(ctx, tx, sid)
		if err != nil {
			return api.StoreError("sessions/"+sid, tx.Translate(err))
		}
		if p.Kind == auth.Federation {
			if _, err := s.Cadres.GetVisible(ctx, tx, p, "cadres/"+cid); err != nil {
				return api.StoreError(req.GetName(), err)
			}
		} else if err := canManage(p, sess); err != nil {
			return err
		}
		if err := isScheduled(sess); err != nil {
			return err
		}
		st, err := removeEnrollment(ctx, tx, sid, cid)
		if err != nil {
			return err
		}
		if st == 0 {
			return api.NotFound(req.GetName())
		}
		if err := tx.Event(ctx, "enrollment.deleted", req.GetName(), p.OrgName(), now); err != nil {
			return err
		}
		return fillFromWaitlist(ctx, tx, sess.Name, p.OrgName(), now)
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// RecordResults records attendance and scores of enrolled cadres. The whole call
// is checked before anything is written; for a cadre and topic, the last write wins.
func (s *Service) RecordResults(ctx context.Context, req *knkv1.RecordResultsRequest) (*knkv1.RecordResultsResponse, error) {
	p, _ := auth.FromContext(ctx)
	id, err := parseName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if len(req.GetResults()) == 0 || len(req.GetResults()) > 1000 {
		return nil, api.Invalid("results", "must hold 1 to 1000 results")
	}
	now := s.now()
	resp := &knkv1.RecordResultsResponse{}
	var organizer string
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		sess, err := s.scheduled(ctx, tx, p, id, "")
		if err != nil {
			return err
		}
		offered := topic.Bits(sess.Topics)
		var v api.Violations
		for i, r := range req.GetResults() {
			field := fmt.Sprintf("results[%d]", i)
			cid, ok := strings.CutPrefix(r.GetCadre(), "cadres/")
			st, err := enrolmentState(ctx, tx, id, cid)
			if err != nil {
				return err
			}
			switch {
			case st == waitlisted:
				v.Add(field+".cadre", "is on the waitlist of "+sess.Name+", not enrolled")
			case !ok || st != enrolled:
				v.Add(field+".cadre", "is not enrolled in "+sess.Name)
			}
			if len(r.GetDaysPresent()) > 0 {
				if _, bad := dayMask(sess.Days, r.GetDaysPresent()); bad >= 0 {
					v.Add(fmt.Sprintf("%s.days_present[%d]", field, bad), "is not a day of this session (YYYY-MM-DD, one of "+strings.Join(sess.Days, ", ")+")")
				}
			}
			for name, score := range r.GetScores() {
				t, ok := topic.Parse(name)
				switch {
				case !ok:
					v.Add(field+".scores["+name+"]", "is not a topic name (TOPIC_K3, TOPIC_PKWT, TOPIC_WAGE_SCALE, TOPIC_SOCIAL_SECURITY)")
				case offered&(1<<t) == 0:
					v.Add(field+".scores["+name+"]", "is not a topic of this session")
				case score < 0 || score > 100:
					v.Add(field+".scores["+name+"]", "must be a score from 0 to 100")
				}
			}
		}
		if err := v.Err(); err != nil {
			return err
		}
		for _, r := range req.GetResults() {
			cid := strings.TrimPrefix(r.GetCadre(), "cadres/")
			full, mask := allDays(len(sess.Days)), int64(0)
			if len(r.GetDaysPresent()) > 0 {
				mask, _ = dayMask(sess.Days, r.GetDaysPresent())
			} else if r.GetAttended() {
				mask = full
			}
			if err := recordAttendance(ctx, tx, id, cid, mask == full, mask); err != nil {
				return err
			}
			for name, score := range r.GetScores() {
				t, _ := topic.Parse(name)
				if _, err := tx.ExecContext(ctx, `INSERT INTO scores (session_id, cadre_id, topic, score) VALUES (?, ?, ?, ?)
					ON CONFLICT (session_id, cadre_id, topic) DO UPDATE SET score = excluded.score`,
					id, cid, int32(t), score); err != nil {
					return err
				}
			}
		}
		all, err := enrollments(ctx, tx, id, "", 1<<30, "1 = 1")
		if err != nil {
			return err
		}
		recorded := map[string]bool{}
		for _, r := range req.GetResults() {
			recorded[r.GetCadre()] = true
		}
		for _, e := range all {
			if recorded[e.Cadre] {
				resp.Enrollments = append(resp.Enrollments, e)
			}
		}
		organizer = sess.Organizer
		return tx.Event(ctx, "results.recorded", sess.Name, p.OrgName(), now)
	})
	if err != nil {
		return nil, api.StoreError(req.GetName(), err)
	}
	if err := s.present(ctx, p, organizer, resp.Enrollments); err != nil {
		return nil, err
	}
	return resp, nil
}

// present fills in the cadres' names of enrolments in the session run by
// organizer and applies the disclosure table for p.
func (s *Service) present(ctx context.Context, p auth.Principal, organizer string, list []*knkv1.Enrollment) error {
	cadres := make([]string, len(list))
	for i, e := range list {
		cadres[i] = e.Cadre
	}
	names, err := s.Cadres.DisplayNames(ctx, cadres)
	if err != nil {
		return err
	}
	for _, e := range list {
		e.CadreDisplayName = names[e.Cadre]
		disclosure.Apply(e, disclosure.InScope(p, organizer))
	}
	return nil
}

// CompleteSession locks the results and credits every cadre present on at least
// AttendanceThreshold percent of the session's days with each topic they scored
// at least the pass mark in, in the same transaction.
func (s *Service) CompleteSession(ctx context.Context, req *knkv1.CompleteSessionRequest) (*knkv1.Session, error) {
	p, _ := auth.FromContext(ctx)
	id, err := parseName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	pass := s.PassMark
	if pass == 0 {
		pass = 70
	}
	now := s.now()
	var out *knkv1.Session
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		cur, err := s.scheduled(ctx, tx, p, id, "")
		if err != nil {
			return err
		}
		passed, attended, masks, err := passedScores(ctx, tx, id, pass)
		if err != nil {
			return err
		}
		threshold := s.AttendanceThreshold
		if threshold == 0 {
			threshold = 80
		}
		offered := topic.Bits(cur.Topics)
		credits := map[string]int64{}
		for cid, topics := range passed {
			if credited(attended[cid], masks[cid], len(cur.Days), threshold) {
				credits["cadres/"+cid] = topics & offered
			}
		}
		if err := s.Cadres.CreditTopics(ctx, tx, credits, now); err != nil {
			return err
		}
		cur.State = knkv1.Session_STATE_COMPLETED
		ok, err := update(ctx, tx, cur, now)
		if err := api.Updated(cur.Name, ok, err); err != nil {
			return err
		}
		out = cur
		return tx.Event(ctx, "session.completed", cur.Name, p.OrgName(), now)
	})
	if err != nil {
		return nil, api.StoreError(req.GetName(), err)
	}
	return out, nil
}

// dayMask is the attendance mask of present among days, and the index in
// present of the first entry that is not one of days (-1 if none).
func dayMask(days, present []string) (int64, int) {
	var mask int64
	for i, d := range present {
		j := slices.Index(days, d)
		if j < 0 {
			return 0, i
		}
		mask |= 1 << j
	}
	return mask, -1
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CompletedByProvince counts completed sessions per province.
func (s *Service) CompletedByProvince(ctx context.Context) (map[string]int64, error) {
	return db.Counts(ctx, s.DB, `SELECT province_code, COUNT(*) FROM sessions WHERE state = ? GROUP BY province_code`,
		int32(knkv1.Session_STATE_COMPLETED))
}
