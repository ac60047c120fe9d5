package certificate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
)

// Canonical versions: which lines a signature covers.
const (
	// V1 is the form of certificates issued before verification codes.
	V1 = 1
	// V2 adds the verification code; every certificate is signed in it now.
	V2 = 2
)

// Content is what a certificate's signature covers.
type Content struct {
	Number           string // the resource name without "certificates/"
	VerificationCode string // canonical form, e.g. 7QF3-M9XA-2KDP-R4TW-J (V2 only)
	HolderName       string
	ProvinceCode     string
	Topics           []knkv1.Topic
	Issuer           string
	IssueTime        time.Time
	ExpireTime       time.Time
}

// ContentOf is the signed content of a verification answer.
func ContentOf(v *knkv1.VerifyCertificateResponse) Content {
	return Content{
		Number: strings.TrimPrefix(v.GetName(), "certificates/"), VerificationCode: v.GetVerificationCode(),
		HolderName: v.GetHolderName(), ProvinceCode: v.GetProvinceCode(), Topics: v.GetTopics(),
		Issuer: v.GetIssuer(), IssueTime: v.GetIssueTime().AsTime(), ExpireTime: v.GetExpireTime().AsTime(),
	}
}

// Canonical is the byte form a certificate's signature covers: UTF-8 lines ending
// in "\n", in this order, built from the fields VerifyCertificateByCode returns.
// Version 2 (every certificate since verification codes):
//
//	KNK-CERTIFICATE-V2
//	number:KNK-31-2026-000001
//	verification_code:7QF3-M9XA-2KDP-R4TW-J
//	holder_name:Siti Rahayu
//	province_code:31
//	topics:TOPIC_K3,TOPIC_PKWT,TOPIC_WAGE_SCALE,TOPIC_SOCIAL_SECURITY
//	issuer:organizations/disnaker-dki
//	issue_time:2026-11-23T09:00:00Z
//	expire_time:2029-11-23T09:00:00Z
//
// Version 1 (certificates signed before) is the same without the
// verification_code line and with KNK-CERTIFICATE-V1 as the first line.
// number is the certificate's resource name without "certificates/"; topics are
// enum names in enum order, comma-separated; times are RFC 3339 in UTC with whole
// seconds (certificates are issued on whole seconds). Names cannot hold line
// breaks. An unknown version has no canonical form: Canonical returns nil.
func (c Content) Canonical(version int32) []byte {
	names := make([]string, len(c.Topics))
	for i, t := range c.Topics {
		names[i] = t.String()
	}
	var code string
	switch version {
	case V1:
	case V2:
		code = "verification_code:" + c.VerificationCode + "\n"
	default:
		return nil
	}
	return fmt.Appendf(nil, "KNK-CERTIFICATE-V%d\nnumber:%s\n%sholder_name:%s\nprovince_code:%s\ntopics:%s\nissuer:%s\nissue_time:%s\nexpire_time:%s\n",
		version, c.Number, code, c.HolderName, c.ProvinceCode, strings.Join(names, ","), c.Issuer,
		c.IssueTime.UTC().Format(time.RFC3339), c.ExpireTime.UTC().Format(time.RFC3339))
}

// VersionOf is the canonical version a verification answer names; answers saved
// before the field existed have none and are V1.
func VersionOf(v *knkv1.VerifyCertificateResponse) int32 {
	if v.GetCanonicalVersion() == 0 {
		return V1
	}
	return v.GetCanonicalVersion()
}

// VerifySignature checks v's signature, in the canonical form v names, with pub.
func VerifySignature(v *knkv1.VerifyCertificateResponse, pub ed25519.PublicKey) bool {
	msg := ContentOf(v).Canonical(VersionOf(v))
	return msg != nil && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, v.GetSignature())
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Signer signs certificates with the active key.
type Signer struct {
	ID  string
	key ed25519.PrivateKey
}

// Sign signs canonical bytes.
func (s *Signer) Sign(msg []byte) []byte { return ed25519.Sign(s.key, msg) }

// LoadSigner returns the signing key: the PKCS#8 PEM Ed25519 key in file if one is
// given (its public key is published, its private key never stored), else the
// key this store generated on its first start (generated now if there is none).
// Every key ever used stays published so old certificates still verify.
func LoadSigner(ctx context.Context, store *db.DB, file string, now time.Time) (*Signer, error) {
	if file != "" {
		key, err := readKey(file)
		if err != nil {
			return nil, err
		}
		pub := key.Public().(ed25519.PublicKey)
		err = store.Write(ctx, func(tx *db.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, public_key, create_time) VALUES (?, ?, ?)
				ON CONFLICT (id) DO NOTHING`, KeyID(pub), []byte(pub), now.UnixMicro())
			return err
		})
		return &Signer{ID: KeyID(pub), key: key}, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	err = store.Write(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, public_key, private_key, active, create_time)
			VALUES (?, ?, ?, 1, ?) ON CONFLICT DO NOTHING`, KeyID(pub), []byte(pub), priv.Seed(), now.UnixMicro())
		return err
	})
	if err != nil {
		return nil, err
	}
	var seed []byte
	if err := store.QueryRowContext(ctx, `SELECT private_key FROM signing_keys WHERE private_key IS NOT NULL`).Scan(&seed); err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	return &Signer{ID: KeyID(key.Public().(ed25519.PublicKey)), key: key}, nil
}

func readKey(file string) (ed25519.PrivateKey, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("signing key: no PEM block in " + file)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", file, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("signing key: " + file + " is not an Ed25519 key")
	}
	return key, nil
}
