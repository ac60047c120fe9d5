package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

type eventsCmd struct {
	List  eventsListCmd  `cmd:"" help:"List events after a sequence, in sequence order."`
	Watch eventsWatchCmd `cmd:"" help:"Print every event after a sequence, then each new one as it commits, one JSON object a line; reconnects by itself, Ctrl-C stops."`
}

type eventsListCmd struct {
	After    int64 `help:"Start after this sequence (0 = from the first event)."`
	PageSize int32 `help:"Page size (server default 50, at most 1000)."`
	All      bool  `help:"Follow next_page_token and print every event."`
}

func (c *eventsListCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewEventServiceClient(cc)
	return pages(a, c.All, "events", func(ctx context.Context, token string) (*knkv1.ListEventsResponse, error) {
		return client.ListEvents(ctx, &knkv1.ListEventsRequest{AfterSequence: c.After, PageSize: c.PageSize, PageToken: token})
	}, (*knkv1.ListEventsResponse).GetEvents)
}

type eventsWatchCmd struct {
	After int64 `help:"Start after this sequence (0 = from the first event); use the last sequence printed to resume."`
}

// Reconnection backoff of events watch: doubled after each failed attempt, reset
// once an event arrives.
const (
	watchMinBackoff = 250 * time.Millisecond
	watchMaxBackoff = 15 * time.Second
)

var lineMarshal = protojson.MarshalOptions{UseProtoNames: true}

// Run streams events to stdout. When the stream breaks with UNAVAILABLE (knkd
// restarting, a network blip) or ends, it reconnects after the last sequence it
// printed, so the output has no gap and no repeat. Other errors end the command.
func (c *eventsWatchCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewEventServiceClient(cc)
	last, backoff := c.After, watchMinBackoff
	for {
		err := c.watch(a, client, &last, &backoff)
		if a.ctx.Err() != nil {
			return nil // Ctrl-C
		}
		if err != nil && status.Code(err) != codes.Unavailable {
			return err
		}
		fmt.Fprintf(a.stderr, "knkctl: event stream interrupted (%v); reconnecting after sequence %d in %s\n",
			reason(err), last, backoff)
		select {
		case <-time.After(backoff):
		case <-a.ctx.Done():
			return nil
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

// watch runs one stream from *last on, printing events and advancing *last. It
// returns nil when the server ends the stream.
func (c *eventsWatchCmd) watch(a *app, client knkv1.EventServiceClient, last *int64, backoff *time.Duration) error {
	stream, err := client.WatchEvents(a.authCtx(), &knkv1.WatchEventsRequest{AfterSequence: *last})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := lineMarshal.Marshal(ev)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(a.stdout, "%s\n", b); err != nil {
			return err
		}
		*last, *backoff = ev.GetSequence(), watchMinBackoff
	}
}

func reason(err error) string {
	if err == nil {
		return "closed by the server"
	}
	return status.Convert(err).Message()
}
