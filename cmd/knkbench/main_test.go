package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/idn"
)

// TestSmokeRun runs the whole harness at tiny sizes so it cannot rot: every
// figure is reported, every implemented one is positive, and the JSON parses.
// It asserts nothing about speed.
func TestSmokeRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	args := []string{"--small", "--json", out, "--db", dbtest.DSN(t, dbtest.Engine())}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("knkbench --small: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Figures []figure           `json:"figures"`
		Values  map[string]float64 `json:"values"`
	}
	if err := json.Unmarshal(raw, &report); err != nil {
		t.Fatalf("the JSON report does not parse: %v\n%s", err, raw)
	}
	want := []string{
		"baseline_grpc_rps", "baseline_rest_rps", "baseline_sqlite_rows_per_s",
		"create_cadre_rps", "import_rows_per_s", "import_peak_rss_mb", "get_cadre_rps",
		"list_cadres_rps", "list_first_page_p50_ms", "list_deep_page_p50_ms",
		"issue_certificate_rps", "verify_rest_rps", "verify_rest_p99_ms", "verify_page_rps", "verify_page_p99_ms",
		"store_write_rps", // measured on SQLite only, skipped when knkd runs on PostgreSQL
		// knkctl import of a CSV file and an .xlsx workbook: n/a here, where no
		// knkctl binary stands beside the test binary (TestSmokeRunWithServerProcess has one).
		"import_csv_rows_per_s", "import_csv_client_rss_mb", "import_csv_server_rss_mb",
		"import_xlsx_rows_per_s", "import_xlsx_client_rss_mb", "import_xlsx_server_rss_mb",
		"create_during_import_rps",
		"stats_p99_ms",
	}
	got := map[string]figure{}
	for _, f := range report.Figures {
		got[f.Name] = f
	}
	for _, name := range want {
		f, ok := got[name]
		switch {
		case !ok:
			t.Errorf("figure %s is missing from the report", name)
		case f.Error != "":
			t.Errorf("figure %s failed: %s", name, f.Error)
		case f.Skipped == "" && !(f.Value > 0 && report.Values[name] == f.Value):
			t.Errorf("figure %s = %v (values: %v), want > 0 in both", name, f.Value, report.Values[name])
		case f.Skipped != "":
			t.Logf("figure %s: n/a (%s)", name, f.Skipped)
		}
	}
	if len(report.Figures) != len(want) {
		t.Errorf("report has %d figures, want %d", len(report.Figures), len(want))
	}
	for _, name := range want[:8] { // implemented since the foundation issue
		if got[name].Skipped != "" {
			t.Errorf("figure %s skipped: %s", name, got[name].Skipped)
		}
	}
	// The CPU each call costs the machine, from /proc/stat, for every rate
	// measured over a window (/proc/stat counts in 10 ms ticks, so the 300-row
	// import of --small, a few ms, may show none).
	for _, name := range []string{"baseline_grpc_rps", "create_cadre_rps", "get_cadre_rps"} {
		if got[name].CPUUs <= 0 {
			t.Errorf("figure %s has no CPU per op: %+v", name, got[name])
		}
	}
	if !strings.Contains(stdout.String(), "create_cadre_rps") {
		t.Errorf("the table does not name create_cadre_rps:\n%s", &stdout)
	}
}

// TestOnlyMeasuresTheFiguresAskedFor runs the fairness figures alone (issue 11):
// single creates while an import runs, against creates alone, and nothing else.
func TestOnlyMeasuresTheFiguresAskedFor(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	args := []string{"--small", "--json", out, "--db", dbtest.DSN(t, dbtest.Engine()),
		"--only", "create_cadre_rps,create_during_import_rps"}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("knkbench %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, &stdout, &stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Figures []figure `json:"figures"`
	}
	if err := json.Unmarshal(raw, &report); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range report.Figures {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "create_cadre_rps,create_during_import_rps" {
		t.Fatalf("figures %v, want create_cadre_rps and create_during_import_rps only", names)
	}
	during := report.Figures[1]
	if during.Value <= 0 || during.Baseline != "create_cadre_rps" || during.Ratio <= 0 || !strings.Contains(during.Note, "rows/s") {
		t.Errorf("create_during_import_rps = %+v, want a rate, its ratio to create_cadre_rps and the import's rate", during)
	}
}

// TestSmokeRunWithServerProcess runs the built knkbench against the built
// knkd in its own process, with the echo baselines in a process of their own
// too, and checks that every figure of the server is there and that no child
// process is left behind.
func TestSmokeRunWithServerProcess(t *testing.T) {
	dir := t.TempDir()
	bench, knkd := filepath.Join(dir, "knkbench"), filepath.Join(dir, "knkd")
	for bin, pkg := range map[string]string{bench: ".", knkd: "../knkd", filepath.Join(dir, "knkctl"): "../knkctl"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	out := filepath.Join(dir, "bench.json")
	cmd := exec.Command(bench, "--small", "--server-bin", knkd, "--json", out)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("knkbench --server-bin: %v\n%s", err, output)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Values map[string]float64 `json:"values"`
	}
	if err := json.Unmarshal(raw, &report); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"baseline_grpc_rps", "baseline_rest_rps", "create_cadre_rps", "get_cadre_rps",
		"import_peak_rss_mb", "verify_rest_rps", "import_csv_rows_per_s", "import_csv_client_rss_mb",
		"import_csv_server_rss_mb", "import_xlsx_rows_per_s", "import_xlsx_client_rss_mb", "import_xlsx_server_rss_mb"} {
		if report.Values[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, report.Values[name])
		}
	}
	if ps, _ := exec.Command("pgrep", "-f", bench+" --serve-echo|"+knkd).Output(); len(ps) > 0 {
		t.Errorf("child processes left running: %s", ps)
	}
}

func TestPersonsAreDistinctValidNIKs(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for i := range int64(20000) {
		p := personAt(i)
		n, err := idn.ParseNIK(p.nik, now)
		if err != nil {
			t.Fatalf("row %d: NIK %s: %v", i, p.nik, err)
		}
		if seen[p.nik] {
			t.Fatalf("row %d repeats NIK %s", i, p.nik)
		}
		seen[p.nik] = true
		if got := n.BirthDate.Format(time.DateOnly); got != p.birthDate || n.Female != p.female || n.Province != p.province {
			t.Fatalf("row %d: NIK %s decodes to %s female=%v province %s, generator says %s %v %s",
				i, p.nik, got, n.Female, n.Province, p.birthDate, p.female, p.province)
		}
	}
}

// TestUnimplementedIsSkipped checks the path a figure takes before its service
// exists: UNIMPLEMENTED over gRPC, or 501 over REST, is "n/a (not implemented)".
func TestUnimplementedIsSkipped(t *testing.T) {
	unimplemented := func(context.Context) error { return status.Error(codes.Unimplemented, "not yet") }
	_, err := measure(context.Background(), 4, 10*time.Millisecond, unimplemented)
	if !errors.Is(err, errNotImplemented) {
		t.Fatalf("measure with an UNIMPLEMENTED op: %v, want errNotImplemented", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotImplemented)
	}))
	defer srv.Close()
	restErr := getOK(context.Background(), srv.Client(), srv.URL+"/v1/certificates/KNK-31-2026-000001:verify")
	if !errors.Is(restErr, errNotImplemented) {
		t.Fatalf("GET answering 501: %v, want errNotImplemented", restErr)
	}
	b := &bench{log: io.Discard}
	b.record("verify_rest_rps", restErr)
	b.same("verify_rest_p99_ms", "verify_rest_rps")
	var out bytes.Buffer
	if err := b.report(&out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "n/a (not implemented)"); n != 2 {
		t.Errorf("the table shows %d figures as n/a (not implemented), want 2:\n%s", n, &out)
	}
}
