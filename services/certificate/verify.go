package certificate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/certcode"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/metrics"
)

// Holder-name checks on the public lookup by number: at most NameTries per
// certificate in any NameTryWindow, counted in the store, so across replicas.
const (
	NameTries     = 10
	NameTryWindow = time.Hour
	maxNameLen    = 200
)

// VerifyCertificate tells anyone whether a certificate is valid. Without a key
// that may see the holder it discloses no more than the certificate's number
// already implies: state, validity, province, topics, issuer, dates, and the
// holder only as initials. A holder_name is answered with name_matches, at most
// NameTries times per certificate per NameTryWindow.
func (s *Service) VerifyCertificate(ctx context.Context, req *knkv1.VerifyCertificateRequest) (*knkv1.VerifyCertificateResponse, error) {
	claimed := req.GetHolderName()
	if len(claimed) > maxNameLen {
		return nil, api.Invalid("holder_name", fmt.Sprintf("must be at most %d characters", maxNameLen))
	}
	c, err := get(ctx, s.DB, req.GetName())
	if err != nil {
		return nil, err
	}
	c = s.current(c)
	full, err := s.maySeeHolder(ctx, c)
	if err != nil {
		return nil, err
	}
	v := verification(c, full)
	if err := s.checkKey(ctx, v, c); err != nil {
		return nil, err
	}
	if claimed != "" {
		if !full {
			if err := s.countNameTry(ctx, number(c.Name)); err != nil {
				return nil, err
			}
		}
		v.NameMatches = new(SameName(claimed, c.HolderName))
	}
	return v, nil
}

// maySeeHolder reports whether the caller's key may see the holder of c: admin,
// the issuing unit and the cadre's federation.
func (s *Service) maySeeHolder(ctx context.Context, c *knkv1.Certificate) (bool, error) {
	p, ok := auth.FromContext(ctx)
	switch {
	case !ok:
		return false, nil
	case p.Kind == auth.Admin || p.OrgName() == c.Issuer:
		return true, nil
	case p.Kind != auth.Federation:
		return false, nil
	}
	cadre, err := s.Cadres.Get(ctx, s.DB, c.Cadre)
	if err != nil {
		return false, err
	}
	return cadre.Federation == p.OrgName(), nil
}

// countNameTry records one holder-name try on a certificate, or refuses it with
// RESOURCE_EXHAUSTED when NameTries were made in the last NameTryWindow.
func (s *Service) countNameTry(ctx context.Context, number string) error {
	now := s.Now()
	return s.DB.Write(ctx, func(tx *db.Tx) error {
		tries, err := lockNameTries(ctx, tx, number)
		if err != nil {
			return err
		}
		recent := tries[:0]
		for _, t := range tries {
			if now.Sub(t) < NameTryWindow {
				recent = append(recent, t)
			}
		}
		if len(recent) >= NameTries {
			wait := recent[len(recent)-NameTries].Add(NameTryWindow).Sub(now)
			metrics.RateLimited("certificate_name_tries")
			st, _ := status.New(codes.ResourceExhausted, fmt.Sprintf(
				"this certificate's holder name was checked %d times in the last hour, the most allowed: try again in %d minutes",
				NameTries, int((wait+time.Minute-1)/time.Minute))).
				WithDetails(&errdetails.ErrorInfo{Reason: "NAME_TRIES_EXHAUSTED", Domain: api.Domain},
					&errdetails.RetryInfo{RetryDelay: durationpb.New(wait.Round(time.Second) + time.Second)})
			return st.Err()
		}
		return setNameTries(ctx, tx, number, append(recent, now))
	})
}

// VerifyCertificateByCode tells whoever holds a certificate's verification code
// everything the certificate states, with what an offline signature check needs.
func (s *Service) VerifyCertificateByCode(ctx context.Context, req *knkv1.VerifyCertificateByCodeRequest) (*knkv1.VerifyCertificateResponse, error) {
	return s.VerifyByCode(ctx, req.GetCode())
}

// VerifyByCode is VerifyCertificateByCode for Go callers (the verification page):
// code is read as a person may type it (see certcode.ParseCode). A mistyped code
// is INVALID_ARGUMENT with reason INVALID_CHECKSUM, a malformed one
// INVALID_ARGUMENT with reason INVALID_CODE, both before any lookup; a
// well-formed code no certificate has is NOT_FOUND.
func (s *Service) VerifyByCode(ctx context.Context, code string) (*knkv1.VerifyCertificateResponse, error) {
	canonical, err := certcode.ParseCode(code)
	switch {
	case errors.Is(err, certcode.ErrChecksum):
		return nil, api.InvalidReason("INVALID_CHECKSUM", "code", err.Error())
	case err != nil:
		return nil, api.InvalidReason("INVALID_CODE", "code", err.Error())
	}
	c, err := getByCode(ctx, s.DB, canonical)
	if errors.Is(err, db.ErrNotFound) {
		return nil, api.Error(codes.NotFound, "NOT_FOUND", "no certificate has this verification code: check it against the certificate")
	}
	if err != nil {
		return nil, err
	}
	v := verification(s.current(c), true)
	return v, s.checkKey(ctx, v, c)
}

// verification is what a verifier learns of c; full adds the holder's name, the
// code, the signature and the revocation reason.
func verification(c *knkv1.Certificate, full bool) *knkv1.VerifyCertificateResponse {
	v := &knkv1.VerifyCertificateResponse{
		Name: c.Name, Valid: c.State == knkv1.Certificate_STATE_VALID, State: c.State,
		HolderInitials: Initials(c.HolderName), ProvinceCode: c.ProvinceCode, Topics: c.Topics, Issuer: c.Issuer,
		IssueTime: c.IssueTime, ExpireTime: c.ExpireTime, RevokeTime: c.RevokeTime,
	}
	if full {
		v.HolderName, v.VerificationCode, v.CanonicalVersion = c.HolderName, c.VerificationCode, c.CanonicalVersion
		v.Signature, v.KeyId, v.RevokeReason = c.Signature, c.KeyId, c.RevokeReason
	}
	return v
}

// SignatureValid checks the signature of a full verification answer against the
// published key it names: true only if that key is published and the signature
// covers exactly the answer's content in its canonical version.
func (s *Service) SignatureValid(ctx context.Context, v *knkv1.VerifyCertificateResponse) (bool, error) {
	pub, err := publicKey(ctx, s.DB, v.GetKeyId())
	if errors.Is(err, db.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return VerifySignature(v, pub), nil
}

func contentOf(c *knkv1.Certificate) Content {
	return Content{
		Number: number(c.Name), VerificationCode: c.VerificationCode, HolderName: c.HolderName,
		ProvinceCode: c.ProvinceCode, Topics: c.Topics, Issuer: c.Issuer,
		IssueTime: c.IssueTime.AsTime(), ExpireTime: c.ExpireTime.AsTime(),
	}
}

// ResignV1 gives every certificate still signed in canonical form V1 a
// verification code and re-signs it as V2 with the current key. knkd runs it at
// start, before it serves. Each batch is one write transaction and each row
// changes only if it is still on V1, so it is idempotent and servers starting
// together on one database each re-sign a certificate at most once between them.
func (s *Service) ResignV1(ctx context.Context, log *slog.Logger) (int, error) {
	total := 0
	for {
		due, err := v1Numbers(ctx, s.DB, 500)
		if err != nil || len(due) == 0 {
			if total > 0 && log != nil {
				log.Info("certificates re-signed with verification codes (canonical form V2)", "count", total)
			}
			return total, err
		}
		err = s.DB.Write(ctx, func(tx *db.Tx) error {
			key, err := s.Signer.Current(ctx, tx)
			if err != nil {
				return err
			}
			for _, n := range due {
				c, err := get(ctx, tx, "certificates/"+n)
				if err != nil {
					return err
				}
				if c.CanonicalVersion != V1 {
					continue
				}
				c.VerificationCode = certcode.New()
				done, err := setV2(ctx, tx, n, c.VerificationCode, key.Sign(contentOf(c).Canonical(V2)), key.ID)
				if err != nil {
					return err
				}
				if done {
					total++
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
	}
}
