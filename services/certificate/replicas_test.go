package certificate_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/certificate"
)

// twoReplicas starts two servers, A and B, on one fresh PostgreSQL database, B on
// A's clock, and returns a world on A (a federation and the DKI unit) and B. It
// skips the test on SQLite: two servers on one file is not a supported deployment.
func twoReplicas(t *testing.T) (*world, *testenv.Env) {
	t.Helper()
	if dbtest.Engine() != "postgres" {
		t.Skip("PostgreSQL only: two servers on one SQLite file is not a supported deployment")
	}
	dsn := dbtest.DSN(t, "postgres")
	a := testenv.StartAt(t, dsn)
	b := testenv.StartWith(t, dsn, func(cfg *testenv.Config) { cfg.Now = a.Clock.Now })
	return &world{Env: a, day: time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC),
		fed: a.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, ""),
		dki: a.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")}, b
}

// TestExpirySweepsOnceAcrossReplicas runs two servers on one PostgreSQL database,
// both sweeping every 20ms on one shared clock: every certificate expires once,
// with one certificate.expired event and one forum.member_left each.
func TestExpirySweepsOnceAcrossReplicas(t *testing.T) {
	w, b := twoReplicas(t)
	a := w.Env
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

// TestNameTriesAreCountedAcrossReplicas floods two servers on one PostgreSQL
// database with holder-name tries on one certificate: 10 are answered in all.
func TestNameTriesAreCountedAcrossReplicas(t *testing.T) {
	w, b := twoReplicas(t)
	a := w.Env
	cert := w.certified(t, "Siti Rahayu")[0]
	replicas := []*testenv.Env{a, b}
	if got := flood(t, 40, func(i int) error {
		_, err := replicas[i%2].Certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: cert.Name, HolderName: "Tebakan"})
		return err
	}); got != certificate.NameTries {
		t.Errorf("%d of 40 tries on two replicas answered, want %d", got, certificate.NameTries)
	}
	if r := b.REST(t, http.MethodGet, "/v1/"+cert.Name+":verify?holder_name=Siti%20Rahayu", "", nil); r.Status != http.StatusTooManyRequests {
		t.Errorf("the next try on replica B: %d %s", r.Status, r.Raw)
	}
}

// TestResignRunsOnceAcrossReplicas re-signs V1 certificates from two stores on
// one PostgreSQL database at once: each certificate is re-signed exactly once
// between them, and every one verifies as V2 afterwards.
func TestResignRunsOnceAcrossReplicas(t *testing.T) {
	if dbtest.Engine() != "postgres" {
		t.Skip("PostgreSQL only: two servers on one SQLite file is not a supported deployment")
	}
	dsn := dbtest.DSN(t, "postgres")
	w := &world{Env: testenv.StartAt(t, dsn), day: time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)}
	w.fed = w.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	w.dki = w.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	var certs []*knkv1.Certificate
	for _, c := range w.trained(t, 60, allTopics...) {
		certs = append(certs, w.issue(t, w.dki, c))
	}
	w.DowngradeToV1(t, certs...)
	w.Stop(t)

	ctx := context.Background()
	totals := make([]int, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		store, err := db.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		signer, err := certificate.LoadSigner(ctx, store, certificate.SignerConfig{KEKFile: testenv.KEKFile(t, dsn), Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		s := &certificate.Service{DB: store, Signer: signer, Now: time.Now}
		wg.Go(func() { totals[i], errs[i] = s.ResignV1(ctx, nil) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || totals[0]+totals[1] != len(certs) {
		t.Fatalf("re-signed %v (errors %v), want %d in all", totals, errs, len(certs))
	}
	after := testenv.StartAt(t, dsn)
	keys := after.REST(t, http.MethodGet, "/v1/keys", "", nil).Body
	for _, c := range certs {
		r := after.REST(t, http.MethodGet, "/v1/"+c.Name+":verify", after.AdminKey, nil)
		if r.Body["canonical_version"] != 2.0 || !verifyOffline(t, r.Body, keys) {
			t.Errorf("%s: %s", c.Name, r.Raw)
		}
	}
}
