// Package certview gives a KNK certificate its human forms: the public
// verification page (html/template, embedded CSS, no JavaScript, a strict
// Content-Security-Policy, Bahasa Indonesia or English) and the printable A4 PDF
// with a QR code of its verification link. It renders plain values; finding the
// certificate and checking who may see it is the caller's work.
package certview

import (
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/idn"
)

// Certificate is what the page and the PDF show of a certificate.
type Certificate struct {
	Number       string // KNK-31-2026-000001
	Holder       string
	ProvinceCode string
	Topics       []knkv1.Topic
	Issuer       string // the issuing organization's display name
	IssueTime    time.Time
	ExpireTime   time.Time
	State        knkv1.Certificate_State
	RevokeTime   time.Time
	RevokeReason string
	Code         string // the verification code in its printed form, 7QF3-M9XA-2KDP-R4TW-J
	KeyID        string
	// SignatureOK reports that the signature was checked against the published key KeyID.
	SignatureOK bool
	// VerifyURL is {public-url}/verify/{code}, the link the QR code holds.
	VerifyURL string
}

// ProvinceName is the province's name, or its code if unknown.
func (c Certificate) ProvinceName() string {
	if n, ok := idn.ProvinceName(c.ProvinceCode); ok {
		return n
	}
	return c.ProvinceCode
}
