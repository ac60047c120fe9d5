package stats_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/cadre"
	"github.com/knk-id/knk/services/stats"
)

var _ knkv1.StatsServiceServer = (*stats.Service)(nil)

// churn runs, at the same time and spread over the servers, everything that
// moves a counter: roster imports, single creates, certificates issued and
// revoked, cadres withdrawn and moved to another province, sessions completed,
// while every server also compacts the counters.
func churn(t *testing.T, servers []*testenv.Env, fed, unit string) {
	t.Helper()
	a := servers[0]
	trained := a.Trained(t, fed, unit, "31", 24)
	var (
		wg   sync.WaitGroup
		errs = make(chan error, 100)
	)
	on := func(i int) *testenv.Env { return servers[i%len(servers)] }
	for i := range 2 { // imports, 150 rows each, in two provinces, batches of 1000 by default: one transaction
		wg.Go(func() {
			stream, err := on(i).Cadres.ImportCadres(testenv.Ctx(fed))
			if err != nil {
				errs <- err
				return
			}
			for r := range 150 {
				province := []string{"32", "61"}[r%2]
				if err := stream.Send(&knkv1.ImportCadresRequest{Cadre: &knkv1.Cadre{
					DisplayName: fmt.Sprintf("Anggota %d", r), Nik: testenv.NIK(), ProvinceCode: province}}); err != nil {
					errs <- err
					return
				}
			}
			resp, err := cadre.CloseImport(stream)
			if err != nil || resp.Created != 150 {
				errs <- fmt.Errorf("import: %v %v", resp, err)
			}
		})
	}
	for i := range 2 { // single creates
		wg.Go(func() {
			for range 20 {
				_, err := on(i).Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
					DisplayName: "Kader", Nik: testenv.NIK(), ProvinceCode: "33"}})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i, part := range [][]*knkv1.Cadre{trained[:12], trained[12:]} { // certificates and what follows them
		wg.Go(func() {
			s := on(i)
			for j, c := range part {
				cert, err := s.Certs.IssueCertificate(testenv.Ctx(unit), &knkv1.IssueCertificateRequest{Cadre: c.Name})
				if err != nil {
					errs <- err
					return
				}
				switch j % 4 {
				case 1:
					_, err = s.Certs.RevokeCertificate(testenv.Ctx(unit), &knkv1.RevokeCertificateRequest{Name: cert.Name, Reason: "salah data"})
				case 2:
					_, err = s.Cadres.WithdrawCadre(testenv.Ctx(fed), &knkv1.WithdrawCadreRequest{Name: c.Name, Reason: "mengundurkan diri"})
				case 3:
					_, err = s.Cadres.UpdateCadre(testenv.Ctx(fed), &knkv1.UpdateCadreRequest{Cadre: &knkv1.Cadre{Name: c.Name, ProvinceCode: "61"}})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	var compactions sync.WaitGroup
	for _, s := range servers { // every replica folds deltas in while the others write
		compactions.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := stats.Compact(context.Background(), s.Server.DB()); err != nil {
					errs <- fmt.Errorf("compact: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	compactions.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkCounters compares the counters with a full recount, and what each
// server answers with the counters.
func checkCounters(t *testing.T, servers []*testenv.Env) {
	t.Helper()
	diffs, err := stats.Verify(context.Background(), servers[0].Server.DB())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("province %s %s: counter %d, recount %d", d.Province, d.Metric, d.Counter, d.Actual)
	}
	conn := servers[0].SQL(t)
	var cadres, certified, members, completed int64
	if err := conn.QueryRow(`SELECT (SELECT COUNT(*) FROM cadres), (SELECT COUNT(*) FROM cadres WHERE state = 2),
		(SELECT COUNT(*) FROM forum_memberships WHERE state = 1), (SELECT COUNT(*) FROM sessions WHERE state = 2)`).
		Scan(&cadres, &certified, &members, &completed); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		resp, err := s.Stats.ListProvinceStats(testenv.Ctx(s.AdminKey), &knkv1.ListProvinceStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got [4]int64
		for _, p := range resp.Provinces {
			got[0] += p.Cadres
			got[1] += p.Certified
			got[2] += p.ForumMembers
			got[3] += p.SessionsCompleted
		}
		if want := [4]int64{cadres, certified, members, completed}; got != want {
			t.Errorf("ListProvinceStats totals (cadres, certified, members, sessions) = %v, tables hold %v", got, want)
		}
	}
	if cadres != 24+300+40 {
		t.Errorf("%d cadres, want %d", cadres, 24+300+40)
	}
}

func TestCountersMatchARecountUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unit := e.Org(t, "kemnaker-pusat", knkv1.Organization_KIND_TRAINING_UNIT, "")
	churn(t, []*testenv.Env{e}, fed, unit)
	checkCounters(t, []*testenv.Env{e})

	// Reading the statistics reads a bounded number of rows, whatever the registry holds.
	if _, err := stats.Compact(context.Background(), e.Server.DB()); err != nil {
		t.Fatal(err)
	}
	var counters, deltas int
	if err := e.SQL(t).QueryRow(`SELECT (SELECT COUNT(*) FROM province_counts), (SELECT COUNT(*) FROM province_count_deltas)`).Scan(&counters, &deltas); err != nil {
		t.Fatal(err)
	}
	if counters > 38*13 || deltas != 0 {
		t.Errorf("after compaction: %d counter rows (at most 38 provinces × 13 metrics) and %d deltas (want 0)", counters, deltas)
	}
}

func TestCountersMatchARecountWithTwoReplicas(t *testing.T) {
	t.Parallel()
	if dbtest.Engine() != "postgres" {
		t.Skip("PostgreSQL only: two servers on one SQLite file is not a supported deployment")
	}
	dsn := dbtest.DSN(t, "postgres")
	a := testenv.StartAt(t, dsn)
	b := testenv.StartWith(t, dsn, func(cfg *testenv.Config) { cfg.Now = a.Clock.Now })
	fed := a.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unit := a.Org(t, "kemnaker-pusat", knkv1.Organization_KIND_TRAINING_UNIT, "")
	b.AdminKey = a.AdminKey
	churn(t, []*testenv.Env{a, b}, fed, unit)
	checkCounters(t, []*testenv.Env{a, b})
}
