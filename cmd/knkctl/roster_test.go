package main

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// readRoster parses a whole roster CSV; each row is a request, a rejection (its
// first problem, in English) or, for a repeated row, a rejection with field "dup".
func readRoster(t *testing.T, in string) ([]proto.Message, error) {
	t.Helper()
	rows, err := readRows(t, in)
	var out []proto.Message
	for _, r := range rows {
		switch {
		case r.Req != nil:
			out = append(out, r.Req)
		case len(r.Rejected) > 0:
			out = append(out, rej(int64(r.Line), r.Rejected[0].Field, r.Rejected[0].EN))
		default:
			out = append(out, rej(int64(r.Line), "dup", strconv.Itoa(r.DupOf)))
		}
	}
	return out, err
}

// readRows parses a whole roster CSV into rows, checking what every row promises.
func readRows(t *testing.T, in string) ([]*rosterRow, error) {
	t.Helper()
	rr, err := newCSVRosterReader(strings.NewReader(in))
	if err != nil {
		return nil, err
	}
	var out []*rosterRow
	prev := 1
	for {
		row, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if row.Line <= prev {
			t.Fatalf("line %d after line %d", row.Line, prev)
		}
		prev = row.Line
		sent, rejected, dup := row.Req != nil, len(row.Rejected) > 0, row.DupOf != 0
		if n := map[bool]int{true: 1}[sent] + map[bool]int{true: 1}[rejected] + map[bool]int{true: 1}[dup]; n != 1 {
			t.Fatalf("line %d: sent %v, rejected %v, duplicate %v; want exactly one", row.Line, sent, rejected, dup)
		}
		out = append(out, row)
	}
}

func cadre(c *knkv1.Cadre) *knkv1.ImportCadresRequest { return &knkv1.ImportCadresRequest{Cadre: c} }

func rej(row int64, field, reason string) *knkv1.ImportRejection {
	return &knkv1.ImportRejection{Row: row, Field: field, Reason: reason}
}

const (
	nik  = "6171011203900003"
	nik2 = "6171011203900011"
)

func TestRosterReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []proto.Message
		wantErr string // substring of the header error
	}{{
		name: "minimal",
		in:   "name,nik,province_code\nSiti Aminah," + nik + ",61\n",
		want: []proto.Message{cadre(&knkv1.Cadre{DisplayName: "Siti Aminah", Nik: nik, ProvinceCode: "61"})},
	}, {
		name: "every column",
		in: "name,nik,birth_date,gender,phone,email,province_code,regency,employer_name,employer_nib,union_member_number,bpjs_kpj,federation\n" +
			`"Budi ""Bud"" Santoso",` + nik + `,1990-03-12,L,081234567890,budi@example.id,61,Kota Pontianak,"PT Sawit, Tbk",1234567890123,KSBSI-0001,12345678901,organizations/ksbsi` + "\n",
		want: []proto.Message{cadre(&knkv1.Cadre{
			DisplayName: `Budi "Bud" Santoso`, Nik: nik, BirthDate: "1990-03-12", Gender: knkv1.Cadre_GENDER_MALE,
			Phone: "081234567890", Email: "budi@example.id", ProvinceCode: "61", Regency: "Kota Pontianak",
			Employer:          &knkv1.Employer{Name: "PT Sawit, Tbk", Nib: "1234567890123"},
			UnionMemberNumber: "KSBSI-0001", BpjsKpj: "12345678901", Federation: "organizations/ksbsi",
		})},
	}, {
		name: "BOM, CRLF, case-insensitive header in any order, whitespace",
		in:   "\uFEFF Province_Code ,NIK,Name,GENDER\r\n 61 , " + nik + " ,  Siti  ,p\r\n61," + nik2 + ",Ani,\r\n",
		want: []proto.Message{
			cadre(&knkv1.Cadre{DisplayName: "Siti", Nik: nik, ProvinceCode: "61", Gender: knkv1.Cadre_GENDER_FEMALE}),
			cadre(&knkv1.Cadre{DisplayName: "Ani", Nik: nik2, ProvinceCode: "61"}),
		},
	}, {
		name: "genders",
		in:   "name,nik,province_code,gender\na,1,61,Male\nb,2,61,FEMALE\nc,3,61,l\nd,4,61,Laki-Laki\ne,5,61,perempuan\n",
		want: []proto.Message{
			cadre(&knkv1.Cadre{DisplayName: "a", Nik: "1", ProvinceCode: "61", Gender: knkv1.Cadre_GENDER_MALE}),
			cadre(&knkv1.Cadre{DisplayName: "b", Nik: "2", ProvinceCode: "61", Gender: knkv1.Cadre_GENDER_FEMALE}),
			cadre(&knkv1.Cadre{DisplayName: "c", Nik: "3", ProvinceCode: "61", Gender: knkv1.Cadre_GENDER_MALE}),
			cadre(&knkv1.Cadre{DisplayName: "d", Nik: "4", ProvinceCode: "61", Gender: knkv1.Cadre_GENDER_MALE}),
			cadre(&knkv1.Cadre{DisplayName: "e", Nik: "5", ProvinceCode: "61", Gender: knkv1.Cadre_GENDER_FEMALE}),
		},
	}, {
		name: "an unknown gender word is left out (a warning), the row is still sent",
		in:   "name,nik,province_code,gender\na,1,61,X\nb,2,61,M\nc,3,61,P\n",
		want: []proto.Message{
			cadre(&knkv1.Cadre{DisplayName: "a", Nik: "1", ProvinceCode: "61"}),
			cadre(&knkv1.Cadre{DisplayName: "b", Nik: "2", ProvinceCode: "61"}),
			cadre(&knkv1.Cadre{DisplayName: "c", Nik: "3", ProvinceCode: "61", Gender: knkv1.Cadre_GENDER_FEMALE}),
		},
	}, {
		name: "short and long rows",
		in:   "name,nik,province_code\na,1\nb,2,61,extra\nc,3,61\n",
		want: []proto.Message{
			cadre(&knkv1.Cadre{DisplayName: "a", Nik: "1"}), // a short row: the server says what is missing
			rej(3, "", "the row has 4 cells, the header only 3"),
			cadre(&knkv1.Cadre{DisplayName: "c", Nik: "3", ProvinceCode: "61"}),
		},
	}, {
		name: "federation prefixing",
		in:   "name,nik,province_code,federation\na,1,61,ksbsi\nb,2,61,organizations/kspsi\nc,3,61,\n",
		want: []proto.Message{
			cadre(&knkv1.Cadre{DisplayName: "a", Nik: "1", ProvinceCode: "61", Federation: "organizations/ksbsi"}),
			cadre(&knkv1.Cadre{DisplayName: "b", Nik: "2", ProvinceCode: "61", Federation: "organizations/kspsi"}),
			cadre(&knkv1.Cadre{DisplayName: "c", Nik: "3", ProvinceCode: "61"}),
		},
	}, {
		name: "employer only when given",
		in:   "name,nik,province_code,employer_nib\na,1,61,1234567890123\nb,2,61,\n",
		want: []proto.Message{
			cadre(&knkv1.Cadre{DisplayName: "a", Nik: "1", ProvinceCode: "61", Employer: &knkv1.Employer{Nib: "1234567890123"}}),
			cadre(&knkv1.Cadre{DisplayName: "b", Nik: "2", ProvinceCode: "61"}),
		},
	}, {
		name: "empty required cells go to the server",
		in:   "name,nik,province_code\n,,61\n",
		want: []proto.Message{cadre(&knkv1.Cadre{ProvinceCode: "61"})},
	}, {
		name: "blank lines are skipped and not counted",
		in:   "name,nik,province_code\n\na,1,61\n\r\n\nb,2,61",
		want: []proto.Message{
			cadre(&knkv1.Cadre{DisplayName: "a", Nik: "1", ProvinceCode: "61"}),
			cadre(&knkv1.Cadre{DisplayName: "b", Nik: "2", ProvinceCode: "61"}),
		},
	}, {
		name: "quoted line break is one row",
		in:   "name,nik,province_code\n\"a\nb\",1,61\nc,2,61\n",
		want: []proto.Message{
			cadre(&knkv1.Cadre{DisplayName: "a b", Nik: "1", ProvinceCode: "61"}),
			cadre(&knkv1.Cadre{DisplayName: "c", Nik: "2", ProvinceCode: "61"}),
		},
	}, {
		name: "malformed quoting is a rejection, next row still read",
		in:   "name,nik,province_code\na \"b\" c,1,61\nd,2,61\n",
		want: []proto.Message{
			rej(2, "", `the line cannot be read as CSV (column 3: bare " in non-quoted-field); check the quotes`),
			cadre(&knkv1.Cadre{DisplayName: "d", Nik: "2", ProvinceCode: "61"}),
		},
	}, {
		name: "invalid UTF-8",
		in:   "name,nik,province_code\nSit\xe9,1,61\n",
		want: []proto.Message{rej(2, "name", `not valid UTF-8 text: save the file as "CSV UTF-8"`)},
	}, {
		name: "cell too long",
		in:   "name,nik,province_code\n" + strings.Repeat("a", maxCell+1) + ",1,61\n",
		want: []proto.Message{rej(2, "name", "longer than 4096 bytes")},
	}, {
		name:    "empty file",
		in:      "",
		wantErr: "header row is required",
	}, {
		name:    "BOM only",
		in:      "\uFEFF",
		wantErr: "header row is required",
	}, {
		name:    "unknown columns are named",
		in:      "name,nik,province_code,Nama Ibu,shoe_size\n",
		wantErr: `unknown column(s) "Nama Ibu", "shoe_size"`,
	}, {
		name:    "an alias and its column together are a repeated column",
		in:      "nama,name,nik,province_code\n",
		wantErr: "repeated column(s) name",
	}, {
		name:    "missing required column",
		in:      "name,phone\n",
		wantErr: "missing required column(s) nik, province_code",
	}, {
		name:    "repeated column",
		in:      "name,nik,NIK,province_code\n",
		wantErr: "repeated column(s) nik",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readRoster(t, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rows, want %d: %v", len(got), len(tt.want), got)
			}
			for i := range got {
				if !proto.Equal(got[i], tt.want[i]) {
					t.Errorf("row %d:\n got %T %s\nwant %T %s", i+1,
						got[i], prototext.Format(got[i]), tt.want[i], prototext.Format(tt.want[i]))
				}
			}
		})
	}
}

// Reasons never quote a cell (the value has its own column), and a NIK shows only
// its last four digits even where it is the offending value.
func TestRosterReasonsNeverQuoteCells(t *testing.T) {
	in := "name,nik,province_code,gender\na," + nik + ",61," + nik + "\nb," + nik + ",61,\nc,3.17101E+15,61,\n"
	rows, err := readRows(t, in)
	if err != nil {
		t.Fatal(err)
	}
	var problems []problem
	for _, r := range rows {
		problems = append(append(problems, r.Rejected...), r.Warnings...)
	}
	if len(problems) != 3 {
		t.Fatalf("%d problems, want the gender warning, the repeated NIK and the lost NIK: %+v", len(problems), problems)
	}
	for _, p := range problems {
		if strings.Contains(p.EN+p.ID, nik) || strings.Contains(p.EN+p.ID, "3.17101") {
			t.Errorf("reason %q / %q quotes a cell", p.EN, p.ID)
		}
		if p.Field == colNIK && strings.Trim(p.Value[:len(p.Value)-4], "*") != "" {
			t.Errorf("NIK value %q shows more than its last four digits", p.Value)
		}
	}
}

func TestRowMap(t *testing.T) {
	// CSV rows 1..10; rows 3, 4 and 8 rejected client-side.
	var m rowMap
	var sent int64
	want := map[int64]int64{}
	for csvRow := int64(1); csvRow <= 10; csvRow++ {
		if csvRow == 3 || csvRow == 4 || csvRow == 8 {
			continue
		}
		sent++
		m.add(sent, csvRow)
		want[sent] = csvRow
	}
	if len(m.stream) != 3 {
		t.Errorf("rowMap has %d runs, want 3", len(m.stream))
	}
	for s, c := range want {
		if got := m.csvRow(s); got != c {
			t.Errorf("csvRow(%d) = %d, want %d", s, got, c)
		}
	}
}

func TestCSVField(t *testing.T) {
	for in, want := range map[string]string{
		"cadre.display_name": "name", "cadre.nik": "nik", "cadre.employer.nib": "employer_nib",
		"cadre.province_code": "province_code", "cadre.name": "cadre.name", "": "", "cadre": "cadre",
	} {
		if got := csvField(in); got != want {
			t.Errorf("csvField(%q) = %q, want %q", in, got, want)
		}
	}
}
