package event_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/event"
)

var _ knkv1.EventServiceServer = (*event.Service)(nil)

// nik returns the i-th distinct valid NIK of a man born 15 Aug 1990 in Jakarta.
func nik(i int) string {
	return fmt.Sprintf("3171%02d150890%04d", 1+(i/9999)%99, 1+i%9999)
}

func newCadre(i int) *knkv1.Cadre {
	return &knkv1.Cadre{
		DisplayName: fmt.Sprintf("Kader %d", i), Nik: nik(i), Phone: "0812-3456-7890",
		ProvinceCode: "31", Regency: "Jakarta Timur",
		Employer: &knkv1.Employer{Name: "PT Maju Jaya", Nib: "1234567890123"},
	}
}

func createCadres(t *testing.T, e *testenv.Env, key string, from, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.Cadres.CreateCadre(testenv.Ctx(key), &knkv1.CreateCadreRequest{Cadre: newCadre(from + i)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create cadre %d: %v", from+i, err)
		}
	}
}

// all returns the whole change log through ListEvents.
func all(t *testing.T, e *testenv.Env) []*knkv1.Event {
	t.Helper()
	var out []*knkv1.Event
	for token := ""; ; {
		resp, err := e.Events.ListEvents(testenv.Ctx(e.AdminKey), &knkv1.ListEventsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.Events...)
		if token = resp.NextPageToken; token == "" {
			return out
		}
	}
}

func sequences(events []*knkv1.Event) []int64 {
	out := make([]int64, len(events))
	for i, ev := range events {
		out[i] = ev.Sequence
	}
	return out
}

// checkGapFree fails unless seqs is exactly 1, 2, …, n.
func checkGapFree(t *testing.T, what string, seqs []int64, n int) {
	t.Helper()
	if len(seqs) != n {
		t.Errorf("%s: %d events, want %d", what, len(seqs), n)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("%s: event #%d has sequence %d, want %d (gap or repeat)", what, i, s, i+1)
		}
	}
}

func keyName(t *testing.T, e *testenv.Env, org string) string {
	t.Helper()
	resp, err := e.Orgs.ListApiKeys(testenv.Ctx(e.AdminKey), &knkv1.ListApiKeysRequest{Parent: org})
	if err != nil || len(resp.ApiKeys) != 1 {
		t.Fatalf("keys of %s: %v %v", org, resp, err)
	}
	return resp.ApiKeys[0].Name
}

func TestChangesWriteEvents(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	ctx := testenv.Ctx(fed)
	c, err := e.Cadres.CreateCadre(ctx, &knkv1.CreateCadreRequest{Cadre: newCadre(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cadres.UpdateCadre(ctx, &knkv1.UpdateCadreRequest{
		Cadre: &knkv1.Cadre{Name: c.Name, Regency: "Bekasi"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"regency"}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cadres.WithdrawCadre(ctx, &knkv1.WithdrawCadreRequest{Name: c.Name, Reason: "moved abroad"}); err != nil {
		t.Fatal(err)
	}
	// Refused changes write nothing.
	if _, err := e.Cadres.WithdrawCadre(ctx, &knkv1.WithdrawCadreRequest{Name: c.Name, Reason: "again"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("withdraw twice: %v", err)
	}

	want := []struct{ typ, resource, actor string }{
		{"organization.created", "organizations/admin", ""},
		{"api_key.created", keyName(t, e, "organizations/admin"), ""},
		{"organization.created", "organizations/ksbsi", "organizations/admin"},
		{"api_key.created", keyName(t, e, "organizations/ksbsi"), "organizations/admin"},
		{"cadre.created", c.Name, "organizations/ksbsi"},
		{"cadre.updated", c.Name, "organizations/ksbsi"},
		{"cadre.withdrawn", c.Name, "organizations/ksbsi"},
	}
	got := all(t, e)
	checkGapFree(t, "ListEvents", sequences(got), len(want))
	for i, w := range want {
		ev := got[i]
		if ev.Type != w.typ || ev.Resource != w.resource || ev.Actor != w.actor || !ev.CreateTime.AsTime().Equal(e.Clock.Now()) {
			t.Errorf("event %d = %v, want %s %s by %q at %s", i+1, ev, w.typ, w.resource, w.actor, e.Clock.Now())
		}
	}
}

func TestListEventsPagination(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	createCadres(t, e, fed, 0, 60)
	const total = 64 // 2 orgs and 2 keys, then 60 cadres
	ctx := testenv.Ctx(e.AdminKey)

	first, err := e.Events.ListEvents(ctx, &knkv1.ListEventsRequest{})
	if err != nil || len(first.Events) != 50 || first.NextPageToken == "" {
		t.Fatalf("default page: %d events, token %q, %v; want 50 and a token", len(first.GetEvents()), first.GetNextPageToken(), err)
	}

	var got []*knkv1.Event
	pages := 0
	for token := ""; ; pages++ {
		resp, err := e.Events.ListEvents(ctx, &knkv1.ListEventsRequest{AfterSequence: 10, PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, resp.Events...)
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if seqs := sequences(got); len(seqs) != total-10 || seqs[0] != 11 || seqs[len(seqs)-1] != total || pages != 7 {
		t.Errorf("after 10 in pages of 7: %d events %v… in %d pages", len(seqs), seqs[:min(3, len(seqs))], pages+1)
	}
	checkGapFree(t, "whole log", sequences(all(t, e)), total)

	end, err := e.Events.ListEvents(ctx, &knkv1.ListEventsRequest{AfterSequence: total})
	if err != nil || len(end.Events) != 0 || end.NextPageToken != "" {
		t.Errorf("after the last event: %v %v, want an empty page", end, err)
	}

	page, err := e.Events.ListEvents(ctx, &knkv1.ListEventsRequest{AfterSequence: 3, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name  string
		req   *knkv1.ListEventsRequest
		field string
	}{
		{"negative after_sequence", &knkv1.ListEventsRequest{AfterSequence: -1}, "after_sequence"},
		{"negative page_size", &knkv1.ListEventsRequest{PageSize: -1}, "page_size"},
		{"token of another filter", &knkv1.ListEventsRequest{AfterSequence: 4, PageToken: page.NextPageToken}, "page_token"},
		{"forged token", &knkv1.ListEventsRequest{PageToken: "bm9wZQ"}, "page_token"},
	}
	for _, b := range bad {
		_, err := e.Events.ListEvents(ctx, b.req)
		if got := violations(err); status.Code(err) != codes.InvalidArgument || len(got) != 1 || got[0] != b.field {
			t.Errorf("%s: %v (fields %v), want INVALID_ARGUMENT on %s", b.name, err, got, b.field)
		}
	}
}

func violations(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				fields = append(fields, v.Field)
			}
		}
	}
	return fields
}

func TestListOverREST(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	createCadres(t, e, fed, 0, 3)
	r := e.REST(t, http.MethodGet, "/v1/events?after_sequence=3&page_size=2", e.AdminKey, nil)
	var body struct {
		Events        []map[string]any `json:"events"`
		NextPageToken string           `json:"next_page_token"`
	}
	if err := json.Unmarshal(r.Raw, &body); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET /v1/events: %d %s", r.Status, r.Raw)
	}
	if len(body.Events) != 2 || body.Events[0]["sequence"] != "4" || body.Events[1]["sequence"] != "5" ||
		body.Events[0]["type"] != "api_key.created" || body.Events[1]["type"] != "cadre.created" || body.NextPageToken == "" {
		t.Fatalf("GET /v1/events?after_sequence=3&page_size=2: %s", r.Raw)
	}
	r = e.REST(t, http.MethodGet, "/v1/events?after_sequence=3&page_size=2&page_token="+body.NextPageToken, e.AdminKey, nil)
	if events, _ := r.Body["events"].([]any); r.Status != http.StatusOK || len(events) != 2 || events[0].(map[string]any)["sequence"] != "6" {
		t.Errorf("second page: %d %s", r.Status, r.Raw)
	}
	r = e.REST(t, http.MethodGet, "/v1/events?after_sequence=-1", e.AdminKey, nil)
	if r.Status != http.StatusBadRequest {
		t.Errorf("negative after_sequence over REST: %d %s, want 400", r.Status, r.Raw)
	}
}

func TestRoles(t *testing.T) {
	e := testenv.Start(t)
	keys := []struct {
		role string
		key  string
		code codes.Code
	}{
		{"admin", e.AdminKey, codes.OK},
		{"federation", e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, ""), codes.PermissionDenied},
		{"training unit", e.Org(t, "kemnaker-pusat", knkv1.Organization_KIND_TRAINING_UNIT, ""), codes.PermissionDenied},
		{"provincial training unit", e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31"), codes.PermissionDenied},
		{"inspectorate", e.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31"), codes.PermissionDenied},
		{"no key", "", codes.Unauthenticated},
		{"unknown key", "knk_nokey_AAAA", codes.Unauthenticated},
	}
	httpStatus := map[codes.Code]int{codes.OK: http.StatusOK, codes.PermissionDenied: http.StatusForbidden, codes.Unauthenticated: http.StatusUnauthorized}
	for _, k := range keys {
		ctx := testenv.Ctx(k.key)
		_, err := e.Events.ListEvents(ctx, &knkv1.ListEventsRequest{})
		if status.Code(err) != k.code {
			t.Errorf("%s: ListEvents: %v, want %s", k.role, err, k.code)
		}
		// The live stream ends its first Recv with the refusal; for the admin it
		// starts with the first event.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		stream, err := e.Events.WatchEvents(wctx, &knkv1.WatchEventsRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		cancel()
		if status.Code(err) != k.code {
			t.Errorf("%s: WatchEvents: %v, want %s", k.role, err, k.code)
		}
		r := e.REST(t, http.MethodGet, "/v1/events", k.key, nil)
		if r.Status != httpStatus[k.code] {
			t.Errorf("%s: GET /v1/events: %d %s, want %d", k.role, r.Status, r.Raw, httpStatus[k.code])
		}
	}
}

func TestWatchRejectsNegativeSequence(t *testing.T) {
	e := testenv.Start(t)
	stream, err := e.Events.WatchEvents(testenv.Ctx(e.AdminKey), &knkv1.WatchEventsRequest{AfterSequence: -5})
	if err == nil {
		_, err = stream.Recv()
	}
	if got := violations(err); status.Code(err) != codes.InvalidArgument || len(got) != 1 || got[0] != "after_sequence" {
		t.Errorf("WatchEvents after -5: %v, want INVALID_ARGUMENT on after_sequence", err)
	}
}

// TestWatchResumesWithoutGapsOrRepeats is the resume test of issue 4: a watcher
// that disconnects mid-stream three times, each time resuming after the last
// sequence it saw, while several clients keep writing, ends up having seen every
// event exactly once, in order.
func TestWatchResumesWithoutGapsOrRepeats(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	const (
		writers, perWriter = 6, 50
		total              = 4 + writers*perWriter // 2 orgs and 2 keys, then the cadres
		cutAfter, cuts     = 40, 3
	)
	// Writers stop half-way until the watcher has reconnected once, so writes
	// certainly go on across a reconnection.
	gate := make(chan struct{})
	openGate := sync.OnceFunc(func() { close(gate) })
	defer openGate()

	root, stop := context.WithCancel(testenv.Ctx(e.AdminKey))
	defer stop()
	type result struct {
		seen       []int64
		reconnects int
		err        error
	}
	var progress atomic.Int64
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { openGate(); done <- r }()
		last := int64(0)
		for round := 0; ; round++ {
			ctx, cancel := context.WithCancel(root)
			stream, err := e.Events.WatchEvents(ctx, &knkv1.WatchEventsRequest{AfterSequence: last})
			if err != nil {
				cancel()
				r.err = err
				return
			}
			if round == 1 {
				openGate()
			}
			for n := 0; round >= cuts || n < cutAfter; n++ {
				ev, err := stream.Recv()
				if err != nil {
					cancel()
					if root.Err() == nil {
						r.err = fmt.Errorf("round %d: %w", round, err)
					}
					return
				}
				r.seen = append(r.seen, ev.Sequence)
				last = ev.Sequence
				progress.Store(last)
			}
			cancel() // disconnect mid-stream: whatever is already on the wire is lost
			r.reconnects++
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if i == perWriter/2 {
					<-gate
				}
				_, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: newCadre(w*perWriter + i)})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create cadre: %v", err)
	}

	want := all(t, e)
	checkGapFree(t, "ListEvents", sequences(want), total)

	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for progress.Load() < total {
		select {
		case r := <-done:
			t.Fatalf("watcher stopped at sequence %d: %v", progress.Load(), r.err)
		case <-deadline:
			t.Fatalf("watcher reached only sequence %d of %d", progress.Load(), total)
		case <-tick.C:
		}
	}
	stop()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.reconnects != cuts {
		t.Errorf("watcher reconnected %d times, want %d", r.reconnects, cuts)
	}
	checkGapFree(t, "watcher", r.seen, total)
	for i, seq := range sequences(want) {
		if r.seen[i] != seq {
			t.Fatalf("watcher's event #%d is %d, ListEvents' is %d", i, r.seen[i], seq)
		}
	}
}

// TestWatchOverREST reads the gateway's newline-delimited JSON stream: the
// backlog after a sequence, then an event committed while it is open.
func TestWatchOverREST(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.BaseURL+"/v1/events:watch?after_sequence=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events:watch: %d", resp.StatusCode)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() *knkv1.Event {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("stream ended: %v", lines.Err())
		}
		var msg struct {
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(lines.Bytes(), &msg); err != nil || msg.Result == nil {
			t.Fatalf("line %s: %v", lines.Bytes(), err)
		}
		var ev knkv1.Event
		if err := protojson.Unmarshal(msg.Result, &ev); err != nil {
			t.Fatalf("result %s: %v", msg.Result, err)
		}
		return &ev
	}
	backlog := []struct {
		seq      int64
		typ, res string
	}{
		{2, "api_key.created", keyName(t, e, "organizations/admin")},
		{3, "organization.created", "organizations/ksbsi"},
		{4, "api_key.created", keyName(t, e, "organizations/ksbsi")},
	}
	for _, b := range backlog {
		if ev := next(); ev.Sequence != b.seq || ev.Type != b.typ || ev.Resource != b.res || ev.CreateTime == nil {
			t.Errorf("got %v, want %d %s %s", ev, b.seq, b.typ, b.res)
		}
	}
	c, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: newCadre(1)})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Sequence != 5 || ev.Type != "cadre.created" || ev.Resource != c.Name || ev.Actor != "organizations/ksbsi" {
		t.Errorf("live event %v, want 5 cadre.created %s", ev, c.Name)
	}
}

// TestShutdownEndsWatches checks that stopping knkd ends open watches with
// UNAVAILABLE and a resume hint instead of holding the drain until the timeout.
func TestShutdownEndsWatches(t *testing.T) {
	e := testenv.Start(t)
	conn, err := grpc.NewClient(e.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := knkv1.NewEventServiceClient(conn).WatchEvents(testenv.Ctx(e.AdminKey), &knkv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // bootstrap's events: the watch is live
		t.Fatal(err)
	}
	go e.Stop(t)
	for {
		_, err = stream.Recv()
		if err != nil {
			break
		}
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "resume") {
		t.Errorf("watch ended with %v, want UNAVAILABLE asking to resume", err)
	}
}
