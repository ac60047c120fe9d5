package certcode_test

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/knk-id/knk/internal/certcode"
)

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
const checkAlphabet = alphabet + "*~$=U"

// reference builds the code of b the long way, with math/big, straight from
// Crockford's definition: the symbols of the number, then number mod 37.
func reference(b [10]byte) string {
	n := new(big.Int).SetBytes(b[:])
	var syms []byte
	for i := 0; i < 16; i++ {
		d := new(big.Int).Rsh(n, uint(75-5*i))
		syms = append(syms, alphabet[new(big.Int).And(d, big.NewInt(31)).Int64()])
	}
	syms = append(syms, checkAlphabet[new(big.Int).Mod(n, big.NewInt(37)).Int64()])
	s := string(syms)
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:]
}

func TestEncodeMatchesCrockfordsDefinition(t *testing.T) {
	tests := []struct {
		name  string
		bytes [10]byte
		want  string
	}{
		{"zero", [10]byte{}, "0000-0000-0000-0000-0"},
		{"one", [10]byte{9: 1}, "0000-0000-0000-0001-1"},
		{"31 is the last plain symbol", [10]byte{9: 31}, "0000-0000-0000-000Z-Z"},
		{"32 mod 37 is the check symbol *", [10]byte{9: 32}, "0000-0000-0000-0010-*"},
		{"36 mod 37 is the check symbol U", [10]byte{9: 36}, "0000-0000-0000-0014-U"},
		{"37 mod 37 is 0", [10]byte{9: 37}, "0000-0000-0000-0015-0"},
		{"all ones", [10]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255}, ""},
		{"mixed", [10]byte{0x3b, 0x9e, 0x43, 0xa2, 0x92, 0xa9, 0x68, 0x6c, 0x5d, 0x3a}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = reference(tt.bytes)
			}
			if got := certcode.Encode(tt.bytes); got != want || got != reference(tt.bytes) {
				t.Errorf("Encode = %s, want %s (reference %s)", got, want, reference(tt.bytes))
			}
		})
	}
}

func TestNewIsRandomAndParses(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := certcode.New()
		if seen[c] {
			t.Fatalf("code %s came twice", c)
		}
		seen[c] = true
		if len(c) != 21 || strings.Count(c, "-") != 4 {
			t.Fatalf("code %q is not four groups of four and a check symbol", c)
		}
		if got, err := certcode.ParseCode(c); err != nil || got != c {
			t.Fatalf("ParseCode(%s) = %s, %v", c, got, err)
		}
	}
}

func TestParseCode(t *testing.T) {
	const code = "7QF3-M9XA-2KDP-R4TW-J"
	if _, err := certcode.ParseCode(code); err != nil {
		t.Fatalf("the example code: %v", err)
	}
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"canonical", code, code, nil},
		{"lower case", strings.ToLower(code), code, nil},
		{"no hyphens", "7QF3M9XA2KDPR4TWJ", code, nil},
		{"spaces and hyphens anywhere", " 7QF 3-M9XA 2KDP--R4TW J ", code, nil},
		{"I and L read as 1, O as 0", "0000-0000-0000-000i-l", "0000-0000-0000-0001-1", nil},
		{"o reads as 0", "oOoO-0000-0000-0000-o", "0000-0000-0000-0000-0", nil},
		{"check symbol U in lower case", "0000-0000-0000-0014-u", "0000-0000-0000-0014-U", nil},
		{"check symbol *", "0000-0000-0000-0010-*", "0000-0000-0000-0010-*", nil},
		{"empty", "", "", certcode.ErrLength},
		{"one symbol short", "7QF3-M9XA-2KDP-R4TW", "", certcode.ErrLength},
		{"one symbol long", code + "0", "", certcode.ErrLength},
		{"far too long", strings.Repeat("0", 100000), "", certcode.ErrLength},
		{"U is not a data symbol", "UQF3-M9XA-2KDP-R4TW-J", "", certcode.ErrSymbol},
		{"* is not a data symbol", "*QF3-M9XA-2KDP-R4TW-J", "", certcode.ErrSymbol},
		{"punctuation", "7QF3.M9XA.2KDP.R4TW.H", "", certcode.ErrSymbol},
		{"non-ASCII", "7QF3-M9XA-2KDP-R4TW-É", "", certcode.ErrSymbol},
		{"wrong check symbol", "7QF3-M9XA-2KDP-R4TW-H", "", certcode.ErrChecksum}, // the example: its check symbol is wrong
		{"two adjacent symbols swapped", "Q7F3-M9XA-2KDP-R4TW-J", "", certcode.ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certcode.ParseCode(tt.in)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("ParseCode(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

// TestEverySingleSymbolTypoIsCaught replaces each symbol of many codes with
// every other symbol that may stand there: none of them parses.
func TestEverySingleSymbolTypoIsCaught(t *testing.T) {
	for range 200 {
		code := strings.ReplaceAll(certcode.New(), "-", "")
		for pos := range len(code) {
			allowed := alphabet
			if pos == len(code)-1 {
				allowed = checkAlphabet
			}
			for _, sym := range allowed {
				if byte(sym) == code[pos] {
					continue
				}
				typo := code[:pos] + string(sym) + code[pos+1:]
				if _, err := certcode.ParseCode(typo); !errors.Is(err, certcode.ErrChecksum) {
					t.Fatalf("%s with %c at %d (%s): %v, want ErrChecksum", code, sym, pos, typo, err)
				}
			}
		}
	}
}

func TestAdjacentSwapsAreCaught(t *testing.T) {
	for range 200 {
		code := strings.ReplaceAll(certcode.New(), "-", "")
		for pos := range certcode.Symbols - 1 {
			if code[pos] == code[pos+1] {
				continue
			}
			swapped := code[:pos] + string(code[pos+1]) + string(code[pos]) + code[pos+2:]
			if _, err := certcode.ParseCode(swapped); !errors.Is(err, certcode.ErrChecksum) {
				t.Fatalf("%s with %d and %d swapped: %v", code, pos, pos+1, err)
			}
		}
	}
}

func TestFormatCode(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""}, {"ABC", "ABC"}, {"ABCD", "ABCD"}, {"ABCDE", "ABCD-E"}, {"7QF3M9XA2KDPR4TWJ", "7QF3-M9XA-2KDP-R4TW-J"},
	} {
		if got := certcode.FormatCode(tt.in); got != tt.want {
			t.Errorf("FormatCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseCode: whatever the input, ParseCode either refuses it with one of its
// three errors, or returns a canonical code that parses to itself and that the
// input spells (the same symbols, up to case, aliases, hyphens and spaces).
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"7QF3-M9XA-2KDP-R4TW-J", "0000-0000-0000-0014-u", "", "iiii llll oooo OOOO 1", "7QF3-M9XA-2KDP-R4TW-H", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := certcode.ParseCode(in)
		if err != nil {
			if got != "" || !(errors.Is(err, certcode.ErrLength) || errors.Is(err, certcode.ErrSymbol) || errors.Is(err, certcode.ErrChecksum)) {
				t.Fatalf("ParseCode(%q) = %q, %v", in, got, err)
			}
			return
		}
		again, err := certcode.ParseCode(got)
		if err != nil || again != got || len(got) != 21 {
			t.Fatalf("canonical %q of %q does not parse to itself: %q, %v", got, in, again, err)
		}
		norm := strings.NewReplacer("-", "", " ", "", "I", "1", "L", "1", "O", "0").Replace(strings.ToUpper(in))
		if norm != strings.ReplaceAll(got, "-", "") {
			t.Fatalf("ParseCode(%q) = %q: not the same symbols", in, got)
		}
	})
}
