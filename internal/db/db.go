// Package db opens the store (SQLite file or PostgreSQL), applies the embedded
// migrations, runs write transactions and translates driver errors into the
// sentinel errors the services map to gRPC status codes.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
)

// Sentinel errors returned by stores; services map them to status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

//go:embed migrations
var migrations embed.FS

// dialect is what differs between the engines: driver, placeholders, migrations,
// constraint errors and how write transactions are run. It is the store
// interface of this package; SQLite and PostgreSQL implement it.
type dialect interface {
	name() string
	migrations() (goose.Dialect, string, []goose.ProviderOption)
	rebind(query string) string
	isUniqueViolation(err error) bool
	// forUpdate is the clause that locks rows a write transaction reads.
	forUpdate() string
	// event appends e to the change log of tx, at once or just before tx commits.
	event(ctx context.Context, tx *Tx, e event) error
	// afterCopy brings counters in line with rows copied in by Copy.
	afterCopy(ctx context.Context, tx *Tx) error
	// write runs fn in a write transaction, committed before write returns.
	write(ctx context.Context, fn func(*Tx) error) error
	// writeBulk runs fn over [0, n) in pieces [lo, hi), each in a write
	// transaction committed before the next begins (WriteBulk).
	writeBulk(ctx context.Context, n int, fn func(tx *Tx, lo, hi int) error) error
	close() error
}

// DB is an open store.
type DB struct {
	read *sql.DB
	d    dialect

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when events commit

	trace atomic.Pointer[func(query string, args []any)]
}

// Trace calls fn with every read query run by QueryContext (tests use it to
// EXPLAIN the queries the API makes); nil stops tracing.
func (db *DB) Trace(fn func(query string, args []any)) {
	if fn == nil {
		db.trace.Store(nil)
		return
	}
	db.trace.Store(&fn)
}

// Explain returns the plan of a read query: SQLite's EXPLAIN QUERY PLAN, or
// PostgreSQL's EXPLAIN with sequential scans discouraged (enable_seqscan=off),
// since the planner scans small test tables whatever their indexes.
func (db *DB) Explain(ctx context.Context, query string, args ...any) (string, error) {
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	prefix := "EXPLAIN QUERY PLAN "
	if db.Engine() == "postgres" {
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			return "", err
		}
		prefix = "EXPLAIN "
	}
	rows, err := tx.QueryContext(ctx, prefix+db.d.rebind(query), args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var plan strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fmt.Fprintln(&plan, vals[len(vals)-1]) // SQLite: id, parent, notused, detail; PostgreSQL: one line
	}
	return plan.String(), rows.Err()
}

// Open opens the store named by dsn: a postgres:// (or postgresql://) URL, or a
// SQLite file path, and migrates it to the newest schema.
func Open(ctx context.Context, dsn string) (*DB, error) {
	var (
		db  = &DB{changed: make(chan struct{})}
		err error
	)
	if IsPostgres(dsn) {
		db.read, db.d, err = openPostgres(dsn, db)
	} else {
		db.read, db.d, err = openSQLite(dsn, db)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// IsPostgres reports whether dsn names a PostgreSQL store rather than a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func (db *DB) migrate(ctx context.Context) error {
	gd, dir, opts := db.d.migrations()
	sub, err := fs.Sub(migrations, "migrations/"+dir)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(gd, db.read, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the store.
func (db *DB) Close() error {
	return errors.Join(db.d.close(), db.read.Close())
}

// Engine names the engine: "sqlite" or "postgres".
func (db *DB) Engine() string { return db.d.name() }

// Write runs fn in a write transaction. Either everything fn wrote is committed
// and durable when Write returns nil, or nothing is.
func (db *DB) Write(ctx context.Context, fn func(*Tx) error) error {
	return db.d.write(ctx, fn)
}

// WriteBulk writes n items of a bulk job, such as the rows of a roster import,
// without holding up single writes: fn(tx, lo, hi) writes items lo to hi-1, and
// each piece is its own transaction, committed and durable before the next
// piece starts. The store chooses the pieces: on SQLite the writer gives a piece
// of a few dozen items a commit shared with the single writes waiting, and the
// whole rest when none waits; on PostgreSQL pieces are pgBulkPiece items, so no
// transaction of the job runs long. When WriteBulk returns an error, the pieces
// before the failing one stay committed.
func (db *DB) WriteBulk(ctx context.Context, n int, fn func(tx *Tx, lo, hi int) error) error {
	if n <= 0 {
		return nil
	}
	return db.d.writeBulk(ctx, n, fn)
}

// QueryContext runs a read query outside any transaction.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if trace := db.trace.Load(); trace != nil {
		(*trace)(query, args)
	}
	return db.read.QueryContext(ctx, db.d.rebind(query), args...)
}

// QueryRowContext runs a single-row read query outside any transaction.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.read.QueryRowContext(ctx, db.d.rebind(query), args...)
}

// Translate maps driver errors to ErrNotFound and ErrConflict, wrapping the
// original; other errors are returned unchanged.
func (db *DB) Translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case db.d.isUniqueViolation(err):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// EventsChanged returns a channel that is closed when events commit after the
// call; call it again for the next change.
func (db *DB) EventsChanged() <-chan struct{} {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.changed
}

func (db *DB) notifyEvents() {
	db.mu.Lock()
	close(db.changed)
	db.changed = make(chan struct{})
	db.mu.Unlock()
}

// Tx is a write transaction.
type Tx struct {
	tx     *sql.Tx
	db     *DB
	events int
	// pending are events held back until just before commit (PostgreSQL), so
	// that the lock that orders the event log is held only while committing.
	pending []event
	// shared marks a transaction that carries other callers' writes too (SQLite's
	// group commit): a caller's cancellation must not interrupt a statement, since
	// the driver would abort the whole shared transaction. It is checked between
	// statements instead.
	shared bool
}

func (tx *Tx) ctx(ctx context.Context) (context.Context, error) {
	if !tx.shared {
		return ctx, nil
	}
	return context.WithoutCancel(ctx), ctx.Err()
}

// ExecContext runs a statement in the transaction.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, err := tx.ctx(ctx)
	if err != nil {
		return nil, err
	}
	res, err := tx.tx.ExecContext(ctx, tx.db.d.rebind(query), args...)
	return res, tx.db.Translate(err)
}

// QueryContext runs a query in the transaction.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, err := tx.ctx(ctx)
	if err != nil {
		return nil, err
	}
	return tx.tx.QueryContext(ctx, tx.db.d.rebind(query), args...)
}

// QueryRowContext runs a single-row query in the transaction.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx, _ = tx.ctx(ctx) // a cancelled caller is stopped at its next Exec or Query
	return tx.tx.QueryRowContext(ctx, tx.db.d.rebind(query), args...)
}

// event is one entry of the change log.
type event struct {
	typ, resource, actor string
	at                   int64 // Unix microseconds
}

// Event appends an event to the change log in this transaction. Its sequence
// number is given when the transaction commits, so that the log is gap-free and
// in commit order; nothing in a write transaction reads the events table.
func (tx *Tx) Event(ctx context.Context, typ, resource, actor string, at time.Time) error {
	err := tx.db.d.event(ctx, tx, event{typ: typ, resource: resource, actor: actor, at: at.UnixMicro()})
	if err == nil {
		tx.events++
	}
	return err
}

// ClaimRequestID records that a create with this request id (AIP-155) makes
// resource. If the id was used before, it records nothing and returns the
// resource the first call made; a retry returns that resource instead of making
// another. A concurrent first use on another server waits for it to commit.
func (tx *Tx) ClaimRequestID(ctx context.Context, principal, method, requestID, resource string, at time.Time) (string, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO request_ids (principal, method, request_id, resource, create_time)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, principal, method, requestID, resource, at.UnixMicro())
	if err != nil {
		return "", err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return "", err
	}
	var first string
	err = tx.QueryRowContext(ctx, `SELECT resource FROM request_ids WHERE principal = ? AND method = ? AND request_id = ?`,
		principal, method, requestID).Scan(&first)
	return first, tx.Translate(err)
}

// SetRequestResource names the resource of a request id claimed earlier in this
// transaction, for creates whose name is known only once they are made.
func (tx *Tx) SetRequestResource(ctx context.Context, principal, method, requestID, resource string) error {
	_, err := tx.ExecContext(ctx, `UPDATE request_ids SET resource = ? WHERE principal = ? AND method = ? AND request_id = ?`,
		resource, principal, method, requestID)
	return err
}

// ForUpdate is the clause to append to a SELECT whose rows the transaction is
// about to change, so that concurrent servers wait instead of deciding on stale
// data ("" on SQLite, where there is one writer).
func (tx *Tx) ForUpdate() string { return tx.db.d.forUpdate() }

// Engine names the engine, like DB.Engine.
func (tx *Tx) Engine() string { return tx.db.Engine() }

// Translate maps driver errors like DB.Translate.
func (tx *Tx) Translate(err error) error { return tx.db.Translate(err) }

// Querier is what reads need; both DB and Tx provide it.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Counts runs a query whose rows are (key, count) pairs, such as a COUNT(*) with
// GROUP BY, and returns them as a map.
func Counts(ctx context.Context, q Querier, query string, args ...any) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			key string
			n   int64
		)
		if err := rows.Scan(&key, &n); err != nil {
			return nil, err
		}
		out[key] = n
	}
	return out, rows.Err()
}

// Scanner is a row to read: *sql.Row or *sql.Rows.
type Scanner interface{ Scan(dest ...any) error }

// All runs a query and reads every row with scan.
func All[T any](ctx context.Context, q Querier, scan func(Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Snapshot runs fn with reads that all see the same moment of the store (one
// read transaction; REPEATABLE READ on PostgreSQL).
func (db *DB) Snapshot(ctx context.Context, fn func(Querier) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.Engine() == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.read.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(&snapshot{tx: tx, db: db})
}

type snapshot struct {
	tx *sql.Tx
	db *DB
}

func (s *snapshot) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.tx.QueryContext(ctx, s.db.d.rebind(query), args...)
}

func (s *snapshot) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return s.tx.QueryRowContext(ctx, s.db.d.rebind(query), args...)
}
