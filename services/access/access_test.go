package access_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/services/access"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecord is what the trail adds to a read: one entry naming one cadre,
// written by the flusher in batches on a SQLite file. cpu-µs/op counts the whole
// process (reader, flusher, SQLite and its fsyncs), whatever else the machine does.
func BenchmarkRecord(b *testing.B) {
	b.Run("batched", func(b *testing.B) { benchRecord(b, false) })
	b.Run("sync", func(b *testing.B) { benchRecord(b, true) })
}

func benchRecord(b *testing.B, durable bool) {
	store, err := db.Open(context.Background(), filepath.Join(b.TempDir(), "knk.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	log := access.New(store, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)), durable)
	ctx := auth.WithRequestID(auth.WithPrincipal(context.Background(),
		auth.Principal{Org: "ksbsi", Kind: auth.Federation, KeyID: "01kkey"}), "01request")
	b.SetParallelism(32)
	start := cpu()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := log.Record(ctx, "GetCadre", access.Full, "cadres/01JD0000000000000000000000"); err != nil {
				b.Error(err)
			}
		}
	})
	log.Close() // every entry written
	b.StopTimer()
	b.ReportMetric(float64((cpu()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}
