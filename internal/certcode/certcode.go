// Package certcode makes and reads certificate verification codes: 80 random
// bits written as 16 Crockford base32 symbols followed by Crockford's mod-37
// check symbol, shown in groups of four with hyphens, e.g. 7QF3-M9XA-2KDP-R4TW-J.
//
// The encoding is Douglas Crockford's (https://www.crockford.com/base32.html):
// the symbols 0-9 A-Z without I, L, O and U; on input, lower case is upper case,
// I and L read as 1 and O as 0, and hyphens and spaces are ignored. The check
// symbol is the value of the whole number modulo 37, written with the 32 symbols
// for 0-31 and *, ~, $, = and U for 32-36. Because 37 is a prime larger than
// the alphabet, any single mistyped symbol and any swap of two adjacent
// different symbols changes the check.
package certcode

import (
	"crypto/rand"
	"errors"
	"strings"
)

const (
	// Bits is how many random bits a code carries.
	Bits = 80
	// Symbols is how many data symbols a code has (5 bits each).
	Symbols = Bits / 5
	// Len is the length of a code without hyphens: data symbols and the check.
	Len = Symbols + 1
	// maxInput bounds what ParseCode reads, so that no input costs much work.
	maxInput = 64

	alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	checks   = alphabet + "*~$=U"
)

// Errors ParseCode returns.
var (
	// ErrLength: after dropping hyphens and spaces the code does not have 17 symbols.
	ErrLength = errors.New("a verification code has 17 symbols, e.g. 7QF3-M9XA-2KDP-R4TW-J")
	// ErrSymbol: a character that is not a symbol of the code.
	ErrSymbol = errors.New("a verification code holds only the digits 0-9 and the letters A-Z except U (and *, ~, $, = or U as its last symbol)")
	// ErrChecksum: well-formed, but the check symbol does not match: a symbol was mistyped.
	ErrChecksum = errors.New("the verification code's check symbol does not match: one of its symbols was mistyped")
)

// value maps an input byte to its symbol value, -1 for none; check symbols
// (*~$=U) have 32-36, so they are valid only in the last position.
var value = func() [256]int8 {
	var v [256]int8
	for i := range v {
		v[i] = -1
	}
	for i := 0; i < len(checks); i++ {
		v[checks[i]] = int8(i)
		v[strings.ToLower(checks[i : i+1])[0]] = int8(i)
	}
	for _, alias := range []struct {
		from string
		to   int8
	}{{"Oo", 0}, {"IiLl", 1}} {
		for i := 0; i < len(alias.from); i++ {
			v[alias.from[i]] = alias.to
		}
	}
	return v
}()

// New returns a fresh code made of 80 bits from crypto/rand, in its canonical
// form (groups of four, upper case, hyphens).
func New() string {
	var b [Bits / 8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return short)
	return Encode(b)
}

// Encode writes 80 bits as a code in canonical form.
func Encode(b [Bits / 8]byte) string {
	var syms [Len]byte
	var acc uint64 // bits not yet written, at the low end
	var n uint     // how many
	check := 0
	j := 0
	for _, x := range b {
		acc, n = acc<<8|uint64(x), n+8
		for n >= 5 {
			d := int(acc>>(n-5)) & 31
			n -= 5
			syms[j] = alphabet[d]
			j++
			check = (check*32 + d) % 37
		}
	}
	syms[Symbols] = checks[check]
	return FormatCode(string(syms[:]))
}

// FormatCode groups symbols in fours separated by hyphens. It does not check
// them; ParseCode does.
func FormatCode(symbols string) string {
	var sb strings.Builder
	for i := 0; i < len(symbols); i += 4 {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(symbols[i:min(i+4, len(symbols))])
	}
	return sb.String()
}

// ParseCode reads a code as a person may type it — any case, with or without
// hyphens and spaces, I or L for 1 and O for 0 — and returns its canonical form.
// It returns ErrLength or ErrSymbol for what cannot be a code, and ErrChecksum
// for a code whose check symbol does not match its data.
func ParseCode(s string) (string, error) {
	if len(s) > maxInput {
		return "", ErrLength
	}
	var (
		syms [maxInput]byte
		n    int
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '-' || c == ' ':
		case value[c] < 0:
			return "", ErrSymbol
		default:
			syms[n] = byte(value[c])
			n++
		}
	}
	if n != Len {
		return "", ErrLength
	}
	check := 0
	for _, d := range syms[:Symbols] {
		if d >= 32 {
			return "", ErrSymbol
		}
		check = (check*32 + int(d)) % 37
	}
	if int(syms[Symbols]) != check {
		return "", ErrChecksum
	}
	for i, d := range syms[:Len] {
		syms[i] = checks[d]
	}
	return FormatCode(string(syms[:Len])), nil
}
