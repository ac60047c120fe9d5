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

// Canonical is the byte form a certificate's signature covers: UTF-8 lines ending
// in "\n", in this order, built from the fields VerifyCertificate returns:
//
//	KNK-CERTIFICATE-V1
//	number:KNK-31-2026-000001
//	holder_name:Siti Rahayu
//	province_code:31
//	topics:TOPIC_K3,TOPIC_PKWT,TOPIC_WAGE_SCALE,TOPIC_SOCIAL_SECURITY
//	issuer:organizations/disnaker-dki
//	issue_time:2026-11-23T09:00:00Z
//	expire_time:2029-11-23T09:00:00Z
//
// number is the certificate's resource name without "certificates/"; topics are
// enum names in enum order, comma-separated; times are RFC 3339 in UTC with whole
// seconds (certificates are issued on whole seconds). Names cannot hold line breaks.
func Canonical(number, holder, province string, topics []knkv1.Topic, issuer string, issue, expire time.Time) []byte {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.String()
	}
	return fmt.Appendf(nil, "KNK-CERTIFICATE-V1\nnumber:%s\nholder_name:%s\nprovince_code:%s\ntopics:%s\nissuer:%s\nissue_time:%s\nexpire_time:%s\n",
		number, holder, province, strings.Join(names, ","), issuer,
		issue.UTC().Format(time.RFC3339), expire.UTC().Format(time.RFC3339))
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}
