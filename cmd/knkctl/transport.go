package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/knk-id/knk/internal/secretarg"
)

// secrets refuses an API key given on the command line and reads --key-file.
func (g *Globals) secrets(args []string) error {
	if secretarg.Given(args, "--key") {
		return errors.New("--key on the command line is visible to every user in ps: pass the key in KNK_KEY or --key-file")
	}
	if g.KeyFile != "" {
		key, err := secretarg.ReadFile(g.KeyFile)
		if err != nil {
			return fmt.Errorf("--key-file: %w", err)
		}
		g.Key = key
	}
	return nil
}

// transport is how knkctl reaches knkd: plaintext with --insecure, or to a
// loopback address when no TLS flag is given; otherwise TLS 1.2 or newer,
// checking knkd's certificate against --ca (or the system's roots), with the
// client certificate when --client-cert is given.
func (g *Globals) transport() (credentials.TransportCredentials, error) {
	wantTLS := g.CA != "" || g.ClientCert != "" || g.ClientKey != ""
	if g.Insecure {
		if wantTLS {
			return nil, errors.New("--insecure turns TLS off: it does not go with --ca, --client-cert or --client-key")
		}
		return insecure.NewCredentials(), nil
	}
	if !wantTLS && loopback(g.Addr) {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if g.CA != "" {
		pem, err := os.ReadFile(g.CA)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s holds no PEM certificate", g.CA)
		}
	}
	if (g.ClientCert == "") != (g.ClientKey == "") {
		return nil, errors.New("--client-cert and --client-key go together")
	}
	if g.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(g.ClientCert, g.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}
