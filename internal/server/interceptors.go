package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
)

const requestIDKey = "x-request-id"

// authenticator turns a key secret into a principal.
type authenticator interface {
	Authenticate(ctx context.Context, secret string) (auth.Principal, error)
}

// call is what every interceptor does around a handler: take or make a request
// id, authenticate and authorise the key, run the handler, turn unexpected errors
// into INTERNAL, and log one line without request data (so never a NIK).
func call(ctx context.Context, log *slog.Logger, keys authenticator, method string,
	run func(context.Context) error) (err error) {
	start := time.Now()
	md, _ := metadata.FromIncomingContext(ctx)
	reqID := first(md, requestIDKey)
	if reqID == "" || len(reqID) > 64 {
		reqID = ulid.Make().String()
	}
	grpc.SetHeader(ctx, metadata.Pairs(requestIDKey, reqID))
	ctx = auth.WithRequestID(ctx, reqID)
	var org string
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic", "request_id", reqID, "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error (request id "+reqID+")")
		}
		code := status.Code(err)
		attrs := []slog.Attr{slog.String("request_id", reqID), slog.String("method", method), slog.String("org", org),
			slog.String("code", code.String()), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
		switch code {
		case codes.Internal, codes.Unknown, codes.DataLoss:
			log.LogAttrs(ctx, slog.LevelError, "call failed", append(attrs, slog.String("cause", err.Error()))...)
		default:
			log.LogAttrs(ctx, slog.LevelInfo, "call", attrs...)
		}
	}()

	// A public method needs no key, but one that is sent is checked: some public
	// answers show a keyed caller more (VerifyCertificate shows the holder).
	secret, ok := strings.CutPrefix(first(md, "authorization"), "Bearer ")
	if public := auth.Public(method); !public || (ok && secret != "") {
		if !ok || secret == "" {
			return api.Error(codes.Unauthenticated, "MISSING_KEY", "this call needs an API key: send 'authorization: Bearer <key>'")
		}
		p, err := keys.Authenticate(ctx, secret)
		if err != nil {
			return internal(err, reqID)
		}
		org = p.OrgName()
		if !public && !auth.Allowed(method, p.Kind) {
			return api.Denied("your key's role may not call " + method[strings.LastIndex(method, "/")+1:])
		}
		ctx = auth.WithPrincipal(ctx, p)
	}
	return internal(run(ctx), reqID)
}

// internal keeps status errors and context errors and hides anything else behind
// INTERNAL; the cause is logged by call.
func internal(err error, reqID string) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	if st := status.FromContextError(err); st.Code() != codes.Unknown {
		return st.Err()
	}
	return &internalError{cause: err, reqID: reqID}
}

// internalError answers "internal error" to the client and keeps the cause for the log.
type internalError struct {
	cause error
	reqID string
}

func (e *internalError) Error() string { return e.cause.Error() }

func (e *internalError) GRPCStatus() *status.Status {
	return status.New(codes.Internal, "internal error (request id "+e.reqID+")")
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func unaryInterceptor(log *slog.Logger, keys authenticator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		var resp any
		err := call(ctx, log, keys, info.FullMethod, func(ctx context.Context) error {
			var err error
			resp, err = handler(ctx, req)
			return err
		})
		return resp, err
	}
}

func streamInterceptor(log *slog.Logger, keys authenticator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return call(ss.Context(), log, keys, info.FullMethod, func(ctx context.Context) error {
			return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
		})
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }
