package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/db/dbtest"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// The store's contract is tested on every engine (dbtest.Engines: SQLite always,
// PostgreSQL when KNK_TEST_POSTGRES_DSN is set), each subtest on a fresh store;
// the tests of SQLite's group commit (several writes sharing one transaction)
// run on SQLite only, and the test of PostgreSQL's commit order on PostgreSQL.

// open opens (and migrates) the store at dsn and closes it when the test ends.
func open(t *testing.T, dsn string) *db.DB {
	t.Helper()
	store, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// newDB opens a fresh SQLite store, for the tests of SQLite's group commit.
func newDB(t *testing.T) *db.DB {
	t.Helper()
	return open(t, dbtest.DSN(t, "sqlite"))
}

// forEachEngine runs test once per engine, as a subtest named after it.
func forEachEngine(t *testing.T, test func(t *testing.T, engine string)) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) { test(t, engine) })
	}
}

// addOrg inserts an organization and its organization.created event, as
// OrganizationService does.
func addOrg(ctx context.Context, tx *db.Tx, id string) error {
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO organizations (id, kind, display_name, province_code, create_time) VALUES (?, 2, ?, '', ?)`,
		id, strings.ToUpper(id), t0.UnixMicro()); err != nil {
		return err
	}
	return tx.Event(ctx, "organization.created", "organizations/"+id, "organizations/admin", t0)
}

func orgIDs(t *testing.T, store *db.DB) []string {
	t.Helper()
	rows, err := store.QueryContext(context.Background(), `SELECT id FROM organizations ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

type event struct {
	seq      int64
	resource string
}

func events(t *testing.T, store *db.DB) []event {
	t.Helper()
	return eventsAfter(t, store, 0)
}

// eventsAfter lists the committed events after sequence last, as a watcher does.
func eventsAfter(t *testing.T, store *db.DB, last int64) []event {
	t.Helper()
	rows, err := store.QueryContext(context.Background(), `SELECT sequence, resource FROM events WHERE sequence > ? ORDER BY sequence`, last)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.seq, &e.resource); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkGapFree fails unless the events are numbered 1..n without a gap.
func checkGapFree(t *testing.T, evs []event) {
	t.Helper()
	for i, e := range evs {
		if e.seq != int64(i+1) {
			t.Fatalf("event %d has sequence %d; sequences must be 1..%d without gaps: %v", i, e.seq, len(evs), evs)
		}
	}
}

func TestOpenMigratesANewStoreAndReopenKeepsData(t *testing.T) {
	forEachEngine(t, testOpenMigratesANewStoreAndReopenKeepsData)
}

func testOpenMigratesANewStoreAndReopenKeepsData(t *testing.T, engine string) {
	path := dbtest.DSN(t, engine)
	ctx := context.Background()
	store, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if store.Engine() != engine {
		t.Errorf("engine = %q, want %s", store.Engine(), engine)
	}
	for _, table := range []string{"organizations", "api_keys", "cadres", "request_ids", "events"} {
		var n int
		if err := store.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("new store: table %s: %d rows, %v", table, n, err)
		}
	}
	if err := store.Write(ctx, func(tx *db.Tx) error { return addOrg(ctx, tx, "ksbsi") }); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	again := open(t, path) // migrating an up-to-date store is a no-op
	if got := orgIDs(t, again); len(got) != 1 || got[0] != "ksbsi" {
		t.Errorf("after reopen: organizations %v, want [ksbsi]", got)
	}
	if evs := events(t, again); len(evs) != 1 || evs[0] != (event{1, "organizations/ksbsi"}) {
		t.Errorf("after reopen: events %v", evs)
	}
	// The sequence goes on where it stopped.
	if err := again.Write(ctx, func(tx *db.Tx) error { return addOrg(ctx, tx, "kspsi") }); err != nil {
		t.Fatal(err)
	}
	checkGapFree(t, events(t, again))
}

func TestOpenRefusesWhatItCannotOpen(t *testing.T) {
	notDB := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("name,nik,province_code\n", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, dsn string }{
		{"not a database", notDB},
		{"missing directory", filepath.Join(t.TempDir(), "no", "such", "dir", "knk.db")},
		{"a directory", t.TempDir()},
		{"no PostgreSQL server", "postgres://postgres@127.0.0.1:1/knk?sslmode=disable&connect_timeout=5"},
	}
	for _, tt := range tests {
		store, err := db.Open(context.Background(), tt.dsn)
		if err == nil {
			store.Close()
			t.Errorf("%s: Open(%q) succeeded", tt.name, tt.dsn)
		}
	}
}

func TestConcurrentWritesAllCommitWithGapFreeSequences(t *testing.T) {
	forEachEngine(t, testConcurrentWritesAllCommitWithGapFreeSequences)
}

func testConcurrentWritesAllCommitWithGapFreeSequences(t *testing.T, engine string) {
	store := open(t, dbtest.DSN(t, engine))
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			errs[i] = store.Write(ctx, func(tx *db.Tx) error { return addOrg(ctx, tx, fmt.Sprintf("org-%03d", i)) })
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if got := orgIDs(t, store); len(got) != n {
		t.Errorf("%d organizations stored, want %d", len(got), n)
	}
	evs := events(t, store)
	if len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	checkGapFree(t, evs)
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.resource] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct event resources, want %d", len(seen), n)
	}
}

// TestManyReadersDuringWrites runs far more concurrent readers than the store
// keeps read connections, while writes commit: every read completes, sees only
// committed data (the organization count never goes down for one reader and
// matches the events), and a reader whose context is cancelled gets its
// context's error.
func TestManyReadersDuringWrites(t *testing.T) {
	forEachEngine(t, testManyReadersDuringWrites)
}

func testManyReadersDuringWrites(t *testing.T, engine string) {
	store := open(t, dbtest.DSN(t, engine))
	ctx := context.Background()
	const writes, readers, reads = 100, 256, 20
	var wg sync.WaitGroup
	for i := range writes {
		wg.Go(func() {
			if err := store.Write(ctx, func(tx *db.Tx) error { return addOrg(ctx, tx, fmt.Sprintf("org-%03d", i)) }); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			last := 0
			for range reads {
				var orgs, evs int
				err := store.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM organizations),
					(SELECT COUNT(*) FROM events WHERE type = 'organization.created')`).Scan(&orgs, &evs)
				switch {
				case err != nil:
					t.Errorf("reader %d: %v", r, err)
					return
				case orgs != evs:
					t.Errorf("reader %d saw %d organizations and %d events: half a write", r, orgs, evs)
				case orgs < last:
					t.Errorf("reader %d saw %d organizations after %d", r, orgs, last)
				}
				last = orgs
			}
		})
	}
	// Readers that have given up, among the busy ones.
	for range 16 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			var n int
			if err := store.QueryRowContext(ctx, `SELECT COUNT(*) FROM organizations`).Scan(&n); !errors.Is(err, context.Canceled) {
				t.Errorf("a cancelled read: %v, want context.Canceled", err)
			}
		})
	}
	wg.Wait()
	if got := orgIDs(t, store); len(got) != writes {
		t.Errorf("%d organizations stored, want %d", len(got), writes)
	}
}

// queued counts the Write calls waiting for their verdict, that is whose
// operations are in SQLite's writer's queue (or running). It reads the goroutine dump:
// Write gives no other sign that an operation is queued, and the batch tests
// need to know which operations share a transaction.
func queued() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[chan receive") && strings.Contains(g, "internal/db.(*sqliteDialect).write(") {
			count++
		}
	}
	return count
}

// waitQueued waits until n Write calls are queued.
func waitQueued(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queued() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", queued(), n)
		}
		runtime.Gosched()
	}
}

// batchOp is one operation of a shared batch: what it does and what Write returned.
type batchOp struct {
	ctx context.Context
	fn  func(context.Context, *db.Tx) error
	err chan error
	// shared is set by fn when the transaction already holds uncommitted rows of
	// operations queued before it, i.e. when it runs in their batch.
	shared bool
}

// runBatch makes the operations share one SQLite transaction (group commit, so
// the tests that use it run on SQLite only): a first Write holds the
// writer while ops are queued one after the other, in order, then lets it go.
// It returns each op's Write error, in order, and fails the test unless the op
// after the first saw the first's uncommitted rows (else the test proves nothing).
func runBatch(t *testing.T, store *db.DB, ops ...*batchOp) []error {
	t.Helper()
	base := queued() // writes of other tests that never return
	hold, held := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release() // even when the test fails early, so that the store can close
	holdErr := make(chan error, 1)
	go func() {
		holdErr <- store.Write(context.Background(), func(tx *db.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	for i, op := range ops {
		op.err = make(chan error, 1)
		go func() {
			op.err <- store.Write(op.ctx, func(tx *db.Tx) error {
				var inTx, committed int
				tx.QueryRowContext(context.Background(), `SELECT count(*) FROM organizations`).Scan(&inTx)
				store.QueryRowContext(context.Background(), `SELECT count(*) FROM organizations`).Scan(&committed)
				op.shared = inTx > committed
				return op.fn(op.ctx, tx)
			})
		}()
		waitQueued(t, base+i+2)
	}
	release()
	if err := <-holdErr; err != nil {
		t.Fatalf("holding write: %v", err)
	}
	errs := make([]error, len(ops))
	for i, op := range ops {
		errs[i] = <-op.err
	}
	if !ops[1].shared {
		t.Fatal("op 1 did not run in the same transaction as op 0; the test proves nothing")
	}
	return errs
}

var errRefused = errors.New("refused by the business rule")

// SQLite only: a batch is SQLite's group commit; on PostgreSQL every write has
// its own transaction.
func TestAFailingWriteLeavesNothingAndItsBatchCommits(t *testing.T) {
	tests := []struct {
		name string
		fn   func(ctx context.Context, tx *db.Tx) error
		want string // in the failing Write's error
	}{
		{"returns an error", func(ctx context.Context, tx *db.Tx) error {
			if err := addOrg(ctx, tx, "bad"); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, organization_id, secret_hash, create_time) VALUES ('k1', 'bad', x'00', 0)`); err != nil {
				return err
			}
			return fmt.Errorf("create: %w", errRefused)
		}, errRefused.Error()},
		{"panics", func(ctx context.Context, tx *db.Tx) error {
			if err := addOrg(ctx, tx, "bad"); err != nil {
				return err
			}
			panic("nil map in a handler")
		}, "nil map in a handler"},
		{"violates a constraint", func(ctx context.Context, tx *db.Tx) error {
			if err := addOrg(ctx, tx, "bad"); err != nil {
				return err
			}
			return addOrg(ctx, tx, "first") // the first op of the batch took this id
		}, "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newDB(t)
			bg := context.Background()
			good := func(id string) *batchOp {
				return &batchOp{ctx: bg, fn: func(ctx context.Context, tx *db.Tx) error { return addOrg(ctx, tx, id) }}
			}
			changed := store.EventsChanged()
			ops := []*batchOp{good("first"), {ctx: bg, fn: tt.fn}, good("last")}
			errs := runBatch(t, store, ops...)

			if errs[0] != nil || errs[2] != nil || !ops[2].shared {
				t.Errorf("the others in the batch: %v, %v (last shared the transaction: %v)", errs[0], errs[2], ops[2].shared)
			}
			if errs[1] == nil || !strings.Contains(errs[1].Error(), tt.want) {
				t.Errorf("failing write returned %v, want an error containing %q", errs[1], tt.want)
			}
			if got := strings.Join(orgIDs(t, store), ","); got != "first,last" {
				t.Errorf("organizations %s, want first,last", got)
			}
			var keys int
			store.QueryRowContext(bg, `SELECT count(*) FROM api_keys`).Scan(&keys)
			if keys != 0 {
				t.Errorf("%d api keys left by the failed write", keys)
			}
			evs := events(t, store)
			want := []event{{1, "organizations/first"}, {2, "organizations/last"}}
			if fmt.Sprint(evs) != fmt.Sprint(want) {
				t.Errorf("events %v, want %v", evs, want)
			}
			select {
			case <-changed:
			default:
				t.Error("EventsChanged was not closed by the batch's commit")
			}
			// The writer is still alive.
			if err := store.Write(bg, func(tx *db.Tx) error { return addOrg(bg, tx, "after") }); err != nil {
				t.Fatalf("write after the failure: %v", err)
			}
			checkGapFree(t, events(t, store))
		})
	}
}

// write runs store.Write and turns a panic that escapes it into an error that
// does not mention "panic", so that a store that lets fn's panic through to the
// caller fails the test instead of crashing the test binary.
func write(ctx context.Context, store *db.DB, fn func(*db.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("Write did not recover: it raised %q again in its caller", fmt.Sprint(p))
		}
	}()
	return store.Write(ctx, fn)
}

func TestAPanickingWriteDoesNotKillTheWriter(t *testing.T) {
	forEachEngine(t, testAPanickingWriteDoesNotKillTheWriter)
}

func testAPanickingWriteDoesNotKillTheWriter(t *testing.T, engine string) {
	store := open(t, dbtest.DSN(t, engine))
	ctx := context.Background()
	for i := range 3 {
		err := write(ctx, store, func(tx *db.Tx) error {
			addOrg(ctx, tx, fmt.Sprintf("panic-%d", i))
			var m map[string]int
			m["x"]++ // a real runtime panic
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "panic") {
			t.Errorf("panicking write %d returned %v, want an error about the panic", i, err)
		}
	}
	if err := store.Write(ctx, func(tx *db.Tx) error { return addOrg(ctx, tx, "ok") }); err != nil {
		t.Fatalf("write after panics: %v", err)
	}
	if got := strings.Join(orgIDs(t, store), ","); got != "ok" {
		t.Errorf("organizations %s, want ok", got)
	}
	if evs := events(t, store); len(evs) != 1 || evs[0].seq != 1 {
		t.Errorf("events %v, want one with sequence 1", evs)
	}
}

func TestAWriteWithACancelledContextChangesNothing(t *testing.T) {
	forEachEngine(t, testAWriteWithACancelledContextChangesNothing)
}

func testAWriteWithACancelledContextChangesNothing(t *testing.T, engine string) {
	store := open(t, dbtest.IsolatedDSN(t, engine)) // no other store's events wake it
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	changed := store.EventsChanged()
	for i := range 20 { // Write may see the cancellation before or after queueing
		err := store.Write(ctx, func(tx *db.Tx) error {
			return addOrg(context.Background(), tx, fmt.Sprintf("org-%d", i))
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("write %d: %v, want context.Canceled", i, err)
		}
	}
	if got := orgIDs(t, store); len(got) != 0 {
		t.Errorf("organizations %v, want none", got)
	}
	if evs := events(t, store); len(evs) != 0 {
		t.Errorf("events %v, want none", evs)
	}
	select {
	case <-changed:
		t.Error("EventsChanged closed although nothing was written")
	default:
	}
}

// A request cancelled while its statement runs must not take the other writes of
// its batch with it: the batch shares one SQLite transaction, and the driver
// interrupts the connection when a statement's context ends. SQLite only: on
// PostgreSQL a write has its transaction to itself.
func TestACancelledStatementDoesNotUndoItsBatch(t *testing.T) {
	store := newDB(t)
	bg := context.Background()
	good := func(id string) *batchOp {
		return &batchOp{ctx: bg, fn: func(ctx context.Context, tx *db.Tx) error { return addOrg(ctx, tx, id) }}
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	slow := &batchOp{ctx: ctx, fn: func(ctx context.Context, tx *db.Tx) error {
		if err := addOrg(ctx, tx, "slow"); err != nil {
			return err
		}
		// The client goes away while a long statement runs: the statement is not
		// interrupted (that would abort the shared transaction), and the write
		// stops at its next statement.
		stop := time.AfterFunc(20*time.Millisecond, cancel)
		defer stop.Stop()
		if _, err := tx.ExecContext(ctx, `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000000)
			SELECT count(*) FROM n`); err != nil {
			return err
		}
		<-ctx.Done()
		return addOrg(ctx, tx, "after-cancel")
	}}
	last := good("last")
	errs := runBatch(t, store, good("first"), slow, last)

	if !errors.Is(errs[1], context.Canceled) {
		t.Errorf("cancelled write returned %v, want context.Canceled", errs[1])
	}
	got := strings.Join(orgIDs(t, store), ",")
	if errs[0] != nil || errs[2] != nil || got != "first,last" || !last.shared {
		t.Errorf("after a cancelled statement: first write returned %v, last write returned %v "+
			"(and ran in the batch's transaction: %v), stored organizations [%s]; "+
			"want both writes to succeed in one transaction and first,last stored", errs[0], errs[2], last.shared, got)
	}
	if err := store.Write(bg, func(tx *db.Tx) error { return addOrg(bg, tx, "after") }); err != nil {
		t.Fatalf("write after the cancelled one: %v", err)
	}
	checkGapFree(t, events(t, store))
}

func TestEventsChanged(t *testing.T) {
	forEachEngine(t, testEventsChanged)
}

func testEventsChanged(t *testing.T, engine string) {
	// A store of its own (no other store's events wake it), closed by the test.
	store, err := db.Open(context.Background(), dbtest.IsolatedDSN(t, engine))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name      string
		fn        func(tx *db.Tx) error
		wantClose bool
	}{
		{"write without an event", func(tx *db.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO organizations (id, kind, display_name, create_time) VALUES ('quiet', 2, 'Q', 0)`)
			return err
		}, false},
		{"failed write with an event", func(tx *db.Tx) error {
			addOrg(ctx, tx, "failed")
			return errRefused
		}, false},
		{"write with an event", func(tx *db.Tx) error { return addOrg(ctx, tx, "ksbsi") }, true},
		{"next write with an event", func(tx *db.Tx) error { return addOrg(ctx, tx, "kspsi") }, true},
	}
	for _, tt := range tests {
		ch := store.EventsChanged()
		store.Write(ctx, tt.fn)
		closed := false
		select {
		case <-ch:
			closed = true
		default:
		}
		if closed != tt.wantClose {
			t.Errorf("%s: channel closed = %v, want %v", tt.name, closed, tt.wantClose)
		}
	}
	// A fresh channel waits for the next change. It is taken once the store is
	// closed: on PostgreSQL the store also hears its own commits through NOTIFY,
	// a moment later, and closes the channel again for them (a spurious wake-up
	// that watchers allow); Close stops that listener.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	ch := store.EventsChanged()
	select {
	case <-ch:
		t.Error("a channel taken after the last change is already closed")
	default:
	}
}

func TestWatchersWakeUpOnCommit(t *testing.T) {
	forEachEngine(t, testWatchersWakeUpOnCommit)
}

func testWatchersWakeUpOnCommit(t *testing.T, engine string) {
	store := open(t, dbtest.IsolatedDSN(t, engine)) // no other store's events wake it
	ctx := context.Background()
	ch := store.EventsChanged()
	woke := make(chan int, 1)
	go func() {
		<-ch
		var n int
		store.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n)
		woke <- n
	}()
	if err := store.Write(ctx, func(tx *db.Tx) error { return addOrg(ctx, tx, "ksbsi") }); err != nil {
		t.Fatal(err)
	}
	if n := <-woke; n != 1 {
		t.Errorf("a woken watcher read %d events, want the committed 1", n)
	}
}

func TestTranslate(t *testing.T) {
	forEachEngine(t, testTranslate)
}

func testTranslate(t *testing.T, engine string) {
	store := open(t, dbtest.DSN(t, engine))
	ctx := context.Background()
	if err := store.Write(ctx, func(tx *db.Tx) error {
		if err := addOrg(ctx, tx, "ksbsi"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO cadres (id, nik, display_name, birth_date, gender, province_code,
			federation, state, create_time, update_time, version)
			VALUES ('c1', '3171011508900001', 'Budi', '1990-08-15', 1, '31', 'ksbsi', 1, 0, 0, 1)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// rawErr runs a statement and returns the driver's error, untranslated.
	rawErr := func(query string, args ...any) error {
		var err error
		store.Write(ctx, func(tx *db.Tx) error {
			var x any
			err = tx.QueryRowContext(ctx, query, args...).Scan(&x)
			return err
		})
		return err
	}
	var (
		pk      = rawErr(`INSERT INTO organizations (id, kind, display_name, create_time) VALUES ('ksbsi', 2, 'x', 0) RETURNING id`)
		unique  = rawErr(`INSERT INTO cadres (id, nik, display_name, birth_date, gender, province_code, federation, state, create_time, update_time, version) VALUES ('c2', '3171011508900001', 'Siti', '1990-08-15', 2, '31', 'ksbsi', 1, 0, 0, 1) RETURNING id`)
		fk      = rawErr(`INSERT INTO api_keys (id, organization_id, secret_hash, create_time) VALUES ('k', 'nobody', ?, 0) RETURNING id`, []byte{0})
		notNull = rawErr(`INSERT INTO organizations (id, kind, create_time) VALUES ('x', 2, 0) RETURNING id`)
		wrapped = fmt.Errorf("get: %w", sql.ErrNoRows)
		tests   = []struct {
			name string
			err  error
			want error
		}{
			{"no rows", sql.ErrNoRows, db.ErrNotFound},
			{"wrapped no rows", wrapped, db.ErrNotFound},
			{"primary key", pk, db.ErrConflict},
			{"unique column", unique, db.ErrConflict},
			{"foreign key is not a conflict", fk, fk},
			{"not null is not a conflict", notNull, notNull},
			{"other errors pass through", errRefused, errRefused},
		}
	)
	for _, tt := range tests {
		got := store.Translate(tt.err)
		if tt.err == nil || !errors.Is(got, tt.want) {
			t.Errorf("%s: Translate(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
	if store.Translate(nil) != nil {
		t.Error("Translate(nil) != nil")
	}
	// Tx.ExecContext translates by itself, and the driver's error stays readable
	// (SQLite: "UNIQUE constraint failed", PostgreSQL: "violates unique constraint").
	err := store.Write(ctx, func(tx *db.Tx) error { return addOrg(ctx, tx, "ksbsi") })
	if !errors.Is(err, db.ErrConflict) || !strings.Contains(strings.ToUpper(err.Error()), "UNIQUE") {
		t.Errorf("duplicate insert: %v, want ErrConflict wrapping the driver's UNIQUE error", err)
	}
	var id string
	err = store.Translate(store.QueryRowContext(ctx, `SELECT id FROM organizations WHERE id = 'nobody'`).Scan(&id))
	if !errors.Is(err, db.ErrNotFound) {
		t.Errorf("missing row: %v, want ErrNotFound", err)
	}
}

func TestClaimRequestID(t *testing.T) {
	forEachEngine(t, testClaimRequestID)
}

func testClaimRequestID(t *testing.T, engine string) {
	store := open(t, dbtest.DSN(t, engine))
	ctx := context.Background()
	claim := func(principal, requestID, resource string) string {
		t.Helper()
		var first string
		err := store.Write(ctx, func(tx *db.Tx) error {
			var err error
			first, err = tx.ClaimRequestID(ctx, principal, "CreateCadre", requestID, resource, t0)
			return err
		})
		if err != nil {
			t.Fatalf("claim %s/%s: %v", principal, requestID, err)
		}
		return first
	}
	tests := []struct {
		name, principal, requestID, resource, want string
	}{
		{"new id", "ksbsi", "r1", "cadres/01", ""},
		{"retry", "ksbsi", "r1", "cadres/02", "cadres/01"},
		{"retry again", "ksbsi", "r1", "cadres/03", "cadres/01"},
		{"same id, other principal", "kspsi", "r1", "cadres/04", ""},
		{"other id", "ksbsi", "r2", "cadres/05", ""},
	}
	for _, tt := range tests {
		if got := claim(tt.principal, tt.requestID, tt.resource); got != tt.want {
			t.Errorf("%s: claim returned %q, want %q", tt.name, got, tt.want)
		}
	}
	// A create that learns its name later sets it in the same transaction.
	err := store.Write(ctx, func(tx *db.Tx) error {
		if _, err := tx.ClaimRequestID(ctx, "ksbsi", "IssueCertificate", "r3", "", t0); err != nil {
			return err
		}
		return tx.SetRequestResource(ctx, "ksbsi", "IssueCertificate", "r3", "certificates/KNK-31-2026-000001")
	})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	store.Write(ctx, func(tx *db.Tx) error {
		got, err = tx.ClaimRequestID(ctx, "ksbsi", "IssueCertificate", "r3", "certificates/other", t0)
		return err
	})
	if err != nil || got != "certificates/KNK-31-2026-000001" {
		t.Errorf("retry of a create named later: %q (%v)", got, err)
	}
	// A claim whose write fails is forgotten with it.
	store.Write(ctx, func(tx *db.Tx) error {
		tx.ClaimRequestID(ctx, "ksbsi", "CreateCadre", "r4", "cadres/06", t0)
		return errRefused
	})
	if got := claim("ksbsi", "r4", "cadres/07"); got != "" {
		t.Errorf("a claim of a failed write survived: %q", got)
	}
}

// waiting counts the writes that wait for another write's transaction to end:
// on SQLite the Write calls queued for (or running on) the one writer, on
// PostgreSQL the sessions of the store's database blocked on a lock. The store
// must have a database of its own (dbtest.IsolatedDSN) for the latter.
var waiting = map[string]func(t *testing.T, store *db.DB) int{
	"sqlite": func(*testing.T, *db.DB) int { return queued() },
	"postgres": func(t *testing.T, store *db.DB) int {
		var n int
		err := store.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	},
}

// holderWaits is how many writes waiting counts for a write that is running
// and holds its transaction open: on SQLite its Write call waits for the
// writer goroutine that runs it, on PostgreSQL it waits for no lock.
var holderWaits = map[string]int{"sqlite": 1, "postgres": 0}

// waitFor waits until n writes wait (see waiting), or fails if done yields first
// (a write that should have waited finished) or after a generous deadline.
func waitFor(t *testing.T, engine string, store *db.DB, n int, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for waiting[engine](t, store) != n {
		select {
		case err := <-done:
			t.Fatalf("a write that had to wait returned (%v) while %d writes waited, want %d", err, waiting[engine](t, store), n)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes wait, want %d", waiting[engine](t, store), n)
		}
		runtime.Gosched()
	}
}

// Concurrent first uses of one request id make one claim: one caller gets ""
// (its resource is recorded), every other gets that resource, including the
// name the first caller sets later in its transaction, which they wait for.
func TestConcurrentClaimsOfOneRequestID(t *testing.T) {
	forEachEngine(t, testConcurrentClaimsOfOneRequestID)
}

func testConcurrentClaimsOfOneRequestID(t *testing.T, engine string) {
	store := open(t, dbtest.IsolatedDSN(t, engine))
	ctx := context.Background()
	// Fewer than the store's connections: on PostgreSQL every waiting claim
	// holds one, and counting the waiters takes one more.
	const n = 8
	claim := func(requestID, resource string) (string, error) {
		var first string
		err := store.Write(ctx, func(tx *db.Tx) error {
			var err error
			first, err = tx.ClaimRequestID(ctx, "ksbsi", "CreateCadre", requestID, resource, t0)
			return err
		})
		return first, err
	}

	// A race of n first uses.
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = claim("race", fmt.Sprintf("cadres/%02d", i))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("claims of one id: %v", err)
	}
	winner := slices.Index(got, "")
	if winner < 0 {
		t.Fatalf("claims of one id returned %q: none was first", got)
	}
	want := slices.Repeat([]string{fmt.Sprintf("cadres/%02d", winner)}, n) // the others name the winner's resource
	want[winner] = ""
	if !slices.Equal(got, want) {
		t.Errorf("claims of one id returned %q, want %q", got, want)
	}

	// The first claim holds its transaction open, then names its resource; the
	// others, started meanwhile, wait for it and then return that name.
	base := waiting[engine](t, store)
	claimed, release := make(chan struct{}), make(chan struct{})
	signal, unblock := sync.OnceFunc(func() { close(claimed) }), sync.OnceFunc(func() { close(release) })
	defer unblock() // even when the test fails early, so that the store can close
	firstErr := make(chan error, 1)
	var firstGot string
	go func() {
		firstErr <- store.Write(ctx, func(tx *db.Tx) error {
			var err error
			if firstGot, err = tx.ClaimRequestID(ctx, "ksbsi", "IssueCertificate", "held", "", t0); err != nil {
				return err
			}
			signal()
			<-release
			return tx.SetRequestResource(ctx, "ksbsi", "IssueCertificate", "held", "certificates/KNK-31-2026-000001")
		})
	}()
	<-claimed
	done := make(chan error, n)
	later := make([]string, n)
	for i := range n {
		go func() {
			err := store.Write(ctx, func(tx *db.Tx) error {
				var err error
				later[i], err = tx.ClaimRequestID(ctx, "ksbsi", "IssueCertificate", "held", fmt.Sprintf("certificates/other-%d", i), t0)
				return err
			})
			done <- err
		}()
	}
	waitFor(t, engine, store, base+holderWaits[engine]+n, done)
	unblock()
	if err := <-firstErr; err != nil || firstGot != "" {
		t.Fatalf("the first claim: %q (%v), want \"\"", firstGot, err)
	}
	for range n {
		if err := <-done; err != nil {
			t.Errorf("a waiting claim: %v", err)
		}
	}
	for i, g := range later {
		if g != "certificates/KNK-31-2026-000001" {
			t.Errorf("waiting claim %d returned %q, want the name the first claim set", i, g)
		}
	}
	var rows int
	store.QueryRowContext(ctx, `SELECT count(*) FROM request_ids`).Scan(&rows)
	if rows != 2 {
		t.Errorf("%d request ids recorded, want 2 (one per id)", rows)
	}
}

// On PostgreSQL every write has its own transaction, and a reader must never
// see sequence n+1 before n commits (it would skip n for good). A transaction
// numbers its events only as it commits, under the event counter's row lock: a
// transaction held open after appending an event (a long import batch) holds
// nothing up, and a write that commits meanwhile takes the next sequence.
func TestPostgresEventSequencesAreInCommitOrder(t *testing.T) {
	if !slices.Contains(dbtest.Engines(), "postgres") {
		t.Skipf("needs PostgreSQL: set %s", dbtest.PostgresDSN)
	}
	store := open(t, dbtest.IsolatedDSN(t, "postgres"))
	ctx := context.Background()
	appended, release := make(chan struct{}), make(chan struct{})
	signal, unblock := sync.OnceFunc(func() { close(appended) }), sync.OnceFunc(func() { close(release) })
	defer unblock() // even when the test fails early, so that the store can close
	aDone := make(chan error, 1)
	go func() {
		aDone <- store.Write(ctx, func(tx *db.Tx) error {
			if err := addOrg(ctx, tx, "a"); err != nil {
				return err
			}
			signal()
			<-release // commits after b
			return nil
		})
	}()
	<-appended

	// A reader lists the events after the last sequence it saw, as WatchEvents
	// does; each listing must carry on from there without a gap.
	var (
		last int64
		seen []event
	)
	read := func(when string) {
		t.Helper()
		for _, e := range eventsAfter(t, store, last) {
			if e.seq != last+1 {
				t.Fatalf("%s: the reader, at sequence %d, sees sequence %d: it would skip %d..%d for good", when, last, e.seq, last+1, e.seq-1)
			}
			last, seen = e.seq, append(seen, e)
		}
	}
	if err := store.Write(ctx, func(tx *db.Tx) error { return addOrg(ctx, tx, "b") }); err != nil {
		t.Fatalf("b, while a is open: %v", err)
	}
	read("after b committed, while a is open")
	unblock()
	if err := <-aDone; err != nil {
		t.Fatalf("a: %v", err)
	}
	read("after a committed")
	want := []event{{1, "organizations/b"}, {2, "organizations/a"}}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("the reader saw %v, want %v (commit order)", seen, want)
	}
}

// Many writers commit events, some several in one transaction, while a reader
// follows the log as WatchEvents does: it never sees a sequence before every
// lower one has committed, and ends having seen every event once.
func TestEventLogIsGapFreeForAReaderDuringWrites(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		store := open(t, dbtest.DSN(t, engine))
		ctx := context.Background()
		const writers, writes = 8, 40
		var (
			wg    sync.WaitGroup
			errs  = make(chan error, writers*writes)
			stop  = make(chan struct{})
			total = 0
		)
		for w := range writers {
			total += writes * (1 + w%3)
			wg.Go(func() {
				for i := range writes {
					errs <- store.Write(ctx, func(tx *db.Tx) error {
						for k := range 1 + w%3 { // 1 to 3 events in one transaction
							if err := addOrg(ctx, tx, fmt.Sprintf("org-%d-%d-%d", w, i, k)); err != nil {
								return err
							}
						}
						return nil
					})
				}
			})
		}
		go func() { wg.Wait(); close(stop) }()
		var last int64
		for done := false; !done; {
			select {
			case <-stop:
				done = true // one more read after the last commit
			default:
			}
			for _, e := range eventsAfter(t, store, last) {
				if e.seq != last+1 {
					t.Fatalf("the reader, at sequence %d, sees sequence %d: it would skip %d..%d for good", last, e.seq, last+1, e.seq-1)
				}
				last = e.seq
			}
		}
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if last != int64(total) {
			t.Errorf("the reader saw %d events, want %d", last, total)
		}
	})
}

// Writes after Close fail at once instead of waiting for a writer that has gone.
func TestWriteAfterCloseFails(t *testing.T) {
	forEachEngine(t, testWriteAfterCloseFails)
}

func testWriteAfterCloseFails(t *testing.T, engine string) {
	store, err := db.Open(context.Background(), dbtest.DSN(t, engine))
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	const n = 50
	done := make(chan error, n)
	for range n {
		go func() {
			done <- store.Write(context.Background(), func(tx *db.Tx) error { return nil })
		}()
	}
	deadline := time.After(10 * time.Second)
	for i := range n {
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("write after close succeeded")
			}
		case <-deadline:
			t.Fatalf("%d of %d writes after Close never returned", n-i, n)
		}
	}
}
