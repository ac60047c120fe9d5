// Package dbtest gives tests fresh, real stores: a SQLite file in a temporary
// directory, or a new schema in the PostgreSQL server named by
// KNK_TEST_POSTGRES_DSN, dropped when the test ends.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// PostgresDSN is the environment variable naming the test PostgreSQL server.
const PostgresDSN = "KNK_TEST_POSTGRES_DSN"

// Engines lists the engines a store test should cover: SQLite always,
// PostgreSQL when KNK_TEST_POSTGRES_DSN is set.
func Engines() []string {
	if os.Getenv(PostgresDSN) != "" {
		return []string{"sqlite", "postgres"}
	}
	return []string{"sqlite"}
}

// Engine is the engine the service tests run on: KNK_TEST_STORE ("sqlite" when
// unset). `make test` runs them once per engine.
func Engine() string {
	if e := os.Getenv("KNK_TEST_STORE"); e != "" {
		return e
	}
	return "sqlite"
}

// DSN returns the address of a fresh, empty store of the engine.
func DSN(t testing.TB, engine string) string {
	t.Helper()
	if engine == "sqlite" {
		return filepath.Join(t.TempDir(), "knk.db")
	}
	base := postgresBase(t, engine)
	schema := newName()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresDSN, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// IsolatedDSN is DSN, but on PostgreSQL the store gets a database of its own
// rather than a schema in the shared one. NOTIFY reaches every listener of a
// database, so a store in a shared database hears the events that the other
// tests' stores commit (running in parallel, in other packages); tests that
// assert EventsChanged stays open, or wakes up for one particular commit, need
// a store nobody else writes to. The database is dropped when the test ends.
func IsolatedDSN(t testing.TB, engine string) string {
	t.Helper()
	if engine == "sqlite" {
		return DSN(t, engine)
	}
	base := postgresBase(t, engine)
	name := newName()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		// FORCE ends the sessions of a store the test left open.
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresDSN, err)
	}
	u.Path = "/" + name
	return u.String()
}

// postgresBase returns KNK_TEST_POSTGRES_DSN, failing the test without it.
func postgresBase(t testing.TB, engine string) string {
	t.Helper()
	base := os.Getenv(PostgresDSN)
	if base == "" {
		t.Fatalf("engine %q needs %s", engine, PostgresDSN)
	}
	return base
}

// newName returns a fresh name for a test schema or database.
func newName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "knk_test_" + hex.EncodeToString(b)
}
