// Package hostile runs knkd as its own process on loopback ports and attacks it
// the way issue 11 did: oversized bodies, slow bodies, floods of idle
// connections, floods of streams and of bad keys. Throughout each attack /healthz
// and a keyed gRPC call must answer within 1 s and knkd's RSS must stay under
// 300 MB. It prints what it measured.
//
// It runs only when KNK_HOSTILE names a size, on a machine it has to itself (its
// probes must answer within 1 s): `make test-hostile` runs the full size,
// `make test-hostile HOSTILE_SIZE=small` (in .ci/run) the small one, in well
// under a minute. `go test ./...` skips it with one line.
package hostile_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/services/cadre"
	"github.com/knk-id/knk/services/organization"
)

// size is how hard each attack is.
type size struct {
	name          string
	maxHTTPConns  int           // knkd --max-http-conns
	maxGRPCConns  int           // knkd --max-grpc-conns
	bodyClients   int           // concurrent 50 MB bodies
	slowConns     int           // connections sending a body a byte at a time
	idleHTTP      int           // REST connections kept open (more than maxHTTPConns)
	idleGRPC      int           // gRPC connections kept open (more than maxGRPCConns)
	events        int           // length of the event log that watches replay
	watchKeys     int           // keys opening watches
	watchStreams  int           // WatchEvents streams opened in all
	stalled       int           // import streams that stop sending
	badKeyClients int           // concurrent callers with wrong keys
	attack        time.Duration // how long the timed attacks last
}

var (
	small = size{name: "small", maxHTTPConns: 600, maxGRPCConns: 200, bodyClients: 8, slowConns: 200, idleHTTP: 800, idleGRPC: 300,
		events: 5000, watchKeys: 4, watchStreams: 200, stalled: 40, badKeyClients: 16, attack: 3 * time.Second}
	full = size{name: "full", maxHTTPConns: 2048, maxGRPCConns: 512, bodyClients: 32, slowConns: 2000, idleHTTP: 5000, idleGRPC: 1500,
		events: 100000, watchKeys: 50, watchStreams: 2000, stalled: 500, badKeyClients: 64, attack: 10 * time.Second}
)

// The timeouts knkd runs with here, scaled down from the defaults so that slow
// attackers are cut within the test.
const (
	readHeaderTimeout = 2 * time.Second
	readTimeout       = 4 * time.Second
	streamIdleTimeout = 3 * time.Second
	slowByteEvery     = time.Second
	answerWithin      = time.Second
	maxRSS            = 300 << 20
)

// pickSize is the size KNK_HOSTILE names; ok is false when it names none.
func pickSize() (size, bool) {
	switch os.Getenv("KNK_HOSTILE") {
	case "full":
		return full, true
	case "small":
		return small, true
	}
	return size{}, false
}

// knkd is the server under attack.
type knkd struct {
	pid       int
	httpAddr  string
	grpcAddr  string
	adminKey  string
	fedKey    string
	cadreName string
	watchKeys []string         // admin keys for the stream flood
	conn      *grpc.ClientConn // the well-behaved client's connection
	log       string
}

func TestHostile(t *testing.T) {
	sz, ok := pickSize()
	if !ok {
		t.Skip("hostile-traffic suite skipped: it needs the machine to itself; run `make test-hostile` (full size) or set KNK_HOSTILE=small (as .ci/run does)")
	}
	raiseFileLimit(t, sz)
	k := startKnkd(t, sz)
	var figures []figure
	run := func(name string, attack func(t *testing.T, k *knkd, sz size) string) {
		t.Run(name, func(t *testing.T) {
			m := watch(k)
			note := attack(t, k, sz)
			f := m.stop(name, note)
			figures = append(figures, f)
			for _, p := range f.problems {
				t.Error(p)
			}
			if f.peakRSS > maxRSS {
				t.Errorf("knkd RSS reached %d MB, want under %d MB", f.peakRSS>>20, maxRSS>>20)
			}
		})
	}
	run("oversized-body", oversizedBodies)
	run("slow-body", slowBodies)
	run("idle-connections", idleConnections)
	run("stream-flood", streamFlood)
	run("bad-key-flood", badKeyFlood)

	hwm := procStatus(k.pid, "VmHWM")
	var b strings.Builder
	fmt.Fprintf(&b, "\nhostile-traffic suite, %s size, knkd pid %d (peak RSS over the whole run, VmHWM: %d MB)\n", sz.name, k.pid, hwm>>20)
	fmt.Fprintf(&b, "%-17s %9s %9s %10s %10s  %s\n", "scenario", "conns", "peak RSS", "/healthz", "gRPC call", "attack")
	for _, f := range figures {
		fmt.Fprintf(&b, "%-17s %9d %6d MB %7.0f ms %7.0f ms  %s\n", f.name, f.maxConns, f.peakRSS>>20,
			ms(f.maxHealth), ms(f.maxGRPC), f.note)
	}
	fmt.Fprintln(&b, "conns: most connections knkd held at once (open sockets of the process); /healthz and gRPC call: the longest answer during the attack.")
	t.Log(b.String())
	fmt.Print(b.String())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// raiseFileLimit lifts the soft open-file limit to the hard one: the attacks
// hold thousands of sockets. knkd does the same for itself (the Go runtime does).
func raiseFileLimit(t *testing.T, sz size) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if need := uint64(sz.idleHTTP + sz.idleGRPC + sz.slowConns + 1000); l.Cur < need {
		t.Skipf("open-file limit %d is below the %d this size needs", l.Cur, need)
	}
}

// knkdBinary is bin/knkd when KNK_HOSTILE_KNKD names it, else a fresh build.
func knkdBinary(t *testing.T) string {
	if p := os.Getenv("KNK_HOSTILE_KNKD"); p != "" {
		return p
	}
	bin := filepath.Join(t.TempDir(), "knkd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/knkd")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build knkd: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startKnkd(t *testing.T, sz size) *knkd {
	bin := knkdBinary(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "knk.db")
	ctx := context.Background()
	store, err := db.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	k := &knkd{httpAddr: freePort(t), grpcAddr: freePort(t), log: filepath.Join(dir, "knkd.log")}
	k.adminKey, err = organization.Bootstrap(ctx, store, time.Now())
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--db", dbPath, "--grpc-addr", k.grpcAddr, "--http-addr", k.httpAddr, "--log-level", "warn",
		"--max-http-conns", strconv.Itoa(sz.maxHTTPConns), "--max-grpc-conns", strconv.Itoa(sz.maxGRPCConns),
		"--read-header-timeout", readHeaderTimeout.String(), "--read-timeout", readTimeout.String(),
		"--stream-idle-timeout", streamIdleTimeout.String(), "--idle-timeout", "10s")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k.pid = cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(k.log); err == nil {
				t.Logf("knkd log (last 4 KB):\n%s", b[max(0, len(b)-4096):])
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, err := http.Get("http://" + k.httpAddr + "/healthz"); err == nil {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("knkd did not answer /healthz within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	k.conn, err = grpc.NewClient(k.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.conn.Close() })
	k.seed(t, sz)
	return k
}

func keyCtx(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

func nik(i int) string { return fmt.Sprintf("3171%02d150890%04d", 1+(i/9999)%99, 1+i%9999) }

// seed makes a federation with a key and imports sz.events cadres: each is an
// event for the watches to replay.
func (k *knkd) seed(t *testing.T, sz size) {
	ctx := keyCtx(context.Background(), k.adminKey)
	orgs := knkv1.NewOrganizationServiceClient(k.conn)
	if _, err := orgs.CreateOrganization(ctx, &knkv1.CreateOrganizationRequest{OrganizationId: "ksbsi",
		Organization: &knkv1.Organization{Kind: knkv1.Organization_KIND_FEDERATION, DisplayName: "KSBSI"}}); err != nil {
		t.Fatal(err)
	}
	key, err := orgs.CreateApiKey(ctx, &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi"})
	if err != nil {
		t.Fatal(err)
	}
	k.fedKey = key.Secret
	cadres := knkv1.NewCadreServiceClient(k.conn)
	stream, err := cadres.ImportCadres(keyCtx(context.Background(), k.fedKey))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range sz.events {
			if stream.Send(&knkv1.ImportCadresRequest{Cadre: &knkv1.Cadre{DisplayName: "Kader", Nik: nik(i), ProvinceCode: "31"}}) != nil {
				return
			}
		}
		stream.CloseSend()
	}()
	last, err := cadre.ReceiveImport(stream, func(*knkv1.ImportCadresResponse) error { return nil })
	if err != nil || last.Created != int64(sz.events) {
		t.Fatalf("seed import: %v %v", last, err)
	}
	list, err := cadres.ListCadres(keyCtx(context.Background(), k.fedKey), &knkv1.ListCadresRequest{PageSize: 1})
	if err != nil || len(list.Cadres) == 0 {
		t.Fatalf("list: %v", err)
	}
	k.cadreName = list.Cadres[0].Name
	k.watchKeys = []string{k.adminKey}
	for len(k.watchKeys) < sz.watchKeys {
		key, err := orgs.CreateApiKey(ctx, &knkv1.CreateApiKeyRequest{Parent: "organizations/admin"})
		if err != nil {
			t.Fatal(err)
		}
		k.watchKeys = append(k.watchKeys, key.Secret)
	}
}

// figure is what one attack measured.
type figure struct {
	name               string
	note               string
	maxConns           int
	peakRSS            int64
	maxHealth, maxGRPC time.Duration
	problems           []string
}

// monitor is a well-behaved client and a meter running during an attack.
type monitor struct {
	k      *knkd
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	f      figure
	probes int
}

// watch starts probing /healthz (on a new connection each time), a keyed gRPC
// call (on the client's open connection) and knkd's RSS and sockets, every
// 100 ms until stop.
func watch(k *knkd) *monitor {
	m := &monitor{k: k, done: make(chan struct{})}
	health := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	cadres := knkv1.NewCadreServiceClient(k.conn)
	probe := func(what string, call func() error, worst *time.Duration) {
		defer m.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			start := time.Now()
			err := call()
			took := time.Since(start)
			m.mu.Lock()
			*worst = max(*worst, took)
			m.probes++
			if err != nil || took > answerWithin {
				if len(m.f.problems) < 5 {
					m.f.problems = append(m.f.problems, fmt.Sprintf("%s: %v after %s (want an answer within %s)", what, err, took.Round(time.Millisecond), answerWithin))
				}
			}
			m.mu.Unlock()
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
		}
	}
	m.wg.Add(3)
	go probe("GET /healthz", func() error {
		r, err := health.Get("http://" + k.httpAddr + "/healthz")
		if err != nil {
			return err
		}
		defer r.Body.Close()
		io.Copy(io.Discard, r.Body)
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", r.StatusCode)
		}
		return nil
	}, &m.f.maxHealth)
	go probe("GetCadre", func() error {
		ctx, cancel := context.WithTimeout(keyCtx(context.Background(), k.fedKey), 5*time.Second)
		defer cancel()
		_, err := cadres.GetCadre(ctx, &knkv1.GetCadreRequest{Name: k.cadreName})
		return err
	}, &m.f.maxGRPC)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			rss, conns := procStatus(k.pid, "VmRSS"), sockets(k.pid)
			m.mu.Lock()
			m.f.peakRSS, m.f.maxConns = max(m.f.peakRSS, rss), max(m.f.maxConns, conns)
			m.mu.Unlock()
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *monitor) stop(name, note string) figure {
	close(m.done)
	m.wg.Wait()
	m.f.name, m.f.note = name, note
	return m.f
}

// procStatus is a /proc/PID/status field in bytes (VmRSS, VmHWM).
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// sockets counts the process's open sockets.
func sockets(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// dialing bounds how many connections are being opened at once: attackers
// ramp up instead of overflowing the kernel's SYN queue, which would measure
// the kernel rather than knkd.
var dialing = make(chan struct{}, 64)

func rampDial(addr string) (net.Conn, error) {
	dialing <- struct{}{}
	defer func() { <-dialing }()
	return net.DialTimeout("tcp", addr, 5*time.Second)
}

// until runs f in n goroutines until d has passed.
func until(n int, d time.Duration, f func(stop <-chan struct{})) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(stop) }()
	}
	time.Sleep(d)
	close(stop)
	wg.Wait()
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// oversizedBodies sends 50 MB bodies of spaces without a key, half with a
// Content-Length and half chunked, as fast as knkd refuses them.
func oversizedBodies(t *testing.T, k *knkd, sz size) string {
	var refused, other, sent atomic.Int64
	spaces := make([]byte, 64<<10)
	for i := range spaces {
		spaces[i] = ' '
	}
	const body = 50 << 20
	var i atomic.Int64
	until(sz.bodyClients, sz.attack, func(stop <-chan struct{}) {
		chunked := i.Add(1)%2 == 0
		for !stopped(stop) {
			conn, err := rampDial(k.httpAddr)
			if err != nil {
				other.Add(1)
				continue
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			head := fmt.Sprintf("POST /v1/cadres HTTP/1.1\r\nHost: knk\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", body)
			if chunked {
				head = "POST /v1/cadres HTTP/1.1\r\nHost: knk\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"
			}
			io.WriteString(conn, head)
			answered := make(chan int, 1)
			go func() {
				r, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					answered <- 0
					return
				}
				r.Body.Close()
				answered <- r.StatusCode
			}()
			var n int64
			code := -1
		write:
			for n < body {
				select {
				case code = <-answered:
					break write
				default:
				}
				var err error
				if chunked {
					_, err = fmt.Fprintf(conn, "%x\r\n%s\r\n", len(spaces), spaces)
				} else {
					_, err = conn.Write(spaces)
				}
				if err != nil {
					break
				}
				n += int64(len(spaces))
			}
			sent.Add(n)
			if code < 0 {
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				code = <-answered
			}
			conn.Close()
			if code == http.StatusRequestEntityTooLarge {
				refused.Add(1)
			} else {
				other.Add(1)
			}
		}
	})
	if refused.Load() == 0 || other.Load() > refused.Load()/10 {
		t.Errorf("50 MB bodies: %d answered 413, %d otherwise; want (nearly) all 413", refused.Load(), other.Load())
	}
	return fmt.Sprintf("%d clients sending 50 MB bodies of spaces for %s: %d answered 413, %d otherwise, %d MB sent in all",
		sz.bodyClients, sz.attack, refused.Load(), other.Load(), sent.Load()>>20)
}

// slowBodies opens sz.slowConns connections that send a body one byte every
// second: half to POST /v1/cadres:lookup, half as an import line. Each must be
// cut (408) at knkd's read timeout or stream idle timeout.
func slowBodies(t *testing.T, k *knkd, sz size) string {
	var cut, open atomic.Int64
	var longest atomic.Int64
	var wg sync.WaitGroup
	for i := range sz.slowConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := rampDial(k.httpAddr)
			if err != nil {
				open.Add(1)
				return
			}
			defer conn.Close()
			// Valid JSON so far, so that only time can end it: a NIK (or a name)
			// growing by a digit a second.
			head := "POST /v1/cadres:lookup HTTP/1.1\r\nHost: knk\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"nik\": \""
			byteOf := func() string { return "1" }
			if i%2 == 1 {
				head = "POST /v1/cadres:import HTTP/1.1\r\nHost: knk\r\nAuthorization: Bearer " + k.fedKey +
					"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n{\"cadre\": {\"name\": \"\r\n"
				byteOf = func() string { return "1\r\n1\r\n" }
			}
			start := time.Now()
			io.WriteString(conn, head)
			answered := make(chan int, 1)
			go func() {
				conn.SetReadDeadline(time.Now().Add(readTimeout + 20*time.Second))
				r, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					answered <- 0
					return
				}
				r.Body.Close()
				answered <- r.StatusCode
			}()
			tick := time.NewTicker(slowByteEvery)
			defer tick.Stop()
			for {
				select {
				case code := <-answered:
					longest.Store(max(longest.Load(), int64(time.Since(start))))
					if code == http.StatusRequestTimeout {
						cut.Add(1)
					} else {
						open.Add(1)
						if open.Load() < 5 {
							t.Logf("slow body (import: %v) answered %d after %s", i%2 == 1, code, time.Since(start))
						}
					}
					return
				case <-tick.C:
					io.WriteString(conn, byteOf())
				}
			}
		}()
	}
	wg.Wait()
	if cut.Load() != int64(sz.slowConns) {
		t.Errorf("slow bodies: %d of %d cut with 408", cut.Load(), sz.slowConns)
	}
	// Generous: on a loaded machine a connection may wait to be accepted, and
	// the clock here starts when the client has connected.
	if d := time.Duration(longest.Load()); d > max(readTimeout, streamIdleTimeout)+20*time.Second {
		t.Errorf("a slow body was held %s", d)
	}
	return fmt.Sprintf("%d connections sending a byte every %s (--read-timeout %s, --stream-idle-timeout %s): %d cut with 408, the longest after %.1f s",
		sz.slowConns, slowByteEvery, readTimeout, streamIdleTimeout, cut.Load(), time.Duration(longest.Load()).Seconds())
}

// idleConnections keeps more connections open on each listener than its cap:
// half silent, half that spoke once (a REST request or a gRPC handshake) and
// then idle. Each attacker reconnects half a second after it is cut.
func idleConnections(t *testing.T, k *knkd, sz size) string {
	var dials, cuts atomic.Int64
	attacker := func(addr string, speak func(net.Conn)) func(stop <-chan struct{}) {
		return func(stop <-chan struct{}) {
			for !stopped(stop) {
				conn, err := rampDial(addr)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				dials.Add(1)
				if speak != nil {
					speak(conn)
				}
				closed := make(chan struct{})
				go func() { io.Copy(io.Discard, conn); close(closed) }()
				select {
				case <-closed:
					cuts.Add(1)
					time.Sleep(500 * time.Millisecond)
				case <-stop:
				}
				conn.Close()
			}
		}
	}
	rest := func(c net.Conn) { io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: knk\r\n\r\n") }
	handshake := func(c net.Conn) {
		io.WriteString(c, http2.ClientPreface)
		http2.NewFramer(c, c).WriteSettings()
	}
	var wg sync.WaitGroup
	for _, a := range []struct {
		n int
		f func(<-chan struct{})
	}{{sz.idleHTTP / 2, attacker(k.httpAddr, nil)}, {sz.idleHTTP / 2, attacker(k.httpAddr, rest)},
		{sz.idleGRPC / 2, attacker(k.grpcAddr, nil)}, {sz.idleGRPC / 2, attacker(k.grpcAddr, handshake)}} {
		wg.Add(1)
		go func() { defer wg.Done(); until(a.n, sz.attack+readHeaderTimeout, a.f) }()
	}
	wg.Wait()
	return fmt.Sprintf("%d REST and %d gRPC connections kept open for %s (--max-http-conns %d, --max-grpc-conns %d, --read-header-timeout %s): %d opened, %d closed by knkd",
		sz.idleHTTP, sz.idleGRPC, sz.attack+readHeaderTimeout, sz.maxHTTPConns, sz.maxGRPCConns, readHeaderTimeout, dials.Load(), cuts.Load())
}

// streamFlood opens sz.watchStreams WatchEvents streams over a few connections
// with sz.watchKeys keys, none of them read (replays must wait on flow control),
// and sz.stalled import streams that send one row and then nothing.
func streamFlood(t *testing.T, k *knkd, sz size) string {
	keys := k.watchKeys
	const perConn = 100 // under --max-streams
	var conns []*grpc.ClientConn
	dial := func() *grpc.ClientConn {
		// A fixed window (no BDP growth): a stream nobody reads holds 64 KB.
		cc, err := grpc.NewClient(k.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(1<<20))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cc)
		return cc
	}
	defer func() {
		for _, cc := range conns {
			cc.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var watching, exhausted, otherErr, stalledCut, stalledRefused, stalledOther atomic.Int64
	var wg sync.WaitGroup
	var cc *grpc.ClientConn
	for i := range sz.watchStreams {
		if i%perConn == 0 {
			cc = dial()
		}
		events := knkv1.NewEventServiceClient(cc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := events.WatchEvents(keyCtx(ctx, keys[i%len(keys)]), &knkv1.WatchEventsRequest{})
			if err == nil {
				// One event says the stream is open; after it, nothing more is read:
				// the replay must wait on flow control.
				_, err = s.Recv()
			}
			switch status.Code(err) {
			case codes.OK:
				watching.Add(1)
			case codes.ResourceExhausted:
				exhausted.Add(1)
			default:
				otherErr.Add(1)
			}
		}()
	}
	cadres := knkv1.NewCadreServiceClient(dial())
	for i := range sz.stalled {
		if i > 0 && i%perConn == 0 {
			cadres = knkv1.NewCadreServiceClient(dial())
		}
		cadres := cadres
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := cadres.ImportCadres(keyCtx(ctx, k.fedKey))
			if err == nil {
				err = s.Send(&knkv1.ImportCadresRequest{Cadre: &knkv1.Cadre{DisplayName: "X", Nik: "1", ProvinceCode: "31"}})
			}
			if err == nil {
				_, err = s.Recv()
			}
			switch status.Code(err) {
			case codes.DeadlineExceeded:
				stalledCut.Add(1)
			case codes.ResourceExhausted: // the key's NIK-check budget (--nik-checks-per-minute)
				stalledRefused.Add(1)
			default:
				stalledOther.Add(1)
			}
		}()
	}
	time.Sleep(streamIdleTimeout + 2*time.Second)
	cancel()
	wg.Wait()
	if otherErr.Load() > 0 || stalledOther.Load() > 0 {
		t.Errorf("%d watches and %d stalled imports ended otherwise than refused or cut", otherErr.Load(), stalledOther.Load())
	}
	return fmt.Sprintf("%d WatchEvents streams of %d keys replaying %d events unread, %d stalled imports: %d watches open, %d RESOURCE_EXHAUSTED, %d other; imports: %d cut with DEADLINE_EXCEEDED, %d refused RESOURCE_EXHAUSTED, %d other",
		sz.watchStreams, len(keys), sz.events, sz.stalled, watching.Load(), exhausted.Load(), otherErr.Load(), stalledCut.Load(), stalledRefused.Load(), stalledOther.Load())
}

// badKeyFlood calls with random keys over gRPC and REST as fast as it can.
func badKeyFlood(t *testing.T, k *knkd, sz size) string {
	var refused, other atomic.Int64
	cadres := knkv1.NewCadreServiceClient(k.conn)
	client := &http.Client{Timeout: 5 * time.Second}
	var i atomic.Int64
	until(sz.badKeyClients, sz.attack, func(stop <-chan struct{}) {
		overREST := i.Add(1)%2 == 0
		for !stopped(stop) {
			b := make([]byte, 16)
			rand.Read(b)
			key := hex.EncodeToString(b)
			var code codes.Code
			if overREST {
				req, _ := http.NewRequest(http.MethodGet, "http://"+k.httpAddr+"/v1/cadres", nil)
				req.Header.Set("Authorization", "Bearer "+key)
				r, err := client.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				code = map[int]codes.Code{401: codes.Unauthenticated, 429: codes.ResourceExhausted}[r.StatusCode]
			} else {
				ctx, cancel := context.WithTimeout(keyCtx(context.Background(), key), 5*time.Second)
				_, err := cadres.GetCadre(ctx, &knkv1.GetCadreRequest{Name: k.cadreName})
				cancel()
				code = status.Code(err)
			}
			if code == codes.Unauthenticated || code == codes.ResourceExhausted {
				refused.Add(1)
			} else {
				other.Add(1)
			}
		}
	})
	if other.Load() > 0 {
		t.Errorf("bad keys: %d calls answered other than UNAUTHENTICATED or RESOURCE_EXHAUSTED", other.Load())
	}
	return fmt.Sprintf("%d callers with random keys for %s (half gRPC, half REST): %d refused (%.0f/s), %d otherwise",
		sz.badKeyClients, sz.attack, refused.Load(), float64(refused.Load())/sz.attack.Seconds(), other.Load())
}
