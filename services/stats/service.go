// Package stats implements StatsService: programme coverage per province, put
// together from the cadre, training and forum services.
package stats

import (
	"context"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/idn"
	"github.com/knk-id/knk/internal/topic"
	"github.com/knk-id/knk/services/cadre"
	"github.com/knk-id/knk/services/forum"
	"github.com/knk-id/knk/services/training"
)

// Service implements knkv1.StatsServiceServer.
type Service struct {
	knkv1.UnimplementedStatsServiceServer
	DB       *db.DB
	Cadres   *cadre.Service
	Training *training.Service
}

var _ knkv1.StatsServiceServer = (*Service)(nil)

// ListProvinceStats returns one row for each of the 38 provinces.
func (s *Service) ListProvinceStats(ctx context.Context, _ *knkv1.ListProvinceStatsRequest) (*knkv1.ListProvinceStatsResponse, error) {
	counts, err := s.Cadres.CountByProvince(ctx)
	if err != nil {
		return nil, err
	}
	sessions, err := s.Training.CompletedByProvince(ctx)
	if err != nil {
		return nil, err
	}
	members, err := forum.ActiveByProvince(ctx, s.DB)
	if err != nil {
		return nil, err
	}
	resp := &knkv1.ListProvinceStatsResponse{}
	for _, p := range idn.Provinces() {
		row := &knkv1.ProvinceStats{
			ProvinceCode: p.Code, ForumMembers: members[p.Code], SessionsCompleted: sessions[p.Code],
			TopicPasses: map[string]int64{},
		}
		for _, t := range topic.List(topic.All) {
			row.TopicPasses[t.String()] = 0
		}
		if c := counts[p.Code]; c != nil {
			row.Cadres, row.Certified, row.TopicPasses = c.Cadres, c.Certified, c.TopicPasses
		}
		resp.Provinces = append(resp.Provinces, row)
	}
	return resp, nil
}
