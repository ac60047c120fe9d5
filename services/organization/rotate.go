package organization

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
)

// maxGrace bounds how long a rotated key keeps working.
const maxGrace = 30 * 24 * time.Hour

// RotateApiKey issues a new key for the organization of an old one, which keeps
// working for the grace period and then expires.
func (s *Service) RotateApiKey(ctx context.Context, req *knkv1.RotateApiKeyRequest) (*knkv1.ApiKey, error) {
	org, keyID, err := parseKeyName(req.GetName())
	if err != nil {
		return nil, err
	}
	now := s.Now()
	var v api.Violations
	grace := req.GetGracePeriod()
	if grace != nil && (grace.CheckValid() != nil || grace.AsDuration() < 0 || grace.AsDuration() > maxGrace) {
		v.Add("grace_period", "must be between 0s and 720h (30 days)")
	}
	expire, err := expireTime("expire_time", req.GetExpireTime(), now)
	if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	oldEnd := now.Add(grace.AsDuration()).Truncate(time.Microsecond)
	var key *knkv1.ApiKey
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		var old sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT expire_time FROM api_keys WHERE id = ? AND organization_id = ? AND revoke_time IS NULL`+tx.ForUpdate(),
			keyID, org).Scan(&old)
		if err != nil {
			return tx.Translate(err)
		}
		if old.Valid && old.Int64 <= now.UnixMicro() {
			return api.Error(codes.FailedPrecondition, "KEY_EXPIRED", req.GetName()+" has expired already; create a new key instead")
		}
		if !old.Valid || oldEnd.UnixMicro() < old.Int64 {
			if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET expire_time = ? WHERE id = ?`, oldEnd.UnixMicro(), keyID); err != nil {
				return err
			}
		}
		if err := tx.Event(ctx, "api_key.rotated", req.GetName(), auth.Actor(ctx), now); err != nil {
			return err
		}
		key, err = createKey(ctx, tx, org, auth.Actor(ctx), now, expire)
		return err
	})
	if err != nil {
		return nil, api.StoreError(req.GetName(), err)
	}
	s.keys.Delete(keyID)
	return key, nil
}

// parseKeyName splits organizations/{org}/keys/{key}.
func parseKeyName(name string) (org, key string, err error) {
	org, key, ok := strings.Cut(strings.TrimPrefix(name, "organizations/"), "/keys/")
	if !ok || !strings.HasPrefix(name, "organizations/") || !orgID.MatchString(org) || key == "" || strings.Contains(key, "/") {
		return "", "", api.Invalid("name", "must be organizations/{organization}/keys/{key}")
	}
	return org, key, nil
}

// expireTime checks an optional expiry time of a new key: unset (zero) or in
// the future.
func expireTime(field string, ts *timestamppb.Timestamp, now time.Time) (time.Time, error) {
	switch {
	case ts == nil:
		return time.Time{}, nil
	case ts.CheckValid() != nil:
		return time.Time{}, api.Invalid(field, "is not a valid time")
	case !ts.AsTime().After(now):
		return time.Time{}, api.Invalid(field, "must be in the future")
	}
	return ts.AsTime().Truncate(time.Microsecond), nil
}

// micros is t in µs since the epoch, or NULL for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64)
}

// stamp is t as a Timestamp, or nil for the zero time.
func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
