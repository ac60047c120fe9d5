package training_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// listAll returns every enrolment of session keyed by cadre name.
func listAll(t *testing.T, c knkv1.TrainingServiceClient, key, session string) map[string]*knkv1.Enrollment {
	t.Helper()
	list, err := c.ListEnrollments(testenv.Ctx(key), &knkv1.ListEnrollmentsRequest{Parent: session, PageSize: 100})
	if err != nil {
		t.Fatalf("list enrollments: %v", err)
	}
	out := map[string]*knkv1.Enrollment{}
	for _, e := range list.GetEnrollments() {
		out[e.GetCadre()] = e
	}
	return out
}

// Sixty cadres enrol at once through two knkd replicas on one store into a
// session of 20 places: 20 are enrolled, 40 waitlisted in the order they came;
// five enrolments deleted at once promote exactly the next five.
func TestWaitlistFillsInOrderAcrossReplicas(t *testing.T) {
	w := setup(t)
	other := testenv.StartAt(t, w.DBPath)
	replicas := []knkv1.TrainingServiceClient{w.Training, other.Training}
	s := w.session(t, w.dki, newSession(day, 20, k3))
	cadres := make([]*knkv1.Cadre, 60)
	for i := range cadres {
		cadres[i] = w.cadre(t, w.fed)
	}
	got := make([]*knkv1.Enrollment, len(cadres))
	var wg sync.WaitGroup
	for i, c := range cadres {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := replicas[i%2].EnrollCadre(testenv.Ctx(w.fed), &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name})
			if err != nil {
				t.Errorf("enrol %d: %v", i, err)
			}
			got[i] = e
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	byPos := map[int32]string{} // waitlist position at enrolment -> cadre
	enrolled := 0
	for _, e := range got {
		switch e.GetState() {
		case knkv1.Enrollment_STATE_ENROLLED:
			enrolled++
			if e.GetWaitlistPosition() != 0 {
				t.Errorf("enrolled %s shows waitlist position %d", e.GetCadre(), e.GetWaitlistPosition())
			}
		case knkv1.Enrollment_STATE_WAITLISTED:
			if prev, dup := byPos[e.GetWaitlistPosition()]; dup {
				t.Errorf("position %d given to %s and %s", e.GetWaitlistPosition(), prev, e.GetCadre())
			}
			byPos[e.GetWaitlistPosition()] = e.GetCadre()
		default:
			t.Errorf("%s: state %v", e.GetCadre(), e.GetState())
		}
	}
	if enrolled != 20 || len(byPos) != 40 {
		t.Fatalf("%d enrolled, %d waitlisted; want 20 and 40", enrolled, len(byPos))
	}
	for pos := int32(1); pos <= 40; pos++ {
		if _, ok := byPos[pos]; !ok {
			t.Fatalf("no cadre at waitlist position %d: %v", pos, byPos)
		}
	}
	sess, _ := w.Training.GetSession(testenv.Ctx(w.dki), &knkv1.GetSessionRequest{Name: s.Name})
	if sess.GetEnrolledCount() != 20 {
		t.Errorf("enrolled_count %d, want 20", sess.GetEnrolledCount())
	}
	listed := listAll(t, w.Training, w.dki, s.Name)
	for pos, c := range byPos {
		if e := listed[c]; e.GetState() != knkv1.Enrollment_STATE_WAITLISTED || e.GetWaitlistPosition() != pos {
			t.Errorf("%s listed as %v position %d; enrolled at position %d", c, e.GetState(), e.GetWaitlistPosition(), pos)
		}
	}

	// Delete five enrolments at once, through both replicas.
	var gone []string
	for _, e := range got {
		if e.GetState() == knkv1.Enrollment_STATE_ENROLLED && len(gone) < 5 {
			gone = append(gone, e.GetName())
		}
	}
	for i, name := range gone {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := replicas[i%2].DeleteEnrollment(testenv.Ctx(w.dki), &knkv1.DeleteEnrollmentRequest{Name: name}); err != nil {
				t.Errorf("delete %s: %v", name, err)
			}
		}()
	}
	wg.Wait()
	listed = listAll(t, other.Training, w.dki, s.Name)
	if len(listed) != 55 {
		t.Errorf("%d enrolments listed, want 55", len(listed))
	}
	for pos, c := range byPos {
		e := listed[c]
		switch {
		case pos <= 5 && (e.GetState() != knkv1.Enrollment_STATE_ENROLLED || e.GetWaitlistPosition() != 0):
			t.Errorf("waitlisted #%d %s is %v position %d; want promoted", pos, c, e.GetState(), e.GetWaitlistPosition())
		case pos > 5 && (e.GetState() != knkv1.Enrollment_STATE_WAITLISTED || e.GetWaitlistPosition() != pos-5):
			t.Errorf("waitlisted #%d %s is %v position %d; want waitlisted at %d", pos, c, e.GetState(), e.GetWaitlistPosition(), pos-5)
		}
	}
	sess, _ = w.Training.GetSession(testenv.Ctx(w.dki), &knkv1.GetSessionRequest{Name: s.Name})
	if sess.GetEnrolledCount() != 20 {
		t.Errorf("enrolled_count %d after promotions, want 20", sess.GetEnrolledCount())
	}
	events, err := w.Events.ListEvents(testenv.Ctx(w.AdminKey), &knkv1.ListEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var promoted []string
	for _, ev := range events.GetEvents() {
		if ev.GetType() == "enrollment.promoted" {
			promoted = append(promoted, ev.GetResource())
		}
	}
	var want []string
	for pos := int32(1); pos <= 5; pos++ {
		want = append(want, s.Name+"/enrollments/"+byPos[pos][len("cadres/"):])
	}
	slices.Sort(promoted)
	slices.Sort(want)
	if !slices.Equal(promoted, want) {
		t.Errorf("enrollment.promoted events for %v, want %v", promoted, want)
	}
}

// A waitlisted cadre does not hold its time slot; a cadre busy elsewhere at
// promotion time is passed over with a reason, and promoted once free.
func TestWaitlistRules(t *testing.T) {
	w := setup(t)
	a := w.session(t, w.dki, newSession(day, 1, k3))
	b := w.session(t, w.dki, newSession(day.Add(time.Hour), 5, pkwt)) // overlaps a
	first, busy, next, late := w.cadre(t, w.fed), w.cadre(t, w.fed), w.cadre(t, w.fed), w.cadre(t, w.fed)
	w.enroll(t, w.fed, a, first)

	_, err := w.Training.EnrollCadre(testenv.Ctx(w.fed), &knkv1.EnrollCadreRequest{Parent: a.Name, Cadre: late.Name, NoWaitlist: true})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("no_waitlist into a full session: %v, want FAILED_PRECONDITION", err)
	}
	r := w.REST(t, http.MethodPost, "/v1/"+a.Name+"/enrollments", w.fed, map[string]any{"cadre": busy.Name})
	if r.Status != http.StatusOK || r.Body["state"] != "STATE_WAITLISTED" || r.Body["waitlist_position"] != float64(1) {
		t.Fatalf("enrol into a full session over REST: %d %s", r.Status, r.Raw)
	}
	if _, err := w.Training.EnrollCadre(testenv.Ctx(w.fed), &knkv1.EnrollCadreRequest{Parent: a.Name, Cadre: busy.Name}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("waitlisted twice: %v, want ALREADY_EXISTS", err)
	}
	w.enroll(t, w.fed, b, busy) // the waitlist does not hold the slot
	w.enroll(t, w.fed, a, next)
	_, err = w.Training.RecordResults(testenv.Ctx(w.dki), &knkv1.RecordResultsRequest{Name: a.Name,
		Results: []*knkv1.SessionResult{{Cadre: next.Name, Attended: true}}})
	if got := fields(t, err); !slices.Equal(got, []string{"results[0].cadre"}) {
		t.Errorf("results for a waitlisted cadre: fields %v", got)
	}

	// first leaves: busy is passed over (enrolled in b at that time), next promoted.
	if _, err := w.Training.DeleteEnrollment(testenv.Ctx(w.fed), &knkv1.DeleteEnrollmentRequest{Name: a.Name + "/enrollments/" + first.Name[len("cadres/"):]}); err != nil {
		t.Fatal(err)
	}
	list := listAll(t, w.Training, w.dki, a.Name)
	if e := list[next.Name]; e.GetState() != knkv1.Enrollment_STATE_ENROLLED {
		t.Errorf("next is %v, want promoted", e.GetState())
	}
	if e := list[busy.Name]; e.GetState() != knkv1.Enrollment_STATE_WAITLISTED || e.GetWaitlistPosition() != 1 || e.GetWaitlistNote() == "" {
		t.Errorf("busy is %v position %d note %q; want passed over with a reason", e.GetState(), e.GetWaitlistPosition(), e.GetWaitlistNote())
	}

	// busy leaves b; raising a's capacity promotes busy.
	if _, err := w.Training.DeleteEnrollment(testenv.Ctx(w.fed), &knkv1.DeleteEnrollmentRequest{Name: b.Name + "/enrollments/" + busy.Name[len("cadres/"):]}); err != nil {
		t.Fatal(err)
	}
	a.Capacity = 2
	got, err := w.Training.UpdateSession(testenv.Ctx(w.dki), &knkv1.UpdateSessionRequest{Session: a,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"capacity"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetEnrolledCount() != 2 {
		t.Errorf("enrolled_count %d after raising capacity, want 2", got.GetEnrolledCount())
	}
	if e := listAll(t, w.Training, w.dki, a.Name)[busy.Name]; e.GetState() != knkv1.Enrollment_STATE_ENROLLED || e.GetWaitlistNote() != "" {
		t.Errorf("busy is %v note %q after capacity raised, want enrolled", e.GetState(), e.GetWaitlistNote())
	}
}
