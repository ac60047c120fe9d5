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

	"github.com/knk-id/knk/internal/server"
)

type cli struct {
	DB              string        `help:"SQLite file path, or a postgres:// DSN." default:"knk.db" env:"KNK_DB"`
	GRPCAddr        string        `name:"grpc-addr" help:"gRPC listen address." default:":9090" env:"KNK_GRPC_ADDR"`
	HTTPAddr        string        `name:"http-addr" help:"REST listen address." default:":8080" env:"KNK_HTTP_ADDR"`
	MinAge          int           `name:"min-age" help:"Minimum age of a cadre at registration (programme rule)." default:"18" env:"KNK_MIN_AGE"`
	PassMark        int32         `name:"pass-mark" help:"Lowest score (0-100) that passes a topic, with attendance (programme rule)." default:"70" env:"KNK_PASS_MARK"`
	SigningKey      string        `name:"signing-key" help:"PKCS#8 PEM Ed25519 key file that signs certificates (default: a key generated and kept in the store)." env:"KNK_SIGNING_KEY" type:"existingfile"`
	ValidYears      int           `name:"valid-years" help:"How many years a certificate is valid (programme rule)." default:"3" env:"KNK_VALID_YEARS"`
	ExpiryInterval  time.Duration `name:"expiry-interval" help:"How often expired certificates are swept." default:"1m" env:"KNK_EXPIRY_INTERVAL"`
	ShutdownTimeout time.Duration `name:"shutdown-timeout" help:"How long in-flight calls may take to finish on SIGTERM." default:"20s" env:"KNK_SHUTDOWN_TIMEOUT"`
	LogLevel        slog.Level    `name:"log-level" help:"debug, info, warn or error." default:"info" env:"KNK_LOG_LEVEL"`

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
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "knkd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c cli) error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	if c.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(c.MemoryLimitMB << 20)
	}
	srv, err := server.New(ctx, server.Config{
		DB: c.DB, GRPCAddr: c.GRPCAddr, HTTPAddr: c.HTTPAddr, Logger: log,
		MinAge: c.MinAge, PassMark: c.PassMark, SigningKeyFile: c.SigningKey, ValidYears: c.ValidYears,
		ExpiryInterval: c.ExpiryInterval, ShutdownTimeout: c.ShutdownTimeout, Limits: c.limits(),
	})
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}
