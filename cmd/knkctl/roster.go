package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// rosterFormat documents the roster CSV read by `knkctl import`. It is shown by
// `knkctl import --help`.
//
// Roster CSV format:
//
//   - UTF-8, with or without a byte-order mark; LF or CRLF line endings; RFC 4180
//     quoting ("…" around cells holding commas, quotes or line breaks, "" for a quote).
//   - A header row is required. Column names are case-insensitive and may come in any
//     order; an unknown or repeated column name is an error that names it.
//   - Required columns: name, nik, province_code. Optional: birth_date, gender, phone,
//     email, regency, employer_name, employer_nib, union_member_number, bpjs_kpj,
//     federation.
//   - Cells are trimmed of surrounding whitespace; an empty cell means "not given".
//   - Row numbers count data records: 1 is the first record after the header. Blank
//     lines are skipped and not counted.
//   - A row that cannot be read at all (malformed quoting, a cell count different from
//     the header's, invalid UTF-8, a cell over 4096 bytes, an unknown gender word) is
//     rejected by knkctl itself and never sent; every other check (NIK, dates, phone,
//     province, …) is the server's.
const rosterFormat = `Roster CSV format:

  UTF-8 (a byte-order mark is allowed), LF or CRLF line endings, RFC 4180 quoting.
  A header row is required; column names are case-insensitive and in any order.
  An unknown or repeated column is an error. Cells are trimmed; empty = not given.

  name                 the person's name (required)
  nik                  16-digit national id (required)
  province_code        two-digit province of the workplace, e.g. 61 (required)
  birth_date           YYYY-MM-DD; optional, must agree with the NIK
  gender               male/female, L/P or laki-laki/perempuan; optional
  phone                08… or +628…
  email
  regency
  employer_name
  employer_nib         13-digit OSS business number
  union_member_number
  bpjs_kpj             11-digit BPJS Ketenagakerjaan number
  federation           organizations/ID or ID; admin callers only (federation
                       callers' rows always belong to their own federation)

  Rows are numbered from 1 = the first record after the header; blank lines are
  skipped. A row knkctl cannot read (bad quoting, wrong number of cells, invalid
  UTF-8, a cell over 4096 bytes, an unknown gender) is rejected without being sent;
  all other checks are the server's. Rejections are written as CSV: row,field,reason.`

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

var requiredColumns = []string{colName, colNIK, colProvinceCode}

// maxCell bounds one cell, so that a single broken row cannot make a request the
// server refuses, which would end the whole import stream.
const maxCell = 4096

var genders = map[string]knkv1.Cadre_Gender{
	"male": knkv1.Cadre_GENDER_MALE, "l": knkv1.Cadre_GENDER_MALE, "laki-laki": knkv1.Cadre_GENDER_MALE,
	"female": knkv1.Cadre_GENDER_FEMALE, "p": knkv1.Cadre_GENDER_FEMALE, "perempuan": knkv1.Cadre_GENDER_FEMALE,
}

// rosterReader turns a roster CSV into ImportCadresRequests, one row at a time.
type rosterReader struct {
	csv  *csv.Reader
	cols []string // column name of each header position
	row  int      // last data row returned
}

// openCSV reads the header of a CSV file (what: "roster", "results"), with or
// without a byte-order mark, and returns the reader and each column's name as
// named by column; an unknown or repeated column is an error naming it.
func openCSV(r io.Reader, what string, known []string, column func(string) string) (*csv.Reader, []string, error) {
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\uFEFF")) {
		br.Discard(3) //nolint:errcheck // the 3 bytes were just peeked
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // counted per row, so a bad row is a rejection
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s file is empty: a header row is required", what)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s header: %w", what, err)
	}
	cols := make([]string, len(header))
	var unknown, repeated []string
	for i, h := range header {
		name := column(h)
		switch {
		case !slices.Contains(known, name):
			unknown = append(unknown, fmt.Sprintf("%q", strings.TrimSpace(h)))
		case slices.Contains(cols[:i], name):
			repeated = append(repeated, name)
		}
		cols[i] = name
	}
	if len(unknown) > 0 {
		return nil, nil, fmt.Errorf("%s header: unknown column(s) %s; known columns: %s",
			what, strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	if len(repeated) > 0 {
		return nil, nil, fmt.Errorf("%s header: repeated column(s) %s", what, strings.Join(repeated, ", "))
	}
	return cr, cols, nil
}

// newRosterReader reads and checks the header of a roster CSV.
func newRosterReader(r io.Reader) (*rosterReader, error) {
	cr, cols, err := openCSV(r, "roster", rosterColumns, func(h string) string { return strings.ToLower(strings.TrimSpace(h)) })
	if err != nil {
		return nil, err
	}
	rr := &rosterReader{csv: cr, cols: cols}
	var missing []string
	for _, c := range requiredColumns {
		if !slices.Contains(rr.cols, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("roster header: missing required column(s) %s", strings.Join(missing, ", "))
	}
	return rr, nil
}

// Next returns the next data row (1 = the first record after the header) as either a
// request or a client-side rejection, never both. It returns io.EOF after the last
// row, and any other error only when the input cannot be read at all.
func (rr *rosterReader) Next() (row int, req *knkv1.ImportCadresRequest, rej *knkv1.ImportRejection, err error) {
	rec, err := rr.csv.Read()
	if errors.Is(err, io.EOF) {
		return 0, nil, nil, io.EOF
	}
	var pe *csv.ParseError
	if err != nil && !errors.As(err, &pe) {
		return 0, nil, nil, err
	}
	rr.row++
	reject := func(field, reason string) (int, *knkv1.ImportCadresRequest, *knkv1.ImportRejection, error) {
		return rr.row, nil, &knkv1.ImportRejection{Row: int64(rr.row), Field: field, Reason: reason}, nil
	}
	if pe != nil {
		return reject("", fmt.Sprintf("malformed CSV at line %d, column %d: %v", pe.Line, pe.Column, pe.Err))
	}
	if len(rec) != len(rr.cols) {
		return reject("", fmt.Sprintf("row has %d cells, the header has %d", len(rec), len(rr.cols)))
	}
	c := &knkv1.Cadre{}
	for i, cell := range rec {
		col := rr.cols[i]
		v := strings.TrimSpace(cell)
		switch {
		case !utf8.ValidString(v):
			return reject(col, "not valid UTF-8 (save the file as CSV UTF-8)")
		case len(v) > maxCell:
			return reject(col, fmt.Sprintf("longer than %d bytes", maxCell))
		case v == "":
			continue
		}
		switch col {
		case colName:
			c.DisplayName = v
		case colNIK:
			c.Nik = v
		case colBirthDate:
			c.BirthDate = v
		case colGender:
			g, ok := genders[strings.ToLower(v)]
			if !ok {
				return reject(col, "must be male, female, L, P, laki-laki or perempuan")
			}
			c.Gender = g
		case colPhone:
			c.Phone = v
		case colEmail:
			c.Email = v
		case colProvinceCode:
			c.ProvinceCode = v
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
	return rr.row, &knkv1.ImportCadresRequest{Cadre: c}, nil, nil
}

func employer(c *knkv1.Cadre) *knkv1.Employer {
	if c.Employer == nil {
		c.Employer = &knkv1.Employer{}
	}
	return c.Employer
}

// csvField names a server-side rejection field (cadre.display_name, …) by its roster
// column (name, …) where there is one, so the rejections file speaks the roster's terms.
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
