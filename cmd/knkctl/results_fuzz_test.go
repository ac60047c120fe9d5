package main

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// FuzzResults feeds arbitrary bytes after a valid header, by cadre or by NIK. The
// parser must never panic, every data row must give exactly one of a result or a
// rejection, rows must count up by one from 1, every score must be a topic's name
// with a value in 0..100, and everything must marshal.
func FuzzResults(f *testing.F) {
	f.Add(false, []byte("01JD0000000000000000000001,yes,85,70,0,100\ncadres/x,tidak,,,,\n"))
	f.Add(true, []byte("6171011203900003,ya,100,0,,\r\n6171011203900004,1,101,-1,7a,\r\n"))
	f.Add(false, []byte("a,maybe,1,2,3,4\nb,yes\n\"c\"\"\",no,,,,\n"))
	f.Add(true, []byte("\"unterminated,1,2,3,4,5\nx,2,,,,\n\n\n,,,,,\n"))
	f.Add(false, []byte("\xff\xfe,yes,99999999999999999999,+1,0x10, 50 \n"))
	f.Fuzz(func(t *testing.T, byNIK bool, data []byte) {
		header := "cadre,attended,k3,pkwt,wage_scale,social_security\n"
		if byNIK {
			header = "NIK,Attended,K3,PKWT,Wage-Scale,TOPIC_SOCIAL_SECURITY\n"
		}
		rr, err := newResultsReader(io.MultiReader(bytes.NewReader([]byte(header)), bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("valid header refused: %v", err)
		}
		prev := 0
		for {
			r, err := rr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if r.Row != prev+1 {
				t.Fatalf("row %d after %d", r.Row, prev)
			}
			prev = r.Row
			if prev > len(data)+1 {
				t.Fatalf("%d rows from %d bytes", prev, len(data))
			}
			switch {
			case (r.Result == nil) == (r.Rej == nil):
				t.Fatalf("row %d: result = %v, rejection = %v; want exactly one", r.Row, r.Result, r.Rej)
			case r.Rej != nil:
				if r.Rej.GetRow() != int64(r.Row) || r.Rej.GetReason() == "" || r.NIK != "" {
					t.Fatalf("row %d: bad rejection %v (NIK set: %t)", r.Row, r.Rej, r.NIK != "")
				}
				if _, err := proto.Marshal(r.Rej); err != nil {
					t.Fatalf("row %d: rejection does not marshal: %v", r.Row, err)
				}
			default:
				if byNIK == (r.NIK == "") || byNIK != (r.Result.GetCadre() == "") {
					t.Fatalf("row %d: NIK set %t, cadre %q; by NIK: %t", r.Row, r.NIK != "", r.Result.GetCadre(), byNIK)
				}
				for name, score := range r.Result.GetScores() {
					if tp, ok := knkv1.Topic_value[name]; !ok || tp == 0 {
						t.Fatalf("row %d: score key %q is not a topic", r.Row, name)
					}
					if score < 0 || score > 100 {
						t.Fatalf("row %d: score %s = %d, outside 0..100", r.Row, name, score)
					}
				}
				if _, err := proto.Marshal(r.Result); err != nil {
					t.Fatalf("row %d: result does not marshal: %v", r.Row, err)
				}
			}
		}
	})
}
