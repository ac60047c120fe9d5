package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/cadre"
)

// startLimited runs knkd with the limits changed by edit.
func startLimited(t *testing.T, edit func(*server.Limits)) *testenv.Env {
	t.Helper()
	return testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) { edit(&c.Limits) })
}

// rawRequest writes head (request line and headers) on a new connection and
// returns it with a reader of the answer.
func rawRequest(t *testing.T, e *testenv.Env, head string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", e.Server.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// readStatus reads one HTTP answer from r and returns its status and gRPC code.
func readStatus(t *testing.T, conn net.Conn, r *bufio.Reader, within time.Duration) (int, float64) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", within, err)
	}
	defer resp.Body.Close()
	var body struct{ Code float64 }
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Code
}

// A 50 MB body is refused from its Content-Length, before authentication and
// before a byte of it is read: the answer comes while the client has sent none.
func TestOversizedBodyRefusedBeforeReading(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(*server.Limits) {})
	conn, r := rawRequest(t, e, "POST /v1/cadres HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\n\r\n{")
	code, grpcCode := readStatus(t, conn, r, 2*time.Second)
	if code != http.StatusRequestEntityTooLarge || grpcCode != float64(codes.ResourceExhausted) {
		t.Errorf("50 MB body without a key: %d (code %v), want 413 RESOURCE_EXHAUSTED", code, grpcCode)
	}
}

// A body without a length (chunked) is cut at the limit: a key does not help,
// and spaces count.
func TestChunkedBodyCutAtTheLimit(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) { l.MaxBodyBytes = 64 << 10 })
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	body := io.MultiReader(strings.NewReader(`{"display_name": "X"`), strings.NewReader(strings.Repeat(" ", 1<<20)), strings.NewReader("}"))
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+"/v1/cadres", io.NopCloser(body)) // no length: chunked
	req.Header.Set("Authorization", "Bearer "+fed)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), "larger than 65536 bytes") {
		t.Errorf("1 MB of spaces, chunked: %d %s, want 413", resp.StatusCode, raw)
	}
	// A body under the limit still works.
	r := e.REST(t, http.MethodPost, "/v1/cadres", fed, `{"display_name": "Siti", "nik": "`+nik(1)+`", "province_code": "31"}`)
	if r.Status != http.StatusOK {
		t.Errorf("small body: %d %s", r.Status, r.Raw)
	}
}

// A body that trickles in (one byte every 200 ms) is cut at the read timeout
// with 408, and the connection is closed.
func TestSlowBodyCut(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) { l.ReadTimeout = time.Second })
	conn, r := rawRequest(t, e, "POST /v1/cadres:lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	code, grpcCode := readStatus(t, conn, r, 10*time.Second)
	if code != http.StatusRequestTimeout || grpcCode != float64(codes.DeadlineExceeded) {
		t.Errorf("slow body: %d (code %v), want 408 DEADLINE_EXCEEDED", code, grpcCode)
	}
	if took := time.Since(start); took < 900*time.Millisecond || took > 8*time.Second { // generous: make test runs packages in parallel
		t.Errorf("slow body cut after %s, want about 1s", took)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Error("connection still open after the slow body was cut")
	}
}

// Headers that never finish, and a keep-alive connection left idle, are closed.
func TestSlowHeadersAndIdleConnectionsClosed(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) {
		l.ReadHeaderTimeout = 500 * time.Millisecond
		l.IdleTimeout = 700 * time.Millisecond
	})
	slow, _ := rawRequest(t, e, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	idle, r := rawRequest(t, e, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if code, _ := readStatus(t, idle, r, time.Second); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	for name, conn := range map[string]net.Conn{"unfinished headers": slow, "idle keep-alive": idle} {
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(8 * time.Second))
		_, err := io.Copy(io.Discard, conn) // returns when the server closes it
		if err != nil {
			t.Errorf("%s: %v after %s, want closed by the server", name, err, time.Since(start))
		}
	}
}

// At most MaxHTTPConns connections are served at once: when every one is busy
// (here, sending a body), the next one is served when one closes.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) { l.MaxHTTPConns = 3 })
	var busy []net.Conn
	for range 3 {
		c, _ := rawRequest(t, e, "POST /v1/cadres:lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		busy = append(busy, c)
	}
	time.Sleep(300 * time.Millisecond) // accepted, and past the grace of silent connections
	extra, r := rawRequest(t, e, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	extra.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.Peek(1); err == nil {
		t.Fatal("a 4th connection was served while 3 busy ones held MaxHTTPConns 3")
	}
	busy[0].Close()
	if code, _ := readStatus(t, extra, r, 8*time.Second); code != http.StatusOK {
		t.Errorf("4th connection after one closed: %d", code)
	}
}

// When the cap is reached, a new connection takes the place of the oldest one
// that has not sent a byte: idle connections cannot lock clients out.
func TestConnectionCapEvictsSilentConnections(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) { l.MaxHTTPConns = 3 })
	var silent []net.Conn
	for range 3 {
		c, _ := rawRequest(t, e, "")
		silent = append(silent, c)
	}
	time.Sleep(100 * time.Millisecond) // accepted
	c, r := rawRequest(t, e, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if code, _ := readStatus(t, c, r, time.Second); code != http.StatusOK {
		t.Fatalf("healthz with 3 silent connections held: %d", code)
	}
	silent[0].SetReadDeadline(time.Now().Add(time.Second))
	if _, err := silent[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("oldest silent connection: %v, want closed by the server", err)
	}
}

// A keep-alive connection between requests also gives its place to a new one.
func TestConnectionCapEvictsIdleKeepAlive(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) { l.MaxHTTPConns = 2 })
	var idle []net.Conn
	for range 2 {
		c, r := rawRequest(t, e, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if code, _ := readStatus(t, c, r, time.Second); code != http.StatusOK {
			t.Fatalf("healthz: %d", code)
		}
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond) // the server has marked both idle
	c, r := rawRequest(t, e, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if code, _ := readStatus(t, c, r, time.Second); code != http.StatusOK {
		t.Fatalf("healthz with 2 idle keep-alive connections held: %d", code)
	}
	idle[0].SetReadDeadline(time.Now().Add(time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("oldest idle keep-alive connection: %v, want closed by the server", err)
	}
}

// A REST import streams: each line has its own length limit (413) and its own
// deadline (408); the whole body has none.
func TestRESTImportLineLimits(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) {
		l.MaxBodyBytes = 4 << 10
		l.MaxImportLineBytes = 1 << 10
		l.StreamIdleTimeout = 700 * time.Millisecond
	})
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	row := func(i int) string {
		return `{"cadre": {"display_name": "Kader", "nik": "` + nik(i) + `", "province_code": "31"}}` + "\n"
	}
	var many strings.Builder
	for i := range 100 { // 8 KB: over the body limit, each line under the line limit
		many.WriteString(row(i))
	}
	r := e.REST(t, http.MethodPost, "/v1/cadres:import", fed, many.String())
	if r.Status != http.StatusOK || r.Body["created"] != "100" || r.Body["done"] != true {
		t.Fatalf("import of 100 rows (8 KB): %d %s", r.Status, r.Raw)
	}
	long := row(200) + `{"cadre": {"display_name": "` + strings.Repeat("x", 2<<10) + `"}}` + "\n"
	r = e.REST(t, http.MethodPost, "/v1/cadres:import", fed, long)
	if r.Status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.Raw), "line 2 is longer than 1024 bytes") {
		t.Errorf("a 2 KB line: %d %s, want 413", r.Status, r.Raw)
	}

	conn, br := rawRequest(t, e, "POST /v1/cadres:import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+fed+
		"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := func(s string) { fmt.Fprintf(conn, "%x\r\n%s\r\n", len(s), s) }
	chunk(row(300))
	for range 5 { // the second row, a byte every 300 ms
		time.Sleep(300 * time.Millisecond)
		chunk("{")
	}
	code, grpcCode := readStatus(t, conn, br, 8*time.Second)
	if code != http.StatusRequestTimeout || grpcCode != float64(codes.DeadlineExceeded) {
		t.Errorf("a line sent a byte every 300 ms: %d (code %v), want 408", code, grpcCode)
	}
}

// A gRPC client stream that stops sending is closed with DEADLINE_EXCEEDED.
func TestStalledImportStreamClosed(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) { l.StreamIdleTimeout = 500 * time.Millisecond })
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	stream, err := e.Cadres.ImportCadres(testenv.Ctx(fed))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&knkv1.ImportCadresRequest{Cadre: newCadre(1)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = stream.Recv() // and send nothing more
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 8*time.Second {
		t.Errorf("stalled import: %v after %s, want DEADLINE_EXCEEDED after 0.5s", err, time.Since(start))
	}
}

// An import with 2,500 rejected rows is answered in three messages, none with
// more than 1,000 rejections, which together list every row.
func TestImportRejectionsComeInMessages(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(*server.Limits) {})
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	stream, err := e.Cadres.ImportCadres(testenv.Ctx(fed))
	if err != nil {
		t.Fatal(err)
	}
	const bad = 2500
	go func() {
		for range bad {
			stream.Send(&knkv1.ImportCadresRequest{Cadre: &knkv1.Cadre{DisplayName: "X", Nik: "1", ProvinceCode: "31"}})
		}
		stream.Send(&knkv1.ImportCadresRequest{Cadre: newCadre(1)})
		stream.CloseSend()
	}()
	rows := map[int64]bool{}
	messages := 0
	last, err := cadre.ReceiveImport(stream, func(r *knkv1.ImportCadresResponse) error {
		messages++
		if len(r.Rejections) > cadre.RejectionsPerMessage {
			t.Errorf("message %d holds %d rejections", messages, len(r.Rejections))
		}
		for _, x := range r.Rejections {
			rows[x.Row] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if messages != 3 || len(rows) != bad || last.Rejected != bad || last.Created != 1 {
		t.Errorf("%d messages, %d rows rejected, last %v; want 3, %d", messages, len(rows), last, bad)
	}
}

// A gRPC message above MaxRecvBytes is RESOURCE_EXHAUSTED.
func TestGRPCMessageSizeLimit(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) { l.MaxRecvBytes = 64 << 10 })
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	c := newCadre(1)
	c.DisplayName = strings.Repeat("x", 100<<10)
	_, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: c})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("100 KB message: %v, want RESOURCE_EXHAUSTED", err)
	}
}

// At most MaxWatchesPerKey WatchEvents per key: more is RESOURCE_EXHAUSTED (429
// over REST); other keys are not affected, and a closed stream frees its place.
func TestWatchesPerKey(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) { l.MaxWatchesPerKey = 2 })
	open := func(key string) (context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(testenv.Ctx(key))
		s, err := e.Events.WatchEvents(ctx, &knkv1.WatchEventsRequest{})
		if err == nil {
			_, err = s.Header() // the server has accepted or refused the stream
			if err == nil {
				// A refused stream ends with its status at once; an open one waits.
				done := make(chan error, 1)
				go func() { _, err := s.Recv(); done <- err }()
				select {
				case err = <-done:
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
		return cancel, err
	}
	c1, err1 := open(e.AdminKey)
	_, err2 := open(e.AdminKey)
	c3, err3 := open(e.AdminKey)
	defer c3()
	if err1 != nil || err2 != nil || status.Code(err3) != codes.ResourceExhausted {
		t.Fatalf("three watches of one key: %v, %v, %v; want the third RESOURCE_EXHAUSTED", err1, err2, err3)
	}
	r := e.REST(t, http.MethodGet, "/v1/events:watch", e.AdminKey, nil)
	if r.Status != http.StatusTooManyRequests {
		t.Errorf("a third watch over REST: %d %s, want 429", r.Status, r.Raw)
	}
	other, err := e.Orgs.CreateApiKey(testenv.Ctx(e.AdminKey), &knkv1.CreateApiKeyRequest{Parent: "organizations/admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(other.Secret); err != nil {
		t.Errorf("another key's watch: %v", err)
	}
	c1()
	time.Sleep(100 * time.Millisecond) // the server sees the cancellation
	if _, err := open(e.AdminKey); err != nil {
		t.Errorf("a watch after one closed: %v", err)
	}
}

// A client that pings more often than KeepaliveMinTime is sent GOAWAY
// ENHANCE_YOUR_CALM and disconnected.
func TestKeepalivePingFloodDisconnected(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(*server.Limits) {})
	conn, err := net.Dial("tcp", e.Server.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.WriteSettings()
	for i := range 10 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", g.ErrCode)
			}
			return
		}
	}
}

// A gRPC connection that never finishes its handshake is closed after
// ReadHeaderTimeout.
func TestGRPCHandshakeTimeout(t *testing.T) {
	t.Parallel()
	e := startLimited(t, func(l *server.Limits) { l.ReadHeaderTimeout = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", e.Server.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	_, err = io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("silent gRPC connection: %v after %s, want closed after 0.5s", err, time.Since(start))
	}
}
