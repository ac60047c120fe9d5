package cadre_test

import (
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
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
