package server

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DefaultPublicURL is --public-url when none is given: right for a knkd that
// only this machine reaches, wrong for one that others reach.
const DefaultPublicURL = "http://localhost:8080"

// parsePublicURL checks the base of verification links: an absolute http or
// https URL with a host, optionally a path prefix (a reverse proxy's), no query,
// fragment or user name. It returns it without a trailing slash.
func parsePublicURL(raw string) (string, error) {
	if raw == "" {
		return DefaultPublicURL, nil
	}
	u, err := url.Parse(raw)
	bad := func(why string) error {
		return fmt.Errorf("--public-url %q: %s; give the address people open to check certificates, e.g. https://sertifikat.example.go.id", raw, why)
	}
	switch {
	case err != nil:
		return "", bad("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", bad("must start with https:// or http://")
	case u.Host == "" || u.Hostname() == "":
		return "", bad("has no host name")
	case u.User != nil:
		return "", bad("must not hold a user name or password")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", bad("must not have a query (?…) or fragment (#…)")
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// issueRefusal says why certificates must not be issued, or "" if they may be:
// a certificate carries {public-url}/verify/{code} in its QR code for good, so a
// knkd that others can reach (a listener off loopback) must not print the
// default localhost address into it.
func issueRefusal(publicURL string, listeners ...net.Addr) string {
	if publicURL != DefaultPublicURL {
		return ""
	}
	for _, a := range listeners {
		if tcp, ok := a.(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			return fmt.Sprintf("knkd listens on %s, beyond this machine, but --public-url (KNK_PUBLIC_URL) is still the default %s: "+
				"every certificate issued now would carry a QR code and link to localhost that no one else can open, and a printed "+
				"link cannot be changed later. Restart knkd with --public-url set to the address people use to reach it "+
				"(e.g. https://sertifikat.example.go.id)", a, DefaultPublicURL)
		}
	}
	return ""
}
