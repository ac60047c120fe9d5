package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// verifyPage measures the public HTML verification page, GET /verify/{code},
// without a key, for certificates issued by issueCertificate: the lookup by
// code, the signature check against the published key and the rendering, as a
// phone that scanned the QR code asks for it. knkbench runs knkd with the
// anonymous limit off.
func (b *bench) verifyPage(ctx context.Context) {
	const name = "verify_page_rps"
	codes, err := b.verificationCodes(ctx, 1000)
	if err == nil && len(codes) == 0 {
		err = fmt.Errorf("%w: no certificates were issued", errNothingToDo)
	}
	if !b.record(name, err) {
		b.same("verify_page_p99_ms", name)
		return
	}
	res, ok := b.rate(ctx, name, func(ctx context.Context) error {
		return getOK(ctx, b.http, b.baseURL+"/verify/"+codes[rand.IntN(len(codes))])
	})
	if !ok {
		b.same("verify_page_p99_ms", name)
		return
	}
	b.add(figure{Name: "verify_page_p99_ms", Value: ms(res.P99), Unit: "ms", P50Ms: ms(res.P50), P99Ms: ms(res.P99)})
}

// verificationCodes reads the verification codes of up to n issued certificates
// (the admin sees them; the anonymous answers by number do not carry them).
func (b *bench) verificationCodes(ctx context.Context, n int) ([]string, error) {
	var codes []string
	for _, name := range b.issued[:min(n, len(b.issued))] {
		c, err := b.certs.GetCertificate(b.adminCtx(ctx), &knkv1.GetCertificateRequest{Name: name})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", strings.TrimPrefix(name, "certificates/"), err)
		}
		codes = append(codes, c.GetVerificationCode())
	}
	return codes, nil
}
