package main

import (
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// TestStatsVerifyFindsAndRepairsDrift breaks a counter behind knkd's back and
// checks that `knkctl stats verify` names it, fails, and with --repair fixes it.
func TestStatsVerifyFindsAndRepairsDrift(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unit := e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	for _, c := range e.Trained(t, fed, unit, "31", 3) {
		if _, err := e.Certs.IssueCertificate(testenv.Ctx(unit), &knkv1.IssueCertificateRequest{Cadre: c.Name}); err != nil {
			t.Fatal(err)
		}
	}
	stdout, _, err := e2eRun(t, "", "stats", "verify", "--db", e.DBPath)
	if err != nil || !strings.Contains(stdout, "every counter matches") {
		t.Fatalf("verify of a healthy store: %v\n%s", err, stdout)
	}
	conn := e.SQL(t)
	// Drift: a lost increment, and a counter for something that does not exist.
	for _, q := range []string{
		`INSERT INTO province_count_deltas (province_code, metric, n) VALUES ('31', 'certified', -1)`,
		`INSERT INTO province_counts (province_code, metric, n) VALUES ('35', 'cadres', 7)`,
	} {
		if _, err := conn.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	stdout, _, err = e2eRun(t, "", "stats", "verify", "--db", e.DBPath)
	if err == nil || !strings.Contains(err.Error(), "2 counters differ") {
		t.Fatalf("verify after drift: %v\n%s", err, stdout)
	}
	for _, want := range []string{"province 31 certified", "counter 2, recount 3", "province 35 cadres", "counter 7, recount 0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, stdout)
		}
	}
	if stdout, _, err = e2eRun(t, "", "stats", "verify", "--db", e.DBPath, "--repair"); err != nil || !strings.Contains(stdout, "2 counters repaired") {
		t.Fatalf("repair: %v\n%s", err, stdout)
	}
	if stdout, _, err = e2eRun(t, "", "stats", "verify", "--db", e.DBPath); err != nil {
		t.Fatalf("verify after repair: %v\n%s", err, stdout)
	}
	resp, err := e.Stats.ListProvinceStats(testenv.Ctx(e.AdminKey), &knkv1.ListProvinceStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Provinces {
		if p.ProvinceCode == "31" && (p.Certified != 3 || p.Cadres != 3 || p.ForumMembers != 3) {
			t.Errorf("province 31 after repair: %v", p)
		}
	}
}
