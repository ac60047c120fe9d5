// Package idn validates and decodes Indonesian identifiers: the NIK (national identity
// number), province codes, the BPJS Ketenagakerjaan participant number (KPJ), the OSS
// business identification number (NIB) and mobile phone numbers.
//
// A NIK is personal data (Law No. 27 of 2022): no error returned by this package
// contains the input value, so errors may be logged safely.
package idn

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Province is one of Indonesia's 38 provinces.
type Province struct{ Code, Name string }

// provinces lists the Ministry of Home Affairs codes used in the NIK, in code order.
var provinces = []Province{
	{"11", "Aceh"}, {"12", "Sumatera Utara"}, {"13", "Sumatera Barat"}, {"14", "Riau"},
	{"15", "Jambi"}, {"16", "Sumatera Selatan"}, {"17", "Bengkulu"}, {"18", "Lampung"},
	{"19", "Kepulauan Bangka Belitung"}, {"21", "Kepulauan Riau"}, {"31", "DKI Jakarta"},
	{"32", "Jawa Barat"}, {"33", "Jawa Tengah"}, {"34", "DI Yogyakarta"}, {"35", "Jawa Timur"},
	{"36", "Banten"}, {"51", "Bali"}, {"52", "Nusa Tenggara Barat"}, {"53", "Nusa Tenggara Timur"},
	{"61", "Kalimantan Barat"}, {"62", "Kalimantan Tengah"}, {"63", "Kalimantan Selatan"},
	{"64", "Kalimantan Timur"}, {"65", "Kalimantan Utara"}, {"71", "Sulawesi Utara"},
	{"72", "Sulawesi Tengah"}, {"73", "Sulawesi Selatan"}, {"74", "Sulawesi Tenggara"},
	{"75", "Gorontalo"}, {"76", "Sulawesi Barat"}, {"81", "Maluku"}, {"82", "Maluku Utara"},
	{"91", "Papua"}, {"92", "Papua Barat"}, {"93", "Papua Selatan"}, {"94", "Papua Tengah"},
	{"95", "Papua Pegunungan"}, {"96", "Papua Barat Daya"},
}

// Provinces returns all 38 provinces in code order (11 Aceh … 96 Papua Barat Daya).
// Each call returns a fresh copy that the caller may modify.
func Provinces() []Province { return slices.Clone(provinces) }

// ProvinceName returns the name of the province with the given two-digit code,
// e.g. "61" -> "Kalimantan Barat", true. It returns "", false for an unknown code.
func ProvinceName(code string) (string, bool) {
	for _, p := range provinces {
		if p.Code == code {
			return p.Name, true
		}
	}
	return "", false
}

// ValidProvince reports whether code is one of the 38 province codes.
func ValidProvince(code string) bool {
	_, ok := ProvinceName(code)
	return ok
}

// NIK is a parsed Nomor Induk Kependudukan.
type NIK struct {
	Province  string    // digits 1-2: a province code (people in 93-96 may still hold 91/92)
	Regency   string    // digits 3-4: regency or city code, 01-99
	District  string    // digits 5-6: district (kecamatan) code, not 00
	BirthDate time.Time // digits 7-12: birth date, at UTC midnight
	Female    bool      // day field was 41-71 (40 added to the day)
	Serial    string    // digits 13-16: 0001-9999
}

var (
	errNIKFormat   = errors.New("NIK must be exactly 16 digits")
	errNIKProvince = errors.New("NIK province code (digits 1-2) is not a known province")
	errNIKRegency  = errors.New("NIK regency code (digits 3-4) must not be 00")
	errNIKDistrict = errors.New("NIK district code (digits 5-6) must not be 00")
	errNIKDate     = errors.New("NIK birth date (digits 7-12) does not form a real date")
	errNIKFuture   = errors.New("NIK birth date (digits 7-12) is in the future")
	errNIKSerial   = errors.New("NIK serial (digits 13-16) must not be 0000")
)

// ParseNIK validates s (exactly 16 ASCII digits, no spaces) and decodes it.
//
// The two-digit year resolves to the latest century that does not put the birth date
// after the calendar date of now (taken in now's location): with now = 2026-11-23, "26"
// with a date up to 23 Nov gives 2026, "26" with a later date gives 1926 and "90" gives
// 1990. The day and month must form a real calendar date in that year.
// Error messages never contain the input.
func ParseNIK(s string, now time.Time) (NIK, error) {
	if len(s) != 16 || !allDigits(s) {
		return NIK{}, errNIKFormat
	}
	n := NIK{Province: s[0:2], Regency: s[2:4], District: s[4:6], Serial: s[12:16]}
	switch {
	case !ValidProvince(n.Province):
		return NIK{}, errNIKProvince
	case n.Regency == "00":
		return NIK{}, errNIKRegency
	case n.District == "00":
		return NIK{}, errNIKDistrict
	}
	day, month, yy := num(s[6:8]), num(s[8:10]), num(s[10:12])
	if day > 40 {
		n.Female, day = true, day-40
	}
	ny, nm, nd := now.Date()
	today := time.Date(ny, nm, nd, 0, 0, 0, 0, time.UTC)
	century := ny / 100 * 100
	exists := false
	for _, y := range []int{century + yy, century + yy - 100} {
		d := time.Date(y, time.Month(month), day, 0, 0, 0, 0, time.UTC)
		if d.Day() != day || int(d.Month()) != month {
			continue // normalised by time.Date: not a real date in year y
		}
		exists = true
		if !d.After(today) {
			n.BirthDate = d
			break
		}
	}
	switch {
	case n.BirthDate.IsZero() && exists:
		return NIK{}, errNIKFuture
	case n.BirthDate.IsZero():
		return NIK{}, errNIKDate
	case n.Serial == "0000":
		return NIK{}, errNIKSerial
	}
	return n, nil
}

// Age returns the age in whole years on the calendar date of at (in at's location).
// Someone born on 29 February gets a year older on 1 March in non-leap years.
// The result is negative if at is more than a year before the birth date.
func (n NIK) Age(at time.Time) int {
	y, m, d := at.Date()
	age := y - n.BirthDate.Year()
	if m < n.BirthDate.Month() || m == n.BirthDate.Month() && d < n.BirthDate.Day() {
		age--
	}
	return age
}

// LastFour shows a NIK (or what was written for one) only by its last four
// characters: "3171055508900004" -> "************0004". Four or fewer characters
// are masked whole. The rest of a NIK must never be shown: digits 7-12 are the
// birth date and gender, so a longer mask can be undone from other fields.
func LastFour(s string) string {
	r := []rune(s)
	if len(r) <= 4 {
		return strings.Repeat("*", len(r))
	}
	return strings.Repeat("*", len(r)-4) + string(r[len(r)-4:])
}

// ValidKPJ reports whether s is a BPJS Ketenagakerjaan participant number (KPJ):
// exactly 11 ASCII digits.
func ValidKPJ(s string) bool { return len(s) == 11 && allDigits(s) }

// ValidNIB reports whether s is an OSS business identification number (NIB):
// exactly 13 ASCII digits.
func ValidNIB(s string) bool { return len(s) == 13 && allDigits(s) }

var (
	errPhoneChars  = errors.New("phone number may contain only digits, a leading +, spaces, dashes, dots, slashes and brackets")
	errPhonePrefix = errors.New("phone number must be Indonesian: 08…, 8… (mobile), 0 and an area code (landline), 62… or +62…")
	errPhoneLength = errors.New("phone number has too few or too many digits: a mobile has 9 to 12 digits after +62, a landline 8 to 11")
	errPhoneTwo    = errors.New("phone cell holds two numbers: keep one")
	errPhoneLost   = errors.New("phone number was turned into scientific notation (like 8.12346E+11) by a spreadsheet: its digits are lost; format the column as Text and export again")
)

var (
	// scientific is a number a spreadsheet rewrote as 8.12346E+11.
	scientific = regexp.MustCompile(`^[0-9]+([.,][0-9]+)?[eE][+]?[0-9]+$`)
	// otherNumber splits a cell that may hold two numbers.
	otherNumber = regexp.MustCompile(`\s*(?:[/,;&]|\batau\b|\bdan\b|\bor\b)\s*`)
)

// NormalizePhone accepts an Indonesian phone number as people write it and returns
// it in E.164 form, "+62…": mobiles as "08…", "8…", "628…", "+628…" or "+62 (0)8…",
// landlines as "0" and an area code ("(021) 555-1234"), "62…" or "+62…". Spaces,
// dashes, dots, slashes and brackets are separators; a leading apostrophe (a
// spreadsheet's text marker) is dropped. A mobile has 9 to 12 digits after +62, a
// landline 8 to 11. A cell holding two numbers, or a number a spreadsheet turned
// into scientific notation, is an error. Error messages never contain the input.
func NormalizePhone(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "'")
	if scientific.MatchString(s) {
		return "", errPhoneLost
	}
	if parts := otherNumber.Split(s, -1); len(parts) > 1 {
		long := 0
		for _, p := range parts {
			if digits(p) >= 7 {
				long++
			}
		}
		if long > 1 {
			return "", errPhoneTwo
		}
	}
	s = strings.Replace(s, "(0)", "", 1) // +62 (0)812…: the trunk 0 written for local callers
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -./()", r) {
			return -1
		}
		return r
	}, s)
	var national string
	switch {
	case strings.HasPrefix(s, "+62"):
		national = s[3:]
	case strings.HasPrefix(s, "62"):
		national = s[2:]
	case strings.HasPrefix(s, "0"):
		national = s[1:]
	case strings.HasPrefix(s, "8"): // a mobile written without its trunk 0
		national = s
	case strings.HasPrefix(s, "+") || allDigits(s):
		return "", errPhonePrefix
	default:
		return "", errPhoneChars
	}
	switch {
	case !allDigits(national):
		return "", errPhoneChars
	case national == "" || national[0] == '0' || national[0] == '1':
		return "", errPhonePrefix
	case national[0] == '8' && (len(national) < 9 || len(national) > 12):
		return "", errPhoneLength
	case national[0] != '8' && (len(national) < 8 || len(national) > 11):
		return "", errPhoneLength
	}
	return "+62" + national, nil
}

// CleanNIK removes what spreadsheets and people add to a NIK: surrounding space,
// a leading apostrophe (a spreadsheet's text marker), and spaces, dots and hyphens
// between digit groups ("3171 0555 0890 0004"). It changes no digit, so it never
// guesses; the result still has to pass ParseNIK.
func CleanNIK(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '.' || r == '-' {
			return -1
		}
		return r
	}, s)
	return strings.TrimLeft(s, "'")
}

// digits counts the ASCII digits of s.
func digits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// allDigits reports whether s consists only of ASCII digits (true for "").
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// num converts a string of ASCII digits to an int.
func num(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		v = v*10 + int(s[i]-'0')
	}
	return v
}
