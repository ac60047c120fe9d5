package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"google.golang.org/grpc"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/services/certificate"
)

type certificatesCmd struct {
	Issue         certificatesIssueCmd         `cmd:"" help:"Issue a certificate to a cadre who passed all four topics (training unit or admin)."`
	Get           certificatesGetCmd           `cmd:"" help:"Show a certificate."`
	List          certificatesListCmd          `cmd:"" help:"List certificates in number order."`
	Revoke        certificatesRevokeCmd        `cmd:"" help:"Revoke a valid certificate; the holder leaves the forum (training unit or admin)."`
	Verify        certificatesVerifyCmd        `cmd:"" help:"Verify a certificate by its verification code (no key needed): ask knkd for its state, and check its Ed25519 signature here against the published keys."`
	Pdf           certificatesPdfCmd           `cmd:"" name:"pdf" help:"Write the printable certificate (PDF), or a ZIP of every valid certificate of a session or province (admin, the issuing unit, the cadre's federation, the province's inspectorate)."`
	Resign        certificatesResignCmd        `cmd:"" help:"Sign again, with the current key, the certificates a revoked signing key signed at or after its revoked_from (admin)."`
	VerifyOffline certificatesVerifyOfflineCmd `cmd:"" name:"verify-offline" help:"Check a certificate's signature with no network, from a saved GET /v1/verifications/CODE response and a saved GET /v1/keys response."`
}

var certificateStates = map[string]knkv1.Certificate_State{
	"valid":   knkv1.Certificate_STATE_VALID,
	"revoked": knkv1.Certificate_STATE_REVOKED,
	"expired": knkv1.Certificate_STATE_EXPIRED,
}

// certificateName accepts a number (KNK-31-2026-000001) or a name (certificates/KNK-…).
func certificateName(number string) string {
	return resourceName("certificates", strings.TrimSpace(number))
}

type certificatesIssueCmd struct {
	Cadre     string `arg:"" help:"Cadre id (01J…) or name (cadres/01J…)."`
	RequestID string `name:"request-id" help:"Idempotency key: repeating an issue with the same id returns the first certificate instead of failing."`
}

func (c *certificatesIssueCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewCertificateServiceClient(cc).IssueCertificate(ctx, &knkv1.IssueCertificateRequest{
			Cadre:     resourceName("cadres", c.Cadre),
			RequestId: c.RequestID,
		})
	})
}

type certificatesGetCmd struct {
	Number string `arg:"" help:"Certificate number (KNK-31-2026-000001) or name (certificates/KNK-…)."`
}

func (c *certificatesGetCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewCertificateServiceClient(cc).GetCertificate(ctx, &knkv1.GetCertificateRequest{Name: certificateName(c.Number)})
	})
}

type certificatesListCmd struct {
	Province string `help:"Only certificates of this province (two-digit code)."`
	Issuer   string `help:"Only certificates issued by this organization (ID or organizations/ID)."`
	State    string `help:"Only certificates in this state: valid, revoked or expired."`
	Cadre    string `help:"Only certificates of this cadre (ID or cadres/ID)."`
	PageSize int32  `help:"Page size (server default 50, at most 1000)."`
	All      bool   `help:"Follow next_page_token and print every matching certificate."`
}

func (c *certificatesListCmd) Run(a *app) error {
	req := &knkv1.ListCertificatesRequest{PageSize: c.PageSize, ProvinceCode: c.Province, Issuer: orgName(c.Issuer)}
	if c.Cadre != "" {
		req.Cadre = resourceName("cadres", c.Cadre)
	}
	if c.State != "" {
		var err error
		if req.State, err = parseEnum("state", c.State, certificateStates, knkv1.Certificate_State_value); err != nil {
			return err
		}
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewCertificateServiceClient(cc)
	return pages(a, c.All, "certificates", func(ctx context.Context, token string) (*knkv1.ListCertificatesResponse, error) {
		req.PageToken = token
		return client.ListCertificates(ctx, req)
	}, (*knkv1.ListCertificatesResponse).GetCertificates)
}

type certificatesRevokeCmd struct {
	Number string `arg:"" help:"Certificate number (KNK-31-2026-000001) or name (certificates/KNK-…)."`
	Reason string `required:"" help:"Why the certificate is revoked."`
}

func (c *certificatesRevokeCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewCertificateServiceClient(cc).RevokeCertificate(ctx, &knkv1.RevokeCertificateRequest{
			Name:   certificateName(c.Number),
			Reason: c.Reason,
		})
	})
}

// publicCall is the context of a call to a public method: the --timeout deadline
// but never the API key, so that verifying by code shows what anyone can check.
func (a *app) publicCall() (context.Context, context.CancelFunc) {
	if a.g.Timeout <= 0 {
		return context.WithCancel(a.ctx)
	}
	return context.WithTimeout(a.ctx, a.g.Timeout)
}

type certificatesVerifyCmd struct {
	Code string `arg:"" name:"code-or-number" help:"Verification code as printed on the certificate (7QF3-M9XA-2KDP-R4TW-J; case, spaces and hyphens do not matter), or a certificate number (KNK-31-2026-000001) with the key of admin, the issuing unit or the cadre's federation."`
}

// isNumber tells a certificate number or name from a verification code.
func isNumber(arg string) bool {
	arg = strings.ToUpper(strings.TrimSpace(arg))
	return strings.HasPrefix(arg, "KNK-") || strings.HasPrefix(arg, "CERTIFICATES/")
}

func (c *certificatesVerifyCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewCertificateServiceClient(cc)
	call := a.publicCall
	if isNumber(c.Code) {
		call = a.call
	}
	ctx, cancel := call()
	defer cancel()
	var v *knkv1.VerifyCertificateResponse
	if isNumber(c.Code) {
		if a.g.Key == "" {
			return errors.New("without a key a certificate number tells only initials and no signature: give the verification code printed on the certificate, or set KNK_KEY")
		}
		v, err = client.VerifyCertificate(ctx, &knkv1.VerifyCertificateRequest{Name: certificateName(strings.TrimSpace(c.Code))})
		if err == nil && len(v.GetSignature()) == 0 {
			return fmt.Errorf("%s: your key may not see this certificate's holder (only admin, the issuing unit and the cadre's federation may): give its verification code", v.GetName())
		}
	} else {
		v, err = client.VerifyCertificateByCode(ctx, &knkv1.VerifyCertificateByCodeRequest{Code: c.Code})
	}
	if err != nil {
		return err
	}
	keys, err := client.ListSigningKeys(ctx, &knkv1.ListSigningKeysRequest{})
	if err != nil {
		return fmt.Errorf("list signing keys: %w", describe(err))
	}
	return a.report(v, keys, "", time.Time{})
}

type certificatesVerifyOfflineCmd struct {
	Certificate string `required:"" type:"existingfile" placeholder:"FILE" help:"Saved verification: curl https://HOST/v1/verifications/CODE > cert.json"`
	Keys        string `required:"" type:"existingfile" placeholder:"FILE" help:"Saved public signing keys: curl https://HOST/v1/keys > keys.json"`
	At          string `placeholder:"TIME" help:"Check the expiry time against this RFC 3339 time instead of this machine's clock."`
}

func (c *certificatesVerifyOfflineCmd) Run(a *app) error {
	at := time.Now()
	if c.At != "" {
		ts, err := parseTime("at", c.At)
		if err != nil {
			return err
		}
		at = ts.AsTime()
	}
	v := &knkv1.VerifyCertificateResponse{}
	if err := readJSON(c.Certificate, v); err != nil {
		return err
	}
	if v.GetName() == "" || v.GetKeyId() == "" || len(v.GetSignature()) == 0 {
		return fmt.Errorf("%s is not a full verification (it needs name, signature and key_id): save GET /v1/verifications/CODE, not the anonymous answer by number", c.Certificate)
	}
	keys := &knkv1.ListSigningKeysResponse{}
	if err := readJSON(c.Keys, keys); err != nil {
		return err
	}
	if len(keys.GetKeys()) == 0 {
		return fmt.Errorf("%s holds no signing keys (it should be the response of GET /v1/keys)", c.Keys)
	}
	return a.report(v, keys, "state as saved in "+c.Certificate+"; a later revocation cannot be seen offline", at)
}

// readJSON reads a protojson file (snake_case or lowerCamelCase field names) into m.
func readJSON(file string, m proto.Message) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, m); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// fullMarshal also prints fields holding their zero value, so that "valid": false
// or a forum's "active_members": "0" shows.
var fullMarshal = protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true, EmitUnpopulated: true}

// printFull is print with fullMarshal.
func (a *app) printFull(m proto.Message) error {
	b, err := fullMarshal.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// report prints the verification on stdout, the signature and state verdicts on
// stderr, and fails if the signature does not hold or the certificate is not
// valid. note, if set, qualifies the state; at, if set, is the time the expiry is
// checked against (online, the server's state already accounts for expiry).
func (a *app) report(v *knkv1.VerifyCertificateResponse, keys *knkv1.ListSigningKeysResponse, note string, at time.Time) error {
	if err := a.printFull(v); err != nil {
		return err
	}

	var problems []string
	keyID, sigErr := verifySignature(v, keys)
	if sigErr != nil {
		fmt.Fprintf(a.stderr, "signature: INVALID (%v)\n", sigErr)
		problems = append(problems, "signature INVALID: "+sigErr.Error())
	} else {
		fmt.Fprintf(a.stderr, "signature: OK (key %s)\n", keyID)
	}

	state := strings.TrimPrefix(v.GetState().String(), "STATE_")
	if note != "" {
		note = " (" + note + ")"
	}
	switch {
	case v.GetInvalidReason() != "":
		fmt.Fprintf(a.stderr, "state: NOT VALID (%s)%s\n", v.GetInvalidReason(), note)
		problems = append(problems, "certificate is not valid: "+v.GetInvalidReason())
	case v.GetState() != knkv1.Certificate_STATE_VALID || !v.GetValid():
		fmt.Fprintf(a.stderr, "state: %s%s\n", state, note)
		problems = append(problems, fmt.Sprintf("certificate is not valid: state %s", state))
	case !at.IsZero() && !at.Before(v.GetExpireTime().AsTime()):
		exp := v.GetExpireTime().AsTime().UTC().Format(time.RFC3339)
		fmt.Fprintf(a.stderr, "state: EXPIRED (expire_time %s has passed)%s\n", exp, note)
		problems = append(problems, fmt.Sprintf("certificate is not valid: EXPIRED at %s", exp))
	default:
		fmt.Fprintf(a.stderr, "state: VALID%s\n", note)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %s", v.GetName(), strings.Join(problems, "; "))
	}
	return nil
}

// verifySignature checks v's Ed25519 signature over certificate.Canonical, built
// from v's fields, with the key of keys named by v.key_id. It returns that key id.
func verifySignature(v *knkv1.VerifyCertificateResponse, keys *knkv1.ListSigningKeysResponse) (string, error) {
	number, ok := strings.CutPrefix(v.GetName(), "certificates/")
	if !ok || number == "" {
		return "", fmt.Errorf("name %q is not certificates/NUMBER", v.GetName())
	}
	if v.GetIssueTime() == nil || v.GetExpireTime() == nil {
		return "", errors.New("issue_time or expire_time missing")
	}
	var key *knkv1.SigningKey
	for _, k := range keys.GetKeys() {
		if k.GetKeyId() == v.GetKeyId() {
			key = k
			break
		}
	}
	if key == nil {
		return "", fmt.Errorf("key %q is not among the published signing keys", v.GetKeyId())
	}
	if alg := key.GetAlgorithm(); alg != "" && !strings.EqualFold(alg, "Ed25519") {
		return "", fmt.Errorf("key %s: algorithm %q, want Ed25519", key.GetKeyId(), alg)
	}
	if from := key.GetRevokedFrom(); from != nil && !v.GetIssueTime().AsTime().Before(from.AsTime()) {
		return "", fmt.Errorf("key %s is revoked for certificates signed from %s on; ask the issuer for the re-signed certificate",
			key.GetKeyId(), from.AsTime().UTC().Format(time.RFC3339))
	}
	pub := ed25519.PublicKey(key.GetPublicKey())
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("key %s: public key of %d bytes, want %d", key.GetKeyId(), len(pub), ed25519.PublicKeySize)
	}
	if id := certificate.KeyID(pub); id != key.GetKeyId() {
		return "", fmt.Errorf("key %s: its public key has id %s", key.GetKeyId(), id)
	}
	if certificate.ContentOf(v).Canonical(certificate.VersionOf(v)) == nil {
		return "", fmt.Errorf("canonical_version %d is not one this knkctl knows (1 or 2)", v.GetCanonicalVersion())
	}
	if !certificate.VerifySignature(v, pub) {
		return "", fmt.Errorf("does not match the content under key %s", key.GetKeyId())
	}
	return key.GetKeyId(), nil
}
