package main

import (
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/internal/topic"
	"github.com/knk-id/knk/services/certificate"
)

// TestBackupUnderLoadRestores takes a backup of a SQLite store while cadres are
// created and certificates issued without pause, restores it, and checks that
// the copy is one consistent moment of the store: whole, every event numbered
// without a gap, every row that an event announces present and none that it
// does not, every certificate's signature good, and knkd serving from it.
func TestBackupUnderLoadRestores(t *testing.T) {
	t.Parallel()
	e := testenv.StartAt(t, dbtest.DSN(t, "sqlite"))
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unit := e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	trained := e.Trained(t, fed, unit, "31", 60)

	var (
		stop            = make(chan struct{})
		wg              sync.WaitGroup
		created, issued atomic.Int64
		writeErr        atomic.Value
	)
	wg.Add(2)
	go func() { // cadres, as an import would add them
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
				DisplayName: "Kader Baru", Nik: testenv.NIK(), ProvinceCode: "32"}})
			if err != nil {
				writeErr.Store(err)
				return
			}
			created.Add(1)
		}
	}()
	go func() { // certificates: each one a certificate, a forum membership, a cadre update and events
		defer wg.Done()
		for _, c := range trained {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := e.Certs.IssueCertificate(testenv.Ctx(unit), &knkv1.IssueCertificateRequest{Cadre: c.Name}); err != nil {
				writeErr.Store(err)
				return
			}
			issued.Add(1)
		}
	}()
	for created.Load() < 20 || issued.Load() < 5 {
		if err := writeErr.Load(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}

	dir := t.TempDir()
	backup := filepath.Join(dir, "knk-backup.db")
	before := created.Load() + issued.Load()
	stdout, stderr, err := e2eRun(t, "", "backup", "--db", e.DBPath, "-o", backup)
	if err != nil {
		t.Fatalf("knkctl backup: %v\n%s", err, stderr)
	}
	during := created.Load() + issued.Load() - before
	for created.Load()+issued.Load() < before+during+10 { // writes go on after the backup
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err := writeErr.Load(); err != nil {
		t.Fatalf("a write failed while the backup ran: %v", err)
	}
	if !strings.Contains(stdout, "integrity ok") {
		t.Errorf("backup output: %s", stdout)
	}
	t.Logf("%s%d writes committed while the backup ran", stdout, during)
	st, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600 (it holds NIKs)", st.Mode().Perm())
	}
	if _, _, err := e2eRun(t, "", "backup", "--db", e.DBPath, "-o", backup); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a backup over an existing file: %v, want a refusal", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*partial*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	restored := filepath.Join(t.TempDir(), "restored.db")
	if _, stderr, err := e2eRun(t, "", "restore", "--from", backup, "--db", restored); err != nil {
		t.Fatalf("knkctl restore: %v\n%s", err, stderr)
	}
	if _, _, err := e2eRun(t, "", "restore", "--from", backup, "--db", restored); err == nil || !strings.Contains(err.Error(), "empty path") {
		t.Errorf("a restore over an existing store: %v, want a refusal", err)
	}
	if _, _, err := e2eRun(t, "", "restore", "--from", e.DBPath+"-wal", "--db", filepath.Join(dir, "x.db")); err == nil {
		t.Errorf("restoring a file that is not a backup succeeded")
	}

	conn, err := sql.Open("sqlite3", "file:"+restored+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var integrity string
	if err := conn.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check of the restored copy: %q %v", integrity, err)
	}
	var n, lo, hi int64
	if err := conn.QueryRow(`SELECT COUNT(*), MIN(sequence), MAX(sequence) FROM events`).Scan(&n, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if lo != 1 || hi != n {
		t.Errorf("events in the copy: %d from %d to %d, want 1..%d without a gap", n, lo, hi, n)
	}
	// Every row is announced by its event in the same transaction: the counts agree
	// only if the copy is one moment of the store.
	for _, c := range []struct{ table, event string }{
		{"cadres", "cadre.created"},
		{"certificates", "certificate.issued"},
		{"forum_memberships", "forum.member_joined"},
	} {
		var rows, events int64
		if err := conn.QueryRow(`SELECT (SELECT COUNT(*) FROM `+c.table+`), (SELECT COUNT(*) FROM events WHERE type = ?)`, c.event).Scan(&rows, &events); err != nil {
			t.Fatal(err)
		}
		if rows != events {
			t.Errorf("the copy has %d %s but %d %s events", rows, c.table, events, c.event)
		}
	}
	var certified int64
	conn.QueryRow(`SELECT COUNT(*) FROM cadres WHERE state = ?`, int32(knkv1.Cadre_STATE_CERTIFIED)).Scan(&certified)
	certs := verifyAll(t, conn)
	if certs < 5 || certs > issued.Load() {
		t.Errorf("the copy has %d certificates; 5 were issued before the backup began and %d in all", certs, issued.Load())
	}
	if certified != certs {
		t.Errorf("the copy has %d certified cadres and %d certificates", certified, certs)
	}

	// knkd serves from the restored copy, with the store's key-encryption key, and carries on numbering.
	back := testenv.StartWith(t, restored, func(cfg *testenv.Config) { cfg.KeyEncryptionKeyFile = testenv.KEKFile(t, e.DBPath) })
	stats, err := back.Stats.ListProvinceStats(testenv.Ctx(e.AdminKey), &knkv1.ListProvinceStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var served int64
	for _, p := range stats.Provinces {
		served += p.Cadres
	}
	if want := countOf(t, conn, "cadres"); served != want {
		t.Errorf("knkd on the restored copy counts %d cadres, the copy holds %d", served, want)
	}
	if certs == int64(len(trained)) {
		return
	}
	next := trained[certs] // the first trained cadre without a certificate in the copy
	cert, err := back.Certs.IssueCertificate(testenv.Ctx(unit), &knkv1.IssueCertificateRequest{Cadre: next.Name})
	if err != nil {
		t.Fatalf("issue on the restored copy: %v", err)
	}
	if want := fmt.Sprintf("certificates/KNK-31-2026-%06d", certs+1); cert.Name != want {
		t.Errorf("next certificate on the copy is %s, want %s", cert.Name, want)
	}
}

func countOf(t *testing.T, conn *sql.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// verifyAll checks every certificate's signature in the store against the
// public key it names, and returns how many there are.
func verifyAll(t *testing.T, conn *sql.DB) int64 {
	t.Helper()
	rows, err := conn.Query(`SELECT c.number, COALESCE(c.verification_code, ''), c.holder_name, c.province_code, c.topics,
		c.issuer, c.issue_time, c.expire_time, c.canonical_version, c.signature, k.public_key
		FROM certificates c JOIN signing_keys k ON k.id = c.key_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var (
			c                     certificate.Content
			topics, issue, expire int64
			version               int32
			sig, pub              []byte
		)
		if err := rows.Scan(&c.Number, &c.VerificationCode, &c.HolderName, &c.ProvinceCode, &topics, &c.Issuer,
			&issue, &expire, &version, &sig, &pub); err != nil {
			t.Fatal(err)
		}
		c.Topics, c.IssueTime, c.ExpireTime = topic.List(topics), time.UnixMicro(issue), time.UnixMicro(expire)
		if !ed25519.Verify(pub, c.Canonical(version), sig) {
			t.Errorf("certificate %s in the copy: signature does not verify", c.Number)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if total := countOf(t, conn, "certificates"); total != n {
		t.Errorf("%d certificates but %d with a published key", total, n)
	}
	return n
}
