package certificate

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/certview"
	"github.com/knk-id/knk/internal/db"
)

// GetCertificatePdf renders the printable certificate for admin, the issuing
// unit, the cadre's federation and the inspectorate of the certificate's
// province. Anyone else gets the same NOT_FOUND as for a number that does not
// exist, so that a key cannot learn which numbers exist outside its scope.
func (s *Service) GetCertificatePdf(ctx context.Context, req *knkv1.GetCertificatePdfRequest) (*httpbody.HttpBody, error) {
	p, _ := auth.FromContext(ctx)
	c, err := get(ctx, s.DB, req.GetName())
	if err != nil {
		return nil, err
	}
	if ok, err := s.canPrint(ctx, p, c); err != nil || !ok {
		if err == nil {
			err = api.NotFound(req.GetName())
		}
		return nil, err
	}
	c = s.current(c)
	if c.State == knkv1.Certificate_STATE_REVOKED {
		return nil, api.Error(codes.FailedPrecondition, "CERTIFICATE_REVOKED",
			c.Name+" was revoked ("+c.RevokeReason+"): a revoked certificate cannot be printed")
	}
	v, err := s.view(ctx, verification(c, true))
	if err != nil {
		return nil, err
	}
	pdf, err := certview.PDF(v)
	if err != nil {
		return nil, err
	}
	return &httpbody.HttpBody{ContentType: "application/pdf", Data: pdf}, nil
}

// canPrint reports whether p may print c: admin, the unit that issued it, the
// federation of its cadre, and an inspectorate whose province covers it.
func (s *Service) canPrint(ctx context.Context, p auth.Principal, c *knkv1.Certificate) (bool, error) {
	switch p.Kind {
	case auth.Admin:
		return true, nil
	case auth.TrainingUnit:
		return c.Issuer == p.OrgName(), nil
	case auth.Inspector:
		return p.InProvince(c.ProvinceCode), nil
	case auth.Federation:
		cadre, err := s.Cadres.Get(ctx, s.DB, c.Cadre)
		if err != nil {
			return false, err
		}
		return cadre.Federation == p.OrgName(), nil
	}
	return false, nil
}

// Page is what the verification page shows of the certificate with this
// verification code, with its signature checked against the published key. Its
// errors are VerifyByCode's.
func (s *Service) Page(ctx context.Context, code string) (certview.Certificate, error) {
	v, err := s.VerifyByCode(ctx, code)
	if err != nil {
		return certview.Certificate{}, err
	}
	ok, err := s.SignatureValid(ctx, v)
	if err != nil {
		return certview.Certificate{}, err
	}
	c, err := s.view(ctx, v)
	c.SignatureOK = ok
	return c, err
}

// NameCheck is the page's anonymous check by number and claimed holder name: what
// VerifyCertificate answers anyone (the holder only as initials, no signature)
// and whether the name matches. It counts against the certificate's name tries;
// ctx carries no key (the page has none), so the answer is the anonymous one.
func (s *Service) NameCheck(ctx context.Context, number, holderName string) (certview.Certificate, bool, error) {
	v, err := s.VerifyCertificate(ctx, &knkv1.VerifyCertificateRequest{Name: "certificates/" + number, HolderName: holderName})
	if err != nil {
		return certview.Certificate{}, false, err
	}
	c, err := s.view(ctx, v)
	c.Holder = v.GetHolderInitials()
	return c, v.GetNameMatches(), err
}

// view is what the page and the PDF show of a verification answer: the issuer's
// display name and the verification link.
func (s *Service) view(ctx context.Context, v *knkv1.VerifyCertificateResponse) (certview.Certificate, error) {
	issuer, err := s.issuerName(ctx, v.Issuer)
	if err != nil {
		return certview.Certificate{}, err
	}
	c := certview.Certificate{
		Number: number(v.Name), Holder: v.HolderName, ProvinceCode: v.ProvinceCode, Topics: v.Topics,
		Issuer: issuer, IssueTime: v.IssueTime.AsTime(), ExpireTime: v.ExpireTime.AsTime(), State: v.State,
		RevokeReason: v.RevokeReason, KeyID: v.KeyId, Code: v.VerificationCode,
	}
	if v.RevokeTime != nil {
		c.RevokeTime = v.RevokeTime.AsTime()
	}
	if c.Code != "" {
		c.VerifyURL = s.PublicURL + "/verify/" + c.Code
	}
	return c, nil
}

// issuerName is the display name of the organization name (organizations/{id}),
// or name itself if there is no such organization.
func (s *Service) issuerName(ctx context.Context, name string) (string, error) {
	if n, ok := s.issuers.Load(name); ok {
		return n.(string), nil
	}
	org, err := s.Orgs.Get(ctx, strings.TrimPrefix(name, "organizations/"))
	switch {
	case errors.Is(err, db.ErrNotFound):
		return name, nil
	case err != nil:
		return "", err
	}
	s.issuers.Store(name, org.DisplayName)
	return org.DisplayName, nil
}
