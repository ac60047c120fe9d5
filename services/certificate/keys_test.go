package certificate_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/secretbox"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/certificate"
)

// storedKey is a row of signing_keys as the database holds it.
type storedKey struct {
	id        string
	pub, priv []byte
	encrypted int
}

func storedKeys(t *testing.T, conn *sql.DB) []storedKey {
	t.Helper()
	rows, err := conn.Query(`SELECT id, public_key, private_key, key_encrypted FROM signing_keys ORDER BY create_time, id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedKey
	for rows.Next() {
		var k storedKey
		if err := rows.Scan(&k.id, &k.pub, &k.priv, &k.encrypted); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// holdsSeedOf reports whether any 32 bytes of b are the seed of public key pub.
func holdsSeedOf(b, pub []byte) bool {
	for i := 0; i+ed25519.SeedSize <= len(b); i++ {
		if ed25519.NewKeyFromSeed(b[i : i+ed25519.SeedSize]).Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(pub)) {
			return true
		}
	}
	return false
}

// TestDatabaseAloneCannotSign: the stored signing key is sealed under the
// key-encryption key, so a copy of the database holds no seed, and knkd refuses
// to start on it with a missing or wrong key-encryption key rather than make a
// new signing key.
func TestDatabaseAloneCannotSign(t *testing.T) {
	t.Parallel()
	w := setup(t)
	cert := w.issue(t, w.dki, w.trained(t, 1, allTopics...)[0])
	keys := storedKeys(t, w.SQL(t))
	if len(keys) != 1 || keys[0].id != cert.KeyId {
		t.Fatalf("stored keys %v, want the one that signed (%s)", keys, cert.KeyId)
	}
	if keys[0].encrypted != 1 || len(keys[0].priv) == ed25519.SeedSize || holdsSeedOf(keys[0].priv, keys[0].pub) {
		t.Fatalf("the stored private key (%d bytes, encrypted=%d) holds the seed", len(keys[0].priv), keys[0].encrypted)
	}
	w.Stop(t)

	wrong := filepath.Join(t.TempDir(), "wrong.kek")
	if _, err := secretbox.CreateKeyFile(wrong); err != nil {
		t.Fatal(err)
	}
	err := testenv.StartErr(t, w.DBPath, func(cfg *testenv.Config) { cfg.KeyEncryptionKeyFile = wrong })
	if !errors.Is(err, certificate.ErrKeys) || !strings.Contains(err.Error(), "does not decrypt") ||
		!strings.Contains(err.Error(), cert.KeyId) {
		t.Errorf("start with a wrong key-encryption key: %v, want a refusal naming key %s", err, cert.KeyId)
	}
	missing := filepath.Join(t.TempDir(), "missing.kek")
	if err := testenv.StartErr(t, w.DBPath, func(cfg *testenv.Config) { cfg.KeyEncryptionKeyFile = missing }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("start with a missing key-encryption key file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("knkd created the key-encryption key file it was told to read: %v", err)
	}
	if w.Engine() == "sqlite" {
		// A copy of the database file alone, as a backup would hold it.
		dir := t.TempDir()
		for _, suffix := range []string{"", "-wal"} {
			if b, err := os.ReadFile(w.DBPath + suffix); err == nil {
				os.WriteFile(filepath.Join(dir, "knk.db"+suffix), b, 0o600)
			}
		}
		copied := filepath.Join(dir, "knk.db")
		err := testenv.StartErr(t, copied, nil)
		if !errors.Is(err, certificate.ErrKeys) || !strings.Contains(err.Error(), "is missing") {
			t.Errorf("start on a copy without its key-encryption key: %v, want a refusal saying the file is missing", err)
		}
		if _, err := os.Stat(copied + ".kek"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("knkd made a new key-encryption key beside the copy: %v", err)
		}
		// The README's way on without the key-encryption key: forget the stored key.
		conn, err := sql.Open("sqlite3", copied)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(`UPDATE signing_keys SET private_key = NULL, active = 0 WHERE private_key IS NOT NULL`)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		fresh := &world{Env: testenv.StartAt(t, copied), fed: w.fed, dki: w.dki, day: w.day, next: w.next}
		if c := fresh.issue(t, w.dki, fresh.trained(t, 1, allTopics...)[0]); c.KeyId == cert.KeyId {
			t.Error("a new certificate is signed by the forgotten key")
		}
		if v, err := fresh.Certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: cert.Name}); err != nil || !v.Valid {
			t.Errorf("an old certificate after the key was forgotten: %v %v", v, err)
		}
		fresh.Stop(t)
	}
	// Nothing was replaced: the same single key, still sealed the same way.
	again := testenv.StartAt(t, w.DBPath)
	if after := storedKeys(t, again.SQL(t)); len(after) != 1 || string(after[0].priv) != string(keys[0].priv) {
		t.Fatalf("stored keys changed by the refused starts: %d keys", len(after))
	}
	v, err := again.Certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: cert.Name})
	if err != nil || !v.Valid {
		t.Fatalf("verify after restart with the right key: %v %v", v, err)
	}
}

// TestPlaintextKeyIsSealedOnStart: a database written before keys were
// encrypted holds the seed in plaintext; knkd seals it on start and goes on
// signing with the same key.
func TestPlaintextKeyIsSealedOnStart(t *testing.T) {
	t.Parallel()
	dsn := dbtest.DSN(t, dbtest.Engine())
	store, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	id := certificate.KeyID(pub)
	err = store.Write(context.Background(), func(tx *db.Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO signing_keys (id, public_key, private_key, active, create_time)
			VALUES (?, ?, ?, 1, ?)`, id, []byte(pub), priv.Seed(), time.Now().UnixMicro())
		return err
	})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	w := setupAt(t, dsn)
	keys := storedKeys(t, w.SQL(t))
	if len(keys) != 1 || keys[0].id != id || keys[0].encrypted != 1 || holdsSeedOf(keys[0].priv, pub) {
		t.Fatalf("after start: %d keys, encrypted=%d; want key %s sealed", len(keys), keys[0].encrypted, id)
	}
	cert := w.issue(t, w.dki, w.trained(t, 1, allTopics...)[0])
	if cert.KeyId != id {
		t.Fatalf("signed by %s, want the migrated key %s", cert.KeyId, id)
	}
	verify := w.REST(t, http.MethodGet, "/v1/"+cert.Name+":verify", w.AdminKey, nil).Body
	if !verifyOffline(t, verify, w.REST(t, http.MethodGet, "/v1/keys", "", nil).Body) {
		t.Fatal("certificate signed by the migrated key does not verify")
	}
}

func setupAt(t *testing.T, dsn string) *world {
	t.Helper()
	e := testenv.StartAt(t, dsn)
	return &world{Env: e, day: time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC),
		fed: e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, ""),
		dki: e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")}
}

func listKeys(t *testing.T, w *world) map[string]*knkv1.SigningKey {
	t.Helper()
	resp, err := w.Certs.ListSigningKeys(context.Background(), &knkv1.ListSigningKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*knkv1.SigningKey{}
	for _, k := range resp.Keys {
		out[k.KeyId] = k
	}
	return out
}

func TestRotateKeepsOldCertificatesVerifying(t *testing.T) {
	t.Parallel()
	w := setup(t)
	cadres := w.trained(t, 2, allTopics...)
	old := w.issue(t, w.dki, cadres[0])
	if _, err := w.Certs.RotateSigningKey(testenv.Ctx(w.dki), &knkv1.RotateSigningKeyRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a training unit rotates the signing key: %v", err)
	}
	nk, err := w.Certs.RotateSigningKey(testenv.Ctx(w.AdminKey), &knkv1.RotateSigningKeyRequest{})
	if err != nil || nk.KeyId == old.KeyId || !nk.Active {
		t.Fatalf("rotate: %v %v", nk, err)
	}
	newer := w.issue(t, w.dki, cadres[1])
	if newer.KeyId != nk.KeyId {
		t.Fatalf("signed by %s after rotation, want %s", newer.KeyId, nk.KeyId)
	}
	keys := listKeys(t, w)
	if len(keys) != 2 || keys[old.KeyId].Active || !keys[nk.KeyId].Active || keys[old.KeyId].RevokedFrom != nil {
		t.Fatalf("published keys after rotation: %v", keys)
	}
	for _, k := range storedKeys(t, w.SQL(t)) {
		if k.id == old.KeyId && k.priv != nil {
			t.Error("the rotated-out private key is still stored")
		}
	}
	keysJSON := w.REST(t, http.MethodGet, "/v1/keys", "", nil).Body
	for _, c := range []*knkv1.Certificate{old, newer} {
		verify := w.REST(t, http.MethodGet, "/v1/"+c.Name+":verify", w.AdminKey, nil).Body
		if verify["valid"] != true || !verifyOffline(t, verify, keysJSON) {
			t.Errorf("%s (key %s) does not verify after rotation: %v", c.Name, c.KeyId, verify)
		}
	}
	// The rotated key is what a restarted server signs with.
	w.Stop(t)
	again := &world{Env: testenv.StartAt(t, w.DBPath), fed: w.fed, dki: w.dki, day: w.day, next: w.next}
	if c := again.issue(t, again.dki, again.trained(t, 1, allTopics...)[0]); c.KeyId != nk.KeyId {
		t.Errorf("after restart signed by %s, want %s", c.KeyId, nk.KeyId)
	}
}

// TestRevokeSigningKeyFromATime: certificates the key signed at or after the
// time verify as not valid, earlier ones stay valid, and re-signing makes the
// later ones valid again under the current key.
func TestRevokeSigningKeyFromATime(t *testing.T) {
	t.Parallel()
	w := setup(t)
	cadres := w.trained(t, 3, allTopics...)
	admin := testenv.Ctx(w.AdminKey)
	before := w.issue(t, w.dki, cadres[0])
	w.Clock.Advance(time.Hour)
	leakAt := w.Clock.Now()
	after := w.issue(t, w.dki, cadres[1]) // issued at the leak time itself
	revoked := before.KeyId

	for _, tt := range []struct {
		name string
		req  *knkv1.RevokeSigningKeyRequest
		code codes.Code
	}{
		{"no time", &knkv1.RevokeSigningKeyRequest{KeyId: revoked}, codes.InvalidArgument},
		{"future", &knkv1.RevokeSigningKeyRequest{KeyId: revoked, RevokedFrom: timestamppb.New(leakAt.Add(time.Hour))}, codes.InvalidArgument},
		{"unknown key", &knkv1.RevokeSigningKeyRequest{KeyId: "0123456789abcdef", RevokedFrom: timestamppb.New(leakAt)}, codes.NotFound},
	} {
		if _, err := w.Certs.RevokeSigningKey(admin, tt.req); status.Code(err) != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}
	if _, err := w.Certs.ResignCertificates(admin, &knkv1.ResignCertificatesRequest{KeyId: revoked}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("re-sign the certificates of a key that is not revoked: %v", err)
	}
	if _, err := w.Certs.RevokeSigningKey(testenv.Ctx(w.dki), &knkv1.RevokeSigningKeyRequest{KeyId: revoked, RevokedFrom: timestamppb.New(leakAt)}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a training unit revokes a signing key: %v", err)
	}

	key, err := w.Certs.RevokeSigningKey(admin, &knkv1.RevokeSigningKeyRequest{KeyId: revoked, RevokedFrom: timestamppb.New(leakAt)})
	if err != nil || !key.RevokedFrom.AsTime().Equal(leakAt) || key.RevokeTime == nil || key.Active {
		t.Fatalf("revoke: %v %v", key, err)
	}
	// A later time cannot narrow the revocation.
	w.Clock.Advance(2 * time.Minute)
	if k, err := w.Certs.RevokeSigningKey(admin, &knkv1.RevokeSigningKeyRequest{KeyId: revoked, RevokedFrom: timestamppb.New(leakAt.Add(time.Minute))}); err != nil || !k.RevokedFrom.AsTime().Equal(leakAt) {
		t.Errorf("revoke again from later: %v %v, want revoked_from kept at %s", k, err, leakAt)
	}
	keysJSON := w.REST(t, http.MethodGet, "/v1/keys", "", nil).Body
	var published map[string]any
	for _, k := range keysJSON["keys"].([]any) {
		if k.(map[string]any)["key_id"] == revoked {
			published = k.(map[string]any)
		}
	}
	if published["revoked_from"] != leakAt.Format(time.RFC3339) || published["revoke_time"] == nil {
		t.Errorf("GET /v1/keys shows the revoked key as %v", published)
	}

	verify := func(c *knkv1.Certificate) *knkv1.VerifyCertificateResponse {
		v, err := w.Certs.VerifyCertificate(testenv.Ctx(w.AdminKey), &knkv1.VerifyCertificateRequest{Name: c.Name})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := verify(before); !v.Valid || v.InvalidReason != "" {
		t.Errorf("certificate signed before the leak: %v", v)
	}
	v := verify(after)
	if v.Valid || !strings.Contains(v.InvalidReason, "revoked") || !strings.Contains(v.InvalidReason, revoked) {
		t.Errorf("certificate signed at the leak time: valid=%v reason %q", v.Valid, v.InvalidReason)
	}
	anon, err := w.Certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: after.Name})
	if err != nil || anon.Valid || anon.InvalidReason != v.InvalidReason {
		t.Errorf("anonymous verification of the certificate signed at the leak time: %v %v", anon, err)
	}
	// The revoked key signs nothing more.
	third := w.issue(t, w.dki, cadres[2])
	if third.KeyId == revoked || !verify(third).Valid {
		t.Errorf("certificate issued after the revocation signed by %s", third.KeyId)
	}

	// The README's offline procedure refuses it too, and still accepts the earlier one.
	if script, ok := verifyScript(t); ok {
		if out, err := script(w.BaseURL, after.VerificationCode); err == nil || !strings.Contains(string(out), "is revoked for certificates signed from "+leakAt.Format(time.RFC3339)) {
			t.Errorf("verify-certificate.sh on the certificate signed at the leak time: %v\n%s", err, out)
		}
		if out, err := script(w.BaseURL, before.VerificationCode); err != nil {
			t.Errorf("verify-certificate.sh on the certificate signed before: %v\n%s", err, out)
		}
	}

	res, err := w.Certs.ResignCertificates(admin, &knkv1.ResignCertificatesRequest{KeyId: revoked})
	if err != nil || res.Resigned != 1 || res.Remaining != 0 || res.NewKeyId != third.KeyId {
		t.Fatalf("re-sign: %v %v", res, err)
	}
	if v := verify(after); !v.Valid || v.KeyId != third.KeyId {
		t.Errorf("re-signed certificate: %v", v)
	}
	if v := verify(before); v.KeyId != revoked || !v.Valid {
		t.Errorf("the certificate signed before the leak changed: %v", v)
	}
	keysJSON = w.REST(t, http.MethodGet, "/v1/keys", "", nil).Body
	for _, c := range []*knkv1.Certificate{before, after} {
		if !verifyOffline(t, w.REST(t, http.MethodGet, "/v1/"+c.Name+":verify", w.AdminKey, nil).Body, keysJSON) {
			t.Errorf("%s does not verify offline", c.Name)
		}
	}
	if res, err := w.Certs.ResignCertificates(admin, &knkv1.ResignCertificatesRequest{KeyId: revoked}); err != nil || res.Resigned != 0 {
		t.Errorf("a second re-sign: %v %v", res, err)
	}
	// An earlier time widens the revocation; within a second it starts at the next one.
	if k, err := w.Certs.RevokeSigningKey(admin, &knkv1.RevokeSigningKeyRequest{KeyId: revoked,
		RevokedFrom: timestamppb.New(leakAt.Add(-1500 * time.Millisecond))}); err != nil || !k.RevokedFrom.AsTime().Equal(leakAt.Add(-time.Second)) {
		t.Errorf("revoke again from earlier: %v %v, want revoked_from %s", k, err, leakAt.Add(-time.Second))
	}
	events, err := w.Events.ListEvents(admin, &knkv1.ListEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events.Events {
		seen[e.Type+" "+e.Resource] = true
	}
	for _, want := range []string{"signing_key.revoked keys/" + revoked, "certificate.resigned " + after.Name} {
		if !seen[want] {
			t.Errorf("no event %q", want)
		}
	}
}

// TestRotationSeenByOtherReplica: on PostgreSQL a rotation made through one
// replica is what the other signs with at once.
func TestRotationSeenByOtherReplica(t *testing.T) {
	t.Parallel()
	w, b := twoReplicas(t)
	nk, err := b.Certs.RotateSigningKey(testenv.Ctx(w.AdminKey), &knkv1.RotateSigningKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if c := w.issue(t, w.dki, w.trained(t, 1, allTopics...)[0]); c.KeyId != nk.KeyId {
		t.Fatalf("replica A signs with %s after B rotated to %s", c.KeyId, nk.KeyId)
	}
}

// verifyScript returns a runner of scripts/verify-certificate.sh by verification
// code, or false when a tool it needs is missing.
func verifyScript(t *testing.T) (func(base, code string) ([]byte, error), bool) {
	for _, tool := range []string{"curl", "jq", "openssl", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("scripts/verify-certificate.sh not run: %s is not installed", tool)
			return nil, false
		}
	}
	return func(base, code string) ([]byte, error) {
		return exec.Command("bash", "../../scripts/verify-certificate.sh", base, code).CombinedOutput()
	}, true
}
