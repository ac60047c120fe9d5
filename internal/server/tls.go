package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// certReloader serves the certificate of a certificate and key file pair and
// loads them again on SIGHUP or when either file changes: handshakes from then on
// get the new certificate; connections already open keep theirs.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]

	mu         sync.Mutex
	stamp      string // size and modification time of both files when last loaded
	failedOnce string // stamp of the last failed load, logged once
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload loads the files again. On failure (a half-written pair, a key that does
// not match) the certificate in use stays.
func (r *certReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(r.fileStamp())
}

func (r *certReloader) reloadLocked(stamp string) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("TLS certificate %s: %w", r.certFile, err)
		}
	}
	r.cert.Store(&cert)
	r.stamp = stamp
	return nil
}

func (r *certReloader) fileStamp() string {
	var stamp string
	for _, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			stamp += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return stamp
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// sighup starts catching SIGHUP (whose default action would end knkd).
func sighup() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// watch reloads on a signal from hup and, checking every interval, when a file
// changed, until ctx is done.
func (r *certReloader) watch(ctx context.Context, hup chan os.Signal, interval time.Duration) {
	defer signal.Stop(hup)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := r.Reload(); err != nil {
				r.log.Error("SIGHUP: TLS certificate not reloaded; the previous one stays in use", "err", err)
			} else {
				r.logLoaded("SIGHUP")
			}
		case <-tick.C:
			r.reloadIfChanged()
		}
	}
}

// reloadIfChanged reloads when either file changed since the last load, and
// reports whether it did.
func (r *certReloader) reloadIfChanged() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp := r.fileStamp()
	if stamp == r.stamp {
		return false
	}
	if err := r.reloadLocked(stamp); err != nil {
		if stamp != r.failedOnce { // a pair being replaced may fail once; say it once per change
			r.failedOnce = stamp
			r.log.Warn("TLS files changed but do not load yet; the previous certificate stays in use", "err", err)
		}
		return false
	}
	r.log.Info("TLS certificate reloaded", "reason", "files changed", "not_after", r.cert.Load().Leaf.NotAfter)
	return true
}

func (r *certReloader) logLoaded(reason string) {
	r.log.Info("TLS certificate reloaded", "reason", reason, "not_after", r.cert.Load().Leaf.NotAfter)
}

// tlsSetup is the TLS of both listeners, or nil for plaintext.
type tlsSetup struct {
	certs *certReloader
	grpc  *tls.Config // h2 only; client certificates required when --client-ca is set
	http  *tls.Config // h2 and HTTP/1.1
}

// newTLS builds the TLS configuration of cfg, nil when cfg has no certificate.
func newTLS(cfg Config) (*tlsSetup, error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" {
		if cfg.ClientCA != "" {
			return nil, errors.New("--client-ca needs TLS: give --tls-cert and --tls-key too")
		}
		return nil, nil
	}
	if cfg.TLSCert == "" || cfg.TLSKey == "" {
		return nil, errors.New("TLS needs both --tls-cert and --tls-key")
	}
	certs, err := newCertReloader(cfg.TLSCert, cfg.TLSKey, cfg.Logger)
	if err != nil {
		return nil, err
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.getCertificate}
	t := &tlsSetup{certs: certs, grpc: base.Clone(), http: base.Clone()}
	t.grpc.NextProtos = []string{"h2"}
	t.http.NextProtos = []string{"h2", "http/1.1"}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("--client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca %s holds no PEM certificate", cfg.ClientCA)
		}
		t.grpc.ClientCAs, t.grpc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return t, nil
}

// checkPlaintext refuses, without TLS, a listener that is not on loopback, unless
// plaintext is explicitly allowed (behind a proxy that terminates TLS).
func checkPlaintext(t *tlsSetup, allow bool, lis ...net.Listener) error {
	if t != nil || allow {
		return nil
	}
	for _, l := range lis {
		if a := addrOf(l.Addr()); !a.IsLoopback() {
			return fmt.Errorf("refusing to listen on %s without TLS, where keys and NIKs would travel in clear text: "+
				"give --tls-cert and --tls-key, listen on 127.0.0.1, or pass --allow-plaintext behind a proxy that terminates TLS", l.Addr())
		}
	}
	return nil
}

// serveHTTP serves the REST port, over TLS when it is configured. The HTTP
// server's own complaints (failed TLS handshakes, broken connections) go to the
// JSON log too.
func (s *Server) serveHTTP() error {
	if s.http.ErrorLog == nil {
		s.http.ErrorLog = slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelInfo)
	}
	if s.tls == nil {
		return s.http.Serve(s.httpLis)
	}
	s.http.TLSConfig = s.tls.http
	return s.http.ServeTLS(s.httpLis, "", "")
}

// ReloadTLS loads the TLS certificate and key files again, as SIGHUP does.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return errors.New("knkd serves no TLS")
	}
	return s.tls.certs.Reload()
}

// Encrypted reports whether both ports serve TLS.
func (s *Server) Encrypted() bool { return s.tls != nil }

// servingAttrs are the attributes of the first log line: where knkd listens and
// whether it encrypts.
func (s *Server) servingAttrs() []any {
	attrs := []any{"grpc_addr", s.grpcLis.Addr().String(), "http_addr", s.httpLis.Addr().String(),
		"tls", s.tls != nil, "store", s.db.Engine()}
	if s.tls != nil {
		attrs = append(attrs, "client_certificates", s.tls.grpc.ClientAuth == tls.RequireAndVerifyClientCert,
			"certificate_not_after", s.tls.certs.cert.Load().Leaf.NotAfter)
	}
	return attrs
}
