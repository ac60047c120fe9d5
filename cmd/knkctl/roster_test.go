package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// readRoster parses a whole roster; each row is a request or a rejection.
func readRoster(t *testing.T, in string) ([]proto.Message, error) {
	t.Helper()
	rr, err := newRosterReader(strings.NewReader(in))
	if err != nil {
		return nil, err
	}
	var out []proto.Message
	for {
		row, req, rej, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if row != len(out)+1 {
			t.Fatalf("row = %d, want %d", row, len(out)+1)
		}
		if (req == nil) == (rej == nil) {
			t.Fatalf("row %d: req = %v, rej = %v; want exactly one", row, req, rej)
		}
		if req != nil {
			out = append(out, req)
		} else {
			out = append(out, rej)
		}
	}
}

func cadre(c *knkv1.Cadre) *knkv1.ImportCadresRequest { return &knkv1.ImportCadresRequest{Cadre: c} }

func rej(row int64, field, reason string) *knkv1.ImportRejection {
	return &knkv1.ImportRejection{Row: row, Field: field, Reason: reason}
}

const nik = "6171011203900003"

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
		in:   "\uFEFF Province_Code ,NIK,Name,GENDER\r\n 61 , " + nik + " ,  Siti  ,p\r\n61," + nik + ",Ani,\r\n",
		want: []proto.Message{
			cadre(&knkv1.Cadre{DisplayName: "Siti", Nik: nik, ProvinceCode: "61", Gender: knkv1.Cadre_GENDER_FEMALE}),
			cadre(&knkv1.Cadre{DisplayName: "Ani", Nik: nik, ProvinceCode: "61"}),
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
		name: "bad gender is a rejection, next row still read",
		in:   "name,nik,province_code,gender\na,1,61,X\nb,2,61,M\nc,3,61,P\n",
		want: []proto.Message{
			rej(1, "gender", "must be male, female, L, P, laki-laki or perempuan"),
			rej(2, "gender", "must be male, female, L, P, laki-laki or perempuan"),
			cadre(&knkv1.Cadre{DisplayName: "c", Nik: "3", ProvinceCode: "61", Gender: knkv1.Cadre_GENDER_FEMALE}),
		},
	}, {
		name: "short and long rows",
		in:   "name,nik,province_code\na,1\nb,2,61,extra\nc,3,61\n",
		want: []proto.Message{
			rej(1, "", "row has 2 cells, the header has 3"),
			rej(2, "", "row has 4 cells, the header has 3"),
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
		in:   "name,nik,province_code\n,,\n",
		want: []proto.Message{cadre(&knkv1.Cadre{})},
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
			cadre(&knkv1.Cadre{DisplayName: "a\nb", Nik: "1", ProvinceCode: "61"}),
			cadre(&knkv1.Cadre{DisplayName: "c", Nik: "2", ProvinceCode: "61"}),
		},
	}, {
		name: "malformed quoting is a rejection, next row still read",
		in:   "name,nik,province_code\na \"b\" c,1,61\nd,2,61\n",
		want: []proto.Message{
			rej(1, "", `malformed CSV at line 2, column 3: bare " in non-quoted-field`),
			cadre(&knkv1.Cadre{DisplayName: "d", Nik: "2", ProvinceCode: "61"}),
		},
	}, {
		name: "invalid UTF-8",
		in:   "name,nik,province_code\nSit\xe9,1,61\n",
		want: []proto.Message{rej(1, "name", "not valid UTF-8 (save the file as CSV UTF-8)")},
	}, {
		name: "cell too long",
		in:   "name,nik,province_code\n" + strings.Repeat("a", maxCell+1) + ",1,61\n",
		want: []proto.Message{rej(1, "name", "longer than 4096 bytes")},
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

func TestRosterErrorsNeverQuoteCells(t *testing.T) {
	in := "name,nik,province_code,gender\na," + nik + ",61," + nik + "\n"
	got, err := readRoster(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if r := got[0].(*knkv1.ImportRejection); strings.Contains(r.Reason, nik) {
		t.Errorf("reason %q quotes the cell", r.Reason)
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
