package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// TestSigningKeyCommands: rotate-signing keeps old certificates verifying;
// revoke-signing --no-resign makes a certificate signed since the given time fail
// verification (online and offline, from saved files), and certificates resign
// makes it verify again under the current key.
func TestSigningKeyCommands(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	fed := env.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	dki := env.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	out, _ := certCtl(t, env, dki, "certificates", "issue", certTrainedCadre(t, env, fed, dki).Name)
	cert := certJSON(t, out)
	number, first := strings.TrimPrefix(cert["name"].(string), "certificates/"), cert["key_id"].(string)

	out, _ = certCtl(t, env, env.AdminKey, "keys", "rotate-signing")
	rotated := certJSON(t, out)
	if rotated["key_id"] == first || rotated["active"] != true {
		t.Fatalf("rotate-signing printed %s", out)
	}
	if _, stderr, err := certRun(t, env, env.AdminKey, "certificates", "verify", number); err != nil {
		t.Fatalf("a certificate of the rotated-out key: %v\n%s", err, stderr)
	}
	if _, _, err := certRun(t, env, dki, "keys", "rotate-signing"); err == nil || !strings.Contains(err.Error(), "PERMISSION_DENIED") {
		t.Errorf("rotate-signing with a training unit's key: %v", err)
	}

	saved := certWrite(t, "cert.json", []byte(mustOut(t, env, "certificates", "verify", number)))
	from := env.Clock.Now().Add(-time.Minute).Format(time.RFC3339) // the certificate was issued at the clock's time
	out, _ = certCtl(t, env, env.AdminKey, "keys", "revoke-signing", first, "--from", from, "--no-resign")
	if revoked := certJSON(t, out); revoked["revoked_from"] != from || revoked["revoke_time"] == nil {
		t.Fatalf("revoke-signing printed %s", out)
	}
	_, stderr, err := certRun(t, env, env.AdminKey, "certificates", "verify", number)
	if err == nil || !strings.Contains(err.Error(), "revoked") || !strings.Contains(stderr, "NOT VALID") {
		t.Errorf("verify after the revocation: %v\n%s", err, stderr)
	}
	keysFile := certWrite(t, "keys.json", []byte(restBody(t, env, "/v1/keys")))
	_, _, err = certRun(t, env, "", "certificates", "verify-offline", "--certificate", saved, "--keys", keysFile)
	if err == nil || !strings.Contains(err.Error(), "revoked for certificates signed from "+from) {
		t.Errorf("verify-offline of a saved certificate of the revoked key: %v", err)
	}

	out, stderr = certCtl(t, env, env.AdminKey, "certificates", "resign", first)
	if out != "resigned: 1\n" || !strings.Contains(stderr, "0 to go") {
		t.Errorf("certificates resign printed %q / %q", out, stderr)
	}
	if _, stderr, err := certRun(t, env, env.AdminKey, "certificates", "verify", number); err != nil || !strings.Contains(stderr, "signature: OK (key "+rotated["key_id"].(string)) {
		t.Errorf("verify after re-signing: %v\n%s", err, stderr)
	}
}

func mustOut(t *testing.T, env *testenv.Env, args ...string) string {
	t.Helper()
	out, _, err := certRun(t, env, env.AdminKey, args...)
	if err != nil {
		t.Fatalf("knkctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func restBody(t *testing.T, env *testenv.Env, path string) string {
	t.Helper()
	r := env.REST(t, "GET", path, "", nil)
	if r.Status != 200 {
		t.Fatalf("GET %s: %d %s", path, r.Status, r.Raw)
	}
	return string(r.Raw)
}

// TestApiKeyCommands: keys create --expire and keys rotate --grace.
func TestApiKeyCommands(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	env.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	works := func(key string) error {
		_, err := env.Cadres.ListCadres(testenv.Ctx(key), &knkv1.ListCadresRequest{})
		return err
	}
	expire := env.Clock.Now().Add(48 * time.Hour).Format(time.RFC3339)
	out, stderr := e2eCtl(t, env, env.AdminKey, "keys", "create", "ksbsi", "--expire", expire)
	old := strings.TrimSpace(out)
	name := stderr[strings.Index(stderr, "organizations/"):]
	name = strings.TrimSpace(name)
	if list, _ := e2eCtl(t, env, env.AdminKey, "keys", "list", "ksbsi"); !strings.Contains(list, `"expire_time"`) || !strings.Contains(list, `"`+expire+`"`) {
		t.Errorf("keys list does not show the expiry %s:\n%s", expire, list)
	}
	keyID := name[strings.LastIndex(name, "/")+1:]
	out, stderr = e2eCtl(t, env, env.AdminKey, "keys", "rotate", "ksbsi", keyID, "--grace", "2h")
	fresh := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || fresh == old || !strings.Contains(stderr, "keeps working for 2h0m0s") {
		t.Fatalf("keys rotate printed %q / %q", out, stderr)
	}
	env.Clock.Advance(2*time.Hour - time.Second)
	if works(old) != nil || works(fresh) != nil {
		t.Fatalf("within the grace period: old %v, new %v", works(old), works(fresh))
	}
	env.Clock.Advance(time.Second)
	if err := works(old); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("old key after the grace period: %v", err)
	}
	if err := works(fresh); err != nil {
		t.Errorf("new key: %v", err)
	}
}

// TestFilesWithPersonalDataArePrivate: a rejections file is written 0600 even
// where a world-readable one was before.
func TestFilesWithPersonalDataArePrivate(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	fed := env.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	dir := t.TempDir()
	roster := filepath.Join(dir, "members.csv")
	os.WriteFile(roster, []byte("name,nik,province_code\nSiti,3171055508900004,31\nBad,123,31\n"), 0o600)
	for _, existing := range []bool{false, true} {
		rej := roster + ".rejections.csv"
		os.Remove(rej)
		if existing {
			os.WriteFile(rej, []byte("old\n"), 0o644)
			os.Chmod(rej, 0o644)
		}
		_, stderr, runErr := e2eRun(t, "", "--addr", env.Server.GRPCAddr(), "--key-file", testKeyFile(t, fed), "import", roster) // fails: a row is rejected
		st, err := os.Stat(rej)
		if err != nil {
			t.Fatalf("no rejections file: %v (import: %v, %s)", err, runErr, stderr)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("rejections file (existing before: %v): mode %04o; want 0600", existing, st.Mode().Perm())
		}
	}
}

// TestRekey: knkctl rekey moves the stored signing key under a new
// key-encryption key; knkd then starts only with the new one, signing with the
// same key.
func TestRekey(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	keys, err := env.Certs.ListSigningKeys(context.Background(), &knkv1.ListSigningKeysRequest{})
	if err != nil || len(keys.Keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	env.Stop(t)
	newKEK := filepath.Join(t.TempDir(), "new.kek")
	out, stderr, err := e2eRun(t, "", "rekey", "--db", env.DBPath, "--kek", env.KEKFile, "--new-kek", newKEK)
	if err != nil || !strings.HasPrefix(out, "re-encrypted: 1 signing keys") {
		t.Fatalf("rekey: %v %q %s", err, out, stderr)
	}
	if st, err := os.Stat(newKEK); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("new key-encryption key file: %v %v", st, err)
	}
	if err := testenv.StartErr(t, env.DBPath, func(cfg *testenv.Config) { cfg.KeyEncryptionKeyFile = env.KEKFile }); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
		t.Errorf("start with the old key-encryption key: %v", err)
	}
	again := testenv.StartWith(t, env.DBPath, func(cfg *testenv.Config) { cfg.KeyEncryptionKeyFile = newKEK })
	fed := again.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	dki := again.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	out, _ = certCtl(t, again, dki, "certificates", "issue", certTrainedCadre(t, again, fed, dki).Name)
	if id := certJSON(t, out)["key_id"]; id != keys.Keys[0].KeyId {
		t.Errorf("signed by %v after rekey, want the same key %s", id, keys.Keys[0].KeyId)
	}
}
