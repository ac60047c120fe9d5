package main

import (
	"fmt"
	"time"

	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/services/organization"
)

// bootstrapCmd creates the organization "admin" (KIND_ADMIN) if it is missing and
// a new key for it, working on the database directly (migrating it if new), so
// that the first admin key exists before anyone can call the API.
type bootstrapCmd struct {
	DB string `name:"db" required:"" env:"KNK_DB" help:"SQLite file path or postgres:// DSN of knkd's store."`
}

func (c *bootstrapCmd) Run(a *app) error {
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
