package certview

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DecodeQR renders the first page of pdf with pdftoppm and decodes its QR code
// with zbarimg (skipping the test if either is missing).
func DecodeQR(t *testing.T, pdf []byte) string {
	t.Helper()
	ppm := tool(t, "pdftoppm", "poppler-utils")
	zbar := tool(t, "zbarimg", "zbar-tools")
	dir := t.TempDir()
	in := filepath.Join(dir, "c.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ppm, "-png", "-r", "150", "-f", "1", "-l", "1", "-singlefile", in, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	if a := os.Getenv("KNK_ARTIFACTS"); a != "" {
		b, _ := os.ReadFile(filepath.Join(dir, "page.png"))
		os.WriteFile(filepath.Join(a, t.Name()+".png"), b, 0o644)
	}
	out, err := exec.Command(zbar, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", filepath.Join(dir, "page.png")).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code: %v", err)
	}
	return strings.TrimRight(string(out), "\n")
}
