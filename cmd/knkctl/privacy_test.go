package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// knkctl cadres access-log and export: the export is one JSON document in a file
// only its owner can read, and an existing file is never overwritten.
func TestE2EAccessLogAndExport(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	other := e.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, "")
	c, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
		DisplayName: "Siti Rahayu", Nik: "3171055508900004", ProvinceCode: "31"}})
	if err != nil {
		t.Fatal(err)
	}
	e2eCtl(t, e, fed, "cadres", "get", c.Name)

	out, _ := e2eCtl(t, e, fed, "cadres", "access-log", c.Name, "--all")
	var log struct {
		Entries []struct{ Method, Fields string } `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil || len(log.Entries) != 1 || log.Entries[0].Method != "GetCadre" ||
		log.Entries[0].Fields != "FIELDS_FULL" {
		t.Errorf("access-log = %s (%v)", out, err)
	}

	file := filepath.Join(t.TempDir(), "siti.json")
	_, stderr := e2eCtl(t, e, fed, "cadres", "export", strings.TrimPrefix(c.Name, "cadres/"), "--out", file)
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v, %v; want mode 0600", st, err)
	}
	b, _ := os.ReadFile(file)
	var x struct {
		Cadre     struct{ Nik string }      `json:"cadre"`
		AccessLog []struct{ Method string } `json:"access_log"`
	}
	if err := json.Unmarshal(b, &x); err != nil || x.Cadre.Nik != "3171055508900004" || len(x.AccessLog) != 2 ||
		x.AccessLog[1].Method != "ExportCadre" {
		t.Errorf("export = %s (%v)", b, err)
	}
	if !strings.Contains(stderr, "2 access-log entries") || strings.Contains(stderr, "3171055508900004") {
		t.Errorf("stderr = %q", stderr)
	}
	if _, _, err := e2eRun(t, "", "--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, fed), "cadres", "export", c.Name, "--out", file); err == nil {
		t.Error("export overwrote an existing file")
	}
	// Another federation: not found, and no file.
	other2 := filepath.Join(t.TempDir(), "x.json")
	_, stderr, err = e2eRun(t, "", "--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, other), "cadres", "export", c.Name, "--out", other2)
	if err == nil || !strings.Contains(err.Error()+stderr, "not found") {
		t.Errorf("export by another federation: %v %s", err, stderr)
	}
	if _, err := os.Stat(other2); err == nil {
		t.Error("a refused export left a file")
	}
}
