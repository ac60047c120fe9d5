package training_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// passed returns the topics credited to cadre c.
func (w *world) passed(t *testing.T, c *knkv1.Cadre) []knkv1.Topic {
	t.Helper()
	got, err := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	return got.GetPassedTopics()
}

// A cadre present on 2 of 3 days is not credited at the default 80% and is at
// 66% (a replica started with --attendance-threshold 66 on the same store).
func TestDailyAttendanceThreshold(t *testing.T) {
	w := setup(t)
	lenient := testenv.StartWith(t, w.DBPath, func(c *testenv.Config) { c.AttendanceThreshold = 66 })
	threeDays := func(start time.Time) *knkv1.Session {
		s := newSession(start, 10, k3)
		s.EndTime = timestamppb.New(start.Add(48*time.Hour + 7*time.Hour))
		return w.session(t, w.dki, s)
	}
	strict, easy := threeDays(day), threeDays(day.AddDate(0, 0, 7))
	if want := []string{"2026-12-01", "2026-12-02", "2026-12-03"}; !slices.Equal(strict.GetDays(), want) {
		t.Fatalf("days %v, want %v", strict.GetDays(), want)
	}
	twoOfThree, everyDay, again := w.cadre(t, w.fed), w.cadre(t, w.fed), w.cadre(t, w.fed)
	w.enroll(t, w.fed, strict, twoOfThree)
	w.enroll(t, w.fed, strict, everyDay)
	w.enroll(t, w.fed, easy, again)
	score := map[string]int32{"TOPIC_K3": 90}

	_, err := w.Training.RecordResults(testenv.Ctx(w.dki), &knkv1.RecordResultsRequest{Name: strict.Name,
		Results: []*knkv1.SessionResult{{Cadre: twoOfThree.Name, DaysPresent: []string{"2026-12-01", "2026-12-05"}}}})
	if got := fields(t, err); !slices.Equal(got, []string{"results[0].days_present[1]"}) {
		t.Errorf("a day outside the session: fields %v", got)
	}
	resp, err := w.Training.RecordResults(testenv.Ctx(w.dki), &knkv1.RecordResultsRequest{Name: strict.Name,
		Results: []*knkv1.SessionResult{
			{Cadre: twoOfThree.Name, DaysPresent: []string{"2026-12-01", "2026-12-03"}, Scores: score},
			{Cadre: everyDay.Name, Attended: true, Scores: score},
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range resp.GetEnrollments() {
		want, attended := []string{"2026-12-01", "2026-12-03"}, false
		if e.GetCadre() == everyDay.Name {
			want, attended = strict.GetDays(), true
		}
		if !slices.Equal(e.GetDaysPresent(), want) || e.GetAttended() != attended {
			t.Errorf("%s: days_present %v attended %v; want %v %v", e.GetCadre(), e.GetDaysPresent(), e.GetAttended(), want, attended)
		}
	}
	if _, err := w.Training.CompleteSession(testenv.Ctx(w.dki), &knkv1.CompleteSessionRequest{Name: strict.Name}); err != nil {
		t.Fatal(err)
	}
	if got := w.passed(t, twoOfThree); len(got) != 0 {
		t.Errorf("2 of 3 days at 80%%: credited %v", got)
	}
	if got := w.passed(t, everyDay); !slices.Equal(got, []knkv1.Topic{k3}) {
		t.Errorf("every day (attended: true): credited %v, want K3", got)
	}

	if _, err := lenient.Training.RecordResults(testenv.Ctx(w.dki), &knkv1.RecordResultsRequest{Name: easy.Name,
		Results: []*knkv1.SessionResult{{Cadre: again.Name, DaysPresent: []string{"2026-12-08", "2026-12-10"}, Scores: score}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lenient.Training.CompleteSession(testenv.Ctx(w.dki), &knkv1.CompleteSessionRequest{Name: easy.Name}); err != nil {
		t.Fatal(err)
	}
	if got := w.passed(t, again); !slices.Equal(got, []knkv1.Topic{k3}) {
		t.Errorf("2 of 3 days at 66%%: credited %v, want K3", got)
	}
}

// A session's days follow its province's legal time: the same instants make one
// day in Papua (WIT, UTC+9) and two in Jakarta (WIB, UTC+7); a session ending at
// local midnight does not reach the next day.
func TestSessionDaysInProvinceTime(t *testing.T) {
	w := setup(t)
	at := func(province string, start, end time.Time) []string {
		s := newSession(start, 5, k3)
		s.ProvinceCode, s.EndTime = province, timestamppb.New(end)
		return w.session(t, w.central, s).GetDays()
	}
	start := time.Date(2026, 12, 1, 15, 30, 0, 0, time.UTC) // 00:30 WIT on the 2nd, 22:30 WIB on the 1st
	end := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)    // 23:00 WIT, 21:00 WIB on the 2nd
	if got := at("94", start, end); !slices.Equal(got, []string{"2026-12-02"}) {
		t.Errorf("Papua: days %v, want [2026-12-02]", got)
	}
	if got := at("31", start, end); !slices.Equal(got, []string{"2026-12-01", "2026-12-02"}) {
		t.Errorf("Jakarta: days %v, want [2026-12-01 2026-12-02]", got)
	}
	wib := time.FixedZone("WIB", 7*3600)
	if got := at("31", time.Date(2026, 12, 1, 18, 0, 0, 0, wib), time.Date(2026, 12, 2, 0, 0, 0, 0, wib)); !slices.Equal(got, []string{"2026-12-01"}) {
		t.Errorf("Jakarta until midnight: days %v, want [2026-12-01]", got)
	}
}
