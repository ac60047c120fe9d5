package certificate_test

import (
	"testing"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
)

// TestExpirySweepsOnceAcrossReplicas runs two servers on one PostgreSQL database,
// both sweeping every 20ms on one shared clock: every certificate expires once,
// with one certificate.expired event and one forum.member_left each.
func TestExpirySweepsOnceAcrossReplicas(t *testing.T) {
	if dbtest.Engine() != "postgres" {
		t.Skip("PostgreSQL only: two servers on one SQLite file is not a supported deployment")
	}
	dsn := dbtest.DSN(t, "postgres")
	a := testenv.StartAt(t, dsn)
	b := testenv.StartWith(t, dsn, func(cfg *testenv.Config) { cfg.Now = a.Clock.Now })
	w := &world{Env: a, day: time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC),
		fed: a.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, ""),
		dki: a.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")}
	for _, c := range w.trained(t, 20, allTopics...) {
		w.issue(t, w.dki, c)
	}
	a.Clock.Advance(3*366*24*time.Hour + time.Hour)
	ctx := testenv.Ctx(a.AdminKey)
	var count map[string]int
	deadline := time.Now().Add(20 * time.Second)
	for {
		count = map[string]int{}
		events, err := b.Events.ListEvents(ctx, &knkv1.ListEventsRequest{PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Events {
			count[e.Type]++
		}
		if count["certificate.expired"] >= 20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // both servers sweep several more times
	count = map[string]int{}
	events, err := a.Events.ListEvents(ctx, &knkv1.ListEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Events {
		count[e.Type]++
	}
	if count["certificate.expired"] != 20 || count["forum.member_left"] != 20 {
		t.Errorf("after expiry with two sweeping servers: %d certificate.expired, %d forum.member_left; want 20 each",
			count["certificate.expired"], count["forum.member_left"])
	}
}
