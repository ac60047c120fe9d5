package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newAt(r rate.Limit, burst int) (*Limiter, *clock) {
	c := &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	l := New(r, burst)
	l.Now = c.now
	return l, c
}

func TestBurstThenRefusedWithRetryAfter(t *testing.T) {
	l, c := newAt(PerMinute(60), 20)
	for i := range 20 {
		if ok, _ := l.Allow("198.51.100.7"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, after := l.Allow("198.51.100.7")
	if ok || after <= 0 || after > time.Second {
		t.Fatalf("21st request: ok=%v retryAfter=%v, want refused with 0 < retryAfter <= 1s", ok, after)
	}
	if ok, _ := l.Allow("203.0.113.9"); !ok {
		t.Fatal("another key was slowed by the first key's bucket")
	}
	c.add(after)
	if ok, _ := l.Allow("198.51.100.7"); !ok {
		t.Fatal("refused after waiting the advertised retryAfter")
	}
}

func TestRefusedCallsTakeNoToken(t *testing.T) {
	l, c := newAt(1, 1)
	l.Allow("k")
	for range 100 {
		l.Allow("k") // refused: must not push the next free token further out
	}
	c.add(time.Second)
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("refused calls consumed tokens")
	}
}

func TestIdleBucketsAreForgotten(t *testing.T) {
	l, c := newAt(PerMinute(60), 20) // a bucket refills in 20 s
	for i := range 1000 {
		l.Allow(fmt.Sprint("client-", i))
	}
	if l.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", l.Len())
	}
	c.add(21 * time.Second)
	l.Allow("late")
	if l.Len() != 1 {
		t.Fatalf("after a refill period Len = %d, want only the new key", l.Len())
	}
}

func TestKeySprayingSharesOneOverflowBucket(t *testing.T) {
	l, _ := newAt(PerMinute(60), 5)
	l.MaxKeys = 10
	allowed := 0
	for i := range 1000 {
		if ok, _ := l.Allow(fmt.Sprint("sprayed-", i)); ok {
			allowed++
		}
	}
	if l.Len() > 10 {
		t.Fatalf("Len = %d, want at most MaxKeys", l.Len())
	}
	// 10 own buckets of burst 5 each, then the shared overflow bucket of burst 5.
	if allowed != 10+5 {
		t.Fatalf("allowed %d of 1000 sprayed keys, want 15", allowed)
	}
}

func TestNilAndInfAllowEverything(t *testing.T) {
	var off *Limiter
	if ok, _ := off.Allow("x"); !ok {
		t.Fatal("nil limiter refused")
	}
	l := New(rate.Inf, 1)
	for range 1000 {
		if ok, _ := l.Allow("x"); !ok {
			t.Fatal("rate.Inf refused")
		}
	}
}
