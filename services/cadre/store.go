package cadre

import (
	"context"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/topic"
)

const columns = `id, nik, display_name, birth_date, gender, phone, email, province_code, regency,
	employer_name, employer_nib, federation, union_member_number, bpjs_kpj, state, withdraw_reason,
	passed_topics, certificate, forum, create_time, update_time, version`

// scan reads one cadre row; the NIK is unmasked.
func scan(row db.Scanner) (*knkv1.Cadre, error) {
	var (
		c               knkv1.Cadre
		id, fed         string
		gender, state   int32
		passed, ct, ut  int64
		version         int64
		empName, empNIB string
	)
	err := row.Scan(&id, &c.Nik, &c.DisplayName, &c.BirthDate, &gender, &c.Phone, &c.Email,
		&c.ProvinceCode, &c.Regency, &empName, &empNIB, &fed, &c.UnionMemberNumber, &c.BpjsKpj,
		&state, &c.WithdrawReason, &passed, &c.Certificate, &c.Forum, &ct, &ut, &version)
	if err != nil {
		return nil, err
	}
	c.Name = "cadres/" + id
	c.Gender = knkv1.Cadre_Gender(gender)
	c.State = knkv1.Cadre_State(state)
	c.Employer = &knkv1.Employer{Name: empName, Nib: empNIB}
	c.Federation = "organizations/" + fed
	c.PassedTopics = topic.List(passed)
	c.CreateTime = timestamppb.New(time.UnixMicro(ct))
	c.UpdateTime = timestamppb.New(time.UnixMicro(ut))
	c.Etag = strconv.FormatInt(version, 10)
	return &c, nil
}

func id(name string) string { return strings.TrimPrefix(name, "cadres/") }

func fedID(name string) string { return strings.TrimPrefix(name, "organizations/") }

func get(ctx context.Context, q db.Querier, cadreID string) (*knkv1.Cadre, error) {
	return scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM cadres WHERE id = ?`, cadreID))
}

// getForUpdate reads a cadre in a write transaction and locks its row until the
// transaction ends.
func getForUpdate(ctx context.Context, tx *db.Tx, cadreID string) (*knkv1.Cadre, error) {
	return scan(tx.QueryRowContext(ctx, `SELECT `+columns+` FROM cadres WHERE id = ?`+tx.ForUpdate(), cadreID))
}

func getByNIK(ctx context.Context, q db.Querier, nik string) (*knkv1.Cadre, error) {
	return scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM cadres WHERE nik = ?`, nik))
}

// insert stores a new cadre and its cadre.created event. It reports false, and
// writes nothing, when the NIK is already registered. When nikHash (the keyed
// hash of the NIK) matches an erased cadre, it records cadre.reregistered too.
func insert(ctx context.Context, tx *db.Tx, c *knkv1.Cadre, actor, nikHash string) (bool, error) {
	now := c.CreateTime.AsTime().UnixMicro()
	res, err := tx.ExecContext(ctx, `INSERT INTO cadres (`+columns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, '', '', ?, ?, 1)
		ON CONFLICT (nik) DO NOTHING`,
		id(c.Name), c.Nik, c.DisplayName, c.BirthDate, int32(c.Gender), c.Phone, c.Email,
		c.ProvinceCode, c.Regency, c.Employer.GetName(), c.Employer.GetNib(), fedID(c.Federation),
		c.UnionMemberNumber, c.BpjsKpj, int32(knkv1.Cadre_STATE_ACTIVE), now, now)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if err := tx.Event(ctx, "cadre.created", c.Name, actor, c.CreateTime.AsTime()); err != nil {
		return false, err
	}
	if again, err := reregistered(ctx, tx, nikHash); err != nil || !again {
		return err == nil, err
	}
	return true, tx.Event(ctx, "cadre.reregistered", c.Name, actor, c.CreateTime.AsTime())
}

// update writes the registration fields, state, certificate and forum of c if its version is still
// the one read (etag); it reports false otherwise.
func update(ctx context.Context, tx *db.Tx, c *knkv1.Cadre, now time.Time) (bool, error) {
	version, _ := strconv.ParseInt(c.Etag, 10, 64)
	res, err := tx.ExecContext(ctx, `UPDATE cadres SET display_name = ?, phone = ?, email = ?,
		province_code = ?, regency = ?, employer_name = ?, employer_nib = ?, union_member_number = ?,
		bpjs_kpj = ?, state = ?, withdraw_reason = ?, certificate = ?, forum = ?, update_time = ?,
		version = version + 1 WHERE id = ? AND version = ?`,
		c.DisplayName, c.Phone, c.Email, c.ProvinceCode, c.Regency, c.Employer.GetName(),
		c.Employer.GetNib(), c.UnionMemberNumber, c.BpjsKpj, int32(c.State), c.WithdrawReason,
		c.Certificate, c.Forum, now.UnixMicro(), id(c.Name), version)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	c.Etag = strconv.FormatInt(version+1, 10)
	c.UpdateTime = timestamppb.New(now)
	return true, nil
}

// filter selects cadres for ListCadres.
type filter struct {
	province, federation string
	state                knkv1.Cadre_State
	topic                knkv1.Topic
}

func list(ctx context.Context, q db.Querier, f filter, after string, limit int) ([]*knkv1.Cadre, error) {
	var (
		where = []string{"id > ?"}
		args  = []any{after}
	)
	if f.province != "" {
		where, args = append(where, "province_code = ?"), append(args, f.province)
	}
	if f.federation != "" {
		where, args = append(where, "federation = ?"), append(args, fedID(f.federation))
	}
	if f.state != knkv1.Cadre_STATE_UNSPECIFIED {
		where, args = append(where, "state = ?"), append(args, int32(f.state))
	}
	if f.topic != knkv1.Topic_TOPIC_UNSPECIFIED {
		where, args = append(where, "(passed_topics & ?) <> 0"), append(args, int64(1)<<f.topic)
	}
	return db.All(ctx, q, scan, `SELECT `+columns+` FROM cadres WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id LIMIT ?`, append(args, limit)...)
}

func erasable(ctx context.Context, q db.Querier, cutoff time.Time, limit int) ([]string, error) {
	return db.All(ctx, q, func(row db.Scanner) (string, error) {
		var cid string
		err := row.Scan(&cid)
		return "cadres/" + cid, err
	}, `SELECT id FROM cadres WHERE withdraw_time > 0 AND erase_time = 0 AND withdraw_time < ?
		ORDER BY withdraw_time LIMIT ?`, cutoff.UnixMicro(), limit)
}

// erase empties the personal fields of a withdrawn cadre and puts the keyed hash
// of its NIK in nik_hash; the nik column, which must stay unique, becomes
// "erased:{id}". It reports false if the cadre was already erased.
func erase(ctx context.Context, tx *db.Tx, cadreID, nikHash string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE cadres SET nik = ?, nik_hash = ?, display_name = '', birth_date = '',
		gender = 0, phone = '', email = '', regency = '', employer_name = '', employer_nib = '',
		union_member_number = '', bpjs_kpj = '', withdraw_reason = '', erase_time = ?, update_time = ?,
		version = version + 1 WHERE id = ? AND state = ? AND erase_time = 0`,
		"erased:"+cadreID, nikHash, now.UnixMicro(), now.UnixMicro(), cadreID, int32(knkv1.Cadre_STATE_WITHDRAWN))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// markWithdrawn records when the cadre was withdrawn, from which the erasure
// of its personal fields is counted.
func markWithdrawn(ctx context.Context, tx *db.Tx, cadreID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE cadres SET withdraw_time = ? WHERE id = ?`, now.UnixMicro(), cadreID)
	return err
}

// reregistered reports whether a cadre erased earlier had the NIK whose keyed
// hash is nikHash: the same person registered again.
func reregistered(ctx context.Context, tx *db.Tx, nikHash string) (bool, error) {
	if nikHash == "" {
		return false, nil
	}
	var n int64
	// nik_hash <> '' lets the engines use the partial index cadres_nik_hash.
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM cadres WHERE nik_hash = ? AND nik_hash <> ''`, nikHash).Scan(&n)
	return n > 0, err
}
