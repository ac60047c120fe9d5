package training_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// A cadre who failed K3 in three completed sessions is refused a fourth,
// naming the topic; one who passed on a retake is credited.
func TestRetakesAreLimited(t *testing.T) {
	w := setup(t)
	failing, retaker := w.cadre(t, w.fed), w.cadre(t, w.fed)
	attempt := func(week int, results ...*knkv1.SessionResult) *knkv1.Session {
		s := w.session(t, w.dki, newSession(day.AddDate(0, 0, 7*week), 10, k3))
		for _, r := range results {
			w.enroll(t, w.fed, s, &knkv1.Cadre{Name: r.Cadre})
		}
		if _, err := w.Training.RecordResults(testenv.Ctx(w.dki), &knkv1.RecordResultsRequest{Name: s.Name, Results: results}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Training.CompleteSession(testenv.Ctx(w.dki), &knkv1.CompleteSessionRequest{Name: s.Name}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	fail := func(c *knkv1.Cadre) *knkv1.SessionResult {
		return &knkv1.SessionResult{Cadre: c.Name, Attended: true, Scores: map[string]int32{"TOPIC_K3": 50}}
	}
	attempt(0, fail(failing), fail(retaker))
	attempt(1, fail(failing), &knkv1.SessionResult{Cadre: retaker.Name, Attended: true, Scores: map[string]int32{"TOPIC_K3": 85}})
	attempt(2, fail(failing))
	got, err := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: retaker.Name})
	if err != nil || !slices.Equal(got.GetPassedTopics(), []knkv1.Topic{k3}) {
		t.Errorf("retaker passed %v (%v), want K3", got.GetPassedTopics(), err)
	}
	fourth := w.session(t, w.dki, newSession(day.AddDate(0, 0, 21), 10, k3))
	_, err = w.Training.EnrollCadre(testenv.Ctx(w.fed), &knkv1.EnrollCadreRequest{Parent: fourth.Name, Cadre: failing.Name})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "TOPIC_K3") {
		t.Errorf("fourth attempt: %v, want FAILED_PRECONDITION naming TOPIC_K3", err)
	}
	other := w.session(t, w.dki, newSession(day.AddDate(0, 0, 28), 10, pkwt))
	w.enroll(t, w.fed, other, failing) // another topic starts its own count
}
