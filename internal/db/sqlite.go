package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"github.com/mattn/go-sqlite3"
	"github.com/pressly/goose/v3"
)

// maxBatch bounds how many write operations share one SQLite commit.
const maxBatch = 256

// sqliteDialect funnels every write through one goroutine that owns the only
// write connection. Operations that arrive while a commit is in flight are run
// together in the next transaction, each inside its own savepoint, and share one
// commit (group commit): every caller is answered only after the fsync of the
// commit that holds its writes, and a failing operation rolls back to its
// savepoint without touching the others.
type sqliteDialect struct {
	db    *DB
	conn  *sql.DB
	queue chan *writeOp
	done  chan struct{}

	mu     sync.RWMutex // held for reading while enqueueing, for writing by close
	closed bool
}

type writeOp struct {
	ctx context.Context
	fn  func(*Tx) error
	err chan error
}

func sqliteDSN(path string, write bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "FULL") // a commit is on disk when it returns
	if write {
		q.Set("_txlock", "immediate")
	} else {
		q.Set("mode", "rw")
	}
	return "file:" + path + "?" + q.Encode()
}

func openSQLite(path string, db *DB) (*sql.DB, dialect, error) {
	conn, err := sql.Open("sqlite3", sqliteDSN(path, true))
	if err != nil {
		return nil, nil, err
	}
	conn.SetMaxOpenConns(1)
	if err := conn.Ping(); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	read, err := sql.Open("sqlite3", sqliteDSN(path, false))
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	read.SetMaxIdleConns(8)
	d := &sqliteDialect{db: db, conn: conn, queue: make(chan *writeOp, maxBatch), done: make(chan struct{})}
	go d.loop()
	return read, d, nil
}

func (d *sqliteDialect) name() string { return "sqlite" }

func (d *sqliteDialect) migrations() (goose.Dialect, string, []goose.ProviderOption) {
	return goose.DialectSQLite3, "sqlite", nil
}

func (d *sqliteDialect) forUpdate() string { return "" }

// afterCopy has nothing to do: SQLite's counters are the rows themselves.
func (d *sqliteDialect) afterCopy(context.Context, *Tx) error { return nil }

func (d *sqliteDialect) eventSQL() string {
	return `INSERT INTO events (type, resource, actor, create_time) VALUES (?, ?, ?, ?)`
}

func (d *sqliteDialect) rebind(query string) string { return query }

func (d *sqliteDialect) isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

func (d *sqliteDialect) write(ctx context.Context, fn func(*Tx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, err: make(chan error, 1)}
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return errors.New("store is closed")
	}
	select {
	case d.queue <- op:
	case <-ctx.Done():
		d.mu.RUnlock()
		return ctx.Err()
	}
	d.mu.RUnlock()
	// Once queued the operation runs or is skipped as a whole; wait for the
	// verdict so the caller never mistakes a committed write for a failed one.
	return <-op.err
}

func (d *sqliteDialect) close() error {
	d.mu.Lock()
	d.closed = true // no write is enqueued after this, so the loop's drain sees them all
	d.mu.Unlock()
	close(d.done)
	return d.conn.Close()
}

func (d *sqliteDialect) loop() {
	for {
		var batch []*writeOp
		select {
		case op := <-d.queue:
			batch = append(batch, op)
		case <-d.done:
			d.drain()
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case op := <-d.queue:
				batch = append(batch, op)
			default:
				break fill
			}
		}
		d.commit(batch)
	}
}

// drain fails the operations still queued at close.
func (d *sqliteDialect) drain() {
	for {
		select {
		case op := <-d.queue:
			op.err <- errors.New("store is closed")
		default:
			return
		}
	}
}

func (d *sqliteDialect) commit(batch []*writeOp) {
	errs := make([]error, len(batch))
	events := 0
	err := func() error {
		sqlTx, err := d.conn.BeginTx(context.Background(), nil)
		if err != nil {
			return err
		}
		defer sqlTx.Rollback()
		for i, op := range batch {
			tx := &Tx{tx: sqlTx, db: d.db, shared: true}
			errs[i] = d.runOp(sqlTx, tx, op)
			if errs[i] == nil {
				events += tx.events
			}
		}
		return sqlTx.Commit()
	}()
	if err != nil {
		events = 0
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("commit: %w", err)
			}
		}
	}
	if events > 0 {
		d.db.notifyEvents()
	}
	for i, op := range batch {
		op.err <- errs[i]
	}
}

// runOp runs one operation inside a savepoint of the shared transaction.
func (d *sqliteDialect) runOp(sqlTx *sql.Tx, tx *Tx, op *writeOp) (err error) {
	if err := op.ctx.Err(); err != nil {
		return err
	}
	if _, err := sqlTx.Exec("SAVEPOINT op"); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
		if err != nil {
			if _, rbErr := sqlTx.Exec("ROLLBACK TO op; RELEASE op"); rbErr != nil {
				err = errors.Join(err, rbErr)
			}
			return
		}
		_, err = sqlTx.Exec("RELEASE op")
	}()
	return op.fn(tx)
}
