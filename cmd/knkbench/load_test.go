package main

import (
	"context"
	"testing"
	"time"
)

// On a loaded machine a call may outlast a short window: the figure is still
// measured (the window stretched to the call's end), not failed for want of calls.
func TestACallLongerThanTheWindowIsMeasured(t *testing.T) {
	slow := func(ctx context.Context) error {
		time.Sleep(60 * time.Millisecond)
		return nil
	}
	r, err := measure(context.Background(), 2, 20*time.Millisecond, slow)
	if err != nil || r.Calls < 1 || r.Elapsed < 60*time.Millisecond || r.P50 < 60*time.Millisecond {
		t.Fatalf("measure of 60 ms calls in a 20 ms window: %+v, %v; want at least one call over a stretched window", r, err)
	}
	if r.PerSec > 2/0.060+1 {
		t.Errorf("rate %.1f/s is more than 2 workers can make with 60 ms calls", r.PerSec)
	}
}
