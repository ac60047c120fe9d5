package certificate_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/certcode"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/certificate"
)

// certified trains a cadre of each name and issues their certificates (by the DKI unit).
func (w *world) certified(t *testing.T, names ...string) []*knkv1.Certificate {
	t.Helper()
	w.names = append(w.names, names...)
	var certs []*knkv1.Certificate
	for _, c := range w.trained(t, len(names), allTopics...) {
		certs = append(certs, w.issue(t, w.dki, c))
	}
	return certs
}

// reason is the ErrorInfo reason of err's status.
func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

// restReason is the ErrorInfo reason in a REST error body.
func restReason(r testenv.Response) string {
	details, _ := r.Body["details"].([]any)
	for _, d := range details {
		if m, _ := d.(map[string]any); m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			return m["reason"].(string)
		}
	}
	return ""
}

func TestAMistypedCodeIsCaughtByItsCheckSymbol(t *testing.T) {
	w := setupWith(t, noAnonymousLimit) // hundreds of anonymous typos from one address
	cert := w.certified(t, "Siti Rahayu")[0]
	code := cert.VerificationCode
	if _, err := certcode.ParseCode(code); err != nil || len(code) != 21 {
		t.Fatalf("issued code %q: %v", code, err)
	}
	symbols := strings.ReplaceAll(code, "-", "")
	// As a person may type it: lower case, spaces for hyphens, o for 0 and l for 1.
	typed := strings.NewReplacer("-", " ", "0", "o", "1", "l").Replace(strings.ToLower(code))
	for _, in := range []string{code, symbols, typed} {
		r := w.REST(t, http.MethodGet, "/v1/verifications/"+url.PathEscape(in), "", nil)
		if r.Status != http.StatusOK || r.Body["holder_name"] != "Siti Rahayu" || r.Body["verification_code"] != code {
			t.Errorf("by code %q: %d %s", in, r.Status, r.Raw)
		}
	}
	// Every single-symbol typo, over gRPC, and one per position over REST.
	const alphabet, checks = "0123456789ABCDEFGHJKMNPQRSTVWXYZ", "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U"
	for pos := range symbols {
		allowed := alphabet
		if pos == len(symbols)-1 {
			allowed = checks
		}
		restDone := false
		for _, sym := range allowed {
			if byte(sym) == symbols[pos] {
				continue
			}
			typo := certcode.FormatCode(symbols[:pos] + string(sym) + symbols[pos+1:])
			_, err := w.Certs.VerifyCertificateByCode(context.Background(), &knkv1.VerifyCertificateByCodeRequest{Code: typo})
			if status.Code(err) != codes.InvalidArgument || reason(err) != "INVALID_CHECKSUM" {
				t.Fatalf("typo %s of %s: %v (reason %q), want INVALID_ARGUMENT INVALID_CHECKSUM", typo, code, err, reason(err))
			}
			if !restDone {
				r := w.REST(t, http.MethodGet, "/v1/verifications/"+url.PathEscape(typo), "", nil)
				if r.Status != http.StatusBadRequest || restReason(r) != "INVALID_CHECKSUM" || strings.Contains(string(r.Raw), "Siti") {
					t.Errorf("typo %s over REST: %d %s", typo, r.Status, r.Raw)
				}
				restDone = true
			}
		}
	}
}

// TestEnumeratingCodesGivesNothing is what an attacker guessing codes sees: only
// NOT_FOUND or INVALID_CHECKSUM, never a certificate, and big inputs are refused.
func TestEnumeratingCodesGivesNothing(t *testing.T) {
	w := setupWith(t, noAnonymousLimit) // 200 guesses from one address: what each answer holds, not the limit
	w.certified(t, "Siti Rahayu", "Budi Santoso")
	seen := map[int]int{}
	for i := range 200 {
		guess := certcode.New()
		if i%2 == 1 { // a random check symbol: mostly wrong
			guess = guess[:len(guess)-1] + string("0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U"[i%37])
		}
		r := w.REST(t, http.MethodGet, "/v1/verifications/"+url.PathEscape(guess), "", nil)
		seen[r.Status]++
		switch {
		case r.Status == http.StatusNotFound && restReason(r) == "NOT_FOUND":
		case r.Status == http.StatusBadRequest && restReason(r) == "INVALID_CHECKSUM":
		default:
			t.Fatalf("guess %s: %d %s", guess, r.Status, r.Raw)
		}
		for _, leak := range []string{"Siti", "Budi", "certificates/", "holder", "KNK-"} {
			if strings.Contains(string(r.Raw), leak) {
				t.Fatalf("guess %s: the answer holds %q: %s", guess, leak, r.Raw)
			}
		}
	}
	if seen[http.StatusNotFound] < 100 || seen[http.StatusBadRequest] < 80 {
		t.Errorf("answers to 200 guesses: %v", seen)
	}
	for _, bad := range []string{strings.Repeat("A", 10000), "7QF3-M9XA-2KDP-R4TW", "7QF3_M9XA_2KDP_R4TW_J", "ÉQF3-M9XA-2KDP-R4TW-J"} {
		r := w.REST(t, http.MethodGet, "/v1/verifications/"+url.PathEscape(bad), "", nil)
		if r.Status != http.StatusBadRequest || restReason(r) != "INVALID_CODE" {
			t.Errorf("code %.40q: %d %s", bad, r.Status, r.Raw)
		}
	}
}

// TestAnonymousByNumberNeverDisclosesTheHolder reads the raw REST bytes and the
// gRPC answer of the public lookup by number, for valid and revoked certificates,
// without a key and with keys that may not see the holder.
func TestAnonymousByNumberNeverDisclosesTheHolder(t *testing.T) {
	w := setup(t)
	certs := w.certified(t, "Siti Rahayu", "Dédé Sunarya", "Budiman")
	if _, err := w.Certs.RevokeCertificate(testenv.Ctx(w.dki), &knkv1.RevokeCertificateRequest{Name: certs[1].Name, Reason: "data Dédé palsu"}); err != nil {
		t.Fatal(err)
	}
	other := w.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, "")
	initials := []string{"S. R.", "D. S.", "B."}
	keys := map[string]string{"no key": "", "inspectorate": w.inspector, "another federation": other,
		"a unit that did not issue it": w.central, "a unit of another province": w.kalbar}
	for i, cert := range certs {
		secrets := []string{cert.HolderName, cert.VerificationCode, base64.StdEncoding.EncodeToString(cert.Signature), cert.KeyId, "palsu"}
		secrets = append(secrets, strings.Fields(cert.HolderName)...)
		for who, key := range keys {
			for _, query := range []string{"", "?holder_name=" + url.QueryEscape("Orang Lain"), "?holder_name=" + url.QueryEscape(cert.HolderName)} {
				r := w.REST(t, http.MethodGet, "/v1/"+cert.Name+":verify"+query, key, nil)
				if r.Status != http.StatusOK || r.Body["holder_initials"] != initials[i] || r.Body["holder_name"] != "" ||
					r.Body["signature"] != "" || r.Body["verification_code"] != "" || r.Body["name"] != cert.Name {
					t.Errorf("%s, %s%s: %d %s", who, cert.Name, query, r.Status, r.Raw)
				}
				for _, secret := range secrets {
					if strings.Contains(string(r.Raw), secret) {
						t.Errorf("%s, %s%s: the answer holds %q: %s", who, cert.Name, query, secret, r.Raw)
					}
				}
			}
			v, err := w.Certs.VerifyCertificate(testenv.Ctx(key), &knkv1.VerifyCertificateRequest{Name: cert.Name})
			if err != nil || v.HolderName != "" || len(v.Signature) != 0 || v.VerificationCode != "" || v.KeyId != "" ||
				v.RevokeReason != "" || v.HolderInitials != initials[i] || v.NameMatches != nil {
				t.Errorf("%s, gRPC %s: %v %v", who, cert.Name, v, err)
			}
		}
	}
	// What the number does tell: state, validity, province, topics, issuer, dates.
	v, err := w.Certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: certs[1].Name})
	if err != nil || v.Valid || v.State != knkv1.Certificate_STATE_REVOKED || v.RevokeTime == nil || v.ProvinceCode != "31" ||
		len(v.Topics) != 4 || v.Issuer != "organizations/disnaker-dki" || v.IssueTime == nil || v.ExpireTime == nil {
		t.Errorf("anonymous answer for a revoked certificate: %v %v", v, err)
	}
}

func TestNameMatchesIgnoresCaseSpacesAndAccents(t *testing.T) {
	w := setup(t)
	certs := w.certified(t, "Siti Rahayu", "Dédé Sunarya")
	tests := []struct {
		cert    int
		claimed string
		want    bool
	}{
		{0, "Siti Rahayu", true},
		{0, "  SITI   rahayu ", true},
		{0, "Sítì Ráhayû", true},
		{0, "Siti Rahayu Putri", false},
		{0, "Siti", false},
		{0, "Sitti Rahayu", false},
		{1, "Dede Sunarya", true},
		{1, "DÉDÉ SUNARYA", true},
		{1, "De\u0301de\u0301 Sunarya", true}, // the accents as combining marks
		{1, "Dodo Sunarya", false},
	}
	for _, tt := range tests {
		r := w.REST(t, http.MethodGet, "/v1/"+certs[tt.cert].Name+":verify?holder_name="+url.QueryEscape(tt.claimed), "", nil)
		if r.Status != http.StatusOK || r.Body["name_matches"] != tt.want {
			t.Errorf("%q against %q: %d %s, want name_matches %v", tt.claimed, certs[tt.cert].HolderName, r.Status, r.Raw, tt.want)
		}
	}
	r := w.REST(t, http.MethodGet, "/v1/"+certs[0].Name+":verify", "", nil)
	if _, present := r.Body["name_matches"]; present {
		t.Errorf("name_matches without a holder_name: %s", r.Raw)
	}
	long := strings.Repeat("a", 201)
	if r := w.REST(t, http.MethodGet, "/v1/"+certs[0].Name+":verify?holder_name="+long, "", nil); r.Status != http.StatusBadRequest {
		t.Errorf("a 201-character name: %d %s", r.Status, r.Raw)
	}
}

func TestNameTriesAreLimitedPerCertificate(t *testing.T) {
	w := setup(t)
	certs := w.certified(t, "Siti Rahayu", "Budi Santoso")
	try := func(cert *knkv1.Certificate, key, name string) (*knkv1.VerifyCertificateResponse, error) {
		return w.Certs.VerifyCertificate(testenv.Ctx(key), &knkv1.VerifyCertificateRequest{Name: cert.Name, HolderName: name})
	}
	for i := range 10 { // five now, five half an hour later, from gRPC and REST alike
		if i == 5 {
			w.Clock.Advance(30 * time.Minute)
		}
		if i%2 == 0 {
			if _, err := try(certs[0], "", "Nama Tebakan"); err != nil {
				t.Fatalf("try %d: %v", i+1, err)
			}
		} else if r := w.REST(t, http.MethodGet, "/v1/"+certs[0].Name+":verify?holder_name=Nama", "", nil); r.Status != http.StatusOK {
			t.Fatalf("try %d over REST: %d %s", i+1, r.Status, r.Raw)
		}
	}
	_, err := try(certs[0], "", "Siti Rahayu") // even the right name
	st := status.Convert(err)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri
		}
	}
	if st.Code() != codes.ResourceExhausted || reason(err) != "NAME_TRIES_EXHAUSTED" || retry == nil ||
		retry.RetryDelay.AsDuration() < 29*time.Minute || retry.RetryDelay.AsDuration() > 31*time.Minute {
		t.Fatalf("11th try: %v (retry %v), want RESOURCE_EXHAUSTED retrying in 30 minutes", err, retry)
	}
	if r := w.REST(t, http.MethodGet, "/v1/"+certs[0].Name+":verify?holder_name=Siti%20Rahayu", "", nil); r.Status != http.StatusTooManyRequests {
		t.Errorf("11th try over REST: %d %s", r.Status, r.Raw)
	}
	// A keyed caller with a key that does not see the holder is counted too.
	if _, err := try(certs[0], w.inspector, "Siti Rahayu"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("inspectorate's try: %v", err)
	}
	// The lookup without a name, another certificate, and the issuer are not held back.
	if _, err := try(certs[0], "", ""); err != nil {
		t.Errorf("lookup without a name: %v", err)
	}
	if v, err := try(certs[1], "", "Budi Santoso"); err != nil || !v.GetNameMatches() {
		t.Errorf("another certificate: %v %v", v, err)
	}
	if v, err := try(certs[0], w.dki, "Siti Rahayu"); err != nil || !v.GetNameMatches() {
		t.Errorf("the issuing unit: %v %v", v, err)
	}
	// The window slides: an hour after the first five, five more are allowed.
	w.Clock.Advance(29 * time.Minute)
	if _, err := try(certs[0], "", "x"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("59 minutes after the first try: %v", err)
	}
	w.Clock.Advance(time.Minute)
	for i := range 5 {
		if _, err := try(certs[0], "", "x"); err != nil {
			t.Fatalf("try %d of the next hour: %v", i+1, err)
		}
	}
	if _, err := try(certs[0], "", "x"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("sixth try of the next half hour: %v", err)
	}
}

// TestNameTriesFloodGetsTen sends 40 tries at once: exactly 10 are answered.
func TestNameTriesFloodGetsTen(t *testing.T) {
	w := setup(t)
	cert := w.certified(t, "Siti Rahayu")[0]
	if got := flood(t, 40, func(i int) error {
		_, err := w.Certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: cert.Name, HolderName: "Tebakan"})
		return err
	}); got != certificate.NameTries {
		t.Errorf("%d of 40 concurrent tries answered, want %d", got, certificate.NameTries)
	}
}

// flood runs call n times at once and returns how many succeeded; every failure
// must be RESOURCE_EXHAUSTED.
func flood(t *testing.T, n int, call func(i int) error) int {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = call(i) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch status.Code(err) {
		case codes.OK:
			ok++
		case codes.ResourceExhausted:
		default:
			t.Errorf("a try failed with %v", err)
		}
	}
	return ok
}

func TestKeysThatMaySeeTheHolderGetTheFullAnswer(t *testing.T) {
	w := setup(t)
	cert := w.certified(t, "Siti Rahayu")[0]
	keysJSON := w.REST(t, http.MethodGet, "/v1/keys", "", nil).Body
	for who, key := range map[string]string{"admin": w.AdminKey, "issuing unit": w.dki, "cadre's federation": w.fed} {
		r := w.REST(t, http.MethodGet, "/v1/"+cert.Name+":verify?holder_name=siti%20rahayu", key, nil)
		if r.Status != http.StatusOK || r.Body["holder_name"] != "Siti Rahayu" || r.Body["verification_code"] != cert.VerificationCode ||
			r.Body["key_id"] != cert.KeyId || r.Body["canonical_version"] != 2.0 || r.Body["name_matches"] != true {
			t.Errorf("%s: %d %s", who, r.Status, r.Raw)
			continue
		}
		if !verifyOffline(t, r.Body, keysJSON) {
			t.Errorf("%s: the full answer does not verify offline", who)
		}
	}
	if r := w.REST(t, http.MethodGet, "/v1/"+cert.Name+":verify", "knk_bogus_key", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("a bad key on the public lookup: %d %s", r.Status, r.Raw)
	}
}

func TestV1CertificatesAreResignedAsV2AndOldDocumentsStillVerify(t *testing.T) {
	w := setup(t)
	certs := w.certified(t, "Siti Rahayu", "Budi Santoso", "Dewi Lestari")
	if _, err := w.Certs.RevokeCertificate(testenv.Ctx(w.dki), &knkv1.RevokeCertificateRequest{Name: certs[2].Name, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	w.DowngradeToV1(t, certs...)
	keys := w.REST(t, http.MethodGet, "/v1/keys", "", nil).Body
	saved := map[string]map[string]any{} // V1 documents, as a holder may have kept them
	for _, c := range certs {
		r := w.REST(t, http.MethodGet, "/v1/"+c.Name+":verify", w.AdminKey, nil)
		if r.Body["canonical_version"] != 1.0 || r.Body["verification_code"] != "" || !verifyOffline(t, r.Body, keys) {
			t.Fatalf("V1 certificate before the restart: %s", r.Raw)
		}
		saved[c.Name] = r.Body
	}
	w.Stop(t)

	again := testenv.StartAt(t, w.DBPath)
	if !strings.Contains(again.Logs(), `"count":3`) {
		t.Errorf("the start did not report 3 certificates re-signed: %s", again.Logs())
	}
	keys = again.REST(t, http.MethodGet, "/v1/keys", "", nil).Body
	codesSeen := map[string]bool{}
	resigned := map[string]string{}
	for _, c := range certs {
		r := again.REST(t, http.MethodGet, "/v1/"+c.Name+":verify", again.AdminKey, nil)
		code, _ := r.Body["verification_code"].(string)
		if r.Body["canonical_version"] != 2.0 || code == "" || codesSeen[code] || !verifyOffline(t, r.Body, keys) {
			t.Errorf("%s after the restart: %s", c.Name, r.Raw)
		}
		codesSeen[code], resigned[c.Name] = true, string(r.Raw)
		if byCode := again.REST(t, http.MethodGet, "/v1/verifications/"+code, "", nil); byCode.Body["name"] != c.Name || !verifyOffline(t, byCode.Body, keys) {
			t.Errorf("%s by its new code: %s", c.Name, byCode.Raw)
		}
		if !verifyOffline(t, saved[c.Name], keys) {
			t.Errorf("the saved V1 document of %s no longer verifies", c.Name)
		}
		// A V1 document whose content was changed does not.
		forged := map[string]any{}
		for k, v := range saved[c.Name] {
			forged[k] = v
		}
		forged["holder_name"] = "Orang Lain"
		if verifyOffline(t, forged, keys) {
			t.Errorf("a forged V1 document of %s verifies", c.Name)
		}
	}
	again.Stop(t)

	// Idempotent: a further start changes nothing.
	third := testenv.StartAt(t, w.DBPath)
	for _, c := range certs {
		r := third.REST(t, http.MethodGet, "/v1/"+c.Name+":verify", third.AdminKey, nil)
		if string(r.Raw) != resigned[c.Name] {
			t.Errorf("%s changed on a further start:\n%s\n%s", c.Name, resigned[c.Name], r.Raw)
		}
	}
	var left int
	if err := third.SQL(t).QueryRow(`SELECT COUNT(*) FROM certificates WHERE canonical_version = 1 OR verification_code IS NULL`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d certificates left on V1 (%v)", left, err)
	}
}

// noAnonymousLimit switches the per-address limit of anonymous calls off, for
// tests that make hundreds of them to check each answer (the limit itself is
// tested in internal/server).
func noAnonymousLimit(c *testenv.Config) { c.AnonymousLimit = server.Limit{PerMinute: -1} }
