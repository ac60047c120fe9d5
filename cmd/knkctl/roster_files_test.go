package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// TestImportRostersAsOfficesKeepThem imports the committed 10,000-row test roster
// (scripts/gen-test-roster) as comma CSV, semicolon CSV with a BOM and CRLF, and
// .xlsx through knkctl against a real server, and checks that every line of the
// source is accounted for exactly as expected: the counts, and every line of the
// two reports.
func TestImportRostersAsOfficesKeepThem(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/roster-expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var exp struct {
		Rows, Created, Warned, Duplicate, Rejected int
		Lines                                      map[int]string
	}
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"roster-comma.csv", "roster-semicolon.csv", "roster.xlsx"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			e := testenv.Start(t)
			fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
			dir := t.TempDir()
			rej, warn := filepath.Join(dir, "rejections.csv"), filepath.Join(dir, "warnings.csv")
			out, _, err := e2eRun(t, "", "--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, fed), "import", "--lang", "en",
				"--rejections", rej, "--warnings", warn, filepath.Join("testdata", file))
			var exit *exitError
			if !errors.As(err, &exit) || exit.code != 2 {
				t.Errorf("import: %v, want exit status 2 (some rows rejected)", err)
			}
			want := fmt.Sprintf("created: %d\nupdated: 0\nunchanged: 0\nchanged: 0\nwarned: %d\nduplicate: %d\nrejected: %d\nwarnings: %s\nrejections: %s\n",
				exp.Created, exp.Warned, exp.Duplicate, exp.Rejected, warn, rej)
			if out != want {
				t.Errorf("import printed\n%s\nwant\n%s", out, want)
			}
			// Every line is created (perhaps with warnings), a duplicate or rejected.
			if exp.Created+exp.Duplicate+exp.Rejected != exp.Rows {
				t.Fatalf("expected.json does not add up: %+v", exp)
			}
			got := map[int]string{}
			for line, fields := range readReport(t, rej) {
				got[line] = "rejected:" + fields
			}
			for line, fields := range readReport(t, warn) {
				if prev, twice := got[line]; twice {
					t.Errorf("line %d is in both reports: %s and warned %s", line, prev, fields)
				}
				got[line] = "warned"
			}
			for line, what := range exp.Lines {
				if strings.HasPrefix(what, "duplicate") {
					what = "warned" // listed among the warnings, as a repeat of its line
				}
				if got[line] != what {
					t.Errorf("line %d: reported %q, want %q", line, got[line], what)
				}
			}
			for line, what := range got {
				if _, listed := exp.Lines[line]; !listed {
					t.Errorf("line %d reported as %s, want it simply created", line, what)
				}
			}
			resp, err := e.Cadres.ListCadres(testenv.Ctx(fed), &knkv1.ListCadresRequest{PageSize: 1})
			if err != nil || len(resp.Cadres) != 1 {
				t.Fatalf("list: %v", err)
			}
		})
	}
}

// readReport reads a report: line -> its fields.
func readReport(t *testing.T, path string) map[int]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) == 0 || strings.Join(recs[0], ",") != "line,name,fields,values,reasons" {
		t.Fatalf("%s: %v, header %v", path, err, recs[:min(1, len(recs))])
	}
	out := map[int]string{}
	for _, r := range recs[1:] {
		line, err := strconv.Atoi(r[0])
		if err != nil || r[4] == "" {
			t.Errorf("%s: bad record %q", path, r)
		}
		if _, twice := out[line]; twice {
			t.Errorf("%s: line %d reported twice", path, line)
		}
		out[line] = r[2]
	}
	return out
}
