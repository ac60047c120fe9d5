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

	"github.com/knk-id/knk/internal/server"
)

type cli struct {
	DB                 string        `help:"SQLite file path, or a postgres:// DSN." default:"knk.db" env:"KNK_DB"`
	GRPCAddr           string        `name:"grpc-addr" help:"gRPC listen address." default:":9090" env:"KNK_GRPC_ADDR"`
	HTTPAddr           string        `name:"http-addr" help:"REST listen address." default:":8080" env:"KNK_HTTP_ADDR"`
	MinAge             int           `name:"min-age" help:"Minimum age of a cadre at registration (programme rule)." default:"18" env:"KNK_MIN_AGE"`
	PassMark           int32         `name:"pass-mark" help:"Lowest score (0-100) that passes a topic, with attendance (programme rule)." default:"70" env:"KNK_PASS_MARK"`
	SigningKey         string        `name:"signing-key" help:"PKCS#8 PEM Ed25519 key file that signs certificates (default: a key generated and kept in the store)." env:"KNK_SIGNING_KEY" type:"existingfile"`
	ValidYears         int           `name:"valid-years" help:"How many years a certificate is valid (programme rule)." default:"3" env:"KNK_VALID_YEARS"`
	ExpiryInterval     time.Duration `name:"expiry-interval" help:"How often expired certificates are swept." default:"1m" env:"KNK_EXPIRY_INTERVAL"`
	ShutdownTimeout    time.Duration `name:"shutdown-timeout" help:"How long in-flight calls may take to finish on SIGTERM." default:"20s" env:"KNK_SHUTDOWN_TIMEOUT"`
	AccessLogRetention time.Duration `name:"access-log-retention" help:"How long entries of the access trail are kept (default 2 years)." default:"17520h" env:"KNK_ACCESS_LOG_RETENTION"`
	EraseAfter         time.Duration `name:"erase-withdrawn-after" help:"How long after withdrawal a cadre's personal data is erased (default 5 years)." default:"43800h" env:"KNK_ERASE_WITHDRAWN_AFTER"`
	NIKHashKeyFile     string        `name:"nik-hash-key-file" help:"File with the key (32+ bytes) of the hash that replaces erased NIKs (default on SQLite: DB.nik-key, created 0600)." env:"KNK_NIK_HASH_KEY_FILE"`
	LogLevel           slog.Level    `name:"log-level" help:"debug, info, warn or error." default:"info" env:"KNK_LOG_LEVEL"`
}

func main() {
	var c cli
	kong.Parse(&c, kong.Description("knkd serves the KNK registry over gRPC and REST."))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "knkd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c cli) error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	srv, err := server.New(ctx, server.Config{
		DB: c.DB, GRPCAddr: c.GRPCAddr, HTTPAddr: c.HTTPAddr, Logger: log,
		MinAge: c.MinAge, PassMark: c.PassMark, SigningKeyFile: c.SigningKey, ValidYears: c.ValidYears,
		ExpiryInterval: c.ExpiryInterval, ShutdownTimeout: c.ShutdownTimeout,
		AccessLogRetention: c.AccessLogRetention, EraseAfter: c.EraseAfter, NIKHashKeyFile: c.NIKHashKeyFile,
	})
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}
