package idn

import "time"

// Legal time zones of Indonesia.
var (
	WIB  = time.FixedZone("WIB", 7*60*60)  // Waktu Indonesia Barat, UTC+7
	WITA = time.FixedZone("WITA", 8*60*60) // Waktu Indonesia Tengah, UTC+8
	WIT  = time.FixedZone("WIT", 9*60*60)  // Waktu Indonesia Timur, UTC+9
)

// Zone is the legal time of the province with the given code: WITA for Bali, Nusa
// Tenggara, South, East and North Kalimantan and Sulawesi (51–53, 63–65, 71–76),
// WIT for Maluku and Papua (81, 82, 91–96), WIB elsewhere (Sumatra, Java, West and
// Central Kalimantan) and for an unknown code.
func Zone(province string) *time.Location {
	switch province {
	case "51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76":
		return WITA
	case "81", "82", "91", "92", "93", "94", "95", "96":
		return WIT
	}
	return WIB
}
