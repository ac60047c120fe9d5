package cadre

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
)

// HashNIK is the keyed hash (HMAC-SHA256) that replaces the NIK of an erased
// cadre. Without the key it cannot be reversed by trying every NIK (the NIK
// space is small); with it, a re-registration of the same person is recognised.
func HashNIK(key []byte, nik string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(nik))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Service) nikHash(nik string) string {
	if len(s.NIKKey) == 0 {
		return ""
	}
	return HashNIK(s.NIKKey, nik)
}

// Erasable lists up to limit withdrawn cadres, withdrawn before cutoff, whose
// personal fields have not been erased yet, longest withdrawn first.
func (s *Service) Erasable(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	return erasable(ctx, s.DB, cutoff, limit)
}

// Erase anonymises a withdrawn cadre in tx: every personal field is emptied and
// the NIK replaced by its keyed hash; the province, federation, passed topics,
// state and dates stay for the programme's statistics. It records the event
// cadre.erased and reports false if the cadre was not erasable (any more).
func (s *Service) Erase(ctx context.Context, tx *db.Tx, name string, now time.Time) (bool, error) {
	c, err := getForUpdate(ctx, tx, id(name))
	if err != nil {
		return false, tx.Translate(err)
	}
	if c.State != knkv1.Cadre_STATE_WITHDRAWN || len(s.NIKKey) == 0 {
		return false, nil
	}
	ok, err := erase(ctx, tx, id(name), s.nikHash(c.Nik), now)
	if err != nil || !ok {
		return false, err
	}
	return true, tx.Event(ctx, "cadre.erased", name, "", now)
}
