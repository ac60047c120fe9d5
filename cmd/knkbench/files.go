package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xuri/excelize/v2"
)

// importFiles measures `knkctl import` of a --rows roster written as a CSV file
// and as an .xlsx workbook, as a clerk runs it: rows/s end to end, and the peak
// RSS of the knkctl process and of knkd.
func (b *bench) importFiles(ctx context.Context) {
	names := func(kind string) (string, string, string) {
		return "import_" + kind + "_rows_per_s", "import_" + kind + "_client_rss_mb", "import_" + kind + "_server_rss_mb"
	}
	knkctl, err := knkctlBinary()
	for _, kind := range []string{"csv", "xlsx"} {
		rate, client, server := names(kind)
		if err == nil {
			err = b.importFile(ctx, knkctl, kind)
		}
		if !b.record(rate, err) {
			b.same(client, rate)
			b.same(server, rate)
		}
	}
}

// knkctlBinary is the knkctl beside this knkbench (make build puts both in bin/).
func knkctlBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(filepath.Dir(self), "knkctl")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%w: no knkctl beside knkbench (make build puts both in bin/)", errNothingToDo)
	}
	return bin, nil
}

func (b *bench) importFile(ctx context.Context, knkctl, kind string) error {
	rows := int64(b.cfg.Rows)
	first := b.nextRow.Add(rows) - rows
	path := filepath.Join(b.dir, "roster."+kind)
	write := writeRosterCSV
	if kind == "xlsx" {
		write = writeRosterXLSX
	}
	if err := write(path, first, rows); err != nil {
		return fmt.Errorf("write the %s roster: %w", kind, err)
	}
	defer os.Remove(path)
	if err := b.knkd.resetPeak(); err != nil {
		fmt.Fprintf(b.log, "knkbench: cannot reset the peak RSS (%v): it is the peak since the server started\n", err)
	}
	cmd := exec.CommandContext(ctx, knkctl, "--addr", b.knkd.grpcAddr, "import", "--batch-progress", "0", path)
	cmd.Env = append(os.Environ(), "KNK_KEY="+b.fedKey)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		return fmt.Errorf("knkctl import %s: %v: %s", kind, err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("created: %d\n", rows)) {
		return fmt.Errorf("knkctl import %s did not create every row: %s", kind, out)
	}
	b.stored += rows
	rate, client, server := "import_"+kind+"_rows_per_s", "import_"+kind+"_client_rss_mb", "import_"+kind+"_server_rss_mb"
	b.add(figure{Name: rate, Value: float64(rows) / elapsed.Seconds(), Unit: "rows/s",
		Note: fmt.Sprintf("%d rows, from reading the file to the last answer, in %v", rows, elapsed.Round(time.Millisecond))})
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return errors.New("no resource usage of the knkctl process")
	}
	b.add(figure{Name: client, Value: float64(ru.Maxrss) / 1024, Unit: "MB", Note: "knkctl's peak RSS (maxrss)"})
	peak, err := b.knkd.peakRSS()
	if !b.record(server, err) {
		return nil
	}
	note := "knkd's VmHWM during the import"
	if b.knkd.inProcess {
		note = "knkd runs in-process: the peak of the whole knkbench process; use --server-bin for the server alone"
	}
	b.add(figure{Name: server, Value: peak, Unit: "MB", Note: note})
	return nil
}

var rosterHeader = []string{"name", "nik", "phone", "email", "province_code", "regency", "employer_name",
	"employer_nib", "union_member_number", "bpjs_kpj"}

func rosterRecord(i int64) []string {
	c := cadreAt(i)
	return []string{c.DisplayName, c.Nik, c.Phone, c.Email, c.ProvinceCode, c.Regency, c.Employer.Name,
		c.Employer.Nib, c.UnionMemberNumber, c.BpjsKpj}
}

func writeRosterCSV(path string, first, rows int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(rosterHeader) //nolint:errcheck // checked by w.Error
	for i := range rows {
		w.Write(rosterRecord(first + i)) //nolint:errcheck // checked by w.Error
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}

func writeRosterXLSX(path string, first, rows int64) error {
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		return err
	}
	cells := make([]any, len(rosterHeader))
	for r := range rows + 1 {
		rec := rosterHeader
		if r > 0 {
			rec = rosterRecord(first + r - 1)
		}
		for i, v := range rec {
			cells[i] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, int(r)+1)
		if err := sw.SetRow(cell, cells); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.SaveAs(path)
}
