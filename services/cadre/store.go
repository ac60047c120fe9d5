package cadre

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/auth"
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
	res, err := tx.ExecContext(ctx, `INSERT INTO cadres (`+columns+`) VALUES `+cadreValues+` ON CONFLICT (nik) DO NOTHING`,
		insertArgs(c)...)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	again, err := reregistered(ctx, tx, nikHash)
	if err != nil {
		return false, err
	}
	return true, createdEvents(ctx, tx, c, actor, again)
}

// createdEvents records cadre.created for a cadre just stored, and
// cadre.reregistered after it when its NIK was erased before (again).
func createdEvents(ctx context.Context, tx *db.Tx, c *knkv1.Cadre, actor string, again bool) error {
	if err := tx.Event(ctx, "cadre.created", c.Name, actor, c.CreateTime.AsTime()); err != nil || !again {
		return err
	}
	return tx.Event(ctx, "cadre.reregistered", c.Name, actor, c.CreateTime.AsTime())
}

// cadreValues and insertArgs are one new cadre's row of an INSERT.
const cadreValues = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, '', '', ?, ?, 1)`

func insertArgs(c *knkv1.Cadre) []any {
	now := c.CreateTime.AsTime().UnixMicro()
	return []any{id(c.Name), c.Nik, c.DisplayName, c.BirthDate, int32(c.Gender), c.Phone, c.Email,
		c.ProvinceCode, c.Regency, c.Employer.GetName(), c.Employer.GetNib(), fedID(c.Federation),
		c.UnionMemberNumber, c.BpjsKpj, int32(knkv1.Cadre_STATE_ACTIVE), now, now}
}

// pgInsertRows is how many rows one INSERT of insertMany carries on PostgreSQL.
const pgInsertRows = 100

// insertMany stores new cadres like insert (nikHashes[i] is the hash of
// cs[i]'s NIK) and reports which it stored: a cadre whose NIK is already
// registered, or repeats the NIK of an earlier one of cs, is not. On PostgreSQL,
// where each statement is a round trip to the server, pgInsertRows rows go in
// one statement; on SQLite, inside the process, a cached statement per row is
// cheapest.
func insertMany(ctx context.Context, tx *db.Tx, cs []*knkv1.Cadre, nikHashes []string, actor string) ([]bool, error) {
	stored := make([]bool, 0, len(cs))
	if tx.Engine() != "postgres" {
		for i, c := range cs {
			ok, err := insert(ctx, tx, c, actor, nikHashes[i])
			if err != nil {
				return nil, err
			}
			stored = append(stored, ok)
		}
		return stored, nil
	}
	for lo := 0; lo < len(cs); lo += pgInsertRows {
		chunk, hashes := cs[lo:min(lo+pgInsertRows, len(cs))], nikHashes[lo:min(lo+pgInsertRows, len(cs))]
		var (
			q    strings.Builder
			args = make([]any, 0, 17*len(chunk))
		)
		q.WriteString(`INSERT INTO cadres (` + columns + `) VALUES `)
		for i, c := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(cadreValues)
			args = append(args, insertArgs(c)...)
		}
		q.WriteString(` ON CONFLICT (nik) DO NOTHING RETURNING id`)
		ids, err := db.All(ctx, tx, scanString, q.String(), args...)
		if err != nil {
			return nil, tx.Translate(err)
		}
		made := make(map[string]bool, len(ids))
		for _, id := range ids {
			made[id] = true
		}
		var madeHashes []string
		for i, c := range chunk {
			if made[id(c.Name)] {
				madeHashes = append(madeHashes, hashes[i])
			}
		}
		erased, err := reregisteredAmong(ctx, tx, madeHashes)
		if err != nil {
			return nil, err
		}
		for i, c := range chunk {
			ok := made[id(c.Name)]
			if ok {
				if err := createdEvents(ctx, tx, c, actor, erased[hashes[i]]); err != nil {
					return nil, err
				}
			}
			stored = append(stored, ok)
		}
	}
	return stored, nil
}

func scanString(row db.Scanner) (string, error) {
	var v string
	return v, row.Scan(&v)
}

// reregisteredAmong is reregistered for many NIK hashes in one query: the set
// of those that match an erased cadre.
func reregisteredAmong(ctx context.Context, tx *db.Tx, nikHashes []string) (map[string]bool, error) {
	var args []any
	for _, h := range nikHashes {
		if h != "" {
			args = append(args, h)
		}
	}
	if len(args) == 0 {
		return nil, nil
	}
	found, err := db.All(ctx, tx, scanString, `SELECT DISTINCT nik_hash FROM cadres WHERE nik_hash <> '' AND nik_hash IN (?`+
		strings.Repeat(", ?", len(args)-1)+`)`, args...)
	out := make(map[string]bool, len(found))
	for _, h := range found {
		out[h] = true
	}
	return out, err
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
		// A literal, not a parameter: the planner matches it to the partial index
		// cadres_topic_N (migration 00013). f.topic is a checked enum.
		where = append(where, fmt.Sprintf("(passed_topics & %d) <> 0", int64(1)<<f.topic))
	}
	return db.All(ctx, q, scan, `SELECT `+columns+` FROM cadres WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id LIMIT ?`, append(args, limit)...)
}

// scope is the condition over the cadres table that selects the cadres p may
// read: a federation its own, a provincial unit or inspectorate those of its
// province, admin and national organizations all.
func scope(p auth.Principal) (string, []any) {
	switch {
	case p.Kind == auth.Admin:
		return "1 = 1", nil
	case p.Kind == auth.Federation:
		return "federation = ?", []any{p.Org}
	case p.Kind != auth.TrainingUnit && p.Kind != auth.Inspector:
		return "1 = 0", nil
	case p.Province != "":
		return "province_code = ?", []any{p.Province}
	}
	return "1 = 1", nil
}

// ScopeSQL is the condition, over column (which holds cadre ids, e.g.
// "cadre_id"), that keeps the rows about cadres p may read. Other services add it
// to their queries so that pages are filtered before they are cut.
func ScopeSQL(p auth.Principal, column string) (string, []any) {
	cond, args := scope(p)
	if cond == "1 = 1" || cond == "1 = 0" {
		return cond, nil
	}
	return column + " IN (SELECT id FROM cadres WHERE " + cond + ")", args
}

// getVisible reads the cadre whose key column ("id" or "nik") is value, if p may
// read it. A cadre outside p's scope and one that does not exist both give
// sql.ErrNoRows from the same single indexed query, so neither the answer nor its
// time tells them apart. lock is "" or tx.ForUpdate().
func getVisible(ctx context.Context, q db.Querier, p auth.Principal, key, value, lock string) (*knkv1.Cadre, error) {
	cond, args := scope(p)
	return scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM cadres WHERE `+key+` = ? AND `+cond+lock,
		append([]any{value}, args...)...))
}

const transferColumns = `id, cadre_id, from_federation, to_federation, state, reject_reason, create_time, decide_time`

func scanTransfer(row db.Scanner) (*knkv1.TransferRequest, error) {
	var (
		t                  knkv1.TransferRequest
		tid, cid, from, to string
		state              int32
		created, decided   int64
	)
	if err := row.Scan(&tid, &cid, &from, &to, &state, &t.RejectReason, &created, &decided); err != nil {
		return nil, err
	}
	t.Name, t.Cadre = "transferRequests/"+tid, "cadres/"+cid
	t.FromFederation, t.ToFederation = "organizations/"+from, "organizations/"+to
	t.State = knkv1.TransferRequest_State(state)
	t.CreateTime = timestamppb.New(time.UnixMicro(created))
	if decided != 0 {
		t.DecideTime = timestamppb.New(time.UnixMicro(decided))
	}
	return &t, nil
}

// insertTransfer stores a pending request; it reports false, writing nothing,
// when the same federation already has one pending for the cadre.
func insertTransfer(ctx context.Context, tx *db.Tx, t *knkv1.TransferRequest) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO transfer_requests (`+transferColumns+`)
		VALUES (?, ?, ?, ?, ?, '', ?, 0) ON CONFLICT DO NOTHING`,
		strings.TrimPrefix(t.Name, "transferRequests/"), id(t.Cadre), fedID(t.FromFederation), fedID(t.ToFederation),
		int32(t.State), t.CreateTime.AsTime().UnixMicro())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// getTransferForUpdate reads a transfer request that p may see (admin: all; a
// federation: those asking for its cadres or made by it) and locks it.
func getTransferForUpdate(ctx context.Context, tx *db.Tx, p auth.Principal, tid string) (*knkv1.TransferRequest, error) {
	cond, args := transferScope(p)
	return scanTransfer(tx.QueryRowContext(ctx, `SELECT `+transferColumns+` FROM transfer_requests WHERE id = ? AND `+
		cond+tx.ForUpdate(), append([]any{tid}, args...)...))
}

func transferScope(p auth.Principal) (string, []any) {
	if p.Kind == auth.Admin {
		return "1 = 1", nil
	}
	return "(from_federation = ? OR to_federation = ?)", []any{p.Org, p.Org}
}

// decideTransfer sets the state of a pending request.
func decideTransfer(ctx context.Context, tx *db.Tx, tid string, state knkv1.TransferRequest_State, reason string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE transfer_requests SET state = ?, reject_reason = ?, decide_time = ?
		WHERE id = ? AND state = ?`, int32(state), reason, now.UnixMicro(), tid, int32(knkv1.TransferRequest_STATE_PENDING))
	return err
}

// pendingTransfers lists the ids of the requests pending for a cadre.
func pendingTransfers(ctx context.Context, tx *db.Tx, cadreID string) ([]string, error) {
	return db.All(ctx, tx, func(r db.Scanner) (string, error) {
		var s string
		return s, r.Scan(&s)
	}, `SELECT id FROM transfer_requests WHERE cadre_id = ? AND state = ? ORDER BY id`,
		cadreID, int32(knkv1.TransferRequest_STATE_PENDING))
}

// setFederation moves a cadre to another federation.
func setFederation(ctx context.Context, tx *db.Tx, cadreID, federation string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE cadres SET federation = ?, update_time = ?, version = version + 1 WHERE id = ?`,
		fedID(federation), now.UnixMicro(), cadreID)
	return err
}

// listTransfers returns a page of the requests p may see, by id.
func listTransfers(ctx context.Context, q db.Querier, p auth.Principal, state knkv1.TransferRequest_State, after string, limit int) ([]*knkv1.TransferRequest, error) {
	cond, args := transferScope(p)
	query, args := `SELECT `+transferColumns+` FROM transfer_requests WHERE id > ? AND `+cond, append([]any{after}, args...)
	if state != knkv1.TransferRequest_STATE_UNSPECIFIED {
		query, args = query+` AND state = ?`, append(args, int32(state))
	}
	return db.All(ctx, q, scanTransfer, query+` ORDER BY id LIMIT ?`, append(args, limit)...)
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

// displayNames maps the given cadre ids to their names.
func displayNames(ctx context.Context, q db.Querier, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, `SELECT id, display_name FROM cadres WHERE id IN (?`+
		strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[id] = name
	}
	return out, rows.Err()
}
