package main

import (
	"fmt"
	"time"

	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/secretarg"
	"github.com/knk-id/knk/services/stats"
)

// statsCmd checks the statistics counters against the base tables.
type statsCmd struct {
	Verify statsVerifyCmd `cmd:"" help:"Recount the statistics from the base tables and report every counter that differs (admin: works on the database directly)."`
}

type statsVerifyCmd struct {
	DB     string `name:"db" required:"" env:"KNK_DB" help:"SQLite file path or postgres:// DSN of knkd's store (knkd may keep running)."`
	Repair bool   `name:"repair" help:"Set the counters that differ to the recount (writers wait meanwhile)."`
}

func (c *statsVerifyCmd) Run(a *app) error {
	if err := secretarg.RefuseDSN(a.args, "--db", c.DB, "KNK_DB, PGPASSWORD or ~/.pgpass"); err != nil {
		return err
	}
	store, err := db.Open(a.ctx, c.DB)
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	check := stats.Verify
	if c.Repair {
		check = stats.Repair
	}
	diffs, err := check(a.ctx, store)
	if err != nil {
		return err
	}
	for _, d := range diffs {
		fmt.Fprintf(a.stdout, "province %s %-20s counter %d, recount %d (%+d)\n", d.Province, d.Metric, d.Counter, d.Actual, d.Actual-d.Counter)
	}
	switch {
	case len(diffs) == 0:
		fmt.Fprintf(a.stdout, "every counter matches a recount of the base tables (%s)\n", time.Since(start).Round(time.Millisecond))
	case c.Repair:
		fmt.Fprintf(a.stdout, "%d counters repaired\n", len(diffs))
	default:
		return fmt.Errorf("%d counters differ from a recount; `knkctl stats verify --repair` sets them to the recount", len(diffs))
	}
	return nil
}
