package main

// serverReasons gives the server's reasons for bad roster fields (English, from
// internal/idn and services/cadre) in Bahasa Indonesia for the reports; a reason
// not listed here is reported as the server wrote it.
var serverReasons = map[string]problem{}

func init() {
	for en, id := range map[string]string{
		"is required":                   "wajib diisi",
		"NIK must be exactly 16 digits": "NIK harus tepat 16 angka",
		"NIK province code (digits 1-2) is not a known province":                            "kode provinsi pada NIK (angka 1-2) tidak dikenal",
		"NIK regency code (digits 3-4) must not be 00":                                      "kode kabupaten/kota pada NIK (angka 3-4) tidak boleh 00",
		"NIK district code (digits 5-6) must not be 00":                                     "kode kecamatan pada NIK (angka 5-6) tidak boleh 00",
		"NIK birth date (digits 7-12) does not form a real date":                            "tanggal lahir pada NIK (angka 7-12) bukan tanggal yang benar",
		"NIK birth date (digits 7-12) is in the future":                                     "tanggal lahir pada NIK (angka 7-12) ada di masa depan",
		"NIK serial (digits 13-16) must not be 0000":                                        "nomor urut pada NIK (angka 13-16) tidak boleh 0000",
		"the cadre must be at least 18 years old at registration (birth date from the NIK)": "kader harus berusia minimal 18 tahun saat didaftarkan (menurut tanggal lahir pada NIK)",
		"does not match the birth date encoded in the NIK (digits 7-12)":                    "tidak sesuai dengan tanggal lahir pada NIK (angka 7-12): periksa NIK",
		"does not match the gender encoded in the NIK (day of birth + 40 for women)":        "tidak sesuai dengan jenis kelamin pada NIK (tanggal lahir + 40 untuk perempuan): periksa NIK",
		badDateFormatEN: "bukan tanggal berformat TTTT-BB-HH; tidak diimpor",
		"is required: the two-digit code of the workplace province":                                                                                             "wajib diisi: kode dua angka provinsi tempat kerja",
		"is not one of the 38 province codes":                                                                                                                   "bukan salah satu dari 38 kode provinsi",
		"must be a plain e-mail address such as nama@contoh.co.id":                                                                                              "bukan alamat surel yang benar (contoh: nama@contoh.co.id); tidak diimpor",
		"must be the 13-digit NIB from OSS":                                                                                                                     "NIB harus 13 angka dari OSS; tidak diimpor",
		"must be the 11-digit BPJS Ketenagakerjaan participant number (KPJ)":                                                                                    "KPJ harus 11 angka nomor peserta BPJS Ketenagakerjaan; tidak diimpor",
		"phone number may contain only digits, a leading +, spaces, dashes, dots, slashes and brackets":                                                         "nomor telepon hanya boleh berisi angka, + di depan, spasi, tanda hubung, titik, garis miring dan kurung; tidak diimpor",
		"phone number must be Indonesian: 08…, 8… (mobile), 0 and an area code (landline), 62… or +62…":                                                         "nomor telepon harus nomor Indonesia: 08…, 8… (seluler), 0 dan kode area (telepon rumah), 62… atau +62…; tidak diimpor",
		"phone number has too few or too many digits: a mobile has 9 to 12 digits after +62, a landline 8 to 11":                                                "jumlah angka nomor telepon tidak sesuai: seluler 9-12 angka setelah +62, telepon rumah 8-11; tidak diimpor",
		"phone cell holds two numbers: keep one":                                                                                                                "sel telepon berisi dua nomor: sisakan satu; tidak diimpor",
		"phone number was turned into scientific notation (like 8.12346E+11) by a spreadsheet: its digits are lost; format the column as Text and export again": "nomor telepon diubah spreadsheet menjadi notasi ilmiah (seperti 8,12346E+11) dan angkanya hilang: format kolom sebagai Teks lalu ekspor ulang; tidak diimpor",
		"this NIK is already registered by another federation":                                                                                                  "NIK ini sudah didaftarkan oleh federasi lain; ajukan permintaan pindah jika anggota pindah federasi",
		"this NIK belongs to a cadre withdrawn from the programme; its data can no longer change":                                                               "NIK ini milik kader yang sudah keluar dari program; datanya tidak dapat diubah lagi",
		"is not a registered federation, or not yours to import into":                                                                                           "bukan federasi terdaftar, atau bukan federasi Anda",
	} {
		serverReasons[en] = problem{EN: en, ID: id}
	}
}

// badDateFormatEN is services/cadre's reason for a birth date that is not a date.
const badDateFormatEN = "must be a date written YYYY-MM-DD"
