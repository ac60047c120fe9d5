package server

import (
	"context"
	"errors"
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
	"github.com/knk-id/knk/internal/ratelimit"
)

const requestIDKey = "x-request-id"

// authenticator turns a key secret into a principal.
type authenticator interface {
	Authenticate(ctx context.Context, secret string) (auth.Principal, error)
}

// guard is what every interceptor does around a handler: take or make a request
// id, find the client's address, authenticate and authorise the key, apply the
// abuse limits, run the handler, turn unexpected errors into INTERNAL, and log
// one line without request data (so never a NIK), with the client address.
type guard struct {
	log     *slog.Logger
	keys    authenticator
	proxies Proxies
	// anonymous limits calls without a key to public methods, per client
	// address; failedAuth limits calls with a key that is not valid.
	anonymous, failedAuth *ratelimit.Limiter
	// publicReflection lets reflection answer without a key.
	publicReflection bool
}

func (g *guard) call(ctx context.Context, method string, run func(context.Context) error) (err error) {
	start := time.Now()
	md, _ := metadata.FromIncomingContext(ctx)
	reqID := first(md, requestIDKey)
	if reqID == "" || len(reqID) > 64 {
		reqID = ulid.Make().String()
	}
	grpc.SetHeader(ctx, metadata.Pairs(requestIDKey, reqID))
	ctx = auth.WithRequestID(ctx, reqID)
	client, internalCall := g.proxies.grpcClient(ctx, md)
	clientAttr := client.String()
	if internalCall {
		clientAttr = "knkd"
	}
	var org string
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("panic", "request_id", reqID, "method", method, "client", clientAttr, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error (request id "+reqID+")")
		}
		code := status.Code(err)
		attrs := []slog.Attr{slog.String("request_id", reqID), slog.String("method", method), slog.String("client", clientAttr),
			slog.String("org", org), slog.String("code", code.String()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
		switch code {
		case codes.Internal, codes.Unknown, codes.DataLoss:
			g.log.LogAttrs(ctx, slog.LevelError, "call failed", append(attrs, slog.String("cause", err.Error()))...)
		default:
			g.log.LogAttrs(ctx, slog.LevelInfo, "call", attrs...)
		}
	}()

	// "authorization: Bearer <key>"; anything else in the header is a wrong key.
	key := strings.TrimSpace(strings.TrimPrefix(first(md, "authorization"), "Bearer "))
	public := auth.Public(method) && (g.publicReflection || !reflectionMethod(method))
	switch {
	case public && key == "":
		if !internalCall && anonymousLimited(method) {
			if err := allow(g.anonymous, client, "calls without an API key"); err != nil {
				return err
			}
		}
	case key == "":
		return api.Error(codes.Unauthenticated, "MISSING_KEY", "this call needs an API key: send 'authorization: Bearer <key>'")
	default:
		// A key is checked even on a public method: a keyed caller is not held to
		// the anonymous limit, and a public method may show a keyed caller more.
		p, err := g.keys.Authenticate(ctx, key)
		if status.Code(err) == codes.Unauthenticated && !internalCall {
			if err := allow(g.failedAuth, client, "calls with a wrong API key"); err != nil {
				return err
			}
		}
		if err != nil {
			return internal(err, reqID)
		}
		org = p.OrgName()
		if !public && !reflectionMethod(method) && !auth.Allowed(method, p.Kind) {
			return api.Denied("your key's role may not call " + method[strings.LastIndex(method, "/")+1:])
		}
		ctx = auth.WithPrincipal(ctx, p)
	}
	return internal(run(ctx), reqID)
}

// internal keeps status errors returned as such, turns context errors into
// CANCELLED or DEADLINE_EXCEEDED, and hides anything else behind INTERNAL with a
// generic message; call logs the cause. An error that merely wraps or joins a
// status (errors.Join(dbErr, api.StaleEtag(…))) is not a status: it is INTERNAL.
func internal(err error, reqID string) error {
	if err == nil {
		return nil
	}
	if se, ok := err.(interface{ GRPCStatus() *status.Status }); ok && se.GRPCStatus().Code() != codes.Unknown {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed before it finished")
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

func (g *guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var resp any
	err := g.call(ctx, info.FullMethod, func(ctx context.Context) error {
		var err error
		resp, err = handler(ctx, req)
		return err
	})
	return resp, err
}

func (g *guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return g.call(ss.Context(), info.FullMethod, func(ctx context.Context) error {
		return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	})
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }
