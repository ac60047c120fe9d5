package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	cadresvc "github.com/knk-id/knk/services/cadre"
)

type importCmd struct {
	File          string `arg:"" type:"existingfile" help:"Roster CSV file."`
	BatchProgress int    `default:"10000" help:"Report progress on stderr every N rows; 0 = only at the end."`
	Rejections    string `help:"Where to write the rejections (row,field,reason) if there are any; default FILE.rejections.csv." type:"path"`
}

// Help is the detailed help of `knkctl import --help`.
func (c *importCmd) Help() string { return rosterFormat }

// Run streams the roster row by row: memory does not grow with the file, only with
// the number of rejected rows.
func (c *importCmd) Run(a *app) error {
	f, err := os.Open(c.File)
	if err != nil {
		return err
	}
	defer f.Close()
	roster, err := newRosterReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", c.File, err)
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}

	// --timeout bounds each step (one row sent, the final summary), not the whole
	// import, which may take minutes.
	ctx, cancel := context.WithCancel(a.authCtx())
	defer cancel()
	watchdog := func() {}
	if a.g.Timeout > 0 {
		t := time.AfterFunc(a.g.Timeout, cancel)
		defer t.Stop()
		watchdog = func() { t.Reset(a.g.Timeout) }
	}
	stalled := func(err error) error {
		if ctx.Err() != nil && a.ctx.Err() == nil {
			return fmt.Errorf("import stopped: no progress for %s (see --timeout)", a.g.Timeout)
		}
		return err
	}
	stream, err := knkv1.NewCadreServiceClient(cc).ImportCadres(ctx)
	if err != nil {
		return err
	}
	// The answer comes in messages of at most 1,000 rejections, some while rows are
	// still being sent: read them as they come, or the server waits for us.
	type answer struct {
		last     *knkv1.ImportCadresResponse
		rejected []*knkv1.ImportRejection // stream rows
		err      error
	}
	answered := make(chan answer, 1)
	go func() {
		var a answer
		a.last, a.err = cadresvc.ReceiveImport(stream, func(r *knkv1.ImportCadresResponse) error {
			a.rejected = append(a.rejected, r.GetRejections()...)
			watchdog()
			return nil
		})
		answered <- a
	}()

	var (
		start   = time.Now()
		rows    rowMap
		local   []*knkv1.ImportRejection // client-side rejections, CSV rows
		sent    int64
		csvRows int
	)
	progress := func(what string) {
		el := time.Since(start)
		fmt.Fprintf(a.stderr, "knkctl: import %s: %d rows read, %d sent, %d rejected locally, %s, %.0f rows/s\n",
			what, csvRows, sent, len(local), el.Round(time.Millisecond), float64(sent)/max(el.Seconds(), 1e-9))
	}
	for {
		row, req, rej, err := roster.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.File, err)
		}
		csvRows = row
		watchdog()
		if rej != nil {
			local = append(local, rej)
		} else {
			if err := stream.Send(req); err != nil {
				if errors.Is(err, io.EOF) { // the server ended the stream; its answer says why
					err = (<-answered).err
				}
				return stalled(err)
			}
			sent++
			rows.add(sent, int64(row))
		}
		if c.BatchProgress > 0 && row%c.BatchProgress == 0 {
			progress("progress")
		}
	}
	if err := stream.CloseSend(); err != nil {
		return stalled(err)
	}
	ans := <-answered
	if ans.err != nil {
		return stalled(ans.err)
	}
	resp := ans.last
	progress("done")

	all := local
	for _, r := range ans.rejected {
		all = append(all, &knkv1.ImportRejection{Row: rows.csvRow(r.GetRow()), Field: csvField(r.GetField()), Reason: r.GetReason()})
	}
	slices.SortStableFunc(all, func(x, y *knkv1.ImportRejection) int { return cmp.Compare(x.Row, y.Row) })
	fmt.Fprintf(a.stdout, "created: %d\nunchanged: %d\nrejected: %d\n",
		resp.GetCreated(), resp.GetUnchanged(), resp.GetRejected()+int64(len(local)))
	if len(all) == 0 {
		return nil
	}
	path := c.Rejections
	if path == "" {
		path = c.File + ".rejections.csv"
	}
	if err := writeRejections(path, all); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "rejections: %s\n", path)
	return err
}

// writeRejections writes row,field,reason with a header; rows are CSV data rows.
func writeRejections(path string, rejs []*knkv1.ImportRejection) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"row", "field", "reason"}) //nolint:errcheck // checked by w.Error
	for _, r := range rejs {
		w.Write([]string{strconv.FormatInt(r.GetRow(), 10), r.GetField(), r.GetReason()}) //nolint:errcheck // checked by w.Error
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// rowMap maps stream rows (numbered from 1 in send order, as the server numbers
// them) to CSV data rows. Rows rejected client-side are not sent, so the two
// numberings drift apart; rowMap keeps one entry per run of consecutive rows, so it
// grows with the client-side rejections, not with the roster.
type rowMap struct {
	stream, csv []int64 // start of each run, in both numberings
}

func (m *rowMap) add(stream, csv int64) {
	if n := len(m.stream); n > 0 && csv-m.csv[n-1] == stream-m.stream[n-1] {
		return // continues the last run
	}
	m.stream = append(m.stream, stream)
	m.csv = append(m.csv, csv)
}

// csvRow returns the CSV data row of a stream row; a row outside the stream (a
// server bug) is returned unchanged.
func (m *rowMap) csvRow(stream int64) int64 {
	i := sort.Search(len(m.stream), func(i int) bool { return m.stream[i] > stream }) - 1
	if i < 0 {
		return stream
	}
	return m.csv[i] + stream - m.stream[i]
}
