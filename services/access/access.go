// Package access keeps the access trail that Law No. 27 of 2022 (PDP) asks of
// the registry: every request that reads a cadre's personal data appends one
// entry — when, which key and organization, which cadres, which class of fields
// and the request id, never the NIK.
//
// Entries are written through the store's group-commit path: a request puts its
// entry in an in-process queue, and one flusher takes everything queued and
// writes it in one transaction (db.Write), so a burst of reads costs one commit,
// not one each. By default the read does not wait for that commit (reads stay
// cheap); with Durable it is answered only once its entry is on disk. Nothing is
// ever dropped: a full queue makes reads wait; a batch that fails to be written
// is logged and retried until it is; what is still unwritten when the trail
// closes is logged with its count. A crash (not a shutdown) can lose the entries
// of the last moments before it — those queued but not yet committed, at most a
// few milliseconds of reads — unless Durable is set, in which case only entries
// of reads that were never answered can be missing.
package access

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
)

// Fields classes of a read.
const (
	Masked = knkv1.AccessLogEntry_FIELDS_MASKED
	Full   = knkv1.AccessLogEntry_FIELDS_FULL
)

// maxBatch bounds how many entries share one transaction.
const maxBatch = 512

// retryEvery is the pause before a failed batch is written again.
const retryEvery = time.Second

// Log is the access trail writer.
type Log struct {
	db      *db.DB
	now     func() time.Time
	log     *slog.Logger
	durable bool
	queue   chan *pending
	done    chan struct{} // closed when the flusher has stopped

	mu       sync.Mutex // guards the counters and closed; cond waits on it
	cond     *sync.Cond
	enqueued uint64 // entries queued so far
	written  uint64 // entries committed so far (in queue order: one flusher)
	closed   bool
}

type pending struct {
	entry  *knkv1.AccessLogEntry
	cadres []string   // ids
	done   chan error // nil unless the reader waits (durable)
}

// New starts the trail's flusher on store; now stamps entries, log reports
// failed writes. With durable, Record returns only once its entry is on disk.
func New(store *db.DB, now func() time.Time, log *slog.Logger, durable bool) *Log {
	l := &Log{db: store, now: now, log: log, durable: durable, queue: make(chan *pending, 4*maxBatch),
		done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	go l.flush()
	return l
}

// Record appends one entry for the request in ctx, which read the named cadres
// (cadres/{id}) with the fields class. A list page is one entry naming all its
// cadres; an empty list records nothing.
func (l *Log) Record(ctx context.Context, method string, fields knkv1.AccessLogEntry_Fields, cadres ...string) error {
	if len(cadres) == 0 {
		return nil
	}
	p, _ := auth.FromContext(ctx)
	now := l.now().UTC().Truncate(time.Microsecond)
	ids := make([]string, len(cadres))
	for i, c := range cadres {
		ids[i] = cadreID(c)
	}
	e := &pending{
		entry: &knkv1.AccessLogEntry{
			Id:    newID(now),
			KeyId: p.KeyID, Organization: p.OrgName(), Method: method, Fields: fields,
			RequestId: auth.RequestID(ctx), CadreCount: int32(len(ids)),
		},
		cadres: ids,
	}
	e.entry.AccessTime = timestampOf(now)
	if l.durable {
		e.done = make(chan error, 1)
	}
	// Enqueue under the lock, so that the count and the queue agree and Close
	// never closes the queue under a sender.
	l.mu.Lock()
	for !l.closed {
		select {
		case l.queue <- e:
			l.enqueued++
			l.mu.Unlock()
			if e.done == nil {
				return nil
			}
			// Once queued the entry is written or fails as a whole: wait for the verdict.
			return <-e.done
		default:
		}
		// The queue is full: wait for the flusher to make room, never drop.
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
		l.mu.Lock()
	}
	l.mu.Unlock()
	return errors.New("access trail is closed")
}

// Sync waits until every entry queued before the call is written, so that a
// read of the trail shows every read answered before it on this server.
func (l *Log) Sync(ctx context.Context) error {
	l.mu.Lock()
	target := l.enqueued
	l.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.written < target && ctx.Err() == nil && !l.closed {
		l.cond.Wait()
	}
	return ctx.Err()
}

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// newID is a ULID of the access time; ids made in the same millisecond increase
// in the order of the calls, so the trail lists reads in the order they were made.
func newID(at time.Time) string {
	idMu.Lock()
	defer idMu.Unlock()
	return ulid.MustNew(ulid.Timestamp(at), idEntropy).String()
}

// Close writes what is queued and stops the flusher. Call it after the servers
// have stopped and before the store closes.
func (l *Log) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
		l.cond.Broadcast()
	}
	l.mu.Unlock()
	<-l.done
}

func (l *Log) flush() {
	defer close(l.done)
	for e := range l.queue {
		batch := []*pending{e}
	fill:
		for len(batch) < maxBatch {
			select {
			case e, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		err := l.write(batch)
		for _, e := range batch {
			if e.done != nil {
				e.done <- err
			}
		}
		l.mu.Lock()
		l.written += uint64(len(batch))
		l.cond.Broadcast()
		l.mu.Unlock()
	}
}

// write commits a batch. Entries nobody waits for are retried until they are
// written (logged each time) or the trail closes (logged with their count).
func (l *Log) write(batch []*pending) error {
	for {
		err := l.db.Write(context.Background(), func(tx *db.Tx) error { return insert(context.Background(), tx, batch) })
		if err == nil || l.durable {
			return err
		}
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		if closed {
			l.log.Error("access trail: entries could not be written before shutdown", "entries", len(batch), "cause", err.Error())
			return err
		}
		l.log.Error("access trail: writing entries failed; retrying", "entries", len(batch), "cause", err.Error())
		time.Sleep(retryEvery)
	}
}
