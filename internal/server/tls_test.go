package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/internal/testenv"
)

func tlsDial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// listOrgs is a keyed gRPC call; it returns the serial of the certificate the
// connection's server presented.
func listOrgs(t *testing.T, cc *grpc.ClientConn, key string) (serial string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testenv.Ctx(key), 5*time.Second)
	defer cancel()
	var p peer.Peer
	_, err = knkv1.NewOrganizationServiceClient(cc).ListOrganizations(ctx, &knkv1.ListOrganizationsRequest{}, grpc.Peer(&p))
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		serial = info.State.PeerCertificates[0].SerialNumber.String()
	}
	return serial, err
}

func TestTLSOnBothPorts(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	e := testenv.StartTLS(t, f, nil)
	if !e.Server.Encrypted() {
		t.Fatal("knkd says it is not encrypted")
	}
	if serial, err := listOrgs(t, e.Conn, e.AdminKey); err != nil || serial != f.ServerSerial.String() {
		t.Errorf("gRPC over TLS: serial %s (%v), want %s", serial, err, f.ServerSerial)
	}
	// The gateway reaches the gRPC server, interceptors and all, under TLS.
	r := e.REST(t, http.MethodGet, "/v1/organizations", e.AdminKey, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Raw), "organizations/admin") {
		t.Errorf("GET /v1/organizations over HTTPS: %d %s", r.Status, r.Raw)
	}
	// A plaintext client gets nothing from either port.
	if _, err := listOrgs(t, tlsDial(t, e.Server.GRPCAddr(), insecure.NewCredentials()), e.AdminKey); err == nil {
		t.Error("a plaintext gRPC call to the TLS port was answered")
	}
	if resp, err := http.Get("http://" + e.Server.HTTPAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("a plaintext HTTP request to the TLS port was answered 200")
		}
	}
	// A client that trusts another CA refuses knkd's certificate.
	other := testenv.NewTLSFiles(t)
	if _, err := listOrgs(t, tlsDial(t, e.Server.GRPCAddr(), other.GRPCCredentials(false)), e.AdminKey); err == nil {
		t.Error("a client trusting another CA accepted knkd's certificate")
	}
}

func TestTLS11IsRefused(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	e := testenv.StartTLS(t, f, nil)
	for _, addr := range []string{e.Server.GRPCAddr(), e.Server.HTTPAddr()} {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			cfg := f.ClientConfig(false)
			cfg.MinVersion, cfg.MaxVersion = v, v
			conn, err := tls.Dial("tcp", addr, cfg)
			if err == nil {
				conn.Close()
				t.Errorf("%s accepted %s", addr, tls.VersionName(v))
			}
		}
		cfg := f.ClientConfig(false)
		cfg.MaxVersion = tls.VersionTLS12
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Errorf("%s refused TLS 1.2: %v", addr, err)
			continue
		}
		conn.Close()
	}
}

// TestCurlOverTLS checks the REST port with curl: the certificate verifies against
// the test CA, and a keyed call goes through the gateway.
func TestCurlOverTLS(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (Debian package curl)")
	}
	f := testenv.NewTLSFiles(t)
	e := testenv.StartTLS(t, f, nil)
	out, err := exec.Command(curl, "-sS", "--fail", "--cacert", f.CA, "--tlsv1.2",
		"-H", "Authorization: Bearer "+e.AdminKey, e.BaseURL+"/v1/organizations").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "organizations/admin") {
		t.Errorf("curl --cacert: %v\n%s", err, out)
	}
	// Without the CA, curl refuses the certificate.
	out, err = exec.Command(curl, "-sS", "--fail", e.BaseURL+"/healthz").CombinedOutput()
	if err == nil {
		t.Errorf("curl without --cacert accepted the test certificate: %s", out)
	}
}

// TestTLSReload replaces the certificate files and reloads (what SIGHUP and a
// file change do): a new connection sees the new certificate, and a connection
// opened before keeps working on the old one.
func TestTLSReload(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	e := testenv.StartTLS(t, f, nil)
	oldSerial := f.ServerSerial.String()

	oldGRPC := tlsDial(t, e.Server.GRPCAddr(), f.GRPCCredentials(false))
	if serial, err := listOrgs(t, oldGRPC, e.AdminKey); err != nil || serial != oldSerial {
		t.Fatalf("before reload: serial %s (%v), want %s", serial, err, oldSerial)
	}
	oldHTTP := f.HTTPClient()
	httpsSerial := func(c *http.Client) string {
		t.Helper()
		resp, err := c.Get(e.BaseURL + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	if got := httpsSerial(oldHTTP); got != oldSerial {
		t.Fatalf("HTTPS before reload: serial %s, want %s", got, oldSerial)
	}

	f.RenewServer(t)
	if err := e.Server.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	newSerial := f.ServerSerial.String()
	if serial, err := listOrgs(t, tlsDial(t, e.Server.GRPCAddr(), f.GRPCCredentials(false)), e.AdminKey); err != nil || serial != newSerial {
		t.Errorf("new gRPC connection after reload: serial %s (%v), want %s", serial, err, newSerial)
	}
	if got := httpsSerial(f.HTTPClient()); got != newSerial {
		t.Errorf("new HTTPS connection after reload: serial %s, want %s", got, newSerial)
	}
	// The connections opened before the reload still work, on the old certificate.
	if serial, err := listOrgs(t, oldGRPC, e.AdminKey); err != nil || serial != oldSerial {
		t.Errorf("old gRPC connection after reload: serial %s (%v), want %s on the same connection", serial, err, oldSerial)
	}
	if got := httpsSerial(oldHTTP); got != oldSerial {
		t.Errorf("old HTTPS connection after reload: serial %s, want %s on the same connection", got, oldSerial)
	}
}

// TestTLSReloadOnFileChange is the watcher's check, called directly: nothing
// happens while the files are unchanged or half replaced, and the new pair is
// served once both are in place.
func TestTLSReloadOnFileChange(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	e := testenv.StartTLS(t, f, nil)
	old := f.ServerSerial.String()
	if e.Server.ReloadTLSIfChanged() {
		t.Error("reloaded although no file changed")
	}
	renewed := testenv.NewTLSFiles(t) // another pair, to copy in one file at a time
	copyFile(t, renewed.ServerCert, f.ServerCert)
	if e.Server.ReloadTLSIfChanged() {
		t.Error("reloaded a new certificate with the old key")
	}
	copyFile(t, renewed.ServerKey, f.ServerKey)
	if !e.Server.ReloadTLSIfChanged() {
		t.Fatal("did not reload once certificate and key were both replaced")
	}
	// knkd now serves a certificate from another CA: a client of the old CA refuses it,
	// a client of the new one accepts it.
	if _, err := listOrgs(t, tlsDial(t, e.Server.GRPCAddr(), f.GRPCCredentials(false)), e.AdminKey); err == nil {
		t.Errorf("a client of the old CA accepted the certificate after the reload (old serial %s)", old)
	}
	if serial, err := listOrgs(t, tlsDial(t, e.Server.GRPCAddr(), renewed.GRPCCredentials(false)), e.AdminKey); err != nil || serial != renewed.ServerSerial.String() {
		t.Errorf("after the reload: serial %s (%v), want %s", serial, err, renewed.ServerSerial)
	}
}

// TestTLSReloadKeepsTheOldCertificateOnBadFiles: a half-replaced pair is not loaded.
func TestTLSReloadKeepsTheOldCertificateOnBadFiles(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	e := testenv.StartTLS(t, f, nil)
	old := f.ServerSerial.String()
	other := testenv.NewTLSFiles(t)
	copyFile(t, other.ServerKey, f.ServerKey) // the key no longer matches the certificate
	if err := e.Server.ReloadTLS(); err == nil {
		t.Error("a mismatched certificate and key reloaded")
	}
	if serial, err := listOrgs(t, tlsDial(t, e.Server.GRPCAddr(), f.GRPCCredentials(false)), e.AdminKey); err != nil || serial != old {
		t.Errorf("after a failed reload: serial %s (%v), want the old %s", serial, err, old)
	}
}

func TestClientCertificatesOnTheGRPCPort(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	e := testenv.StartTLS(t, f, func(c *testenv.Config) { c.ClientCA = f.CA })
	if _, err := listOrgs(t, e.Conn, e.AdminKey); err != nil {
		t.Errorf("with a client certificate: %v", err)
	}
	if _, err := listOrgs(t, tlsDial(t, e.Server.GRPCAddr(), f.GRPCCredentials(false)), e.AdminKey); err == nil {
		t.Error("a client without a certificate was answered")
	}
	cfg := f.ClientConfig(false)
	cfg.Certificates = []tls.Certificate{testenv.OtherClient(t)}
	if _, err := listOrgs(t, tlsDial(t, e.Server.GRPCAddr(), credentials.NewTLS(cfg)), e.AdminKey); err == nil {
		t.Error("a client certificate from another CA was accepted")
	}
	// The REST port faces the public: no client certificate, and the gateway
	// still reaches the gRPC server.
	r := e.REST(t, http.MethodGet, "/v1/organizations", e.AdminKey, nil)
	if r.Status != http.StatusOK {
		t.Errorf("REST under --client-ca: %d %s", r.Status, r.Raw)
	}
}

func TestPlaintextOffLoopbackIsRefused(t *testing.T) {
	path := dbtest.DSN(t, dbtest.Engine())
	for _, addrs := range [][2]string{{"0.0.0.0:0", "127.0.0.1:0"}, {"127.0.0.1:0", "0.0.0.0:0"}} {
		_, err := server.New(context.Background(), server.Config{DB: path, GRPCAddr: addrs[0], HTTPAddr: addrs[1],
			KeyEncryptionKeyFile: testenv.KEKFile(t, path)})
		if err == nil || !strings.Contains(err.Error(), "without TLS") {
			t.Errorf("plaintext on %v: %v, want a refusal", addrs, err)
		}
	}
	// --allow-plaintext (behind a proxy that terminates TLS) lets it start.
	e := testenv.StartWith(t, path, func(c *testenv.Config) { c.GRPCAddr, c.AllowPlaintext = "0.0.0.0:0", true })
	if _, err := e.Orgs.ListOrganizations(testenv.Ctx(e.AdminKey), &knkv1.ListOrganizationsRequest{}); err != nil {
		t.Errorf("with AllowPlaintext: %v", err)
	}
	// With TLS, any address is fine.
	f := testenv.NewTLSFiles(t)
	testenv.StartTLS(t, f, func(c *testenv.Config) { c.HTTPAddr = "0.0.0.0:0" })
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
