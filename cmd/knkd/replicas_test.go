package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
)

// parallel runs f(i) for i in [0, n) concurrently and fails on any error.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// TestTwoReplicasOnOnePostgres drives two knkd processes that share one
// PostgreSQL database, as a national deployment behind a load balancer does.
func TestTwoReplicasOnOnePostgres(t *testing.T) {
	if os.Getenv(dbtest.PostgresDSN) == "" {
		t.Skipf("needs PostgreSQL: set %s", dbtest.PostgresDSN)
	}
	dsn := dbtest.DSN(t, "postgres")
	bin := testenv.BuildKnkd(t)
	adminKey := testenv.Bootstrap(t, dsn)
	a, b := testenv.StartProcess(t, bin, dsn), testenv.StartProcess(t, bin, dsn)
	both := []*testenv.Process{a, b}
	admin := testenv.Ctx(adminKey)
	key := func(id string, kind knkv1.Organization_Kind) context.Context {
		if _, err := a.Orgs.CreateOrganization(admin, &knkv1.CreateOrganizationRequest{OrganizationId: id,
			Organization: &knkv1.Organization{Kind: kind, DisplayName: id}}); err != nil {
			t.Fatal(err)
		}
		k, err := b.Orgs.CreateApiKey(admin, &knkv1.CreateApiKeyRequest{Parent: "organizations/" + id})
		if err != nil {
			t.Fatal(err)
		}
		return testenv.Ctx(k.Secret)
	}
	fed, unit := key("ksbsi", knkv1.Organization_KIND_FEDERATION), key("kemnaker-pusat", knkv1.Organization_KIND_TRAINING_UNIT)
	var wg sync.WaitGroup

	// A watcher on replica A, from the first event.
	watchCtx, stopWatch := context.WithCancel(admin)
	defer stopWatch()
	var (
		mu   sync.Mutex
		seen []int64
	)
	watchDone := make(chan error, 1)
	go func() {
		stream, err := a.Events.WatchEvents(watchCtx, &knkv1.WatchEventsRequest{})
		for err == nil {
			var e *knkv1.Event
			if e, err = stream.Recv(); err == nil {
				mu.Lock()
				seen = append(seen, e.Sequence)
				mu.Unlock()
			}
		}
		watchDone <- err
	}()

	// 200 cadres, created through both replicas at once.
	cadres := make([]string, 200)
	parallel(t, 200, func(i int) error {
		c, err := both[i%2].Cadres.CreateCadre(fed, &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
			DisplayName: fmt.Sprintf("Kader %d", i), ProvinceCode: "61",
			Nik: fmt.Sprintf("6171%02d150890%04d", 1+i/9999, 1+i%9999)}})
		cadres[i] = c.GetName()
		return err
	})

	// One request id sent ten times at once through both replicas creates one cadre.
	names := make([]string, 10)
	parallel(t, 10, func(i int) error {
		c, err := both[i%2].Cadres.CreateCadre(fed, &knkv1.CreateCadreRequest{RequestId: "roster-2026-11-23-row-1",
			Cadre: &knkv1.Cadre{DisplayName: "Retry", ProvinceCode: "61", Nik: "6171991508909999"}})
		names[i] = c.GetName()
		return err
	})
	for _, n := range names {
		if n != names[0] {
			t.Fatalf("retries with one request id made %v", names)
		}
	}
	// Two updates with the same etag through different replicas: one wins, one is ABORTED.
	updates := make([]codes.Code, 2)
	current, err := a.Cadres.GetCadre(fed, &knkv1.GetCadreRequest{Name: names[0]})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range both {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Cadres.UpdateCadre(fed, &knkv1.UpdateCadreRequest{
				Cadre:      &knkv1.Cadre{Name: current.Name, Etag: current.Etag, Regency: fmt.Sprintf("Regency %d", i)},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"regency"}}})
			updates[i] = status.Code(err)
		}()
	}
	wg.Wait()
	if !(updates[0] == codes.OK && updates[1] == codes.Aborted) && !(updates[0] == codes.Aborted && updates[1] == codes.OK) {
		t.Errorf("concurrent updates with one etag: %v, want one OK and one ABORTED", updates)
	}

	// Capacity across replicas: 50 enrolments into 20 places.
	day := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	session := func(start time.Time, capacity int32) string {
		s, err := a.Training.CreateSession(unit, &knkv1.CreateSessionRequest{Session: &knkv1.Session{
			Title: "KNK Kalbar", ProvinceCode: "61", Mode: knkv1.Session_MODE_ONLINE, Capacity: capacity,
			Topics:    []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY},
			StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(time.Hour))}})
		if err != nil {
			t.Fatal(err)
		}
		return s.Name
	}
	small := session(day, 20)
	outcomes := make([]codes.Code, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := both[i%2].Training.EnrollCadre(unit, &knkv1.EnrollCadreRequest{Parent: small, Cadre: cadres[100+i], NoWaitlist: true})
			outcomes[i] = status.Code(err)
		}()
	}
	wg.Wait()
	count := map[codes.Code]int{}
	for _, c := range outcomes {
		count[c]++
	}
	if count[codes.OK] != 20 || count[codes.FailedPrecondition] != 30 {
		t.Errorf("enrolments into 20 places through two replicas: %v", count)
	}

	// 100 cadres trained, then 100 certificates issued in parallel through both.
	big := session(day.Add(24*time.Hour), 100)
	parallel(t, 100, func(i int) error {
		_, err := both[i%2].Training.EnrollCadre(unit, &knkv1.EnrollCadreRequest{Parent: big, Cadre: cadres[i]})
		return err
	})
	var results []*knkv1.SessionResult
	for _, c := range cadres[:100] {
		results = append(results, &knkv1.SessionResult{Cadre: c, Attended: true, Scores: map[string]int32{
			"TOPIC_K3": 90, "TOPIC_PKWT": 90, "TOPIC_WAGE_SCALE": 90, "TOPIC_SOCIAL_SECURITY": 90}})
	}
	if _, err := b.Training.RecordResults(unit, &knkv1.RecordResultsRequest{Name: big, Results: results}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Training.CompleteSession(unit, &knkv1.CompleteSessionRequest{Name: big}); err != nil {
		t.Fatal(err)
	}
	numbers := make([]string, 100)
	parallel(t, 100, func(i int) error {
		c, err := both[i%2].Certs.IssueCertificate(unit, &knkv1.IssueCertificateRequest{Cadre: cadres[i]})
		numbers[i] = c.GetName()
		return err
	})
	sort.Strings(numbers)
	for i, n := range numbers {
		if want := fmt.Sprintf("certificates/KNK-61-2026-%06d", i+1); n != want {
			t.Fatalf("certificate %d is %s, want %s", i, n, want)
		}
	}

	// Every event, whichever replica wrote it, reaches the watcher on A once and in order.
	var total int64
	for token := ""; ; {
		page, err := b.Events.ListEvents(admin, &knkv1.ListEventsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(page.Events))
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if int64(n) >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopWatch()
	<-watchDone
	mu.Lock()
	defer mu.Unlock()
	if int64(len(seen)) != total {
		t.Fatalf("the watcher on A saw %d events, the log holds %d", len(seen), total)
	}
	for i, s := range seen {
		if s != int64(i+1) {
			t.Fatalf("event %d on the watcher has sequence %d: a gap, repeat or reordering", i, s)
		}
	}
}
