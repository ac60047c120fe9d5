package main

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// provinceStats measures GET /v1/stats/provinces' RPC, ListProvinceStats, which
// reads the per-province counters: its p50 and p99 should not grow with the rows.
func (b *bench) provinceStats(ctx context.Context, conn *grpc.ClientConn) {
	stats := knkv1.NewStatsServiceClient(conn)
	res, ok := b.run(ctx, "stats_p99_ms", b.cfg.Duration/2, func(ctx context.Context) error {
		resp, err := stats.ListProvinceStats(b.adminCtx(ctx), &knkv1.ListProvinceStatsRequest{})
		if err == nil && len(resp.Provinces) != 38 {
			err = fmt.Errorf("%d provinces, want 38", len(resp.Provinces))
		}
		return err
	})
	if ok {
		b.add(figure{Name: "stats_p99_ms", Value: ms(res.P99), Unit: "ms", P50Ms: ms(res.P50), P99Ms: ms(res.P99),
			Note: fmt.Sprintf("%d calls of ListProvinceStats; target p99 < 20 ms at 10 M rows", res.Calls)})
	}
}
