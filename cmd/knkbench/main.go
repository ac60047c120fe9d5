// Command knkbench measures knkd against baselines run on the same machine, in the
// same run, with the same client and concurrency (issue 6), prints a table and
// writes the figures as JSON.
//
// knkd runs in this process unless --server-bin names a knkd binary to run as a
// separate process. Every figure is measured with --concurrency callers for
// --duration after a short warm-up; a figure whose RPC answers UNIMPLEMENTED is
// reported as "n/a (not implemented)".
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/secretbox"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/services/organization"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "knkbench:", err)
		os.Exit(1)
	}
}

type cli struct {
	DB          string        `help:"Database of knkd: a SQLite file path that must not exist yet, or a postgres:// DSN of an empty database. Default: a fresh file in a temporary directory." placeholder:"PATH|DSN"`
	Rows        int           `help:"Rows of the streamed roster import (and of the raw SQLite baseline)." default:"200000"`
	Concurrency int           `help:"Concurrent callers of every measured figure." default:"64"`
	Duration    time.Duration `help:"How long each figure is measured, after a warm-up of a fifth of it (at most 1s)." default:"5s"`
	JSON        string        `name:"json" help:"Also write every figure and ratio to this JSON file." placeholder:"FILE"`
	Small       bool          `help:"Smoke run: 300 rows, 200ms per figure, at most 8 callers."`
	ServerBin   string        `name:"server-bin" help:"Run this knkd binary as a separate process (e.g. bin/knkd) instead of in-process, so its peak RSS is its own." placeholder:"PATH"`
	ServeEcho   bool          `name:"serve-echo" hidden:"" help:"Serve only the echo baselines and print their addresses (the baselines' process under --server-bin)."`
	CPUProfile  string        `name:"cpuprofile" help:"Write a CPU profile of each figure to FILE with the figure's name inserted before the extension (cpu.pprof -> cpu.create_cadre_rps.pprof)." placeholder:"FILE"`
	Only        []string      `help:"Measure only these figures (and the others measured in the same step), e.g. --only create_cadre_rps,create_during_import_rps." placeholder:"FIGURE,..."`
}

// kongExit carries kong's exit code (after --help) out of kong through a panic.
type kongExit int

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("knkbench"),
		kong.Description("Benchmark knkd against same-run baselines (issue 6)."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(kongExit(code)) }),
	)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			if code != 0 {
				err = fmt.Errorf("exit status %d", int(code))
			}
		}
	}()
	if _, err := parser.Parse(args); err != nil {
		return fmt.Errorf("%w (see knkbench --help)", err)
	}
	if c.ServeEcho {
		return serveEcho(ctx, os.Stdin, stdout)
	}
	if c.Small {
		c.Rows, c.Duration, c.Concurrency = 300, 200*time.Millisecond, min(c.Concurrency, 8)
	}
	if c.Rows < 1 || c.Concurrency < 1 || c.Duration <= 0 {
		return errors.New("--rows, --concurrency and --duration must be positive")
	}
	dir, err := os.MkdirTemp("", "knkbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{cfg: c, args: args, log: stderr, dir: dir}
	if err := b.start(ctx); err != nil {
		return err
	}
	b.measureAll(ctx)
	if err := b.stop(); err != nil {
		fmt.Fprintln(stderr, "knkbench: stopping knkd:", err)
	}
	return b.report(stdout)
}

// bench is one run: knkd, clients for it, and the figures so far.
type bench struct {
	cfg  cli
	args []string
	log  io.Writer
	dir  string

	knkd     *knkd
	dsn      string
	conn     *grpc.ClientConn
	http     *http.Client
	baseURL  string
	adminKey string
	fedKey   string
	cadres   knkv1.CadreServiceClient
	certs    knkv1.CertificateServiceClient

	nextRow atomic.Int64 // the next roster row (cadreAt)
	stored  int64        // cadres knkd holds
	names   []string     // every stored cadre, after walk
	tokens  []string     // page tokens spread over the table, after walk
	issued  []string     // certificates issued

	figs []figure
}

// start runs knkd on a fresh database, bootstraps an admin key and creates the
// federation "ksbsi" and its key.
func (b *bench) start(ctx context.Context) error {
	b.dsn = b.cfg.DB
	switch {
	case b.dsn == "":
		b.dsn = filepath.Join(b.dir, "knk.db")
	case db.IsPostgres(b.dsn):
	default:
		if _, err := os.Stat(b.dsn); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("--db %s: knkbench needs a database file that does not exist yet", b.dsn)
		}
	}
	kek, err := benchKEK(b.dsn, b.dir)
	if err != nil {
		return err
	}
	if b.cfg.ServerBin != "" {
		b.knkd, err = startProcess(ctx, b.cfg.ServerBin, b.dsn, kek)
	} else {
		b.knkd, err = startInProcess(ctx, b.dsn, kek)
	}
	if err != nil {
		return fmt.Errorf("start knkd: %w", err)
	}
	b.adminKey = b.knkd.adminKey
	b.baseURL = "http://" + b.knkd.httpAddr
	b.http = newHTTPClient(b.cfg.Concurrency)
	if b.conn, err = dial(b.knkd.grpcAddr); err != nil {
		return errors.Join(err, b.stop())
	}
	b.cadres = knkv1.NewCadreServiceClient(b.conn)
	b.certs = knkv1.NewCertificateServiceClient(b.conn)
	orgs := knkv1.NewOrganizationServiceClient(b.conn)
	_, err = orgs.CreateOrganization(b.adminCtx(ctx), &knkv1.CreateOrganizationRequest{
		OrganizationId: "ksbsi",
		Organization:   &knkv1.Organization{Kind: knkv1.Organization_KIND_FEDERATION, DisplayName: "KSBSI"},
	})
	if err == nil {
		var key *knkv1.ApiKey
		key, err = orgs.CreateApiKey(b.adminCtx(ctx), &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi"})
		b.fedKey = key.GetSecret()
	}
	if err != nil {
		return errors.Join(fmt.Errorf("create the federation: %w", err), b.stop())
	}
	return nil
}

func (b *bench) stop() error {
	var errs []error
	if b.conn != nil {
		errs = append(errs, b.conn.Close())
	}
	if b.http != nil {
		b.http.CloseIdleConnections()
	}
	return errors.Join(append(errs, b.knkd.stop())...)
}

// measureAll measures every figure in order; later figures read what earlier
// ones stored. A new figure is a method here that calls b.rate.
func (b *bench) measureAll(ctx context.Context) {
	if b.want("baseline_grpc_rps", "baseline_rest_rps", "baseline_sqlite_rows_per_s") {
		b.baselines(ctx)
	}
	if b.want("store_write_rps") {
		b.storeWrites(ctx)
	}
	if b.want("create_cadre_rps") {
		b.createCadre(ctx)
	}
	if b.want("create_during_import_rps") {
		b.createDuringImport(ctx)
	}
	if b.want("import_rows_per_s", "import_peak_rss_mb") {
		b.importRoster(ctx)
	}
	if b.want("import_csv_rows_per_s", "import_csv_client_rss_mb", "import_csv_server_rss_mb",
		"import_xlsx_rows_per_s", "import_xlsx_client_rss_mb", "import_xlsx_server_rss_mb") {
		b.importFiles(ctx)
	}
	if b.want("stats_p99_ms") {
		b.provinceStats(ctx, b.conn)
	}
	if !b.want("get_cadre_rps", "list_cadres_rps", "list_first_page_p50_ms", "list_deep_page_p50_ms",
		"issue_certificate_rps", "verify_rest_rps", "verify_rest_p99_ms", "verify_page_rps", "verify_page_p99_ms") {
		return
	}
	if err := b.walk(ctx); err != nil {
		for _, name := range []string{"get_cadre_rps", "list_cadres_rps", "list_first_page_p50_ms", "list_deep_page_p50_ms"} {
			b.record(name, err)
		}
	} else {
		b.getCadre(ctx)
		b.listCadres(ctx)
	}
	if len(b.names) > 0 {
		b.issueCertificate(ctx)
	} else {
		b.record("issue_certificate_rps", fmt.Errorf("%w: no cadres", errNothingToDo))
	}
	b.verifyREST(ctx)
	b.verifyPage(ctx)
}

// want reports whether --only asks for any of the figures names (or is not given).
func (b *bench) want(names ...string) bool {
	if len(b.cfg.Only) == 0 {
		return true
	}
	for _, n := range names {
		if slices.Contains(b.cfg.Only, n) {
			return true
		}
	}
	return false
}

// baselines measures the bare echo servers with the same clients and
// concurrency as knkd, and raw SQLite inserts of --rows cadre rows.
func (b *bench) baselines(ctx context.Context) {
	start := startEcho
	if b.cfg.ServerBin != "" {
		start = startEchoProcess // like knkd, in a process of its own
	}
	echo, err := start()
	if err != nil {
		b.record("baseline_grpc_rps", err)
		b.same("baseline_rest_rps", "baseline_grpc_rps")
	} else {
		conn, err := dial(echo.grpcAddr)
		if err == nil {
			b.rate(ctx, "baseline_grpc_rps", echoGRPC(conn))
			conn.Close()
		} else {
			b.record("baseline_grpc_rps", err)
		}
		b.rate(ctx, "baseline_rest_rps", func(ctx context.Context) error {
			return getOK(ctx, b.http, "http://"+echo.httpAddr+"/v1/echo/ping")
		})
		echo.close()
		b.http.CloseIdleConnections()
	}
	const name = "baseline_sqlite_rows_per_s"
	var perSec float64
	cpu0 := busyCPU()
	err = b.profile(name, func() (err error) {
		perSec, err = sqliteBaseline(ctx, filepath.Join(b.dir, "baseline.db"), b.cfg.Rows)
		return err
	})
	if b.record(name, err) {
		b.add(figure{Name: name, Value: perSec, Unit: "rows/s", CPUUs: cpuSince(cpu0, int64(b.cfg.Rows)),
			Note: fmt.Sprintf("%d rows, database/sql, transactions of 1000, prepared statement, the store's pragmas", b.cfg.Rows)})
	}
}

// run measures op as the figure name for d, with a CPU profile if asked. It
// records a skipped or failed figure and reports false; on success the caller
// adds the figure.
func (b *bench) run(ctx context.Context, name string, d time.Duration, op func(context.Context) error) (result, bool) {
	fmt.Fprintf(b.log, "knkbench: measuring %s\n", name)
	var res result
	err := b.profile(name, func() (err error) {
		res, err = measure(ctx, b.cfg.Concurrency, d, op)
		return err
	})
	return res, b.record(name, err)
}

// rate measures op as the figure name: calls per second with p50 and p99.
func (b *bench) rate(ctx context.Context, name string, op func(context.Context) error) (result, bool) {
	res, ok := b.run(ctx, name, b.cfg.Duration, op)
	if ok {
		b.add(figure{Name: name, Value: res.PerSec, Unit: "calls/s", P50Ms: ms(res.P50), P99Ms: ms(res.P99),
			CPUUs: res.CPUUs})
	}
	return res, ok
}

// record adds a skipped or failed figure for err and reports whether err is nil.
func (b *bench) record(name string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, errNotImplemented):
		b.add(figure{Name: name, Skipped: "not implemented"})
	case errors.Is(err, errNothingToDo):
		b.add(figure{Name: name, Skipped: strings.TrimPrefix(err.Error(), errNothingToDo.Error()+": ")})
	default:
		fmt.Fprintf(b.log, "knkbench: %s: %v\n", name, err)
		b.add(figure{Name: name, Error: err.Error()})
	}
	return false
}

// same adds name as skipped or failed like the figure it derives from.
func (b *bench) same(name, from string) {
	for _, f := range b.figs {
		if f.Name == from {
			b.add(figure{Name: name, Skipped: f.Skipped, Error: f.Error})
			return
		}
	}
}

func (b *bench) add(f figure) { b.figs = append(b.figs, f) }

// profile runs fn under a CPU profile written for figure name, if asked.
func (b *bench) profile(name string, fn func() error) error {
	if b.cfg.CPUProfile == "" {
		return fn()
	}
	ext := filepath.Ext(b.cfg.CPUProfile)
	f, err := os.Create(strings.TrimSuffix(b.cfg.CPUProfile, ext) + "." + name + ext)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return errors.Join(err, f.Close())
	}
	err = fn()
	pprof.StopCPUProfile()
	return errors.Join(err, f.Close())
}

func (b *bench) fedCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+b.fedKey)
}

func (b *bench) adminCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+b.adminKey)
}

// dial is the gRPC client of every figure, baselines included.
func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
}

// newHTTPClient is the REST client of every figure: keep-alive connections
// enough for every caller.
func newHTTPClient(callers int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 2*callers, 2*callers
	return &http.Client{Transport: t, Timeout: time.Minute}
}

// knkd is the server under test.
type knkd struct {
	grpcAddr, httpAddr string
	adminKey           string
	// store is the server's store when it runs in-process, else a second handle
	// on its database; setup that no RPC can do writes through it.
	store     *db.DB
	pid       int
	inProcess bool
	stop      func() error
}

// benchKEK is the key-encryption key file knkd needs on PostgreSQL:
// KNK_KEY_ENCRYPTION_KEY_FILE if set, else a new one in dir. SQLite uses the
// default file beside the database.
func benchKEK(dsn, dir string) (string, error) {
	if !db.IsPostgres(dsn) {
		return "", nil
	}
	if f := os.Getenv("KNK_KEY_ENCRYPTION_KEY_FILE"); f != "" {
		return f, nil
	}
	f := filepath.Join(dir, "knk.kek")
	_, err := secretbox.CreateKeyFile(f)
	return f, err
}

// startInProcess runs knkd in this process; its logs (JSON, as knkd writes them)
// go to io.Discard.
func startInProcess(ctx context.Context, dsn, kek string) (*knkd, error) {
	ctx, cancel := context.WithCancel(ctx)
	srv, err := server.New(ctx, server.Config{
		DB: dsn, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", KeyEncryptionKeyFile: kek,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), ShutdownTimeout: 10 * time.Second,
		// The bench verifies anonymously from one address far above the abuse limit.
		Edge: server.Edge{AnonymousLimit: server.Limit{PerMinute: -1}},
	})
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	k := &knkd{grpcAddr: srv.GRPCAddr(), httpAddr: srv.HTTPAddr(), store: srv.DB(), pid: os.Getpid(), inProcess: true,
		stop: func() error { cancel(); return <-done }}
	if k.adminKey, err = organization.Bootstrap(ctx, srv.DB(), time.Now()); err != nil {
		return nil, errors.Join(err, k.stop())
	}
	return k, nil
}

// startProcess bootstraps the database and runs bin as knkd on free loopback
// ports, its output discarded.
func startProcess(ctx context.Context, bin, dsn, kek string) (_ *knkd, err error) {
	store, err := db.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	k := &knkd{store: store}
	if k.adminKey, err = organization.Bootstrap(ctx, store, time.Now()); err != nil {
		return nil, err
	}
	if k.grpcAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	if k.httpAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--grpc-addr", k.grpcAddr, "--http-addr", k.httpAddr, "--anonymous-rate", "0")
	cmd.Env = append(os.Environ(), "KNK_DB="+dsn) // a DSN may hold a password: never in argv
	if kek != "" {
		cmd.Env = append(cmd.Env, "KNK_KEY_ENCRYPTION_KEY_FILE="+kek)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	k.pid = cmd.Process.Pid
	k.stop = func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		err := <-exited
		return errors.Join(err, store.Close())
	}
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := client.Get("http://" + k.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k, nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("%s exited before serving: %v", bin, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			k.stop()
			return nil, fmt.Errorf("%s did not answer /healthz within 15s", bin)
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// resetPeak sets the server's peak RSS (VmHWM) to its current RSS.
func (k *knkd) resetPeak() error {
	if k.inProcess {
		runtime.GC()
		debug.FreeOSMemory()
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", k.pid), []byte("5"), 0)
}

// peakRSS is the server's peak RSS (VmHWM) in MB.
func (k *knkd) peakRSS() (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", k.pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.Join(errors.New("no VmHWM in /proc/<pid>/status"), s.Err())
}

// report prints the table and writes the JSON file, and fails if a figure did.
func (b *bench) report(stdout io.Writer) error {
	judge(b.figs)
	m := machine()
	where := "in-process"
	if b.cfg.ServerBin != "" {
		where = b.cfg.ServerBin
	}
	engine := "sqlite"
	if db.IsPostgres(b.dsn) {
		engine = "postgres"
	}
	fmt.Fprintf(stdout, "knkbench: %d CPUs (%s), %s/%s, %s; knkd %s on %s; %d rows, %d callers, %v per figure\n\n",
		m.CPUs, m.CPUModel, m.OS, m.Arch, m.Go, where, engine, b.cfg.Rows, b.cfg.Concurrency, b.cfg.Duration)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tp50 ms\tp99 ms\tcpu µs/op\tbaseline\tratio\ttarget\tresult")
	failed := 0
	for _, f := range b.figs {
		value, p50, p99, cpu, ratio, result := "", "", "", "", "", ""
		switch {
		case f.Error != "":
			value, result = "error", "FAIL"
			failed++
		case f.Skipped != "":
			value = "n/a (" + f.Skipped + ")"
		default:
			value = format(f.Value, f.Unit)
		}
		if f.P50Ms > 0 {
			p50, p99 = fmt.Sprintf("%.2f", f.P50Ms), fmt.Sprintf("%.2f", f.P99Ms)
		}
		if f.CPUUs > 0 {
			cpu = fmt.Sprintf("%.0f", f.CPUUs)
		}
		if f.Ratio > 0 {
			ratio = fmt.Sprintf("%.2fx", f.Ratio)
		}
		if f.Pass != nil {
			result = map[bool]string{true: "pass", false: "FAIL"}[*f.Pass]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, value, p50, p99, cpu, f.Baseline, ratio, f.Target, result)
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	for _, f := range b.figs {
		if f.Note != "" || f.Error != "" {
			fmt.Fprintf(stdout, "%s: %s%s\n", f.Name, f.Note, f.Error)
		}
	}
	if b.cfg.JSON != "" {
		values := map[string]float64{}
		pass := true
		for _, f := range b.figs {
			if f.Skipped == "" && f.Error == "" {
				values[f.Name] = f.Value
			}
			if f.Ratio > 0 {
				values[f.Name+"_ratio"] = f.Ratio
			}
			if f.Pass != nil && !*f.Pass || f.Error != "" {
				pass = false
			}
		}
		out, err := json.MarshalIndent(map[string]any{
			"command": strings.TrimSpace("knkbench " + strings.Join(b.args, " ")),
			"time":    time.Now().UTC().Format(time.RFC3339),
			"machine": m,
			"config": map[string]any{
				"server": where, "engine": engine, "rows": b.cfg.Rows,
				"concurrency": b.cfg.Concurrency, "duration": b.cfg.Duration.String(),
			},
			"figures": b.figs,
			"values":  values,
			"pass":    pass,
		}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(b.cfg.JSON, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d figures failed", failed)
	}
	return nil
}

func format(v float64, unit string) string {
	switch unit {
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	case "MB":
		return fmt.Sprintf("%.0f MB", v)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

type machineInfo struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Go       string `json:"go"`
}

func machine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(), CPUModel: "unknown"}
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(info)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimLeft(v, " \t:"))
				break
			}
		}
	}
	return m
}
