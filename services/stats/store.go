package stats

import (
	"context"
	"fmt"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/topic"
)

// The counters live in province_counts and province_count_deltas (migration
// 00012), kept by triggers in the transaction of every change. A counter is its
// row in province_counts plus its delta rows; Compact folds the deltas in.

// key is one counter: a province and a metric.
type key struct{ province, metric string }

// Metric names as the migration's triggers write them.
const (
	mCadres    = "cadres"
	mCertified = "certified"
	mSessions  = "sessions_completed"
	mMembers   = "forum_members"
)

func mTopic(t knkv1.Topic) string { return fmt.Sprintf("topic_%d", t) }

func mCertificates(s knkv1.Certificate_State) string { return fmt.Sprintf("certificates_%d", s) }

// counts reads every counter: at most one row per province and metric in
// province_counts (38 × 13) plus the deltas not yet folded in.
func counts(ctx context.Context, q db.Querier) (map[key]int64, error) {
	return scanCounts(ctx, q, `SELECT province_code, metric, SUM(n) FROM (
			SELECT province_code, metric, n FROM province_counts
			UNION ALL SELECT province_code, metric, n FROM province_count_deltas) c
		GROUP BY province_code, metric`)
}

// recount computes every counter from the base tables, as the triggers define them.
func recount(ctx context.Context, q db.Querier) (map[key]int64, error) {
	var parts []string
	add := func(metric, table, cond string) {
		parts = append(parts, fmt.Sprintf(`SELECT province_code, '%s', COUNT(*) FROM %s WHERE %s GROUP BY province_code`, metric, table, cond))
	}
	add(mCadres, "cadres", "1 = 1")
	add(mCertified, "cadres", fmt.Sprintf("state = %d", knkv1.Cadre_STATE_CERTIFIED))
	for _, t := range topic.List(topic.All) {
		add(mTopic(t), "cadres", fmt.Sprintf("(passed_topics & %d) <> 0", int64(1)<<t))
	}
	add(mSessions, "sessions", fmt.Sprintf("state = %d", knkv1.Session_STATE_COMPLETED))
	add(mMembers, "forum_memberships", fmt.Sprintf("state = %d", knkv1.ForumMembership_STATE_ACTIVE))
	for _, s := range []knkv1.Certificate_State{knkv1.Certificate_STATE_VALID, knkv1.Certificate_STATE_REVOKED, knkv1.Certificate_STATE_EXPIRED} {
		add(mCertificates(s), "certificates", fmt.Sprintf("state = %d", s))
	}
	return scanCounts(ctx, q, strings.Join(parts, " UNION ALL "))
}

func scanCounts(ctx context.Context, q db.Querier, query string) (map[key]int64, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[key]int64{}
	for rows.Next() {
		var (
			k key
			n int64
		)
		if err := rows.Scan(&k.province, &k.metric, &n); err != nil {
			return nil, err
		}
		if n != 0 {
			out[k] = n
		}
	}
	return out, rows.Err()
}

// compact folds the delta rows it can see into province_counts, in one
// transaction. Deltas committed meanwhile stay for the next run; two replicas
// compacting at once never fold a delta twice (the second one's DELETE skips
// the rows the first deleted).
func compact(ctx context.Context, tx *db.Tx, engine string) (int64, error) {
	if engine == "sqlite" { // one writer: nothing commits between the two statements
		res, err := tx.ExecContext(ctx, `INSERT INTO province_counts (province_code, metric, n)
			SELECT province_code, metric, SUM(n) FROM province_count_deltas WHERE 1 = 1 GROUP BY province_code, metric
			ON CONFLICT (province_code, metric) DO UPDATE SET n = province_counts.n + excluded.n`)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM province_count_deltas`); err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	res, err := tx.ExecContext(ctx, `WITH moved AS (
			DELETE FROM province_count_deltas RETURNING province_code, metric, n)
		INSERT INTO province_counts (province_code, metric, n)
		SELECT province_code, metric, SUM(n) FROM moved GROUP BY province_code, metric
		ON CONFLICT (province_code, metric) DO UPDATE SET n = province_counts.n + excluded.n`)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// hasDeltas reports whether any delta waits to be folded in.
func hasDeltas(ctx context.Context, q db.Querier) (bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT 1 FROM province_count_deltas LIMIT 1`)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	return rows.Next(), rows.Err()
}

// lockCounters keeps writers from adding deltas until tx ends, and waits for
// those adding some now to commit (PostgreSQL; SQLite's writer is alone anyway).
func lockCounters(ctx context.Context, tx *db.Tx, engine string) error {
	if engine == "sqlite" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `LOCK TABLE province_count_deltas IN EXCLUSIVE MODE`)
	return err
}

// reset replaces every counter with the given values (a repair after verify).
func reset(ctx context.Context, tx *db.Tx, want map[key]int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM province_count_deltas`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM province_counts`); err != nil {
		return err
	}
	for k, n := range want {
		if _, err := tx.ExecContext(ctx, `INSERT INTO province_counts (province_code, metric, n) VALUES (?, ?, ?)`, k.province, k.metric, n); err != nil {
			return err
		}
	}
	return nil
}
