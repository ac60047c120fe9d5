package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/services/cadre"
)

// createDuringImport measures CreateCadre exactly as create_cadre_rps does while
// one roster import streams new rows (at most --rows) for the whole measurement
// (issue 11: a bulk import must not starve single writes). Its ratio to create_cadre_rps is the
// share of their solo throughput that single creates keep; the note says how
// fast the import went meanwhile.
func (b *bench) createDuringImport(ctx context.Context) {
	const name = "create_during_import_rps"
	stream, err := b.cadres.ImportCadres(b.fedCtx(ctx))
	if !b.record(name, err) {
		return
	}
	var (
		stop     atomic.Bool
		sent     atomic.Int64
		imported = make(chan error, 1)
		resp     *knkv1.ImportCadresResponse
		started  = time.Now()
		elapsed  time.Duration
	)
	go func() {
		var err error
		for !stop.Load() && sent.Load() < int64(b.cfg.Rows) {
			if err = stream.Send(&knkv1.ImportCadresRequest{Cadre: cadreAt(b.nextRow.Add(1) - 1)}); err != nil {
				break // io.EOF: the server ended the call; CloseImport says why
			}
			sent.Add(1)
		}
		var recvErr error
		resp, recvErr = cadre.CloseImport(stream)
		elapsed = time.Since(started)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		imported <- errors.Join(err, recvErr)
	}()
	var created atomic.Int64
	res, ok := b.run(ctx, name, b.cfg.Duration, func(ctx context.Context) error {
		_, err := b.cadres.CreateCadre(b.fedCtx(ctx), &knkv1.CreateCadreRequest{Cadre: cadreAt(b.nextRow.Add(1) - 1)})
		if err == nil {
			created.Add(1)
		}
		return err
	})
	stop.Store(true)
	err = <-imported
	b.stored += created.Load() + resp.GetCreated()
	if err == nil && resp.GetCreated() != sent.Load() {
		err = fmt.Errorf("the import beside the creates created %d of %d rows (%d rejected)", resp.GetCreated(), sent.Load(), resp.GetRejected())
	}
	if !ok || !b.record(name, err) {
		return
	}
	b.add(figure{Name: name, Value: res.PerSec, Unit: "calls/s", P50Ms: ms(res.P50), P99Ms: ms(res.P99), CPUUs: res.CPUUs,
		Note: fmt.Sprintf("CreateCadre while one ImportCadres stream runs; the import wrote %d rows in %v (%.0f rows/s) meanwhile",
			resp.GetCreated(), elapsed.Round(time.Millisecond), float64(resp.GetCreated())/elapsed.Seconds())})
}
