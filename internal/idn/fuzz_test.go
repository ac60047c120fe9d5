package idn

import (
	"fmt"
	"regexp"
	"strings"
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

var e164 = regexp.MustCompile(`^\+62(8[0-9]{8,11}|[2-79][0-9]{7,10})$`)

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"081234567890", "+6281234567890", "6281234567890", "(+62) 812-3456.7890", "0812345678",
		"081234567", "+628123456789012", "0212345678", "62081234567890", "0812/3456", "", "+",
		"(021) 555-1234", "+62 (0)812 3456 7890", "'0812345678", "812345678", "8.12346E+11", "0812 / 0857",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizePhone(s)
		if err != nil {
			return
		}
		if !e164.MatchString(out) {
			t.Fatalf("NormalizePhone(%q) = %q, not an Indonesian E.164 number", s, out)
		}
		if again, err := NormalizePhone(out); again != out || err != nil {
			t.Fatalf("NormalizePhone(%q) = %q, %v; want it unchanged", out, again, err)
		}
	})
}

func FuzzCleanNIK(f *testing.F) {
	for _, s := range []string{"3171055508900004", "3171 0555 0890 0004", "'3171055508900004", "3171.0555-0890 0004", "", "'", "''1"} {
		f.Add(s)
	}
	now := time.Date(2026, time.November, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		out := CleanNIK(s)
		if again := CleanNIK(out); again != out {
			t.Fatalf("CleanNIK(%q) = %q, but CleanNIK(%q) = %q: not idempotent", s, out, out, again)
		}
		if _, err := ParseNIK(out, now); err == nil && (digits(s) != 16 || !strings.Contains(s, out[:1])) {
			t.Fatalf("CleanNIK(%q) = %q accepted, but the input does not hold exactly those 16 digits", s, out)
		}
	})
}
