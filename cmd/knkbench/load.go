package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// errNotImplemented is what an operation returns when the server answers
	// UNIMPLEMENTED (HTTP 501): the figure is skipped, not failed.
	errNotImplemented = errors.New("not implemented")
	// errExhausted is what an operation returns when it has no input left (each
	// cadre can be certified once): the measurement ends early.
	errExhausted = errors.New("out of input")
	// errNothingToDo skips a figure whose input an earlier figure did not make
	// (no certificates to verify when none could be issued).
	errNothingToDo = errors.New("nothing to measure")
)

// result is one measurement: calls that started in the measured window, their
// rate and latency percentiles.
type result struct {
	Calls    int64
	Elapsed  time.Duration
	PerSec   float64
	P50, P99 time.Duration
}

// measure calls op from workers goroutines for a warm-up (a fifth of d, at most
// a second; not counted) and then for d, and reports the calls that started
// in the measured window. It stops early when an op returns errExhausted. Any
// other error stops the measurement and is returned; UNIMPLEMENTED becomes
// errNotImplemented.
func measure(ctx context.Context, workers int, d time.Duration, op func(context.Context) error) (result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	warm := min(d/5, time.Second)
	start := time.Now()
	from, until := start.Add(warm), start.Add(warm+d)

	var (
		lat       = make([][]time.Duration, workers)
		once      sync.Once
		failure   error
		exhausted atomic.Bool
		endMu     sync.Mutex
		end       = until
		wg        sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && !exhausted.Load() {
				t0 := time.Now()
				if !t0.Before(until) {
					return
				}
				err := op(ctx)
				switch {
				case err == nil:
					if !t0.Before(from) {
						lat[w] = append(lat[w], time.Since(t0))
					}
				case errors.Is(err, errExhausted):
					if !exhausted.Swap(true) {
						endMu.Lock()
						if now := time.Now(); now.Before(end) {
							end = now
						}
						endMu.Unlock()
					}
					return
				case ctx.Err() != nil:
					return // stopping because another worker failed
				default:
					once.Do(func() { failure = classify(err); cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if failure != nil {
		return result{}, failure
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return result{}, fmt.Errorf("no call completed in the measured window of %v", d)
	}
	slices.Sort(all)
	elapsed := end.Sub(from)
	if elapsed <= 0 {
		return result{}, errors.New("input ran out during the warm-up")
	}
	return result{
		Calls:   int64(len(all)),
		Elapsed: elapsed,
		PerSec:  float64(len(all)) / elapsed.Seconds(),
		P50:     percentile(all, 0.50),
		P99:     percentile(all, 0.99),
	}, nil
}

// classify turns an UNIMPLEMENTED answer into errNotImplemented.
func classify(err error) error {
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("%w: %v", errNotImplemented, err)
	}
	return err
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
