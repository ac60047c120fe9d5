package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/pressly/goose/v3"

	"github.com/knk-id/knk/internal/metrics"
)

// maxBatch bounds how many write operations share one SQLite commit.
const maxBatch = 256

// While single writes are under way, a bulk job (WriteBulk) writes bulkPiece
// items per commit, and the next piece waits until the single writes have had
// as much of the writer's time as that commit took, or bulkWait times that
// time has passed. The job gets at most about half of the writer, and single
// writes never wait behind more than one small piece. With no single write
// under way, the job's rest goes in one commit.
const (
	bulkPiece = 32
	bulkWait  = 4
)

// sqliteDialect funnels every write through one goroutine that owns the only
// write connection. Operations that arrive while a transaction is running are
// run together in the next one, each inside its own savepoint, and share one
// commit (group commit); a failing operation rolls back to its savepoint without
// touching the others.
//
// Durability is pipelined: the write connection commits with synchronous=NORMAL
// (the commit's frames are in the WAL file but not yet forced to disk), then a
// second goroutine fsyncs the WAL file and only then answers the callers, while
// the writer already runs the next batch. A commit's frames are durable once the
// WAL is synced, which is what synchronous=FULL would do inside COMMIT, so every
// caller is still answered only after its writes are on disk.
//
// Bulk jobs (WriteBulk) wait in a queue of their own, and a commit takes at most
// one piece of one of them, after the single writes: a small piece, and not
// before the single writes have had their share of the writer (bulkPiece), when
// single writes are under way, else the job's rest. An import therefore slows down to let single
// writes through instead of making each of them wait for a long batch.
type sqliteDialect struct {
	db      *DB
	conn    *sql.DB
	walPath string
	queue   chan *writeOp
	bulkq   chan *writeOp
	done    chan struct{}
	syncq   chan committed
	synced  chan struct{} // closed when the syncer has answered everything

	mu     sync.RWMutex // held for reading while enqueueing, for writing by close
	closed bool

	singles atomic.Int64 // single writes queued, running or waiting for their fsync
}

type writeOp struct {
	ctx context.Context
	fn  func(*Tx) error
	err chan error

	// A piece of a bulk job writes items [lo, hi) of n with bulk; the writer
	// sets hi (and fn) when it takes the piece.
	bulk      func(tx *Tx, lo, hi int) error
	lo, hi, n int
}

// committed is a batch whose transaction committed, waiting for the WAL fsync.
type committed struct {
	batch  []*writeOp
	errs   []error
	events int
}

func sqliteDSN(path string, write bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL") // the syncer fsyncs the WAL before anyone is answered
	q.Set("_stmt_cache_size", "64")
	q.Set("_cache_size", "-65536") // 64 MiB of page cache per connection
	q.Set("_mutex", "no")          // database/sql never shares a connection between goroutines
	if write {
		q.Set("_txlock", "immediate")
	} else {
		q.Set("mode", "rw")
	}
	return "file:" + path + "?" + q.Encode()
}

// writerDriver is mattn's driver with automatic checkpoints turned off: the
// write connection never stops a commit to copy the WAL into the database file;
// checkpointer does that beside it.
var writerDriver = driverWith("sqlite3-knk-writer", "PRAGMA wal_autocheckpoint = 0")

// readerDriver is mattn's driver with reads served from a memory map of the
// database file instead of a read system call and a copy per page.
var readerDriver = driverWith("sqlite3-knk-reader", "PRAGMA mmap_size = 1073741824")

// driverWith registers, on first use, mattn's driver under name with pragma run
// on every new connection, and returns the name.
func driverWith(name, pragma string) func() string {
	return sync.OnceValue(func() string {
		sql.Register(name, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec(pragma, nil)
			return err
		}})
		return name
	})
}

// checkpointEvery is how often the WAL is copied into the database file.
const checkpointEvery = 500 * time.Millisecond

func openSQLite(path string, db *DB) (*sql.DB, dialect, error) {
	if err := createPrivate(path); err != nil {
		return nil, nil, err
	}
	conn, err := sql.Open(writerDriver(), sqliteDSN(path, true))
	if err != nil {
		return nil, nil, err
	}
	conn.SetMaxOpenConns(1)
	if err := conn.Ping(); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := privateSidecars(path); err != nil {
		conn.Close()
		return nil, nil, err
	}
	read, err := sql.Open(readerDriver(), sqliteDSN(path, false))
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	// Reads are CPU-bound and every SQLite connection takes shared locks on the
	// WAL index: past a few connections per core they only contend, so callers
	// beyond that wait for a connection instead of opening more.
	readers := 4 * runtime.GOMAXPROCS(0)
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	d := &sqliteDialect{db: db, conn: conn, walPath: path + "-wal", queue: make(chan *writeOp, maxBatch),
		bulkq: make(chan *writeOp, 16),
		done:  make(chan struct{}), syncq: make(chan committed, 16), synced: make(chan struct{})}
	go d.loop()
	go d.syncer()
	go d.checkpointer(read)
	return read, d, nil
}

func (d *sqliteDialect) name() string { return "sqlite" }

func (d *sqliteDialect) migrations() (goose.Dialect, string, []goose.ProviderOption) {
	return goose.DialectSQLite3, "sqlite", nil
}

func (d *sqliteDialect) forUpdate() string { return "" }

// afterCopy has nothing to do: SQLite's counters are the rows themselves.
func (d *sqliteDialect) afterCopy(context.Context, *Tx) error { return nil }

// event inserts the event at once: with one writer, INTEGER PRIMARY KEY's max+1
// is gap-free and in commit order.
func (d *sqliteDialect) event(ctx context.Context, tx *Tx, e event) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO events (type, resource, actor, create_time) VALUES (?, ?, ?, ?)`,
		e.typ, e.resource, e.actor, e.at)
	return err
}

func (d *sqliteDialect) rebind(query string) string { return query }

func (d *sqliteDialect) isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

func (d *sqliteDialect) write(ctx context.Context, fn func(*Tx) error) error {
	d.singles.Add(1)
	defer d.singles.Add(-1)
	return d.run(d.queue, &writeOp{ctx: ctx, fn: fn, err: make(chan error, 1)})
}

func (d *sqliteDialect) writeBulk(ctx context.Context, n int, fn func(tx *Tx, lo, hi int) error) error {
	for lo := 0; lo < n; {
		op := &writeOp{ctx: ctx, err: make(chan error, 1), bulk: fn, lo: lo, n: n}
		if err := d.run(d.bulkq, op); err != nil {
			return err
		}
		lo = op.hi // set by the writer before it answered
	}
	return nil
}

// run queues op on q and waits until it is committed and durable, or failed.
func (d *sqliteDialect) run(q chan *writeOp, op *writeOp) error {
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return errors.New("store is closed")
	}
	select {
	case q <- op:
	case <-op.ctx.Done():
		d.mu.RUnlock()
		return op.ctx.Err()
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
	<-d.synced
	return d.conn.Close()
}

func (d *sqliteDialect) loop() {
	var (
		held *writeOp      // a bulk piece waiting for its turn
		owed time.Duration // commit time single writes are owed before the next bulk piece
		due  time.Time     // when the next bulk piece goes even so
	)
	for {
		var (
			batch []*writeOp
			bulk  = held
			bulkq = d.bulkq
			wake  <-chan time.Time
		)
		held = nil
		if bulk != nil {
			bulkq = nil // one bulk piece at a time
			wake = time.After(time.Until(due))
		}
		select {
		case op := <-d.queue:
			batch = append(batch, op)
		case bulk = <-bulkq:
		case <-wake:
		case <-d.done:
			if bulk != nil {
				bulk.err <- errors.New("store is closed")
			}
			d.drain()
			close(d.syncq)
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
		if bulk == nil {
			select {
			case bulk = <-d.bulkq:
			default:
			}
		}
		if bulk != nil {
			// Single writers waiting for the fsync of the last commit will be
			// back at once: they count as under way too.
			underWay := len(batch) > 0 || d.singles.Load() > 0
			switch {
			case !underWay:
				bulk.hi = bulk.n
			case owed > 0 && time.Now().Before(due):
				held, bulk = bulk, nil
			default:
				bulk.hi = min(bulk.n, bulk.lo+bulkPiece)
			}
		}
		if bulk != nil {
			b := bulk
			b.fn = func(tx *Tx) error { return b.bulk(tx, b.lo, b.hi) }
			batch = append(batch, b)
		}
		if len(batch) == 0 {
			continue // woken to look at the held piece again
		}
		start := time.Now()
		d.commit(batch)
		took := time.Since(start)
		if bulk == nil {
			owed -= took
			continue
		}
		owed, due = took, time.Now().Add(bulkWait*took)
	}
}

// drain fails the operations still queued at close.
func (d *sqliteDialect) drain() {
	for {
		select {
		case op := <-d.queue:
			op.err <- errors.New("store is closed")
		case op := <-d.bulkq:
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
		start := time.Now()
		err = sqlTx.Commit()
		metrics.StoreCommitSeconds.WithLabelValues("sqlite").Observe(time.Since(start).Seconds())
		return err
	}()
	metrics.StoreWriteBatch.WithLabelValues("sqlite").Observe(float64(len(batch)))
	if err != nil {
		metrics.StoreWriteErrors.WithLabelValues("sqlite", "commit").Inc()
		for i, op := range batch {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("commit: %w", err)
			}
			op.err <- errs[i]
		}
		return
	}
	d.syncq <- committed{batch: batch, errs: errs, events: events}
}

// syncer fsyncs the WAL for every committed batch waiting (one fsync for all of
// them) and then answers their callers.
func (d *sqliteDialect) syncer() {
	defer close(d.synced)
	for c := range d.syncq {
		waiting := []committed{c}
	more:
		for {
			select {
			case c, ok := <-d.syncq:
				if !ok {
					break more
				}
				waiting = append(waiting, c)
			default:
				break more
			}
		}
		start := time.Now()
		err := syncFile(d.walPath)
		metrics.StoreFsyncSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			metrics.StoreWriteErrors.WithLabelValues("sqlite", "fsync").Inc()
		}
		events := 0
		for _, c := range waiting {
			events += c.events
		}
		if events > 0 {
			d.db.notifyEvents() // before answering: a caller that wrote an event sees the change signalled
		}
		for _, c := range waiting {
			for i, op := range c.batch {
				if c.errs[i] == nil && err != nil {
					c.errs[i] = fmt.Errorf("commit not made durable: %w", err)
				}
				op.err <- c.errs[i]
			}
		}
	}
}

// checkpointer copies committed WAL content into the database file with passive
// checkpoints, which never block the writer or readers, and restarts the WAL
// once everything is copied so that it does not grow without bound.
func (d *sqliteDialect) checkpointer(read *sql.DB) {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return
		case <-t.C:
			read.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// createPrivate makes sure the database file exists with mode 0600 before
// SQLite opens it (SQLite would create it 0644 less the umask), and takes group
// and other access away from an existing one: it holds NIKs, and the signing
// keys' sealed seeds. SQLite creates the -wal and -shm files with the database
// file's mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(st.Mode().Perm() &^ 0o077); err != nil {
			return fmt.Errorf("make %s private (mode 0600): %w", path, err)
		}
	}
	return nil
}

// privateSidecars takes group and other access away from the -wal and -shm
// files of an open database, in case they were made before createPrivate ran.
func privateSidecars(path string) error {
	for _, p := range []string{path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&^0o077); err != nil {
				return fmt.Errorf("make %s private (mode 0600): %w", p, err)
			}
		}
	}
	return nil
}

// syncFile forces a file's written data to disk.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
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
