package auth

import "context"

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id the server logs the call
// with (x-request-id), for records that must name the request, such as the
// access trail.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id of the call, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
