package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
)

// TLSFiles are a test CA and the certificates it signed, as PEM files in a
// temporary directory: a server certificate for 127.0.0.1, ::1 and localhost,
// and a client certificate for internal services.
type TLSFiles struct {
	Dir                   string
	CA                    string // CA certificate
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	ServerSerial          *big.Int // serial of the server certificate now in ServerCert
	caCert                *x509.Certificate
	caKey                 *ecdsa.PrivateKey
	caPool                *x509.CertPool
	clientPair            tls.Certificate
}

// NewTLSFiles makes a fresh CA, server and client certificate.
func NewTLSFiles(t testing.TB) *TLSFiles {
	t.Helper()
	f := &TLSFiles{Dir: t.TempDir()}
	f.CA = filepath.Join(f.Dir, "ca.pem")
	f.ServerCert, f.ServerKey = filepath.Join(f.Dir, "server.pem"), filepath.Join(f.Dir, "server-key.pem")
	f.ClientCert, f.ClientKey = filepath.Join(f.Dir, "client.pem"), filepath.Join(f.Dir, "client-key.pem")
	f.caKey = newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "KNK test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &f.caKey.PublicKey, f.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if f.caCert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	f.caPool = x509.NewCertPool()
	f.caPool.AddCert(f.caCert)
	writePEM(t, f.CA, "CERTIFICATE", der)
	f.RenewServer(t)
	f.clientPair = f.issue(t, f.ClientCert, f.ClientKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "internal-service"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return f
}

// RenewServer writes a new server certificate and key (a new serial and key) in
// place of the old ones, as an operator renewing the certificate does.
func (f *TLSFiles) RenewServer(t testing.TB) {
	t.Helper()
	pair := f.issue(t, f.ServerCert, f.ServerKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	f.ServerSerial = pair.Leaf.SerialNumber
}

// OtherClient is a client certificate from another CA, which knkd must refuse.
func OtherClient(t testing.TB) tls.Certificate {
	t.Helper()
	other := NewTLSFiles(t)
	return other.clientPair
}

// ClientConfig is a TLS client configuration trusting the test CA, with the
// client certificate when withCert.
func (f *TLSFiles) ClientConfig(withCert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: f.caPool, MinVersion: tls.VersionTLS12}
	if withCert {
		cfg.Certificates = []tls.Certificate{f.clientPair}
	}
	return cfg
}

// GRPCCredentials are gRPC transport credentials for ClientConfig(withCert).
func (f *TLSFiles) GRPCCredentials(withCert bool) credentials.TransportCredentials {
	return credentials.NewTLS(f.ClientConfig(withCert))
}

// HTTPClient is an HTTPS client trusting the test CA.
func (f *TLSFiles) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: f.ClientConfig(false), ForceAttemptHTTP2: true}}
}

func (f *TLSFiles) issue(t testing.TB, certFile, keyFile string, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.caCert, &key.PublicKey, f.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Write to temporary names and rename, so that a reload never sees half a file.
	writePEM(t, certFile+".new", "CERTIFICATE", der)
	writePEM(t, keyFile+".new", "PRIVATE KEY", kder)
	for _, p := range []string{certFile, keyFile} {
		if err := os.Rename(p+".new", p); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
