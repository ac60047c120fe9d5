package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/metrics"
	"github.com/knk-id/knk/services/stats"
)

// observability is what the admin port serves: Prometheus metrics of this
// server and of the process, and, when asked for, the Go profiler. It exists
// only when Config.AdminAddr is set; the public ports never serve it.
type observability struct {
	grpc  *grpcprom.ServerMetrics
	http  *prometheus.HistogramVec
	lis   net.Listener
	admin *http.Server
}

// latencyBuckets suit calls from a fraction of a millisecond to tens of seconds
// (an import of a large roster).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// newObservability binds the admin port. On loopback it is plain HTTP; any
// other address needs TLS with client certificates (--tls-cert, --tls-key and
// --client-ca), so that only holders of a certificate from that CA (the
// Prometheus server) can read metrics or take profiles.
func newObservability(cfg Config, t *tlsSetup) (*observability, error) {
	if cfg.AdminAddr == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("--admin-addr: %w", err)
	}
	if ip := lis.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		if t == nil || t.grpc.ClientAuth != tls.RequireAndVerifyClientCert {
			lis.Close()
			return nil, fmt.Errorf("--admin-addr %s is not a loopback address: off loopback the admin port needs TLS with "+
				"client certificates (give --tls-cert, --tls-key and --client-ca), or listen on 127.0.0.1", cfg.AdminAddr)
		}
		conf := t.grpc.Clone() // the server certificate and the client CAs of the gRPC port
		conf.NextProtos = []string{"h2", "http/1.1"}
		lis = tls.NewListener(lis, conf)
	}
	return &observability{
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(latencyBuckets))),
		http: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "knk_http_request_duration_seconds",
			Help:    "REST (grpc-gateway) requests by method, route template and HTTP status.",
			Buckets: latencyBuckets,
		}, []string{"method", "route", "code"}),
		lis: lis,
	}, nil
}

// grpcOptions are the interceptors that count and time every call; they come
// first, so they see the code the client sees.
func (o *observability) grpcOptions() []grpc.ServerOption {
	if o == nil {
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(o.grpc.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(o.grpc.StreamServerInterceptor()),
	}
}

// start registers every collector and builds the admin HTTP server.
func (o *observability) start(cfg Config, srv *grpc.Server, store *db.DB) error {
	if o == nil {
		return nil
	}
	o.grpc.InitializeMetrics(srv) // every method shows, with zeros, before its first call
	reg, err := metrics.NewRegistry(o.grpc, o.http, &certificateCollector{store: store})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, Timeout: 10 * time.Second}))
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	o.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// routeMiddleware tells the HTTP histogram which route template a request
// matched (never the path itself, which holds names and would explode the series).
func (o *observability) routeMiddleware() []runtime.ServeMuxOption {
	if o == nil {
		return nil
	}
	return []runtime.ServeMuxOption{runtime.WithMiddlewares(func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			if rec, ok := r.Context().Value(recorderKey{}).(*statusRecorder); ok {
				if p, ok := runtime.HTTPPattern(r.Context()); ok {
					rec.route = p.String()
				}
			}
			next(w, r, params)
		}
	})}
}

// instrument times every REST request.
func (o *observability) instrument(h http.Handler) http.Handler {
	if o == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK, route: "unmatched"}
		h.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), recorderKey{}, rec)))
		o.http.WithLabelValues(r.Method, rec.route, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
}

type recorderKey struct{}

// statusRecorder keeps the status a handler wrote and the route it matched.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	route string
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// certificateCollector reports the certificates in the store by province and
// state when scraped.
type certificateCollector struct{ store *db.DB }

var certificatesDesc = prometheus.NewDesc("knk_certificates",
	"Certificates in the store by province and state.", []string{"province", "state"}, nil)

func (c *certificateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certificatesDesc }

func (c *certificateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := stats.CertificatesByProvince(ctx, c.store) // from the counters: constant time
	if err != nil {
		ch <- prometheus.NewInvalidMetric(certificatesDesc, err)
		return
	}
	for province, states := range counts {
		for st, n := range states {
			ch <- prometheus.MustNewConstMetric(certificatesDesc, prometheus.GaugeValue, float64(n),
				province, knkv1.Certificate_State_name[int32(st)])
		}
	}
}

// AdminAddr is the bound admin (metrics) address, "" when there is none.
func (s *Server) AdminAddr() string {
	if s.obs == nil {
		return ""
	}
	return dialTarget(s.obs.lis.Addr())
}
