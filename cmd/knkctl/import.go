package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/idn"
	cadresvc "github.com/knk-id/knk/services/cadre"
)

type importCmd struct {
	File          string `arg:"" type:"existingfile" help:"Roster file: CSV (comma, semicolon or tab) or Excel workbook (.xlsx)."`
	Sheet         string `help:"Sheet of an .xlsx workbook to import (default: the first)."`
	Lang          string `default:"id" enum:"id,en" help:"Language of the reports: id (Bahasa Indonesia) or en."`
	BatchProgress int    `default:"10000" help:"Report progress on stderr every N rows; 0 = only at the end."`
	Rejections    string `help:"Where to write the rejected rows, if any; default FILE.rejections.csv." type:"path"`
	Warnings      string `help:"Where to write the rows imported with warnings or skipped as repeats, if any; default FILE.warnings.csv." type:"path"`
	Update        bool   `help:"Apply the file's values to members your federation registered with other data (counted as updated); without it they are only counted as changed."`
}

// Help is the detailed help of `knkctl import --help`.
func (c *importCmd) Help() string {
	return rosterFormat + `

  Reports (CSV, one line per row, written 0600 since they hold personal data):
  FILE.rejections.csv lists rows not imported, FILE.warnings.csv rows imported
  without some optional value and rows skipped as repeats. Each line gives the
  spreadsheet line, the name, every problem field with its value (a NIK only by its
  last four digits) and the reason.

  Exit status: 0 when no row was rejected, 2 when some rows were rejected (the
  others were imported), 1 when the import failed.`
}

// exitError ends knkctl with a status other than 1.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// openRoster opens a roster file, CSV or XLSX (told by its content, not its name).
func openRoster(path, sheetName string) (*rosterReader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	magic := make([]byte, 4)
	n, _ := io.ReadFull(f, magic)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	var rr *rosterReader
	closeAll := func() { f.Close() }
	if bytes.Equal(magic[:n], []byte("PK\x03\x04")) {
		book, sh, err := openXLSX(f, sheetName)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		closeAll = func() { book.Close(); f.Close() }
		rr, err = newRosterReader(sh)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
	} else {
		if sheetName != "" {
			f.Close()
			return nil, nil, fmt.Errorf("%s: --sheet is for Excel workbooks, and this is a CSV file", path)
		}
		if rr, err = newCSVRosterReader(f); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return rr, closeAll, nil
}

// reportRow is one line of a report: a roster row and its problems.
type reportRow struct {
	Line     int
	Name     string
	Problems []problem
}

// Run streams the roster row by row: memory does not grow with the file, only with
// the number of reported rows (and a few dozen bytes per NIK for the repeated-row check).
func (c *importCmd) Run(a *app) error {
	roster, closeRoster, err := openRoster(c.File, c.Sheet)
	if err != nil {
		return err
	}
	defer closeRoster()
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
	// The answer comes in messages of at most 1,000 details, some while rows are
	// still being sent: read them as they come, or the server waits for us.
	type answer struct {
		last                 *knkv1.ImportCadresResponse
		rejections, warnings []*knkv1.ImportRejection // by stream row
		err                  error
	}
	answered := make(chan answer, 1)
	go func() {
		var a answer
		a.last, a.err = cadresvc.ReceiveImport(stream, func(r *knkv1.ImportCadresResponse) error {
			a.rejections = append(a.rejections, r.GetRejections()...)
			a.warnings = append(a.warnings, r.GetWarnings()...)
			watchdog()
			return nil
		})
		answered <- a
	}()

	var (
		start            = time.Now()
		rows             rowMap
		rejected, warned []reportRow
		sent, read, dups int64
		localRejected    int64
	)
	progress := func(what string) {
		el := time.Since(start)
		fmt.Fprintf(a.stderr, "knkctl: import %s: %d rows read, %d sent, %d rejected locally, %s, %.0f rows/s\n",
			what, read, sent, localRejected, el.Round(time.Millisecond), float64(sent)/max(el.Seconds(), 1e-9))
	}
	for {
		row, err := roster.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.File, err)
		}
		read++
		watchdog()
		switch {
		case len(row.Rejected) > 0:
			localRejected++
			rejected = append(rejected, reportRow{row.Line, row.Name, row.Rejected})
		case row.DupOf != 0:
			dups++
			warned = append(warned, reportRow{row.Line, row.Name, []problem{{
				EN: fmt.Sprintf("repeats line %d: not imported twice", row.DupOf),
				ID: fmt.Sprintf("sama dengan baris %d: tidak diimpor dua kali", row.DupOf)}}})
		default:
			if len(row.Warnings) > 0 {
				warned = append(warned, reportRow{row.Line, row.Name, row.Warnings})
			}
			row.Req.Update = c.Update
			if err := stream.Send(row.Req); err != nil {
				if errors.Is(err, io.EOF) { // the server ended the stream; its answer says why
					err = (<-answered).err
				}
				return stalled(err)
			}
			sent++
			rows.add(sent, int64(row.Line))
		}
		if c.BatchProgress > 0 && read%int64(c.BatchProgress) == 0 {
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

	// The server lists each bad field of a row apart, by stream row; the reports
	// give one line per spreadsheet row.
	rejected = append(rejected, byLine(ans.rejections, &rows)...)
	warned = merge(warned, byLine(ans.warnings, &rows))
	if err := c.fill(rejected, warned); err != nil { // the names of the server's rows, from the file
		return err
	}
	slices.SortStableFunc(rejected, func(x, y reportRow) int { return cmp.Compare(x.Line, y.Line) })
	total := resp.GetRejected() + localRejected
	fmt.Fprintf(a.stdout, "created: %d\nupdated: %d\nunchanged: %d\nchanged: %d\nwarned: %d\nduplicate: %d\nrejected: %d\n",
		resp.GetCreated(), resp.GetUpdated(), resp.GetUnchanged(), resp.GetChanged(), int64(len(warned))-dups, dups, total)
	if resp.GetChanged() > 0 {
		fmt.Fprintf(a.stderr, "knkctl: %d members are registered with other data; nothing was changed for them: import again with --update to apply the file's values\n", resp.GetChanged())
	}
	for _, rep := range []struct {
		rows       []reportRow
		path, kind string
	}{{warned, cmp.Or(c.Warnings, c.File+".warnings.csv"), "warnings"}, {rejected, cmp.Or(c.Rejections, c.File+".rejections.csv"), "rejections"}} {
		if len(rep.rows) == 0 {
			continue
		}
		if err := writeReport(rep.path, c.Lang, rep.rows); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s: %s\n", rep.kind, rep.path)
	}
	if total > 0 {
		return &exitError{2, fmt.Sprintf("%d of %d rows were rejected and not imported; the others were: fix the rows listed in %s and import the file again",
			total, read, cmp.Or(c.Rejections, c.File+".rejections.csv"))}
	}
	return nil
}

// byLine groups the server's per-field problems (by stream row) into report rows
// (by spreadsheet line), in line order.
func byLine(problems []*knkv1.ImportRejection, rows *rowMap) []reportRow {
	var out []reportRow
	for _, r := range problems {
		line := int(rows.csvRow(r.GetRow()))
		if n := len(out); n == 0 || out[n-1].Line != line {
			out = append(out, reportRow{Line: line})
		}
		reason := serverReasons[r.GetReason()]
		if reason.ID == "" {
			reason = problem{EN: r.GetReason(), ID: r.GetReason()}
		}
		out[len(out)-1].Problems = append(out[len(out)-1].Problems,
			problem{Field: csvField(r.GetField()), Value: r.GetValue(), EN: reason.EN, ID: reason.ID})
	}
	slices.SortStableFunc(out, func(x, y reportRow) int { return cmp.Compare(x.Line, y.Line) })
	return out
}

// merge joins two reports sorted by line, one line per row.
func merge(a, b []reportRow) []reportRow {
	out := append(a, b...)
	slices.SortStableFunc(out, func(x, y reportRow) int { return cmp.Compare(x.Line, y.Line) })
	var joined []reportRow
	for _, r := range out {
		if n := len(joined); n > 0 && joined[n-1].Line == r.Line {
			joined[n-1].Problems = append(joined[n-1].Problems, r.Problems...)
			continue
		}
		joined = append(joined, r)
	}
	return joined
}

// fill reads the roster again to give report rows without a name (the server's)
// the row's name, and problems without a value the cell as written.
func (c *importCmd) fill(reports ...[]reportRow) error {
	byLine := map[int]*reportRow{}
	for _, reps := range reports {
		for i := range reps {
			if reps[i].Name == "" && len(reps[i].Problems) > 0 && reps[i].Problems[0].Field != "" {
				byLine[reps[i].Line] = &reps[i]
			}
		}
	}
	if len(byLine) == 0 {
		return nil
	}
	rr, closeRoster, err := openRoster(c.File, c.Sheet)
	if err != nil {
		return err
	}
	defer closeRoster()
	for {
		row, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rep := byLine[row.Line]
		if rep == nil {
			continue
		}
		rep.Name = row.Name
		for i, p := range rep.Problems {
			if p.Value != "" {
				continue
			}
			v := rr.cell(p.Field)
			switch {
			case !utf8.ValidString(v): // cannot be shown as written
				v = ""
			case p.Field == colNIK:
				v = idn.LastFour(v)
			}
			rep.Problems[i].Value = v
		}
	}
}

// writeReport writes a report: one line per row, its problems joined by " | ".
// It is written 0600 (it holds personal data) to a temporary file renamed into
// place, so a failure leaves no half-written report.
func writeReport(path, lang string, rows []reportRow) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	w := csv.NewWriter(tmp)
	header := []string{"line", "name", "fields", "values", "reasons"}
	if lang == "id" {
		header = []string{"baris", "nama", "kolom", "nilai", "alasan"}
	}
	w.Write(header) //nolint:errcheck // checked by w.Error
	for _, r := range rows {
		var fields, values, reasons []string
		for _, p := range r.Problems {
			fields, values = append(fields, p.Field), append(values, p.Value)
			reasons = append(reasons, map[bool]string{true: p.ID, false: p.EN}[lang == "id"])
		}
		w.Write([]string{strconv.Itoa(r.Line), r.Name, strings.Join(fields, " | "), //nolint:errcheck // checked by w.Error
			strings.Join(values, " | "), strings.Join(reasons, " | ")})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// rowMap maps stream rows (numbered from 1 in send order, as the server numbers
// them) to spreadsheet lines. Rows not sent (rejected, repeated) and blank lines
// make the two numberings drift apart; rowMap keeps one entry per run of
// consecutive rows, so it grows with the gaps, not with the roster.
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

// csvRow returns the spreadsheet line of a stream row; a row outside the stream (a
// server bug) is returned unchanged.
func (m *rowMap) csvRow(stream int64) int64 {
	i := sort.Search(len(m.stream), func(i int) bool { return m.stream[i] > stream }) - 1
	if i < 0 {
		return stream
	}
	return m.csv[i] + stream - m.stream[i]
}
