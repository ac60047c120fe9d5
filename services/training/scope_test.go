package training_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// The unit-32 scenario of issue 10: a provincial unit (Jawa Barat, 32) cannot
// read a province-31 cadre, so it may not enrol it in its own session either,
// nor score or certify it; the refusal is the cadre's NOT_FOUND. The cadre's
// federation may enrol it into that session (of any province), and then the
// unit running the session records its results.
func TestUnitEnrolsOnlyCadresOfItsProvince(t *testing.T) {
	t.Parallel()
	w := setup(t)
	jabar := w.Org(t, "disnaker-jabar", knkv1.Organization_KIND_TRAINING_UNIT, "32")
	in31 := w.cadre(t, w.fed) // workplace in DKI Jakarta (31)
	spec := newSession(day, 10, k3, pkwt, wage, social)
	spec.ProvinceCode = "32"
	s := w.session(t, jabar, spec)

	_, err := w.Training.EnrollCadre(testenv.Ctx(jabar), &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: in31.Name})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unit 32 enrolling a province-31 cadre: %v, want NOT_FOUND", err)
	}
	unknown := "cadres/01JD0000000000000000000000"
	_, err2 := w.Training.EnrollCadre(testenv.Ctx(jabar), &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: unknown})
	if msg := status.Convert(err).Message(); status.Convert(err2).Message() != "cadres/01JD0000000000000000000000 not found" ||
		msg != in31.Name+" not found" {
		t.Errorf("the refusal differs from a missing cadre's: %q vs %q", msg, status.Convert(err2).Message())
	}
	all100 := map[string]int32{"TOPIC_K3": 100, "TOPIC_PKWT": 100, "TOPIC_WAGE_SCALE": 100, "TOPIC_SOCIAL_SECURITY": 100}
	_, err = w.Training.RecordResults(testenv.Ctx(jabar), &knkv1.RecordResultsRequest{Name: s.Name,
		Results: []*knkv1.SessionResult{{Cadre: in31.Name, Attended: true, Scores: all100}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("scores for a cadre that is not enrolled: %v", err)
	}
	if _, err := w.Training.CompleteSession(testenv.Ctx(jabar), &knkv1.CompleteSessionRequest{Name: s.Name}); err != nil {
		t.Fatal(err)
	}
	c, err := w.Cadres.GetCadre(testenv.Ctx(w.AdminKey), &knkv1.GetCadreRequest{Name: in31.Name})
	if err != nil || len(c.PassedTopics) != 0 {
		t.Errorf("the cadre was credited: %v %v", c, err)
	}
	_, err = w.Certs.IssueCertificate(testenv.Ctx(jabar), &knkv1.IssueCertificateRequest{Cadre: in31.Name})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unit 32 certifying a province-31 cadre: %v", err)
	}
	if _, err := w.Training.EnrollCadre(testenv.Ctx(jabar), &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: in31.Name}); status.Code(err) != codes.NotFound {
		t.Errorf("after completion: %v", err) // scope is checked before the session's state
	}

	// The way that is allowed: the federation enrols its own cadre into a session
	// of any province, and the unit running it records the results.
	spec.StartTime, spec.EndTime = timestampAt(day.Add(48*time.Hour)), timestampAt(day.Add(55*time.Hour))
	s2 := w.session(t, jabar, spec)
	w.enroll(t, w.fed, s2, in31)
	if _, err := w.Training.RecordResults(testenv.Ctx(jabar), &knkv1.RecordResultsRequest{Name: s2.Name,
		Results: []*knkv1.SessionResult{{Cadre: in31.Name, Attended: true, Scores: all100}}}); err != nil {
		t.Errorf("the unit recording results in its own session: %v", err)
	}
	list, err := w.Training.ListEnrollments(testenv.Ctx(jabar), &knkv1.ListEnrollmentsRequest{Parent: s2.Name})
	if err != nil || len(list.Enrollments) != 1 || list.Enrollments[0].Scores["TOPIC_K3"] != 100 {
		t.Errorf("the unit lists its own session's enrolments: %v %v", list, err)
	}
	// Its own session does not widen its view of the person.
	if _, err := w.Cadres.GetCadre(testenv.Ctx(jabar), &knkv1.GetCadreRequest{Name: in31.Name}); status.Code(err) != codes.NotFound {
		t.Errorf("unit 32 reads the province-31 cadre: %v", err)
	}
}

// Enrolment lists follow scope: a federation sees its own cadres' rows only, a
// provincial unit those of its province's cadres in another unit's session, an
// inspectorate those of its province.
func TestEnrollmentListsFollowScope(t *testing.T) {
	t.Parallel()
	w := setup(t)
	jabar := w.Org(t, "disnaker-jabar", knkv1.Organization_KIND_TRAINING_UNIT, "32")
	ours, theirs := w.cadre(t, w.fed), w.cadre(t, w.otherFed)
	spec := newSession(day, 10, k3)
	s := w.session(t, w.central, spec) // the central unit's session in 31
	w.enroll(t, w.fed, s, ours)
	w.enroll(t, w.otherFed, s, theirs)
	for _, tc := range []struct {
		who, key string
		want     []string
	}{
		{"admin", w.AdminKey, []string{ours.Name, theirs.Name}},
		{"central unit (runs it)", w.central, []string{ours.Name, theirs.Name}},
		{"ksbsi", w.fed, []string{ours.Name}},
		{"kspsi", w.otherFed, []string{theirs.Name}},
		{"unit 31 (its province's cadres)", w.dki, []string{ours.Name, theirs.Name}},
		{"unit 32", jabar, nil},
		{"inspectorate 31", w.inspector, []string{ours.Name, theirs.Name}},
	} {
		list, err := w.Training.ListEnrollments(testenv.Ctx(tc.key), &knkv1.ListEnrollmentsRequest{Parent: s.Name})
		if err != nil {
			t.Errorf("%s: %v", tc.who, err)
			continue
		}
		var got []string
		for _, e := range list.Enrollments {
			got = append(got, e.Cadre)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && !sameSet(got, tc.want)) {
			t.Errorf("%s lists %v, want %v", tc.who, got, tc.want)
		}
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func timestampAt(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
