package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/internal/testenv"
)

const verifyPath = "/v1/certificates/KNK-31-2026-000001:verify"

// send makes one REST request with extra headers and returns status, headers and body.
func send(t *testing.T, e *testenv.Env, method, path string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.BaseURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// burst sends n anonymous verifications and returns the status of each.
func burst(t *testing.T, e *testenv.Env, n int, header func(i int) map[string]string) []int {
	t.Helper()
	var out []int
	for i := range n {
		var h map[string]string
		if header != nil {
			h = header(i)
		}
		code, _, _ := send(t, e, http.MethodGet, verifyPath, h)
		out = append(out, code)
	}
	return out
}

// served counts the answers that were not 429.
func served(statuses []int) int {
	n := 0
	for _, c := range statuses {
		if c != http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

// TestAnonymousBurstIsLimited: 25 anonymous verifications in a burst get 429 after
// the burst of 20, with Retry-After, while a keyed caller from the same address
// is still served; a second later one more token is free.
func TestAnonymousBurstIsLimited(t *testing.T) {
	e := testenv.Start(t)
	got := burst(t, e, 25, nil)
	for i, c := range got {
		want := http.StatusNotFound // no such certificate: answered
		if i >= server.DefaultAnonymousLimit.Burst {
			want = http.StatusTooManyRequests
		}
		if c != want {
			t.Fatalf("anonymous request %d: %d, want %d (all: %v)", i+1, c, want, got)
		}
	}
	code, h, body := send(t, e, http.MethodGet, verifyPath, nil)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Errorf("over the limit: %d, Retry-After %q, want 429 and 1 (60 a minute): %s", code, h.Get("Retry-After"), body)
	}
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(body), &st); st.Code != int(codes.ResourceExhausted) || !strings.Contains(st.Message, "try again") {
		t.Errorf("429 body %s: want code 8 and a message saying when to retry", body)
	}
	// Keyed callers are not held to the anonymous limit.
	for range 5 {
		if code, _, body := send(t, e, http.MethodGet, verifyPath, map[string]string{"Authorization": "Bearer " + e.AdminKey}); code != http.StatusNotFound {
			t.Fatalf("keyed verification while anonymous ones are limited: %d %s", code, body)
		}
	}
	// Every anonymous verification shares the bucket: by code too.
	if code, _, body := send(t, e, http.MethodGet, "/v1/verifications/7QF3-M9XA-2KDP-R4TW-H", nil); code != http.StatusTooManyRequests {
		t.Errorf("verification by code over the limit: %d %s, want 429", code, body)
	}
	// The same limit holds over gRPC from the same address, with a RetryInfo.
	_, err := e.Certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: "certificates/KNK-31-2026-000001"})
	if status.Code(err) != codes.ResourceExhausted || retryDelay(err) != time.Second {
		t.Errorf("anonymous gRPC over the limit: %v (retry %v), want RESOURCE_EXHAUSTED with a 1s RetryInfo", err, retryDelay(err))
	}
	e.Clock.Advance(time.Second)
	if got := burst(t, e, 2, nil); got[0] != http.StatusNotFound || got[1] != http.StatusTooManyRequests {
		t.Errorf("a second later: %v, want one request served, then 429", got)
	}
}

// TestVerifyPagesAreLimited: the public HTML verification pages share the
// anonymous limit and, over it, say so in Indonesian.
func TestVerifyPagesAreLimited(t *testing.T) {
	e := testenv.Start(t)
	for i := range server.DefaultAnonymousLimit.Burst {
		path := "/verify"
		if i%2 == 1 {
			path = fmt.Sprintf("/verify/7QF3-M9XA-2KDP-R4T%d", i)
		}
		if code, _, _ := send(t, e, http.MethodGet, path, nil); code == http.StatusTooManyRequests {
			t.Fatalf("page request %d refused within the burst", i+1)
		}
	}
	code, h, body := send(t, e, http.MethodGet, "/verify/7QF3-M9XA-2KDP-R4TW-H", nil)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("page over the limit: %d, Retry-After %q, Content-Type %q", code, h.Get("Retry-After"), h.Get("Content-Type"))
	}
	if !strings.Contains(body, `<html lang="id">`) || !strings.Contains(body, "Terlalu banyak permintaan") || !strings.Contains(body, "1 detik") {
		t.Errorf("page over the limit says:\n%s", body)
	}
	// The JSON verification shares the bucket.
	if code, _, _ := send(t, e, http.MethodGet, verifyPath, nil); code != http.StatusTooManyRequests {
		t.Errorf("JSON verification after the pages used the burst: %d, want 429", code)
	}
}

func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return -1
}

// TestForwardedForFromAnUntrustedPeerIsIgnored: without --trusted-proxy, a client
// that rotates X-Forwarded-For is still one client.
func TestForwardedForFromAnUntrustedPeerIsIgnored(t *testing.T) {
	e := testenv.Start(t)
	got := burst(t, e, 25, func(i int) map[string]string {
		return map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i+1)}
	})
	if n := served(got); n != server.DefaultAnonymousLimit.Burst {
		t.Errorf("served %d of 25 with rotating X-Forwarded-For, want %d: %v", n, server.DefaultAnonymousLimit.Burst, got)
	}
	if strings.Contains(e.Logs(), "203.0.113.") {
		t.Error("the log names a forged X-Forwarded-For address as the client")
	}
}

// TestForwardedForFromATrustedProxy: behind trusted proxies the client is the
// rightmost address that is not a proxy; what the client wrote left of it is
// ignored.
func TestForwardedForFromATrustedProxy(t *testing.T) {
	proxies, err := server.ParseProxies([]string{"127.0.0.0/8", "10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) { c.TrustedProxies = proxies })
	// Client 198.51.100.7 reached us through 10.1.1.1; it forged 192.0.2.x on the left.
	got := burst(t, e, 25, func(i int) map[string]string {
		return map[string]string{"X-Forwarded-For": fmt.Sprintf("192.0.2.%d, 198.51.100.7, 10.1.1.1", i+1)}
	})
	if n := served(got); n != server.DefaultAnonymousLimit.Burst {
		t.Errorf("one client behind the proxy: served %d of 25, want %d: %v", n, server.DefaultAnonymousLimit.Burst, got)
	}
	// Another client behind the same proxy has its own bucket.
	if code, _, _ := send(t, e, http.MethodGet, verifyPath, map[string]string{"X-Forwarded-For": "198.51.100.8, 10.1.1.1"}); code != http.StatusNotFound {
		t.Errorf("another client behind the proxy: %d, want it served", code)
	}
	// The limited client cannot escape by adding hops: the rightmost untrusted one counts.
	if code, _, _ := send(t, e, http.MethodGet, verifyPath, map[string]string{"X-Forwarded-For": "198.51.100.9, 198.51.100.7"}); code != http.StatusTooManyRequests {
		t.Errorf("the limited client with a forged hop on the left: %d, want 429", code)
	}
	logs := e.Logs()
	if !strings.Contains(logs, `"client":"198.51.100.7"`) || !strings.Contains(logs, `"client":"198.51.100.8"`) || strings.Contains(logs, `"client":"192.0.2.`) {
		t.Errorf("the access log does not name the real clients:\n%s", lastLines(logs, 5))
	}
}

// TestFailedAuthenticationsAreLimited: a flood of wrong keys from one address is
// cut off after 10, over gRPC and REST, while a valid key from the same address
// still works.
func TestFailedAuthenticationsAreLimited(t *testing.T) {
	e := testenv.Start(t)
	bad := "knk_01JXXXXXXXXXXXXXXXXXXXXXXX_not-the-secret"
	for i := range server.DefaultFailedAuthLimit.Burst {
		_, err := e.Orgs.ListOrganizations(testenv.Ctx(bad), &knkv1.ListOrganizationsRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("wrong key %d: %v, want UNAUTHENTICATED", i+1, err)
		}
	}
	_, err := e.Orgs.ListOrganizations(testenv.Ctx(bad), &knkv1.ListOrganizationsRequest{})
	if status.Code(err) != codes.ResourceExhausted || retryDelay(err) <= 0 {
		t.Errorf("wrong key over the limit: %v, want RESOURCE_EXHAUSTED with a RetryInfo", err)
	}
	code, h, body := send(t, e, http.MethodGet, "/v1/cadres", map[string]string{"Authorization": "Bearer " + bad})
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("wrong key over REST over the limit: %d Retry-After %q %s", code, h.Get("Retry-After"), body)
	}
	// A wrong key on a public method counts too, so it is no way around the limit.
	code, _, _ = send(t, e, http.MethodGet, verifyPath, map[string]string{"Authorization": "Bearer " + bad})
	if code != http.StatusTooManyRequests {
		t.Errorf("wrong key on a public method over the limit: %d, want 429", code)
	}
	if _, err := e.Orgs.ListOrganizations(testenv.Ctx(e.AdminKey), &knkv1.ListOrganizationsRequest{}); err != nil {
		t.Errorf("a valid key from the same address: %v", err)
	}
}

// TestSpoofedClientAddressMetadataIsIgnored: the metadata the gateway uses to pass
// the REST client's address on is not believed from anyone else, over gRPC or as
// a REST header.
func TestSpoofedClientAddressMetadataIsIgnored(t *testing.T) {
	e := testenv.Start(t)
	n := 0
	for i := range 25 {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-knk-client-addr", fmt.Sprintf("203.0.113.%d", i+1))
		_, err := e.Certs.VerifyCertificate(ctx, &knkv1.VerifyCertificateRequest{Name: "certificates/KNK-31-2026-000001"})
		if status.Code(err) != codes.ResourceExhausted {
			n++
		}
	}
	if n != server.DefaultAnonymousLimit.Burst {
		t.Errorf("gRPC with a forged client address: %d of 25 served, want %d", n, server.DefaultAnonymousLimit.Burst)
	}
	for _, h := range []string{"X-Knk-Client-Addr", "Grpc-Metadata-X-Knk-Client-Addr"} {
		if code, _, _ := send(t, e, http.MethodGet, verifyPath, map[string]string{h: "203.0.113.200"}); code != http.StatusTooManyRequests {
			t.Errorf("REST with %s forged: %d, want 429 (the same client)", h, code)
		}
	}
	if strings.Contains(e.Logs(), "203.0.113.") {
		t.Error("the log believes a forged client address")
	}
}

func TestMethodNotAllowedNamesTheAllowedMethods(t *testing.T) {
	e := testenv.Start(t)
	tests := []struct {
		method, path string
		allow        []string
	}{
		{http.MethodPut, "/v1/cadres/01JABC", []string{"GET", "PATCH"}},
		{http.MethodDelete, verifyPath, []string{"GET"}},
		{http.MethodPut, "/v1/cadres", []string{"GET", "POST"}},
		{http.MethodPost, "/healthz", []string{"GET"}},
	}
	for _, tt := range tests {
		code, h, body := send(t, e, tt.method, tt.path, map[string]string{"Authorization": "Bearer " + e.AdminKey})
		if code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d %s, want 405", tt.method, tt.path, code, body)
			continue
		}
		for _, m := range tt.allow {
			if !strings.Contains(h.Get("Allow"), m) {
				t.Errorf("%s %s: Allow %q lacks %s", tt.method, tt.path, h.Get("Allow"), m)
			}
		}
		if strings.Contains(h.Get("Allow"), tt.method) {
			t.Errorf("%s %s: Allow %q names the refused method", tt.method, tt.path, h.Get("Allow"))
		}
	}
	if code, _, _ := send(t, e, http.MethodPut, "/v1/payslips/1", nil); code != http.StatusNotFound {
		t.Errorf("PUT on a path with no route: %d, want 404", code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := testenv.Start(t)
	keyed := map[string]string{"Authorization": "Bearer " + e.AdminKey}
	tests := []struct {
		name, method, path string
		header             map[string]string
		noStore            bool
	}{
		{"health", http.MethodGet, "/healthz", nil, false},
		{"unrouted", http.MethodGet, "/nothing-here", nil, false},
		{"keyed list", http.MethodGet, "/v1/cadres", keyed, true},
		{"keyed error", http.MethodGet, "/v1/cadres/01JNOPE", keyed, true},
		{"keyed 405", http.MethodPut, "/v1/cadres", keyed, true},
		{"anonymous verification", http.MethodGet, verifyPath, nil, true},
		{"missing key", http.MethodGet, "/v1/cadres", nil, true},
		{"verification page", http.MethodGet, "/verify/7QF3-M9XA-2KDP-R4TW-H", nil, true},
	}
	for _, tt := range tests {
		_, h, _ := send(t, e, tt.method, tt.path, tt.header)
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", tt.name, h.Get("X-Content-Type-Options"))
		}
		if tt.noStore && h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", tt.name, h.Get("Cache-Control"))
		}
	}
}

func TestReflectionNeedsAKey(t *testing.T) {
	e := testenv.Start(t)
	listServices := func(ctx context.Context, e *testenv.Env) error {
		stream, err := reflectionpb.NewServerReflectionClient(e.Conn).ServerReflectionInfo(ctx)
		if err != nil {
			return err
		}
		// Send may only see that the stream ended (io.EOF); Recv has the status.
		stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
		})
		_, err = stream.Recv()
		return err
	}
	if err := listServices(context.Background(), e); status.Code(err) != codes.Unauthenticated {
		t.Errorf("reflection without a key: %v, want UNAUTHENTICATED", err)
	}
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	if err := listServices(testenv.Ctx(fed), e); err != nil {
		t.Errorf("reflection with a federation's key: %v", err)
	}
	public := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) { c.PublicReflection = true })
	if err := listServices(context.Background(), public); err != nil {
		t.Errorf("reflection without a key under --reflection=public: %v", err)
	}
}

// TestStoreFailureIsInternal: a database error during a conditional update was
// joined with ABORTED and reached the client as a stale etag, with the driver's
// message. Now the client gets INTERNAL with a request id only, and the log has
// the cause and the client address.
func TestStoreFailureIsInternal(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	c, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: newCadre(1)})
	if err != nil {
		t.Fatal(err)
	}
	breakUpdates := map[string][]string{
		"sqlite": {`CREATE TRIGGER boom BEFORE UPDATE ON cadres BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`},
		"postgres": {
			`CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$`,
			`CREATE TRIGGER boom BEFORE UPDATE ON cadres FOR EACH ROW EXECUTE FUNCTION boom()`,
		},
	}
	for _, q := range breakUpdates[e.Engine()] {
		if _, err := e.SQL(t).Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.Cadres.WithdrawCadre(testenv.Ctx(fed), &knkv1.WithdrawCadreRequest{Name: c.Name, Reason: "left the union", Etag: c.Etag})
	st := status.Convert(err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "fire") || !strings.HasPrefix(st.Message(), "internal error (request id ") {
		t.Errorf("withdraw on a broken store: %v, want INTERNAL with a generic message", err)
	}
	var line struct {
		Msg, Method, Client, Code, Cause string
	}
	for _, l := range strings.Split(e.Logs(), "\n") {
		if strings.Contains(l, "WithdrawCadre") {
			json.Unmarshal([]byte(l), &line)
		}
	}
	if line.Code != "Internal" || !strings.Contains(line.Cause, "disk on fire") || line.Client != "127.0.0.1" {
		t.Errorf("log of the failed call: %+v, want code Internal, the cause and client 127.0.0.1", line)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
