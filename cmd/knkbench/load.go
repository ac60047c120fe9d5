package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
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
	// CPUUs is the machine's busy CPU time (every core, user and kernel,
	// client, server and the kernel's own I/O work) in the measured window per
	// call, in microseconds; zero where /proc/stat cannot be read.
	CPUUs float64
}

// measure calls op from workers goroutines for a warm-up (a fifth of d, at most
// a second; not counted) and then for d, and reports the calls that started
// in the measured window (stretched when a worker had none in it). It stops early when an op returns errExhausted. Any
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
		cpuFrom   = make(chan time.Duration, 1)
	)
	time.AfterFunc(warm, func() { cpuFrom <- busyCPU() })
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && !exhausted.Load() {
				t0 := time.Now()
				// Past the window a worker stops, unless none of its calls started in
				// it (on a slow, loaded machine a call may outlast a short window):
				// then one more call is made and the window stretched to its end.
				late := !t0.Before(until)
				if late && len(lat[w]) > 0 {
					return
				}
				err := op(ctx)
				switch {
				case err == nil:
					if !t0.Before(from) {
						lat[w] = append(lat[w], time.Since(t0))
					}
					if late {
						endMu.Lock()
						if now := time.Now(); now.After(end) {
							end = now
						}
						endMu.Unlock()
						return
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
		CPUUs:   cpuSince(<-cpuFrom, int64(len(all))),
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

// busyCPU is the time every core of the machine has spent busy since boot, from
// /proc/stat (all but idle, iowait and steal), or zero where it cannot be read.
func busyCPU() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, f := range fields[1:9] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0
		}
		if i != 3 && i != 4 && i != 7 { // idle, iowait, steal
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// cpuSince is the machine's busy CPU since busyCPU returned from, per op of n,
// in microseconds; zero where /proc/stat cannot be read.
func cpuSince(from time.Duration, n int64) float64 {
	now := busyCPU()
	if from == 0 || now <= from || n <= 0 {
		return 0
	}
	return float64((now - from).Nanoseconds()) / float64(n) / 1000
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux architecture Go runs on.
const clockTicks = 100
