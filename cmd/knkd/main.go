// Command knkd is the KNK server: gRPC and grpc-gateway REST on one store.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/knk-id/knk/internal/secretarg"
	"github.com/knk-id/knk/internal/server"
)

type cli struct {
	DB                  string        `help:"SQLite file path, or a postgres:// DSN without a password (a password goes in KNK_DB, --db-file, PGPASSWORD or ~/.pgpass, never on the command line)." default:"knk.db" env:"KNK_DB"`
	DBFile              string        `name:"db-file" help:"File holding the SQLite path or postgres:// DSN (overrides --db); use it for a DSN with a password." env:"KNK_DB_FILE" type:"existingfile"`
	GRPCAddr            string        `name:"grpc-addr" help:"gRPC listen address." default:"127.0.0.1:9090" env:"KNK_GRPC_ADDR"`
	HTTPAddr            string        `name:"http-addr" help:"REST listen address." default:"127.0.0.1:8080" env:"KNK_HTTP_ADDR"`
	TLSCert             string        `name:"tls-cert" help:"PEM certificate (chain) served on both ports; reloaded on SIGHUP or when the file changes." env:"KNK_TLS_CERT" type:"existingfile"`
	TLSKey              string        `name:"tls-key" help:"PEM private key of --tls-cert." env:"KNK_TLS_KEY" type:"existingfile"`
	ClientCA            string        `name:"client-ca" help:"PEM CA certificates: the gRPC port then requires a client certificate signed by one of them (internal services)." env:"KNK_CLIENT_CA" type:"existingfile"`
	AllowPlaintext      bool          `name:"allow-plaintext" help:"Listen off loopback without TLS (only behind a proxy that terminates TLS)." env:"KNK_ALLOW_PLAINTEXT"`
	Reflection          string        `help:"gRPC reflection: 'key' (any valid API key) or 'public'." enum:"key,public" default:"key" env:"KNK_REFLECTION"`
	TrustedProxy        []string      `name:"trusted-proxy" help:"CIDRs of reverse proxies whose X-Forwarded-For is believed (comma-separated)." env:"KNK_TRUSTED_PROXIES" sep:","`
	AnonymousRate       int           `name:"anonymous-rate" help:"Calls without a key (certificate verification, JSON and pages) per minute per client address; 0 = no limit." default:"60" env:"KNK_ANONYMOUS_RATE"`
	AnonymousBurst      int           `name:"anonymous-burst" help:"Burst of --anonymous-rate." default:"20" env:"KNK_ANONYMOUS_BURST"`
	FailedAuthRate      int           `name:"failed-auth-rate" help:"Calls with a wrong API key per minute per client address; 0 = no limit." default:"10" env:"KNK_FAILED_AUTH_RATE"`
	FailedAuthBurst     int           `name:"failed-auth-burst" help:"Burst of --failed-auth-rate." default:"10" env:"KNK_FAILED_AUTH_BURST"`
	MinAge              int           `name:"min-age" help:"Minimum age of a cadre at registration (programme rule)." default:"18" env:"KNK_MIN_AGE"`
	PassMark            int32         `name:"pass-mark" help:"Lowest score (0-100) that passes a topic, with attendance (programme rule)." default:"70" env:"KNK_PASS_MARK"`
	AttendanceThreshold int32         `name:"attendance-threshold" help:"Lowest share of a session's days, in percent (1-100), a cadre must be present on to be credited." default:"80" env:"KNK_ATTENDANCE_THRESHOLD"`
	SigningKey          string        `name:"signing-key" help:"PKCS#8 PEM Ed25519 key file that signs certificates (default: a key generated and kept in the store)." env:"KNK_SIGNING_KEY" type:"existingfile"`
	KEKFile             string        `name:"key-encryption-key-file" help:"File with the key that encrypts the stored signing keys (base64 of 32 random bytes: openssl rand -base64 32). Default on SQLite: DB.kek beside the database, created on first start; required with PostgreSQL, the same file on every replica." env:"KNK_KEY_ENCRYPTION_KEY_FILE"`
	ValidYears          int           `name:"valid-years" help:"How many years a certificate is valid (programme rule)." default:"3" env:"KNK_VALID_YEARS"`
	ExpiryInterval      time.Duration `name:"expiry-interval" help:"How often expired certificates are swept." default:"1m" env:"KNK_EXPIRY_INTERVAL"`
	NIKChecks           int           `name:"nik-checks-per-minute" help:"Per API key: NIK lookups, transfer requests and creates of registered NIKs a minute (a minute's worth at once); -1 = no limit." default:"120" env:"KNK_NIK_CHECKS_PER_MINUTE"`
	ShutdownTimeout     time.Duration `name:"shutdown-timeout" help:"How long in-flight calls may take to finish on SIGTERM." default:"20s" env:"KNK_SHUTDOWN_TIMEOUT"`
	PublicURL           string        `name:"public-url" help:"Base of every verification link and QR code printed on certificates, e.g. https://sertifikat.example.go.id; a knkd that listens beyond loopback refuses to issue certificates while it is the default." default:"http://localhost:8080" env:"KNK_PUBLIC_URL"`
	AdminAddr           string        `name:"admin-addr" help:"Address serving Prometheus metrics on /metrics, e.g. 127.0.0.1:9100 (off loopback only with --tls-cert, --tls-key and --client-ca); off when empty." env:"KNK_ADMIN_ADDR"`
	Pprof               bool          `name:"pprof" help:"Also serve net/http/pprof under /debug/pprof/ on --admin-addr." env:"KNK_PPROF"`
	LogLevel            slog.Level    `name:"log-level" help:"debug, info, warn or error." default:"info" env:"KNK_LOG_LEVEL"`

	MaxBodyBytes       int64         `name:"max-body-bytes" group:"limits" help:"Largest REST request body; larger is 413." default:"${max_body_bytes}" env:"KNK_MAX_BODY_BYTES"`
	MaxImportLineBytes int           `name:"max-import-line-bytes" group:"limits" help:"Longest line of a REST import (NDJSON); longer is 413." default:"${max_import_line_bytes}" env:"KNK_MAX_IMPORT_LINE_BYTES"`
	ReadHeaderTimeout  time.Duration `name:"read-header-timeout" group:"limits" help:"Time to send a REST request's headers, or to finish a gRPC connection's handshake." default:"${read_header_timeout}" env:"KNK_READ_HEADER_TIMEOUT"`
	ReadTimeout        time.Duration `name:"read-timeout" group:"limits" help:"Time to send a REST request body (not an import); slower is 408." default:"${read_timeout}" env:"KNK_READ_TIMEOUT"`
	StreamIdleTimeout  time.Duration `name:"stream-idle-timeout" group:"limits" help:"Longest pause between the rows of an import (gRPC message or REST line); longer is DEADLINE_EXCEEDED / 408." default:"${stream_idle_timeout}" env:"KNK_STREAM_IDLE_TIMEOUT"`
	IdleTimeout        time.Duration `name:"idle-timeout" group:"limits" help:"Close a connection that has carried no call for this long." default:"${idle_timeout}" env:"KNK_IDLE_TIMEOUT"`
	MaxHTTPConns       int           `name:"max-http-conns" group:"limits" help:"Most open REST connections; a new one replaces the oldest silent one, or waits." default:"${max_http_conns}" env:"KNK_MAX_HTTP_CONNS"`
	MaxGRPCConns       int           `name:"max-grpc-conns" group:"limits" help:"Most open gRPC connections; a new one replaces the oldest silent one, or waits." default:"${max_grpc_conns}" env:"KNK_MAX_GRPC_CONNS"`
	MaxStreams         uint32        `name:"max-streams" group:"limits" help:"Most concurrent gRPC calls on one connection." default:"${max_streams}" env:"KNK_MAX_STREAMS"`
	MaxRecvBytes       int           `name:"max-recv-bytes" group:"limits" help:"Largest gRPC message received; larger is RESOURCE_EXHAUSTED." default:"${max_recv_bytes}" env:"KNK_MAX_RECV_BYTES"`
	KeepaliveMinTime   time.Duration `name:"keepalive-min-time" group:"limits" help:"Shortest interval between a gRPC client's keepalive pings; a client pinging more often is disconnected." default:"${keepalive_min_time}" env:"KNK_KEEPALIVE_MIN_TIME"`
	MemoryLimitMB      int64         `name:"memory-limit-mb" group:"limits" help:"Soft limit of knkd's memory in MiB (as GOMEMLIMIT): near it the garbage collector runs more often and returns memory sooner; 0 = none." default:"256" env:"KNK_MEMORY_LIMIT_MB"`
	MaxWatchesPerKey   int           `name:"max-watches-per-key" group:"limits" help:"Most concurrent WatchEvents streams per API key; more is RESOURCE_EXHAUSTED." default:"${max_watches_per_key}" env:"KNK_MAX_WATCHES_PER_KEY"`

	AccessLogRetention time.Duration `name:"access-log-retention" group:"personal data" help:"How long entries of the access trail are kept (default 2 years)." default:"17520h" env:"KNK_ACCESS_LOG_RETENTION"`
	EraseAfter         time.Duration `name:"erase-withdrawn-after" group:"personal data" help:"How long after withdrawal a cadre's personal data is erased (default 5 years)." default:"43800h" env:"KNK_ERASE_WITHDRAWN_AFTER"`
	AccessLogSync      bool          `name:"access-log-sync" group:"personal data" help:"Answer a read of personal data only once its access-log entry is on disk (slower reads; no entry lost even in a crash)." env:"KNK_ACCESS_LOG_SYNC"`
	NIKHashKeyFile     string        `name:"nik-hash-key-file" group:"personal data" help:"File with the key (32+ bytes) of the hash that replaces erased NIKs (default on SQLite: DB.nik-key, created 0600)." env:"KNK_NIK_HASH_KEY_FILE" type:"path"`
}

// limitVars are the defaults of the limit flags, taken from server.DefaultLimits
// so that they are set in one place.
func limitVars() kong.Vars {
	d := server.DefaultLimits
	return kong.Vars{
		"max_body_bytes":        strconv.FormatInt(d.MaxBodyBytes, 10),
		"max_import_line_bytes": strconv.Itoa(d.MaxImportLineBytes),
		"read_header_timeout":   d.ReadHeaderTimeout.String(),
		"read_timeout":          d.ReadTimeout.String(),
		"stream_idle_timeout":   d.StreamIdleTimeout.String(),
		"idle_timeout":          d.IdleTimeout.String(),
		"max_http_conns":        strconv.Itoa(d.MaxHTTPConns),
		"max_grpc_conns":        strconv.Itoa(d.MaxGRPCConns),
		"max_streams":           strconv.FormatUint(uint64(d.MaxStreams), 10),
		"max_recv_bytes":        strconv.Itoa(d.MaxRecvBytes),
		"keepalive_min_time":    d.KeepaliveMinTime.String(),
		"max_watches_per_key":   strconv.Itoa(d.MaxWatchesPerKey),
	}
}

// limits are the limit flags as server.Limits.
func (c cli) limits() server.Limits {
	return server.Limits{
		MaxBodyBytes: c.MaxBodyBytes, MaxImportLineBytes: c.MaxImportLineBytes,
		ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout, StreamIdleTimeout: c.StreamIdleTimeout,
		IdleTimeout: c.IdleTimeout, MaxHTTPConns: c.MaxHTTPConns, MaxGRPCConns: c.MaxGRPCConns, MaxStreams: c.MaxStreams, MaxRecvBytes: c.MaxRecvBytes,
		KeepaliveMinTime: c.KeepaliveMinTime, MaxWatchesPerKey: c.MaxWatchesPerKey,
	}
}

func main() {
	var c cli
	kong.Parse(&c, kong.Description("knkd serves the KNK registry over gRPC and REST."), limitVars(),
		kong.ExplicitGroups([]kong.Group{{Key: "limits", Title: "Limits (what one client can make knkd hold)"}}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "knkd:", err)
		os.Exit(1)
	}
}

// perMinute is a rate flag as a server.Limit: 0 switches the limit off.
func perMinute(rate, burst int) server.Limit {
	if rate <= 0 {
		return server.Limit{PerMinute: -1}
	}
	return server.Limit{PerMinute: rate, Burst: burst}
}

func run(ctx context.Context, c cli, args []string) error {
	if c.Pprof && c.AdminAddr == "" {
		return fmt.Errorf("--pprof needs --admin-addr: profiles are served only on the admin port")
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	if c.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(c.MemoryLimitMB << 20)
	}
	if err := secretarg.RefuseDSN(args, "--db", c.DB, "KNK_DB, --db-file, PGPASSWORD or ~/.pgpass"); err != nil {
		return err
	}
	if c.DBFile != "" {
		var err error
		if c.DB, err = secretarg.ReadFile(c.DBFile); err != nil {
			return fmt.Errorf("--db-file: %w", err)
		}
	}
	proxies, err := server.ParseProxies(c.TrustedProxy)
	if err != nil {
		return fmt.Errorf("--trusted-proxy: %w", err)
	}
	srv, err := server.New(ctx, server.Config{
		DB: c.DB, GRPCAddr: c.GRPCAddr, HTTPAddr: c.HTTPAddr, Logger: log,
		MinAge: c.MinAge, PassMark: c.PassMark, AttendanceThreshold: c.AttendanceThreshold, SigningKeyFile: c.SigningKey, KeyEncryptionKeyFile: c.KEKFile, ValidYears: c.ValidYears,
		ExpiryInterval: c.ExpiryInterval, ShutdownTimeout: c.ShutdownTimeout, NIKChecksPerMinute: c.NIKChecks,
		PublicURL:          c.PublicURL,
		AccessLogRetention: c.AccessLogRetention, EraseAfter: c.EraseAfter, NIKHashKeyFile: c.NIKHashKeyFile,
		AccessLogSync: c.AccessLogSync,
		Limits:        c.limits(),
		AdminAddr:     c.AdminAddr, Pprof: c.Pprof,
		Edge: server.Edge{
			TLSCert: c.TLSCert, TLSKey: c.TLSKey, ClientCA: c.ClientCA, AllowPlaintext: c.AllowPlaintext,
			PublicReflection: c.Reflection == "public", TrustedProxies: proxies,
			AnonymousLimit:  perMinute(c.AnonymousRate, c.AnonymousBurst),
			FailedAuthLimit: perMinute(c.FailedAuthRate, c.FailedAuthBurst),
		},
	})
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}
