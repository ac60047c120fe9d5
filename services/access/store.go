package access

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
)

func cadreID(name string) string { return strings.TrimPrefix(name, "cadres/") }

func timestampOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// rowsPerStatement bounds the rows of one multi-row INSERT (bind variables stay
// far below SQLite's and PostgreSQL's limits).
const rowsPerStatement = 100

// insert writes a batch of entries and the cadres each names.
func insert(ctx context.Context, tx *db.Tx, batch []*pending) error {
	for start := 0; start < len(batch); start += rowsPerStatement {
		part := batch[start:min(start+rowsPerStatement, len(batch))]
		args := make([]any, 0, 8*len(part))
		for _, p := range part {
			e := p.entry
			args = append(args, e.Id, e.AccessTime.AsTime().UnixMicro(), e.KeyId, e.Organization, e.Method,
				int32(e.Fields), e.RequestId, e.CadreCount)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO access_log (id, access_time, key_id, organization, method,
			fields, request_id, cadre_count) VALUES `+values(len(part), 8), args...); err != nil {
			return err
		}
	}
	var args []any
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO access_log_cadres (cadre_id, entry_id) VALUES `+values(len(args)/2, 2)+
			` ON CONFLICT DO NOTHING`, args...)
		args = args[:0]
		return err
	}
	for _, p := range batch {
		for _, c := range p.cadres {
			args = append(args, c, p.entry.Id)
			if len(args) == 2*rowsPerStatement*4 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// values is "(?, ?), (?, ?)" for rows rows of cols columns.
func values(rows, cols int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return row + strings.Repeat(", "+row, rows-1)
}

const columns = `l.id, l.access_time, l.key_id, l.organization, l.method, l.fields, l.request_id, l.cadre_count`

func scan(row db.Scanner) (*knkv1.AccessLogEntry, error) {
	var (
		e      knkv1.AccessLogEntry
		at     int64
		fields int32
		count  int64
	)
	if err := row.Scan(&e.Id, &at, &e.KeyId, &e.Organization, &e.Method, &fields, &e.RequestId, &count); err != nil {
		return nil, err
	}
	e.AccessTime = timestamppb.New(time.UnixMicro(at))
	e.Fields = knkv1.AccessLogEntry_Fields(fields)
	e.CadreCount = int32(count)
	return &e, nil
}

// List returns up to limit entries about the cadre (cadres/{id}) after the entry
// id after, oldest first; limit <= 0 means all.
func List(ctx context.Context, q db.Querier, cadre, after string, limit int) ([]*knkv1.AccessLogEntry, error) {
	query := `SELECT ` + columns + ` FROM access_log_cadres c JOIN access_log l ON l.id = c.entry_id
		WHERE c.cadre_id = ? AND c.entry_id > ? ORDER BY c.entry_id`
	args := []any{cadreID(cadre), after}
	if limit > 0 {
		query, args = query+` LIMIT ?`, append(args, limit)
	}
	return db.All(ctx, q, scan, query, args...)
}

// DeleteBefore deletes up to limit of the entries made before cutoff, oldest
// first, and reports how many it deleted; call it until it deletes none.
func DeleteBefore(ctx context.Context, tx *db.Tx, cutoff time.Time, limit int) (int64, error) {
	// A ULID of the cutoff with zero entropy sorts before every id made at or after it.
	var b ulid.ULID
	if err := b.SetTime(ulid.Timestamp(cutoff)); err != nil {
		return 0, err
	}
	bound := b.String()
	// Delete in steps of limit entries: the step's bound is the entry after them.
	var next string
	err := tx.QueryRowContext(ctx, `SELECT id FROM access_log WHERE id < ? ORDER BY id LIMIT 1 OFFSET ?`,
		bound, limit).Scan(&next)
	switch err = tx.Translate(err); {
	case err == nil:
		bound = next
	case !errors.Is(err, db.ErrNotFound):
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM access_log_cadres WHERE entry_id < ?`, bound); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM access_log WHERE id < ?`, bound)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
