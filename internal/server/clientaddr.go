package server

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// clientAddrKey is the metadata key that carries the REST client's address from
// the gateway to the gRPC server. It is believed only on the gateway's in-process
// connection (gatewayAddr), so an external gRPC caller that sends it is ignored.
const clientAddrKey = "x-knk-client-addr"

// gatewayAddr is the peer address of the gateway's in-process connection to the
// gRPC server. No connection from outside the process can have it.
type gatewayAddr struct{}

func (gatewayAddr) Network() string { return "knk-gateway" }
func (gatewayAddr) String() string  { return "gateway" }

// Proxies are the CIDRs of reverse proxies whose X-Forwarded-For is believed.
type Proxies []netip.Prefix

// ParseProxies parses CIDRs ("10.0.0.0/8", "2001:db8::/32"); a bare address is a
// single host.
func ParseProxies(cidrs []string) (Proxies, error) {
	var out Proxies
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (p Proxies) trusted(a netip.Addr) bool {
	for _, pre := range p {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// client is the address of the caller behind peer: the peer itself, unless the
// peer is a trusted proxy; then the rightmost X-Forwarded-For address that is not
// a trusted proxy (every hop right of it was added by a proxy we trust; anything
// left of it was written by the client and proves nothing). xff holds the values
// of every X-Forwarded-For header, in order.
func (p Proxies) client(peerAddr netip.Addr, xff []string) netip.Addr {
	client := peerAddr
	if !client.IsValid() || !p.trusted(client) {
		return client
	}
	var hops []string
	for _, v := range xff {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return client // a trusted proxy passed something that is no address: stop at that proxy
		}
		client = a
		if !p.trusted(a) {
			return a
		}
	}
	return client
}

// parseHop reads one X-Forwarded-For element: an address, possibly with a port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// addrOf reads the IP address of a net.Addr or of a "host:port" string.
func addrOf(a any) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case net.Addr:
		return addrOf(a.String())
	case string:
		if ap, err := netip.ParseAddrPort(a); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// bucketKey is the rate-limit key of a client: the address for IPv4, its /64 for
// IPv6 (one subscriber commonly holds a whole /64, so per-address buckets would
// give them 2^64 of them).
func bucketKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

type clientCtxKey struct{}

// withHTTPClient resolves the client address of every REST request once, for the
// page limiter, the access log and the gateway (which passes it on to gRPC).
func (p Proxies) withHTTPClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := p.client(addrOf(r.RemoteAddr), r.Header.Values("X-Forwarded-For"))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientCtxKey{}, client)))
	})
}

// httpClient is the client address withHTTPClient resolved for r.
func httpClient(r *http.Request) netip.Addr {
	a, _ := r.Context().Value(clientCtxKey{}).(netip.Addr)
	return a
}

// gatewayMetadata is the metadata the gateway adds to each call it forwards: the
// REST client's address.
func gatewayMetadata(_ context.Context, r *http.Request) metadata.MD {
	if a := httpClient(r); a.IsValid() {
		return metadata.Pairs(clientAddrKey, a.String())
	}
	return nil
}

// grpcClient is the client address of a gRPC call. internal is true for a call the
// server makes to itself with no REST client behind it (not rate limited).
func (p Proxies) grpcClient(ctx context.Context, md metadata.MD) (client netip.Addr, internal bool) {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return netip.Addr{}, false
	}
	if _, ok := pr.Addr.(gatewayAddr); ok {
		v := md.Get(clientAddrKey)
		if len(v) != 1 {
			return netip.Addr{}, true
		}
		a, err := netip.ParseAddr(v[0])
		if err != nil {
			return netip.Addr{}, true
		}
		return a, false
	}
	return p.client(addrOf(pr.Addr), md.Get("x-forwarded-for")), false
}
