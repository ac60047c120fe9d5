package server_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/internal/testenv"
)

// tool is the path of an external program, or skips the test in one line.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s; .ci/run installs it): skipping", name, pkg)
	}
	return p
}

// pdfFacts reads a PDF from the outside: its text by pdftotext (runs of spaces
// collapsed) and its QR code by zbarimg on a PNG made by pdftoppm.
func pdfFacts(t *testing.T, pdf []byte) (text, qr string) {
	t.Helper()
	pdftotext, pdftoppm := tool(t, "pdftotext", "poppler-utils"), tool(t, "pdftoppm", "poppler-utils")
	zbarimg := tool(t, "zbarimg", "zbar-tools")
	dir := t.TempDir()
	in := filepath.Join(dir, "c.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pdftotext, "-layout", in, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	text = strings.Join(strings.Fields(string(out)), " ")
	if out, err := exec.Command(pdftoppm, "-png", "-r", "150", "-singlefile", in, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	out, err = exec.Command(zbarimg, "--quiet", "--raw", filepath.Join(dir, "page.png")).Output()
	if err != nil {
		t.Fatalf("zbarimg found no code in the PDF: %v", err)
	}
	return text, strings.TrimRight(string(out), "\n")
}

func TestCertificatePdfReadFromOutside(t *testing.T) {
	t.Parallel()
	c := startPageCerts(t)
	e := c.env
	number := strings.TrimPrefix(c.valid.Name, "certificates/")
	r := e.REST(t, http.MethodGet, "/v1/"+c.valid.Name+":pdf", c.unit, nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(string(r.Raw), "%PDF-") {
		t.Fatalf("GET …:pdf: %d %q %.100q", r.Status, r.Header.Get("Content-Type"), r.Raw)
	}
	text, qr := pdfFacts(t, r.Raw)
	for _, want := range []string{"Sertifikat Kader Norma Ketenagakerjaan", c.validName, number, c.valid.VerificationCode,
		"24 November 2029 (WIB)", "24 November 2032 (WIB)", "Disnaker DKI Jakarta", "Keselamatan dan Kesehatan Kerja", c.valid.KeyId} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext lacks %q:\n%s", want, text)
		}
	}
	if want := testPublicURL + "/verify/" + c.valid.VerificationCode; qr != want {
		t.Errorf("QR code = %q, want exactly %q", qr, want)
	}

	// The same bytes over gRPC, as knkctl gets them.
	body, err := e.Certs.GetCertificatePdf(testenv.Ctx(c.unit), &knkv1.GetCertificatePdfRequest{Name: c.valid.Name})
	if err != nil || body.GetContentType() != "application/pdf" || !strings.HasPrefix(string(body.GetData()), "%PDF-") {
		t.Errorf("GetCertificatePdf over gRPC: %v", err)
	}
	// An expired certificate still prints (its dates say so); a revoked one is refused.
	if r := e.REST(t, http.MethodGet, "/v1/"+c.expired.Name+":pdf", c.unit, nil); r.Status != http.StatusOK {
		t.Errorf("expired: %d %s", r.Status, r.Raw)
	}
	r = e.REST(t, http.MethodGet, "/v1/"+c.revoked.Name+":pdf", c.unit, nil)
	if r.Status != http.StatusBadRequest || r.Body["code"] != float64(codes.FailedPrecondition) ||
		!strings.Contains(r.Body["message"].(string), "revoked") {
		t.Errorf("revoked: %d %s, want 400 with code 9 (FAILED_PRECONDITION)", r.Status, r.Raw)
	}
}

func TestCertificatePdfOnlyForThoseInScope(t *testing.T) {
	t.Parallel()
	c := startPageCerts(t)
	e := c.env
	orgs := map[string]string{
		"admin":                  e.AdminKey,
		"issuing unit":           c.unit,
		"cadre's federation":     c.fed,
		"DKI inspectorate":       e.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31"),
		"national inspectorate":  e.Org(t, "pengawas-pusat", knkv1.Organization_KIND_INSPECTORATE, ""),
		"other federation":       e.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, ""),
		"Bali inspectorate":      e.Org(t, "pengawas-bali", knkv1.Organization_KIND_INSPECTORATE, "51"),
		"another DKI unit":       e.Org(t, "blk-jakarta", knkv1.Organization_KIND_TRAINING_UNIT, "31"),
		"national training unit": e.Org(t, "kemnaker-pusat", knkv1.Organization_KIND_TRAINING_UNIT, ""),
	}
	allowed := map[string]bool{"admin": true, "issuing unit": true, "cadre's federation": true, "DKI inspectorate": true, "national inspectorate": true}
	path := "/v1/" + c.valid.Name + ":pdf"
	missing := e.REST(t, http.MethodGet, "/v1/certificates/KNK-31-2026-999999:pdf", e.AdminKey, nil)
	for who, key := range orgs {
		r := e.REST(t, http.MethodGet, path, key, nil)
		if allowed[who] {
			if r.Status != http.StatusOK {
				t.Errorf("%s: %d %s, want the PDF", who, r.Status, r.Raw)
			}
			continue
		}
		// Refused exactly like a number that does not exist: nothing says it does.
		want := strings.ReplaceAll(string(missing.Raw), "KNK-31-2026-999999", strings.TrimPrefix(c.valid.Name, "certificates/"))
		if r.Status != missing.Status || string(r.Raw) != want {
			t.Errorf("%s: %d %s\nwant as for a missing number: %d %s", who, r.Status, r.Raw, missing.Status, want)
		}
	}
	if r := e.REST(t, http.MethodGet, path, "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("no key: %d %s", r.Status, r.Raw)
	}
	if r := e.REST(t, http.MethodGet, "/v1/certificates/..%2F..%2Fetc%2Fpasswd:pdf", e.AdminKey, nil); r.Status == http.StatusOK {
		t.Errorf("traversal in the number: %d", r.Status)
	}
}

func TestIssuingNeedsAPublicURLOffLoopback(t *testing.T) {
	t.Parallel()
	// Listening on every interface with the default --public-url: no certificate.
	e := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) { c.HTTPAddr, c.AllowPlaintext = "0.0.0.0:0", true })
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unit := e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	_, cadres := e.TrainedNamed(t, fed, unit, "31", "Siti Rahayu")
	_, err := e.Certs.IssueCertificate(testenv.Ctx(unit), &knkv1.IssueCertificateRequest{Cadre: cadres[0].Name})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "--public-url") ||
		!strings.Contains(err.Error(), server.DefaultPublicURL) {
		t.Errorf("issue with the default public URL off loopback: %v, want FAILED_PRECONDITION naming --public-url", err)
	}

	// With a public URL it issues; on loopback the default is fine (testenv's other tests).
	e2 := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) {
		c.HTTPAddr, c.AllowPlaintext, c.PublicURL = "0.0.0.0:0", true, "https://sertifikat.example.go.id/"
	})
	fed = e2.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unit = e2.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	_, cadres = e2.TrainedNamed(t, fed, unit, "31", "Siti Rahayu")
	cert := e2.Issue(t, unit, cadres[0])[0]
	body, err := e2.Certs.GetCertificatePdf(testenv.Ctx(unit), &knkv1.GetCertificatePdfRequest{Name: cert.Name})
	if err != nil {
		t.Fatal(err)
	}
	if _, qr := pdfFacts(t, body.GetData()); qr != "https://sertifikat.example.go.id/verify/"+cert.VerificationCode {
		t.Errorf("QR %q: the trailing slash of --public-url is not dropped", qr)
	}
}

func TestBadPublicURLStopsKnkd(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"sertifikat.example.go.id", "ftp://example.go.id", "https://", "https://a.go.id/?x=1",
		"https://user:pw@a.go.id", "https://a.go.id/#top"} {
		_, err := server.New(context.Background(), server.Config{DB: filepath.Join(t.TempDir(), "knk.db"),
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", PublicURL: bad})
		if err == nil || !strings.Contains(err.Error(), "--public-url") {
			t.Errorf("--public-url %q: %v, want a refusal naming the flag", bad, err)
		}
	}
}
