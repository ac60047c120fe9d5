package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/proto"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/idn"
)

// rosterFormat documents the roster read by `knkctl import`. It is shown by
// `knkctl import --help`.
const rosterFormat = `Roster file format (CSV or Excel .xlsx):

  CSV: UTF-8 (a byte-order mark is allowed), LF or CRLF line endings, RFC 4180
  quoting; the separator (comma, semicolon or tab) is detected from the header.
  XLSX: the first sheet, or the one named by --sheet.
  A header row is required; column names are case-insensitive, in any order, in
  English or Indonesian (aliases below). An unknown or repeated column is an error.
  Cells are trimmed; an empty cell means "not given".

  name                 the person's name (required)            nama, nama_lengkap
  nik                  16-digit national id (required)          no_ktp, nomor_nik
  province_code        province of the workplace (required):    provinsi, kode_provinsi
                       its two-digit code or its name
  birth_date           YYYY-MM-DD; optional, must agree with    tanggal_lahir, tgl_lahir
                       the NIK
  gender               male/female, L/P, laki-laki/perempuan    jenis_kelamin, jk
  phone                mobile or landline, any common writing   no_hp, hp, telepon, telp
  email                                                         e_mail, surel
  regency                                                       kabupaten, kota, kabupaten_kota
  employer_name                                                 perusahaan, nama_perusahaan
  employer_nib         13-digit OSS business number             nib
  union_member_number                                           no_anggota, nomor_anggota
  bpjs_kpj             11-digit BPJS Ketenagakerjaan number     kpj, no_kpj
  federation           organizations/ID or ID; admin callers    federasi
                       only

  Cleaning never guesses: in a NIK, spaces, dots, hyphens and a leading ' are
  removed; names keep accents and apostrophes, inner spaces are collapsed, and
  zero-width or text-direction characters are removed with a warning. A problem
  with an optional field never rejects the row: the member is imported without
  that value and the row is listed in the warnings file. Rows that repeat an
  earlier row of the file are counted as duplicates of that line and not sent.

  Line numbers in the reports are the spreadsheet's own (the header is line 1).`

// Roster column names.
const (
	colName              = "name"
	colNIK               = "nik"
	colBirthDate         = "birth_date"
	colGender            = "gender"
	colPhone             = "phone"
	colEmail             = "email"
	colProvinceCode      = "province_code"
	colRegency           = "regency"
	colEmployerName      = "employer_name"
	colEmployerNIB       = "employer_nib"
	colUnionMemberNumber = "union_member_number"
	colBPJSKPJ           = "bpjs_kpj"
	colFederation        = "federation"
)

// rosterColumns lists every known column, in the order used in messages.
var rosterColumns = []string{
	colName, colNIK, colBirthDate, colGender, colPhone, colEmail, colProvinceCode,
	colRegency, colEmployerName, colEmployerNIB, colUnionMemberNumber, colBPJSKPJ,
	colFederation,
}

// columnAliases maps the header names federations' offices use to the columns.
var columnAliases = map[string]string{
	"nama": colName, "nama_lengkap": colName, "nama_anggota": colName,
	"no_ktp": colNIK, "nomor_nik": colNIK, "no_nik": colNIK, "nik_ktp": colNIK,
	"provinsi": colProvinceCode, "kode_provinsi": colProvinceCode, "province": colProvinceCode,
	"tanggal_lahir": colBirthDate, "tgl_lahir": colBirthDate,
	"jenis_kelamin": colGender, "jk": colGender,
	"no_hp": colPhone, "hp": colPhone, "telepon": colPhone, "telp": colPhone, "no_telp": colPhone,
	"no_telepon": colPhone, "nomor_hp": colPhone, "handphone": colPhone,
	"e_mail": colEmail, "surel": colEmail,
	"kabupaten": colRegency, "kota": colRegency, "kabupaten_kota": colRegency, "kab_kota": colRegency,
	"perusahaan": colEmployerName, "nama_perusahaan": colEmployerName, "employer": colEmployerName,
	"nib": colEmployerNIB, "nib_perusahaan": colEmployerNIB,
	"no_anggota": colUnionMemberNumber, "nomor_anggota": colUnionMemberNumber,
	"kpj": colBPJSKPJ, "no_kpj": colBPJSKPJ, "nomor_kpj": colBPJSKPJ,
	"federasi": colFederation,
}

var requiredColumns = []string{colName, colNIK, colProvinceCode}

// maxCell bounds one cell, so that a single broken row cannot make a request the
// server refuses, which would end the whole import stream.
const maxCell = 4096

var genders = map[string]knkv1.Cadre_Gender{
	"male": knkv1.Cadre_GENDER_MALE, "l": knkv1.Cadre_GENDER_MALE, "laki-laki": knkv1.Cadre_GENDER_MALE,
	"female": knkv1.Cadre_GENDER_FEMALE, "p": knkv1.Cadre_GENDER_FEMALE, "perempuan": knkv1.Cadre_GENDER_FEMALE,
}

// problem is one bad field of a row, as the clerk will read it in a report.
type problem struct {
	Field string // roster column, or "" for the whole row
	Value string // the cell as found; a NIK only by its last four digits
	EN    string // the reason in English
	ID    string // the reason in Indonesian
}

// rosterRow is one data row of a roster.
type rosterRow struct {
	Line     int    // the spreadsheet's line number (the header is line 1)
	Name     string // the person's name as cleaned, for reports
	Req      *knkv1.ImportCadresRequest
	Rejected []problem // not empty: the row is not sent
	Warnings []problem // the row is sent without these values
	DupOf    int       // not 0: the row repeats line DupOf and is not sent
}

// sheet yields the rows of a roster file: the cells of each non-blank row and
// its line number as a spreadsheet program shows it.
type sheet interface {
	next() (cells []string, line int, err error) // a *rowError for a row that cannot be read
}

// rowError is a row that cannot be read at all (e.g. broken CSV quoting).
type rowError struct {
	line int
	p    problem
}

func (e *rowError) Error() string { return e.p.EN }

// csvSheet reads CSV. csv.Reader counts physical lines; a spreadsheet shows a
// quoted cell with line breaks as one row, so those breaks are subtracted.
type csvSheet struct {
	r        *csv.Reader
	embedded int // line breaks inside quoted cells so far
}

func (s *csvSheet) next() ([]string, int, error) {
	for {
		rec, err := s.r.Read()
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			line := pe.StartLine - s.embedded
			return nil, line, &rowError{line, problem{
				EN: fmt.Sprintf("the line cannot be read as CSV (column %d: %v); check the quotes", pe.Column, pe.Err),
				ID: fmt.Sprintf("baris tidak dapat dibaca sebagai CSV (kolom %d): periksa tanda kutip", pe.Column)}}
		}
		if err != nil {
			return nil, 0, err
		}
		start, _ := s.r.FieldPos(0)
		line := start - s.embedded
		for _, cell := range rec {
			s.embedded += strings.Count(cell, "\n")
		}
		if !blank(rec) {
			return rec, line, nil
		}
	}
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// xlsxSheet reads one worksheet of a workbook row by row, without loading the
// sheet (excelize's Rows iterator streams the sheet XML).
type xlsxSheet struct {
	rows *excelize.Rows
	line int
}

func (s *xlsxSheet) next() ([]string, int, error) {
	for s.rows.Next() {
		s.line++
		cells, err := s.rows.Columns()
		if err != nil {
			return nil, 0, err
		}
		if !blank(cells) {
			return cells, s.line, nil
		}
	}
	if err := s.rows.Error(); err != nil {
		return nil, 0, err
	}
	return nil, 0, io.EOF
}

// openXLSX opens the named sheet (the first when name is "") of a workbook.
func openXLSX(r io.Reader, name string) (*excelize.File, sheet, error) {
	f, err := excelize.OpenReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("not a readable Excel workbook (.xlsx): %w", err)
	}
	if name == "" {
		name = f.GetSheetName(0)
	}
	if idx, err := f.GetSheetIndex(name); err != nil || idx < 0 {
		f.Close()
		return nil, nil, fmt.Errorf("the workbook has no sheet %q; its sheets: %s", name, strings.Join(f.GetSheetList(), ", "))
	}
	rows, err := f.Rows(name)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, &xlsxSheet{rows: rows}, nil
}

// newCSVReader returns a CSV reader of r after a byte-order mark, with the
// separator (comma, semicolon or tab) the header line uses most.
func newCSVReader(r io.Reader) *csv.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\uFEFF")) {
		br.Discard(3) //nolint:errcheck // the 3 bytes were just peeked
	}
	head, _ := br.Peek(64 << 10)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	cr := csv.NewReader(br)
	cr.Comma = sniffSeparator(head)
	cr.FieldsPerRecord = -1 // counted per row, so a bad row is a rejection
	cr.ReuseRecord = true
	return cr
}

// sniffSeparator is the separator that occurs most often outside quotes in the
// header line; comma on a tie or when there is none.
func sniffSeparator(line []byte) rune {
	counts := map[byte]int{}
	quoted := false
	for _, b := range line {
		switch {
		case b == '"':
			quoted = !quoted
		case !quoted && (b == ',' || b == ';' || b == '\t'):
			counts[b]++
		}
	}
	best := byte(',')
	for _, b := range []byte{';', '\t'} {
		if counts[b] > counts[best] {
			best = b
		}
	}
	return rune(best)
}

// headerColumns names each header cell's column; an unknown or repeated column is
// an error that names it. column maps a header cell to a column name.
func headerColumns(header []string, what string, known []string, column func(string) string) ([]string, error) {
	cols := make([]string, len(header))
	var unknown, repeated []string
	for i, h := range header {
		name := column(h)
		switch {
		case name == "" && strings.TrimSpace(h) == "":
			// an empty trailing header cell (spreadsheets add them): ignored
		case !slices.Contains(known, name):
			unknown = append(unknown, fmt.Sprintf("%q", strings.TrimSpace(h)))
		case slices.Contains(cols[:i], name):
			repeated = append(repeated, name)
		}
		cols[i] = name
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%s header: unknown column(s) %s; known columns: %s",
			what, strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	if len(repeated) > 0 {
		return nil, fmt.Errorf("%s header: repeated column(s) %s", what, strings.Join(repeated, ", "))
	}
	return cols, nil
}

// openCSV reads the header of a CSV file (what: "results") and returns the
// reader and each column's name as named by column.
func openCSV(r io.Reader, what string, known []string, column func(string) string) (*csv.Reader, []string, error) {
	cr := newCSVReader(r)
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s file is empty: a header row is required", what)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s header: %w", what, err)
	}
	cols, err := headerColumns(header, what, known, column)
	return cr, cols, err
}

// rosterColumn maps a header cell to a roster column: case, surrounding space and
// separators do not matter ("No. HP" is no_hp), Indonesian aliases are accepted.
func rosterColumn(h string) string {
	h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")))
	h = strings.Join(strings.FieldsFunc(h, func(r rune) bool { return r == ' ' || r == '-' || r == '.' || r == '_' || r == '/' }), "_")
	if c, ok := columnAliases[h]; ok {
		return c
	}
	return h
}

// rosterReader turns a roster into rows, one at a time; it keeps only what it
// needs to find repeated rows (a few dozen bytes per NIK).
type rosterReader struct {
	sheet sheet
	cols  []string // column name of each header position
	seen  map[uint64]firstRow
	last  []string // the cells of the row Next returned last
}

// cell is the value, as written, of column col in the row Next returned last.
func (rr *rosterReader) cell(col string) string {
	if i := slices.Index(rr.cols, col); i >= 0 && i < len(rr.last) {
		return strings.TrimSpace(rr.last[i])
	}
	return ""
}

type firstRow struct {
	line int
	sum  uint64 // hash of the cleaned row
}

// newRosterReader reads and checks the header of a roster sheet.
func newRosterReader(s sheet) (*rosterReader, error) {
	header, _, err := s.next()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("roster file is empty: a header row is required")
	}
	var re *rowError
	if errors.As(err, &re) {
		return nil, fmt.Errorf("roster header: %s", re.p.EN)
	}
	if err != nil {
		return nil, fmt.Errorf("roster header: %w", err)
	}
	cols, err := headerColumns(header, "roster", rosterColumns, rosterColumn)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, c := range requiredColumns {
		if !slices.Contains(cols, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("roster header: missing required column(s) %s", strings.Join(missing, ", "))
	}
	return &rosterReader{sheet: s, cols: cols, seen: map[uint64]firstRow{}}, nil
}

// newCSVRosterReader reads a roster CSV.
func newCSVRosterReader(r io.Reader) (*rosterReader, error) {
	return newRosterReader(&csvSheet{r: newCSVReader(r)})
}

// Next returns the next data row. It returns io.EOF after the last row, and any
// other error only when the file cannot be read at all.
func (rr *rosterReader) Next() (*rosterRow, error) {
	cells, line, err := rr.sheet.next()
	var re *rowError
	if errors.As(err, &re) {
		return &rosterRow{Line: re.line, Rejected: []problem{re.p}}, nil
	}
	if err != nil {
		return nil, err
	}
	rr.last = cells
	row := &rosterRow{Line: line}
	if n := rr.cell(colName); utf8.ValidString(n) {
		row.Name, _ = cleanText(n) // for the reports, even when the row is refused
	}
	if extra := cells[min(len(cells), len(rr.cols)):]; !blank(extra) {
		row.Rejected = append(row.Rejected, problem{
			EN: fmt.Sprintf("the row has %d cells, the header only %d", len(cells), len(rr.cols)),
			ID: fmt.Sprintf("baris berisi %d sel, sedangkan judul kolom hanya %d", len(cells), len(rr.cols))})
		return row, nil
	}
	c := &knkv1.Cadre{}
	for i, col := range rr.cols {
		if col == "" || i >= len(cells) {
			continue
		}
		v := strings.TrimSpace(cells[i])
		switch {
		case !utf8.ValidString(v):
			row.Rejected = append(row.Rejected, problem{Field: col,
				EN: "not valid UTF-8 text: save the file as \"CSV UTF-8\"",
				ID: "bukan teks UTF-8: simpan berkas sebagai \"CSV UTF-8\""})
			continue
		case len(v) > maxCell:
			row.Rejected = append(row.Rejected, problem{Field: col,
				EN: fmt.Sprintf("longer than %d bytes", maxCell), ID: fmt.Sprintf("lebih dari %d bita", maxCell)})
			continue
		case v == "":
			continue
		}
		switch col {
		case colName, colRegency, colEmployerName, colUnionMemberNumber:
			clean, stripped := cleanText(v)
			if stripped {
				row.Warnings = append(row.Warnings, problem{Field: col, Value: clean,
					EN: "invisible characters (zero-width or text-direction) were removed",
					ID: "karakter tak terlihat (lebar nol atau arah teks) dihapus"})
			}
			v = clean
		}
		switch col {
		case colName:
			c.DisplayName = v
		case colNIK:
			c.Nik = idn.CleanNIK(v)
			if scientific(v) {
				row.Rejected = append(row.Rejected, problem{Field: col, Value: idn.LastFour(v),
					EN: "the spreadsheet turned the NIK into a number like 3.17106E+15 and its digits are lost: format the column as Text and type the NIK again",
					ID: "NIK diubah spreadsheet menjadi angka seperti 3,17106E+15 dan digitnya hilang: format kolom sebagai Teks lalu ketik ulang NIK"})
			}
		case colBirthDate:
			c.BirthDate = v
		case colGender:
			g, ok := genders[strings.ToLower(v)]
			if !ok {
				row.Warnings = append(row.Warnings, problem{Field: col, Value: v,
					EN: "not imported: write male, female, L, P, laki-laki or perempuan",
					ID: "tidak diimpor: tulis L, P, laki-laki atau perempuan"})
				continue
			}
			c.Gender = g
		case colPhone:
			c.Phone = v
		case colEmail:
			c.Email = v
		case colProvinceCode:
			c.ProvinceCode = provinceCode(v)
		case colRegency:
			c.Regency = v
		case colEmployerName:
			employer(c).Name = v
		case colEmployerNIB:
			employer(c).Nib = v
		case colUnionMemberNumber:
			c.UnionMemberNumber = v
		case colBPJSKPJ:
			c.BpjsKpj = v
		case colFederation:
			c.Federation = orgName(v)
		}
	}
	if len(row.Rejected) > 0 {
		return row, nil
	}
	row.Req = &knkv1.ImportCadresRequest{Cadre: c}
	if key, ok := nikKey(c.Nik); ok {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
		h := fnv.New64a()
		h.Write(b)
		sum := h.Sum64()
		switch first, dup := rr.seen[key]; {
		case !dup:
			rr.seen[key] = firstRow{line, sum}
		case first.sum == sum:
			row.Req, row.DupOf = nil, first.line
		default:
			row.Req = nil
			row.Rejected = append(row.Rejected, problem{Field: colNIK, Value: idn.LastFour(c.Nik),
				EN: fmt.Sprintf("the same NIK as line %d, with different data: keep the right row and delete the other", first.line),
				ID: fmt.Sprintf("NIK sama dengan baris %d, tetapi datanya berbeda: simpan baris yang benar dan hapus yang lain", first.line)})
		}
	}
	return row, nil
}

// nikKey is a 16-digit NIK as a number, the key of the repeated-row check.
func nikKey(nik string) (uint64, bool) {
	if len(nik) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(nik, 10, 64)
	return n, err == nil
}

// scientific reports whether a cell is a number a spreadsheet wrote as 3.17E+15.
func scientific(v string) bool {
	i := strings.IndexAny(v, "eE")
	return i > 0 && strings.ContainsAny(v[:i], ".,") && strings.Trim(v[i+1:], "+0123456789") == ""
}

// provinceCode accepts a province's two-digit code or its exact name ("DKI
// Jakarta", case-insensitive); anything else is passed on for the server to refuse.
func provinceCode(v string) string {
	for _, p := range idn.Provinces() {
		if strings.EqualFold(p.Name, v) || strings.EqualFold("Provinsi "+p.Name, v) {
			return p.Code
		}
	}
	return v
}

// cleanText NFC-normalises s, removes zero-width and text-direction characters
// (reporting whether any were) and collapses runs of white space to one space.
// Letters, accents and apostrophes are kept.
func cleanText(s string) (string, bool) {
	stripped := false
	s = strings.Map(func(r rune) rune {
		if invisible(r) {
			stripped = true
			return -1
		}
		return r
	}, norm.NFC.String(s))
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " "), stripped
}

// invisible reports zero-width and bidirectional control characters.
func invisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2069,
		r == 0xFEFF, r == 0x061C, r == 0x00AD:
		return true
	}
	return false
}

func employer(c *knkv1.Cadre) *knkv1.Employer {
	if c.Employer == nil {
		c.Employer = &knkv1.Employer{}
	}
	return c.Employer
}

// csvField names a server-side rejection field (cadre.display_name, …) by its roster
// column (name, …) where there is one, so the reports speak the roster's terms.
func csvField(field string) string {
	f := strings.TrimPrefix(field, "cadre.")
	switch f {
	case "display_name":
		return colName
	case "employer.name":
		return colEmployerName
	case "employer.nib":
		return colEmployerNIB
	}
	if f != colName && slices.Contains(rosterColumns, f) {
		return f
	}
	return field
}
