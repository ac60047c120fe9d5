package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"google.golang.org/protobuf/proto"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// Rosters as federations' offices export them (issue 13): Excel with Indonesian
// regional settings writes semicolons and a BOM, headers are in Indonesian, NIKs
// carry separators or Excel's text marker.
func TestRosterAsOfficesWriteIt(t *testing.T) {
	in := "\uFEFFNama;NIK;No. HP;Provinsi;Kabupaten/Kota;Perusahaan;NIB;KPJ;No Anggota;;\r\n" +
		"  Siti   Ra\u200bhayu ;3171 0555 0890 0004;'0812-1111-2222;DKI Jakarta;Jakarta  Timur;PT Maju;1234567890123;12345678901;A-1;;\r\n" +
		"Budi D'Santoso;'3171051508900003;;31;;;;;;;\r\n" +
		";;;;;;;;;;\r\n" + // an empty spreadsheet row
		"Budi D'Santoso;'3171051508900003;;31;;;;;;;\r\n" + // a repeat of line 3
		"Budi Lain;3171.0515.0890.0003;;31;;;;;;;\r\n" + // the same NIK, other data
		"Ani;3.17106E+15;;31;;;;;;;\r\n"
	rows, err := readRows(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5 (the empty row skipped)", len(rows))
	}
	want := &knkv1.Cadre{DisplayName: "Siti Rahayu", Nik: "3171055508900004", Phone: "'0812-1111-2222", ProvinceCode: "31",
		Regency: "Jakarta Timur", Employer: &knkv1.Employer{Name: "PT Maju", Nib: "1234567890123"},
		BpjsKpj: "12345678901", UnionMemberNumber: "A-1"}
	if r := rows[0]; r.Line != 2 || !proto.Equal(r.Req.GetCadre(), want) || len(r.Warnings) != 1 || r.Warnings[0].Field != colName {
		t.Errorf("line 2: %+v (cadre %v), want %v with one warning about the invisible character in the name", r, r.Req.GetCadre(), want)
	}
	if r := rows[1]; r.Line != 3 || r.Req.GetCadre().GetDisplayName() != "Budi D'Santoso" || r.Req.GetCadre().GetNik() != "3171051508900003" {
		t.Errorf("line 3: %+v, want Budi D'Santoso with the apostrophe and the NIK cleaned", r.Req.GetCadre())
	}
	if r := rows[2]; r.Line != 5 || r.DupOf != 3 || r.Req != nil {
		t.Errorf("line 5: %+v, want a repeat of line 3 that is not sent", r)
	}
	if r := rows[3]; r.Line != 6 || len(r.Rejected) != 1 || !strings.Contains(r.Rejected[0].EN, "same NIK as line 3") ||
		r.Rejected[0].Value != "************0003" {
		t.Errorf("line 6: %+v, want rejected: the same NIK as line 3 with different data, the NIK masked", r)
	}
	if r := rows[4]; r.Line != 7 || len(r.Rejected) != 1 || !strings.Contains(r.Rejected[0].EN, "scientific") && !strings.Contains(r.Rejected[0].EN, "3.17106E+15") {
		t.Errorf("line 7: %+v, want rejected: the NIK was turned into a number", r)
	}
}

func TestRosterSeparatorsAndLineNumbers(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"tab", "name\tnik\tprovince_code\nA\t" + nik + "\t61\n\nB\t" + nik2 + "\t61\n"},
		{"semicolon, quoted separators", "name;nik;province_code\n\"A; X\";" + nik + ";61\n\nB;" + nik2 + ";61\n"},
		{"comma, quoted line break", "name,nik,province_code\n\"A\nX\"," + nik + ",61\nB," + nik2 + ",61\n"},
	} {
		rows, err := readRows(t, tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// A spreadsheet shows a blank line as a row, and a quoted line break inside
		// one row; lines are counted as it shows them.
		wantLine := 4
		if strings.Contains(tc.name, "line break") {
			wantLine = 3
		}
		if len(rows) != 2 || rows[0].Line != 2 || rows[1].Line != wantLine || rows[1].Req.GetCadre().GetNik() != nik2 {
			t.Errorf("%s: rows %+v, want lines 2 and %d", tc.name, rows, wantLine)
		}
	}
}

// writeXLSX writes a workbook with one sheet of rows, as a clerk's Excel would.
func writeXLSX(t testing.TB, path, sheet string, rows [][]any) {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	if sheet != "Sheet1" {
		if err := f.SetSheetName("Sheet1", sheet); err != nil {
			t.Fatal(err)
		}
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

func TestRosterFromXLSX(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anggota.xlsx")
	writeXLSX(t, path, "Anggota", [][]any{
		{"Nama", "NIK", "Provinsi", "HP"},
		{"Siti Rahayu", "3171055508900004", "31", 81211112222}, // a phone Excel stored as a number
		{nil},
		{"Budi Santoso", "3171051508900003", "DKI Jakarta"},
	})
	rr, closeRoster, err := openRoster(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeRoster()
	var got []*rosterRow
	for {
		row, err := rr.Next()
		if err != nil {
			break
		}
		got = append(got, row)
	}
	if len(got) != 2 || got[0].Line != 2 || got[1].Line != 4 ||
		got[0].Req.GetCadre().GetPhone() != "81211112222" || got[1].Req.GetCadre().GetProvinceCode() != "31" {
		t.Fatalf("rows %+v, want lines 2 and 4 with the phone as Excel stored it and the province by name", got)
	}
	if _, _, err := openRoster(path, "Nope"); err == nil || !strings.Contains(err.Error(), `no sheet "Nope"; its sheets: Anggota`) {
		t.Errorf("a missing sheet: %v, want the sheets listed", err)
	}
	csvPath := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(csvPath, []byte("name,nik,province_code\n"), 0o600)
	if _, _, err := openRoster(csvPath, "Anggota"); err == nil || !strings.Contains(err.Error(), "--sheet is for Excel") {
		t.Errorf("--sheet with a CSV: %v", err)
	}
}
