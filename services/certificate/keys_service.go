package certificate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/certcode"
	"github.com/knk-id/knk/internal/db"
)

const keyColumns = `id, public_key, create_time, revoke_time, revoked_from, active, private_key IS NOT NULL`

func (s *Service) scanKey(row db.Scanner) (*knkv1.SigningKey, error) {
	k := &knkv1.SigningKey{Algorithm: "Ed25519"}
	var (
		ct             int64
		revoke, from   sql.NullInt64
		active, stored bool
	)
	if err := row.Scan(&k.KeyId, &k.PublicKey, &ct, &revoke, &from, &active, &stored); err != nil {
		return nil, err
	}
	k.CreateTime = timestamppb.New(time.UnixMicro(ct))
	if revoke.Valid {
		k.RevokeTime = timestamppb.New(time.UnixMicro(revoke.Int64))
	}
	if from.Valid {
		k.RevokedFrom = timestamppb.New(time.UnixMicro(from.Int64))
	}
	if fixed := s.Signer.Fixed(); fixed != "" {
		k.Active = k.KeyId == fixed
	} else {
		k.Active = active && stored
	}
	return k, nil
}

// ListSigningKeys publishes every public key that has signed certificates, with
// its revocation.
func (s *Service) ListSigningKeys(ctx context.Context, _ *knkv1.ListSigningKeysRequest) (*knkv1.ListSigningKeysResponse, error) {
	keys, err := db.All(ctx, s.DB, s.scanKey, `SELECT `+keyColumns+` FROM signing_keys ORDER BY create_time, id`)
	if err != nil {
		return nil, err
	}
	return &knkv1.ListSigningKeysResponse{Keys: keys}, nil
}

func (s *Service) getKey(ctx context.Context, q db.Querier, id string) (*knkv1.SigningKey, error) {
	k, err := s.scanKey(q.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM signing_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("keys/" + id)
	}
	return k, err
}

// errFileKey refuses to change the key knkd was started with.
func errFileKey(what string) error {
	return api.Error(codes.FailedPrecondition, "SIGNING_KEY_FROM_FILE",
		"knkd signs with the key file given by --signing-key; to "+what+", start every knkd with a new key file (or none, to use a stored key)")
}

// RotateSigningKey makes a new stored key the one that signs.
func (s *Service) RotateSigningKey(ctx context.Context, _ *knkv1.RotateSigningKeyRequest) (*knkv1.SigningKey, error) {
	if s.Signer.Fixed() != "" {
		return nil, errFileKey("rotate")
	}
	now := s.now()
	var out *knkv1.SigningKey
	err := s.DB.Write(ctx, func(tx *db.Tx) error {
		k, err := s.Signer.rotate(ctx, tx, now)
		if err != nil {
			return err
		}
		if err := tx.Event(ctx, "signing_key.rotated", "keys/"+k.ID, auth.Actor(ctx), now); err != nil {
			return err
		}
		out, err = s.getKey(ctx, tx, k.ID)
		return err
	})
	if errors.Is(err, db.ErrConflict) {
		return nil, api.Error(codes.Aborted, "CONCURRENT_ROTATION", "another server rotated the signing key at the same moment; list the keys and try again if needed")
	}
	return out, err
}

// RevokeSigningKey revokes a key for certificates it signed from a time on.
func (s *Service) RevokeSigningKey(ctx context.Context, req *knkv1.RevokeSigningKeyRequest) (*knkv1.SigningKey, error) {
	now := s.now()
	var v api.Violations
	if req.GetKeyId() == "" {
		v.Add("key_id", "is required")
	}
	from := req.GetRevokedFrom()
	switch {
	case from == nil:
		v.Add("revoked_from", "is required: certificates the key signed at or after it become not valid")
	case from.CheckValid() != nil:
		v.Add("revoked_from", "is not a valid time")
	case from.AsTime().After(now):
		v.Add("revoked_from", "must not be in the future (to stop a key signing from now on, rotate it)")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if req.GetKeyId() == s.Signer.Fixed() {
		return nil, errFileKey("revoke key " + req.GetKeyId())
	}
	var out *knkv1.SigningKey
	err := s.DB.Write(ctx, func(tx *db.Tx) error {
		k, err := s.getKey(ctx, tx, req.GetKeyId())
		if err != nil {
			return err
		}
		if k.Active { // nothing may sign with it again
			nk, err := s.Signer.rotate(ctx, tx, now)
			if err != nil {
				return err
			}
			if err := tx.Event(ctx, "signing_key.rotated", "keys/"+nk.ID, auth.Actor(ctx), now); err != nil {
				return err
			}
		}
		// Certificates are issued on whole seconds: a revocation from within a second
		// starts at the next one, so that revoked_from is a whole second too.
		at := from.AsTime().Add(time.Second - time.Nanosecond).Truncate(time.Second).UnixMicro()
		if k.RevokedFrom == nil || at < k.RevokedFrom.AsTime().UnixMicro() {
			if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET revoke_time = ?, revoked_from = ? WHERE id = ?`,
				now.UnixMicro(), at, k.KeyId); err != nil {
				return err
			}
			if err := tx.Event(ctx, "signing_key.revoked", "keys/"+k.KeyId, auth.Actor(ctx), now); err != nil {
				return err
			}
		}
		out, err = s.getKey(ctx, tx, k.KeyId)
		return err
	})
	if errors.Is(err, db.ErrConflict) {
		return nil, api.Error(codes.Aborted, "CONCURRENT_ROTATION", "another server rotated the signing key at the same moment; try again")
	}
	return out, err
}

// ResignCertificates re-signs, with the current key, certificates a revoked key
// signed at or after its revoked_from.
func (s *Service) ResignCertificates(ctx context.Context, req *knkv1.ResignCertificatesRequest) (*knkv1.ResignCertificatesResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > 1000:
		return nil, api.Invalid("page_size", "must be between 0 and 1000 (0 means 500)")
	case size == 0:
		size = 500
	}
	if req.GetKeyId() == "" {
		return nil, api.Invalid("key_id", "is required")
	}
	now := s.now()
	resp := &knkv1.ResignCertificatesResponse{}
	err := s.DB.Write(ctx, func(tx *db.Tx) error {
		k, err := s.getKey(ctx, tx, req.GetKeyId())
		if err != nil {
			return err
		}
		if k.RevokedFrom == nil {
			return api.Error(codes.FailedPrecondition, "SIGNING_KEY_NOT_REVOKED",
				"key "+k.KeyId+" is not revoked: the certificates it signed verify as they are")
		}
		key, err := s.Signer.Current(ctx, tx)
		if err != nil {
			return err
		}
		why, err := s.keyRevoked(ctx, key.ID, now)
		if err != nil {
			return err
		}
		if key.ID == k.KeyId || why != "" {
			return api.Error(codes.FailedPrecondition, "SIGNING_KEY_REVOKED",
				"the key that signs now ("+key.ID+") is revoked too; rotate the signing key first")
		}
		resp.NewKeyId = key.ID
		from := k.RevokedFrom.AsTime().UnixMicro()
		due, err := db.All(ctx, tx, func(r db.Scanner) (string, error) {
			var n string
			return n, r.Scan(&n)
		}, `SELECT number FROM certificates WHERE key_id = ? AND issue_time >= ? ORDER BY issue_time LIMIT ?`, k.KeyId, from, size)
		if err != nil {
			return err
		}
		for _, n := range due {
			c, err := get(ctx, tx, "certificates/"+n)
			if err != nil {
				return err
			}
			if c.VerificationCode == "" { // still on canonical form V1: re-sign it as V2, as ResignV1 does
				c.VerificationCode = certcode.New()
			}
			res, err := tx.ExecContext(ctx, `UPDATE certificates SET signature = ?, key_id = ?, verification_code = ?, canonical_version = ?
				WHERE number = ? AND key_id = ?`, key.Sign(contentOf(c).Canonical(V2)), key.ID, c.VerificationCode, V2, n, k.KeyId)
			if err != nil {
				return err
			}
			if done, err := res.RowsAffected(); err != nil || done == 0 {
				continue // another server re-signed it first
			}
			resp.Resigned++
			if err := tx.Event(ctx, "certificate.resigned", c.Name, auth.Actor(ctx), now); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM certificates WHERE key_id = ? AND issue_time >= ?`,
			k.KeyId, from).Scan(&resp.Remaining)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// checkKey makes a verification answer not valid when the key that signed c was
// revoked for certificates issued when c was.
func (s *Service) checkKey(ctx context.Context, v *knkv1.VerifyCertificateResponse, c *knkv1.Certificate) error {
	if !v.Valid {
		return nil
	}
	why, err := s.keyRevoked(ctx, c.KeyId, c.IssueTime.AsTime())
	v.Valid, v.InvalidReason = why == "", why
	return err
}

// keyRevoked is the one check verification adds for signing keys: whether key
// keyID was valid for a certificate issued at issued. It returns why not, or "".
func (s *Service) keyRevoked(ctx context.Context, keyID string, issued time.Time) (string, error) {
	var from sql.NullInt64
	err := s.DB.QueryRowContext(ctx, `SELECT revoked_from FROM signing_keys WHERE id = ?`, keyID).Scan(&from)
	if errors.Is(err, sql.ErrNoRows) || err == nil && (!from.Valid || issued.UnixMicro() < from.Int64) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("signed with key %s, which is revoked for certificates signed from %s on; "+
		"it is not valid until Kemnaker signs it again with the current key", keyID,
		time.UnixMicro(from.Int64).UTC().Format(time.RFC3339)), nil
}
