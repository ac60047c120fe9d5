package main

import (
	"bytes"
	"context"
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
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
)

// e2eRun runs knkctl with args and returns what it wrote and its error.
func e2eRun(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// e2eCtl runs knkctl against e with key; it fails the test if the command fails.
func e2eCtl(t *testing.T, e *testenv.Env, key string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := e2eRun(t, "", append([]string{"--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, key)}, args...)...)
	if err != nil {
		t.Fatalf("knkctl %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

func e2eNIK(i int) string {
	return fmt.Sprintf("3171%02d150890%04d", 1+(i/9999)%99, 1+i%9999)
}

// e2eKeyWorks fails the test unless key may list organizations (an admin key).
func e2eKeyWorks(t *testing.T, e *testenv.Env, key string) {
	t.Helper()
	if _, err := e.Orgs.ListOrganizations(testenv.Ctx(key), &knkv1.ListOrganizationsRequest{}); err != nil {
		t.Errorf("key %q: %v", key, err)
	}
}

func TestE2EBootstrap(t *testing.T) {
	path := dbtest.DSN(t, dbtest.Engine()) // a new store: bootstrap migrates it
	first, stderr, err := e2eRun(t, "", "bootstrap", "--db", path)
	if err != nil {
		t.Fatalf("bootstrap: %v (%s)", err, stderr)
	}
	second, _, err := e2eRun(t, "", "bootstrap", "--db", path) // the admin exists: just another key
	if err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	for _, out := range []string{first, second} {
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || len(strings.TrimSpace(out)) < 32 ||
			strings.ContainsAny(strings.TrimSpace(out), " \t:{") {
			t.Errorf("bootstrap printed %q, want exactly one line holding the secret", out)
		}
	}
	if first == second {
		t.Errorf("two bootstraps printed the same secret")
	}
	e := testenv.StartAt(t, path)
	e2eKeyWorks(t, e, strings.TrimSpace(first))
	e2eKeyWorks(t, e, strings.TrimSpace(second))
	org, err := e.Orgs.GetOrganization(testenv.Ctx(e.AdminKey), &knkv1.GetOrganizationRequest{Name: "organizations/admin"})
	if err != nil || org.Kind != knkv1.Organization_KIND_ADMIN {
		t.Errorf("organizations/admin: %v (%v)", org, err)
	}
}

func TestE2EOrgsAndKeys(t *testing.T) {
	e := testenv.Start(t)
	out, _ := e2eCtl(t, e, e.AdminKey, "orgs", "create", "ksbsi", "--kind", "federation", "--display-name", "KSBSI", "--province", "61")
	var org map[string]any
	if err := json.Unmarshal([]byte(out), &org); err != nil || org["name"] != "organizations/ksbsi" || org["kind"] != "KIND_FEDERATION" || org["province_code"] != "61" {
		t.Fatalf("orgs create printed %q (%v)", out, err)
	}
	out, stderr := e2eCtl(t, e, e.AdminKey, "keys", "create", "ksbsi")
	secret := strings.TrimSuffix(out, "\n")
	if strings.Count(out, "\n") != 1 || secret == "" || strings.ContainsAny(secret, " \t:{") {
		t.Fatalf("keys create printed %q, want only the secret", out)
	}
	if !strings.Contains(stderr, "organizations/ksbsi/keys/") || strings.Contains(stderr, secret) {
		t.Errorf("keys create stderr %q, want the key's name and not its secret", stderr)
	}
	if _, err := e.Cadres.ListCadres(testenv.Ctx(secret), &knkv1.ListCadresRequest{}); err != nil {
		t.Errorf("the printed key: %v", err)
	}
	out, _ = e2eCtl(t, e, e.AdminKey, "keys", "list", "ksbsi")
	if !strings.Contains(out, "organizations/ksbsi/keys/") || strings.Contains(out, secret) {
		t.Errorf("keys list printed %q, want the key names and no secret", out)
	}
	out, _ = e2eCtl(t, e, e.AdminKey, "orgs", "list", "--all", "--page-size", "1")
	var list struct{ Organizations []map[string]any }
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Organizations) != 2 {
		t.Errorf("orgs list --all printed %q (%v), want admin and ksbsi", out, err)
	}
}

func TestE2EErrorsNameTheCodeAndFields(t *testing.T) {
	e := testenv.Start(t)
	addr := e.Server.GRPCAddr()
	tests := []struct {
		name  string
		args  []string
		lines []string // the error's lines, in order
	}{
		{"bad organization", []string{"--addr", addr, "--key-file", testKeyFile(t, e.AdminKey), "orgs", "create", "KSBSI!", "--kind", "federation", "--display-name", " ", "--province", "99"},
			[]string{"INVALID_ARGUMENT: ", "  organization_id: ", "  organization.display_name: ", "  organization.province_code: "}},
		{"no key", []string{"--addr", addr, "orgs", "list"}, []string{"UNAUTHENTICATED: ", "  hint: give your API key in the KNK_KEY environment variable (or --key-file)"}},
		{"unknown organization", []string{"--addr", addr, "--key-file", testKeyFile(t, e.AdminKey), "orgs", "get", "nope"}, []string{"NOT_FOUND: organizations/nope"}},
	}
	for _, tt := range tests {
		stdout, _, err := e2eRun(t, "", tt.args...)
		if err == nil || !e2eLinesStartWith(err.Error(), tt.lines) || stdout != "" {
			t.Errorf("%s: error %q, stdout %q; want an error of lines starting %q", tt.name, err, stdout, tt.lines)
		}
	}
	orgs, err := e.Orgs.ListOrganizations(testenv.Ctx(e.AdminKey), &knkv1.ListOrganizationsRequest{})
	if err != nil || len(orgs.Organizations) != 1 {
		t.Errorf("organizations after refused commands: %v (%v)", orgs, err)
	}
}

// e2eLinesStartWith reports whether s has as many lines as prefixes, each
// starting with its prefix.
func e2eLinesStartWith(s string, prefixes []string) bool {
	lines := strings.Split(s, "\n")
	if len(lines) != len(prefixes) {
		return false
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, prefixes[i]) {
			return false
		}
	}
	return true
}

// e2eRow is what the import must report about one spreadsheet line.
type e2eRow struct {
	name, field, value string
}

// e2eRoster writes a roster of n rows to path; about 1% are bad, in several ways.
// It returns, by spreadsheet line, the rows that must be rejected and those that
// must be imported with a warning.
func e2eRoster(t *testing.T, path string, n int) (bad, warned map[int]e2eRow) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("Name,NIK,Province_Code,phone,GENDER,Birth_Date,employer_name\r\n")
	bad, warned = map[int]e2eRow{}, map[int]e2eRow{}
	line := 1
	for i := range n {
		line++
		name, nik, province, phone, gender, birth := fmt.Sprintf("Kader %d", i), e2eNIK(i), "31", "0812-3456-7890", "L", "1990-08-15"
		employer := `"PT Maju, Tbk"`
		extra := ""
		switch {
		case i%500 == 17:
			nik = nik[:15]
			bad[line] = e2eRow{name, "nik", "***********" + nik[11:]}
		case i%500 == 101:
			province, bad[line] = "99", e2eRow{name, "province_code", "99"}
		case i%500 == 203:
			phone, warned[line] = "021-555", e2eRow{name, "phone", "021-555"} // optional: left out
		case i%500 == 307:
			name, bad[line] = "", e2eRow{"", "name", ""}
		case i%1000 == 411:
			extra, bad[line] = ",surplus", e2eRow{name, "", ""} // one cell too many: knkctl rejects it itself
		case i%1000 == 911:
			gender, warned[line] = "X", e2eRow{name, "gender", "X"} // left out, the member imported
		case i%2000 == 1500:
			birth, bad[line] = "1990-08-16", e2eRow{name, "birth_date", "1990-08-16"}
		case i%2000 == 500:
			name, bad[line] = "Bud\xffi", e2eRow{"", "name", ""} // not UTF-8
		case i%250 == 0:
			gender, birth, name = "laki-laki", "", `"Siti ""Ucok"" Rahayu, S.Pd"`
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s%s\r\n", name, nik, province, phone, gender, birth, employer, extra)
		if i%5000 == 0 {
			b.WriteString("\r\n") // a blank line: a spreadsheet shows it as a row
			line++
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return bad, warned
}

// e2eReport reads a report and checks it against want, line by line.
func e2eReport(t *testing.T, path string, want map[int]e2eRow) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != len(want)+1 || strings.Join(recs[0], ",") != "baris,nama,kolom,nilai,alasan" {
		t.Fatalf("%s: %d records (%v), header %v; want %d rows", path, len(recs), err, recs[:min(1, len(recs))], len(want))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v (%v), want 0600: it holds personal data", path, fi.Mode(), err)
	}
	last := 0
	for _, r := range recs[1:] {
		line, err := strconv.Atoi(r[0])
		w, listed := want[line]
		if err != nil || !listed || r[1] != w.name || r[2] != w.field || r[3] != w.value || r[4] == "" || line <= last {
			t.Errorf("%s: %q; want line %d as %+v, in line order", path, r, line, w)
		}
		last = line
	}
}

func TestE2EImportListLookup(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	dir := t.TempDir()
	roster := filepath.Join(dir, "anggota.csv")
	const n = 20000
	bad, warned := e2eRoster(t, roster, n)
	good := n - len(bad)
	if len(bad) < n/200 || len(bad) > n/50 {
		t.Fatalf("%d bad rows of %d", len(bad), n)
	}

	out, stderr, err := e2eRun(t, "", "--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, fed), "import", roster)
	var exit *exitError
	if !errors.As(err, &exit) || exit.code != 2 || !strings.Contains(err.Error(), fmt.Sprintf("%d of %d rows were rejected", len(bad), n)) {
		t.Errorf("import with rejected rows: %v, want exit status 2 saying how many", err)
	}
	want := fmt.Sprintf("created: %d\nupdated: 0\nunchanged: 0\nchanged: 0\nwarned: %d\nduplicate: 0\nrejected: %d\nwarnings: %s\nrejections: %s\n",
		good, len(warned), len(bad), roster+".warnings.csv", roster+".rejections.csv")
	if out != want {
		t.Errorf("import printed\n%s\nwant\n%s", out, want)
	}
	for _, progress := range []string{"import progress: 10000 rows read", "import progress: 20000 rows read", "import done: 20000 rows read"} {
		if !strings.Contains(stderr, progress) {
			t.Errorf("stderr %q lacks %q", stderr, progress)
		}
	}
	e2eReport(t, roster+".rejections.csv", bad)
	e2eReport(t, roster+".warnings.csv", warned)

	again, _, _ := e2eRun(t, "", "--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, fed), "import", "--rejections", filepath.Join(dir, "again.csv"), roster)
	want = fmt.Sprintf("created: 0\nupdated: 0\nunchanged: %d\nchanged: 0\nwarned: %d\nduplicate: 0\nrejected: %d\nwarnings: %s\nrejections: %s\n",
		good, len(warned), len(bad), roster+".warnings.csv", filepath.Join(dir, "again.csv"))
	if again != want {
		t.Errorf("second import printed\n%s\nwant\n%s", again, want)
	}

	out, _ = e2eCtl(t, e, e.AdminKey, "cadres", "list", "--all", "--page-size", "1000")
	var list struct {
		Cadres []*struct{ Name, Nik, Federation string }
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("cadres list --all: %v", err)
	}
	names := map[string]bool{}
	for _, c := range list.Cadres {
		names[c.Name] = c.Federation == "organizations/ksbsi"
	}
	if len(list.Cadres) != good || len(names) != good {
		t.Errorf("cadres list --all: %d cadres, %d distinct, want %d", len(list.Cadres), len(names), good)
	}

	// lookup reads the NIK from stdin and never echoes it on stderr.
	nik := e2eNIK(1)
	args := []string{"--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, fed), "cadres", "lookup"}
	out, stderr, err = e2eRun(t, nik+"\n", args...)
	var found struct {
		Name        string `json:"name"`
		Nik         string `json:"nik"`
		DisplayName string `json:"display_name"`
	}
	json.Unmarshal([]byte(out), &found)
	if err != nil || found.Nik != nik || found.DisplayName != "Kader 1" || !names[found.Name] {
		t.Errorf("lookup printed %q (%v)", out, err)
	}
	missing := e2eNIK(n + 5)
	stdout, stderr2, err := e2eRun(t, missing+"\n", args...)
	if !strings.HasPrefix(fmt.Sprint(err), "NOT_FOUND: ") || stdout != "" {
		t.Errorf("lookup of an unregistered NIK: %v, stdout %q", err, stdout)
	}
	for _, s := range []string{stderr, stderr2, fmt.Sprint(err)} {
		if strings.Contains(s, nik) || strings.Contains(s, missing) {
			t.Errorf("a NIK shows on stderr: %q", s)
		}
	}
	_, _, err = e2eRun(t, "", args...)
	if err == nil {
		t.Error("lookup with an empty stdin succeeded")
	}
}

// TestE2EImportWritesEveryRejection imports a roster with 2,700 rows the server
// rejects: the answer comes in several messages of at most 1,000 rejections, and
// knkctl writes every one of them, in line order.
func TestE2EImportWritesEveryRejection(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	roster := filepath.Join(t.TempDir(), "anggota.csv")
	var b bytes.Buffer
	b.WriteString("name,nik,province_code\n")
	const n = 3000
	bad := map[int]e2eRow{}
	for i := range n {
		province := "99" // no such province: rejected by the server
		if i%10 == 0 {
			province = "31"
		} else {
			bad[i+2] = e2eRow{name: fmt.Sprintf("Kader %d", i), field: "province_code", value: "99"}
		}
		fmt.Fprintf(&b, "Kader %d,%s,%s\n", i, e2eNIK(i), province)
	}
	if err := os.WriteFile(roster, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, _ := e2eRun(t, "", "--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, fed), "import", roster)
	want := fmt.Sprintf("created: %d\nupdated: 0\nunchanged: 0\nchanged: 0\nwarned: 0\nduplicate: 0\nrejected: %d\nrejections: %s\n",
		n-len(bad), len(bad), roster+".rejections.csv")
	if out != want {
		t.Errorf("import printed\n%s\nwant\n%s", out, want)
	}
	e2eReport(t, roster+".rejections.csv", bad)
}

// testKeyFile writes key to a file only the owner can read and returns its path,
// for --key-file (knkctl refuses --key on the command line).
func testKeyFile(t testing.TB, key string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
