// Package organization implements OrganizationService: the principals of the
// system and their API keys, and the authentication of keys.
package organization

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/idn"
	"github.com/knk-id/knk/internal/text"
)

// Service implements knkv1.OrganizationServiceServer.
type Service struct {
	knkv1.UnimplementedOrganizationServiceServer
	DB  *db.DB
	Now func() time.Time

	// keys caches authenticated keys (key id → cachedKey) when this process is
	// the store's only server (SQLite): DeleteApiKey evicts before it answers, so
	// a revoked key fails on the very next call. With PostgreSQL another replica
	// may revoke a key, so every call reads the key from the store.
	keys sync.Map
}

type cachedKey struct {
	hash   []byte
	p      auth.Principal
	expire int64 // µs since the epoch; 0: never
}

var _ knkv1.OrganizationServiceServer = (*Service)(nil)

var orgID = regexp.MustCompile(`^[a-z][a-z0-9-]{1,62}$`)

// CreateOrganization registers an organization under a client-chosen id.
func (s *Service) CreateOrganization(ctx context.Context, req *knkv1.CreateOrganizationRequest) (*knkv1.Organization, error) {
	org := req.GetOrganization()
	var v api.Violations
	if !orgID.MatchString(req.GetOrganizationId()) {
		v.Add("organization_id", "must be 2 to 63 lower-case letters, digits or '-', starting with a letter")
	}
	if _, ok := knkv1.Organization_Kind_name[int32(org.GetKind())]; !ok || org.GetKind() == knkv1.Organization_KIND_UNSPECIFIED {
		v.Add("organization.kind", "must be one of KIND_ADMIN, KIND_FEDERATION, KIND_TRAINING_UNIT, KIND_INSPECTORATE")
	}
	displayName := v.Text("organization.display_name", org.GetDisplayName(), text.Name.Must())
	if p := org.GetProvinceCode(); p != "" && !idn.ValidProvince(p) {
		v.Add("organization.province_code", "is not one of the 38 province codes (empty means national)")
	}
	if len(req.GetRequestId()) > 128 {
		v.Add("request_id", "must be at most 128 characters")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	out := &knkv1.Organization{
		Name:         "organizations/" + req.GetOrganizationId(),
		Kind:         org.GetKind(),
		DisplayName:  displayName,
		ProvinceCode: org.GetProvinceCode(),
		CreateTime:   timestamppb.New(s.Now().Truncate(time.Microsecond)),
	}
	p, _ := auth.FromContext(ctx)
	err := s.DB.Write(ctx, func(tx *db.Tx) error {
		if rid := req.GetRequestId(); rid != "" {
			first, err := tx.ClaimRequestID(ctx, p.Org, "CreateOrganization", rid, out.Name, s.Now())
			if err != nil || first != "" {
				if err == nil {
					out, err = scanOrg(tx.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = ?`,
						strings.TrimPrefix(first, "organizations/")))
				}
				return tx.Translate(err)
			}
		}
		return insertOrg(ctx, tx, out, p.OrgName())
	})
	if err != nil {
		return nil, api.StoreError(out.Name, err)
	}
	return out, nil
}

func insertOrg(ctx context.Context, tx *db.Tx, org *knkv1.Organization, actor string) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO organizations (id, kind, display_name, province_code, create_time) VALUES (?, ?, ?, ?, ?)`,
		strings.TrimPrefix(org.Name, "organizations/"), int32(org.Kind), org.DisplayName, org.ProvinceCode,
		org.CreateTime.AsTime().UnixMicro())
	if err != nil {
		return err
	}
	return tx.Event(ctx, "organization.created", org.Name, actor, org.CreateTime.AsTime())
}

// GetOrganization returns one organization.
func (s *Service) GetOrganization(ctx context.Context, req *knkv1.GetOrganizationRequest) (*knkv1.Organization, error) {
	id, err := parseName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	org, err := s.Get(ctx, id)
	return org, api.StoreError(req.GetName(), err)
}

// Get returns the organization with the given id, or db.ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (*knkv1.Organization, error) {
	row := s.DB.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = ?`, id)
	org, err := scanOrg(row)
	return org, s.DB.Translate(err)
}

const orgColumns = `id, kind, display_name, province_code, create_time`

func scanOrg(row db.Scanner) (*knkv1.Organization, error) {
	var (
		id   string
		kind int32
		ct   int64
		org  knkv1.Organization
	)
	if err := row.Scan(&id, &kind, &org.DisplayName, &org.ProvinceCode, &ct); err != nil {
		return nil, err
	}
	org.Name = "organizations/" + id
	org.Kind = knkv1.Organization_Kind(kind)
	org.CreateTime = timestamppb.New(time.UnixMicro(ct))
	return &org, nil
}

// ListOrganizations lists organizations in id order.
func (s *Service) ListOrganizations(ctx context.Context, req *knkv1.ListOrganizationsRequest) (*knkv1.ListOrganizationsResponse, error) {
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := api.DecodePageToken(req.GetPageToken(), "organizations")
	if err != nil {
		return nil, err
	}
	rows, err := s.DB.QueryContext(ctx,
		`SELECT `+orgColumns+` FROM organizations WHERE id > ? ORDER BY id LIMIT ?`, after, size+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	resp := &knkv1.ListOrganizationsResponse{}
	for rows.Next() {
		org, err := scanOrg(rows)
		if err != nil {
			return nil, err
		}
		resp.Organizations = append(resp.Organizations, org)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(resp.Organizations) > size {
		resp.Organizations = resp.Organizations[:size]
		last := resp.Organizations[size-1].Name
		resp.NextPageToken = api.EncodePageToken(strings.TrimPrefix(last, "organizations/"), "organizations")
	}
	return resp, nil
}

// CreateApiKey creates a key; its secret is in the response and nowhere else.
func (s *Service) CreateApiKey(ctx context.Context, req *knkv1.CreateApiKeyRequest) (*knkv1.ApiKey, error) {
	id, err := parseName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	now := s.Now()
	expire, err := expireTime("api_key.expire_time", req.GetApiKey().GetExpireTime(), now)
	if err != nil {
		return nil, err
	}
	var key *knkv1.ApiKey
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		var err error
		key, err = createKey(ctx, tx, id, auth.Actor(ctx), now, expire)
		return err
	})
	return key, api.StoreError(req.GetParent(), err)
}

// createKey makes a key of org; expire is when it stops working (zero: never).
func createKey(ctx context.Context, tx *db.Tx, org, actor string, now, expire time.Time) (*knkv1.ApiKey, error) {
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM organizations WHERE id = ?`, org).Scan(&exists); err != nil {
		return nil, tx.Translate(err)
	}
	keyID := strings.ToLower(ulid.Make().String())
	secret, hash := auth.NewSecret(keyID)
	now = now.Truncate(time.Microsecond)
	_, err := tx.ExecContext(ctx,
		`INSERT INTO api_keys (id, organization_id, secret_hash, create_time, expire_time) VALUES (?, ?, ?, ?, ?)`,
		keyID, org, hash, now.UnixMicro(), micros(expire))
	if err != nil {
		return nil, err
	}
	name := "organizations/" + org + "/keys/" + keyID
	if err := tx.Event(ctx, "api_key.created", name, actor, now); err != nil {
		return nil, err
	}
	return &knkv1.ApiKey{Name: name, Secret: secret, CreateTime: timestamppb.New(now), ExpireTime: stamp(expire)}, nil
}

// ListApiKeys lists the organization's keys that are not revoked.
func (s *Service) ListApiKeys(ctx context.Context, req *knkv1.ListApiKeysRequest) (*knkv1.ListApiKeysResponse, error) {
	org, err := parseName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := api.DecodePageToken(req.GetPageToken(), "keys", org)
	if err != nil {
		return nil, err
	}
	if _, err := s.Get(ctx, org); err != nil {
		return nil, api.StoreError(req.GetParent(), err)
	}
	rows, err := s.DB.QueryContext(ctx,
		`SELECT id, create_time, expire_time FROM api_keys WHERE organization_id = ? AND revoke_time IS NULL AND id > ? ORDER BY id LIMIT ?`,
		org, after, size+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	resp := &knkv1.ListApiKeysResponse{}
	for rows.Next() {
		var (
			id     string
			ct     int64
			expire sql.NullInt64
		)
		if err := rows.Scan(&id, &ct, &expire); err != nil {
			return nil, err
		}
		if len(resp.ApiKeys) == size {
			resp.NextPageToken = api.EncodePageToken(resp.ApiKeys[size-1].Name[len(req.GetParent()+"/keys/"):], "keys", org)
			break
		}
		resp.ApiKeys = append(resp.ApiKeys, &knkv1.ApiKey{
			Name: req.GetParent() + "/keys/" + id, CreateTime: timestamppb.New(time.UnixMicro(ct)),
			ExpireTime: stamp(fromMicros(expire)),
		})
	}
	return resp, rows.Err()
}

// DeleteApiKey revokes a key. The next call made with it is UNAUTHENTICATED.
func (s *Service) DeleteApiKey(ctx context.Context, req *knkv1.DeleteApiKeyRequest) (*emptypb.Empty, error) {
	org, keyID, err := parseKeyName(req.GetName())
	if err != nil {
		return nil, err
	}
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		now := s.Now()
		res, err := tx.ExecContext(ctx,
			`UPDATE api_keys SET revoke_time = ? WHERE id = ? AND organization_id = ? AND revoke_time IS NULL`,
			now.UnixMicro(), keyID, org)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return db.ErrNotFound
		}
		return tx.Event(ctx, "api_key.revoked", req.GetName(), auth.Actor(ctx), now)
	})
	if err != nil {
		return nil, api.StoreError(req.GetName(), err)
	}
	s.keys.Delete(keyID)
	return &emptypb.Empty{}, nil
}

// Authenticate returns the principal of a key secret. An unknown, malformed or
// revoked key is UNAUTHENTICATED.
func (s *Service) Authenticate(ctx context.Context, secret string) (auth.Principal, error) {
	keyID, err := auth.KeyID(secret)
	if err != nil {
		return auth.Principal{}, errInvalidKey()
	}
	if c, ok := s.keys.Load(keyID); ok {
		c := c.(cachedKey)
		if subtle.ConstantTimeCompare(c.hash, auth.Hash(secret)) != 1 {
			return auth.Principal{}, errInvalidKey()
		}
		return c.p, s.checkExpiry(c.expire)
	}
	var (
		p      auth.Principal
		kind   int32
		hash   []byte
		expire sql.NullInt64
	)
	err = s.DB.QueryRowContext(ctx, `
		SELECT k.secret_hash, o.id, o.kind, o.province_code, k.expire_time
		FROM api_keys k JOIN organizations o ON o.id = k.organization_id
		WHERE k.id = ? AND k.revoke_time IS NULL`, keyID).Scan(&hash, &p.Org, &kind, &p.Province, &expire)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Principal{}, errInvalidKey()
	}
	if err != nil {
		return auth.Principal{}, err
	}
	if subtle.ConstantTimeCompare(hash, auth.Hash(secret)) != 1 {
		return auth.Principal{}, errInvalidKey()
	}
	p.Kind = knkv1.Organization_Kind(kind)
	p.KeyID = keyID
	if s.DB.Engine() == "sqlite" {
		s.keys.Store(keyID, cachedKey{hash: hash, p: p, expire: expire.Int64})
	}
	return p, s.checkExpiry(expire.Int64)
}

// checkExpiry refuses a key whose expiry time (µs, 0: never) has passed.
func (s *Service) checkExpiry(expire int64) error {
	if expire == 0 || s.Now().UnixMicro() < expire {
		return nil
	}
	return api.Error(codes.Unauthenticated, "KEY_EXPIRED", "the API key expired at "+
		time.UnixMicro(expire).UTC().Format(time.RFC3339)+"; ask the administrator for a new key")
}

func errInvalidKey() error {
	return api.Error(codes.Unauthenticated, "INVALID_KEY", "the API key is unknown or revoked")
}

// Bootstrap creates the organization "admin" (KIND_ADMIN) if it does not exist and
// a new key for it, and returns the key's secret.
func Bootstrap(ctx context.Context, store *db.DB, now time.Time) (string, error) {
	var secret string
	err := store.Write(ctx, func(tx *db.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM organizations WHERE id = 'admin'`).Scan(&exists)
		if errors.Is(err, sql.ErrNoRows) {
			err = insertOrg(ctx, tx, &knkv1.Organization{
				Name: "organizations/admin", Kind: knkv1.Organization_KIND_ADMIN,
				DisplayName: "Kemnaker administrator", CreateTime: timestamppb.New(now.Truncate(time.Microsecond)),
			}, "")
		}
		if err != nil {
			return err
		}
		key, err := createKey(ctx, tx, "admin", "", now, time.Time{})
		if err != nil {
			return err
		}
		secret = key.Secret
		return nil
	})
	return secret, err
}

func parseName(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "organizations/")
	if !ok || !orgID.MatchString(id) {
		return "", api.Invalid(field, "must be organizations/{organization_id}")
	}
	return id, nil
}

// Inspectorates returns the inspectorate guiding each province's forum: the first
// provincial inspectorate of the province by id, else the first national one.
// Provinces with neither are missing from the map.
func (s *Service) Inspectorates(ctx context.Context) (map[string]string, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, province_code FROM organizations WHERE kind = ? ORDER BY id`,
		int32(knkv1.Organization_KIND_INSPECTORATE))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out, national := map[string]string{}, ""
	for rows.Next() {
		var id, province string
		if err := rows.Scan(&id, &province); err != nil {
			return nil, err
		}
		switch {
		case province == "" && national == "":
			national = "organizations/" + id
		case province != "" && out[province] == "":
			out[province] = "organizations/" + id
		}
	}
	if national != "" {
		for _, p := range idn.Provinces() {
			if out[p.Code] == "" {
				out[p.Code] = national
			}
		}
	}
	return out, rows.Err()
}
