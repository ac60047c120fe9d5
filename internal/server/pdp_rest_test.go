package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/knk-id/knk/internal/testenv"
)

// Calling any knk.v1 method with a concrete request over gRPC or over REST (the
// REST call is built from the method's google.api.http rule), for tests that run
// one table over both transports.

func newOutput(t *testing.T, m protoreflect.MethodDescriptor) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
	if err != nil {
		t.Fatal(err)
	}
	return mt.New().Interface()
}

func fullName(m protoreflect.MethodDescriptor) string {
	return "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
}

// callGRPC calls m with req (for a client stream: one message; for a server
// stream: the first answer) and returns the answer and its status.
func callGRPC(t *testing.T, cc *grpc.ClientConn, m protoreflect.MethodDescriptor, key string, req proto.Message) (proto.Message, codes.Code) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testenv.Ctx(key), 10*time.Second)
	defer cancel()
	if key == "" {
		ctx = context.Background()
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	resp := newOutput(t, m)
	if !m.IsStreamingClient() && !m.IsStreamingServer() {
		err := cc.Invoke(ctx, fullName(m), req, resp)
		return resp, status.Code(err)
	}
	stream, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: m.IsStreamingServer(), ClientStreams: m.IsStreamingClient()}, fullName(m))
	if err == nil {
		err = stream.SendMsg(req)
	}
	if err == nil {
		err = stream.CloseSend()
	}
	if err == nil || errors.Is(err, io.EOF) { // io.EOF: the server ended the call; RecvMsg says how
		err = stream.RecvMsg(resp)
	}
	return resp, status.Code(err)
}

var pathParam = regexp.MustCompile(`\{([^}=]+)(=[^}]*)?\}`)

// fieldValue reads a (dotted) field path of m as a string.
func fieldValue(m protoreflect.Message, path string) string {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		m = m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(p))).Message()
	}
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(parts[len(parts)-1]))).String()
}

var restJSON = protojson.MarshalOptions{UseProtoNames: true}

// callREST calls m over the gateway as its HTTP rule says: path parameters from
// req, the body field (or the whole request) as JSON, other set scalar fields
// of a body-less call as query parameters. A client stream sends req as one
// NDJSON line; a server stream returns its first line.
func callREST(t *testing.T, e *testenv.Env, m protoreflect.MethodDescriptor, key string, req proto.Message) (proto.Message, codes.Code) {
	t.Helper()
	rule := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
	var verb, pattern string
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		verb, pattern = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		verb, pattern = http.MethodPost, p.Post
	case *annotations.HttpRule_Patch:
		verb, pattern = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		verb, pattern = http.MethodDelete, p.Delete
	default:
		t.Fatalf("%s: no HTTP rule", m.FullName())
	}
	r := req.ProtoReflect()
	inPath := map[string]bool{}
	path := pathParam.ReplaceAllStringFunc(pattern, func(s string) string {
		f := pathParam.FindStringSubmatch(s)[1]
		inPath[f] = true
		v := fieldValue(r, f)
		if strings.Contains(s, "=") {
			return v // a resource name: its slashes are path segments
		}
		return url.PathEscape(v)
	})
	var body io.Reader
	if rule.GetBody() != "*" {
		q := url.Values{}
		r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == "google.protobuf.FieldMask" {
				var paths []string
				for i := range v.Message().Get(fd.Message().Fields().ByName("paths")).List().Len() {
					paths = append(paths, v.Message().Get(fd.Message().Fields().ByName("paths")).List().Get(i).String())
				}
				q.Set(string(fd.Name()), strings.Join(paths, ","))
				return true
			}
			if inPath[string(fd.Name())] || string(fd.Name()) == rule.GetBody() || fd.IsList() || fd.IsMap() ||
				fd.Kind() == protoreflect.MessageKind {
				return true
			}
			if fd.Kind() == protoreflect.EnumKind {
				q.Set(string(fd.Name()), string(fd.Enum().Values().ByNumber(v.Enum()).Name()))
			} else {
				q.Set(string(fd.Name()), v.String())
			}
			return true
		})
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
	}
	switch rule.GetBody() {
	case "":
	case "*":
		b, err := restJSON.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(append(b, '\n'))
	default:
		fd := r.Descriptor().Fields().ByName(protoreflect.Name(rule.GetBody()))
		b, err := restJSON.Marshal(r.Get(fd).Message().Interface())
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, verb, e.BaseURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		hr.Header.Set("Authorization", "Bearer "+key)
	}
	hr.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", verb, path, err)
	}
	defer res.Body.Close()
	var raw []byte
	// A server stream comes framed by the gateway ({"result": …} lines); an
	// import's answer (bidirectional) is NDJSON of bare messages, one here.
	if m.IsStreamingServer() && !m.IsStreamingClient() {
		raw, _ = bufio.NewReader(res.Body).ReadBytes('\n')
		var line struct {
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &line); err != nil {
			t.Fatalf("%s %s: %d %s", verb, path, res.StatusCode, raw)
		}
		if line.Error != nil {
			return nil, codes.Code(line.Error.Code)
		}
		raw = line.Result
	} else if raw, err = io.ReadAll(res.Body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		var st struct {
			Code int `json:"code"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatalf("%s %s: %d %s", verb, path, res.StatusCode, raw)
		}
		if want := httpStatus(codes.Code(st.Code)); want != res.StatusCode {
			t.Errorf("%s %s: HTTP %d for %v, want %d", verb, path, res.StatusCode, codes.Code(st.Code), want)
		}
		return nil, codes.Code(st.Code)
	}
	if m.Output().FullName() == "google.api.HttpBody" { // the body itself, e.g. a PDF
		return &httpbody.HttpBody{ContentType: res.Header.Get("Content-Type"), Data: raw}, codes.OK
	}
	resp := newOutput(t, m)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, resp); err != nil {
		t.Fatalf("%s %s: %v in %s", verb, path, err, raw)
	}
	return resp, codes.OK
}

// httpStatus is the HTTP status the gateway gives a gRPC code.
func httpStatus(c codes.Code) int {
	return map[codes.Code]int{
		codes.OK: 200, codes.InvalidArgument: 400, codes.FailedPrecondition: 400, codes.OutOfRange: 400,
		codes.Unauthenticated: 401, codes.PermissionDenied: 403, codes.NotFound: 404, codes.AlreadyExists: 409,
		codes.Aborted: 409, codes.ResourceExhausted: 429, codes.Canceled: 499, codes.Unimplemented: 501,
		codes.Unavailable: 503, codes.DeadlineExceeded: 504,
	}[c]
}
