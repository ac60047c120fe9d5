package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/secretarg"
	"github.com/knk-id/knk/internal/secretbox"
	"github.com/knk-id/knk/services/certificate"
)

// rekeyCmd re-encrypts the stored signing keys under a new key-encryption key,
// working on the database directly (knkd stopped).
type rekeyCmd struct {
	DB     string `name:"db" required:"" env:"KNK_DB" help:"SQLite file path or postgres:// DSN of knkd's store."`
	KEK    string `name:"kek" required:"" type:"existingfile" placeholder:"FILE" help:"The key-encryption key file the store is used with now."`
	NewKEK string `name:"new-kek" required:"" type:"path" placeholder:"FILE" help:"The new key-encryption key file; made (0600) if it does not exist."`
}

func (c *rekeyCmd) Run(a *app) error {
	if err := secretarg.RefuseDSN(a.args, "--db", c.DB, "KNK_DB, PGPASSWORD or ~/.pgpass"); err != nil {
		return err
	}
	current, err := secretbox.ReadKeyFile(c.KEK)
	if err != nil {
		return err
	}
	next, err := secretbox.ReadKeyFile(c.NewKEK)
	if errors.Is(err, fs.ErrNotExist) {
		next, err = secretbox.CreateKeyFile(c.NewKEK)
	}
	if err != nil {
		return err
	}
	if next.ID() == current.ID() {
		return errors.New("--new-kek holds the same key as --kek")
	}
	store, err := db.Open(a.ctx, c.DB)
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := certificate.Rekey(a.ctx, store, current, next)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "re-encrypted: %d signing keys under %s; start every knkd with --key-encryption-key-file %s\n", n, next.ID(), c.NewKEK)
	return err
}
