package certificate

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
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
