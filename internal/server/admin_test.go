package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/internal/testenv"
)

// scrape reads the admin port's /metrics as Prometheus would.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value is the counter, gauge or histogram count of the series of family with
// every label of want; -1 when there is no such series.
func value(families map[string]*dto.MetricFamily, family string, want map[string]string) float64 {
	f := families[family]
	if f == nil {
		return -1
	}
	total, found := 0.0, false
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	if !found {
		return -1
	}
	return total
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestMetricsCountEveryMethodWithItsCode(t *testing.T) {
	t.Parallel()
	e := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) {
		c.AdminAddr, c.Pprof = "127.0.0.1:0", true
	})
	admin := e.Server.AdminAddr()
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unit := e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	for _, c := range e.Trained(t, fed, unit, "31", 2) {
		cert, err := e.Certs.IssueCertificate(testenv.Ctx(unit), &knkv1.IssueCertificateRequest{Cadre: c.Name})
		if err != nil {
			t.Fatal(err)
		}
		if cert.Name == "certificates/KNK-31-2026-000002" {
			if _, err := e.Certs.RevokeCertificate(testenv.Ctx(unit), &knkv1.RevokeCertificateRequest{Name: cert.Name, Reason: "salah data"}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Before any call every method is listed with zero calls.
	before := scrape(t, admin)
	if v := value(before, "grpc_server_started_total", map[string]string{"grpc_service": "knk.v1.StatsService", "grpc_method": "ListProvinceStats"}); v != 0 {
		t.Fatalf("ListProvinceStats started before any call = %v, want 0 (pre-registered)", v)
	}

	for range 3 {
		if _, err := e.Cadres.ListCadres(testenv.Ctx(fed), &knkv1.ListCadresRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.Cadres.GetCadre(testenv.Ctx(fed), &knkv1.GetCadreRequest{Name: "cadres/01JAAAAAAAAAAAAAAAAAAAAAAA"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("GetCadre of nobody: %v, want NotFound", err)
	}
	for range 2 {
		_, err = e.Cadres.ListCadres(context.Background(), &knkv1.ListCadresRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("ListCadres without a key: %v", err)
		}
	}
	_, err = e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{DisplayName: "X", Nik: "123"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateCadre with a bad NIK: %v", err)
	}
	// REST: a listed route, a resource route with a name in it, and paths nobody serves.
	if r := e.REST(t, "GET", "/v1/cadres?page_size=5", fed, nil); r.Status != 200 {
		t.Fatalf("REST list: %d %s", r.Status, r.Raw)
	}
	if r := e.REST(t, "GET", "/v1/cadres/01JBBBBBBBBBBBBBBBBBBBBBBB", fed, nil); r.Status != 404 {
		t.Fatalf("REST get of nobody: %d", r.Status)
	}
	for i := range 20 { // an enumeration of paths must not make a series per path
		e.REST(t, "GET", fmt.Sprintf("/no/such/path/%d", i), "", nil)
	}
	watch, cancel := context.WithCancel(testenv.Ctx(e.AdminKey))
	defer cancel()
	stream, err := e.Events.WatchEvents(watch, &knkv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the watch is being served
		t.Fatal(err)
	}

	m := scrape(t, admin)
	cadreSvc := "knk.v1.CadreService"
	for _, c := range []struct {
		method, code string
		want         float64
	}{
		{"ListCadres", "OK", 4}, // 3 over gRPC, 1 through the gateway
		{"ListCadres", "Unauthenticated", 2},
		{"GetCadre", "NotFound", 2}, // 1 over gRPC, 1 through the gateway
		{"CreateCadre", "InvalidArgument", 1},
	} {
		got := value(m, "grpc_server_handled_total", map[string]string{
			"grpc_service": cadreSvc, "grpc_method": c.method, "grpc_code": c.code, "grpc_type": "unary"})
		if got != c.want {
			t.Errorf("grpc_server_handled_total{%s,%s} = %v, want %v", c.method, c.code, got, c.want)
		}
	}
	if got := value(m, "grpc_server_handling_seconds", map[string]string{"grpc_service": cadreSvc, "grpc_method": "ListCadres"}); got != 6 {
		t.Errorf("grpc_server_handling_seconds count for ListCadres = %v, want 6", got)
	}
	if got := value(m, "grpc_server_handled_total", map[string]string{"grpc_method": "CreateOrganization", "grpc_code": "OK"}); got != 2 {
		t.Errorf("CreateOrganization OK = %v, want 2", got)
	}
	if got := value(m, "grpc_server_started_total", map[string]string{"grpc_method": "WatchEvents", "grpc_type": "server_stream"}); got != 1 {
		t.Errorf("WatchEvents started = %v, want 1", got)
	}
	for _, st := range []string{"STATE_VALID", "STATE_REVOKED"} {
		if got := value(m, "knk_certificates", map[string]string{"province": "31", "state": st}); got != 1 {
			t.Errorf("knk_certificates{province=31,state=%s} = %v, want 1", st, got)
		}
	}
	if got := value(m, "knk_event_watchers", nil); got < 1 {
		t.Errorf("knk_event_watchers = %v with a watch open", got)
	}
	for _, c := range []struct {
		route, code string
		want        float64
	}{
		{"/v1/cadres", "200", 1},
		{"/v1/{name=cadres/*}", "404", 1},
		{"unmatched", "404", 20},
	} {
		if got := value(m, "knk_http_request_duration_seconds", map[string]string{"method": "GET", "route": c.route, "code": c.code}); got != c.want {
			t.Errorf("knk_http_request_duration_seconds{route=%q,code=%s} count = %v, want %v", c.route, c.code, got, c.want)
		}
	}
	if n := len(m["knk_http_request_duration_seconds"].GetMetric()); n > 5 {
		t.Errorf("%d HTTP series after 23 requests: paths leak into labels", n)
	}
	if got := value(m, "knk_store_commit_seconds", map[string]string{"engine": e.Engine()}); got < 1 {
		t.Errorf("knk_store_commit_seconds{engine=%s} count = %v, want the org's and key's writes", e.Engine(), got)
	}
	if got := value(m, "knk_store_write_batch_size", map[string]string{"engine": e.Engine()}); got < 1 {
		t.Errorf("knk_store_write_batch_size count = %v", got)
	}
	if e.Engine() == "sqlite" {
		if got := value(m, "knk_store_fsync_seconds", nil); got < 1 {
			t.Errorf("knk_store_fsync_seconds count = %v", got)
		}
	}
	for _, f := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "knk_rate_limit_rejections_total", "knk_import_rows_total"} {
		if _, ok := m[f]; !ok && !strings.HasPrefix(f, "knk_") {
			t.Errorf("no %s in /metrics", f)
		}
	}

	// Profiles on the admin port; neither metrics nor profiles on the public one.
	if code, body := get(t, "http://"+admin+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("pprof on the admin port: %d", code)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
		if code, body := get(t, e.BaseURL+path); code != 404 || strings.Contains(body, "grpc_server") || strings.Contains(body, "goroutine") {
			t.Errorf("public REST port answers %s: %d", path, code)
		}
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	e := testenv.StartWith(t, dbtest.DSN(t, "sqlite"), func(c *testenv.Config) { c.AdminAddr = "127.0.0.1:0" })
	if code, _ := get(t, "http://"+e.Server.AdminAddr()+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof without --pprof: %d, want 404", code)
	}
	if code, _ := get(t, "http://"+e.Server.AdminAddr()+"/metrics"); code != 200 {
		t.Errorf("metrics: %d", code)
	}
}

func TestAdminPortRefusedOffLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0"} {
		_, err := server.New(context.Background(), server.Config{
			DB: dbtest.DSN(t, "sqlite"), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: addr,
			Logger: slog.New(slog.DiscardHandler), ExpiryInterval: -1, ShutdownTimeout: time.Second,
		})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("--admin-addr %s: %v, want a refusal naming loopback", addr, err)
		}
	}
}

func TestAdminPortOffLoopbackNeedsClientCertificates(t *testing.T) {
	t.Parallel()
	f := testenv.NewTLSFiles(t)
	_, err := server.New(context.Background(), server.Config{
		DB: dbtest.DSN(t, "sqlite"), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "0.0.0.0:0",
		Logger: slog.New(slog.DiscardHandler), ExpiryInterval: -1, ShutdownTimeout: time.Second,
		Edge: server.Edge{TLSCert: f.ServerCert, TLSKey: f.ServerKey},
	})
	if err == nil || !strings.Contains(err.Error(), "client certificates") {
		t.Fatalf("off-loopback admin port with TLS but no --client-ca: %v, want a refusal", err)
	}

	e := testenv.StartTLS(t, f, func(c *testenv.Config) { c.ClientCA, c.AdminAddr = f.CA, "0.0.0.0:0" })
	url := "https://" + e.Server.AdminAddr() + "/metrics"
	with := &http.Client{Transport: &http.Transport{TLSClientConfig: f.ClientConfig(true)}}
	resp, err := with.Get(url)
	if err != nil {
		t.Fatalf("scrape with a client certificate: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "grpc_server_handled_total") {
		t.Fatalf("scrape with a client certificate: %d", resp.StatusCode)
	}
	without := &http.Client{Transport: &http.Transport{TLSClientConfig: f.ClientConfig(false)}}
	if resp, err := without.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("scrape without a client certificate answered %s", resp.Status)
	}
	if resp, err := http.Get("http://" + e.Server.AdminAddr() + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "grpc_server") {
			t.Errorf("plain HTTP scrape of the TLS admin port answered metrics")
		}
	}
}
