package forum

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
)

// Memberships change only through these functions, called by the certificate
// and cadre services inside their write transactions: nobody joins or leaves a
// forum by hand.

func memberName(province, cadreID string) string {
	return "forums/" + province + "/members/" + cadreID
}

// Join makes the cadre (its id) an active member of the province's forum on the
// strength of certificate, and returns the forum's name.
func Join(ctx context.Context, tx *db.Tx, cadreID, province, certificate, actor string, now time.Time) (string, error) {
	_, err := tx.ExecContext(ctx, `INSERT INTO forum_memberships (province_code, cadre_id, certificate, state, join_time)
		VALUES (?, ?, ?, ?, ?)`, province, cadreID, certificate, int32(knkv1.ForumMembership_STATE_ACTIVE), now.UnixMicro())
	if err != nil {
		return "", err
	}
	return "forums/" + province, tx.Event(ctx, "forum.member_joined", memberName(province, cadreID), actor, now)
}

// Leave ends the cadre's active membership, if it has one, and returns the
// province it left ("" if it was not a member).
func Leave(ctx context.Context, tx *db.Tx, cadreID string, reason knkv1.ForumMembership_EndReason, actor string, now time.Time) (province, certificate string, err error) {
	err = tx.QueryRowContext(ctx, `SELECT province_code, certificate FROM forum_memberships WHERE cadre_id = ? AND state = ?`,
		cadreID, int32(knkv1.ForumMembership_STATE_ACTIVE)).Scan(&province, &certificate)
	if err = tx.Translate(err); errors.Is(err, db.ErrNotFound) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	_, err = tx.ExecContext(ctx, `UPDATE forum_memberships SET state = ?, end_time = ?, end_reason = ?
		WHERE cadre_id = ? AND state = ?`, int32(knkv1.ForumMembership_STATE_ENDED), now.UnixMicro(), int32(reason),
		cadreID, int32(knkv1.ForumMembership_STATE_ACTIVE))
	if err != nil {
		return "", "", err
	}
	return province, certificate, tx.Event(ctx, "forum.member_left", memberName(province, cadreID), actor, now)
}

// Move moves an active membership to the forum of a new province (ended as MOVED,
// joined anew with the same certificate) and returns the new forum's name, or ""
// if the cadre is not a member of any forum.
func Move(ctx context.Context, tx *db.Tx, cadreID, province, actor string, now time.Time) (string, error) {
	var current string
	err := tx.QueryRowContext(ctx, `SELECT province_code FROM forum_memberships WHERE cadre_id = ? AND state = ?`,
		cadreID, int32(knkv1.ForumMembership_STATE_ACTIVE)).Scan(&current)
	if err = tx.Translate(err); errors.Is(err, db.ErrNotFound) {
		return "", nil
	}
	if err != nil || current == province {
		return "forums/" + current, err
	}
	_, certificate, err := Leave(ctx, tx, cadreID, knkv1.ForumMembership_END_REASON_MOVED, actor, now)
	if err != nil {
		return "", err
	}
	return Join(ctx, tx, cadreID, province, certificate, actor, now)
}

// ActiveByProvince counts active members per province.
func ActiveByProvince(ctx context.Context, q db.Querier) (map[string]int64, error) {
	return db.Counts(ctx, q, `SELECT province_code, COUNT(*) FROM forum_memberships WHERE state = ? GROUP BY province_code`,
		int32(knkv1.ForumMembership_STATE_ACTIVE))
}

// ForCadre returns every forum membership of the cadre (cadres/{id}), oldest
// first (for a data-subject export).
func ForCadre(ctx context.Context, q db.Querier, cadre string) ([]*knkv1.ForumMembership, error) {
	cid := strings.TrimPrefix(cadre, "cadres/")
	return db.All(ctx, q, func(row db.Scanner) (*knkv1.ForumMembership, error) {
		var (
			province, cert string
			st, reason     int32
			join, end      int64
		)
		if err := row.Scan(&province, &cert, &st, &join, &end, &reason); err != nil {
			return nil, err
		}
		m := &knkv1.ForumMembership{
			Name: memberName(province, cid), Cadre: cadre, Certificate: cert,
			State: knkv1.ForumMembership_State(st), JoinTime: timestamppb.New(time.UnixMicro(join)),
			EndReason: knkv1.ForumMembership_EndReason(reason),
		}
		if end != 0 {
			m.EndTime = timestamppb.New(time.UnixMicro(end))
		}
		return m, nil
	}, `SELECT province_code, certificate, state, join_time, end_time, end_reason FROM forum_memberships
		WHERE cadre_id = ? ORDER BY id`, cid)
}
