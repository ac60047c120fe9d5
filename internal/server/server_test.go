package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/emptypb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/cadre"
)

// nik returns the i-th distinct valid NIK of a man born 15 Aug 1990 in Jakarta.
func nik(i int) string {
	return fmt.Sprintf("3171%02d150890%04d", 1+(i/9999)%99, 1+i%9999)
}

func newCadre(i int) *knkv1.Cadre {
	return &knkv1.Cadre{DisplayName: fmt.Sprintf("Kader %d", i), Nik: nik(i), ProvinceCode: "31"}
}

// dial opens a client connection of the test's own, so that stopping the Env
// (which closes Env.Conn) does not cut it.
func dial(t *testing.T, e *testenv.Env) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(e.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestHealthIsServing(t *testing.T) {
	e := testenv.Start(t)
	resp, err := healthpb.NewHealthClient(e.Conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check without a key: %v (%v), want SERVING", resp, err)
	}
	r := e.REST(t, http.MethodGet, "/healthz", "", nil)
	if r.Status != http.StatusOK || strings.TrimSpace(string(r.Raw)) != "ok" {
		t.Errorf("GET /healthz: %d %q", r.Status, r.Raw)
	}
	// Load balancers and other services ask per service (grpc_health_probe -service=…).
	for _, svc := range []string{"knk.v1.OrganizationService", "knk.v1.CadreService", "knk.v1.TrainingService",
		"knk.v1.CertificateService", "knk.v1.ForumService", "knk.v1.EventService", "knk.v1.StatsService"} {
		resp, err := healthpb.NewHealthClient(e.Conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health check of %s: %v (%v), want SERVING", svc, resp, err)
		}
	}
	if _, err := healthpb.NewHealthClient(e.Conn).Check(context.Background(),
		&healthpb.HealthCheckRequest{Service: "knk.v1.NoSuchService"}); status.Code(err) != codes.NotFound {
		t.Errorf("health check of an unknown service: %v, want NOT_FOUND", err)
	}
}

func TestReflectionListsTheServices(t *testing.T) {
	e := testenv.Start(t)
	stream, err := reflectionpb.NewServerReflectionClient(e.Conn).ServerReflectionInfo(testenv.Ctx(e.AdminKey))
	if err != nil {
		t.Fatal(err)
	}
	err = stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection with a key: %v", err)
	}
	var got []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		got = append(got, s.Name)
	}
	for _, want := range []string{
		"knk.v1.OrganizationService", "knk.v1.CadreService", "knk.v1.TrainingService",
		"knk.v1.CertificateService", "knk.v1.ForumService", "knk.v1.EventService",
		"knk.v1.StatsService", "grpc.health.v1.Health",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("reflection lists %v, missing %s", got, want)
		}
	}
	// The descriptors are there too, so grpcurl can build requests.
	err = stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "knk.v1.CadreService"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("descriptor of knk.v1.CadreService: %v (%v)", resp, err)
	}
}

// knkMethods lists every method of every knk.v1 service.
func knkMethods(t *testing.T) []protoreflect.MethodDescriptor {
	t.Helper()
	var out []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("knk.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			ms := fd.Services().Get(i).Methods()
			for j := range ms.Len() {
				out = append(out, ms.Get(j))
			}
		}
		return true
	})
	if len(out) < 30 {
		t.Fatalf("found %d knk.v1 methods", len(out))
	}
	return out
}

// invoke calls m with an empty request (and, for a client stream, no message)
// and returns the status of the first answer.
func invoke(ctx context.Context, cc *grpc.ClientConn, m protoreflect.MethodDescriptor) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // a watch may wait for events: that is an answer too
	defer cancel()
	full := "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
	req, resp := dynamicpb.NewMessage(m.Input()), dynamicpb.NewMessage(m.Output())
	if !m.IsStreamingClient() && !m.IsStreamingServer() {
		return cc.Invoke(ctx, full, req, resp)
	}
	stream, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: m.IsStreamingServer(), ClientStreams: m.IsStreamingClient()}, full)
	if err != nil {
		return err
	}
	if !m.IsStreamingClient() {
		if err := stream.SendMsg(req); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	return stream.RecvMsg(resp)
}

// TestEveryMethodIsWiredAndGuarded calls every knk.v1 method: with an admin key
// each is implemented, allowed and survives an empty request; without a key
// only the public ones answer.
func TestEveryMethodIsWiredAndGuarded(t *testing.T) {
	e := testenv.Start(t)
	public := map[string]bool{"VerifyCertificate": true, "VerifyCertificateByCode": true, "ListSigningKeys": true}
	broken := []codes.Code{codes.Unimplemented, codes.PermissionDenied, codes.Unauthenticated, codes.Internal, codes.Unknown}
	for _, m := range knkMethods(t) {
		t.Run(string(m.FullName()), func(t *testing.T) {
			if err := invoke(testenv.Ctx(e.AdminKey), e.Conn, m); slices.Contains(broken, status.Code(err)) {
				t.Errorf("admin, empty request: %v", err)
			}
			err := invoke(context.Background(), e.Conn, m)
			if got := status.Code(err) == codes.Unauthenticated; got == public[string(m.Name())] {
				t.Errorf("no key: %v (public method: %v)", err, public[string(m.Name())])
			}
		})
	}
}

func TestUnknownMethodsAnswerUnimplemented(t *testing.T) {
	e := testenv.Start(t)
	for _, method := range []string{"/knk.v1.CadreService/DeleteAllCadres", "/knk.v1.PayrollService/ListPayslips"} {
		err := e.Conn.Invoke(testenv.Ctx(e.AdminKey), method, &emptypb.Empty{}, &emptypb.Empty{})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("%s: %v, want UNIMPLEMENTED", method, err)
		}
	}
	r := e.REST(t, http.MethodGet, "/v1/payslips", e.AdminKey, nil)
	if r.Status != http.StatusNotFound {
		t.Errorf("GET /v1/payslips: %d %s, want 404", r.Status, r.Raw)
	}
}

func TestPublicMethodsNeedNoKey(t *testing.T) {
	e := testenv.Start(t)
	certs := knkv1.NewCertificateServiceClient(e.Conn)
	_, err := certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: "certificates/KNK-61-2026-000001"})
	if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
		t.Errorf("VerifyCertificate without a key: %v", err)
	}
	_, err = certs.ListSigningKeys(context.Background(), &knkv1.ListSigningKeysRequest{})
	if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
		t.Errorf("ListSigningKeys without a key: %v", err)
	}
	r := e.REST(t, http.MethodGet, "/v1/certificates/KNK-61-2026-000001:verify", "", nil)
	if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden {
		t.Errorf("GET …:verify without a key: %d %s", r.Status, r.Raw)
	}
	// A method next to it still needs one.
	_, err = certs.GetCertificate(context.Background(), &knkv1.GetCertificateRequest{Name: "certificates/KNK-61-2026-000001"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetCertificate without a key: %v, want UNAUTHENTICATED", err)
	}
}

func TestRequestIDOverGRPC(t *testing.T) {
	e := testenv.Start(t)
	list := func(ctx context.Context) (string, error) {
		var header metadata.MD
		_, err := e.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{}, grpc.Header(&header))
		return strings.Join(header.Get("x-request-id"), ","), err
	}
	admin := testenv.Ctx(e.AdminKey)
	echoed := []struct {
		name, id string
		ctx      context.Context
		code     codes.Code
	}{
		{"client id echoed", "req-0001", admin, codes.OK},
		{"client id on an error", "req-0002", context.Background(), codes.Unauthenticated},
		{"client id of 64 characters", strings.Repeat("x", 64), admin, codes.OK},
	}
	for _, tt := range echoed {
		id, err := list(metadata.AppendToOutgoingContext(tt.ctx, "x-request-id", tt.id))
		if id != tt.id || status.Code(err) != tt.code {
			t.Errorf("%s: x-request-id %q (%v), want %q (%v)", tt.name, id, err, tt.id, tt.code)
		}
	}
	fresh := []struct {
		name string
		ctx  context.Context
	}{
		{"no client id", admin},
		{"no client id again", admin},
		{"no client id, error", context.Background()},
		{"client id too long", metadata.AppendToOutgoingContext(admin, "x-request-id", strings.Repeat("x", 65))},
	}
	seen := map[string]bool{}
	for _, tt := range fresh {
		id, _ := list(tt.ctx)
		if len(id) != 26 || seen[id] {
			t.Errorf("%s: x-request-id %q, want a fresh ULID", tt.name, id)
		}
		seen[id] = true
	}
}

func TestRequestIDOverREST(t *testing.T) {
	e := testenv.Start(t)
	get := func(key, reqID string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodGet, e.BaseURL+"/v1/cadres", nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if reqID != "" {
			req.Header.Set("X-Request-Id", reqID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, resp.Header.Get("Grpc-Metadata-X-Request-Id")
	}
	tests := []struct {
		name, key, reqID string
		status           int
	}{
		{"client id echoed", e.AdminKey, "rest-0001", http.StatusOK},
		{"client id on an error", "", "rest-0002", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		resp, id := get(tt.key, tt.reqID)
		if resp.StatusCode != tt.status || id != tt.reqID {
			t.Errorf("%s: %d with Grpc-Metadata-X-Request-Id %q, want %d with %q", tt.name, resp.StatusCode, id, tt.status, tt.reqID)
		}
	}
	_, a := get(e.AdminKey, "")
	_, b := get(e.AdminKey, "")
	if len(a) != 26 || len(b) != 26 || a == b {
		t.Errorf("server-made request ids %q and %q, want two distinct ULIDs", a, b)
	}
}

// logLine is one JSON line of knkd's log.
type logLine struct {
	Msg       string `json:"msg"`
	Level     string `json:"level"`
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	Org       string `json:"org"`
	Code      string `json:"code"`
	Cause     string `json:"cause"`
}

// logLines returns the lines of the log that carry requestID.
func logLines(t *testing.T, e *testenv.Env, requestID string) []logLine {
	t.Helper()
	var out []logLine
	for _, raw := range strings.Split(strings.TrimSpace(e.Logs()), "\n") {
		var l logLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("log line is not JSON: %q", raw)
		}
		if l.RequestID == requestID {
			out = append(out, l)
		}
	}
	return out
}

func TestOneLogLinePerCallWithoutRequestData(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	withID := func(key, id string) context.Context {
		return metadata.AppendToOutgoingContext(testenv.Ctx(key), "x-request-id", id)
	}
	secret := &knkv1.Cadre{
		DisplayName: "Siti Rahayu Wulandari", Nik: "3171055508900004", ProvinceCode: "31",
		Phone: "081298765432", Email: "siti.rahayu@contoh.co.id", BpjsKpj: "98765432109",
	}
	e.Cadres.CreateCadre(withID(fed, "log-create"), &knkv1.CreateCadreRequest{Cadre: secret})
	e.Cadres.LookupCadre(withID(fed, "log-lookup"), &knkv1.LookupCadreRequest{Nik: secret.Nik})
	e.Cadres.CreateCadre(withID(fed, "log-invalid"), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{DisplayName: secret.DisplayName, Nik: "3171055508"}})
	e.Cadres.LookupCadre(withID("", "log-nokey"), &knkv1.LookupCadreRequest{Nik: secret.Nik})
	stream, err := e.Cadres.ImportCadres(withID(fed, "log-import"))
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&knkv1.ImportCadresRequest{Cadre: newCadre(1)})
	if _, err := cadre.CloseImport(stream); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+"/v1/cadres:lookup", strings.NewReader(`{"nik": "`+secret.Nik+`"}`))
	req.Header.Set("Authorization", "Bearer "+fed)
	req.Header.Set("X-Request-Id", "log-rest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	tests := []struct {
		requestID, method, org, code string
	}{
		{"log-create", "/knk.v1.CadreService/CreateCadre", "organizations/ksbsi", "OK"},
		{"log-lookup", "/knk.v1.CadreService/LookupCadre", "organizations/ksbsi", "OK"},
		{"log-invalid", "/knk.v1.CadreService/CreateCadre", "organizations/ksbsi", "InvalidArgument"},
		{"log-nokey", "/knk.v1.CadreService/LookupCadre", "", "Unauthenticated"},
		{"log-import", "/knk.v1.CadreService/ImportCadres", "organizations/ksbsi", "OK"},
		{"log-rest", "/knk.v1.CadreService/LookupCadre", "organizations/ksbsi", "OK"}, // the gateway passes the interceptors once
	}
	for _, tt := range tests {
		var got []string
		for _, l := range logLines(t, e, tt.requestID) {
			got = append(got, fmt.Sprintf("%s %s %q %s", l.Msg, l.Method, l.Org, l.Code))
		}
		want := fmt.Sprintf("call %s %q %s", tt.method, tt.org, tt.code)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: log lines %q, want one: %s", tt.requestID, got, want)
		}
	}
	logs := e.Logs()
	for _, v := range []string{secret.DisplayName, secret.Nik, secret.Nik[6:12], "81298765432", secret.Email, secret.BpjsKpj, nik(1), fed} {
		if strings.Contains(logs, v) {
			t.Errorf("the log holds request data %q:\n%s", v, logs)
		}
	}
}

// missingTable is how each engine's driver reports a query on a table that is gone.
var missingTable = map[string]string{
	"sqlite":   "no such table",
	"postgres": `relation "cadres" does not exist`,
}

// An unexpected failure reaches the client as INTERNAL "internal error" with the
// request id; the cause is logged, not sent.
func TestUnexpectedErrorsAreInternal(t *testing.T) {
	e := testenv.Start(t)
	cause := missingTable[e.Engine()]
	if _, err := e.SQL(t).Exec(`ALTER TABLE cadres RENAME TO cadres_gone`); err != nil {
		t.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(testenv.Ctx(e.AdminKey), "x-request-id", "broken-1")
	_, err := e.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{})
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.Internal || !strings.Contains(msg, "internal error") || !strings.Contains(msg, "broken-1") ||
		strings.Contains(msg, "cadres") || strings.Contains(msg, cause) {
		t.Errorf("a broken store: %v, want INTERNAL \"internal error\" naming the request id and nothing else", err)
	}
	lines := logLines(t, e, "broken-1")
	if len(lines) != 1 || lines[0].Level != "ERROR" || lines[0].Code != "Internal" || !strings.Contains(lines[0].Cause, cause) {
		t.Errorf("log of the failed call: %+v, want one ERROR line with the cause %q", lines, cause)
	}
	r := e.REST(t, http.MethodGet, "/v1/cadres", e.AdminKey, nil)
	if r.Status != http.StatusInternalServerError || strings.Contains(string(r.Raw), cause) {
		t.Errorf("REST on a broken store: %d %s", r.Status, r.Raw)
	}
}

func TestGracefulShutdownFinishesAnImport(t *testing.T) {
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	cc := dial(t, e)
	stream, err := knkv1.NewCadreServiceClient(cc).ImportCadres(testenv.Ctx(fed))
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n / 2 {
		if err := stream.Send(&knkv1.ImportCadresRequest{Cadre: newCadre(i)}); err != nil {
			t.Fatal(err)
		}
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		e.Stop(t)
	}()
	// Wait until knkd no longer accepts connections: shutdown has begun.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", e.Server.GRPCAddr(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("knkd still accepts connections 10s after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-stopped:
		t.Fatal("knkd stopped before the in-flight import finished")
	default:
	}
	for i := n / 2; i < n; i++ {
		if err := stream.Send(&knkv1.ImportCadresRequest{Cadre: newCadre(i)}); err != nil {
			t.Fatalf("send row %d during shutdown: %v", i+1, err)
		}
	}
	resp, err := cadre.CloseImport(stream)
	if err != nil || resp.Created != n || resp.Rejected != 0 {
		t.Fatalf("import during shutdown: %v (%v), want %d created", resp, err, n)
	}
	<-stopped

	again := testenv.StartAt(t, e.DBPath)
	count, token := 0, ""
	for {
		page, err := again.Cadres.ListCadres(testenv.Ctx(again.AdminKey), &knkv1.ListCadresRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Cadres {
			if c.Federation != "organizations/ksbsi" {
				t.Errorf("%s has federation %s", c.Name, c.Federation)
			}
		}
		count += len(page.Cadres)
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if count != n {
		t.Errorf("%d cadres after restart, want %d", count, n)
	}
	// The federation's key survived the restart too.
	if _, err := again.Cadres.ListCadres(testenv.Ctx(fed), &knkv1.ListCadresRequest{}); err != nil {
		t.Errorf("the federation's key after restart: %v", err)
	}
}
