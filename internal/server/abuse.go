package server

import (
	"net/netip"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/metrics"
	"github.com/knk-id/knk/internal/ratelimit"
)

// Limit is a per-client-address token bucket: PerMinute calls a minute with
// bursts of Burst. The zero Limit means the default; PerMinute < 0 switches the
// limit off.
type Limit struct {
	PerMinute int
	Burst     int
}

// Default limits (issue 12.7).
var (
	DefaultAnonymousLimit  = Limit{PerMinute: 60, Burst: 20}
	DefaultFailedAuthLimit = Limit{PerMinute: 10, Burst: 10}
)

// limiter builds the limiter of l, or of def when l is zero, on the clock now;
// nil when l is off.
func (l Limit) limiter(def Limit, now func() time.Time) *ratelimit.Limiter {
	if l == (Limit{}) {
		l = def
	}
	if l.PerMinute < 0 {
		return nil
	}
	if l.Burst <= 0 {
		l.Burst = def.Burst
	}
	lim := ratelimit.New(ratelimit.PerMinute(l.PerMinute), l.Burst)
	lim.Now = now
	return lim
}

// anonymousLimited reports whether a call of method without a key counts against
// the anonymous limit: every public knk.v1 method (certificate verification in
// all its forms, the signing keys). Health checks and reflection do not.
func anonymousLimited(method string) bool {
	return strings.HasPrefix(method, "/knk.v1.")
}

// reflectionMethod reports whether method is gRPC server reflection.
func reflectionMethod(method string) bool {
	return strings.HasPrefix(method, "/grpc.reflection.")
}

// limiterNames label the limits of allow in knk_rate_limit_rejections_total.
var limiterNames = map[string]string{"calls without an API key": "anonymous", "calls with a wrong API key": "failed_auth"}

// allow takes a token for client from lim; over the limit it is
// RESOURCE_EXHAUSTED with a RetryInfo saying when to try again.
func allow(lim *ratelimit.Limiter, client netip.Addr, what string) error {
	ok, retry := lim.Allow(bucketKey(client))
	if ok {
		return nil
	}
	metrics.RateLimited(limiterNames[what])
	st, err := status.New(codes.ResourceExhausted,
		"too many "+what+" from your address: try again in "+retryAfterSeconds(retry)+" s").
		WithDetails(
			&errdetails.ErrorInfo{Reason: "RATE_LIMITED", Domain: api.Domain},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	if err != nil {
		return status.Error(codes.ResourceExhausted, "too many "+what+" from your address")
	}
	return st.Err()
}
