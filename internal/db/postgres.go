package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/knk-id/knk/internal/metrics"
)

// eventsChannel is the NOTIFY channel that tells every replica an event committed.
const eventsChannel = "knk_events"

// pgDialect runs each write in its own READ COMMITTED transaction; the rules
// that read before they write lock the rows they depend on (FOR UPDATE), the
// event counter row, updated just before commit, orders commits that append
// events, and serialization failures and deadlocks are retried.
type pgDialect struct {
	db     *DB
	conn   *sql.DB
	dsn    string
	cancel context.CancelFunc
	done   chan struct{}
}

func openPostgres(dsn string, db *DB) (*sql.DB, dialect, error) {
	conn, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, nil, err
	}
	// 16 connections per server: several replicas stay well inside PostgreSQL's
	// default max_connections of 100, and callers beyond that wait their turn.
	conn.SetMaxOpenConns(16)
	conn.SetMaxIdleConns(16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.PingContext(ctx); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	lctx, lcancel := context.WithCancel(context.Background())
	d := &pgDialect{db: db, conn: conn, dsn: dsn, cancel: lcancel, done: make(chan struct{})}
	go d.listen(lctx)
	return conn, d, nil
}

func (d *pgDialect) name() string { return "postgres" }

func (d *pgDialect) migrations() (goose.Dialect, string, []goose.ProviderOption) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return goose.DialectPostgres, "postgres", nil
	}
	return goose.DialectPostgres, "postgres", []goose.ProviderOption{goose.WithSessionLocker(locker)}
}

// rebind turns ? placeholders into $1, $2, …; no query of ours has a ? in a literal.
func (d *pgDialect) rebind(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (d *pgDialect) isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (d *pgDialect) forUpdate() string { return " FOR UPDATE" }

// afterCopy moves the event counter and the membership id sequence past the
// copied rows.
func (d *pgDialect) afterCopy(ctx context.Context, tx *Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE event_counter SET last = (SELECT COALESCE(MAX(sequence), 0) FROM events)`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('forum_memberships', 'id'),
		(SELECT COALESCE(MAX(id), 0) + 1 FROM forum_memberships), false)`)
	return err
}

// event holds e back until the transaction is about to commit (appendEvents).
func (d *pgDialect) event(_ context.Context, tx *Tx, e event) error {
	tx.pending = append(tx.pending, e)
	return nil
}

// appendEvents numbers the transaction's events and inserts them, in one
// statement, as the last thing before COMMIT. The event counter row it updates
// stays locked until the commit, so sequences are gap-free and given in commit
// order (a reader never sees n+1 before n); taking that lock last keeps it
// held only for this statement and the commit, however long the transaction
// ran before (a bulk import's batch), so writers queue on it only briefly.
func (d *pgDialect) appendEvents(ctx context.Context, tx *Tx) error {
	n := len(tx.pending)
	if n == 0 {
		return nil
	}
	var (
		types     = make([]string, n)
		resources = make([]string, n)
		actors    = make([]string, n)
		times     = make([]int64, n)
	)
	for i, e := range tx.pending {
		types[i], resources[i], actors[i], times[i] = e.typ, e.resource, e.actor, e.at
	}
	_, err := tx.tx.ExecContext(ctx, `WITH s AS (UPDATE event_counter SET last = last + $1 WHERE id = 1 RETURNING last - $1 AS first)
		INSERT INTO events (sequence, type, resource, actor, create_time)
		SELECT s.first + e.n, e.type, e.resource, e.actor, e.create_time
		FROM s, unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) WITH ORDINALITY AS e(type, resource, actor, create_time, n)`,
		n, types, resources, actors, times)
	return err
}

func (d *pgDialect) write(ctx context.Context, fn func(*Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := d.try(ctx, fn)
		if err == nil || !retryable(err) || attempt == 50 {
			return err
		}
		backoff := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 7)))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pgBulkPiece is how many items of a bulk job share one PostgreSQL transaction.
const pgBulkPiece = 100

func (d *pgDialect) writeBulk(ctx context.Context, n int, fn func(tx *Tx, lo, hi int) error) error {
	for lo := 0; lo < n; lo += pgBulkPiece {
		hi := min(n, lo+pgBulkPiece)
		if err := d.write(ctx, func(tx *Tx) error { return fn(tx, lo, hi) }); err != nil {
			return err
		}
	}
	return nil
}

func (d *pgDialect) try(ctx context.Context, fn func(*Tx) error) (err error) {
	sqlTx, err := d.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer sqlTx.Rollback()
	tx := &Tx{tx: sqlTx, db: d.db}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p) // as on SQLite: the transaction rolls back
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if tx.events > 0 {
		// Delivered at commit; sent before the events so that the counter
		// lock taken by appendEvents spans one round trip less.
		if _, err := sqlTx.ExecContext(ctx, `SELECT pg_notify('`+eventsChannel+`', '')`); err != nil {
			return err
		}
	}
	if err := d.appendEvents(ctx, tx); err != nil {
		return err
	}
	start := time.Now()
	err = sqlTx.Commit()
	metrics.StoreCommitSeconds.WithLabelValues("postgres").Observe(time.Since(start).Seconds())
	metrics.StoreWriteBatch.WithLabelValues("postgres").Observe(1)
	if err != nil {
		if !retryable(err) {
			metrics.StoreWriteErrors.WithLabelValues("postgres", "commit").Inc()
		}
		return err
	}
	if tx.events > 0 {
		d.db.notifyEvents()
	}
	return nil
}

// listen relays NOTIFY from every replica's commits to EventsChanged, so that
// watchers here see events written through other servers at once.
func (d *pgDialect) listen(ctx context.Context) {
	defer close(d.done)
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, d.dsn)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+eventsChannel)
		}
		for err == nil {
			_, err = conn.WaitForNotification(ctx)
			if err == nil {
				d.db.notifyEvents()
			}
		}
		if conn != nil {
			conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (d *pgDialect) close() error {
	d.cancel()
	<-d.done
	return nil
}
