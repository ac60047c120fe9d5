package certificate

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/services/cadre"
)

// getByCode returns the certificate with a verification code in canonical form,
// or db.ErrNotFound.
func getByCode(ctx context.Context, q db.Querier, code string) (*knkv1.Certificate, error) {
	c, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM certificates WHERE verification_code = ?`, code))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, db.ErrNotFound
	}
	return c, err
}

// v1Numbers lists up to limit certificates still signed in canonical form V1.
func v1Numbers(ctx context.Context, q db.Querier, limit int) ([]string, error) {
	return db.All(ctx, q, func(row db.Scanner) (string, error) {
		var n string
		return n, row.Scan(&n)
	}, `SELECT number FROM certificates WHERE canonical_version = ? ORDER BY number LIMIT ?`, V1, limit)
}

// setV2 stores a certificate's code and V2 signature if it is still on V1; it
// reports whether it changed it (false: another server got there first).
func setV2(ctx context.Context, tx *db.Tx, number, code string, signature []byte, keyID string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE certificates SET verification_code = ?, canonical_version = ?, signature = ?, key_id = ?
		WHERE number = ? AND canonical_version = ?`, code, V2, signature, keyID, number, V1)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// lockNameTries returns the times of the holder-name tries recorded for a
// certificate, locking its row until tx ends so that concurrent tries (from any
// replica) are counted one after the other.
func lockNameTries(ctx context.Context, tx *db.Tx, number string) ([]time.Time, error) {
	var list string
	err := tx.QueryRowContext(ctx, `INSERT INTO certificate_name_tries (number, tries) VALUES (?, '')
		ON CONFLICT (number) DO UPDATE SET tries = certificate_name_tries.tries RETURNING tries`, number).Scan(&list)
	if err != nil {
		return nil, err
	}
	var tries []time.Time
	for _, f := range strings.Fields(list) {
		us, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, err
		}
		tries = append(tries, time.UnixMicro(us))
	}
	return tries, nil
}

// setNameTries records the times of a certificate's holder-name tries.
func setNameTries(ctx context.Context, tx *db.Tx, number string, tries []time.Time) error {
	list := make([]string, len(tries))
	for i, t := range tries {
		list[i] = strconv.FormatInt(t.UnixMicro(), 10)
	}
	_, err := tx.ExecContext(ctx, `UPDATE certificate_name_tries SET tries = ? WHERE number = ?`, strings.Join(list, " "), number)
	return err
}

// publicKey returns the published key with id, or db.ErrNotFound.
func publicKey(ctx context.Context, q db.Querier, id string) ([]byte, error) {
	var pub []byte
	err := q.QueryRowContext(ctx, `SELECT public_key FROM signing_keys WHERE id = ?`, id).Scan(&pub)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, db.ErrNotFound
	}
	return pub, err
}

// scope is the condition over the certificates table that keeps those p may
// read: certificates of cadres in p's scope and, for a training unit, those it
// issued.
func scope(p auth.Principal) (string, []any) {
	cond, args := cadre.ScopeSQL(p, "cadre_id")
	if p.Kind == auth.TrainingUnit && cond != "1 = 1" {
		return "(" + cond + " OR issuer = ?)", append(args, p.OrgName())
	}
	return cond, args
}

// getVisible reads the certificate name if p may read it. One outside p's scope
// is NOT_FOUND exactly like one that does not exist, from the same query.
func getVisible(ctx context.Context, q db.Querier, p auth.Principal, name string) (*knkv1.Certificate, error) {
	n, ok := strings.CutPrefix(name, "certificates/")
	if !ok || n == "" {
		return nil, api.Invalid("name", "must be certificates/{number}, e.g. certificates/KNK-31-2026-000001")
	}
	cond, args := scope(p)
	c, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM certificates WHERE number = ? AND `+cond,
		append([]any{n}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound(name)
	}
	return c, err
}
