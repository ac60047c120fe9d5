package testenv

import (
	"context"
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/services/organization"
)

// BuildKnkd builds the knkd command into a temporary directory and returns the
// binary's path.
func BuildKnkd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "knkd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/knk-id/knk/cmd/knkd").CombinedOutput(); err != nil {
		t.Fatalf("build knkd: %v\n%s", err, out)
	}
	return bin
}

// Bootstrap migrates the store at dsn and returns the secret of a new admin key,
// as `knkctl bootstrap` does.
func Bootstrap(t testing.TB, dsn string) string {
	t.Helper()
	store, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key, err := organization.Bootstrap(context.Background(), store, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Process is knkd running as a process of its own, on loopback ports, with
// gRPC clients for it.
type Process struct {
	GRPCAddr, HTTPAddr string
	Conn               *grpc.ClientConn
	Cadres             knkv1.CadreServiceClient
	Training           knkv1.TrainingServiceClient
	Certs              knkv1.CertificateServiceClient
	Events             knkv1.EventServiceClient
	Orgs               knkv1.OrganizationServiceClient

	cmd    *exec.Cmd
	exited chan error
	ended  bool
}

// StartProcess runs bin (see BuildKnkd) as knkd on the store at dsn and waits
// until it reports serving. When the test ends it is stopped with SIGTERM and
// must exit cleanly, unless Kill ended it before.
func StartProcess(t testing.TB, bin, dsn string) *Process {
	t.Helper()
	p := &Process{GRPCAddr: FreeAddr(t), HTTPAddr: FreeAddr(t), exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--db", dsn, "--grpc-addr", p.GRPCAddr, "--http-addr", p.HTTPAddr, "--log-level", "warn")
	p.cmd.Env = append(os.Environ(), "KNK_KEY_ENCRYPTION_KEY_FILE="+KEKFile(t, dsn))
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.ended {
			return
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-p.exited; err != nil {
			t.Errorf("knkd at %s: %v", p.GRPCAddr, err)
		}
	})
	conn, err := grpc.NewClient(p.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	health := healthpb.NewHealthClient(conn)
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			break
		}
		select {
		case werr := <-p.exited:
			p.ended = true
			t.Fatalf("knkd at %s exited before serving: %v", p.GRPCAddr, werr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("knkd at %s did not become healthy: %v", p.GRPCAddr, err)
		}
	}
	p.Conn = conn
	p.Cadres = knkv1.NewCadreServiceClient(conn)
	p.Training = knkv1.NewTrainingServiceClient(conn)
	p.Certs = knkv1.NewCertificateServiceClient(conn)
	p.Events = knkv1.NewEventServiceClient(conn)
	p.Orgs = knkv1.NewOrganizationServiceClient(conn)
	return p
}

// Kill ends knkd with SIGKILL, as a crash or the kernel's OOM killer would:
// no shutdown code runs. It returns once the process is gone.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	p.ended = true
}

// OpenSQL opens the store at dsn (a SQLite file or a PostgreSQL DSN) directly,
// behind knkd's back; it is closed when the test ends.
func OpenSQL(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	driver, source := "sqlite3", "file:"+dsn+"?_busy_timeout=10000"
	if db.IsPostgres(dsn) {
		driver, source = "pgx", dsn // its search_path names the test's schema
	}
	conn, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Ping(); err != nil {
		t.Fatalf("open the store %s: %v", dsn, err)
	}
	return conn
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
