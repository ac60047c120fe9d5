// Command gen-test-roster writes the test rosters of cmd/knkctl/testdata: 10,000
// members as a federation's office exports them, in three files (comma CSV;
// semicolon CSV with a BOM and CRLF, as Excel with Indonesian settings writes it;
// and an .xlsx workbook), with every fault of issue 13 at known lines, and
// expected.json saying what the import must make of each line.
//
//	go run ./scripts/gen-test-roster -o cmd/knkctl/testdata
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/xuri/excelize/v2"
)

// expected is what importing the roster must give.
type expected struct {
	Rows      int `json:"rows"`
	Created   int `json:"created"`
	Warned    int `json:"warned"`
	Duplicate int `json:"duplicate"`
	Rejected  int `json:"rejected"`
	// Lines not simply created: line -> "warned", "duplicate:N" or "rejected:FIELD".
	Lines map[int]string `json:"lines"`
}

func main() {
	out := flag.String("o", "cmd/knkctl/testdata", "output folder")
	n := flag.Int("n", 10000, "data rows")
	flag.Parse()
	if err := write(*out, *n); err != nil {
		fmt.Fprintln(os.Stderr, "gen-test-roster:", err)
		os.Exit(1)
	}
}

var header = []string{"Nama", "NIK", "No. HP", "Provinsi", "Kabupaten/Kota", "Perusahaan", "NIB", "KPJ", "Jenis Kelamin", "Surel"}

// nik is the i-th distinct valid NIK: a man or woman born 1970–1999 in Jakarta.
func nik(i int) string {
	day := 1 + i%28
	if i%2 == 1 {
		day += 40 // women
	}
	return fmt.Sprintf("3171%02d%02d%02d%02d%04d", 1+(i/9999)%99, day, 1+(i/28)%12, 70+i%30, 1+i%9999)
}

// row returns the cells of data row i and what the import must make of it.
// Each fault recurs at a fixed period, so the counts are exact.
func row(i int) ([]string, string) {
	r := []string{fmt.Sprintf("Anggota %d", i), nik(i), "0812-3456-7890", "31", "Jakarta Timur",
		"PT Maju Jaya", "1234567890123", "12345678901", "L", fmt.Sprintf("anggota%d@contoh.co.id", i)}
	if i%2 == 1 {
		r[8] = "P"
	}
	switch i % 50 {
	// Written as people and spreadsheets write them, and clean: created.
	case 1:
		r[2] = "812-3456-7890" // a mobile without its 0
	case 2:
		r[2] = "(021) 555-1234" // a landline
	case 3:
		r[2] = "'081234567890" // Excel's text marker
	case 4:
		r[2] = "+62 (0)812 3456 7890"
	case 5:
		r[1] = r[1][:4] + " " + r[1][4:8] + " " + r[1][8:12] + " " + r[1][12:] // 3171 0555 0890 0004
	case 6:
		r[1] = "'" + r[1]
	case 7:
		r[0] = "Siti Nur'aini  Rahayu" // an apostrophe and a double space
	case 8:
		r[3] = "DKI Jakarta" // the province by name
	// Optional values that cannot be kept: the member is imported, with a warning.
	case 10:
		r[2] = "0812-1111-2222 / 0857-3333-4444" // two numbers
		return r, "warned"
	case 11:
		r[2] = "8.12346E+11" // lost to scientific notation
		return r, "warned"
	case 12:
		r[0] = "Budi\u200b Santoso\u202e" // invisible characters
		return r, "warned"
	case 13:
		r[6] = "12345" // not a NIB
		return r, "warned"
	case 14:
		r[7] = "KPJ-1" // not a KPJ
		return r, "warned"
	case 15:
		r[9] = "bukan surel"
		return r, "warned"
	case 16:
		r[8] = "X"
		return r, "warned"
	// Rows that cannot be imported.
	case 20:
		r[1] = r[1][:15]
		return r, "rejected:nik"
	case 21:
		r[1] = "3.17106E+15"
		return r, "rejected:nik"
	case 22:
		r[0] = ""
		return r, "rejected:name"
	case 23:
		r[3] = "99"
		return r, "rejected:province_code"
	case 24:
		r[1] = fmt.Sprintf("3171011508%02d%04d", 15, 1+i%9999) // born 2015: under 18
		return r, "rejected:nik"
	}
	return r, "created"
}

func write(dir string, n int) error {
	exp := expected{Lines: map[int]string{}}
	var rows [][]string
	line := 1
	for i := 0; len(rows) < n; i++ {
		r, what := row(i)
		rows = append(rows, r)
		line++
		exp.Lines[line] = what
		// Every 97th row is exported twice (a duplicate of the line before), every
		// 101st is followed by a row with its NIK and another name (refused).
		if i%97 == 0 && len(rows) < n && strings.HasPrefix(what, "created") {
			rows = append(rows, r)
			line++
			exp.Lines[line] = fmt.Sprintf("duplicate:%d", line-1)
		}
		if i%101 == 0 && len(rows) < n && strings.HasPrefix(what, "created") {
			other := append([]string(nil), r...)
			other[0] += " Kedua"
			rows = append(rows, other)
			line++
			exp.Lines[line] = "rejected:nik"
		}
	}
	exp.Rows = len(rows)
	exp.Created = len(rows)
	for l, what := range exp.Lines {
		if what == "created" {
			delete(exp.Lines, l)
		}
		switch {
		case what == "created":
		case what == "warned":
			exp.Warned++
		case strings.HasPrefix(what, "duplicate"):
			exp.Duplicate++
			exp.Created--
		default:
			exp.Rejected++
			exp.Created--
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		comma rune
		bom   bool
		crlf  bool
	}{{"roster-comma.csv", ',', false, false}, {"roster-semicolon.csv", ';', true, true}} {
		var b bytes.Buffer
		if f.bom {
			b.WriteString("\uFEFF")
		}
		w := csv.NewWriter(&b)
		w.Comma, w.UseCRLF = f.comma, f.crlf
		w.Write(header)  //nolint:errcheck // checked by w.Error
		w.WriteAll(rows) //nolint:errcheck // checked by w.Error
		if err := w.Error(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if err := writeXLSX(filepath.Join(dir, "roster.xlsx"), rows); err != nil {
		return err
	}
	b, err := json.MarshalIndent(exp, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "roster-expected.json"), append(b, '\n'), 0o644)
}

func writeXLSX(path string, rows [][]string) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", "Anggota"); err != nil {
		return err
	}
	sw, err := f.NewStreamWriter("Anggota")
	if err != nil {
		return err
	}
	for i, r := range append([][]string{header}, rows...) {
		cells := make([]any, len(r))
		for j, c := range r {
			cells[j] = c
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, cells); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	if err := f.SaveAs(path); err != nil {
		return err
	}
	return os.Chmod(path, 0o644)
}
