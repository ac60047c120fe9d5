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
// panic, every data row must give exactly one of a request or a rejection, rows must
// count up by one from 1, and every request must marshal (a request that does not,
// e.g. with invalid UTF-8, would end the whole import stream).
func FuzzRoster(f *testing.F) {
	f.Add([]byte("Siti,6171011203900003,1990-03-12,P,0812,s@x.id,61,Pontianak,PT A,1234567890123,1,12345678901,ksbsi\n"))
	f.Add([]byte("a,1,,,,,61,,,,,,\r\nb,2\r\n\"c\"\"\",3,,L,,,61,,,,,,organizations/x\n"))
	f.Add([]byte("\"unterminated,1,,,,,61,,,,,,\nx,2,,,,,61,,,,,,\n"))
	f.Add([]byte("a \"b\",1,,,,,61,,,,,,\n\n\n,,,,,,,,,,,,\n"))
	f.Add([]byte("\xff\xfe,1,,X,,,61,,,,,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rr, err := newRosterReader(io.MultiReader(bytes.NewReader([]byte(fuzzHeader)), bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("valid header refused: %v", err)
		}
		prev := 0
		for {
			row, req, rej, err := rr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if row != prev+1 {
				t.Fatalf("row %d after %d", row, prev)
			}
			prev = row
			if prev > len(data)+1 {
				t.Fatalf("%d rows from %d bytes", prev, len(data))
			}
			switch {
			case (req == nil) == (rej == nil):
				t.Fatalf("row %d: req = %v, rej = %v; want exactly one", row, req, rej)
			case rej != nil:
				if rej.GetRow() != int64(row) || rej.GetReason() == "" {
					t.Fatalf("row %d: bad rejection %v", row, rej)
				}
				if _, err := proto.Marshal(rej); err != nil {
					t.Fatalf("row %d: rejection does not marshal: %v", row, err)
				}
			default:
				if req.GetCadre() == nil {
					t.Fatalf("row %d: request without a cadre", row)
				}
				if _, err := proto.Marshal(req); err != nil {
					t.Fatalf("row %d: request does not marshal: %v", row, err)
				}
			}
		}
	})
}
