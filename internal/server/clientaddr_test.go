package server

import (
	"net/netip"
	"testing"
)

func TestIPv6ClientsShareABucketPer64(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"203.0.113.7", "203.0.113.7", true},
		{"203.0.113.7", "203.0.113.8", false}, // IPv4: one bucket per address
		{"::ffff:203.0.113.7", "203.0.113.7", true},
	}
	for _, tt := range tests {
		ka, kb := bucketKey(netip.MustParseAddr(tt.a).Unmap()), bucketKey(netip.MustParseAddr(tt.b).Unmap())
		if (ka == kb) != tt.same {
			t.Errorf("bucketKey(%s) = %s, bucketKey(%s) = %s; same bucket want %v", tt.a, ka, tt.b, kb, tt.same)
		}
	}
	if k := bucketKey(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")); k != "2001:db8:1:2::/64" {
		t.Errorf("bucketKey of an IPv6 address: %s, want its /64", k)
	}
}

func TestClientBehindProxies(t *testing.T) {
	proxies, err := ParseProxies([]string{"10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer: header ignored", "198.51.100.1", []string{"203.0.113.9"}, "198.51.100.1"},
		{"trusted peer, one hop", "10.0.0.5", []string{"203.0.113.9"}, "203.0.113.9"},
		{"rightmost untrusted wins over forged left", "10.0.0.5", []string{"1.2.3.4, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"several headers, in order", "10.0.0.5", []string{"1.2.3.4", "203.0.113.9", "10.9.9.9"}, "203.0.113.9"},
		{"single-host proxy", "192.0.2.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"trusted peer, no header", "10.0.0.5", nil, "10.0.0.5"},
		{"only proxies in the chain", "10.0.0.5", []string{"10.1.1.1, 10.2.2.2"}, "10.1.1.1"},
		{"garbage from the proxy stops at the proxy", "10.0.0.5", []string{"1.2.3.4, not-an-ip"}, "10.0.0.5"},
		{"address with a port", "10.0.0.5", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"IPv6 client", "2001:db8:ffff::1", []string{"[2001:db8:1::7]:443"}, "2001:db8:1::7"},
	}
	for _, tt := range tests {
		got := proxies.client(netip.MustParseAddr(tt.peer), tt.xff)
		if got.String() != tt.want {
			t.Errorf("%s: client %s, want %s", tt.name, got, tt.want)
		}
	}
	if _, err := ParseProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}
