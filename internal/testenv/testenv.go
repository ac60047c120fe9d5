// Package testenv starts a real knkd for tests: a store of the engine under test
// (a SQLite file in a temporary directory, or a fresh PostgreSQL schema), gRPC and
// REST on loopback ports, and an admin key.
package testenv

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "github.com/mattn/go-sqlite3"    // database/sql driver "sqlite3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/secretbox"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/services/organization"
)

// Clock is a settable clock for tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Env is a running knkd and clients for it.
type Env struct {
	Server   *server.Server
	Conn     *grpc.ClientConn
	BaseURL  string       // http://127.0.0.1:port, or https:// with TLS
	HTTP     *http.Client // REST client (trusting the test CA with TLS)
	TLS      *TLSFiles    // the test CA and certificates, when knkd serves TLS
	AdminKey string
	DBPath   string // the store: a SQLite file path or a postgres:// DSN
	KEKFile  string // the key-encryption key file of the stored signing keys
	Clock    *Clock
	logs     *syncWriter

	Orgs     knkv1.OrganizationServiceClient
	Cadres   knkv1.CadreServiceClient
	Training knkv1.TrainingServiceClient
	Certs    knkv1.CertificateServiceClient
	Forums   knkv1.ForumServiceClient
	Stats    knkv1.StatsServiceClient
	Events   knkv1.EventServiceClient
	Privacy  knkv1.PrivacyServiceClient
	stop     func()
	stopOnce sync.Once
	stopped  chan error
}

// Start runs knkd on a fresh store of the engine under test (dbtest.Engine): a
// SQLite file in t.TempDir(), or a new PostgreSQL schema.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartAt(t, dbtest.DSN(t, dbtest.Engine()))
}

// StartAt runs knkd on the store at path, a SQLite file or a PostgreSQL DSN
// (which may hold earlier data).
func StartAt(t testing.TB, path string) *Env {
	t.Helper()
	return StartWith(t, path, nil)
}

// Config is knkd's configuration.
type Config = server.Config

// StartWith runs knkd on path with the test configuration changed by edit.
func StartWith(t testing.TB, path string, edit func(*Config)) *Env {
	t.Helper()
	return start(t, path, nil, edit)
}

// StartTLS runs knkd serving TLS with the certificates of f on a fresh store;
// Env.Conn and Env.REST use TLS (Env.Conn with f's client certificate when
// edit sets a ClientCA).
func StartTLS(t testing.TB, f *TLSFiles, edit func(*Config)) *Env {
	t.Helper()
	return start(t, dbtest.DSN(t, dbtest.Engine()), f, edit)
}

func start(t testing.TB, path string, f *TLSFiles, edit func(*Config)) *Env {
	t.Helper()
	e := &Env{DBPath: path, Clock: &Clock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}, logs: &syncWriter{w: &bytes.Buffer{}},
		HTTP: http.DefaultClient, TLS: f}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := config(t, path, e.Clock.Now, e.logs)
	if f != nil {
		cfg.TLSCert, cfg.TLSKey = f.ServerCert, f.ServerKey
	}
	if edit != nil {
		edit(&cfg)
	}
	e.KEKFile = cmp.Or(cfg.KeyEncryptionKeyFile, path+".kek")
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start knkd: %v", err)
	}
	e.Server, e.BaseURL, e.stopped = srv, "http://"+srv.HTTPAddr(), make(chan error, 1)
	go func() { e.stopped <- srv.Serve(ctx) }()
	e.stop = cancel
	creds := insecure.NewCredentials()
	if f != nil {
		e.BaseURL, e.HTTP, creds = "https://"+srv.HTTPAddr(), f.HTTPClient(), f.GRPCCredentials(cfg.ClientCA != "")
	}
	e.Conn, err = grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	e.AdminKey, err = organization.Bootstrap(ctx, srv.DB(), e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.Orgs = knkv1.NewOrganizationServiceClient(e.Conn)
	e.Cadres = knkv1.NewCadreServiceClient(e.Conn)
	e.Training = knkv1.NewTrainingServiceClient(e.Conn)
	e.Certs = knkv1.NewCertificateServiceClient(e.Conn)
	e.Forums = knkv1.NewForumServiceClient(e.Conn)
	e.Stats = knkv1.NewStatsServiceClient(e.Conn)
	e.Events = knkv1.NewEventServiceClient(e.Conn)
	e.Privacy = knkv1.NewPrivacyServiceClient(e.Conn)
	t.Cleanup(func() { e.Stop(t) })
	return e
}

var keks sync.Map // DSN → key-encryption key file

// KEKFile returns the key-encryption key file of the store at dsn: on SQLite
// knkd's default beside the file, on PostgreSQL one file shared by every server
// that a test starts on dsn (as replicas share it), made on first use.
func KEKFile(t testing.TB, dsn string) string {
	t.Helper()
	if !db.IsPostgres(dsn) {
		return dsn + ".kek"
	}
	if f, ok := keks.Load(dsn); ok {
		return f.(string)
	}
	f := filepath.Join(t.TempDir(), "knk.kek")
	if _, err := secretbox.CreateKeyFile(f); err != nil {
		t.Fatal(err)
	}
	if prev, loaded := keks.LoadOrStore(dsn, f); loaded {
		return prev.(string)
	}
	t.Cleanup(func() { keks.Delete(dsn) })
	return f
}

// config is the test configuration of a knkd on path.
func config(t testing.TB, path string, now func() time.Time, logs io.Writer) server.Config {
	cfg := server.Config{
		DB: path, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Now:    now, ShutdownTimeout: 5 * time.Second, ExpiryInterval: 20 * time.Millisecond,
	}
	if db.IsPostgres(path) {
		cfg.KeyEncryptionKeyFile = KEKFile(t, path)
	}
	return cfg
}

// StartErr tries to start knkd on path, configured as StartWith does, when the
// test expects it to refuse, and returns its error. A knkd that does start is
// stopped at once and the test fails.
func StartErr(t testing.TB, path string, edit func(*Config)) error {
	t.Helper()
	cfg := config(t, path, time.Now, io.Discard)
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	if err == nil {
		t.Errorf("knkd started on %s, want it to refuse", path)
		cancel()
		srv.Serve(ctx)
	}
	cancel()
	return err
}

// Stop shuts knkd down gracefully and waits for it; later calls do nothing.
func (e *Env) Stop(t testing.TB) {
	e.stopOnce.Do(func() {
		e.Conn.Close()
		e.stop()
		if err := <-e.stopped; err != nil {
			t.Errorf("knkd stopped with: %v", err)
		}
	})
}

// Ctx returns a context that sends key as the bearer token.
func Ctx(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

// Org creates an organization and returns a key for it.
func (e *Env) Org(t testing.TB, id string, kind knkv1.Organization_Kind, province string) string {
	t.Helper()
	ctx := Ctx(e.AdminKey)
	_, err := e.Orgs.CreateOrganization(ctx, &knkv1.CreateOrganizationRequest{
		OrganizationId: id,
		Organization:   &knkv1.Organization{Kind: kind, DisplayName: id, ProvinceCode: province},
	})
	if err != nil {
		t.Fatalf("create organization %s: %v", id, err)
	}
	key, err := e.Orgs.CreateApiKey(ctx, &knkv1.CreateApiKeyRequest{Parent: "organizations/" + id})
	if err != nil {
		t.Fatalf("create key for %s: %v", id, err)
	}
	return key.Secret
}

// Response is a REST response.
type Response struct {
	Status int
	Body   map[string]any
	Raw    []byte
	Header http.Header
}

// REST calls the gateway; body is marshalled to JSON unless it is a string or nil.
func (e *Env) REST(t testing.TB, method, path, key string, body any) Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.BaseURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := Response{Status: resp.StatusCode, Raw: raw, Header: resp.Header}
	json.Unmarshal(raw, &out.Body)
	return out
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Logs returns everything the server has logged so far.
func (e *Env) Logs() string {
	e.logs.mu.Lock()
	defer e.logs.mu.Unlock()
	return e.logs.w.String()
}

// Engine names the engine of the store knkd runs on: "postgres" or "sqlite".
func (e *Env) Engine() string {
	if db.IsPostgres(e.DBPath) {
		return "postgres"
	}
	return "sqlite"
}

// SQL opens the store's tables directly, behind knkd's back, for tests that look
// at what is stored or break the store on purpose. It is closed when the test ends.
func (e *Env) SQL(t testing.TB) *sql.DB {
	t.Helper()
	return OpenSQL(t, e.DBPath)
}

// tablesQuery lists the tables of the store, per engine: SQLite's catalog, or
// the tables of the schema the DSN's search_path names.
var tablesQuery = map[string]string{
	"sqlite":   `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`,
	"postgres": `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`,
}

// Tables lists every table of the store, the migration tool's included.
func (e *Env) Tables(t testing.TB) []string {
	t.Helper()
	rows, err := e.SQL(t).Query(tablesQuery[e.Engine()])
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return tables
}
