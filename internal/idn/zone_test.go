package idn

import (
	"testing"
	"time"
)

func TestZoneOfEveryProvince(t *testing.T) {
	// DOMAIN.md: WIB 11–19, 21, 31–36, 61, 62 · WITA 51–53, 63–65, 71–76 · WIT 81, 82, 91–96.
	want := map[string]string{
		"11": "WIB", "12": "WIB", "13": "WIB", "14": "WIB", "15": "WIB", "16": "WIB", "17": "WIB", "18": "WIB",
		"19": "WIB", "21": "WIB", "31": "WIB", "32": "WIB", "33": "WIB", "34": "WIB", "35": "WIB", "36": "WIB",
		"61": "WIB", "62": "WIB",
		"51": "WITA", "52": "WITA", "53": "WITA", "63": "WITA", "64": "WITA", "65": "WITA",
		"71": "WITA", "72": "WITA", "73": "WITA", "74": "WITA", "75": "WITA", "76": "WITA",
		"81": "WIT", "82": "WIT", "91": "WIT", "92": "WIT", "93": "WIT", "94": "WIT", "95": "WIT", "96": "WIT",
	}
	if len(want) != len(Provinces()) {
		t.Fatalf("table covers %d provinces, there are %d", len(want), len(Provinces()))
	}
	offset := map[string]int{"WIB": 7 * 3600, "WITA": 8 * 3600, "WIT": 9 * 3600}
	at := time.Date(2026, 11, 29, 16, 30, 0, 0, time.UTC)
	for _, p := range Provinces() {
		name, off := at.In(Zone(p.Code)).Zone()
		if name != want[p.Code] || off != offset[want[p.Code]] {
			t.Errorf("Zone(%s %s) = %s%+d, want %s", p.Code, p.Name, name, off/3600, want[p.Code])
		}
	}
	// 16:30 UTC on 29 November is already 30 November in WIT but not in WIB.
	if d := at.In(Zone("94")).Day(); d != 30 {
		t.Errorf("Papua Tengah day = %d, want 30", d)
	}
	if d := at.In(Zone("31")).Day(); d != 29 {
		t.Errorf("DKI Jakarta day = %d, want 29", d)
	}
}
