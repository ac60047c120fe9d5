// Package access keeps the access trail that Law No. 27 of 2022 (PDP) asks of
// the registry: every request that reads a cadre's personal data appends one
// entry — when, which key and organization, which cadres, which class of fields
// and the request id, never the NIK — before its answer leaves the server.
//
// Entries are written through the store's group-commit path: a request puts its
// entry in an in-process queue and waits; two flushers take everything queued
// and write it in one transaction (db.Write), so a burst of reads costs one
// commit, not one each. A request is answered only once its entry is durable, so
// a crash can lose only entries of requests that were never answered (which
// disclosed nothing); if the entry cannot be written the read fails instead of
// answering unrecorded. Nothing is dropped: when the queue is full, requests
// wait for room.
package access

import (
	"context"
	"crypto/rand"
	"errors"
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

// Log is the access trail writer.
type Log struct {
	db    *db.DB
	now   func() time.Time
	queue chan *pending
	wg    sync.WaitGroup

	mu     sync.RWMutex // held for reading while enqueueing, for writing by Close
	closed bool
}

type pending struct {
	entry  *knkv1.AccessLogEntry
	cadres []string // ids
	done   chan error
}

// New starts the trail's flushers on store; now stamps entries.
func New(store *db.DB, now func() time.Time) *Log {
	l := &Log{db: store, now: now, queue: make(chan *pending, 4*maxBatch)}
	for range 2 { // two, so that one batch is being made durable while the next is written
		l.wg.Add(1)
		go l.flush()
	}
	return l
}

// Record appends one entry for the request in ctx, which read the named cadres
// (cadres/{id}) with the fields class, and returns once it is durable. A list
// page is one entry naming all its cadres; an empty list records nothing.
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
		done:   make(chan error, 1),
	}
	e.entry.AccessTime = timestampOf(now)
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return errors.New("access trail is closed")
	}
	select {
	case l.queue <- e:
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	l.mu.RUnlock()
	// Once queued the entry is written or fails as a whole: wait for the verdict.
	return <-e.done
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

// Close writes what is queued and stops the flushers. Call it after the servers
// have stopped and before the store closes.
func (l *Log) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *Log) flush() {
	defer l.wg.Done()
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
		err := l.db.Write(context.Background(), func(tx *db.Tx) error { return insert(context.Background(), tx, batch) })
		for _, e := range batch {
			e.done <- err
		}
	}
}
