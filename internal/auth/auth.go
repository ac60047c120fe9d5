// Package auth holds the caller's identity, the API key format and the table of
// which roles may call which method.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// Kind is an organization's role.
type Kind = knkv1.Organization_Kind

// Roles.
const (
	Admin        = knkv1.Organization_KIND_ADMIN
	Federation   = knkv1.Organization_KIND_FEDERATION
	TrainingUnit = knkv1.Organization_KIND_TRAINING_UNIT
	Inspector    = knkv1.Organization_KIND_INSPECTORATE
)

// Principal is the organization a request acts for.
type Principal struct {
	Org      string // organization id, e.g. "ksbsi"
	Kind     Kind
	Province string // "" is national scope
	KeyID    string // the id of the API key the request came with (never its secret)
}

// OrgName is the principal's resource name, organizations/{id}.
func (p Principal) OrgName() string { return "organizations/" + p.Org }

// InProvince reports whether a principal with a provincial scope covers province.
func (p Principal) InProvince(province string) bool {
	return p.Province == "" || p.Province == province
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of the request; ok is false for public calls.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

const secretPrefix = "knk_"

// NewSecret returns a fresh secret for the key keyID and the hash to store.
func NewSecret(keyID string) (secret string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	secret = secretPrefix + keyID + "_" + base64.RawURLEncoding.EncodeToString(b)
	return secret, Hash(secret)
}

// Hash is the stored form of a secret. Secrets carry 256 random bits, so a plain
// SHA-256 is enough; no password-stretching is needed.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// KeyID extracts the key id from a secret.
func KeyID(secret string) (string, error) {
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || id == "" {
		return "", errors.New("malformed API key")
	}
	return id, nil
}

var (
	all      = []Kind{Admin, Federation, TrainingUnit, Inspector}
	admin    = []Kind{Admin}
	writers  = []Kind{Admin, Federation}
	trainers = []Kind{Admin, TrainingUnit}
	enrolers = []Kind{Admin, TrainingUnit, Federation}
)

// methodRoles lists, for every method, the roles that may call it. A method that is
// missing is refused to everyone; a method listed with nil roles is public.
var methodRoles = map[string][]Kind{
	"/knk.v1.OrganizationService/CreateOrganization": admin,
	"/knk.v1.OrganizationService/GetOrganization":    admin,
	"/knk.v1.OrganizationService/ListOrganizations":  admin,
	"/knk.v1.OrganizationService/CreateApiKey":       admin,
	"/knk.v1.OrganizationService/ListApiKeys":        admin,
	"/knk.v1.OrganizationService/DeleteApiKey":       admin,
	"/knk.v1.OrganizationService/RotateApiKey":       admin,

	"/knk.v1.CadreService/CreateCadre":   writers,
	"/knk.v1.CadreService/GetCadre":      all,
	"/knk.v1.CadreService/ListCadres":    all,
	"/knk.v1.CadreService/UpdateCadre":   writers,
	"/knk.v1.CadreService/WithdrawCadre": writers,
	"/knk.v1.CadreService/LookupCadre":   all,
	"/knk.v1.CadreService/ImportCadres":  writers,

	"/knk.v1.CadreService/RequestTransfer":      writers,
	"/knk.v1.CadreService/ListTransferRequests": writers,
	"/knk.v1.CadreService/ApproveTransfer":      writers,
	"/knk.v1.CadreService/RejectTransfer":       writers,

	"/knk.v1.TrainingService/CreateSession":    trainers,
	"/knk.v1.TrainingService/GetSession":       all,
	"/knk.v1.TrainingService/ListSessions":     all,
	"/knk.v1.TrainingService/UpdateSession":    trainers,
	"/knk.v1.TrainingService/CancelSession":    trainers,
	"/knk.v1.TrainingService/EnrollCadre":      enrolers,
	"/knk.v1.TrainingService/ListEnrollments":  all,
	"/knk.v1.TrainingService/DeleteEnrollment": enrolers,
	"/knk.v1.TrainingService/RecordResults":    trainers,
	"/knk.v1.TrainingService/CompleteSession":  trainers,

	"/knk.v1.CertificateService/IssueCertificate":        trainers,
	"/knk.v1.CertificateService/GetCertificate":          all,
	"/knk.v1.CertificateService/ListCertificates":        all,
	"/knk.v1.CertificateService/RevokeCertificate":       trainers,
	"/knk.v1.CertificateService/VerifyCertificate":       nil,
	"/knk.v1.CertificateService/VerifyCertificateByCode": nil,
	"/knk.v1.CertificateService/ListSigningKeys":         nil,
	"/knk.v1.CertificateService/RotateSigningKey":        admin,
	"/knk.v1.CertificateService/RevokeSigningKey":        admin,
	"/knk.v1.CertificateService/ResignCertificates":      admin,

	// The service checks the scope: the issuing unit, the cadre's federation, the province's inspectorate.
	"/knk.v1.CertificateService/GetCertificatePdf": all,

	"/knk.v1.ForumService/ListForums":       all,
	"/knk.v1.ForumService/GetForum":         all,
	"/knk.v1.ForumService/ListForumMembers": all,

	"/knk.v1.EventService/ListEvents":  admin,
	"/knk.v1.EventService/WatchEvents": admin,

	"/knk.v1.StatsService/ListProvinceStats": all,

	"/knk.v1.PrivacyService/ListAccessLog": writers,
	"/knk.v1.PrivacyService/ExportCadre":   writers,
}

// Public reports whether method needs no key. Health checks and reflection are
// public too.
func Public(method string) bool {
	roles, ok := methodRoles[method]
	return (ok && roles == nil) ||
		strings.HasPrefix(method, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(method, "/grpc.reflection.")
}

// Allowed reports whether role may call method.
func Allowed(method string, role Kind) bool {
	for _, k := range methodRoles[method] {
		if k == role {
			return true
		}
	}
	return false
}

// Actor is the organization name recorded on events: the caller's, or "" for a
// call without a key.
func Actor(ctx context.Context) string {
	if p, ok := FromContext(ctx); ok {
		return p.OrgName()
	}
	return ""
}
