package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/services/privacy"
)

// nikKeyFile is where the key of the NIK hash is read from: the configured file,
// or on SQLite a 0600 file beside the database, created on first start. On
// PostgreSQL without a file it is "": every replica must share the key, so it is
// never generated there.
func nikKeyFile(cfg Config) string {
	if cfg.NIKHashKeyFile != "" || db.IsPostgres(cfg.DB) {
		return cfg.NIKHashKeyFile
	}
	return cfg.DB + ".nik-key"
}

// loadNIKKey reads the key of the NIK hash (at least 32 bytes; white space
// around it is ignored). The default file beside a SQLite database is created
// with a fresh random key when missing; a configured file must exist.
func loadNIKKey(cfg Config) ([]byte, error) {
	path := nikKeyFile(cfg)
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && cfg.NIKHashKeyFile == "" {
		raw := make([]byte, 32)
		rand.Read(raw)
		b = []byte(hex.EncodeToString(raw) + "\n")
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("NIK hash key: %w", err)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < 32 {
		return nil, fmt.Errorf("NIK hash key %s: needs at least 32 bytes (e.g. 64 hex digits from 'openssl rand -hex 32')", path)
	}
	return key, nil
}

// Sweep runs the retention sweep once (tests call it instead of waiting).
func (s *Server) Sweep(ctx context.Context) (privacy.Swept, error) { return s.privacy.Sweep(ctx) }
