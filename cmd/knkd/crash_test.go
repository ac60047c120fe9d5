package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3", for PRAGMA integrity_check

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/cadre"
)

// TestKillDuringWritesLosesNothingAcknowledged (issue 11) runs knkd as a process
// on the store under test (dbtest.Engine: a SQLite file, or a fresh PostgreSQL
// schema), imports rosters while eight callers create cadres with request ids,
// and kills knkd with SIGKILL in the middle of an import. Restarted on the same
// store, knkd must hold every write it acknowledged: each acknowledged create,
// retried with its request id, returns the same cadre; every row of each
// acknowledged import is there; the creates that were not answered can be
// retried safely, and so can the import that was cut off. The SQLite file passes
// PRAGMA integrity_check, and the event log is gap-free, with one
// cadre.created event per cadre (no half-written batch).
//
// SIGKILL ends the process, not the machine: what the kernel already holds
// survives it, so this proves that knkd answers only after its writes reached
// the database, not that they reached the disk (fsync).
func TestKillDuringWritesLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	engine := dbtest.Engine()
	dsn := dbtest.DSN(t, engine)
	bin := testenv.BuildKnkd(t)
	admin := testenv.Ctx(testenv.Bootstrap(t, dsn))
	k := testenv.StartProcess(t, bin, dsn)
	if _, err := k.Orgs.CreateOrganization(admin, &knkv1.CreateOrganizationRequest{OrganizationId: "ksbsi",
		Organization: &knkv1.Organization{Kind: knkv1.Organization_KIND_FEDERATION, DisplayName: "KSBSI"}}); err != nil {
		t.Fatal(err)
	}
	key, err := k.Orgs.CreateApiKey(admin, &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi"})
	if err != nil {
		t.Fatal(err)
	}
	fed := testenv.Ctx(key.Secret)

	var next atomic.Int64
	newCadre := func() *knkv1.Cadre { // a distinct adult NIK each time
		i := next.Add(1) - 1
		return &knkv1.Cadre{DisplayName: fmt.Sprintf("Kader %d", i), ProvinceCode: "61",
			Nik: fmt.Sprintf("6171%02d150890%04d", 1+i/9999, 1+i%9999)}
	}

	// Eight callers create cadres, each with a request id, until knkd is gone.
	type create struct {
		requestID string
		cadre     *knkv1.Cadre
		name      string // set when acknowledged
	}
	const callers = 8
	var (
		creates = make([][]create, callers)
		acked   atomic.Int64
		wg      sync.WaitGroup
	)
	for w := range callers {
		wg.Go(func() {
			for i := 0; ; i++ {
				c := create{requestID: fmt.Sprintf("crash-%d-%d", w, i), cadre: newCadre()}
				got, err := k.Cadres.CreateCadre(fed, &knkv1.CreateCadreRequest{RequestId: c.requestID, Cadre: c.cadre})
				if err == nil {
					c.name = got.Name
					acked.Add(1)
				}
				creates[w] = append(creates[w], c)
				if err != nil {
					return
				}
			}
		})
	}

	// Rosters of 1,500 rows are imported one after another; once one import
	// has been acknowledged and the next is 1,200 rows in (a batch of 1,000
	// handed to the store), knkd is killed.
	const rows = 1500
	var (
		imported [][]*knkv1.Cadre // acknowledged, every row created
		cut      []*knkv1.Cadre   // the import the kill cut off
		midway   = make(chan struct{})
		kill     = sync.OnceFunc(func() { close(midway) })
	)
	wg.Go(func() {
		for {
			roster := make([]*knkv1.Cadre, rows)
			for i := range roster {
				roster[i] = newCadre()
			}
			resp, err := importRoster(fed, k.Cadres, roster, func(sent int) {
				if len(imported) > 0 && acked.Load() >= 100 && sent == 1200 {
					kill()
				}
			})
			if err != nil {
				cut = roster
				return
			}
			if resp.Created != rows {
				t.Errorf("an import created %d of %d rows (%d rejected)", resp.Created, rows, resp.Rejected)
			}
			imported = append(imported, roster)
		}
	})
	select {
	case <-midway:
	case <-time.After(60 * time.Second):
		t.Fatalf("no import was under way with 100 creates acknowledged after 60s (%d acknowledged)", acked.Load())
	}
	k.Kill(t)
	wg.Wait()
	if cut == nil {
		t.Fatal("the kill did not cut off an import")
	}
	if engine == "sqlite" {
		checkIntegrity(t, dsn, "after the kill")
	}

	k = testenv.StartProcess(t, bin, dsn)
	var answered, retried atomic.Int64
	for _, cs := range creates {
		wg.Go(func() {
			for _, c := range cs {
				got, err := k.Cadres.CreateCadre(fed, &knkv1.CreateCadreRequest{RequestId: c.requestID, Cadre: c.cadre})
				switch {
				case err != nil:
					t.Errorf("create %s retried after the restart: %v", c.requestID, err)
				case c.name != "" && got.Name != c.name:
					t.Errorf("create %s was acknowledged as %s; retried after the restart it returns %s", c.requestID, c.name, got.Name)
				case c.name != "":
					answered.Add(1)
				default:
					retried.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%s: %d acknowledged creates kept, %d unanswered ones retried, %d imports of %d rows acknowledged",
		engine, answered.Load(), retried.Load(), len(imported), rows)
	store := testenv.OpenSQL(t, dsn)
	niks := map[string]bool{}
	rowsOf, err := store.Query(`SELECT nik FROM cadres`)
	if err != nil {
		t.Fatal(err)
	}
	for rowsOf.Next() {
		var nik string
		if err := rowsOf.Scan(&nik); err != nil {
			t.Fatal(err)
		}
		niks[nik] = true
	}
	if err := rowsOf.Err(); err != nil {
		t.Fatal(err)
	}
	for n, roster := range imported {
		missing := 0
		for _, c := range roster {
			if !niks[c.Nik] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("acknowledged import %d lost %d of its %d rows", n+1, missing, rows)
		}
	}
	landed := 0
	for _, c := range cut {
		if niks[c.Nik] {
			landed++
		}
	}
	t.Logf("%d of the %d rows of the import cut off had landed", landed, rows)
	resp, err := importRoster(fed, k.Cadres, cut, nil)
	if err != nil || resp.Created+resp.Unchanged != rows || resp.Rejected != 0 {
		t.Errorf("the import cut off by the kill, run again: %v, %v; want every row created or unchanged", resp, err)
	}

	var cadres, created int64
	store.QueryRow(`SELECT count(*) FROM cadres`).Scan(&cadres)
	store.QueryRow(`SELECT count(*) FROM events WHERE type = 'cadre.created'`).Scan(&created)
	if cadres != created {
		t.Errorf("%d cadres and %d cadre.created events: a write kept its row without its event or the reverse", cadres, created)
	}
	var count, lowest, highest int64
	if err := store.QueryRow(`SELECT count(*), COALESCE(MIN(sequence), 0), COALESCE(MAX(sequence), 0) FROM events`).Scan(&count, &lowest, &highest); err != nil {
		t.Fatal(err)
	}
	if lowest != 1 || highest != count {
		t.Errorf("the event log holds %d events numbered %d to %d, want 1 to %d without a gap", count, lowest, highest, count)
	}
	if engine == "sqlite" {
		checkIntegrity(t, dsn, "after the restart and the retries")
	}
}

// importRoster streams roster through one ImportCadres call; sent, if not nil,
// is called after each row is sent.
func importRoster(ctx context.Context, cadres knkv1.CadreServiceClient, roster []*knkv1.Cadre, sent func(int)) (*knkv1.ImportCadresResponse, error) {
	stream, err := cadres.ImportCadres(ctx)
	if err != nil {
		return nil, err
	}
	for i, c := range roster {
		if err := stream.Send(&knkv1.ImportCadresRequest{Cadre: c}); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the call; CloseImport says why
			}
			return nil, err
		}
		if sent != nil {
			sent(i + 1)
		}
	}
	return cadre.CloseImport(stream)
}

// checkIntegrity runs SQLite's PRAGMA integrity_check on the file at path.
func checkIntegrity(t *testing.T, path, when string) {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var verdict string
	if err := conn.QueryRow(`PRAGMA integrity_check`).Scan(&verdict); err != nil {
		t.Fatalf("integrity_check %s: %v", when, err)
	}
	if verdict != "ok" {
		t.Errorf("integrity_check %s: %s", when, verdict)
	}
}
