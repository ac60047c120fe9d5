package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/certcode"
	"github.com/knk-id/knk/internal/testenv"
)

// certRun runs knkctl against env (no --key when key is empty) and returns its output.
func certRun(t *testing.T, env *testenv.Env, key string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	full := []string{"--addr", env.Server.GRPCAddr()}
	if key != "" {
		full = append(full, "--key-file", testKeyFile(t, key))
	}
	var out, errOut bytes.Buffer
	err = run(context.Background(), append(full, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// certCtl is certRun that fails the test if the command fails.
func certCtl(t *testing.T, env *testenv.Env, key string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := certRun(t, env, key, args...)
	if err != nil {
		t.Fatalf("knkctl %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

// certTrainedCadre registers a cadre in DKI Jakarta (31) and credits all four topics
// through a completed session run by the training unit key dki.
func certTrainedCadre(t *testing.T, env *testenv.Env, fed, dki string) *knkv1.Cadre {
	t.Helper()
	c, err := env.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
		DisplayName: "Siti Rahayu", ProvinceCode: "31", Nik: "3171011508900001",
	}})
	if err != nil {
		t.Fatal(err)
	}
	all := []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY}
	start := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	ctx := testenv.Ctx(dki)
	s, err := env.Training.CreateSession(ctx, &knkv1.CreateSessionRequest{Session: &knkv1.Session{
		Title: "KNK", Topics: all, ProvinceCode: "31", Mode: knkv1.Session_MODE_ONLINE,
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(time.Hour)), Capacity: 1,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Training.EnrollCadre(ctx, &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name}); err != nil {
		t.Fatal(err)
	}
	scores := map[string]int32{}
	for _, tp := range all {
		scores[tp.String()] = 90
	}
	if _, err := env.Training.RecordResults(ctx, &knkv1.RecordResultsRequest{Name: s.Name,
		Results: []*knkv1.SessionResult{{Cadre: c.Name, Attended: true, Scores: scores}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Training.CompleteSession(ctx, &knkv1.CompleteSessionRequest{Name: s.Name}); err != nil {
		t.Fatal(err)
	}
	return c
}

func certWrite(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func certJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	return m
}

func TestCertificatesAndForumsCLI(t *testing.T) {
	env := testenv.Start(t)
	fed := env.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	dki := env.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	cadre := certTrainedCadre(t, env, fed, dki)
	cadreID := strings.TrimPrefix(cadre.Name, "cadres/")

	out, _ := certCtl(t, env, dki, "certificates", "issue", cadreID, "--request-id", "issue-1")
	issued := certJSON(t, out)
	name, _ := issued["name"].(string)
	number := strings.TrimPrefix(name, "certificates/")
	if name != "certificates/KNK-31-2026-000001" || issued["state"] != "STATE_VALID" || issued["holder_name"] != "Siti Rahayu" {
		t.Fatalf("issue printed %s", out)
	}
	if again, _ := certCtl(t, env, dki, "certificates", "issue", cadre.Name, "--request-id", "issue-1"); certJSON(t, again)["name"] != name {
		t.Errorf("repeated issue with the same request id: %s", again)
	}
	keyID, _ := issued["key_id"].(string)
	code, _ := issued["verification_code"].(string)

	t.Run("GetAndList", func(t *testing.T) {
		for _, arg := range []string{number, name} {
			out, _ := certCtl(t, env, fed, "certificates", "get", arg)
			if certJSON(t, out)["name"] != name {
				t.Errorf("get %s: %s", arg, out)
			}
		}
		out, _ := certCtl(t, env, fed, "certificates", "list", "--province", "31", "--issuer", "disnaker-dki", "--state", "valid", "--cadre", cadreID, "--all")
		certs, _ := certJSON(t, out)["certificates"].([]any)
		if len(certs) != 1 || certs[0].(map[string]any)["name"] != name {
			t.Errorf("list: %s", out)
		}
		out, _ = certCtl(t, env, fed, "certificates", "list", "--state", "revoked")
		if strings.Contains(out, name) {
			t.Errorf("list --state revoked shows a valid certificate: %s", out)
		}
		if _, _, err := certRun(t, env, fed, "certificates", "list", "--state", "lost"); err == nil ||
			!strings.Contains(err.Error(), "expired, revoked, valid") {
			t.Errorf("list --state lost: %v", err)
		}
	})

	t.Run("VerifyGenuine", func(t *testing.T) {
		// By the code as printed, as typed, and by number with the issuing unit's key.
		for _, tt := range []struct{ arg, key string }{
			{code, ""}, {strings.ToLower(strings.ReplaceAll(code, "-", " ")), ""}, {number, dki}, {name, fed},
		} {
			out, stderr := certCtl(t, env, tt.key, "certificates", "verify", tt.arg)
			v := certJSON(t, out)
			if v["valid"] != true || v["state"] != "STATE_VALID" || v["name"] != name || v["holder_name"] != "Siti Rahayu" {
				t.Errorf("verify %s printed %s", tt.arg, out)
			}
			if !strings.Contains(stderr, "signature: OK (key "+keyID+")") {
				t.Errorf("verify %s stderr %q, want signature: OK (key %s)", tt.arg, stderr, keyID)
			}
			if strings.Contains(out, cadre.Nik) {
				t.Errorf("verify output holds the NIK")
			}
		}
	})

	t.Run("VerifyByNumberNeedsAKeyThatSeesTheHolder", func(t *testing.T) {
		if _, _, err := certRun(t, env, "", "certificates", "verify", number); err == nil || !strings.Contains(err.Error(), "verification code") {
			t.Errorf("verify by number without a key: %v", err)
		}
		other := env.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, "")
		if _, _, err := certRun(t, env, other, "certificates", "verify", number); err == nil || !strings.Contains(err.Error(), "verification code") {
			t.Errorf("verify by number with another federation's key: %v", err)
		}
	})

	t.Run("VerifyUnknown", func(t *testing.T) {
		_, _, err := certRun(t, env, dki, "certificates", "verify", "KNK-31-2026-999999")
		if err == nil || !strings.HasPrefix(err.Error(), "NOT_FOUND") {
			t.Errorf("verify of an unknown number: %v", err)
		}
		_, _, err = certRun(t, env, "", "certificates", "verify", certcode.New())
		if err == nil || !strings.HasPrefix(err.Error(), "NOT_FOUND") {
			t.Errorf("verify of an unknown code: %v", err)
		}
		typo := []byte(code)
		typo[0] = map[bool]byte{true: '1', false: '0'}[typo[0] == '0']
		_, _, err = certRun(t, env, "", "certificates", "verify", string(typo))
		if err == nil || !strings.HasPrefix(err.Error(), "INVALID_ARGUMENT") || !strings.Contains(err.Error(), "mistyped") {
			t.Errorf("verify of a mistyped code: %v", err)
		}
	})

	// The third-party procedure: save the two public REST responses, then check offline.
	verifyRaw := env.REST(t, http.MethodGet, "/v1/verifications/"+code, "", nil)
	keysRaw := env.REST(t, http.MethodGet, "/v1/keys", "", nil)
	if verifyRaw.Status != http.StatusOK || keysRaw.Status != http.StatusOK {
		t.Fatalf("REST: verify %d %s; keys %d %s", verifyRaw.Status, verifyRaw.Raw, keysRaw.Status, keysRaw.Raw)
	}
	keysFile := certWrite(t, "keys.json", keysRaw.Raw)
	at := "2026-12-01T00:00:00Z" // the test clock's now is 2026-11-23, expiry three years on

	t.Run("VerifyOffline", func(t *testing.T) {
		certFile := certWrite(t, "cert.json", verifyRaw.Raw)
		_, stderr := certCtl(t, env, "", "certificates", "verify-offline", "--certificate", certFile, "--keys", keysFile, "--at", at)
		if !strings.Contains(stderr, "signature: OK (key "+keyID+")") {
			t.Errorf("verify-offline stderr %q", stderr)
		}
		// lowerCamelCase files read the same.
		var v knkv1.VerifyCertificateResponse
		if err := protojson.Unmarshal(verifyRaw.Raw, &v); err != nil {
			t.Fatal(err)
		}
		camel, err := protojson.Marshal(&v)
		if err != nil || !bytes.Contains(camel, []byte(`"holderName"`)) {
			t.Fatalf("camel: %s %v", camel, err)
		}
		// No network: an address nothing listens on.
		args := []string{"--addr", "127.0.0.1:1", "certificates", "verify-offline", "--certificate", certWrite(t, "camel.json", camel), "--keys", keysFile, "--at", at}
		var so, se bytes.Buffer
		if err := run(context.Background(), args, strings.NewReader(""), &so, &se); err != nil || !strings.Contains(se.String(), "signature: OK") {
			t.Errorf("verify-offline of a lowerCamelCase file: %v\n%s", err, se.String())
		}
		// Past the expiry time by the given clock.
		_, _, err = certRun(t, env, "", "certificates", "verify-offline", "--certificate", certFile, "--keys", keysFile, "--at", "2030-01-01T00:00:00Z")
		if err == nil || !strings.Contains(err.Error(), "EXPIRED") {
			t.Errorf("verify-offline after the expiry time: %v", err)
		}
	})

	t.Run("VerifyOfflineTampered", func(t *testing.T) {
		tampered := bytes.Replace(verifyRaw.Raw, []byte(`"Siti Rahayu"`), []byte(`"Siti Rahayu Putri"`), 1)
		if bytes.Equal(tampered, verifyRaw.Raw) {
			t.Fatalf("holder_name not found in %s", verifyRaw.Raw)
		}
		file := certWrite(t, "tampered.json", tampered)
		_, stderr, err := certRun(t, env, "", "certificates", "verify-offline", "--certificate", file, "--keys", keysFile, "--at", at)
		if err == nil || !strings.Contains(err.Error(), "INVALID") || !strings.Contains(stderr, "signature: INVALID") {
			t.Errorf("tampered certificate: err %v, stderr %q", err, stderr)
		}
		// A keys file without the signing key cannot vouch for the certificate.
		noKeys := certWrite(t, "other-keys.json", []byte(`{"keys": [{"keyId": "0000000000000000", "algorithm": "Ed25519", "publicKey": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`))
		file = certWrite(t, "cert.json", verifyRaw.Raw)
		_, stderr, err = certRun(t, env, "", "certificates", "verify-offline", "--certificate", file, "--keys", noKeys, "--at", at)
		if err == nil || !strings.Contains(stderr, "signature: INVALID") {
			t.Errorf("unknown key: err %v, stderr %q", err, stderr)
		}
	})

	t.Run("Forums", func(t *testing.T) {
		out, _ := certCtl(t, env, fed, "forums", "members", "31", "--state", "active")
		members, _ := certJSON(t, out)["members"].([]any)
		if len(members) != 1 || members[0].(map[string]any)["cadre"] != cadre.Name || members[0].(map[string]any)["certificate"] != name {
			t.Errorf("forums members 31 --state active: %s", out)
		}
		out, _ = certCtl(t, env, fed, "forums", "members", "forums/31", "--state", "ended", "--all")
		if ended, _ := certJSON(t, out)["members"].([]any); len(ended) != 0 {
			t.Errorf("ended members before any revocation: %s", out)
		}
		out, _ = certCtl(t, env, fed, "forums", "get", "forums/31")
		if f := certJSON(t, out); f["active_members"] != "1" || f["name"] != "forums/31" {
			t.Errorf("forums get: %s", out)
		}
		out, _ = certCtl(t, env, fed, "forums", "get", "61")
		if f := certJSON(t, out); f["active_members"] != "0" {
			t.Errorf("forums get 61: %s", out)
		}
		out, _ = certCtl(t, env, fed, "forums", "list", "--all", "--page-size", "10")
		l := certJSON(t, out)
		if forums, _ := l["forums"].([]any); len(forums) != 38 || l["national_active_members"] != "1" {
			t.Errorf("forums list --all: %d forums, national %v", len(forums), l["national_active_members"])
		}
	})

	t.Run("VerifyRevoked", func(t *testing.T) {
		out, _ := certCtl(t, env, dki, "certificates", "revoke", number, "--reason", "data palsu")
		if r := certJSON(t, out); r["state"] != "STATE_REVOKED" {
			t.Fatalf("revoke printed %s", out)
		}
		out, stderr, err := certRun(t, env, "", "certificates", "verify", code)
		if err == nil || !strings.Contains(err.Error(), "REVOKED") || strings.Contains(err.Error(), "INVALID") {
			t.Errorf("verify of a revoked certificate: %v", err)
		}
		if v := certJSON(t, out); v["valid"] != false || v["state"] != "STATE_REVOKED" {
			t.Errorf("verify printed %s", out)
		}
		if !strings.Contains(stderr, "signature: OK") || !strings.Contains(stderr, "state: REVOKED") {
			t.Errorf("verify stderr %q", stderr)
		}
		out, _ = certCtl(t, env, fed, "forums", "members", "31", "--state", "ended")
		if !strings.Contains(out, cadre.Name) || !strings.Contains(out, "END_REASON_REVOKED") {
			t.Errorf("ended members after revocation: %s", out)
		}
	})
}

// TestVerifyOfflineKeepsAcceptingV1Documents saves a certificate as it was shown
// before verification codes (canonical version 1, no version field at all), lets
// knkd re-sign it as V2 on its next start, and checks both offline.
func TestVerifyOfflineKeepsAcceptingV1Documents(t *testing.T) {
	env := testenv.Start(t)
	fed := env.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	dki := env.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	cert, err := env.Certs.IssueCertificate(testenv.Ctx(dki), &knkv1.IssueCertificateRequest{Cadre: certTrainedCadre(t, env, fed, dki).Name})
	if err != nil {
		t.Fatal(err)
	}
	env.DowngradeToV1(t, cert)
	v1 := env.REST(t, http.MethodGet, "/v1/"+cert.Name+":verify", env.AdminKey, nil)
	var doc map[string]any
	if err := json.Unmarshal(v1.Raw, &doc); err != nil || doc["canonical_version"] != 1.0 {
		t.Fatalf("V1 answer: %s", v1.Raw)
	}
	delete(doc, "canonical_version") // as saved before the field existed
	delete(doc, "verification_code")
	old, _ := json.Marshal(doc)
	oldFile := certWrite(t, "v1.json", old)
	env.Stop(t)

	again := testenv.StartAt(t, env.DBPath)
	keysFile := certWrite(t, "keys.json", again.REST(t, http.MethodGet, "/v1/keys", "", nil).Raw)
	at := "2026-12-01T00:00:00Z"
	if _, stderr := certCtl(t, again, "", "certificates", "verify-offline", "--certificate", oldFile, "--keys", keysFile, "--at", at); !strings.Contains(stderr, "signature: OK") {
		t.Errorf("saved V1 document: %s", stderr)
	}
	forged := certWrite(t, "forged.json", bytes.Replace(old, []byte("Siti Rahayu"), []byte("Siti Rahayu Putri"), 1))
	if _, stderr, err := certRun(t, again, "", "certificates", "verify-offline", "--certificate", forged, "--keys", keysFile, "--at", at); err == nil || !strings.Contains(stderr, "signature: INVALID") {
		t.Errorf("forged V1 document: %v %s", err, stderr)
	}
	got, err := again.Certs.GetCertificate(testenv.Ctx(dki), &knkv1.GetCertificateRequest{Name: cert.Name})
	if err != nil || got.CanonicalVersion != 2 || got.VerificationCode == "" {
		t.Fatalf("after the restart: %v %v", got, err)
	}
	v2 := certWrite(t, "v2.json", again.REST(t, http.MethodGet, "/v1/verifications/"+got.VerificationCode, "", nil).Raw)
	if _, stderr := certCtl(t, again, "", "certificates", "verify-offline", "--certificate", v2, "--keys", keysFile, "--at", at); !strings.Contains(stderr, "signature: OK") {
		t.Errorf("re-signed V2 document: %s", stderr)
	}
}
