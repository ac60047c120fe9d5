// Package stats implements StatsService: programme coverage per province, read
// from counters that triggers keep in the same transaction as every change that
// moves them (migration 00012), so a read costs the same at any registry size.
package stats

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/idn"
	"github.com/knk-id/knk/internal/topic"
)

// Service implements knkv1.StatsServiceServer.
type Service struct {
	knkv1.UnimplementedStatsServiceServer
	DB *db.DB
}

var _ knkv1.StatsServiceServer = (*Service)(nil)

// ListProvinceStats returns one row for each of the 38 provinces.
func (s *Service) ListProvinceStats(ctx context.Context, _ *knkv1.ListProvinceStatsRequest) (*knkv1.ListProvinceStatsResponse, error) {
	c, err := counts(ctx, s.DB)
	if err != nil {
		return nil, err
	}
	resp := &knkv1.ListProvinceStatsResponse{}
	for _, p := range idn.Provinces() {
		row := &knkv1.ProvinceStats{
			ProvinceCode: p.Code, Cadres: c[key{p.Code, mCadres}], Certified: c[key{p.Code, mCertified}],
			ForumMembers: c[key{p.Code, mMembers}], SessionsCompleted: c[key{p.Code, mSessions}],
			TopicPasses: map[string]int64{},
		}
		for _, t := range topic.List(topic.All) {
			row.TopicPasses[t.String()] = c[key{p.Code, mTopic(t)}]
		}
		resp.Provinces = append(resp.Provinces, row)
	}
	return resp, nil
}

// CertificatesByProvince counts certificates per province and state, from the
// counters (for metrics).
func CertificatesByProvince(ctx context.Context, store *db.DB) (map[string]map[knkv1.Certificate_State]int64, error) {
	c, err := counts(ctx, store)
	if err != nil {
		return nil, err
	}
	out := map[string]map[knkv1.Certificate_State]int64{}
	for _, p := range idn.Provinces() {
		for _, st := range []knkv1.Certificate_State{knkv1.Certificate_STATE_VALID, knkv1.Certificate_STATE_REVOKED, knkv1.Certificate_STATE_EXPIRED} {
			if n := c[key{p.Code, mCertificates(st)}]; n != 0 {
				if out[p.Code] == nil {
					out[p.Code] = map[knkv1.Certificate_State]int64{}
				}
				out[p.Code][st] = n
			}
		}
	}
	return out, nil
}

// Compact folds the counters' delta rows into one row per province and metric,
// so that reads stay at a few hundred rows. Writers on PostgreSQL append deltas;
// knkd runs this every few seconds (RunCompaction). It returns how many counter
// rows it changed.
func Compact(ctx context.Context, store *db.DB) (int64, error) {
	if ok, err := hasDeltas(ctx, store); err != nil || !ok {
		return 0, err
	}
	var n int64
	err := store.Write(ctx, func(tx *db.Tx) error {
		var err error
		n, err = compact(ctx, tx, store.Engine())
		return err
	})
	return n, err
}

// RunCompaction compacts the counters every interval until ctx is done.
func RunCompaction(ctx context.Context, store *db.DB, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := Compact(ctx, store); err != nil && ctx.Err() == nil {
				log.Error("statistics counters not compacted", "cause", err.Error())
			}
		}
	}
}

// Difference is a counter that does not match the base tables.
type Difference struct {
	Province, Metric string
	Counter, Actual  int64
}

// Verify recounts every counter from the base tables, in the same snapshot as
// it reads the counters, and returns those that differ.
func Verify(ctx context.Context, store *db.DB) ([]Difference, error) {
	var have, want map[key]int64
	err := store.Snapshot(ctx, func(q db.Querier) error {
		var err error
		if have, err = counts(ctx, q); err != nil {
			return err
		}
		want, err = recount(ctx, q)
		return err
	})
	if err != nil {
		return nil, err
	}
	return differences(have, want), nil
}

// Repair sets every counter to its recount, in a write transaction that holds
// writers' deltas back meanwhile, and returns what it corrected.
func Repair(ctx context.Context, store *db.DB) ([]Difference, error) {
	var diffs []Difference
	err := store.Write(ctx, func(tx *db.Tx) error {
		if err := lockCounters(ctx, tx, store.Engine()); err != nil {
			return err
		}
		have, err := counts(ctx, tx)
		if err != nil {
			return err
		}
		want, err := recount(ctx, tx)
		if err != nil {
			return err
		}
		diffs = differences(have, want)
		return reset(ctx, tx, want)
	})
	return diffs, err
}

func differences(have, want map[key]int64) []Difference {
	var out []Difference
	for _, m := range []map[key]int64{have, want} {
		for k := range m {
			if have[k] != want[k] && !slices.ContainsFunc(out, func(d Difference) bool { return d.Province == k.province && d.Metric == k.metric }) {
				out = append(out, Difference{Province: k.province, Metric: k.metric, Counter: have[k], Actual: want[k]})
			}
		}
	}
	slices.SortFunc(out, func(a, b Difference) int {
		return cmp.Or(cmp.Compare(a.Province, b.Province), cmp.Compare(a.Metric, b.Metric))
	})
	return out
}
