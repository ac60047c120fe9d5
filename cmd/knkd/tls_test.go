package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/knk-id/knk/internal/testenv"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// knkdBinary builds knkd once per test run.
func knkdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "knkd-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "knkd")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("build knkd: %v", buildErr)
	}
	return builtBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// logLines follows a process's JSON log on stderr.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   []string
	more  chan struct{}
}

func follow(r io.Reader) *logLines {
	l := &logLines{more: make(chan struct{}, 1)}
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			var m map[string]any
			json.Unmarshal(s.Bytes(), &m)
			l.mu.Lock()
			l.lines, l.raw = append(l.lines, m), append(l.raw, s.Text())
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// wait returns the first line from index from on whose msg is msg.
func (l *logLines) wait(t *testing.T, from int, msg string) (map[string]any, int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			if l.lines[i]["msg"] == msg {
				l.mu.Unlock()
				return l.lines[i], i
			}
		}
		l.mu.Unlock()
		select {
		case <-l.more:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no log line %q; log:\n%s", msg, strings.Join(l.raw, "\n"))
		}
	}
}

// TestKnkdServesTLSFromTheTestCA makes a CA with scripts/make-test-ca.sh (openssl),
// runs knkd on it, checks the first log line, talks HTTPS to it, renews the
// certificate with the script, sends SIGHUP and sees the new certificate on a
// new connection.
func TestKnkdServesTLSFromTheTestCA(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (Debian package openssl)")
	}
	bin := knkdBinary(t)
	ca := t.TempDir()
	makeCA := func() {
		t.Helper()
		if out, err := exec.Command("../../scripts/make-test-ca.sh", ca).CombinedOutput(); err != nil {
			t.Fatalf("make-test-ca.sh: %v\n%s", err, out)
		}
	}
	makeCA()
	grpcAddr, httpAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cmd := exec.Command(bin, "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--tls-cert", filepath.Join(ca, "server.pem"), "--tls-key", filepath.Join(ca, "server-key.pem"))
	cmd.Env = append(os.Environ(), "KNK_DB="+filepath.Join(t.TempDir(), "knk.db"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	logs := follow(stderr)
	first, i := logs.wait(t, 0, "knkd serving")
	if i != 0 || first["grpc_addr"] != grpcAddr || first["http_addr"] != httpAddr || first["tls"] != true {
		t.Errorf("first log line (#%d): %v, want the bound addresses and tls true", i, first)
	}

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(filepath.Join(ca, "ca.pem"))
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("ca.pem: %v", err)
	}
	serial := func() string {
		t.Helper()
		// A new client each time: a new connection, a new handshake.
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Get("https://" + httpAddr + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz over HTTPS: %v", err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	makeCA() // renews the server certificate under the same CA
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, i+1, "TLS certificate reloaded")
	if after := serial(); after == before {
		t.Errorf("after renewal and SIGHUP a new connection still gets certificate %s", before)
	}
}

func TestKnkdRefusesSecretsAndPlaintextOnTheNetwork(t *testing.T) {
	bin := knkdBinary(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"password in --db", []string{"--db", "postgres://knk:s3cret@127.0.0.1:1/knk"}, "password on the command line"},
		{"plaintext on every interface", []string{"--db", filepath.Join(t.TempDir(), "knk.db"), "--grpc-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0"}, "without TLS"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, tt.args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("%s: %v, output %q; want a refusal saying %q", tt.name, err, out, tt.want)
		}
		if strings.Contains(string(out), "s3cret") {
			t.Errorf("%s: the refusal repeats the password: %s", tt.name, out)
		}
	}
}
