package certificate

import (
	"context"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// ProvinceState is a province code and a certificate state.
type ProvinceState struct {
	Province string
	State    knkv1.Certificate_State
}

// CountByProvinceState counts certificates per province and state (for metrics).
func (s *Service) CountByProvinceState(ctx context.Context) (map[ProvinceState]int64, error) {
	return countByProvinceState(ctx, s.DB)
}
