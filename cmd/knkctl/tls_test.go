package main

import (
	"strings"
	"testing"

	"github.com/knk-id/knk/internal/testenv"
)

// TestKnkctlOverTLS: knkctl reaches a knkd that serves TLS and requires client
// certificates with --ca, --client-cert and --client-key, and fails closed otherwise.
func TestKnkctlOverTLS(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	e := testenv.StartTLS(t, f, func(c *testenv.Config) { c.ClientCA = f.CA })
	base := []string{"--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, e.AdminKey), "--timeout", "5s"}
	withTLS := append(append([]string{}, base...), "--ca", f.CA, "--client-cert", f.ClientCert, "--client-key", f.ClientKey)
	out, stderr, err := e2eRun(t, "", append(withTLS, "orgs", "list")...)
	if err != nil || !strings.Contains(out, "organizations/admin") {
		t.Fatalf("knkctl --ca --client-cert orgs list: %v\n%s%s", err, out, stderr)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"plaintext to a TLS port", base},
		{"--insecure to a TLS port", append(append([]string{}, base...), "--insecure")},
		{"no client certificate", append(append([]string{}, base...), "--ca", f.CA)},
		{"another CA", append(append([]string{}, base...), "--ca", testenv.NewTLSFiles(t).CA, "--client-cert", f.ClientCert, "--client-key", f.ClientKey)},
	}
	for _, tt := range tests {
		if out, _, err := e2eRun(t, "", append(tt.args, "orgs", "list")...); err == nil {
			t.Errorf("%s: answered %s", tt.name, out)
		}
	}
	if _, _, err := e2eRun(t, "", append(base, "orgs", "list")...); err == nil || !strings.Contains(err.Error(), "pass --ca") {
		t.Errorf("plaintext to a TLS port: %v, want a hint to pass --ca", err)
	}
	if _, _, err := e2eRun(t, "", append(withTLS, "--insecure", "orgs", "list")...); err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("--insecure with --ca: %v, want a refusal", err)
	}
}

func TestKnkctlRefusesAKeyOnTheCommandLine(t *testing.T) {
	e := testenv.Start(t)
	for _, args := range [][]string{
		{"--addr", e.Server.GRPCAddr(), "--key", e.AdminKey, "orgs", "list"},
		{"--addr", e.Server.GRPCAddr(), "--key=" + e.AdminKey, "orgs", "list"},
		{"--addr", e.Server.GRPCAddr(), "orgs", "list", "--key", e.AdminKey},
	} {
		out, stderr, err := e2eRun(t, "", args...)
		if err == nil || !strings.Contains(err.Error(), "KNK_KEY or --key-file") || out != "" {
			t.Errorf("%q: %v (stdout %q), want a refusal naming KNK_KEY and --key-file", args, err, out)
		}
		if strings.Contains(stderr, e.AdminKey) || (err != nil && strings.Contains(err.Error(), e.AdminKey)) {
			t.Errorf("%q: the refusal repeats the key", args)
		}
	}
	for _, args := range [][]string{
		{"bootstrap", "--db", "postgres://knk:s3cret@127.0.0.1:1/knk"},
		{"migrate-store", "--from", "knk.db", "--to", "postgres://knk:s3cret@127.0.0.1:1/knk"},
	} {
		if _, _, err := e2eRun(t, "", args...); err == nil || !strings.Contains(err.Error(), "password on the command line") {
			t.Errorf("%q: %v, want a refusal of the password", args, err)
		}
	}
}
