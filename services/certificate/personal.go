package certificate

import (
	"context"
	"strings"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
)

// ForCadre returns every certificate issued to the cadre (cadres/{id}), oldest
// first, as stored (for a data-subject export).
func (s *Service) ForCadre(ctx context.Context, cadre string) ([]*knkv1.Certificate, error) {
	return db.All(ctx, s.DB, scan, `SELECT `+columns+` FROM certificates WHERE cadre_id = ? ORDER BY number`,
		strings.TrimPrefix(cadre, "cadres/"))
}

// ErasedHolderReason is the revocation reason of a certificate still valid when
// its holder's personal data is erased.
const ErasedHolderReason = "personal data of the holder erased after withdrawal (UU 27/2022)"

// EraseHolder removes the holder's name from the cadre's certificates in tx, when
// the cadre's personal data is erased. A certificate that is still valid is
// revoked first (its signature covers the name, so it could no longer be
// verified); number, province, topics, issuer, dates and state stay, so that
// anyone holding a copy can still learn that the number was issued and ended.
func (s *Service) EraseHolder(ctx context.Context, tx *db.Tx, cadre string, now time.Time) error {
	cid := strings.TrimPrefix(cadre, "cadres/")
	valid, err := db.All(ctx, tx, func(row db.Scanner) (string, error) {
		var n string
		err := row.Scan(&n)
		return "certificates/" + n, err
	}, `SELECT number FROM certificates WHERE cadre_id = ? AND state = ?`, cid, int32(knkv1.Certificate_STATE_VALID))
	if err != nil {
		return err
	}
	for _, name := range valid {
		if _, err := s.end(ctx, tx, name, knkv1.Certificate_STATE_REVOKED, ErasedHolderReason, "", now); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE certificates SET holder_name = '' WHERE cadre_id = ?`, cid)
	return err
}
