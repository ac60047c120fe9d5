package certificate

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// foldName is the form in which two names compare equal when they differ only in
// case, accents and spacing: decomposed (NFD) with the combining marks dropped,
// lower-cased, words separated by one space.
func foldName(name string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(name) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// SameName reports whether a claimed name is the holder's, ignoring case,
// accents and repeated spaces.
func SameName(claimed, holder string) bool { return foldName(claimed) == foldName(holder) }

// Initials is a name reduced to the first letter of each word followed by a
// dot, e.g. "S. R." for "Siti Rahayu": nothing of the words' lengths remains.
func Initials(name string) string {
	var out []string
	for _, word := range strings.Fields(name) {
		for _, r := range norm.NFD.String(word) {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				out = append(out, string(unicode.ToUpper(r))+".")
				break
			}
		}
	}
	return strings.Join(out, " ")
}
