package certview

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

func sample() Certificate {
	return Certificate{
		Number: "KNK-94-2026-000042", Holder: "Yohana Wenda Kogoya", ProvinceCode: "94",
		Topics: []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY},
		Issuer: "Disnakertrans Provinsi Papua Tengah",
		// 16:30 UTC on 29 November is 01:30 on 30 November in Papua Tengah (WIT).
		IssueTime:  time.Date(2026, 11, 29, 16, 30, 0, 0, time.UTC),
		ExpireTime: time.Date(2029, 11, 29, 16, 30, 0, 0, time.UTC),
		State:      knkv1.Certificate_STATE_VALID,
		Code:       "7QF3-M9XA-2KDP-R4TW-J", KeyID: "3f9c0a1b2c3d4e5f", SignatureOK: true,
		VerifyURL: "https://sertifikat.example.go.id/verify/7QF3-M9XA-2KDP-R4TW-J",
	}
}

// tool returns the path of an external program, or skips the test in one line.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s; .ci/run installs it): skipping", name, pkg)
	}
	return p
}

// PDFText runs pdftotext on pdf and returns the text, with runs of spaces collapsed.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	bin := tool(t, "pdftotext", "poppler-utils")
	dir := t.TempDir()
	in := filepath.Join(dir, "c.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-layout", in, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

func TestPDFTextAndQR(t *testing.T) {
	c := sample()
	pdf, err := PDF(c)
	if err != nil {
		t.Fatal(err)
	}
	txt := pdfText(t, pdf)
	for _, want := range []string{"Sertifikat Kader Norma Ketenagakerjaan", c.Holder, c.Number, c.Code,
		"30 November 2026 (WIT)", "30 November 2029 (WIT)", "Keselamatan dan Kesehatan Kerja",
		"Perjanjian Kerja Waktu Tertentu", "Struktur dan Skala Upah", "Jaminan Sosial Ketenagakerjaan",
		c.Issuer, "Papua Tengah", c.KeyID} {
		if !strings.Contains(txt, want) {
			t.Errorf("pdftotext lacks %q:\n%s", want, txt)
		}
	}
	if got := DecodeQR(t, pdf); got != c.VerifyURL {
		t.Errorf("QR = %q, want %q", got, c.VerifyURL)
	}
}

func TestPDFLongAndAwkwardNames(t *testing.T) {
	for _, holder := range []string{
		"Ni Luh Putu Ayu Kartika Dewi Sukmawati Anak Agung Istri Mas Ratna Kumala Sari Ningsih",
		"Muhammad Ma'ruf <script>alert(1)</script> & Sé",
		strings.Repeat("Panjangsekalinamanyatanpaspasi", 4),
		strings.Repeat("Raden Ayu Kusumawardhani ", 8), // 200 characters, the most a name may have
	} {
		c := sample()
		c.Holder = holder
		pdf, err := PDF(c)
		if err != nil {
			t.Fatalf("%q: %v", holder, err)
		}
		txt := strings.ReplaceAll(pdfText(t, pdf), " ", "")
		if want := strings.ReplaceAll(holder, " ", ""); !strings.Contains(txt, want) {
			t.Errorf("pdftotext lacks the whole name %q:\n%s", holder, txt)
		}
		if !strings.Contains(txt, "Berlakusampai") {
			t.Errorf("the name pushed the dates off the page:\n%s", txt)
		}
	}
}
