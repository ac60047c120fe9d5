// Package event implements EventService: reading the change log that every write
// transaction appends to, as pages (ListEvents) or as a live stream (WatchEvents).
package event

import (
	"context"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/metrics"
)

// Service implements knkv1.EventServiceServer.
type Service struct {
	knkv1.UnimplementedEventServiceServer
	DB *db.DB
	// Stopping is closed when the server starts shutting down: watches end with
	// UNAVAILABLE so that clients resume elsewhere instead of holding the drain.
	Stopping <-chan struct{}
}

var _ knkv1.EventServiceServer = (*Service)(nil)

const (
	// watchBatch bounds how many events WatchEvents reads per query. A replay
	// holds one page while Send waits on the client's flow control, so the page
	// is small: 400 watchers that do not read hold 400 pages.
	watchBatch = 100
	// pollInterval is how often WatchEvents re-reads the log without a local
	// commit notice, so that commits made by another process are picked up too.
	pollInterval = 2 * time.Second
)

// ListEvents lists the events after after_sequence in sequence order.
func (s *Service) ListEvents(ctx context.Context, req *knkv1.ListEventsRequest) (*knkv1.ListEventsResponse, error) {
	var v api.Violations
	after := req.GetAfterSequence()
	if after < 0 {
		v.Add("after_sequence", "must not be negative")
	}
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		v.Add("page_size", "must not be negative")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	key, err := api.DecodePageToken(req.GetPageToken(), "events", after)
	if err != nil {
		return nil, err
	}
	from := after
	if key != "" {
		last, err := strconv.ParseInt(key, 10, 64)
		if err != nil || last < after {
			return nil, api.Invalid("page_token", "is not a token this API returned")
		}
		from = last
	}
	events, err := s.list(ctx, from, size+1)
	if err != nil {
		return nil, err
	}
	resp := &knkv1.ListEventsResponse{Events: events}
	if len(events) > size {
		resp.Events = events[:size]
		last := resp.Events[size-1].Sequence
		resp.NextPageToken = api.EncodePageToken(strconv.FormatInt(last, 10), "events", after)
	}
	return resp, nil
}

// WatchEvents sends every event after after_sequence in sequence order, then each
// new one as it commits, until the client goes away. It never skips or repeats
// one: it always reads on from the last sequence it sent, and it takes the change
// notice before each read, so a commit that the read misses closes the notice it
// then waits on.
func (s *Service) WatchEvents(req *knkv1.WatchEventsRequest, stream grpc.ServerStreamingServer[knkv1.Event]) error {
	last := req.GetAfterSequence()
	if last < 0 {
		return api.Invalid("after_sequence", "must not be negative")
	}
	ctx := stream.Context()
	metrics.EventWatchers.Inc()
	defer metrics.EventWatchers.Dec()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		changed := s.DB.EventsChanged()
		events, err := s.watchPage(ctx, last)
		if err != nil {
			return err
		}
		for _, e := range events {
			if err := stream.Send(e); err != nil {
				return err
			}
			last = e.Sequence
		}
		if len(events) == watchBatch {
			continue // more may be waiting already
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.Stopping:
			return status.Error(codes.Unavailable, "server is shutting down: resume from the last sequence you received")
		}
	}
}

// watchReads lets at most two watch pages be read at once, so that many watchers
// replaying together (or all waking on one commit) leave the read pool and the
// CPU to other calls; they take their turns instead.
var watchReads = make(chan struct{}, 2)

// watchPage reads the next page of a watch, in its turn.
func (s *Service) watchPage(ctx context.Context, after int64) ([]*knkv1.Event, error) {
	select {
	case watchReads <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-watchReads }()
	return s.list(ctx, after, watchBatch)
}

// list reads up to limit events with a sequence above after, in sequence order.
func (s *Service) list(ctx context.Context, after int64, limit int) ([]*knkv1.Event, error) {
	return db.All(ctx, s.DB, scan,
		`SELECT sequence, type, resource, actor, create_time FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?`,
		after, limit)
}

func scan(row db.Scanner) (*knkv1.Event, error) {
	var (
		e  knkv1.Event
		ct int64
	)
	if err := row.Scan(&e.Sequence, &e.Type, &e.Resource, &e.Actor, &ct); err != nil {
		return nil, err
	}
	e.CreateTime = timestamppb.New(time.UnixMicro(ct))
	return &e, nil
}
