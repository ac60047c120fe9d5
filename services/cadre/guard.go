package cadre

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/metrics"
	"github.com/knk-id/knk/internal/ratelimit"
)

// Guard limits, per API key, the answers that tell whether a NIK is registered
// (issue 10), so that no key can sweep the NIK space: every lookup and transfer
// request spends one check, and a create or import row spends one when it finds
// the NIK taken. While a key's budget is empty, its creates and imports wait too:
// otherwise a create that succeeds would still tell that the NIK was free.
// A nil *Guard limits nothing.
type Guard struct {
	checks *ratelimit.Limiter // NIK answers per key
	misses *ratelimit.Limiter // lookups that found nothing, per key
	warns  *ratelimit.Limiter // at most one warning per key a minute
	log    *slog.Logger
	now    func() time.Time

	mu sync.Mutex
	// blocked holds the keys whose budget ran out, until when; only creates and
	// imports read it (lookups ask the bucket itself). It holds at most one entry
	// per API key and forgets expired ones.
	blocked map[string]time.Time
}

// NewGuard allows perMinute NIK checks per key and minute, a minute's worth at
// once; perMinute <= 0 switches the limit off. A key whose lookups miss more than
// a quarter of that within a minute is logged as a warning, with its id.
func NewGuard(perMinute int, log *slog.Logger, now func() time.Time) *Guard {
	if perMinute <= 0 {
		return nil
	}
	missBudget := max(perMinute/4, 10)
	g := &Guard{
		checks:  ratelimit.New(ratelimit.PerMinute(perMinute), perMinute),
		misses:  ratelimit.New(ratelimit.PerMinute(missBudget), missBudget),
		warns:   ratelimit.New(ratelimit.PerMinute(1), 1),
		log:     log,
		now:     now,
		blocked: map[string]time.Time{},
	}
	g.checks.Now, g.misses.Now, g.warns.Now = now, now, now
	return g
}

func keyOf(p auth.Principal) string {
	if p.KeyID != "" {
		return p.KeyID
	}
	return p.OrgName()
}

// Spend takes one check for a call that always answers about a NIK (a lookup, a
// transfer request).
func (g *Guard) Spend(p auth.Principal) error {
	if g == nil {
		return nil
	}
	ok, retry := g.checks.Allow(keyOf(p))
	if !ok {
		return g.block(p, retry)
	}
	return nil
}

// Wait refuses a create or import while the key's budget is empty.
func (g *Guard) Wait(p auth.Principal) error {
	if g == nil {
		return nil
	}
	now := g.now()
	g.mu.Lock()
	until, ok := g.blocked[keyOf(p)]
	if ok && !until.After(now) {
		delete(g.blocked, keyOf(p))
	}
	g.mu.Unlock()
	if ok && until.After(now) {
		return exhausted(until.Sub(now))
	}
	return nil
}

// Taken takes one check for a create or import row that found its NIK
// registered; with none left it refuses, and the key's creates wait.
func (g *Guard) Taken(p auth.Principal) error { return g.Spend(p) }

func (g *Guard) block(p auth.Principal, retry time.Duration) error {
	metrics.RateLimited("nik_checks")
	now := g.now()
	g.mu.Lock()
	for k, until := range g.blocked {
		if !until.After(now) {
			delete(g.blocked, k)
		}
	}
	g.blocked[keyOf(p)] = now.Add(retry)
	g.mu.Unlock()
	return exhausted(retry)
}

// Miss records a lookup that found nothing in the caller's scope; a burst of
// them is logged as a warning naming the key (never the NIK).
func (g *Guard) Miss(ctx context.Context, p auth.Principal) {
	if g == nil {
		return
	}
	if ok, _ := g.misses.Allow(keyOf(p)); ok {
		return
	}
	if ok, _ := g.warns.Allow(keyOf(p)); ok {
		g.log.LogAttrs(ctx, slog.LevelWarn, "a key's NIK lookups keep finding nothing: someone may be probing for registered NIKs",
			slog.String("key_id", p.KeyID), slog.String("org", p.OrgName()))
	}
}

// exhausted is RESOURCE_EXHAUSTED with the delay after which a check is free.
func exhausted(retry time.Duration) error {
	retry = retry.Round(time.Second) + time.Second
	st, err := status.New(codes.ResourceExhausted, fmt.Sprintf(
		"this key has checked too many NIKs (lookups, creates of registered NIKs, transfer requests): retry in %s", retry)).
		WithDetails(&errdetails.ErrorInfo{Reason: "NIK_CHECKS_EXHAUSTED", Domain: api.Domain},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	if err != nil {
		return status.Error(codes.ResourceExhausted, "too many NIK checks: retry later")
	}
	return st.Err()
}
