package server

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/knk-id/knk/internal/metrics"
	"github.com/knk-id/knk/internal/ratelimit"
)

// gatewayListener is the gRPC server's in-process listener for the REST gateway:
// the gateway's calls pass every interceptor, like a call from outside, but need
// neither TLS nor a client certificate, and their peer is gatewayAddr, the only
// peer whose client-address metadata is believed.
type gatewayListener struct{ *bufconn.Listener }

func newGatewayListener() *gatewayListener { return &gatewayListener{bufconn.Listen(1 << 20)} }

func (l *gatewayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return gatewayConn{c}, nil
}

func (l *gatewayListener) Addr() net.Addr { return gatewayAddr{} }

// dial connects the gateway to the gRPC server through the listener.
func (l *gatewayListener) dial(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///knkd-gateway", append(opts,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
}

type gatewayConn struct{ net.Conn }

func (gatewayConn) RemoteAddr() net.Addr { return gatewayAddr{} }
func (gatewayConn) LocalAddr() net.Addr  { return gatewayAddr{} }

// secureHeaders sets, on every response, X-Content-Type-Options: nosniff, and on
// every keyed request, every API answer and every verification page (which
// names the holder), Cache-Control: no-store, so that no browser or shared
// cache keeps personal data.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Header.Get("Authorization") != "" || strings.HasPrefix(r.URL.Path, "/v1/") || isVerifyPage(r.URL.Path) {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// probeKey marks a request that only asks the mux whether a route matches.
type probeKey struct{}

// matchProbe is a gateway middleware: for a probe request it records that a route
// matched and stops there, so that allowedMethods can ask the mux which methods a
// path has without running any handler.
func matchProbe(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if matched, ok := r.Context().Value(probeKey{}).(*bool); ok {
			*matched = true
			return
		}
		next(w, r, params)
	}
}

var probedMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowedMethods lists the methods mux routes for r's path.
func allowedMethods(mux *runtime.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range probedMethods {
		matched := false
		probe, err := http.NewRequestWithContext(context.WithValue(r.Context(), probeKey{}, &matched), m, r.URL.String(), nil)
		if err != nil {
			continue
		}
		mux.ServeHTTP(discard{}, probe)
		if matched {
			allow = append(allow, m)
		}
	}
	return allow
}

// routingError answers a method the path does not have with 405 and Allow (the
// gateway's default is 501), and other routing errors as the gateway does.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	if _, probing := r.Context().Value(probeKey{}).(*bool); probing {
		return
	}
	if code != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
		return
	}
	allow := allowedMethods(mux, r)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	msg := fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))
	runtime.HTTPError(ctx, mux, m, w, r, &runtime.HTTPStatusError{
		HTTPStatus: http.StatusMethodNotAllowed, Err: status.Error(codes.Unimplemented, msg)})
}

// httpError is the gateway's error handler plus Retry-After for an answer that
// carries a RetryInfo (RESOURCE_EXHAUSTED from a rate limit).
func httpError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				w.Header().Set("Retry-After", retryAfterSeconds(ri.GetRetryDelay().AsDuration()))
			}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// retryAfterSeconds is a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// isVerifyPage reports whether path is one of the public HTML verification pages.
func isVerifyPage(path string) bool {
	return path == "/verify" || strings.HasPrefix(path, "/verify/")
}

// limitPages applies the anonymous limit to the HTML verification pages, which
// do not pass through the gRPC interceptor; over the limit the visitor gets a
// short page in Indonesian. Calls under /v1/ are limited by the interceptor.
func limitPages(lim *ratelimit.Limiter, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isVerifyPage(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		client := httpClient(r)
		ok, retry := lim.Allow(bucketKey(client))
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		metrics.RateLimited("anonymous_pages")
		log.Info("page refused: too many requests", "path", "/verify", "client", client.String(), "retry_after_ms", retry.Milliseconds())
		secs := retryAfterSeconds(retry)
		h := w.Header()
		h.Set("Retry-After", secs)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.WriteHeader(http.StatusTooManyRequests)
		tooManyPage.Execute(w, secs) //nolint:errcheck // the client has gone
	})
}

var tooManyPage = template.Must(template.New("429").Parse(`<!doctype html>
<html lang="id">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Terlalu banyak permintaan</title>
<style>body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;background:#fff}</style></head>
<body>
<h1>Terlalu banyak permintaan</h1>
<p>Terlalu banyak permintaan pemeriksaan sertifikat dari alamat Anda dalam waktu singkat.
Silakan coba lagi dalam {{.}} detik.</p>
</body>
</html>
`))

// edgeHandler is the REST port's handler: security headers, the client address,
// the page limit, then the gateway (and the pages registered on it).
func (s *Server) edgeHandler(gw http.Handler) http.Handler {
	return secureHeaders(s.cfg.TrustedProxies.withHTTPClient(limitPages(s.guard.anonymous, s.cfg.Logger, gw)))
}
