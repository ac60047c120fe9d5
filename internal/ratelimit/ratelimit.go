// Package ratelimit keeps one token bucket per key (a client address, an API key,
// a certificate number) with bounded memory: a bucket that has been idle long
// enough to be full again is forgotten, since a fresh bucket behaves the same, and
// the number of buckets is capped.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds the buckets a Limiter keeps.
const DefaultMaxKeys = 100_000

// Limiter is a set of token buckets, one per key, all with the same rate and
// burst. A nil *Limiter allows everything (a limit that is switched off).
type Limiter struct {
	r     rate.Limit
	burst int
	// MaxKeys bounds the number of buckets. When every bucket is in use, new keys
	// share one overflow bucket, so spraying keys cannot grow memory or escape
	// the limit.
	MaxKeys int
	// Now is the clock; tests replace it.
	Now func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	overflow  *rate.Limiter
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter allowing r events per second per key with bursts of
// burst. r = rate.Inf allows everything.
func New(r rate.Limit, burst int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	return &Limiter{r: r, burst: burst, MaxKeys: DefaultMaxKeys, Now: time.Now,
		buckets: map[string]*bucket{}, overflow: rate.NewLimiter(r, burst)}
}

// PerMinute is n events a minute as a rate.Limit.
func PerMinute(n int) rate.Limit { return rate.Limit(float64(n) / 60) }

// Allow takes one token from key's bucket. When the bucket is empty it takes
// nothing and says how long until a token is free.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil || l.r == rate.Inf {
		return true, 0
	}
	now := l.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	lim := l.overflow
	if b, found := l.buckets[key]; found {
		b.seen, lim = now, b.lim
	} else if len(l.buckets) < l.MaxKeys {
		lim = rate.NewLimiter(l.r, l.burst)
		l.buckets[key] = &bucket{lim: lim, seen: now}
	}
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Hour
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len is the number of buckets kept.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// refill is how long an empty bucket takes to become full again.
func (l *Limiter) refill() time.Duration {
	if l.r <= 0 {
		return 24 * time.Hour
	}
	return time.Duration(float64(l.burst) / float64(l.r) * float64(time.Second))
}

// sweep forgets buckets idle for longer than a refill, at most once per refill
// period, or once a second while the table is full. Called with mu held.
func (l *Limiter) sweep(now time.Time) {
	idle := l.refill()
	interval := idle
	if len(l.buckets) >= l.MaxKeys {
		interval = min(idle, time.Second)
	}
	if now.Sub(l.lastSweep) < interval {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.seen) >= idle {
			delete(l.buckets, k)
		}
	}
}
