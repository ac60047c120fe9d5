// Package text is the one check every free-text field of the API goes through:
// valid UTF-8, NFC-normalised, trimmed, at most a documented number of
// characters, and free of the characters that hide or reorder what a reader sees
// (control characters, line breaks in single-line fields, bidirectional
// formatting and zero-width characters). A refusal names the class of the first
// bad character and its position, so a clerk can find and remove it.
package text

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Class is a kind of character the API refuses in free text.
type Class string

// The classes of refused characters.
const (
	InvalidUTF8 Class = "invalid UTF-8"
	Control     Class = "control character"
	LineBreak   Class = "line break"
	Bidi        Class = "bidirectional formatting character"
	ZeroWidth   Class = "zero-width character"
)

// Rule is what one field accepts.
type Rule struct {
	Max       int  // characters (Unicode code points after NFC); 0 means no text at all
	Required  bool // empty (after trimming) is refused
	Multiline bool // line feeds (U+000A) are allowed; CR and other controls never are
}

// Error says why a value was refused. Pos counts characters from 1.
type Error struct {
	Class Class
	Rune  rune
	Pos   int
	msg   string
}

func (e *Error) Error() string {
	if e.msg != "" {
		return e.msg
	}
	if e.Class == InvalidUTF8 {
		return fmt.Sprintf("is not valid UTF-8 text (at character %d)", e.Pos)
	}
	return fmt.Sprintf("must not contain a %s: U+%04X at character %d", e.Class, e.Rune, e.Pos)
}

// Classify returns the class of a refused character, or "" if r may appear in
// free text. Line feeds are LineBreak; the caller decides whether they may.
func Classify(r rune) Class {
	switch {
	case r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' || r == '\u0085':
		return LineBreak
	case unicode.IsControl(r):
		return Control
	case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069', r == '\u200E', r == '\u200F', r == '\u061C':
		return Bidi
	case r >= '\u200B' && r <= '\u200D', r == '\u2060', r == '\uFEFF':
		return ZeroWidth
	}
	return ""
}

// Clean checks s against r and returns it trimmed of surrounding white space and
// NFC-normalised. Positions in errors count characters of s as sent.
func Clean(s string, r Rule) (string, error) {
	if !utf8.ValidString(s) {
		pos := 1
		for i, c := range s {
			if _, size := utf8.DecodeRuneInString(s[i:]); c == utf8.RuneError && size <= 1 {
				break
			}
			pos++
		}
		return "", &Error{Class: InvalidUTF8, Pos: pos}
	}
	trimmed := strings.TrimLeftFunc(s, unicode.IsSpace)
	pos := utf8.RuneCountInString(s[:len(s)-len(trimmed)])
	trimmed = strings.TrimRightFunc(trimmed, unicode.IsSpace)
	for _, c := range trimmed {
		pos++
		cl := Classify(c)
		if cl == "" || (c == '\n' && r.Multiline) {
			continue
		}
		return "", &Error{Class: cl, Rune: c, Pos: pos}
	}
	out := norm.NFC.String(trimmed)
	switch n := utf8.RuneCountInString(out); {
	case n == 0 && r.Required:
		return "", &Error{msg: "is required"}
	case n > r.Max:
		return "", &Error{msg: fmt.Sprintf("must be at most %d characters (it has %d)", r.Max, n)}
	}
	return out, nil
}

// The rules of the API's free-text fields; README "Free text" lists them.
var (
	// Name: names of people and organisations, session titles, venues, employers.
	Name = Rule{Max: 200}
	// Place: a regency or city.
	Place = Rule{Max: 100}
	// Code: a number or code written by people, such as a union member number.
	Code = Rule{Max: 64}
	// Reason: the reason of a state change (withdrawal, cancellation,
	// revocation, transfer); several lines allowed.
	Reason = Rule{Max: 500, Required: true, Multiline: true}
)

// Must returns r with Required set.
func (r Rule) Must() Rule {
	r.Required = true
	return r
}
