package server

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Limits bounds what one client can make knkd hold: bytes, time, connections
// and streams. Every limit is a knkd flag; DefaultLimits holds the defaults, and
// a zero field takes its default.
type Limits struct {
	// MaxBodyBytes is the largest REST request body (413 beyond). A
	// Content-Length above it is refused before authentication and before a
	// byte of the body is read; a chunked body is cut when it passes it.
	MaxBodyBytes int64
	// MaxImportLineBytes is the longest line of a REST import (NDJSON), which
	// streams and has no total limit (413 beyond).
	MaxImportLineBytes int
	// ReadHeaderTimeout bounds the REST request line and headers, and the gRPC
	// connection handshake.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a REST request body (408 beyond), except an
	// import, which streams (see StreamIdleTimeout).
	ReadTimeout time.Duration
	// StreamIdleTimeout is the longest wait for the next message of a client
	// stream (a gRPC import row) or the next line of a REST import:
	// DEADLINE_EXCEEDED (408 over REST) beyond.
	StreamIdleTimeout time.Duration
	// IdleTimeout closes a REST keep-alive connection, or a gRPC connection,
	// that has carried no call for this long.
	IdleTimeout time.Duration
	// MaxHTTPConns and MaxGRPCConns are the most open connections of the REST
	// and the gRPC listener. When one is full, a new connection replaces the
	// oldest one that has not sent a byte; if every one has, it waits to be
	// accepted. A gRPC connection costs about as much memory as four REST ones.
	MaxHTTPConns int
	MaxGRPCConns int
	// MaxStreams is the most concurrent gRPC calls on one connection.
	MaxStreams uint32
	// MaxRecvBytes is the largest gRPC message knkd receives (RESOURCE_EXHAUSTED beyond).
	MaxRecvBytes int
	// KeepaliveMinTime is the shortest interval between a client's keepalive
	// pings; a client that pings more often is disconnected.
	KeepaliveMinTime time.Duration
	// MaxWatchesPerKey is the most concurrent WatchEvents streams of one API
	// key (RESOURCE_EXHAUSTED beyond).
	MaxWatchesPerKey int
}

// DefaultLimits are the limits knkd runs with unless told otherwise.
var DefaultLimits = Limits{
	MaxBodyBytes:       1 << 20,
	MaxImportLineBytes: 64 << 10,
	ReadHeaderTimeout:  5 * time.Second,
	ReadTimeout:        30 * time.Second,
	StreamIdleTimeout:  30 * time.Second,
	IdleTimeout:        2 * time.Minute,
	MaxHTTPConns:       2048,
	MaxGRPCConns:       512,
	MaxStreams:         256,
	MaxRecvBytes:       4 << 20,
	KeepaliveMinTime:   10 * time.Second,
	MaxWatchesPerKey:   8,
}

// withDefaults fills every zero field from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick(&l.MaxBodyBytes, d.MaxBodyBytes)
	pick(&l.MaxImportLineBytes, d.MaxImportLineBytes)
	pick(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	pick(&l.ReadTimeout, d.ReadTimeout)
	pick(&l.StreamIdleTimeout, d.StreamIdleTimeout)
	pick(&l.IdleTimeout, d.IdleTimeout)
	pick(&l.MaxHTTPConns, d.MaxHTTPConns)
	pick(&l.MaxGRPCConns, d.MaxGRPCConns)
	pick(&l.MaxStreams, d.MaxStreams)
	pick(&l.MaxRecvBytes, d.MaxRecvBytes)
	pick(&l.KeepaliveMinTime, d.KeepaliveMinTime)
	pick(&l.MaxWatchesPerKey, d.MaxWatchesPerKey)
	return l
}

func pick[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// grpcOptions are the gRPC server's limits.
func (l Limits) grpcOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(l.MaxStreams),
		grpc.MaxRecvMsgSize(l.MaxRecvBytes),
		grpc.SharedWriteBuffer(true), // an idle connection holds no write buffer
		grpc.ConnectionTimeout(l.ReadHeaderTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.IdleTimeout,
			Time:              time.Minute, // then ping an idle client to find dead peers
			Timeout:           20 * time.Second,
		}),
	}
}

// listen binds addr with at most max connections open at once.
func listen(addr string, max int) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &capListener{Listener: lis, max: max, conns: list.New()}
	c.freed = sync.NewCond(&c.mu)
	return c, nil
}

// capListener holds at most max connections. When it is full, a new connection
// takes the place of the oldest one that holds its place for nothing: one that
// has not sent a byte in its first silentGrace, or a REST keep-alive connection
// between requests. When every connection is busy, the new one waits, and those
// after it wait in the kernel's accept queue.
type capListener struct {
	net.Listener
	max    int
	mu     sync.Mutex
	freed  *sync.Cond
	conns  *list.List // of *capConn, oldest first
	closed bool
}

func (l *capListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	for l.conns.Len() >= l.max {
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		if victim := l.oldestSilent(); victim != nil {
			if wait := silentGrace - time.Since(victim.accepted); wait > 0 && !victim.idle.Load() {
				// Every silent one is new: give it the time to speak.
				l.mu.Unlock()
				time.Sleep(wait)
				l.mu.Lock()
				continue
			}
			l.drop(victim)
			l.mu.Unlock()
			victim.Conn.Close()
			l.mu.Lock()
			continue
		}
		l.freed.Wait()
	}
	cc := &capConn{Conn: c, l: l, accepted: time.Now()}
	cc.elem = l.conns.PushBack(cc)
	l.mu.Unlock()
	return cc, nil
}

// oldestSilent is the oldest connection that holds its place for nothing: it
// has sent nothing, or it is a REST keep-alive connection between requests.
func (l *capListener) oldestSilent() *capConn {
	for e := l.conns.Front(); e != nil; e = e.Next() {
		if c := e.Value.(*capConn); !c.spoke.Load() || c.idle.Load() {
			return c
		}
	}
	return nil
}

// trackIdle is the REST server's ConnState hook: a keep-alive connection
// waiting for its next request may give its place to a new one.
func trackIdle(c net.Conn, state http.ConnState) {
	cc, ok := c.(*capConn)
	if !ok {
		return
	}
	cc.idle.Store(state == http.StateIdle)
	if state == http.StateIdle { // an Accept waiting for a place may take this one
		cc.l.mu.Lock()
		cc.l.freed.Signal()
		cc.l.mu.Unlock()
	}
}

// drop forgets c; l.mu is held.
func (l *capListener) drop(c *capConn) {
	if c.elem != nil {
		l.conns.Remove(c.elem)
		c.elem = nil
		l.freed.Signal()
	}
}

// Close also wakes an Accept waiting for a place.
func (l *capListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	l.freed.Broadcast()
	l.mu.Unlock()
	return err
}

// silentGrace is how long a new connection may stay silent before a newer one
// may take its place.
const silentGrace = 250 * time.Millisecond

type capConn struct {
	net.Conn
	l        *capListener
	accepted time.Time
	elem     *list.Element // guarded by l.mu
	spoke    atomic.Bool
	idle     atomic.Bool // a REST connection between requests
}

func (c *capConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.spoke.Load() {
		c.spoke.Store(true)
	}
	return n, err
}

func (c *capConn) Close() error {
	c.l.mu.Lock()
	c.l.drop(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// httpServer is the REST server with the limits on time and headers.
func (s *Server) httpServer(h http.Handler) *http.Server {
	l := s.cfg.Limits
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         trackIdle,
	}
}

// importPath is the REST import route, which streams its body line by line
// instead of taking the body limit.
const importPath = "/v1/cadres:import"

// limitBodies refuses a body above MaxBodyBytes before the gateway (and so
// authentication) sees the request, and cuts a body that arrives too slowly.
// The cause is kept on the body for limitErrorHandler.
func (s *Server) limitBodies(next http.Handler) http.Handler {
	l := s.cfg.Limits
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || (r.Method == http.MethodPost && r.URL.Path == importPath) {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > l.MaxBodyBytes {
			w.Header().Set("Connection", "close")
			writeError(w, r, tooLarge(l.MaxBodyBytes))
			return
		}
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(l.ReadTimeout)) //nolint:errcheck // unsupported only on writers we do not use
		r.Body = &limitedBody{body: http.MaxBytesReader(w, r.Body, l.MaxBodyBytes), rc: rc, max: l.MaxBodyBytes, timeout: l.ReadTimeout}
		next.ServeHTTP(w, r)
	})
}

// limitedBody remembers why reading a body failed, so that the answer is 413 or
// 408 rather than the gateway's 400 "bad JSON".
type limitedBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	max     int64
	timeout time.Duration
	err     error // the status to answer, once a limit was hit
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.Is(err, io.EOF):
		b.rc.SetReadDeadline(time.Time{}) //nolint:errcheck // the body is read: no deadline on the rest of the call
	case errors.As(err, &tooBig):
		b.err = tooLarge(b.max)
	case errors.As(err, &netErr) && netErr.Timeout():
		b.err = tooSlow(fmt.Sprintf("the request body did not arrive within %s: send it at once, or in smaller parts", b.timeout))
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.body.Close() }

// limitErrorHandler answers the limit a body broke, if it broke one, instead of
// the gateway's decoding error; then it is httpError.
func limitErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if b, ok := r.Body.(*limitedBody); ok && b.err != nil {
		err = b.err
		w.Header().Set("Connection", "close")
	}
	httpError(ctx, mux, m, w, r, err)
}

// tooLarge is 413 over REST and RESOURCE_EXHAUSTED over gRPC.
func tooLarge(limit int64) error {
	return &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestEntityTooLarge,
		Err: status.Errorf(codes.ResourceExhausted, "the request body is larger than %d bytes: send less at once", limit)}
}

// tooSlow is 408 over REST and DEADLINE_EXCEEDED over gRPC.
func tooSlow(msg string) error {
	return &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestTimeout, Err: status.Error(codes.DeadlineExceeded, msg)}
}

// writeError answers err as the gateway would, outside the gateway.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	runtime.DefaultHTTPErrorHandler(r.Context(), runtime.NewServeMux(), &runtime.JSONPb{}, w, r, err)
}

// streamLimits are the limits on gRPC streams: a deadline for each message of a
// client stream, and at most MaxWatchesPerKey WatchEvents per API key. It runs
// after authentication.
func (s *Server) streamLimits() grpc.StreamServerInterceptor {
	w := &watchCounter{open: map[[32]byte]int{}}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if info.FullMethod == watchMethod {
			release, err := w.acquire(ss.Context(), s.cfg.Limits.MaxWatchesPerKey)
			if err != nil {
				return err
			}
			defer release()
		}
		if info.IsClientStream {
			ss = &idleStream{ServerStream: ss, timeout: s.cfg.Limits.StreamIdleTimeout}
		}
		return handler(srv, ss)
	}
}

const watchMethod = "/knk.v1.EventService/WatchEvents"

// watchCounter counts the open WatchEvents streams of each key, by the key's
// SHA-256 (the secret itself is not kept).
type watchCounter struct {
	mu   sync.Mutex
	open map[[32]byte]int
}

func (c *watchCounter) acquire(ctx context.Context, limit int) (release func(), err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	key := sha256.Sum256([]byte(first(md, "authorization")))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] >= limit {
		return nil, status.Errorf(codes.ResourceExhausted,
			"this key already has %d WatchEvents streams open, the most allowed: close one, or resume from the last sequence on one stream", limit)
	}
	c.open[key]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.open[key]--; c.open[key] == 0 {
			delete(c.open, key)
		}
	}, nil
}

// idleStream ends a client stream with DEADLINE_EXCEEDED when its next message
// does not come within timeout. The receive that was waiting ends when the call
// does, because the handler returns the error.
type idleStream struct {
	grpc.ServerStream
	timeout time.Duration
}

func (s *idleStream) RecvMsg(m any) error {
	got := make(chan error, 1)
	go func() { got <- s.ServerStream.RecvMsg(m) }()
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case err := <-got:
		return err
	case <-t.C:
		return status.Errorf(codes.DeadlineExceeded,
			"no message arrived for %s, so the stream was closed: send without long pauses (rows already answered stay)", s.timeout)
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// trimLine is a line without its spaces and carriage return.
func trimLine(b []byte) string { return strings.TrimSpace(string(b)) }
