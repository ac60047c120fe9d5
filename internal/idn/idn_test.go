package idn

import (
	"testing"
	"time"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// now is the reference "today" used by the tests: 23 Nov 2026, midday UTC.
var now = time.Date(2026, time.November, 23, 12, 0, 0, 0, time.UTC)

func TestParseNIKAccepts(t *testing.T) {
	wib := time.FixedZone("WIB", 7*3600)
	tests := []struct {
		name string
		in   string
		now  time.Time
		want NIK
	}{
		{"domain example man", "6171051508900003", now,
			NIK{"61", "71", "05", date(1990, time.August, 15), false, "0003"}},
		{"domain example woman", "6171055508900004", now,
			NIK{"61", "71", "05", date(1990, time.August, 15), true, "0004"}},
		{"old Papua prefix", "9101011501850001", now,
			NIK{"91", "01", "01", date(1985, time.January, 15), false, "0001"}},
		{"newest province", "9601010101000001", now,
			NIK{"96", "01", "01", date(2000, time.January, 1), false, "0001"}},
		{"regency 99 serial 9999", "3299990101019999", now,
			NIK{"32", "99", "99", date(2001, time.January, 1), false, "9999"}},
		{"female day 41", "3101014101900001", now,
			NIK{"31", "01", "01", date(1990, time.January, 1), true, "0001"}},
		{"female day 71", "3101017101900001", now,
			NIK{"31", "01", "01", date(1990, time.January, 31), true, "0001"}},
		// Century resolution around now = 2026-11-23.
		{"born today", "3101012311260001", now,
			NIK{"31", "01", "01", date(2026, time.November, 23), false, "0001"}},
		{"born tomorrow 100 years ago", "3101012411260001", now,
			NIK{"31", "01", "01", date(1926, time.November, 24), false, "0001"}},
		{"later this year", "3101013112260001", now,
			NIK{"31", "01", "01", date(1926, time.December, 31), false, "0001"}},
		{"earlier this year", "3101010101260001", now,
			NIK{"31", "01", "01", date(2026, time.January, 1), false, "0001"}},
		{"next year digits", "3101010101270001", now,
			NIK{"31", "01", "01", date(1927, time.January, 1), false, "0001"}},
		{"year 00", "3101010101000001", now,
			NIK{"31", "01", "01", date(2000, time.January, 1), false, "0001"}},
		{"year 99", "3101010101990001", now,
			NIK{"31", "01", "01", date(1999, time.January, 1), false, "0001"}},
		{"today in now's own zone", "3101012311260001", time.Date(2026, time.November, 23, 1, 0, 0, 0, wib),
			NIK{"31", "01", "01", date(2026, time.November, 23), false, "0001"}},
		// Leap years.
		{"29 Feb 2000", "3101012902000001", now,
			NIK{"31", "01", "01", date(2000, time.February, 29), false, "0001"}},
		{"29 Feb 2024 female", "3101016902240001", now,
			NIK{"31", "01", "01", date(2024, time.February, 29), true, "0001"}},
		{"29 Feb 1996", "3101012902960001", now,
			NIK{"31", "01", "01", date(1996, time.February, 29), false, "0001"}},
		{"29 Feb 00 falls back to a leap century", "3101012902000001", time.Date(2100, time.March, 1, 0, 0, 0, 0, time.UTC),
			NIK{"31", "01", "01", date(2000, time.February, 29), false, "0001"}},
	}
	for _, tc := range tests {
		got, err := ParseNIK(tc.in, tc.now)
		if err != nil || got != tc.want {
			t.Errorf("%s: ParseNIK(%q) = %+v, %v; want %+v", tc.name, tc.in, got, err, tc.want)
		}
	}
}

func TestParseNIKRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		now  time.Time
		want error
	}{
		{"empty", "", now, errNIKFormat},
		{"15 digits", "617105150890000", now, errNIKFormat},
		{"17 digits", "61710515089000031", now, errNIKFormat},
		{"spaces", "6171 0515 0890 0003", now, errNIKFormat},
		{"letter", "617105150890000A", now, errNIKFormat},
		{"leading plus", "+617105150890000", now, errNIKFormat},
		{"non-ASCII digit", "617105150890000٣", now, errNIKFormat},
		{"province 00", "0071051508900003", now, errNIKProvince},
		{"province 20", "2071051508900003", now, errNIKProvince},
		{"province 97", "9771051508900003", now, errNIKProvince},
		{"regency 00", "6100051508900003", now, errNIKRegency},
		{"district 00", "6171001508900003", now, errNIKDistrict},
		{"day 00", "6171050008900003", now, errNIKDate},
		{"day 32", "6171053208900003", now, errNIKDate},
		{"day 40", "6171054008900003", now, errNIKDate},
		{"day 72", "6171057208900003", now, errNIKDate},
		{"month 00", "6171051500900003", now, errNIKDate},
		{"month 13", "6171051513900003", now, errNIKDate},
		{"31 Feb", "6171053102900003", now, errNIKDate},
		{"31 Apr", "6171053104900003", now, errNIKDate},
		{"female 30 Feb", "6171057002900003", now, errNIKDate},
		{"29 Feb 2026 and 1926", "6171052902260003", now, errNIKDate},
		{"29 Feb 1990", "6171052902900003", now, errNIKDate},
		{"29 Feb 2000 before it happened", "6171052902000003", time.Date(2000, time.January, 15, 0, 0, 0, 0, time.UTC), errNIKFuture},
		{"serial 0000", "6171051508900000", now, errNIKSerial},
	}
	for _, tc := range tests {
		got, err := ParseNIK(tc.in, tc.now)
		// Identity, not errors.Is: the message must be exactly the fixed text, which never
		// contains the input.
		if err != tc.want || got != (NIK{}) {
			t.Errorf("%s: ParseNIK(%q) = %+v, %v; want error %q", tc.name, tc.in, got, err, tc.want)
		}
	}
}

func TestAge(t *testing.T) {
	wib := time.FixedZone("WIB", 7*3600)
	man := NIK{BirthDate: date(1990, time.August, 15)}
	leap := NIK{BirthDate: date(2000, time.February, 29)}
	tests := []struct {
		name string
		n    NIK
		at   time.Time
		want int
	}{
		{"day before birthday", man, date(2026, time.August, 14), 35},
		{"on birthday", man, date(2026, time.August, 15), 36},
		{"month before birthday", man, date(2026, time.July, 31), 35},
		{"after birthday", man, date(2026, time.November, 23), 36},
		{"birthday in at's zone", man, time.Date(2026, time.August, 15, 0, 30, 0, 0, wib), 36},
		{"at birth", man, date(1990, time.August, 15), 0},
		{"leap 28 Feb non-leap year", leap, date(2018, time.February, 28), 17},
		{"leap 1 Mar non-leap year", leap, date(2018, time.March, 1), 18},
		{"leap 29 Feb leap year", leap, date(2020, time.February, 29), 20},
	}
	for _, tc := range tests {
		if got := tc.n.Age(tc.at); got != tc.want {
			t.Errorf("%s: Age(%v) = %d, want %d", tc.name, tc.at, got, tc.want)
		}
	}
}

func TestLastFour(t *testing.T) {
	tests := []struct{ in, want string }{
		{"6171051508900003", "************0003"},
		{"", ""},
		{"123", "***"},
		{"1234", "****"},
		{"617105150890000", "***********0000"},
		{"617105150890000é", "************000é"},
		{"ééééé", "*éééé"},
	}
	for _, tc := range tests {
		if got := LastFour(tc.in); got != tc.want {
			t.Errorf("LastFour(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidKPJAndNIB(t *testing.T) {
	tests := []struct {
		in       string
		kpj, nib bool
	}{
		{"12345678901", true, false},
		{"00000000000", true, false},
		{"1234567890123", false, true},
		{"", false, false},
		{"1234567890", false, false},
		{"123456789012", false, false},
		{"12345678901234", false, false},
		{"1234567890a", false, false},
		{"1234 567890", false, false},
		{"123456789012a", false, false},
		{"+234567890123", false, false},
		{"١٢٣٤٥٦٧٨٩٠١", false, false},
	}
	for _, tc := range tests {
		if ValidKPJ(tc.in) != tc.kpj || ValidNIB(tc.in) != tc.nib {
			t.Errorf("%q: ValidKPJ = %v, ValidNIB = %v; want %v, %v", tc.in, ValidKPJ(tc.in), ValidNIB(tc.in), tc.kpj, tc.nib)
		}
	}
}

func TestNormalizePhoneAccepts(t *testing.T) {
	tests := []struct{ in, want string }{
		{"081234567890", "+6281234567890"},
		{"+6281234567890", "+6281234567890"},
		{"6281234567890", "+6281234567890"},
		{"0812-3456-7890", "+6281234567890"},
		{"0812 3456 7890", "+6281234567890"},
		{"0812.3456.7890", "+6281234567890"},
		{"(0812) 3456-7890", "+6281234567890"},
		{"+62 812-3456-7890", "+6281234567890"},
		{"(+62) 812 3456 7890", "+6281234567890"},
		{" 0812 3456 789 ", "+628123456789"},
		{"0812345678", "+62812345678"},         // 9 digits after +62
		{"+62812345678901", "+62812345678901"}, // 12 digits after +62
		{"62812345678", "+62812345678"},
		// As member rosters write them (issue 13).
		{"812-3456-7890", "+6281234567890"},        // a mobile without its 0
		{"'081234567890", "+6281234567890"},        // a spreadsheet's text marker
		{"+62 (0)812 3456 7890", "+6281234567890"}, // the trunk 0 for local callers
		{"(021) 555-1234", "+62215551234"},         // Jakarta landline
		{"021-5551234", "+62215551234"},
		{"+62 21 555 1234", "+62215551234"},
		{"0274 512345", "+62274512345"}, // Yogyakarta landline
		{"0812/3456/7890", "+6281234567890"},
	}
	for _, tc := range tests {
		got, err := NormalizePhone(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCleanNIK(t *testing.T) {
	for _, in := range []string{"3171055508900004", "3171 0555 0890 0004", "'3171055508900004", " 3171.0555.0890.0004 ",
		"3171-0555-0890-0004", "3171\u00a00555\u00a008900004"} {
		if got := CleanNIK(in); got != "3171055508900004" {
			t.Errorf("CleanNIK(%q) = %q, want 3171055508900004", in, got)
		}
	}
	for _, in := range []string{"3171O55508900004", "317105550890000", "3171/0555/0890/0004"} {
		if got := CleanNIK(in); len(got) == 16 && allDigits(got) {
			t.Errorf("CleanNIK(%q) = %q: it changed a character that is not a separator", in, got)
		}
	}
}

func TestNormalizePhoneRejects(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", errPhonePrefix},
		{"   ", errPhonePrefix},
		{"081234567", errPhoneLength},        // 8 digits after +62
		{"+628123456789012", errPhoneLength}, // 13 digits after +62
		{"08", errPhoneLength},
		{"+62", errPhonePrefix},
		{"02155512", errPhoneLength},       // 7 digits after +62: too short for a landline
		{"62081234567890", errPhonePrefix}, // trunk 0 after the country code, not in brackets
		{"+081234567890", errPhonePrefix},
		{"+6581234567", errPhonePrefix}, // Singapore
		{"1500123", errPhonePrefix},     // a service number
		{"++6281234567890", errPhonePrefix},
		{"0812-1111-2222 / 0857-3333-4444", errPhoneTwo},
		{"081211112222, 085733334444", errPhoneTwo},
		{"081211112222 atau 085733334444", errPhoneTwo},
		{"8.12346E+11", errPhoneLost},
		{"8,12346E+11", errPhoneLost},
		{"8.1E11", errPhoneLost},
		{"0812_3456_7890", errPhoneChars},
		{"0812345678x", errPhoneChars},
		{"+62812345678+", errPhoneChars},
		{"tel:081234567890", errPhoneChars},
		{"0812\t34567890", errPhoneChars},
		{"\u0660812345678", errPhoneChars}, // Arabic-Indic zero
		{"0812٣٤٥٦٧٨٩٠", errPhoneChars},
	}
	for _, tc := range tests {
		got, err := NormalizePhone(tc.in)
		if err != tc.want || got != "" { // identity: fixed message, never the input
			t.Errorf("NormalizePhone(%q) = %q, %v; want error %q", tc.in, got, err, tc.want)
		}
	}
}

func TestProvinces(t *testing.T) {
	ps := Provinces()
	if len(ps) != 38 || ps[0] != (Province{"11", "Aceh"}) || ps[37] != (Province{"96", "Papua Barat Daya"}) {
		t.Fatalf("Provinces() = %d entries from %v to %v; want 38 from 11 Aceh to 96 Papua Barat Daya", len(ps), ps[0], ps[len(ps)-1])
	}
	seen := map[string]bool{}
	for i, p := range ps {
		name, ok := ProvinceName(p.Code)
		if seen[p.Code] || len(p.Code) != 2 || !allDigits(p.Code) || p.Name == "" ||
			i > 0 && p.Code <= ps[i-1].Code || !ok || name != p.Name || !ValidProvince(p.Code) {
			t.Errorf("Provinces()[%d] = %v: duplicate, out of order, malformed or not found", i, p)
		}
		seen[p.Code] = true
	}
	ps[19].Name = "changed"
	ps[0] = Province{"00", "Nowhere"}
	if fresh := Provinces(); fresh[19].Name != "Kalimantan Barat" || fresh[0].Code != "11" {
		t.Errorf("Provinces() is not a copy: modifying the result changed %v, %v", fresh[0], fresh[19])
	}
}

func TestProvinceName(t *testing.T) {
	tests := []struct {
		code, name string
		ok         bool
	}{
		{"61", "Kalimantan Barat", true},
		{"11", "Aceh", true},
		{"31", "DKI Jakarta", true},
		{"91", "Papua", true},
		{"93", "Papua Selatan", true},
		{"96", "Papua Barat Daya", true},
		{"00", "", false},
		{"20", "", false},
		{"97", "", false},
		{"6", "", false},
		{"611", "", false},
		{"", "", false},
		{" 61", "", false},
	}
	for _, tc := range tests {
		name, ok := ProvinceName(tc.code)
		if name != tc.name || ok != tc.ok || ValidProvince(tc.code) != tc.ok {
			t.Errorf("ProvinceName(%q) = %q, %v; ValidProvince = %v; want %q, %v", tc.code, name, ok, ValidProvince(tc.code), tc.name, tc.ok)
		}
	}
}
