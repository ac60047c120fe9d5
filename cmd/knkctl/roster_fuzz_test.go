package main

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"
)

const fuzzHeader = "name,nik,birth_date,gender,phone,email,province_code,regency,employer_name,employer_nib,union_member_number,bpjs_kpj,federation\n"

// FuzzRoster feeds arbitrary bytes after a valid header. The parser must never
// panic; every data row must be exactly one of sent, rejected (with a reason) or a
// repeat of an earlier line; line numbers must grow; and every request must marshal
// (a request that does not, e.g. with invalid UTF-8, would end the whole import).
func FuzzRoster(f *testing.F) {
	f.Add([]byte("Siti,6171011203900003,1990-03-12,P,0812,s@x.id,61,Pontianak,PT A,1234567890123,1,12345678901,ksbsi\n"))
	f.Add([]byte("a,1,,,,,61,,,,,,\r\nb,2\r\n\"c\"\"\",3,,L,,,61,,,,,,organizations/x\n"))
	f.Add([]byte("\"unterminated,1,,,,,61,,,,,,\nx,2,,,,,61,,,,,,\n"))
	f.Add([]byte("a \"b\",1,,,,,61,,,,,,\n\n\n,,,,,,,,,,,,\n"))
	f.Add([]byte("\xff\xfe,1,,X,,,61,,,,,,\n"))
	f.Add([]byte("a,3171 0555 0890 0004,,,,,61\nb,'3171055508900004,,,,,61\na,3.17106E+15,,,,,61\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rr, err := newCSVRosterReader(io.MultiReader(bytes.NewReader([]byte(fuzzHeader)), bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("valid header refused: %v", err)
		}
		prev := 1
		for {
			row, err := rr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if row.Line <= prev || row.Line > bytes.Count(data, []byte("\n"))+2 {
				t.Fatalf("line %d after %d, from %d bytes", row.Line, prev, len(data))
			}
			prev = row.Line
			switch {
			case len(row.Rejected) > 0:
				if row.Req != nil || row.DupOf != 0 || row.Rejected[0].EN == "" || row.Rejected[0].ID == "" {
					t.Fatalf("line %d: bad rejection %+v", row.Line, row)
				}
			case row.DupOf != 0:
				if row.Req != nil || row.DupOf >= row.Line {
					t.Fatalf("line %d: bad repeat %+v", row.Line, row)
				}
			case row.Req == nil || row.Req.GetCadre() == nil:
				t.Fatalf("line %d: neither sent, rejected nor repeated", row.Line)
			default:
				if _, err := proto.Marshal(row.Req); err != nil {
					t.Fatalf("line %d: request does not marshal: %v", row.Line, err)
				}
			}
		}
	})
}
