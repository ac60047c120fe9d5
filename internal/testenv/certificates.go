package testenv

import (
	"crypto/ed25519"
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/secretbox"
	"github.com/knk-id/knk/services/certificate"
)

// DowngradeToV1 rewrites certificates behind knkd's back as they were before
// verification codes: no code, signed in canonical form V1 by the store's key.
// The next start re-signs them as V2.
func (e *Env) DowngradeToV1(t testing.TB, certs ...*knkv1.Certificate) {
	t.Helper()
	conn := e.SQL(t)
	key := e.SigningKey(t)
	update := `UPDATE certificates SET verification_code = NULL, canonical_version = 1, signature = $1 WHERE number = $2`
	if e.Engine() == "sqlite" {
		update = strings.NewReplacer("$1", "?", "$2", "?").Replace(update)
	}
	for _, c := range certs {
		content := certificate.Content{
			Number: strings.TrimPrefix(c.Name, "certificates/"), HolderName: c.HolderName, ProvinceCode: c.ProvinceCode,
			Topics: c.Topics, Issuer: c.Issuer, IssueTime: c.IssueTime.AsTime(), ExpireTime: c.ExpireTime.AsTime(),
		}
		if _, err := conn.Exec(update, ed25519.Sign(key, content.Canonical(certificate.V1)), content.Number); err != nil {
			t.Fatal(err)
		}
	}
}

// SigningKey returns the private key the store signs with now, decrypted with
// the store's key-encryption key as only knkd can.
func (e *Env) SigningKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	var (
		id     string
		sealed []byte
	)
	err := e.SQL(t).QueryRow(`SELECT id, private_key FROM signing_keys WHERE active = 1 AND private_key IS NOT NULL`).Scan(&id, &sealed)
	if err != nil {
		t.Fatal(err)
	}
	kek, err := secretbox.ReadKeyFile(e.KEKFile)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kek.Open(sealed, []byte(id))
	if err != nil {
		t.Fatalf("decrypt signing key %s: %v", id, err)
	}
	return ed25519.NewKeyFromSeed(seed)
}
