package main

import (
	"archive/zip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
)

// zipEntries lists a ZIP's file names, checking each is a PDF.
func zipEntries(t *testing.T, path string) []string {
	t.Helper()
	z, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer z.Close()
	var names []string
	for _, f := range z.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 5)
		if _, err := r.Read(head); err != nil || string(head) != "%PDF-" {
			t.Errorf("%s in %s is not a PDF (%q, %v)", f.Name, path, head, err)
		}
		r.Close()
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names
}

// onlyFiles asserts that dir holds exactly the files named (no temporary file left).
func onlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %o, want 600", e.Name(), perm)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func TestCertificatesPdfCLI(t *testing.T) {
	t.Parallel()
	env := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) { c.PublicURL = "https://sertifikat.example.go.id" })
	fed := env.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unit := env.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	session, cadres := env.TrainedNamed(t, fed, unit, "31", "Siti Rahayu", "Budi Santoso", "Dewi Lestari")
	certs := env.Issue(t, unit, cadres...)
	if _, err := env.Certs.RevokeCertificate(testenv.Ctx(unit), &knkv1.RevokeCertificateRequest{Name: certs[1].Name, Reason: "salah data"}); err != nil {
		t.Fatal(err)
	}
	// Another province's certificate stays out of the DKI ZIPs.
	bali := env.Org(t, "disnaker-bali", knkv1.Organization_KIND_TRAINING_UNIT, "51")
	_, balinese := env.TrainedNamed(t, fed, bali, "51", "Made Wirawan")
	env.Issue(t, bali, balinese...)
	number := func(c *knkv1.Certificate) string { return strings.TrimPrefix(c.Name, "certificates/") }
	valid := []string{number(certs[0]) + ".pdf", number(certs[2]) + ".pdf"}

	dir := t.TempDir()
	one := filepath.Join(dir, "siti.pdf")
	_, stderr := certCtl(t, env, unit, "certificates", "pdf", number(certs[0]), "-o", one)
	if b, err := os.ReadFile(one); err != nil || !strings.HasPrefix(string(b), "%PDF-") {
		t.Errorf("%s: %v %.10q", one, err, b)
	}
	if !strings.Contains(stderr, "wrote "+one) {
		t.Errorf("stderr: %s", stderr)
	}

	bySession := filepath.Join(dir, "session.zip")
	_, stderr = certCtl(t, env, unit, "certificates", "pdf", "--session", session, "-o", bySession)
	if got := zipEntries(t, bySession); !slices.Equal(got, valid) {
		t.Errorf("session ZIP holds %q, want the valid %q", got, valid)
	}
	if !strings.Contains(stderr, "[1/2] ") || !strings.Contains(stderr, "[2/2] ") || !strings.Contains(stderr, "2 certificates") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}
	byProvince := filepath.Join(dir, "dki.zip")
	certCtl(t, env, env.AdminKey, "certificates", "pdf", "--province", "31", "-o", byProvince)
	if got := zipEntries(t, byProvince); !slices.Equal(got, valid) {
		t.Errorf("province ZIP holds %q, want %q", got, valid)
	}
	onlyFiles(t, dir, "siti.pdf", "session.zip", "dki.zip")

	// Failures write nothing, not even half a file.
	failed := t.TempDir()
	for _, args := range [][]string{
		{"certificates", "pdf", number(certs[1]), "-o", filepath.Join(failed, "revoked.pdf")},
		{"certificates", "pdf", "KNK-31-2026-999999", "-o", filepath.Join(failed, "missing.pdf")},
		{"certificates", "pdf", "--province", "35", "-o", filepath.Join(failed, "none.zip")},
		{"certificates", "pdf", "-o", filepath.Join(failed, "what.pdf")},
		{"certificates", "pdf", number(certs[0]), "--province", "31", "-o", filepath.Join(failed, "both.zip")},
		{"certificates", "pdf", "--session", session, "--province", "31", "-o", filepath.Join(failed, "both.zip")},
	} {
		if _, stderr, err := certRun(t, env, unit, args...); err == nil {
			t.Errorf("knkctl %s succeeded:\n%s", strings.Join(args, " "), stderr)
		}
	}
	// The Bali unit may not print DKI's certificates: it gets no ZIP at all.
	if _, _, err := certRun(t, env, bali, "certificates", "pdf", "--province", "31", "-o", filepath.Join(failed, "dki.zip")); err == nil {
		t.Errorf("another province's unit printed DKI's certificates")
	}
	if _, _, err := certRun(t, env, bali, "certificates", "pdf", number(certs[0]), "-o", filepath.Join(failed, "siti.pdf")); err == nil ||
		!strings.Contains(err.Error(), "NOT_FOUND") {
		t.Errorf("another province's unit printing one DKI certificate: %v, want NOT_FOUND", err)
	}
	onlyFiles(t, failed)
}
