package certificate_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/certcode"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/certificate"
)

var _ knkv1.CertificateServiceServer = (*certificate.Service)(nil)

var allTopics = []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY}

type world struct {
	*testenv.Env
	fed, dki, kalbar, central, inspector string
	next                                 int
	day                                  time.Time
	names                                []string // display names of the next cadres trained makes
}

func setup(t *testing.T) *world {
	t.Helper()
	return setupWith(t, nil)
}

// setupWith is setup on a knkd whose configuration edit changes.
func setupWith(t *testing.T, edit func(*testenv.Config)) *world {
	t.Helper()
	e := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), edit)
	return &world{
		Env:       e,
		fed:       e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, ""),
		dki:       e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31"),
		kalbar:    e.Org(t, "disnaker-kalbar", knkv1.Organization_KIND_TRAINING_UNIT, "61"),
		central:   e.Org(t, "kemnaker-pusat", knkv1.Organization_KIND_TRAINING_UNIT, ""),
		inspector: e.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31"),
		day:       time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC),
	}
}

// trained registers n cadres in DKI Jakarta (named from w.names while it lasts,
// then "Kader N") and runs a session that credits them the given topics.
func (w *world) trained(t *testing.T, n int, topics ...knkv1.Topic) []*knkv1.Cadre {
	t.Helper()
	var cadres []*knkv1.Cadre
	for range n {
		w.next++
		name := fmt.Sprintf("Kader %d", w.next)
		if len(w.names) > 0 {
			name, w.names = w.names[0], w.names[1:]
		}
		c, err := w.Cadres.CreateCadre(testenv.Ctx(w.fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
			DisplayName: name, ProvinceCode: "31",
			Nik: fmt.Sprintf("3171%02d150890%04d", 1+w.next/9999, 1+w.next%9999),
		}})
		if err != nil {
			t.Fatal(err)
		}
		cadres = append(cadres, c)
	}
	if len(topics) == 0 {
		return cadres
	}
	w.day = w.day.Add(24 * time.Hour)
	ctx := testenv.Ctx(w.dki)
	s, err := w.Training.CreateSession(ctx, &knkv1.CreateSessionRequest{Session: &knkv1.Session{
		Title: "KNK", Topics: topics, ProvinceCode: "31", Mode: knkv1.Session_MODE_ONLINE,
		StartTime: timestamppb.New(w.day), EndTime: timestamppb.New(w.day.Add(time.Hour)), Capacity: int32(n),
	}})
	if err != nil {
		t.Fatal(err)
	}
	var results []*knkv1.SessionResult
	for _, c := range cadres {
		if _, err := w.Training.EnrollCadre(ctx, &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name}); err != nil {
			t.Fatal(err)
		}
		scores := map[string]int32{}
		for _, tp := range topics {
			scores[tp.String()] = 88
		}
		results = append(results, &knkv1.SessionResult{Cadre: c.Name, Attended: true, Scores: scores})
	}
	if _, err := w.Training.RecordResults(ctx, &knkv1.RecordResultsRequest{Name: s.Name, Results: results}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Training.CompleteSession(ctx, &knkv1.CompleteSessionRequest{Name: s.Name}); err != nil {
		t.Fatal(err)
	}
	return cadres
}

func (w *world) issue(t *testing.T, key string, c *knkv1.Cadre) *knkv1.Certificate {
	t.Helper()
	cert, err := w.Certs.IssueCertificate(testenv.Ctx(key), &knkv1.IssueCertificateRequest{Cadre: c.Name})
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return cert
}

func (w *world) members(t *testing.T, province string, state knkv1.ForumMembership_State) []*knkv1.ForumMembership {
	t.Helper()
	resp, err := w.Forums.ListForumMembers(testenv.Ctx(w.AdminKey), &knkv1.ListForumMembersRequest{
		Parent: "forums/" + province, State: state, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Members
}

func (w *world) cadre(t *testing.T, name string) *knkv1.Cadre {
	t.Helper()
	c, err := w.Cadres.GetCadre(testenv.Ctx(w.AdminKey), &knkv1.GetCadreRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssueRefusesMissingTopicsNamingThem(t *testing.T) {
	w := setup(t)
	c := w.trained(t, 1, knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_WAGE_SCALE)[0]
	_, err := w.Certs.IssueCertificate(testenv.Ctx(w.dki), &knkv1.IssueCertificateRequest{Cadre: c.Name})
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "TOPIC_PKWT, TOPIC_SOCIAL_SECURITY") {
		t.Fatalf("got %v, want FAILED_PRECONDITION naming TOPIC_PKWT and TOPIC_SOCIAL_SECURITY", err)
	}
	var subjects []string
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok {
			for _, v := range pf.Violations {
				subjects = append(subjects, v.Subject)
			}
		}
	}
	if strings.Join(subjects, ",") != "TOPIC_PKWT,TOPIC_SOCIAL_SECURITY" {
		t.Errorf("PreconditionFailure subjects %v", subjects)
	}
	list, _ := w.Certs.ListCertificates(testenv.Ctx(w.AdminKey), &knkv1.ListCertificatesRequest{})
	if len(list.GetCertificates()) != 0 || len(w.members(t, "31", 0)) != 0 {
		t.Errorf("a refused issue left a certificate or a membership")
	}
}

func TestIssueMakesAForumMember(t *testing.T) {
	w := setup(t)
	cadres := w.trained(t, 3, allTopics...)
	first := w.issue(t, w.dki, cadres[0])
	second := w.issue(t, w.central, cadres[1])
	if first.Name != "certificates/KNK-31-2026-000001" || second.Name != "certificates/KNK-31-2026-000002" {
		t.Errorf("numbers %s, %s", first.Name, second.Name)
	}
	if first.State != knkv1.Certificate_STATE_VALID || first.KeyId == "" || len(first.Signature) != ed25519.SignatureSize ||
		first.Issuer != "organizations/disnaker-dki" || len(first.Topics) != 4 ||
		!first.ExpireTime.AsTime().Equal(first.IssueTime.AsTime().AddDate(3, 0, 0)) {
		t.Errorf("certificate %v", first)
	}
	c := w.cadre(t, cadres[0].Name)
	if c.State != knkv1.Cadre_STATE_CERTIFIED || c.Certificate != first.Name || c.Forum != "forums/31" {
		t.Errorf("cadre after issue: state %v certificate %q forum %q", c.State, c.Certificate, c.Forum)
	}
	members := w.members(t, "31", knkv1.ForumMembership_STATE_ACTIVE)
	if len(members) != 2 || members[0].Cadre != cadres[0].Name || members[0].Certificate != first.Name ||
		members[0].Name != "forums/31/members/"+strings.TrimPrefix(cadres[0].Name, "cadres/") {
		t.Errorf("members %v", members)
	}
	_, err := w.Certs.IssueCertificate(testenv.Ctx(w.dki), &knkv1.IssueCertificateRequest{Cadre: cadres[0].Name})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("second certificate: %v, want ALREADY_EXISTS", err)
	}
	_, err = w.Certs.IssueCertificate(testenv.Ctx(w.kalbar), &knkv1.IssueCertificateRequest{Cadre: cadres[2].Name})
	if status.Code(err) != codes.NotFound { // the cadre is outside its scope, as if it did not exist
		t.Errorf("unit of another province: %v", err)
	}
	forums, err := w.Forums.ListForums(testenv.Ctx(w.fed), &knkv1.ListForumsRequest{})
	if err != nil || len(forums.Forums) != 38 || forums.NationalActiveMembers != 2 {
		t.Fatalf("forums: %d, national %d (%v)", len(forums.GetForums()), forums.GetNationalActiveMembers(), err)
	}
	dki, err := w.Forums.GetForum(testenv.Ctx(w.fed), &knkv1.GetForumRequest{Name: "forums/31"})
	if err != nil || dki.ActiveMembers != 2 || dki.Inspectorate != "organizations/pengawas-dki" || dki.DisplayName != "Forum KNK DKI Jakarta" {
		t.Errorf("forum 31: %v %v", dki, err)
	}
}

func TestRevokeEndsMembershipAndAllowsReissue(t *testing.T) {
	w := setup(t)
	c := w.trained(t, 1, allTopics...)[0]
	cert := w.issue(t, w.dki, c)
	ctx := testenv.Ctx(w.dki)
	if _, err := w.Certs.RevokeCertificate(ctx, &knkv1.RevokeCertificateRequest{Name: cert.Name}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("revoke without reason: %v", err)
	}
	r := w.REST(t, http.MethodPost, "/v1/"+cert.Name+":revoke", w.dki, map[string]any{"reason": "data palsu"})
	if r.Status != http.StatusOK || r.Body["state"] != "STATE_REVOKED" || r.Body["revoke_reason"] != "data palsu" {
		t.Fatalf("revoke over REST: %d %s", r.Status, r.Raw)
	}
	if _, err := w.Certs.RevokeCertificate(ctx, &knkv1.RevokeCertificateRequest{Name: cert.Name, Reason: "again"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("revoke twice: %v", err)
	}
	ended := w.members(t, "31", knkv1.ForumMembership_STATE_ENDED)
	if len(ended) != 1 || ended[0].EndReason != knkv1.ForumMembership_END_REASON_REVOKED || ended[0].EndTime == nil {
		t.Errorf("ended memberships %v", ended)
	}
	if got := w.cadre(t, c.Name); got.State != knkv1.Cadre_STATE_ACTIVE || got.Certificate != "" || got.Forum != "" {
		t.Errorf("cadre after revoke: %v %q %q", got.State, got.Certificate, got.Forum)
	}
	again := w.issue(t, w.dki, c)
	if again.Name != "certificates/KNK-31-2026-000002" || len(w.members(t, "31", knkv1.ForumMembership_STATE_ACTIVE)) != 1 {
		t.Errorf("re-issue: %s", again.Name)
	}
}

func TestVerifyIsPublicAndHidesTheNIK(t *testing.T) {
	w := setup(t)
	c := w.trained(t, 1, allTopics...)[0]
	cert := w.issue(t, w.dki, c)
	r := w.REST(t, http.MethodGet, "/v1/"+cert.Name+":verify", "", nil)
	if r.Status != http.StatusOK || r.Body["valid"] != true || r.Body["state"] != "STATE_VALID" ||
		r.Body["holder_initials"] != "K. 1." || r.Body["province_code"] != "31" || r.Body["issuer"] != "organizations/disnaker-dki" {
		t.Fatalf("verify: %d %s", r.Status, r.Raw)
	}
	byCode := w.REST(t, http.MethodGet, "/v1/verifications/"+cert.VerificationCode, "", nil)
	if byCode.Status != http.StatusOK || byCode.Body["holder_name"] != c.DisplayName || byCode.Body["verification_code"] != cert.VerificationCode {
		t.Fatalf("verify by code: %d %s", byCode.Status, byCode.Raw)
	}
	for _, raw := range [][]byte{r.Raw, byCode.Raw} {
		if strings.Contains(string(raw), c.Nik) || strings.Contains(string(raw), c.Nik[4:12]) || strings.Contains(string(raw), "nik") {
			t.Errorf("verify response leaks the NIK: %s", raw)
		}
	}
	if r := w.REST(t, http.MethodGet, "/v1/certificates/KNK-31-2026-999999:verify", "", nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown number: %d %s", r.Status, r.Raw)
	}
	if r := w.REST(t, http.MethodGet, "/v1/keys", "", nil); r.Status != http.StatusOK || len(r.Body["keys"].([]any)) != 1 {
		t.Errorf("keys: %d %s", r.Status, r.Raw)
	}
	if r := w.REST(t, http.MethodGet, "/v1/"+cert.Name, "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("GetCertificate without a key: %d", r.Status)
	}
}

// verifyOffline is the procedure the README documents for a third party: take the
// GET /v1/verifications/{code} JSON and the public keys from GET /v1/keys, rebuild
// the canonical bytes of the version the answer names (1 if it names none) and
// check the Ed25519 signature. It uses no code of the server.
func verifyOffline(t *testing.T, verify, keys map[string]any) bool {
	t.Helper()
	var topics []string
	for _, tp := range verify["topics"].([]any) {
		topics = append(topics, tp.(string))
	}
	version, _ := verify["canonical_version"].(float64)
	var msg string
	switch version {
	case 0, 1:
		msg = "KNK-CERTIFICATE-V1\n" +
			"number:" + strings.TrimPrefix(verify["name"].(string), "certificates/") + "\n"
	case 2:
		msg = "KNK-CERTIFICATE-V2\n" +
			"number:" + strings.TrimPrefix(verify["name"].(string), "certificates/") + "\n" +
			"verification_code:" + verify["verification_code"].(string) + "\n"
	default:
		t.Fatalf("canonical_version %v", verify["canonical_version"])
	}
	msg += "holder_name:" + verify["holder_name"].(string) + "\n" +
		"province_code:" + verify["province_code"].(string) + "\n" +
		"topics:" + strings.Join(topics, ",") + "\n" +
		"issuer:" + verify["issuer"].(string) + "\n" +
		"issue_time:" + verify["issue_time"].(string) + "\n" +
		"expire_time:" + verify["expire_time"].(string) + "\n"
	sig, err := base64.StdEncoding.DecodeString(verify["signature"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys["keys"].([]any) {
		key := k.(map[string]any)
		if key["key_id"] != verify["key_id"] {
			continue
		}
		pub, err := base64.StdEncoding.DecodeString(key["public_key"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return ed25519.Verify(pub, []byte(msg), sig)
	}
	t.Fatalf("key %v is not published", verify["key_id"])
	return false
}

func TestOfflineVerificationAndTampering(t *testing.T) {
	w := setup(t)
	c := w.trained(t, 1, allTopics...)[0]
	cert := w.issue(t, w.dki, c)
	verify := w.REST(t, http.MethodGet, "/v1/verifications/"+cert.VerificationCode, "", nil).Body
	keys := w.REST(t, http.MethodGet, "/v1/keys", "", nil).Body
	if verify["canonical_version"] != 2.0 || !verifyOffline(t, verify, keys) {
		t.Fatalf("a genuine certificate fails offline verification: %v", verify)
	}
	tampered := []struct {
		field string
		value any
	}{
		{"holder_name", "Orang Lain"}, {"province_code", "61"}, {"expire_time", "2099-11-23T09:00:00Z"},
		{"name", "certificates/KNK-31-2026-000002"}, {"verification_code", certcode.New()},
		{"canonical_version", 1.0},
	}
	for _, tt := range tampered {
		changed := map[string]any{}
		for k, v := range verify {
			changed[k] = v
		}
		changed[tt.field] = tt.value
		if verifyOffline(t, changed, keys) {
			t.Errorf("a certificate with %s changed still verifies", tt.field)
		}
	}
}

func TestExpiryEndsMembershipExactlyOnce(t *testing.T) {
	w := setup(t)
	c := w.trained(t, 1, allTopics...)[0]
	cert := w.issue(t, w.dki, c)
	w.Clock.Advance(3*365*24*time.Hour + 48*time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for len(w.members(t, "31", knkv1.ForumMembership_STATE_ENDED)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ended := w.members(t, "31", knkv1.ForumMembership_STATE_ENDED)
	if len(ended) != 1 || ended[0].EndReason != knkv1.ForumMembership_END_REASON_EXPIRED {
		t.Fatalf("after expiry: ended memberships %v", ended)
	}
	v, err := w.Certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: cert.Name})
	if err != nil || v.Valid || v.State != knkv1.Certificate_STATE_EXPIRED {
		t.Errorf("verify after expiry: %v %v", v, err)
	}
	if got := w.cadre(t, c.Name); got.State != knkv1.Cadre_STATE_ACTIVE || got.Forum != "" {
		t.Errorf("cadre after expiry: %v %q", got.State, got.Forum)
	}
	time.Sleep(100 * time.Millisecond) // several more sweeps run
	events, err := w.Events.ListEvents(testenv.Ctx(w.AdminKey), &knkv1.ListEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range events.Events {
		count[e.Type]++
	}
	if count["certificate.expired"] != 1 || count["forum.member_left"] != 1 || count["certificate.issued"] != 1 || count["forum.member_joined"] != 1 {
		t.Errorf("event counts %v", count)
	}
}

func TestProvinceChangeMovesAndWithdrawalEndsMembership(t *testing.T) {
	w := setup(t)
	cadres := w.trained(t, 2, allTopics...)
	w.issue(t, w.dki, cadres[0])
	w.issue(t, w.dki, cadres[1])
	moved, err := w.Cadres.UpdateCadre(testenv.Ctx(w.fed), &knkv1.UpdateCadreRequest{
		Cadre: &knkv1.Cadre{Name: cadres[0].Name, ProvinceCode: "61"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"province_code"}}})
	if err != nil || moved.Forum != "forums/61" {
		t.Fatalf("move: %v %v", moved, err)
	}
	if ended := w.members(t, "31", knkv1.ForumMembership_STATE_ENDED); len(ended) != 1 || ended[0].EndReason != knkv1.ForumMembership_END_REASON_MOVED {
		t.Errorf("old forum: %v", ended)
	}
	if active := w.members(t, "61", knkv1.ForumMembership_STATE_ACTIVE); len(active) != 1 || active[0].Cadre != cadres[0].Name {
		t.Errorf("new forum: %v", active)
	}
	if _, err := w.Cadres.WithdrawCadre(testenv.Ctx(w.fed), &knkv1.WithdrawCadreRequest{Name: cadres[1].Name, Reason: "pensiun"}); err != nil {
		t.Fatal(err)
	}
	ended := w.members(t, "31", knkv1.ForumMembership_STATE_ENDED)
	if len(ended) != 2 || ended[1].EndReason != knkv1.ForumMembership_END_REASON_WITHDRAWN {
		t.Errorf("after withdrawal: %v", ended)
	}
	if active := w.members(t, "31", knkv1.ForumMembership_STATE_ACTIVE); len(active) != 0 {
		t.Errorf("still active in 31: %v", active)
	}
}

func TestParallelIssuesGetConsecutiveNumbers(t *testing.T) {
	w := setup(t)
	cadres := w.trained(t, 100, allTopics...)
	names := make([]string, len(cadres))
	errs := make([]error, len(cadres))
	var wg sync.WaitGroup
	for i, c := range cadres {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cert, err := w.Certs.IssueCertificate(testenv.Ctx(w.dki), &knkv1.IssueCertificateRequest{Cadre: c.Name})
			names[i], errs[i] = cert.GetName(), err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(names)
	for i, n := range names {
		if want := fmt.Sprintf("certificates/KNK-31-2026-%06d", i+1); n != want {
			t.Fatalf("number %d is %s, want %s", i, n, want)
		}
	}
	if active := w.members(t, "31", knkv1.ForumMembership_STATE_ACTIVE); len(active) != 100 {
		t.Errorf("%d active memberships, want 100", len(active))
	}
}

func TestRoles(t *testing.T) {
	w := setup(t)
	cadres := w.trained(t, 40, allTopics...)
	next := 0
	var first *knkv1.Certificate
	type call func(key string) error
	methods := map[string]call{
		"IssueCertificate": func(key string) error {
			next++
			_, err := w.Certs.IssueCertificate(testenv.Ctx(key), &knkv1.IssueCertificateRequest{Cadre: cadres[next].Name})
			return err
		},
		"GetCertificate": func(key string) error {
			_, err := w.Certs.GetCertificate(testenv.Ctx(key), &knkv1.GetCertificateRequest{Name: "certificates/KNK-31-2026-000001"})
			return err
		},
		"ListCertificates": func(key string) error {
			_, err := w.Certs.ListCertificates(testenv.Ctx(key), &knkv1.ListCertificatesRequest{})
			return err
		},
		"RevokeCertificate": func(key string) error {
			next++
			cert := w.issue(t, w.AdminKey, cadres[next])
			_, err := w.Certs.RevokeCertificate(testenv.Ctx(key), &knkv1.RevokeCertificateRequest{Name: cert.Name, Reason: "x"})
			return err
		},
		"VerifyCertificate": func(key string) error {
			_, err := w.Certs.VerifyCertificate(testenv.Ctx(key), &knkv1.VerifyCertificateRequest{Name: "certificates/KNK-31-2026-000001"})
			return err
		},
		"VerifyCertificateByCode": func(key string) error {
			_, err := w.Certs.VerifyCertificateByCode(testenv.Ctx(key), &knkv1.VerifyCertificateByCodeRequest{Code: first.VerificationCode})
			return err
		},
		"ListSigningKeys": func(key string) error {
			_, err := w.Certs.ListSigningKeys(testenv.Ctx(key), &knkv1.ListSigningKeysRequest{})
			return err
		},
		"ListForums": func(key string) error {
			_, err := w.Forums.ListForums(testenv.Ctx(key), &knkv1.ListForumsRequest{})
			return err
		},
		"ListForumMembers": func(key string) error {
			_, err := w.Forums.ListForumMembers(testenv.Ctx(key), &knkv1.ListForumMembersRequest{Parent: "forums/31"})
			return err
		},
		"ListProvinceStats": func(key string) error {
			_, err := w.Stats.ListProvinceStats(testenv.Ctx(key), &knkv1.ListProvinceStatsRequest{})
			return err
		},
	}
	first = w.issue(t, w.AdminKey, cadres[0])
	ok, denied, unauth := codes.OK, codes.PermissionDenied, codes.Unauthenticated
	// For the unit elsewhere, a certificate or cadre of province 31 is outside its
	// scope: NOT_FOUND, as if it did not exist.
	want := map[string]map[string]codes.Code{
		"admin":          {"IssueCertificate": ok, "RevokeCertificate": ok},
		"unit in 31":     {"IssueCertificate": ok, "RevokeCertificate": ok},
		"central unit":   {"IssueCertificate": ok, "RevokeCertificate": ok},
		"unit elsewhere": {"IssueCertificate": codes.NotFound, "RevokeCertificate": codes.NotFound, "GetCertificate": codes.NotFound},
		"federation":     {"IssueCertificate": denied, "RevokeCertificate": denied},
		"inspector":      {"IssueCertificate": denied, "RevokeCertificate": denied},
		"no key": {"IssueCertificate": unauth, "RevokeCertificate": unauth, "GetCertificate": unauth,
			"ListCertificates": unauth, "ListForums": unauth, "ListForumMembers": unauth, "ListProvinceStats": unauth},
	}
	keys := map[string]string{"admin": w.AdminKey, "unit in 31": w.dki, "central unit": w.central,
		"unit elsewhere": w.kalbar, "federation": w.fed, "inspector": w.inspector, "no key": ""}
	for role, key := range keys {
		for name, m := range methods {
			expected, listed := want[role][name]
			if !listed {
				expected = ok // reads are open to every key; verification and keys to anyone
			}
			if got := status.Code(m(key)); got != expected {
				t.Errorf("%s %s: got %v, want %v", role, name, got, expected)
			}
		}
	}
}

func TestProvinceStats(t *testing.T) {
	w := setup(t)
	cadres := w.trained(t, 3, allTopics...)
	w.trained(t, 2, knkv1.Topic_TOPIC_K3)
	w.issue(t, w.dki, cadres[0])
	w.issue(t, w.dki, cadres[1])
	r := w.REST(t, http.MethodGet, "/v1/stats/provinces", w.inspector, nil)
	if r.Status != http.StatusOK || len(r.Body["provinces"].([]any)) != 38 {
		t.Fatalf("stats: %d %s", r.Status, r.Raw)
	}
	for _, row := range r.Body["provinces"].([]any) {
		p := row.(map[string]any)
		if p["province_code"] != "31" {
			continue
		}
		passes := p["topic_passes"].(map[string]any)
		if p["cadres"] != "5" || p["certified"] != "2" || p["forum_members"] != "2" || p["sessions_completed"] != "2" ||
			passes["TOPIC_K3"] != "5" || passes["TOPIC_PKWT"] != "3" {
			t.Errorf("province 31: %v", p)
		}
	}
}

func TestSigningKeySurvivesRestartAndRotation(t *testing.T) {
	w := setup(t)
	c := w.trained(t, 2, allTopics...)
	old := w.issue(t, w.dki, c[0])
	w.Stop(t)
	again := testenv.StartAt(t, w.DBPath)
	keys, err := again.Certs.ListSigningKeys(context.Background(), &knkv1.ListSigningKeysRequest{})
	if err != nil || len(keys.Keys) != 1 || keys.Keys[0].KeyId != old.KeyId {
		t.Fatalf("keys after restart: %v %v", keys, err)
	}
	again.Stop(t)

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	file := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated := testenv.StartWith(t, w.DBPath, func(cfg *testenv.Config) { cfg.SigningKeyFile = file })
	newCert, err := rotated.Certs.IssueCertificate(testenv.Ctx(rotated.AdminKey), &knkv1.IssueCertificateRequest{Cadre: c[1].Name})
	if err != nil {
		t.Fatal(err)
	}
	if newCert.KeyId == old.KeyId || newCert.KeyId != certificate.KeyID(priv.Public().(ed25519.PublicKey)) {
		t.Errorf("new certificate signed by %s", newCert.KeyId)
	}
	keysJSON := rotated.REST(t, http.MethodGet, "/v1/keys", "", nil).Body
	if n := len(keysJSON["keys"].([]any)); n != 2 {
		t.Fatalf("%d keys published after rotation, want 2", n)
	}
	for _, cert := range []*knkv1.Certificate{old, newCert} {
		verify := rotated.REST(t, http.MethodGet, "/v1/verifications/"+cert.VerificationCode, "", nil).Body
		if !verifyOffline(t, verify, keysJSON) {
			t.Errorf("%s (key %s) no longer verifies after rotation", cert.Name, cert.KeyId)
		}
	}
}

// TestVerifyScript runs the README's offline procedure (curl, jq, openssl) against
// a real server: a genuine certificate passes and a tampered one fails.
func TestVerifyScript(t *testing.T) {
	for _, tool := range []string{"curl", "jq", "openssl", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("scripts/verify-certificate.sh needs %s, which is not installed", tool)
		}
	}
	w := setup(t)
	c := w.trained(t, 1, allTopics...)[0]
	cert := w.issue(t, w.dki, c)
	number := strings.TrimPrefix(cert.Name, "certificates/")
	script := func(base, arg, key string) ([]byte, error) {
		cmd := exec.Command("bash", "../../scripts/verify-certificate.sh", base, arg)
		cmd.Env = append(os.Environ(), "KNK_KEY="+key)
		return cmd.CombinedOutput()
	}
	// By code as printed, by code as typed (lower case, spaces), by number with the issuer's key.
	for _, tt := range []struct{ arg, key string }{
		{cert.VerificationCode, ""}, {strings.ToLower(strings.ReplaceAll(cert.VerificationCode, "-", " ")), ""}, {number, w.dki},
	} {
		out, err := script(w.BaseURL, tt.arg, tt.key)
		if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") || !strings.Contains(string(out), "state: STATE_VALID") {
			t.Fatalf("genuine certificate by %q: %v\n%s", tt.arg, err, out)
		}
	}
	if out, err := script(w.BaseURL, number, ""); err == nil || !strings.Contains(string(out), "use the verification code") {
		t.Errorf("by number without a key: %v\n%s", err, out)
	}
	// A server that lies about the holder: the signature no longer matches.
	liar := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(w.BaseURL + r.URL.Path)
		if err != nil {
			rw.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		rw.Write([]byte(strings.ReplaceAll(string(raw), c.DisplayName, "Orang Lain")))
	}))
	defer liar.Close()
	out, err := script(liar.URL, cert.VerificationCode, "")
	if err == nil || !strings.Contains(string(out), "Signature Verification Failure") {
		t.Errorf("tampered certificate passed: %v\n%s", err, out)
	}
}
