package main

import (
	"fmt"
	"time"

	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/secretarg"
	"github.com/knk-id/knk/services/organization"
)

// bootstrapCmd creates the organization "admin" (KIND_ADMIN) if it is missing and
// a new key for it, working on the database directly (migrating it if new), so
// that the first admin key exists before anyone can call the API.
type bootstrapCmd struct {
	DB string `name:"db" required:"" env:"KNK_DB" help:"SQLite file path or postgres:// DSN of knkd's store."`
}

func (c *bootstrapCmd) Run(a *app) error {
	if err := secretarg.RefuseDSN(a.args, "--db", c.DB, "KNK_DB, PGPASSWORD or ~/.pgpass"); err != nil {
		return err
	}
	store, err := db.Open(a.ctx, c.DB)
	if err != nil {
		return err
	}
	defer store.Close()
	secret, err := organization.Bootstrap(a.ctx, store, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, secret)
	return err
}

// migrateStoreCmd copies every table, events and signing keys included, from one
// store into a new, empty one, then compares row counts. Stop knkd on the source
// first; the target is migrated to the newest schema before the copy.
type migrateStoreCmd struct {
	From string `name:"from" required:"" help:"Source store: SQLite file path or postgres:// DSN."`
	To   string `name:"to" required:"" help:"Target store, empty: postgres:// DSN or SQLite file path."`
}

func (c *migrateStoreCmd) Run(a *app) error {
	for flag, dsn := range map[string]string{"--from": c.From, "--to": c.To} {
		if err := secretarg.RefuseDSN(a.args, flag, dsn, "PGPASSWORD or ~/.pgpass"); err != nil {
			return err
		}
	}
	from, err := db.Open(a.ctx, c.From)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer from.Close()
	to, err := db.Open(a.ctx, c.To)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer to.Close()
	start := time.Now()
	counts, err := db.Copy(a.ctx, from, to, func(table string, rows int64) {
		if rows%10000 == 0 {
			fmt.Fprintf(a.stderr, "copying %s: %d rows\n", table, rows)
		}
	})
	if err != nil {
		return err
	}
	for _, t := range db.Tables() {
		fmt.Fprintf(a.stdout, "%-22s %d rows\n", t, counts[t])
	}
	fmt.Fprintf(a.stderr, "copied and verified in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}
