package idn

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

func FuzzParseNIK(f *testing.F) {
	for _, s := range []string{
		"6171051508900003", "6171055508900004", "3101012902000001", "3101012411260001",
		"0071051508900003", "6100051508900003", "6171001508900003", "6171053102900003",
		"6171051508900000", "617105150890000", "6171 0515089000", "", "9601017112990001",
	} {
		f.Add(s)
	}
	now := time.Date(2026, time.November, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNIK(s, now)
		if err != nil {
			return
		}
		if len(s) != 16 || !allDigits(s) || !ValidProvince(n.Province) ||
			n.Regency == "00" || n.District == "00" || n.Serial == "0000" {
			t.Fatalf("ParseNIK(%q) accepted invalid input: %+v", s, n)
		}
		b := n.BirthDate
		if b.Location() != time.UTC || b.Hour() != 0 || b.Minute() != 0 || b.Second() != 0 || b.Nanosecond() != 0 || b.After(now) {
			t.Fatalf("ParseNIK(%q) birth date %v is not a past UTC midnight", s, b)
		}
		day := b.Day()
		if n.Female {
			day += 40
		}
		enc := n.Province + n.Regency + n.District + fmt.Sprintf("%02d%02d%02d", day, int(b.Month()), b.Year()%100) + n.Serial
		if enc != s {
			t.Fatalf("ParseNIK(%q) re-encodes to %q", s, enc)
		}
	})
}

var e164 = regexp.MustCompile(`^\+628[0-9]{8,11}$`)

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"081234567890", "+6281234567890", "6281234567890", "(+62) 812-3456.7890", "0812345678",
		"081234567", "+628123456789012", "0212345678", "62081234567890", "0812/3456", "", "+",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizePhone(s)
		if err != nil {
			return
		}
		if !e164.MatchString(out) {
			t.Fatalf("NormalizePhone(%q) = %q, not E.164 +628…", s, out)
		}
		if again, err := NormalizePhone(out); again != out || err != nil {
			t.Fatalf("NormalizePhone(%q) = %q, %v; want it unchanged", out, again, err)
		}
	})
}
