package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// tables lists every table of the schema in an order that respects foreign keys.
var tables = []string{
	"organizations", "api_keys", "cadres", "request_ids", "events", "sessions", "enrollments",
	"scores", "signing_keys", "certificate_counters", "certificates", "forum_memberships", "certificate_name_tries",
	"transfer_requests", "access_log", "access_log_cadres",
}

// copyBatch is how many rows one INSERT statement carries.
const copyBatch = 200

// Copy copies every row of every table from one store to another, empty store
// (events, keys and counters included) in one transaction on the target, reading
// the source from one snapshot, then checks that both hold the same number of
// rows in each table. progress, if not nil, is called as rows are copied.
func Copy(ctx context.Context, from, to *DB, progress func(table string, rows int64)) (map[string]int64, error) {
	for _, t := range tables {
		n, err := count(ctx, to.read, t)
		if err != nil {
			return nil, err
		}
		if n != 0 {
			return nil, fmt.Errorf("copy: the target is not empty (%s holds %d rows)", t, n)
		}
	}
	src, err := from.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer src.Rollback()
	counts := map[string]int64{}
	err = to.Write(ctx, func(tx *Tx) error {
		for _, t := range tables {
			n, err := copyTable(ctx, src, tx, t, func(n int64) {
				if progress != nil {
					progress(t, n)
				}
			})
			if err != nil {
				return fmt.Errorf("copy %s: %w", t, err)
			}
			counts[t] = n
		}
		return to.d.afterCopy(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		n, err := count(ctx, to.read, t)
		if err != nil {
			return nil, err
		}
		if n != counts[t] {
			return counts, fmt.Errorf("copy: %s has %d rows in the target, %d were read", t, n, counts[t])
		}
	}
	return counts, nil
}

func count(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, table string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n)
	return n, err
}

func copyTable(ctx context.Context, src *sql.Tx, dst *Tx, table string, progress func(int64)) (int64, error) {
	rows, err := src.QueryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	var (
		n     int64
		batch []any
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
		values := strings.TrimSuffix(strings.Repeat(row+", ", len(batch)/len(cols)), ", ")
		_, err := dst.ExecContext(ctx, `INSERT INTO `+table+` (`+strings.Join(cols, ", ")+`) VALUES `+values, batch...)
		batch = batch[:0]
		progress(n)
		return err
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		batch = append(batch, vals...)
		n++
		if n%copyBatch == 0 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// Tables lists the schema's tables in copy order.
func Tables() []string { return append([]string(nil), tables...) }
