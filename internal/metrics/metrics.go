// Package metrics holds the Prometheus instruments that packages across knkd
// update (the store, the services, the rate limiters) and builds the registry
// that knkd's admin port serves.
//
// The instruments here are process-wide: every knkd in one process (tests run
// several) adds to the same ones, as the Go runtime collector does. Per-server
// series (gRPC methods, HTTP routes, certificates in the store) are collectors
// that the server registers in its own registry.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Buckets for the store's latencies: a WAL fsync takes from tens of microseconds
// (cache) to hundreds of milliseconds (a busy disk).
var storeBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

var (
	// RateLimitRejections counts calls refused by a rate limit, by limiter name.
	RateLimitRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "knk_rate_limit_rejections_total",
		Help: "Calls refused by a rate limit (RESOURCE_EXHAUSTED / HTTP 429), by limiter.",
	}, []string{"limiter"})

	// EventWatchers is the number of open WatchEvents streams.
	EventWatchers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "knk_event_watchers",
		Help: "Open WatchEvents streams (event-watch subscribers).",
	})

	// ImportRows counts roster rows that cadre imports handled, by outcome.
	ImportRows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "knk_import_rows_total",
		Help: "Roster rows handled by ImportCadres, by outcome (created, unchanged, changed, updated, rejected).",
	}, []string{"outcome"})

	// StoreWriteBatch is how many write operations shared one transaction.
	StoreWriteBatch = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "knk_store_write_batch_size",
		Help:    "Write operations committed together in one transaction (SQLite group commit; 1 on PostgreSQL).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	}, []string{"engine"})

	// StoreCommitSeconds is how long a write transaction's COMMIT took.
	StoreCommitSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "knk_store_commit_seconds",
		Help:    "Time taken by COMMIT of a write transaction.",
		Buckets: storeBuckets,
	}, []string{"engine"})

	// StoreFsyncSeconds is how long an fsync of the SQLite WAL took.
	StoreFsyncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "knk_store_fsync_seconds",
		Help:    "Time taken by the fsync that makes SQLite commits durable (one per group of commits).",
		Buckets: storeBuckets,
	})

	// StoreWriteErrors counts write transactions that failed to commit or sync.
	StoreWriteErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "knk_store_write_errors_total",
		Help: "Write transactions whose COMMIT or fsync failed (every caller in the batch got an error).",
	}, []string{"engine", "stage"})
)

// RateLimited counts one call refused by the rate limit named limiter (for
// example "anonymous", "failed_auth", "nik_lookup", "certificate_name_tries").
func RateLimited(limiter string) { RateLimitRejections.WithLabelValues(limiter).Inc() }

// NewRegistry returns a registry with the Go runtime and process collectors,
// every process-wide instrument of this package, and extra.
func NewRegistry(extra ...prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	all := append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		RateLimitRejections, EventWatchers, ImportRows,
		StoreWriteBatch, StoreCommitSeconds, StoreFsyncSeconds, StoreWriteErrors,
	}, extra...)
	for _, c := range all {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
