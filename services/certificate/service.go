// Package certificate implements CertificateService: signed KNK certificates,
// their public verification, revocation and expiry, and the forum membership
// that follows them.
package certificate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/certcode"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/disclosure"
	"github.com/knk-id/knk/internal/idn"
	"github.com/knk-id/knk/internal/topic"
	"github.com/knk-id/knk/services/cadre"
	"github.com/knk-id/knk/services/forum"
	"github.com/knk-id/knk/services/organization"
)

// Service implements knkv1.CertificateServiceServer.
type Service struct {
	knkv1.UnimplementedCertificateServiceServer
	DB     *db.DB
	Cadres *cadre.Service
	Signer *Signer
	Now    func() time.Time
	// ValidYears is how long a certificate is valid (a programme rule; default 3).
	ValidYears int
	// Orgs names the issuer on the page and the PDF.
	Orgs *organization.Service
	// PublicURL is the base of the verification links and QR codes (no trailing slash).
	PublicURL string
	// IssueRefusal, when set, is why IssueCertificate refuses (FAILED_PRECONDITION).
	IssueRefusal string
	// issuers caches organization display names for the page and the PDF: an
	// organization is never renamed.
	issuers sync.Map
}

var _ knkv1.CertificateServiceServer = (*Service)(nil)

// numberZone is the time zone whose calendar year goes into certificate numbers
// (WIB, UTC+7, the time of the capital).
var numberZone = time.FixedZone("WIB", 7*60*60)

const columns = `number, cadre_id, holder_name, province_code, topics, issuer, issue_time, expire_time,
	state, revoke_reason, revoke_time, signature, key_id, verification_code, canonical_version`

func scan(row db.Scanner) (*knkv1.Certificate, error) {
	var (
		c                          knkv1.Certificate
		number, cadreID            string
		topics, issue, exp, revoke int64
		state                      int32
		code                       sql.NullString
	)
	err := row.Scan(&number, &cadreID, &c.HolderName, &c.ProvinceCode, &topics, &c.Issuer, &issue, &exp,
		&state, &c.RevokeReason, &revoke, &c.Signature, &c.KeyId, &code, &c.CanonicalVersion)
	if err != nil {
		return nil, err
	}
	c.VerificationCode = code.String
	c.Name, c.Cadre = "certificates/"+number, "cadres/"+cadreID
	c.Topics = topic.List(topics)
	c.IssueTime, c.ExpireTime = timestamppb.New(time.UnixMicro(issue)), timestamppb.New(time.UnixMicro(exp))
	c.State = knkv1.Certificate_State(state)
	if revoke != 0 {
		c.RevokeTime = timestamppb.New(time.UnixMicro(revoke))
	}
	return &c, nil
}

func number(name string) string { return strings.TrimPrefix(name, "certificates/") }

func get(ctx context.Context, q db.Querier, name string) (*knkv1.Certificate, error) {
	n, ok := strings.CutPrefix(name, "certificates/")
	if !ok || n == "" {
		return nil, api.Invalid("name", "must be certificates/{number}, e.g. certificates/KNK-31-2026-000001")
	}
	c, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM certificates WHERE number = ?`, n))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound(name)
	}
	return c, err
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Second) }

// canIssue allows admin and training units whose province covers the cadre's
// (the central unit covers every province).
func canIssue(p auth.Principal, province string) error {
	if p.Kind == auth.Admin || (p.Kind == auth.TrainingUnit && p.InProvince(province)) {
		return nil
	}
	return api.Denied("your key covers province " + p.Province + " only")
}

// IssueCertificate certifies a cadre who passed all four topics, and in the same
// transaction makes them a member of their province's Forum KNK.
func (s *Service) IssueCertificate(ctx context.Context, req *knkv1.IssueCertificateRequest) (*knkv1.Certificate, error) {
	if s.IssueRefusal != "" {
		return nil, api.Error(codes.FailedPrecondition, "PUBLIC_URL_NOT_SET", s.IssueRefusal)
	}
	p, _ := auth.FromContext(ctx)
	rid := req.GetRequestId()
	if len(rid) > 128 {
		return nil, api.Invalid("request_id", "must be at most 128 characters")
	}
	now := s.now()
	var out *knkv1.Certificate
	err := s.DB.Write(ctx, func(tx *db.Tx) error {
		if rid != "" {
			first, err := tx.ClaimRequestID(ctx, p.Org, "IssueCertificate", rid, "", now)
			if err != nil || first != "" {
				if err == nil {
					out, err = get(ctx, tx, first)
				}
				return err
			}
		}
		// A cadre outside the caller's scope is NOT_FOUND, as if it did not exist.
		c, err := s.Cadres.GetVisibleForUpdate(ctx, tx, p, req.GetCadre())
		if err != nil {
			return err
		}
		if err := canIssue(p, c.ProvinceCode); err != nil {
			return err
		}
		if c.State == knkv1.Cadre_STATE_WITHDRAWN {
			return api.Error(codes.FailedPrecondition, "CADRE_WITHDRAWN", c.Name+" is withdrawn from the programme")
		}
		if missing := topic.List(topic.All &^ topic.Bits(c.PassedTopics)); len(missing) > 0 {
			return missingTopics(c.Name, missing)
		}
		if err := s.expireHeld(ctx, tx, c.Name, now); err != nil {
			return err
		}
		if c, err = s.Cadres.GetForUpdate(ctx, tx, c.Name); err != nil { // expiring an old one changed it
			return err
		}
		if out, err = s.issue(ctx, tx, c, p.OrgName(), now); err != nil {
			return err
		}
		if rid != "" {
			return tx.SetRequestResource(ctx, p.Org, "IssueCertificate", rid, out.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return present(p, out), nil
}

// present is the certificate as p may see it, by the disclosure table; p reads
// only certificates in its scope.
func present(p auth.Principal, c *knkv1.Certificate) *knkv1.Certificate {
	disclosure.Apply(c, disclosure.InScope(p, c.Issuer))
	return c
}

func missingTopics(cadre string, missing []knkv1.Topic) error {
	names := make([]string, len(missing))
	pf := &errdetails.PreconditionFailure{}
	for i, t := range missing {
		names[i] = t.String()
		pf.Violations = append(pf.Violations, &errdetails.PreconditionFailure_Violation{
			Type: "TOPIC_NOT_PASSED", Subject: t.String(), Description: cadre + " has not passed " + t.String(),
		})
	}
	st, _ := status.New(codes.FailedPrecondition, cadre+" has not passed every topic; missing: "+strings.Join(names, ", ")).
		WithDetails(pf, &errdetails.ErrorInfo{Reason: "TOPICS_MISSING", Domain: api.Domain})
	return st.Err()
}

// expireHeld refuses a cadre who holds a valid certificate, after expiring one
// whose time has passed but that the sweep has not reached yet.
func (s *Service) expireHeld(ctx context.Context, tx *db.Tx, cadreName string, now time.Time) error {
	var (
		held string
		exp  int64
	)
	err := tx.QueryRowContext(ctx, `SELECT number, expire_time FROM certificates WHERE cadre_id = ? AND state = ?`,
		strings.TrimPrefix(cadreName, "cadres/"), int32(knkv1.Certificate_STATE_VALID)).Scan(&held, &exp)
	switch err = tx.Translate(err); {
	case errors.Is(err, db.ErrNotFound):
		return nil
	case err != nil:
		return err
	case exp > now.UnixMicro():
		return api.Error(codes.AlreadyExists, "CERTIFICATE_HELD", cadreName+" already holds the valid certificate certificates/"+held)
	}
	_, err = s.end(ctx, tx, "certificates/"+held, knkv1.Certificate_STATE_EXPIRED, "", "", now)
	return err
}

func (s *Service) issue(ctx context.Context, tx *db.Tx, c *knkv1.Cadre, issuer string, now time.Time) (*knkv1.Certificate, error) {
	var seq int64
	year := now.In(numberZone).Year()
	err := tx.QueryRowContext(ctx, `INSERT INTO certificate_counters (province_code, year, last) VALUES (?, ?, 1)
		ON CONFLICT (province_code, year) DO UPDATE SET last = certificate_counters.last + 1 RETURNING last`,
		c.ProvinceCode, year).Scan(&seq)
	if err != nil {
		return nil, err
	}
	years := s.ValidYears
	if years == 0 {
		years = 3
	}
	key, err := s.Signer.Current(ctx, tx)
	if err != nil {
		return nil, err
	}
	n := fmt.Sprintf("KNK-%s-%d-%06d", c.ProvinceCode, year, seq)
	cert := &knkv1.Certificate{
		Name: "certificates/" + n, Cadre: c.Name, HolderName: c.DisplayName, ProvinceCode: c.ProvinceCode,
		Topics: topic.List(topic.All), Issuer: issuer, IssueTime: timestamppb.New(now),
		ExpireTime: timestamppb.New(now.AddDate(years, 0, 0)), State: knkv1.Certificate_STATE_VALID, KeyId: key.ID,
		VerificationCode: certcode.New(), CanonicalVersion: V2,
	}
	cert.Signature = key.Sign(contentOf(cert).Canonical(V2))
	cadreID := strings.TrimPrefix(c.Name, "cadres/")
	_, err = tx.ExecContext(ctx, `INSERT INTO certificates (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, ?, ?, ?, ?)`,
		n, cadreID, cert.HolderName, cert.ProvinceCode, topic.All, issuer, now.UnixMicro(),
		cert.ExpireTime.AsTime().UnixMicro(), int32(cert.State), cert.Signature, cert.KeyId, cert.VerificationCode, V2)
	if err != nil {
		return nil, err
	}
	if err := tx.Event(ctx, "certificate.issued", cert.Name, issuer, now); err != nil {
		return nil, err
	}
	forumName, err := forum.Join(ctx, tx, cadreID, c.ProvinceCode, cert.Name, issuer, now)
	if err != nil {
		return nil, err
	}
	return cert, s.Cadres.SetCertificate(ctx, tx, c, cert.Name, forumName, now)
}

// end moves a valid certificate to REVOKED or EXPIRED, ends the forum membership
// and clears the cadre's certificate. It reports false, changing nothing, when the
// certificate is no longer valid (another replica got there first).
func (s *Service) end(ctx context.Context, tx *db.Tx, name string, to knkv1.Certificate_State, reason, actor string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE certificates SET state = ?, revoke_reason = ?, revoke_time = ?
		WHERE number = ? AND state = ?`, int32(to), reason, revokeTime(to, now), number(name), int32(knkv1.Certificate_STATE_VALID))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	cert, err := get(ctx, tx, name)
	if err != nil {
		return false, err
	}
	typ, why := "certificate.expired", knkv1.ForumMembership_END_REASON_EXPIRED
	if to == knkv1.Certificate_STATE_REVOKED {
		typ, why = "certificate.revoked", knkv1.ForumMembership_END_REASON_REVOKED
	}
	if err := tx.Event(ctx, typ, name, actor, now); err != nil {
		return false, err
	}
	c, err := s.Cadres.GetForUpdate(ctx, tx, cert.Cadre)
	if err != nil {
		return false, err
	}
	if c.Certificate != name {
		return true, nil
	}
	if _, _, err := forum.Leave(ctx, tx, strings.TrimPrefix(c.Name, "cadres/"), why, actor, now); err != nil {
		return false, err
	}
	return true, s.Cadres.SetCertificate(ctx, tx, c, "", "", now)
}

func revokeTime(to knkv1.Certificate_State, now time.Time) int64 {
	if to == knkv1.Certificate_STATE_REVOKED {
		return now.UnixMicro()
	}
	return 0
}

// GetCertificate returns one certificate in the caller's scope.
func (s *Service) GetCertificate(ctx context.Context, req *knkv1.GetCertificateRequest) (*knkv1.Certificate, error) {
	p, _ := auth.FromContext(ctx)
	c, err := getVisible(ctx, s.DB, p, req.GetName())
	if err != nil {
		return nil, err
	}
	return present(p, s.current(c)), nil
}

// current shows a valid certificate past its expiry time as EXPIRED even before
// the sweep has recorded it.
func (s *Service) current(c *knkv1.Certificate) *knkv1.Certificate {
	if c.State == knkv1.Certificate_STATE_VALID && !s.Now().Before(c.ExpireTime.AsTime()) {
		c.State = knkv1.Certificate_STATE_EXPIRED
	}
	return c
}

// ListCertificates lists the certificates in the caller's scope in number order.
func (s *Service) ListCertificates(ctx context.Context, req *knkv1.ListCertificatesRequest) (*knkv1.ListCertificatesResponse, error) {
	p, _ := auth.FromContext(ctx)
	var v api.Violations
	if p := req.GetProvinceCode(); p != "" && !idn.ValidProvince(p) {
		v.Add("province_code", "is not one of the 38 province codes")
	}
	if _, ok := knkv1.Certificate_State_name[int32(req.GetState())]; !ok {
		v.Add("state", "must be STATE_VALID, STATE_REVOKED or STATE_EXPIRED")
	}
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	filter := []any{req.GetProvinceCode(), req.GetIssuer(), req.GetState(), req.GetCadre()}
	after, err := api.DecodePageToken(req.GetPageToken(), filter...)
	if err != nil {
		return nil, err
	}
	cond, scopeArgs := scope(p)
	where, args := []string{"number > ?", cond}, append([]any{after}, scopeArgs...)
	if p := req.GetProvinceCode(); p != "" {
		where, args = append(where, "province_code = ?"), append(args, p)
	}
	if i := req.GetIssuer(); i != "" {
		if !strings.HasPrefix(i, "organizations/") {
			i = "organizations/" + i
		}
		where, args = append(where, "issuer = ?"), append(args, i)
	}
	switch req.GetState() {
	case knkv1.Certificate_STATE_UNSPECIFIED:
	case knkv1.Certificate_STATE_VALID:
		where, args = append(where, "state = ? AND expire_time > ?"), append(args, int32(knkv1.Certificate_STATE_VALID), s.Now().UnixMicro())
	case knkv1.Certificate_STATE_EXPIRED:
		where = append(where, "(state = ? OR (state = ? AND expire_time <= ?))")
		args = append(args, int32(knkv1.Certificate_STATE_EXPIRED), int32(knkv1.Certificate_STATE_VALID), s.Now().UnixMicro())
	default:
		where, args = append(where, "state = ?"), append(args, int32(req.GetState()))
	}
	if c := req.GetCadre(); c != "" {
		where, args = append(where, "cadre_id = ?"), append(args, strings.TrimPrefix(c, "cadres/"))
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+columns+` FROM certificates WHERE `+strings.Join(where, " AND ")+
		` ORDER BY number LIMIT ?`, append(args, size+1)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	resp := &knkv1.ListCertificatesResponse{}
	for rows.Next() {
		c, err := scan(rows)
		if err != nil {
			return nil, err
		}
		if len(resp.Certificates) == size {
			resp.NextPageToken = api.EncodePageToken(number(resp.Certificates[size-1].Name), filter...)
			break
		}
		resp.Certificates = append(resp.Certificates, present(p, s.current(c)))
	}
	return resp, rows.Err()
}

// RevokeCertificate revokes a valid certificate and ends its forum membership.
func (s *Service) RevokeCertificate(ctx context.Context, req *knkv1.RevokeCertificateRequest) (*knkv1.Certificate, error) {
	p, _ := auth.FromContext(ctx)
	reason, err := api.Reason(req.GetReason())
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out *knkv1.Certificate
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		cert, err := getVisible(ctx, tx, p, req.GetName())
		if err != nil {
			return err
		}
		if err := canIssue(p, cert.ProvinceCode); err != nil {
			return err
		}
		if cert.State == knkv1.Certificate_STATE_VALID && !now.Before(cert.ExpireTime.AsTime()) {
			if _, err := s.end(ctx, tx, cert.Name, knkv1.Certificate_STATE_EXPIRED, "", "", now); err != nil {
				return err
			}
			cert.State = knkv1.Certificate_STATE_EXPIRED
		}
		if cert.State != knkv1.Certificate_STATE_VALID {
			return api.Error(codes.FailedPrecondition, "CERTIFICATE_NOT_VALID",
				cert.Name+" is "+strings.ToLower(strings.TrimPrefix(cert.State.String(), "STATE_"))+" already")
		}
		if _, err := s.end(ctx, tx, cert.Name, knkv1.Certificate_STATE_REVOKED, reason, p.OrgName(), now); err != nil {
			return err
		}
		out, err = get(ctx, tx, cert.Name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return present(p, out), nil
}

// ExpireDue marks every valid certificate whose expiry time has passed EXPIRED,
// ends its forum membership and emits the events. Each certificate is expired
// exactly once even when several servers sweep at the same time: the conditional
// UPDATE in end lets only one of them change it.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	total := 0
	for {
		now := s.now()
		rows, err := s.DB.QueryContext(ctx, `SELECT number FROM certificates WHERE state = ? AND expire_time <= ?
			ORDER BY expire_time LIMIT 200`, int32(knkv1.Certificate_STATE_VALID), now.UnixMicro())
		if err != nil {
			return total, err
		}
		var due []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return total, err
			}
			due = append(due, "certificates/"+n)
		}
		rows.Close()
		if len(due) == 0 {
			return total, rows.Err()
		}
		err = s.DB.Write(ctx, func(tx *db.Tx) error {
			for _, name := range due {
				ok, err := s.end(ctx, tx, name, knkv1.Certificate_STATE_EXPIRED, "", "", now)
				if err != nil {
					return err
				}
				if ok {
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

// RunExpiry sweeps every interval until ctx is done.
func (s *Service) RunExpiry(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			log.Error("expiry sweep failed", "cause", err.Error())
		} else if n > 0 {
			log.Info("certificates expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
