// Command knkd is the KNK server: gRPC and grpc-gateway REST on one store.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/knk-id/knk/internal/secretarg"
	"github.com/knk-id/knk/internal/server"
)

type cli struct {
	DB                 string        `help:"SQLite file path, or a postgres:// DSN without a password (a password goes in KNK_DB, --db-file, PGPASSWORD or ~/.pgpass, never on the command line)." default:"knk.db" env:"KNK_DB"`
	DBFile             string        `name:"db-file" help:"File holding the SQLite path or postgres:// DSN (overrides --db); use it for a DSN with a password." env:"KNK_DB_FILE" type:"existingfile"`
	GRPCAddr           string        `name:"grpc-addr" help:"gRPC listen address." default:"127.0.0.1:9090" env:"KNK_GRPC_ADDR"`
	HTTPAddr           string        `name:"http-addr" help:"REST listen address." default:"127.0.0.1:8080" env:"KNK_HTTP_ADDR"`
	TLSCert            string        `name:"tls-cert" help:"PEM certificate (chain) served on both ports; reloaded on SIGHUP or when the file changes." env:"KNK_TLS_CERT" type:"existingfile"`
	TLSKey             string        `name:"tls-key" help:"PEM private key of --tls-cert." env:"KNK_TLS_KEY" type:"existingfile"`
	ClientCA           string        `name:"client-ca" help:"PEM CA certificates: the gRPC port then requires a client certificate signed by one of them (internal services)." env:"KNK_CLIENT_CA" type:"existingfile"`
	AllowPlaintext     bool          `name:"allow-plaintext" help:"Listen off loopback without TLS (only behind a proxy that terminates TLS)." env:"KNK_ALLOW_PLAINTEXT"`
	Reflection         string        `help:"gRPC reflection: 'key' (any valid API key) or 'public'." enum:"key,public" default:"key" env:"KNK_REFLECTION"`
	TrustedProxy       []string      `name:"trusted-proxy" help:"CIDRs of reverse proxies whose X-Forwarded-For is believed (comma-separated)." env:"KNK_TRUSTED_PROXIES" sep:","`
	AnonymousRate      int           `name:"anonymous-rate" help:"Calls without a key (certificate verification, JSON and pages) per minute per client address; 0 = no limit." default:"60" env:"KNK_ANONYMOUS_RATE"`
	AnonymousBurst     int           `name:"anonymous-burst" help:"Burst of --anonymous-rate." default:"20" env:"KNK_ANONYMOUS_BURST"`
	FailedAuthRate     int           `name:"failed-auth-rate" help:"Calls with a wrong API key per minute per client address; 0 = no limit." default:"10" env:"KNK_FAILED_AUTH_RATE"`
	FailedAuthBurst    int           `name:"failed-auth-burst" help:"Burst of --failed-auth-rate." default:"10" env:"KNK_FAILED_AUTH_BURST"`
	MinAge             int           `name:"min-age" help:"Minimum age of a cadre at registration (programme rule)." default:"18" env:"KNK_MIN_AGE"`
	PassMark           int32         `name:"pass-mark" help:"Lowest score (0-100) that passes a topic, with attendance (programme rule)." default:"70" env:"KNK_PASS_MARK"`
	SigningKey         string        `name:"signing-key" help:"PKCS#8 PEM Ed25519 key file that signs certificates (default: a key generated and kept in the store)." env:"KNK_SIGNING_KEY" type:"existingfile"`
	KEKFile            string        `name:"key-encryption-key-file" help:"File with the key that encrypts the stored signing keys (base64 of 32 random bytes: openssl rand -base64 32). Default on SQLite: DB.kek beside the database, created on first start; required with PostgreSQL, the same file on every replica." env:"KNK_KEY_ENCRYPTION_KEY_FILE"`
	ValidYears         int           `name:"valid-years" help:"How many years a certificate is valid (programme rule)." default:"3" env:"KNK_VALID_YEARS"`
	ExpiryInterval     time.Duration `name:"expiry-interval" help:"How often expired certificates are swept." default:"1m" env:"KNK_EXPIRY_INTERVAL"`
	NIKChecks          int           `name:"nik-checks-per-minute" help:"Per API key: NIK lookups, transfer requests and creates of registered NIKs a minute (a minute's worth at once); -1 = no limit." default:"120" env:"KNK_NIK_CHECKS_PER_MINUTE"`
	AccessLogRetention time.Duration `name:"access-log-retention" help:"How long entries of the access trail are kept (default 2 years)." default:"17520h" env:"KNK_ACCESS_LOG_RETENTION"`
	EraseAfter         time.Duration `name:"erase-withdrawn-after" help:"How long after withdrawal a cadre's personal data is erased (default 5 years)." default:"43800h" env:"KNK_ERASE_WITHDRAWN_AFTER"`
	NIKHashKeyFile     string        `name:"nik-hash-key-file" help:"File with the key (32+ bytes) of the hash that replaces erased NIKs (default on SQLite: DB.nik-key, created 0600)." env:"KNK_NIK_HASH_KEY_FILE" type:"path"`
	ShutdownTimeout    time.Duration `name:"shutdown-timeout" help:"How long in-flight calls may take to finish on SIGTERM." default:"20s" env:"KNK_SHUTDOWN_TIMEOUT"`
	AdminAddr          string        `name:"admin-addr" help:"Address serving Prometheus metrics on /metrics, e.g. 127.0.0.1:9100 (off loopback only with --tls-cert, --tls-key and --client-ca); off when empty." env:"KNK_ADMIN_ADDR"`
	Pprof              bool          `name:"pprof" help:"Also serve net/http/pprof under /debug/pprof/ on --admin-addr." env:"KNK_PPROF"`
	LogLevel           slog.Level    `name:"log-level" help:"debug, info, warn or error." default:"info" env:"KNK_LOG_LEVEL"`
}

func main() {
	var c cli
	kong.Parse(&c, kong.Description("knkd serves the KNK registry over gRPC and REST."))
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
		MinAge: c.MinAge, PassMark: c.PassMark, SigningKeyFile: c.SigningKey, KeyEncryptionKeyFile: c.KEKFile, ValidYears: c.ValidYears,
		ExpiryInterval: c.ExpiryInterval, ShutdownTimeout: c.ShutdownTimeout, NIKChecksPerMinute: c.NIKChecks,
		AccessLogRetention: c.AccessLogRetention, EraseAfter: c.EraseAfter, NIKHashKeyFile: c.NIKHashKeyFile,
		AdminAddr: c.AdminAddr, Pprof: c.Pprof,
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
