package server_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/certcode"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/internal/testenv"
)

const testPublicURL = "https://sertifikat.example.go.id"

// pageCerts is a knkd with one certificate in each state, in DKI Jakarta (WIB).
type pageCerts struct {
	env                      *testenv.Env
	fed, unit                string
	valid, revoked, expired  *knkv1.Certificate
	session                  string
	validName, revokedHolder string
}

// startPageCerts issues three certificates on 23 November 2026 (16:00 WIB), revokes
// one, moves the clock three years and a day on so the others expire, and issues
// Siti's anew (24 November 2029). The revoked holder's name holds HTML.
func startPageCerts(t *testing.T) *pageCerts {
	t.Helper()
	e := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) {
		c.PublicURL = testPublicURL
		c.AnonymousLimit = server.Limit{PerMinute: -1} // this test checks the pages, edge_test the limit
	})
	p := &pageCerts{env: e, validName: "Siti Rahayu", revokedHolder: `Budi <script>alert("x")</script> Santoso`}
	p.fed = e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	p.unit = createOrg(t, e, "disnaker-dki", "Disnaker DKI Jakarta", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	var cadres []*knkv1.Cadre
	p.session, cadres = e.TrainedNamed(t, p.fed, p.unit, "31", p.validName, p.revokedHolder, "Dewi Lestari")
	first := e.Issue(t, p.unit, cadres...)
	revoked, err := e.Certs.RevokeCertificate(testenv.Ctx(p.unit), &knkv1.RevokeCertificateRequest{
		Name: first[1].Name, Reason: "Data pelatihan tidak sah"})
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(3*365*24*time.Hour + 2*24*time.Hour) // 2026-11-23 + 1097 days = 2029-11-24 (2028 is a leap year)
	p.revoked, p.expired = revoked, first[2]
	p.valid = e.Issue(t, p.unit, cadres[0])[0]
	return p
}

// createOrg creates an organization with a display name and returns a key for it.
func createOrg(t *testing.T, e *testenv.Env, id, display string, kind knkv1.Organization_Kind, province string) string {
	t.Helper()
	ctx := testenv.Ctx(e.AdminKey)
	if _, err := e.Orgs.CreateOrganization(ctx, &knkv1.CreateOrganizationRequest{OrganizationId: id,
		Organization: &knkv1.Organization{Kind: kind, DisplayName: display, ProvinceCode: province}}); err != nil {
		t.Fatal(err)
	}
	k, err := e.Orgs.CreateApiKey(ctx, &knkv1.CreateApiKeyRequest{Parent: "organizations/" + id})
	if err != nil {
		t.Fatal(err)
	}
	return k.Secret
}

type page struct {
	status int
	header http.Header
	body   string
}

// fetchPage fetches a page with no key, the way a browser would, without following redirects.
func fetchPage(t *testing.T, e *testenv.Env, method, path string, header map[string]string, body string) page {
	t.Helper()
	req, err := http.NewRequest(method, e.BaseURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{resp.StatusCode, resp.Header, string(b)}
}

// checkPage asserts what every HTML page must be: the strict CSP, no script, the language.
func checkPage(t *testing.T, what string, p page, status int, lang string, want ...string) {
	t.Helper()
	if p.status != status {
		t.Errorf("%s: status %d, want %d\n%s", what, p.status, status, p.body)
	}
	const csp = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	if got := p.header.Get("Content-Security-Policy"); got != csp {
		t.Errorf("%s: Content-Security-Policy %q", what, got)
	}
	if !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
		t.Errorf("%s: Content-Type %q", what, p.header.Get("Content-Type"))
	}
	if !strings.Contains(p.body, `<html lang="`+lang+`">`) {
		t.Errorf("%s: not <html lang=%q>", what, lang)
	}
	if strings.Contains(strings.ToLower(p.body), "<script") || strings.Contains(p.body, "http://") || strings.Contains(p.body, "https://") {
		t.Errorf("%s: the page has a script or an absolute link:\n%s", what, p.body)
	}
	for _, w := range want {
		if !strings.Contains(p.body, w) {
			t.Errorf("%s: page lacks %q", what, w)
		}
	}
}

func TestVerifyPageShowsEachState(t *testing.T) {
	t.Parallel()
	c := startPageCerts(t)
	e := c.env
	keys, err := e.Certs.ListSigningKeys(context.Background(), &knkv1.ListSigningKeysRequest{})
	if err != nil || len(keys.Keys) == 0 {
		t.Fatal(keys, err)
	}
	key := c.valid.KeyId
	topicsID := []string{"Keselamatan dan Kesehatan Kerja", "Perjanjian Kerja Waktu Tertentu", "Struktur dan Skala Upah", "Jaminan Sosial Ketenagakerjaan"}

	p := fetchPage(t, e, "GET", "/verify/"+c.valid.VerificationCode, nil, "")
	checkPage(t, "valid", p, 200, "id", append(topicsID, "BERLAKU", c.validName, strings.TrimPrefix(c.valid.Name, "certificates/"),
		c.valid.VerificationCode, "Disnaker DKI Jakarta", "DKI Jakarta", "24 November 2029", "24 November 2032", "WIB",
		"diperiksa dengan kunci publik", key)...)

	p = fetchPage(t, e, "GET", "/verify/"+c.valid.VerificationCode+"?lang=en", nil, "")
	checkPage(t, "valid, ?lang=en", p, 200, "en", "VALID", "Occupational safety and health", "24 November 2029", "checked against the published public key")
	p = fetchPage(t, e, "GET", "/verify/"+c.valid.VerificationCode, map[string]string{"Accept-Language": "en-GB,en;q=0.9"}, "")
	checkPage(t, "valid, Accept-Language en", p, 200, "en", "VALID")
	p = fetchPage(t, e, "GET", "/verify/"+c.valid.VerificationCode, map[string]string{"Accept-Language": "id-ID,id;q=0.9,en;q=0.8"}, "")
	checkPage(t, "valid, Accept-Language id", p, 200, "id", "BERLAKU")
	p = fetchPage(t, e, "GET", "/verify/"+c.valid.VerificationCode+"?lang=id", map[string]string{"Accept-Language": "en"}, "")
	checkPage(t, "?lang=id beats Accept-Language", p, 200, "id", "BERLAKU")

	p = fetchPage(t, e, "GET", "/verify/"+c.revoked.VerificationCode, nil, "")
	checkPage(t, "revoked", p, 200, "id", "DICABUT", "Dicabut pada", "23 November 2026", "Data pelatihan tidak sah",
		"Budi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Santoso")
	p = fetchPage(t, e, "GET", "/verify/"+c.revoked.VerificationCode+"?lang=en", nil, "")
	checkPage(t, "revoked, en", p, 200, "en", "REVOKED", "Revoked on", "23 November 2026")

	p = fetchPage(t, e, "GET", "/verify/"+c.expired.VerificationCode, nil, "")
	checkPage(t, "expired", p, 200, "id", "KEDALUWARSA", "Berakhir pada", "23 November 2029", "Dewi Lestari")
	p = fetchPage(t, e, "GET", "/verify/"+c.expired.VerificationCode+"?lang=en", nil, "")
	checkPage(t, "expired, en", p, 200, "en", "EXPIRED", "Ended on")

	// Lower case, spaces for hyphens: the form sends the browser to the page of the canonical code.
	typed := strings.ToLower(strings.ReplaceAll(c.valid.VerificationCode, "-", " "))
	p = fetchPage(t, e, "GET", "/verify?code="+url.QueryEscape(typed), nil, "")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/verify/"+c.valid.VerificationCode {
		t.Errorf("form with a typed code: %d Location %q", p.status, p.header.Get("Location"))
	}

	// The logs name the route, never the code or the holder.
	logs := e.Logs()
	for _, secret := range []string{c.valid.VerificationCode, c.validName, "Budi"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	if !strings.Contains(logs, `"route":"GET /verify/{code}"`) {
		t.Errorf("no log line for the page:\n%s", logs)
	}
}

// oneSymbolOff changes the first data symbol of code to another.
func oneSymbolOff(code string) string {
	b := []byte(code)
	if b[0] == '7' {
		b[0] = '8'
	} else {
		b[0] = '7'
	}
	return string(b)
}

func TestVerifyPageMistakesAndAttacks(t *testing.T) {
	t.Parallel()
	c := startPageCerts(t)
	e := c.env
	var raw [certcode.Bits / 8]byte
	rand.Read(raw[:])
	unknown := certcode.Encode(raw)

	checkPage(t, "form", fetchPage(t, e, "GET", "/verify", nil, ""), 200, "id",
		`action="/verify"`, "Kode verifikasi", "Nomor sertifikat", "Nama pemegang", `method="post"`)
	checkPage(t, "form, en", fetchPage(t, e, "GET", "/verify?lang=en", nil, ""), 200, "en", "Verification code")

	checkPage(t, "unknown code", fetchPage(t, e, "GET", "/verify/"+unknown, nil, ""), 404, "id", "Sertifikat tidak ditemukan")
	checkPage(t, "unknown code, en", fetchPage(t, e, "GET", "/verify/"+unknown+"?lang=en", nil, ""), 404, "en", "Certificate not found")
	checkPage(t, "typo", fetchPage(t, e, "GET", "/verify/"+oneSymbolOff(c.valid.VerificationCode), nil, ""), 400, "id", "salah ketik")
	checkPage(t, "typo in the form", fetchPage(t, e, "GET", "/verify?code="+oneSymbolOff(c.valid.VerificationCode), nil, ""),
		400, "id", "huruf pemeriksa", `aria-invalid="true"`)
	checkPage(t, "not a code", fetchPage(t, e, "GET", "/verify/KNK-31-2026-000001", nil, ""), 400, "id", "tidak dikenali")
	checkPage(t, "no such page", fetchPage(t, e, "GET", "/verify/a/b", nil, ""), 404, "id", "Halaman tidak ditemukan")

	// A huge code (just under the 64 KiB header limit) is refused before any lookup, with the
	// same page as any other non-code.
	start := time.Now()
	p := fetchPage(t, e, "GET", "/verify/"+strings.Repeat("A", 50_000), nil, "")
	checkPage(t, "huge code", p, 400, "id", "tidak dikenali")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a huge code took %v", d)
	}
	checkPage(t, "huge code in the form", fetchPage(t, e, "GET", "/verify?code="+strings.Repeat("7", 50_000), nil, ""), 400, "id")

	// Path traversal: nothing but this package's pages and its one stylesheet.
	for _, path := range []string{"/verify/..%2F..%2F..%2Fetc%2Fpasswd", "/verify/../../etc/passwd", "/assets/..%2F..%2Fserver.go",
		"/assets/../go.mod", "/assets/%2e%2e/templates/page.html", "/assets/verify.css%00.html"} {
		p := fetchPage(t, e, "GET", path, nil, "")
		if p.status == 200 || strings.Contains(p.body, "root:") || strings.Contains(p.body, "package ") || strings.Contains(p.body, "module ") {
			t.Errorf("GET %s: %d\n%.300s", path, p.status, p.body)
		}
	}
	css := fetchPage(t, e, "GET", "/assets/verify.css", nil, "")
	if css.status != 200 || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") || css.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("stylesheet: %d %v", css.status, css.header)
	}

	// By number and name: the name goes in the body; the answer holds initials only.
	number := strings.TrimPrefix(c.valid.Name, "certificates/")
	form := func(num, name string) page {
		return fetchPage(t, e, "POST", "/verify", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			url.Values{"number": {num}, "holder_name": {name}}.Encode())
	}
	p = form(number, "  siti   RAHAYU ")
	checkPage(t, "number and right name", p, 200, "id", "COCOK", "BERLAKU", "S. R.", number)
	if strings.Contains(p.body, "TIDAK COCOK") || strings.Contains(p.body, "Rahayu") || strings.Contains(p.body, c.valid.VerificationCode) {
		t.Errorf("the answer by number discloses more than initials:\n%s", p.body)
	}
	p = form(number, "Sita Rahayu")
	checkPage(t, "number and wrong name", p, 200, "id", "TIDAK COCOK")
	if strings.Contains(p.body, "Rahayu") {
		t.Errorf("a wrong name is answered with the right one:\n%s", p.body)
	}
	checkPage(t, "unknown number", form("KNK-31-2026-999999", "Siti Rahayu"), 404, "id", "Tidak ada sertifikat dengan nomor ini")
	checkPage(t, "bad number", form("31-2026-1", "Siti Rahayu"), 400, "id", "KNK-31-2026-000001")
	checkPage(t, "no name", form(number, ""), 400, "id", "Masukkan nomor sertifikat dan nama pemegang")
	// A form past the page's 4 KiB is refused by the page; past 1 MiB by knkd's body limit.
	for size, want := range map[int]int{16 << 10: 400, 2 << 20: 413} {
		huge := fetchPage(t, e, "POST", "/verify", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			"number="+number+"&holder_name="+strings.Repeat("A", size))
		if huge.status != want {
			t.Errorf("a form of %d bytes: %d, want %d", size, huge.status, want)
		}
	}
	// The name tries of a certificate run out (10 an hour, two used above).
	var last page
	for range 9 {
		last = form(number, "Nama Tebakan")
	}
	checkPage(t, "11th name try", last, 429, "id", "Terlalu banyak")
}
