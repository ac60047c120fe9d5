// Package server wires knkd: the store, the services, the gRPC server with its
// interceptors, and the grpc-gateway REST server in front of it.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/encoding/protojson"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/services/access"
	"github.com/knk-id/knk/services/cadre"
	"github.com/knk-id/knk/services/certificate"
	"github.com/knk-id/knk/services/event"
	"github.com/knk-id/knk/services/forum"
	"github.com/knk-id/knk/services/organization"
	"github.com/knk-id/knk/services/privacy"
	"github.com/knk-id/knk/services/stats"
	"github.com/knk-id/knk/services/training"
)

// Config is knkd's configuration.
type Config struct {
	DB       string // SQLite file path or postgres:// DSN
	GRPCAddr string
	HTTPAddr string
	Logger   *slog.Logger
	Now      func() time.Time
	// MinAge is the minimum age of a cadre at registration.
	MinAge int
	// PassMark is the lowest passing score of a topic.
	PassMark int32
	// AttendanceThreshold is the share of a session's days (percent, default 80)
	// a cadre must attend to be credited.
	AttendanceThreshold int32
	// SigningKeyFile is a PKCS#8 PEM Ed25519 key that signs certificates; empty
	// means a key generated and kept in the store on first start.
	SigningKeyFile string
	// KeyEncryptionKeyFile holds the key that encrypts the stored signing keys.
	// Empty means, on SQLite, DB+".kek", created on first start; PostgreSQL
	// needs it given (the same file on every replica).
	KeyEncryptionKeyFile string
	// ValidYears is how long a certificate is valid.
	ValidYears int
	// ExpiryInterval is how often the expiry sweep runs; negative disables it.
	ExpiryInterval time.Duration
	// NIKChecksPerMinute bounds, per API key, the answers that tell whether a NIK
	// is registered (default 120; negative: no limit).
	NIKChecksPerMinute int
	// ShutdownTimeout bounds how long in-flight calls may take to finish.
	ShutdownTimeout time.Duration
	// PublicURL is the base of every verification link and QR code; empty means
	// DefaultPublicURL. See parsePublicURL.
	PublicURL string
	// AccessLogRetention is how long access-log entries are kept (default 2 years).
	AccessLogRetention time.Duration
	// AccessLogSync answers a read of personal data only once its access-log
	// entry is on disk (default: the entry is written in the next batch).
	AccessLogSync bool
	// EraseAfter is how long after withdrawal a cadre's personal fields are kept
	// (default 5 years).
	EraseAfter time.Duration
	// NIKHashKeyFile holds the key of the hash that replaces erased NIKs; empty
	// means a file beside a SQLite database (on PostgreSQL: no erasure).
	NIKHashKeyFile string
	// Limits bound bodies, time, connections and streams; zero fields take
	// DefaultLimits.
	Limits Limits
	// AdminAddr, when set, serves Prometheus metrics on /metrics (a loopback
	// address only; see admin.go); Pprof adds net/http/pprof there.
	AdminAddr string
	Pprof     bool
	// Edge is TLS, abuse limits and the API surface (tls.go, abuse.go).
	Edge
}

// Edge is how knkd faces the network.
type Edge struct {
	// TLSCert and TLSKey are PEM files served on both ports (reloaded on SIGHUP
	// or when they change); both empty means plaintext.
	TLSCert, TLSKey string
	// ClientCA, when set, is a PEM file of the CAs whose client certificates the
	// gRPC port requires (internal services); the REST port stays open.
	ClientCA string
	// AllowPlaintext lets knkd listen off loopback without TLS.
	AllowPlaintext bool
	// PublicReflection lets gRPC reflection answer without a key.
	PublicReflection bool
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies Proxies
	// AnonymousLimit limits calls without a key to public methods and pages, per
	// client address; FailedAuthLimit limits calls with a wrong key.
	AnonymousLimit, FailedAuthLimit Limit
	// TLSReloadInterval is how often the TLS files are checked for changes
	// (default 5s).
	TLSReloadInterval time.Duration
}

// statsCompactEvery is how often the statistics counters' deltas are folded in.
const statsCompactEvery = 2 * time.Second

// Server is a running knkd.
type Server struct {
	cfg      Config
	db       *db.DB
	grpc     *grpc.Server
	health   *health.Server
	http     *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	gwClient *grpc.ClientConn
	gwLis    *gatewayListener
	tls      *tlsSetup
	guard    *guard
	certs    *certificate.Service
	access   *access.Log
	privacy  *privacy.Service
	obs      *observability // nil without an admin address
	stopping chan struct{}  // closed when shutdown starts
}

// New opens the store, builds the services and binds both listeners. Call Serve
// to answer requests.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinAge == 0 {
		cfg.MinAge = 18
	}
	if cfg.PassMark == 0 {
		cfg.PassMark = 70
	}
	if cfg.ValidYears == 0 {
		cfg.ValidYears = 3
	}
	if cfg.ExpiryInterval == 0 {
		cfg.ExpiryInterval = time.Minute
	}
	if cfg.NIKChecksPerMinute == 0 {
		cfg.NIKChecksPerMinute = 120
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 20 * time.Second
	}
	if cfg.PublicURL, err = parsePublicURL(cfg.PublicURL); err != nil {
		return nil, err
	}
	if cfg.AccessLogRetention == 0 {
		cfg.AccessLogRetention = privacy.DefaultAccessLogRetention
	}
	if cfg.EraseAfter == 0 {
		cfg.EraseAfter = privacy.DefaultEraseAfter
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.TLSReloadInterval == 0 {
		cfg.TLSReloadInterval = 5 * time.Second
	}
	s := &Server{cfg: cfg, stopping: make(chan struct{})}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	kek := cfg.KeyEncryptionKeyFile
	if kek == "" {
		if db.IsPostgres(cfg.DB) {
			return nil, errors.New("--key-encryption-key-file (KNK_KEY_ENCRYPTION_KEY_FILE) is required with PostgreSQL: " +
				"make one file with `openssl rand -base64 32 > knk.kek`, keep it apart from the database and give every replica the same file")
		}
		kek = cfg.DB + ".kek"
	}
	// Only the SQLite default beside the database is made on first start; a file
	// named elsewhere must exist.
	createKEK := !db.IsPostgres(cfg.DB) && kek == cfg.DB+".kek"
	if s.db, err = db.Open(ctx, cfg.DB); err != nil {
		return nil, err
	}
	if s.tls, err = newTLS(cfg); err != nil {
		return nil, err
	}
	if s.obs, err = newObservability(cfg, s.tls); err != nil {
		return nil, err
	}
	orgs := &organization.Service{DB: s.db, Now: cfg.Now}
	s.guard = &guard{log: cfg.Logger, keys: orgs, proxies: cfg.TrustedProxies, publicReflection: cfg.PublicReflection,
		anonymous:  cfg.AnonymousLimit.limiter(DefaultAnonymousLimit, cfg.Now),
		failedAuth: cfg.FailedAuthLimit.limiter(DefaultFailedAuthLimit, cfg.Now)}
	s.grpc = grpc.NewServer(append(append(s.obs.grpcOptions(), cfg.Limits.grpcOptions()...),
		grpc.ChainUnaryInterceptor(s.guard.unary),
		grpc.ChainStreamInterceptor(s.guard.stream, s.streamLimits()),
	)...)
	knkv1.RegisterOrganizationServiceServer(s.grpc, orgs)
	s.access = access.New(s.db, cfg.Now, cfg.Logger, cfg.AccessLogSync)
	nikKey, err := loadNIKKey(cfg)
	if err != nil {
		return nil, err
	}
	cadres := &cadre.Service{DB: s.db, Orgs: orgs, Now: cfg.Now, MinAge: cfg.MinAge,
		Guard: cadre.NewGuard(cfg.NIKChecksPerMinute, cfg.Logger, cfg.Now), Access: s.access, NIKKey: nikKey}
	knkv1.RegisterCadreServiceServer(s.grpc, cadres)
	train := &training.Service{DB: s.db, Orgs: orgs, Cadres: cadres, Now: cfg.Now, PassMark: cfg.PassMark,
		AttendanceThreshold: cfg.AttendanceThreshold}
	knkv1.RegisterTrainingServiceServer(s.grpc, train)
	signer, err := certificate.LoadSigner(ctx, s.db, certificate.SignerConfig{
		File: cfg.SigningKeyFile, KEKFile: kek, CreateKEK: createKEK, Now: cfg.Now(),
	})
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(kek); err == nil && st.Mode().Perm()&0o077 != 0 {
		cfg.Logger.Warn("the key-encryption key file is readable by other users; make it readable by knkd only (chmod 600)", "file", kek)
	}
	s.certs = &certificate.Service{DB: s.db, Cadres: cadres, Signer: signer, Now: cfg.Now, ValidYears: cfg.ValidYears,
		Orgs: orgs, PublicURL: cfg.PublicURL}
	if _, err := s.certs.ResignV1(ctx, cfg.Logger); err != nil {
		return nil, fmt.Errorf("re-sign certificates with verification codes: %w", err)
	}
	knkv1.RegisterCertificateServiceServer(s.grpc, s.certs)
	knkv1.RegisterForumServiceServer(s.grpc, &forum.Service{DB: s.db, Orgs: orgs, Scope: cadre.ScopeSQL, Names: cadres.DisplayNames})
	events := &event.Service{DB: s.db, Stopping: s.stopping}
	knkv1.RegisterEventServiceServer(s.grpc, events)
	s.privacy = &privacy.Service{DB: s.db, Cadres: cadres, Training: train, Certs: s.certs, Events: events,
		Access: s.access, Now: cfg.Now, AccessLogRetention: cfg.AccessLogRetention, EraseAfter: cfg.EraseAfter}
	knkv1.RegisterPrivacyServiceServer(s.grpc, s.privacy)
	if nikKey == nil {
		cfg.Logger.Warn("withdrawn cadres are not erased: set --nik-hash-key-file (the same file on every replica)")
	}
	knkv1.RegisterStatsServiceServer(s.grpc, &stats.Service{DB: s.db})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	for name := range s.grpc.GetServiceInfo() { // per-service health, as the health protocol expects
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if err := s.obs.start(cfg, s.grpc, s.db); err != nil {
		return nil, err
	}

	if s.grpcLis, err = listen(cfg.GRPCAddr, cfg.Limits.MaxGRPCConns); err != nil {
		return nil, err
	}
	if s.httpLis, err = listen(cfg.HTTPAddr, cfg.Limits.MaxHTTPConns); err != nil {
		return nil, err
	}
	if s.certs.IssueRefusal = issueRefusal(cfg.PublicURL, s.grpcLis.Addr(), s.httpLis.Addr()); s.certs.IssueRefusal != "" {
		cfg.Logger.Warn("certificates will not be issued: " + s.certs.IssueRefusal)
	}
	if err := checkPlaintext(s.tls, cfg.AllowPlaintext, s.grpcLis, s.httpLis); err != nil {
		return nil, err
	}
	if s.tls != nil {
		s.grpcLis = tls.NewListener(s.grpcLis, s.tls.grpc)
	}
	gw, err := s.gateway(ctx)
	if err != nil {
		return nil, err
	}
	s.http = s.httpServer(s.obs.instrument(s.edgeHandler(s.limitBodies(gw))))
	return s, nil
}

// gateway returns the REST handler. It calls the gRPC server through an
// in-process listener, so every REST call passes through the same interceptors
// as a gRPC call.
func (s *Server) gateway(ctx context.Context) (http.Handler, error) {
	mux := runtime.NewServeMux(append(s.obs.routeMiddleware(),
		// HTTPBodyMarshaler sends a google.api.HttpBody (the PDF) as it is.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{},
		}}),
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if http.CanonicalHeaderKey(key) == "X-Request-Id" {
				return requestIDKey, true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		runtime.WithMetadata(gatewayMetadata),
		runtime.WithErrorHandler(limitErrorHandler), // then httpError
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithMiddlewares(matchProbe),
	)...)
	var err error
	s.gwLis = newGatewayListener()
	s.gwClient, err = s.gwLis.dial()
	if err != nil {
		return nil, err
	}
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		knkv1.RegisterOrganizationServiceHandler,
		knkv1.RegisterCadreServiceHandler,
		knkv1.RegisterTrainingServiceHandler,
		knkv1.RegisterCertificateServiceHandler,
		knkv1.RegisterForumServiceHandler,
		knkv1.RegisterEventServiceHandler,
		knkv1.RegisterStatsServiceHandler,
		// Last: the mux tries the routes registered last first, and
		// cadres/{id}:accessLog must not be taken for GetCadre's cadres/{id}.
		knkv1.RegisterPrivacyServiceHandler,
	} {
		if err := register(ctx, mux, s.gwClient); err != nil {
			return nil, err
		}
	}
	// Registered last, so it takes the place of the generated import handler.
	if err := mux.HandlePath(http.MethodPost, importPath, s.importREST(mux, knkv1.NewCadreServiceClient(s.gwClient))); err != nil {
		return nil, err
	}
	if err := mux.HandlePath(http.MethodGet, "/healthz", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		w.Write([]byte("ok\n"))
	}); err != nil {
		return nil, err
	}
	if err := s.mountVerifyPage(mux); err != nil {
		return nil, err
	}
	return mux, nil
}

// dialTarget is a loopback address for a listener bound to all interfaces.
func dialTarget(addr net.Addr) string {
	tcp := addr.(*net.TCPAddr)
	if tcp.IP.IsUnspecified() {
		return fmt.Sprintf("127.0.0.1:%d", tcp.Port)
	}
	return tcp.String()
}

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return dialTarget(s.grpcLis.Addr()) }

// HTTPAddr is the bound REST address.
func (s *Server) HTTPAddr() string { return dialTarget(s.httpLis.Addr()) }

// DB is the open store.
func (s *Server) DB() *db.DB { return s.db }

// Serve answers requests until ctx is done, then drains: REST stops accepting and
// finishes its calls, then gRPC does the same, then the store closes.
func (s *Server) Serve(ctx context.Context) error {
	log := s.cfg.Logger
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.grpc.Serve(s.grpcLis) })
	g.Go(func() error { return s.grpc.Serve(s.gwLis) })
	if s.tls != nil {
		hup := sighup() // before the first log line, so a SIGHUP after it always reloads
		g.Go(func() error {
			s.tls.certs.watch(gctx, hup, s.cfg.TLSReloadInterval)
			return nil
		})
	}
	g.Go(func() error {
		if err := s.serveHTTP(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if s.obs != nil {
		g.Go(func() error {
			if err := s.obs.admin.Serve(s.obs.lis); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		stats.RunCompaction(gctx, s.db, statsCompactEvery, log)
		return nil
	})
	if s.cfg.ExpiryInterval > 0 {
		g.Go(func() error {
			s.certs.RunExpiry(gctx, s.cfg.ExpiryInterval, log)
			return nil
		})
		g.Go(func() error {
			s.privacy.RunSweep(gctx, s.cfg.ExpiryInterval, log)
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down: draining in-flight calls")
		s.health.Shutdown()
		close(s.stopping)
		shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		httpErr := s.http.Shutdown(shutdownCtx)
		if s.obs != nil {
			s.obs.admin.Close() // metrics and profiles need no draining
		}
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-shutdownCtx.Done():
			s.grpc.Stop()
		}
		return httpErr
	})
	log.Info("knkd serving", append(s.servingAttrs(), "admin_addr", s.AdminAddr())...)
	err := g.Wait()
	return errors.Join(err, s.close())
}

func (s *Server) close() error {
	var errs []error
	if s.gwClient != nil {
		errs = append(errs, s.gwClient.Close())
	}
	if s.obs != nil {
		s.obs.lis.Close()
	}
	for _, l := range []net.Listener{s.grpcLis, s.httpLis} {
		if l != nil {
			l.Close()
		}
	}
	if s.gwLis != nil {
		s.gwLis.Close()
	}
	if s.access != nil {
		s.access.Close() // after the servers: every answered read's entry is written
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}
