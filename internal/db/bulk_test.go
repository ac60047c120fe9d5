package db_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/db/dbtest"
)

// piece is one transaction of a bulk job: items [lo, hi).
type piece struct{ lo, hi int }

// bulkOrgs writes n organizations bulk-NNNN as a bulk job and returns the
// pieces that committed, in order; failAt makes the piece holding that item fail.
func bulkOrgs(ctx context.Context, store *db.DB, n, failAt int) ([]piece, error) {
	var pieces []piece
	err := store.WriteBulk(ctx, n, func(tx *db.Tx, lo, hi int) error {
		for i := lo; i < hi; i++ {
			if i == failAt {
				return errors.New("item refused")
			}
			if err := addOrg(ctx, tx, fmt.Sprintf("bulk-%04d", i)); err != nil {
				return err
			}
		}
		pieces = append(pieces, piece{lo, hi})
		return nil
	})
	return pieces, err
}

// A bulk job covers every item once, in order, each piece its own transaction:
// when a piece fails, the pieces before it stay and nothing after it is written.
func TestWriteBulkWritesEveryItemInPieces(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		store := open(t, dbtest.DSN(t, engine))
		pieces, err := bulkOrgs(ctx, store, 1000, -1)
		if err != nil {
			t.Fatal(err)
		}
		next := 0
		for _, p := range pieces {
			if p.lo != next || p.hi <= p.lo {
				t.Fatalf("pieces %v do not cover 0..999 in order", pieces)
			}
			next = p.hi
		}
		if next != 1000 || len(orgIDs(t, store)) != 1000 || len(events(t, store)) != 1000 {
			t.Fatalf("pieces %v; %d organizations and %d events stored, want 1000", pieces, len(orgIDs(t, store)), len(events(t, store)))
		}
		if engine == "sqlite" && len(pieces) != 1 {
			t.Errorf("with no other write under way SQLite wrote the job in %d pieces, want 1", len(pieces))
		}

		store = open(t, dbtest.DSN(t, engine))
		pieces, err = bulkOrgs(ctx, store, 1000, 950)
		if err == nil || err.Error() != "item refused" {
			t.Fatalf("a job with a failing item: %v", err)
		}
		kept := 0
		if len(pieces) > 0 {
			kept = pieces[len(pieces)-1].hi
		}
		if got := len(orgIDs(t, store)); got != kept || kept > 950 {
			t.Errorf("%d organizations stored after the job failed at item 950, want the %d of the pieces %v", got, kept, pieces)
		}
		if engine == "postgres" && kept != 900 {
			t.Errorf("PostgreSQL kept %d items of the pieces before the failing one, want 900 (pieces of 100)", kept)
		}
		checkGapFree(t, events(t, store))
	})
}

// While single writes are under way, SQLite's writer gives a bulk job small
// pieces, so that a single write never waits for a whole batch of 1000.
func TestWriteBulkLetsSingleWritesThrough(t *testing.T) {
	ctx := context.Background()
	store := newDB(t)
	var (
		stop    atomic.Bool
		singles atomic.Int64
		wg      sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if err := store.Write(ctx, func(tx *db.Tx) error { return addOrg(ctx, tx, fmt.Sprintf("single-%d-%d", w, i)) }); err != nil {
					t.Error(err)
					return
				}
				singles.Add(1)
			}
		})
	}
	for singles.Load() < 100 { // the single writers are under way
		runtime.Gosched()
	}
	pieces, err := bulkOrgs(ctx, store, 1000, -1)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pieces {
		if p.hi-p.lo > 64 {
			t.Errorf("a piece of %d items shared commits with single writes (pieces %v), want at most 64", p.hi-p.lo, pieces)
			break
		}
	}
	checkGapFree(t, events(t, store))
	if got, want := len(events(t, store)), int(singles.Load())+1000; got != want {
		t.Errorf("%d events, want %d", got, want)
	}
}
