package main

import (
	"fmt"
	"time"

	"github.com/knk-id/knk/internal/db"
)

// backupCmd copies a running knkd's SQLite store to a file without stopping it.
type backupCmd struct {
	DB  string `name:"db" required:"" env:"KNK_DB" help:"knkd's SQLite store (knkd may keep running)."`
	Out string `name:"output" short:"o" required:"" help:"Backup file to write (mode 0600); must not exist yet."`
}

func (c *backupCmd) Run(a *app) error {
	start := time.Now()
	info, err := db.Backup(a.ctx, c.DB, c.Out)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "backup %s: %d bytes, integrity ok, %d cadres, %d certificates, events up to sequence %d\n",
		c.Out, info.Bytes, info.Cadres, info.Certificates, info.LastEvent)
	fmt.Fprintf(a.stderr, "taken in %s. The signing keys inside are sealed: keep the key-encryption key (%s.kek, or --key-encryption-key-file) safe too, but apart from the backup.\n",
		time.Since(start).Round(time.Millisecond), c.DB)
	return nil
}

// restoreCmd writes a backup back as a SQLite store at a new path.
type restoreCmd struct {
	From string `name:"from" required:"" type:"existingfile" help:"Backup file written by knkctl backup."`
	DB   string `name:"db" required:"" help:"Where to put the restored store; the path must not exist yet."`
}

func (c *restoreCmd) Run(a *app) error {
	info, err := db.Restore(a.ctx, c.From, c.DB)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "restored %s: %d cadres, %d certificates, events up to sequence %d\n",
		c.DB, info.Cadres, info.Certificates, info.LastEvent)
	fmt.Fprintf(a.stderr, "start knkd with --db %s and the key-encryption key the backed-up store used.\n", c.DB)
	return nil
}
