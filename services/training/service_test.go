package training_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/training"
)

var _ knkv1.TrainingServiceServer = (*training.Service)(nil)

var (
	k3, pkwt, wage, social = knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY
	day                    = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC) // 09:00 WIB
)

type world struct {
	*testenv.Env
	fed, otherFed, central, dki, kalbar, inspector string
	next                                           int
}

func setup(t *testing.T) *world {
	t.Helper()
	e := testenv.Start(t)
	return &world{
		Env:       e,
		fed:       e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, ""),
		otherFed:  e.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, ""),
		central:   e.Org(t, "kemnaker-pusat", knkv1.Organization_KIND_TRAINING_UNIT, ""),
		dki:       e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31"),
		kalbar:    e.Org(t, "disnaker-kalbar", knkv1.Organization_KIND_TRAINING_UNIT, "61"),
		inspector: e.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31"),
	}
}

// cadre registers a new cadre of the federation with key.
func (w *world) cadre(t *testing.T, key string) *knkv1.Cadre {
	t.Helper()
	w.next++
	c, err := w.Cadres.CreateCadre(testenv.Ctx(key), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
		DisplayName: fmt.Sprintf("Kader %d", w.next), ProvinceCode: "31",
		Nik: fmt.Sprintf("3171%02d150890%04d", 1+w.next/9999, 1+w.next%9999),
	}})
	if err != nil {
		t.Fatalf("create cadre: %v", err)
	}
	return c
}

func newSession(start time.Time, capacity int32, topics ...knkv1.Topic) *knkv1.Session {
	return &knkv1.Session{
		Title: "Sosialisasi Norma Ketenagakerjaan", Topics: topics, ProvinceCode: "31",
		Venue: "Gedung Disnaker DKI", Mode: knkv1.Session_MODE_IN_PERSON,
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(7 * time.Hour)), Capacity: capacity,
	}
}

func (w *world) session(t *testing.T, key string, s *knkv1.Session) *knkv1.Session {
	t.Helper()
	out, err := w.Training.CreateSession(testenv.Ctx(key), &knkv1.CreateSessionRequest{Session: s})
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	return out
}

func (w *world) enroll(t *testing.T, key string, s *knkv1.Session, c *knkv1.Cadre) {
	t.Helper()
	if _, err := w.Training.EnrollCadre(testenv.Ctx(key), &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name}); err != nil {
		t.Fatalf("enroll: %v", err)
	}
}

func fields(t *testing.T, err error) []string {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want INVALID_ARGUMENT", err)
	}
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				out = append(out, v.Field)
			}
		}
	}
	return out
}

func TestCreateSessionRejectsBadInput(t *testing.T) {
	w := setup(t)
	tests := []struct {
		name  string
		edit  func(s *knkv1.Session)
		field string
	}{
		{"no title", func(s *knkv1.Session) { s.Title = "" }, "session.title"},
		{"no topics", func(s *knkv1.Session) { s.Topics = nil }, "session.topics"},
		{"unknown topic", func(s *knkv1.Session) { s.Topics = []knkv1.Topic{k3, 9} }, "session.topics[1]"},
		{"unknown province", func(s *knkv1.Session) { s.ProvinceCode = "10" }, "session.province_code"},
		{"no mode", func(s *knkv1.Session) { s.Mode = knkv1.Session_MODE_UNSPECIFIED }, "session.mode"},
		{"in person without venue", func(s *knkv1.Session) { s.Venue = "" }, "session.venue"},
		{"no start", func(s *knkv1.Session) { s.StartTime = nil }, "session.start_time"},
		{"end before start", func(s *knkv1.Session) { s.EndTime = timestamppb.New(day.Add(-time.Hour)) }, "session.end_time"},
		{"zero capacity", func(s *knkv1.Session) { s.Capacity = 0 }, "session.capacity"},
		{"year 0001", func(s *knkv1.Session) {
			s.StartTime, s.EndTime = timestamppb.New(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)), timestamppb.New(day)
		}, "session.start_time"},
		{"before 2014", func(s *knkv1.Session) {
			s.StartTime = timestamppb.New(time.Date(2013, 12, 31, 23, 0, 0, 0, time.UTC))
		}, "session.start_time"},
		{"more than two years ahead", func(s *knkv1.Session) {
			s.StartTime, s.EndTime = timestamppb.New(w.Clock.Now().AddDate(2, 0, 2)), timestamppb.New(w.Clock.Now().AddDate(2, 0, 3))
		}, "session.start_time"},
		{"ending in year 9999", func(s *knkv1.Session) {
			s.EndTime = timestamppb.New(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
		}, "session.end_time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(day, 10, k3)
			tt.edit(s)
			_, err := w.Training.CreateSession(testenv.Ctx(w.dki), &knkv1.CreateSessionRequest{Session: s})
			if got := fields(t, err); len(got) != 1 || got[0] != tt.field {
				t.Errorf("violations %v, want [%s]", got, tt.field)
			}
		})
	}
	list, err := w.Training.ListSessions(testenv.Ctx(w.AdminKey), &knkv1.ListSessionsRequest{})
	if err != nil || len(list.Sessions) != 0 {
		t.Errorf("bad requests stored sessions: %v %v", list, err)
	}
}

func TestCreateSessionScope(t *testing.T) {
	w := setup(t)
	online := newSession(day, 10, k3)
	online.Mode, online.Venue = knkv1.Session_MODE_ONLINE, ""
	s := w.session(t, w.dki, online)
	if s.Organizer != "organizations/disnaker-dki" || s.State != knkv1.Session_STATE_SCHEDULED || s.Etag == "" {
		t.Errorf("created %v", s)
	}
	elsewhere := newSession(day, 10, k3)
	elsewhere.ProvinceCode = "61"
	_, err := w.Training.CreateSession(testenv.Ctx(w.dki), &knkv1.CreateSessionRequest{Session: elsewhere})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("provincial unit elsewhere: %v", err)
	}
	w.session(t, w.central, elsewhere)
	_, err = w.Training.CreateSession(testenv.Ctx(w.AdminKey), &knkv1.CreateSessionRequest{Session: newSession(day, 5, k3)})
	if got := fields(t, err); len(got) != 1 || got[0] != "session.organizer" {
		t.Errorf("admin without organizer: %v", got)
	}
	withOrg := newSession(day, 5, k3)
	withOrg.Organizer = "organizations/disnaker-kalbar"
	_, err = w.Training.CreateSession(testenv.Ctx(w.AdminKey), &knkv1.CreateSessionRequest{Session: withOrg})
	if got := fields(t, err); len(got) != 1 || got[0] != "session.organizer" {
		t.Errorf("admin with an organizer of another province: %v", got)
	}
	withOrg.Organizer = "organizations/disnaker-dki"
	if got := w.session(t, w.AdminKey, withOrg); got.Organizer != withOrg.Organizer {
		t.Errorf("organizer %s", got.Organizer)
	}
}

func TestCreateSessionOverRESTAndRetry(t *testing.T) {
	w := setup(t)
	body := map[string]any{
		"title": "K3 dasar", "topics": []string{"TOPIC_K3", "TOPIC_PKWT"}, "province_code": "31",
		"venue": "Jakarta", "mode": "MODE_IN_PERSON", "start_time": "2026-12-01T09:00:00+07:00",
		"end_time": "2026-12-01T16:00:00+07:00", "capacity": 25,
	}
	r := w.REST(t, http.MethodPost, "/v1/sessions?request_id=abc-1", w.dki, body)
	if r.Status != http.StatusOK || r.Body["state"] != "STATE_SCHEDULED" || r.Body["start_time"] != "2026-12-01T02:00:00Z" {
		t.Fatalf("create over REST: %d %s", r.Status, r.Raw)
	}
	again := w.REST(t, http.MethodPost, "/v1/sessions?request_id=abc-1", w.dki, body)
	if again.Body["name"] != r.Body["name"] {
		t.Errorf("retry made %v, first %v", again.Body["name"], r.Body["name"])
	}
	got := w.REST(t, http.MethodGet, "/v1/"+r.Body["name"].(string), w.inspector, nil)
	if got.Status != http.StatusOK || got.Body["title"] != "K3 dasar" {
		t.Errorf("get over REST: %d %s", got.Status, got.Raw)
	}
}

func TestListSessionsFiltersAndPages(t *testing.T) {
	w := setup(t)
	for i := range 12 {
		s := newSession(day.Add(time.Duration(i)*24*time.Hour), 10, k3)
		if i%3 == 0 {
			s.Topics = []knkv1.Topic{pkwt}
		}
		w.session(t, w.central, s)
	}
	kalbar := newSession(day, 10, wage)
	kalbar.ProvinceCode = "61"
	w.session(t, w.kalbar, kalbar)
	tests := []struct {
		name string
		req  *knkv1.ListSessionsRequest
		want int
	}{
		{"all", &knkv1.ListSessionsRequest{}, 13},
		{"province", &knkv1.ListSessionsRequest{ProvinceCode: "61"}, 1},
		{"topic", &knkv1.ListSessionsRequest{Topic: pkwt}, 4},
		{"state", &knkv1.ListSessionsRequest{State: knkv1.Session_STATE_SCHEDULED}, 13},
		{"cancelled", &knkv1.ListSessionsRequest{State: knkv1.Session_STATE_CANCELLED}, 0},
		{"window", &knkv1.ListSessionsRequest{StartAfter: timestamppb.New(day.Add(24 * time.Hour)), StartBefore: timestamppb.New(day.Add(4 * 24 * time.Hour))}, 3},
	}
	for _, tt := range tests {
		resp, err := w.Training.ListSessions(testenv.Ctx(w.inspector), tt.req)
		if err != nil || len(resp.Sessions) != tt.want {
			t.Errorf("%s: %d sessions (%v), want %d", tt.name, len(resp.GetSessions()), err, tt.want)
		}
	}
	var starts []time.Time
	token := ""
	for {
		resp, err := w.Training.ListSessions(testenv.Ctx(w.inspector), &knkv1.ListSessionsRequest{PageSize: 5, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range resp.Sessions {
			starts = append(starts, s.StartTime.AsTime())
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if len(starts) != 13 {
		t.Errorf("paged through %d sessions, want 13", len(starts))
	}
	for i := 1; i < len(starts); i++ {
		if starts[i].Before(starts[i-1]) {
			t.Errorf("not in start order at %d", i)
		}
	}
}

func TestEnrollmentRules(t *testing.T) {
	w := setup(t)
	s := w.session(t, w.dki, newSession(day, 2, k3))
	a, b, c := w.cadre(t, w.fed), w.cadre(t, w.fed), w.cadre(t, w.fed)
	other := w.cadre(t, w.otherFed)
	w.enroll(t, w.fed, s, a)
	enroll := func(key string, sess *knkv1.Session, cad *knkv1.Cadre) error {
		_, err := w.Training.EnrollCadre(testenv.Ctx(key), &knkv1.EnrollCadreRequest{Parent: sess.Name, Cadre: cad.Name, NoWaitlist: true})
		return err
	}
	if err := enroll(w.fed, s, a); status.Code(err) != codes.AlreadyExists {
		t.Errorf("enrolled twice: %v", err)
	}
	// A cadre outside the caller's scope is NOT_FOUND, as if it did not exist.
	if err := enroll(w.fed, s, other); status.Code(err) != codes.NotFound {
		t.Errorf("federation enrolling another's cadre: %v", err)
	}
	if err := enroll(w.kalbar, s, b); status.Code(err) != codes.NotFound {
		t.Errorf("unit of another province: %v", err)
	}
	w.enroll(t, w.central, s, b)
	if err := enroll(w.dki, s, c); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("full session with no_waitlist: %v", err)
	}
	clash := w.session(t, w.dki, newSession(day.Add(3*time.Hour), 5, pkwt))
	if err := enroll(w.dki, clash, a); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("overlapping session: %v", err)
	}
	if _, err := w.Cadres.WithdrawCadre(testenv.Ctx(w.fed), &knkv1.WithdrawCadreRequest{Name: c.Name, Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	if err := enroll(w.dki, clash, c); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("withdrawn cadre: %v", err)
	}
	if err := enroll(w.dki, clash, &knkv1.Cadre{Name: "cadres/01JD0000000000000000000000"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown cadre: %v", err)
	}
	if err := enroll(w.dki, clash, &knkv1.Cadre{Name: "nope"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("malformed cadre: %v", err)
	}
	if _, err := w.Training.CancelSession(testenv.Ctx(w.dki), &knkv1.CancelSessionRequest{Name: s.Name, Reason: "banjir"}); err != nil {
		t.Fatal(err)
	}
	if err := enroll(w.dki, clash, a); err != nil {
		t.Errorf("a cancelled session still holds the cadre's time: %v", err)
	}
	if err := enroll(w.dki, s, c); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("cancelled session: %v", err)
	}
	got, err := w.Training.GetSession(testenv.Ctx(w.dki), &knkv1.GetSessionRequest{Name: s.Name})
	if err != nil || got.State != knkv1.Session_STATE_CANCELLED || got.CancelReason != "banjir" || got.EnrolledCount != 2 {
		t.Errorf("after cancel: %v %v", got, err)
	}
}

func TestDeleteEnrollment(t *testing.T) {
	w := setup(t)
	s := w.session(t, w.dki, newSession(day, 1, k3))
	a, b := w.cadre(t, w.fed), w.cadre(t, w.fed)
	w.enroll(t, w.fed, s, a)
	name := s.Name + "/enrollments/" + a.Name[len("cadres/"):]
	r := w.REST(t, http.MethodDelete, "/v1/"+name, w.otherFed, nil)
	if r.Status != http.StatusNotFound {
		t.Errorf("another federation deleting: %d %s", r.Status, r.Raw)
	}
	r = w.REST(t, http.MethodDelete, "/v1/"+name, w.fed, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	w.enroll(t, w.fed, s, b) // the place is free again
	if r := w.REST(t, http.MethodDelete, "/v1/"+name, w.fed, nil); r.Status != http.StatusNotFound {
		t.Errorf("delete twice: %d %s", r.Status, r.Raw)
	}
}

func TestConcurrentEnrolmentsNeverExceedCapacity(t *testing.T) {
	w := setup(t)
	s := w.session(t, w.dki, newSession(day, 20, k3))
	cadres := make([]*knkv1.Cadre, 50)
	for i := range cadres {
		cadres[i] = w.cadre(t, w.fed)
	}
	codesSeen := make([]codes.Code, len(cadres))
	var wg sync.WaitGroup
	for i, c := range cadres {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.Training.EnrollCadre(testenv.Ctx(w.dki), &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name, NoWaitlist: true})
			codesSeen[i] = status.Code(err)
		}()
	}
	wg.Wait()
	count := map[codes.Code]int{}
	for _, c := range codesSeen {
		count[c]++
	}
	if count[codes.OK] != 20 || count[codes.FailedPrecondition] != 30 {
		t.Errorf("outcomes %v, want 20 OK and 30 FAILED_PRECONDITION", count)
	}
	got, _ := w.Training.GetSession(testenv.Ctx(w.dki), &knkv1.GetSessionRequest{Name: s.Name})
	list, _ := w.Training.ListEnrollments(testenv.Ctx(w.dki), &knkv1.ListEnrollmentsRequest{Parent: s.Name, PageSize: 100})
	if got.GetEnrolledCount() != 20 || len(list.GetEnrollments()) != 20 {
		t.Errorf("enrolled_count %d, %d enrolments listed; want 20", got.GetEnrolledCount(), len(list.GetEnrollments()))
	}
}

func TestRecordResultsRules(t *testing.T) {
	w := setup(t)
	s := w.session(t, w.dki, newSession(day, 5, k3, pkwt))
	a, outsider := w.cadre(t, w.fed), w.cadre(t, w.fed)
	w.enroll(t, w.fed, s, a)
	record := func(results ...*knkv1.SessionResult) error {
		_, err := w.Training.RecordResults(testenv.Ctx(w.dki), &knkv1.RecordResultsRequest{Name: s.Name, Results: results})
		return err
	}
	good := &knkv1.SessionResult{Cadre: a.Name, Attended: true, Scores: map[string]int32{"TOPIC_K3": 80}}
	tests := []struct {
		name   string
		result *knkv1.SessionResult
		field  string
	}{
		{"not enrolled", &knkv1.SessionResult{Cadre: outsider.Name, Attended: true}, "results[1].cadre"},
		{"topic not in session", &knkv1.SessionResult{Cadre: a.Name, Scores: map[string]int32{"TOPIC_WAGE_SCALE": 90}}, "results[1].scores[TOPIC_WAGE_SCALE]"},
		{"unknown topic", &knkv1.SessionResult{Cadre: a.Name, Scores: map[string]int32{"K3": 90}}, "results[1].scores[K3]"},
		{"score over 100", &knkv1.SessionResult{Cadre: a.Name, Scores: map[string]int32{"TOPIC_PKWT": 101}}, "results[1].scores[TOPIC_PKWT]"},
		{"negative score", &knkv1.SessionResult{Cadre: a.Name, Scores: map[string]int32{"TOPIC_PKWT": -1}}, "results[1].scores[TOPIC_PKWT]"},
	}
	for _, tt := range tests {
		if got := fields(t, record(good, tt.result)); len(got) != 1 || got[0] != tt.field {
			t.Errorf("%s: violations %v, want [%s]", tt.name, got, tt.field)
		}
	}
	list, _ := w.Training.ListEnrollments(testenv.Ctx(w.dki), &knkv1.ListEnrollmentsRequest{Parent: s.Name})
	if e := list.GetEnrollments()[0]; e.Attended || len(e.Scores) != 0 {
		t.Errorf("a refused call wrote results: %v", e)
	}
	if err := record(good); err != nil {
		t.Fatal(err)
	}
	r := w.REST(t, http.MethodPost, "/v1/"+s.Name+":recordResults", w.dki,
		`{"results": [{"cadre": "`+a.Name+`", "attended": true, "scores": {"TOPIC_K3": 65, "TOPIC_PKWT": 90}}]}`)
	if r.Status != http.StatusOK {
		t.Fatalf("record over REST: %d %s", r.Status, r.Raw)
	}
	list, _ = w.Training.ListEnrollments(testenv.Ctx(w.dki), &knkv1.ListEnrollmentsRequest{Parent: s.Name})
	if e := list.GetEnrollments()[0]; !e.Attended || e.Scores["TOPIC_K3"] != 65 || e.Scores["TOPIC_PKWT"] != 90 {
		t.Errorf("last write does not win: %v", e)
	}
	if _, err := w.Training.CompleteSession(testenv.Ctx(w.dki), &knkv1.CompleteSessionRequest{Name: s.Name}); err != nil {
		t.Fatal(err)
	}
	if err := record(good); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("record after completion: %v", err)
	}
	got, _ := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: a.Name})
	if len(got.PassedTopics) != 1 || got.PassedTopics[0] != pkwt {
		t.Errorf("passed topics %v, want [TOPIC_PKWT] (K3 65 is below the pass mark)", got.PassedTopics)
	}
	if _, err := w.Training.CompleteSession(testenv.Ctx(w.dki), &knkv1.CompleteSessionRequest{Name: s.Name}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("complete twice: %v", err)
	}
}

func TestUpdateSession(t *testing.T) {
	w := setup(t)
	s := w.session(t, w.dki, newSession(day, 5, k3))
	a := w.cadre(t, w.fed)
	w.enroll(t, w.fed, s, a)
	upd, err := w.Training.UpdateSession(testenv.Ctx(w.dki), &knkv1.UpdateSessionRequest{
		Session:    &knkv1.Session{Name: s.Name, Etag: s.Etag, Title: "K3 lanjutan", Capacity: 1},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title", "capacity"}},
	})
	if err != nil || upd.Title != "K3 lanjutan" || upd.Capacity != 1 || upd.Venue != s.Venue {
		t.Fatalf("update: %v %v", upd, err)
	}
	tests := []struct {
		name string
		in   *knkv1.Session
		mask []string
		code codes.Code
	}{
		{"stale etag", &knkv1.Session{Name: s.Name, Etag: s.Etag, Title: "x"}, []string{"title"}, codes.Aborted},
		{"capacity below enrolled", &knkv1.Session{Name: s.Name, Capacity: 0}, []string{"capacity"}, codes.InvalidArgument},
		{"not updatable", &knkv1.Session{Name: s.Name, State: knkv1.Session_STATE_COMPLETED}, []string{"state"}, codes.InvalidArgument},
		{"no mask", &knkv1.Session{Name: s.Name, Title: "x"}, nil, codes.InvalidArgument},
		{"end before start", &knkv1.Session{Name: s.Name, EndTime: timestamppb.New(day.Add(-time.Hour))}, []string{"end_time"}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		_, err := w.Training.UpdateSession(testenv.Ctx(w.dki), &knkv1.UpdateSessionRequest{Session: tt.in, UpdateMask: &fieldmaskpb.FieldMask{Paths: tt.mask}})
		if status.Code(err) != tt.code {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.code)
		}
	}
	b := w.cadre(t, w.fed)
	other := w.session(t, w.dki, newSession(day.Add(24*time.Hour), 5, pkwt))
	w.enroll(t, w.fed, other, a)
	w.enroll(t, w.fed, other, b)
	_, err = w.Training.UpdateSession(testenv.Ctx(w.dki), &knkv1.UpdateSessionRequest{
		Session:    &knkv1.Session{Name: other.Name, StartTime: s.StartTime, EndTime: s.EndTime},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"start_time", "end_time"}},
	})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("moving a session onto an enrolled cadre's other session: %v", err)
	}
	if _, err := w.Training.CancelSession(testenv.Ctx(w.dki), &knkv1.CancelSessionRequest{Name: s.Name}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("cancel without reason: %v", err)
	}
	if _, err := w.Training.CancelSession(testenv.Ctx(w.dki), &knkv1.CancelSessionRequest{Name: s.Name, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	_, err = w.Training.UpdateSession(testenv.Ctx(w.dki), &knkv1.UpdateSessionRequest{
		Session: &knkv1.Session{Name: s.Name, Title: "y"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("update cancelled session: %v", err)
	}
}

// TestRoles calls every TrainingService method with every role on a DKI session.
func TestRoles(t *testing.T) {
	w := setup(t)
	type call func(key string, s *knkv1.Session, c *knkv1.Cadre) error
	methods := map[string]call{
		"CreateSession": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			in := newSession(day.Add(30*24*time.Hour), 5, k3)
			if key == w.AdminKey {
				in.Organizer = "organizations/disnaker-dki"
			}
			_, err := w.Training.CreateSession(testenv.Ctx(key), &knkv1.CreateSessionRequest{Session: in})
			return err
		},
		"GetSession": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			_, err := w.Training.GetSession(testenv.Ctx(key), &knkv1.GetSessionRequest{Name: s.Name})
			return err
		},
		"ListSessions": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			_, err := w.Training.ListSessions(testenv.Ctx(key), &knkv1.ListSessionsRequest{})
			return err
		},
		"UpdateSession": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			_, err := w.Training.UpdateSession(testenv.Ctx(key), &knkv1.UpdateSessionRequest{
				Session: &knkv1.Session{Name: s.Name, Title: "baru"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}}})
			return err
		},
		"CancelSession": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			_, err := w.Training.CancelSession(testenv.Ctx(key), &knkv1.CancelSessionRequest{Name: s.Name, Reason: "x"})
			return err
		},
		"EnrollCadre": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			_, err := w.Training.EnrollCadre(testenv.Ctx(key), &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name})
			return err
		},
		"ListEnrollments": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			_, err := w.Training.ListEnrollments(testenv.Ctx(key), &knkv1.ListEnrollmentsRequest{Parent: s.Name})
			return err
		},
		"DeleteEnrollment": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			w.enroll(t, w.AdminKey, s, c)
			_, err := w.Training.DeleteEnrollment(testenv.Ctx(key), &knkv1.DeleteEnrollmentRequest{Name: s.Name + "/enrollments/" + c.Name[len("cadres/"):]})
			return err
		},
		"RecordResults": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			w.enroll(t, w.AdminKey, s, c)
			_, err := w.Training.RecordResults(testenv.Ctx(key), &knkv1.RecordResultsRequest{Name: s.Name,
				Results: []*knkv1.SessionResult{{Cadre: c.Name, Attended: true, Scores: map[string]int32{"TOPIC_K3": 90}}}})
			return err
		},
		"CompleteSession": func(key string, s *knkv1.Session, c *knkv1.Cadre) error {
			_, err := w.Training.CompleteSession(testenv.Ctx(key), &knkv1.CompleteSessionRequest{Name: s.Name})
			return err
		},
	}
	ok, denied, unauth := codes.OK, codes.PermissionDenied, codes.Unauthenticated
	all := func(c codes.Code) map[string]codes.Code {
		m := map[string]codes.Code{}
		for name := range methods {
			m[name] = c
		}
		return m
	}
	readOnly := func(write codes.Code) map[string]codes.Code {
		m := all(write)
		m["GetSession"], m["ListSessions"], m["ListEnrollments"] = ok, ok, ok
		return m
	}
	federation := readOnly(denied)
	federation["EnrollCadre"], federation["DeleteEnrollment"] = ok, ok
	otherFederation := readOnly(denied)
	want := map[string]map[string]codes.Code{
		"admin": all(ok), "central unit": all(ok), "unit in province": all(ok),
		"unit elsewhere": readOnly(denied), "own federation": federation, "other federation": otherFederation,
		"inspector": readOnly(denied), "no key": all(unauth),
	}
	want["unit elsewhere"]["CreateSession"] = denied
	// The cadre (of province 31, of the own federation) is outside these callers'
	// scope: NOT_FOUND, as if it did not exist.
	want["unit elsewhere"]["EnrollCadre"] = codes.NotFound
	want["other federation"]["EnrollCadre"], want["other federation"]["DeleteEnrollment"] = codes.NotFound, codes.NotFound
	keys := map[string]string{
		"admin": w.AdminKey, "central unit": w.central, "unit in province": w.dki, "unit elsewhere": w.kalbar,
		"own federation": w.fed, "other federation": w.otherFed, "inspector": w.inspector, "no key": "",
	}
	start := day
	for role, key := range keys {
		for name, m := range methods {
			t.Run(role+"/"+name, func(t *testing.T) {
				start = start.Add(24 * time.Hour) // a fresh day: no overlaps between cases
				s := w.session(t, w.dki, newSession(start, 5, k3))
				c := w.cadre(t, w.fed)
				if got := status.Code(m(key, s, c)); got != want[role][name] {
					t.Errorf("got %v, want %v", got, want[role][name])
				}
			})
		}
	}
}

// TestWholeProgramme runs two sessions covering the four topics for 30 cadres with
// mixed attendance and scores; afterwards exactly the expected cadres hold all four.
func TestWholeProgramme(t *testing.T) {
	w := setup(t)
	first := w.session(t, w.dki, newSession(day, 30, k3, pkwt))
	second := w.session(t, w.central, newSession(day.Add(7*24*time.Hour), 30, wage, social))
	var cadres []*knkv1.Cadre
	for range 30 {
		c := w.cadre(t, w.fed)
		cadres = append(cadres, c)
		w.enroll(t, w.fed, first, c)
		w.enroll(t, w.fed, second, c)
	}
	// Cadre i: absent from the first session if i%5 == 0; K3 69 if i%7 == 0;
	// social security 70 (the pass mark, a pass) if i%2 == 0, else 95.
	var r1, r2 []*knkv1.SessionResult
	wantAll := map[string]bool{}
	for i, c := range cadres {
		k3Score := int32(85)
		if i%7 == 0 {
			k3Score = 69
		}
		socialScore := int32(95)
		if i%2 == 0 {
			socialScore = 70
		}
		r1 = append(r1, &knkv1.SessionResult{Cadre: c.Name, Attended: i%5 != 0, Scores: map[string]int32{"TOPIC_K3": k3Score, "TOPIC_PKWT": 75}})
		r2 = append(r2, &knkv1.SessionResult{Cadre: c.Name, Attended: true, Scores: map[string]int32{"TOPIC_WAGE_SCALE": 100, "TOPIC_SOCIAL_SECURITY": socialScore}})
		wantAll[c.Name] = i%5 != 0 && i%7 != 0
	}
	for _, step := range []struct {
		s       *knkv1.Session
		key     string
		results []*knkv1.SessionResult
	}{{first, w.dki, r1}, {second, w.central, r2}} {
		if _, err := w.Training.RecordResults(testenv.Ctx(step.key), &knkv1.RecordResultsRequest{Name: step.s.Name, Results: step.results}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Training.CompleteSession(testenv.Ctx(step.key), &knkv1.CompleteSessionRequest{Name: step.s.Name}); err != nil {
			t.Fatal(err)
		}
	}
	holders := 0
	for _, c := range cadres {
		got, err := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: c.Name})
		if err != nil {
			t.Fatal(err)
		}
		hasAll := len(got.PassedTopics) == 4
		if hasAll != wantAll[c.Name] {
			t.Errorf("%s passed %v; want all four: %v", c.Name, got.PassedTopics, wantAll[c.Name])
		}
		if hasAll {
			holders++
		}
	}
	if holders != 20 {
		t.Errorf("%d cadres hold all four topics, want 20", holders)
	}
	k3Passers, err := w.Cadres.ListCadres(testenv.Ctx(w.AdminKey), &knkv1.ListCadresRequest{TopicPassed: k3, PageSize: 100})
	if err != nil || len(k3Passers.Cadres) != 20 {
		t.Errorf("topic_passed=TOPIC_K3 lists %d cadres (%v), want 20", len(k3Passers.GetCadres()), err)
	}
	wagePassers, err := w.Cadres.ListCadres(testenv.Ctx(w.AdminKey), &knkv1.ListCadresRequest{TopicPassed: wage, PageSize: 100})
	if err != nil || len(wagePassers.Cadres) != 30 {
		t.Errorf("topic_passed=TOPIC_WAGE_SCALE lists %d cadres (%v), want 30", len(wagePassers.GetCadres()), err)
	}
	r := w.REST(t, http.MethodGet, "/v1/cadres?topic_passed=TOPIC_PKWT&page_size=100", w.AdminKey, nil)
	if r.Status != http.StatusOK || len(r.Body["cadres"].([]any)) != 24 {
		t.Errorf("REST topic_passed=TOPIC_PKWT: %d, %d cadres; want 24", r.Status, len(r.Body["cadres"].([]any)))
	}
}
