package certview

import (
	"net/http"
	"strconv"
	"time"

	"golang.org/x/text/language"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/idn"
)

// Lang is the language of a page: Bahasa Indonesia (the default) or English.
type Lang string

// Languages.
const (
	ID Lang = "id"
	EN Lang = "en"
)

var matcher = language.NewMatcher([]language.Tag{language.Indonesian, language.English})

// Negotiate picks the page language: ?lang=id or ?lang=en first, then the
// browser's Accept-Language, then Bahasa Indonesia.
func Negotiate(r *http.Request) Lang {
	switch r.URL.Query().Get("lang") {
	case "en":
		return EN
	case "id":
		return ID
	}
	accept := r.Header.Get("Accept-Language")
	if accept == "" || len(accept) > 256 {
		return ID
	}
	tags, _, err := language.ParseAcceptLanguage(accept)
	if err != nil || len(tags) == 0 {
		return ID
	}
	_, i, conf := matcher.Match(tags...)
	if i == 1 && conf != language.No {
		return EN
	}
	return ID
}

var months = map[Lang][12]string{
	ID: {"Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober", "November", "Desember"},
	EN: {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
}

// Date writes the calendar day of t in the legal time of province (WIB, WITA or
// WIT): "30 November 2026" ("30 Desember 2026" in Indonesian, "30 December 2026"
// in English).
func Date(t time.Time, province string, lang Lang) string {
	t = t.In(idn.Zone(province))
	return strconv.Itoa(t.Day()) + " " + months[lang][t.Month()-1] + " " + strconv.Itoa(t.Year())
}

// ZoneName is the abbreviation of the province's legal time: WIB, WITA or WIT.
func ZoneName(province string) string {
	name, _ := time.Now().In(idn.Zone(province)).Zone()
	return name
}

var topicNames = map[knkv1.Topic][2]string{
	knkv1.Topic_TOPIC_K3:              {"Keselamatan dan Kesehatan Kerja", "Occupational safety and health"},
	knkv1.Topic_TOPIC_PKWT:            {"Perjanjian Kerja Waktu Tertentu", "Fixed-term employment contracts"},
	knkv1.Topic_TOPIC_WAGE_SCALE:      {"Struktur dan Skala Upah", "Wage structure and scale"},
	knkv1.Topic_TOPIC_SOCIAL_SECURITY: {"Jaminan Sosial Ketenagakerjaan", "Employment social security"},
}

// TopicName is a topic's name in lang; an unknown topic keeps its enum name.
func TopicName(t knkv1.Topic, lang Lang) string {
	n, ok := topicNames[t]
	switch {
	case !ok:
		return t.String()
	case lang == EN:
		return n[1]
	}
	return n[0]
}

// Text is the label key in lang.
func Text(lang Lang, key string) string { return text[lang][key] }

// text holds every label of the pages, per language.
var text = map[Lang]map[string]string{
	ID: {
		"site":          "Registri Kader Norma Ketenagakerjaan",
		"title":         "Periksa Sertifikat KNK",
		"intro":         "Periksa apakah sertifikat Kader Norma Ketenagakerjaan (KNK) asli dan masih berlaku.",
		"other_lang":    "English",
		"code_label":    "Kode verifikasi",
		"code_hint":     "Tertera di sertifikat di bawah kode QR, misalnya 7QF3-M9XA-2KDP-R4TW-J. Huruf besar atau kecil sama saja.",
		"check":         "Periksa",
		"or":            "atau",
		"number_label":  "Nomor sertifikat",
		"number_hint":   "Misalnya KNK-31-2026-000001.",
		"name_label":    "Nama pemegang",
		"name_hint":     "Nama lengkap seperti tertulis di sertifikat.",
		"by_number":     "Periksa dengan nomor dan nama",
		"by_code":       "Periksa dengan kode verifikasi",
		"valid":         "BERLAKU",
		"valid_note":    "Sertifikat ini asli dan masih berlaku.",
		"revoked":       "DICABUT",
		"revoked_note":  "Sertifikat ini telah dicabut dan tidak berlaku lagi.",
		"revoked_on":    "Dicabut pada",
		"reason":        "Alasan",
		"expired":       "KEDALUWARSA",
		"expired_note":  "Masa berlaku sertifikat ini telah berakhir.",
		"expired_on":    "Berakhir pada",
		"holder":        "Nama pemegang",
		"number":        "Nomor sertifikat",
		"code":          "Kode verifikasi",
		"topics":        "Materi yang lulus",
		"issuer":        "Diterbitkan oleh",
		"province":      "Provinsi",
		"issued":        "Tanggal terbit",
		"expires":       "Berlaku sampai",
		"zone_note":     "Tanggal menurut waktu %s, waktu resmi provinsi sertifikat.",
		"sig_ok":        "Tanda tangan digital sertifikat ini telah diperiksa dengan kunci publik yang diterbitkan",
		"sig_bad":       "Tanda tangan digital TIDAK cocok. Jangan terima sertifikat ini dan laporkan ke penerbitnya.",
		"invalid":       "TIDAK SAH",
		"check_another": "Periksa sertifikat lain",
		"not_found":     "Sertifikat tidak ditemukan",
		"not_found_note": "Tidak ada sertifikat dengan kode ini. Periksa kembali kode pada sertifikat. " +
			"Jika kode sudah benar, sertifikat ini mungkin palsu: hubungi penerbitnya.",
		"typo":      "Kode verifikasi salah ketik",
		"typo_note": "Kode ini tidak mungkin benar: satu huruf atau angka tidak cocok dengan huruf pemeriksa di akhir kode. Bandingkan lagi dengan kode pada sertifikat, huruf demi huruf.",
		"malformed": "Kode verifikasi tidak dikenali",
		"malformed_note": "Kode verifikasi terdiri dari 17 huruf dan angka dalam kelompok empat, misalnya 7QF3-M9XA-2KDP-R4TW-J. " +
			"Periksa kembali kode pada sertifikat.",
		"need_code":      "Masukkan kode verifikasi.",
		"need_number":    "Masukkan nomor sertifikat dan nama pemegang.",
		"bad_number":     "Nomor sertifikat ditulis seperti KNK-31-2026-000001. Periksa kembali nomornya.",
		"number_unknown": "Tidak ada sertifikat dengan nomor ini. Periksa kembali nomornya.",
		"name_match":     "Nama yang Anda masukkan COCOK dengan nama pemegang sertifikat.",
		"name_mismatch":  "Nama yang Anda masukkan TIDAK COCOK dengan nama pemegang sertifikat.",
		"initials":       "Inisial pemegang",
		"too_many":       "Terlalu banyak permintaan",
		"too_many_note":  "Terlalu banyak pemeriksaan dalam waktu singkat. Silakan coba lagi beberapa saat lagi.",
		"error":          "Terjadi gangguan",
		"error_note":     "Pemeriksaan tidak dapat dilakukan saat ini. Silakan coba lagi nanti.",
		"page_missing":   "Halaman tidak ditemukan",
		"footer":         "Halaman ini tidak menyimpan data pribadi Anda. Hanya data yang tertera pada sertifikat yang ditampilkan.",
	},
	EN: {
		"site":          "Registry of Labour-Norms Cadres (KNK)",
		"title":         "Check a KNK certificate",
		"intro":         "Check whether a Kader Norma Ketenagakerjaan (KNK, labour-norms cadre) certificate is genuine and still valid.",
		"other_lang":    "Bahasa Indonesia",
		"code_label":    "Verification code",
		"code_hint":     "Printed on the certificate below the QR code, e.g. 7QF3-M9XA-2KDP-R4TW-J. Upper or lower case does not matter.",
		"check":         "Check",
		"or":            "or",
		"number_label":  "Certificate number",
		"number_hint":   "For example KNK-31-2026-000001.",
		"name_label":    "Holder's name",
		"name_hint":     "Full name as written on the certificate.",
		"by_number":     "Check by number and name",
		"by_code":       "Check by verification code",
		"valid":         "VALID",
		"valid_note":    "This certificate is genuine and still valid.",
		"revoked":       "REVOKED",
		"revoked_note":  "This certificate has been revoked and is no longer valid.",
		"revoked_on":    "Revoked on",
		"reason":        "Reason",
		"expired":       "EXPIRED",
		"expired_note":  "This certificate's validity has ended.",
		"expired_on":    "Ended on",
		"holder":        "Holder",
		"number":        "Certificate number",
		"code":          "Verification code",
		"topics":        "Topics passed",
		"issuer":        "Issued by",
		"province":      "Province",
		"issued":        "Issue date",
		"expires":       "Valid until",
		"zone_note":     "Dates in %s, the legal time of the certificate's province.",
		"sig_ok":        "The certificate's digital signature was checked against the published public key",
		"sig_bad":       "The digital signature does NOT match. Do not accept this certificate; report it to its issuer.",
		"invalid":       "NOT VALID",
		"check_another": "Check another certificate",
		"not_found":     "Certificate not found",
		"not_found_note": "No certificate has this code. Check the code on the certificate again. " +
			"If the code is right, the certificate may be forged: contact its issuer.",
		"typo":      "The verification code has a typing error",
		"typo_note": "This code cannot be right: one letter or digit does not agree with the check character at its end. Compare it with the code on the certificate, character by character.",
		"malformed": "The verification code is not recognised",
		"malformed_note": "A verification code has 17 letters and digits in groups of four, e.g. 7QF3-M9XA-2KDP-R4TW-J. " +
			"Check the code on the certificate again.",
		"need_code":      "Enter the verification code.",
		"need_number":    "Enter the certificate number and the holder's name.",
		"bad_number":     "A certificate number looks like KNK-31-2026-000001. Check the number again.",
		"number_unknown": "No certificate has this number. Check the number again.",
		"name_match":     "The name you entered MATCHES the certificate holder's name.",
		"name_mismatch":  "The name you entered does NOT MATCH the certificate holder's name.",
		"initials":       "Holder's initials",
		"too_many":       "Too many requests",
		"too_many_note":  "Too many checks in a short time. Please try again in a moment.",
		"error":          "Something went wrong",
		"error_note":     "The check cannot be done right now. Please try again later.",
		"page_missing":   "Page not found",
		"footer":         "This page keeps no personal data about you. It shows only what the certificate itself states.",
	},
}
