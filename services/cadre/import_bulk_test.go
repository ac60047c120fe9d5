package cadre_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
)

// One import stream that names a NIK three times, twice with the same data and
// once with other data, and a NIK registered by another federation: the rows
// share one bulk write (one INSERT on PostgreSQL) and still come out as a row
// written one after the other would: created, unchanged, changed, rejected. Every
// stored cadre has exactly one cadre.created event.
func TestImportNamesANIKSeveralTimesInOneBatch(t *testing.T) {
	t.Parallel()
	w := setup(t)
	w.create(t, w.otherFed, newCadre(50))
	other := newCadre(1)
	other.DisplayName = "Another name"
	rows := []*knkv1.Cadre{newCadre(1), newCadre(2), newCadre(1), other, newCadre(50), newCadre(3)}
	resp := importRows(t, w, w.fed, rows)
	if resp.Created != 3 || resp.Unchanged != 1 || resp.Changed != 1 || resp.Rejected != 1 {
		t.Errorf("created %d unchanged %d changed %d rejected %d; want 3, 1, 1, 1 (%v)",
			resp.Created, resp.Unchanged, resp.Changed, resp.Rejected, resp.Rejections)
	}
	if len(resp.Rejections) != 1 || resp.Rejections[0].Row != 5 {
		t.Errorf("rejections %v, want row 5 (another federation's cadre)", resp.Rejections)
	}
	var cadres, created int
	store := w.SQL(t)
	store.QueryRow(`SELECT count(*) FROM cadres`).Scan(&cadres)
	store.QueryRow(`SELECT count(*) FROM events WHERE type = 'cadre.created'`).Scan(&created)
	if cadres != 4 || created != 4 {
		t.Errorf("%d cadres and %d cadre.created events, want 4 and 4", cadres, created)
	}
}

// A person whose erased record's NIK hash matches comes back through an import:
// the bulk write (one INSERT for many rows on PostgreSQL) records
// cadre.reregistered for that row and no other, as a single create does.
func TestImportRecognisesAReregistration(t *testing.T) {
	t.Parallel()
	dsn := dbtest.DSN(t, dbtest.Engine())
	e := testenv.StartWith(t, dsn, func(c *testenv.Config) {
		c.ExpiryInterval = -1 // the test runs the sweep itself
		if dbtest.Engine() == "postgres" {
			c.NIKHashKeyFile = filepath.Join(t.TempDir(), "nik-key")
			if err := os.WriteFile(c.NIKHashKeyFile, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})
	w := world{Env: e, fed: e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")}
	gone := w.create(t, w.fed, newCadre(1))
	if _, err := w.Cadres.WithdrawCadre(testenv.Ctx(w.fed), &knkv1.WithdrawCadreRequest{Name: gone.Name, Reason: "pindah kerja"}); err != nil {
		t.Fatal(err)
	}
	w.Clock.Advance(6 * 365 * 24 * time.Hour)
	if swept, err := w.Server.Sweep(context.Background()); err != nil || swept.Erased != 1 {
		t.Fatalf("sweep = %+v, %v; want the withdrawn cadre erased", swept, err)
	}
	resp := importRows(t, w, w.fed, []*knkv1.Cadre{newCadre(2), newCadre(1), newCadre(3)})
	if resp.Created != 3 {
		t.Fatalf("import: %v, want 3 created", resp)
	}
	events, err := w.Events.ListEvents(testenv.Ctx(w.AdminKey), &knkv1.ListEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var again []string
	for _, ev := range events.Events {
		if ev.Type == "cadre.reregistered" {
			again = append(again, ev.Resource)
		}
	}
	back, err := w.Cadres.LookupCadre(testenv.Ctx(w.fed), &knkv1.LookupCadreRequest{Nik: newCadre(1).Nik})
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0] != back.Name {
		t.Errorf("cadre.reregistered for %v, want only %s (the imported row with the erased NIK)", again, back.Name)
	}
}
