package certview

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"strings"

	"github.com/boombuler/barcode/qr"
	"github.com/signintech/gopdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
)

// A4 landscape, in points.
const (
	pageW  = 842.0
	pageH  = 595.0
	margin = 36.0
)

type rgb struct{ r, g, b uint8 }

var (
	ink    = rgb{0x1a, 0x1a, 0x1a}
	muted  = rgb{0x4a, 0x4a, 0x4a}
	navy   = rgb{0x0b, 0x3d, 0x63}
	accent = rgb{0xb0, 0x8d, 0x2e}
)

// PDF renders the printable certificate: one A4 landscape page in Bahasa
// Indonesia with the holder, number, topics, issuer, issue and expiry dates (in
// the province's legal time), the verification code, a QR code of c.VerifyURL and
// the signing key id. The Go fonts are embedded (subset), so it prints the same
// everywhere.
func PDF(c Certificate) ([]byte, error) {
	if c.VerifyURL == "" || c.Code == "" {
		return nil, errors.New("certview: a printable certificate needs its verification code and link")
	}
	pdf := &gopdf.GoPdf{}
	pdf.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4Landscape, Unit: gopdf.UnitPT})
	pdf.SetInfo(gopdf.PdfInfo{
		Title:   "Sertifikat Kader Norma Ketenagakerjaan " + c.Number,
		Subject: "Sertifikat KNK " + c.Number,
		Creator: "knkd",
	})
	for _, f := range []struct {
		name string
		ttf  []byte
	}{{"regular", goregular.TTF}, {"bold", gobold.TTF}, {"italic", goitalic.TTF}, {"mono", gomono.TTF}} {
		if err := pdf.AddTTFFontData(f.name, f.ttf); err != nil {
			return nil, fmt.Errorf("certview: font %s: %w", f.name, err)
		}
	}
	pdf.AddPage()
	d := &drawer{pdf: pdf}

	// Frame: a navy outer line and a thin gold inner line.
	pdf.SetLineWidth(4)
	d.stroke(navy)
	pdf.RectFromUpperLeftWithStyle(18, 18, pageW-36, pageH-36, "D")
	pdf.SetLineWidth(1)
	d.stroke(accent)
	pdf.RectFromUpperLeftWithStyle(26, 26, pageW-52, pageH-52, "D")

	// Heading, centred over the whole width.
	d.centered("Registri Kader Norma Ketenagakerjaan — Republik Indonesia", "regular", 11, muted, 62, pageW-2*margin)
	d.centered("Sertifikat Kader Norma Ketenagakerjaan", "bold", 30, navy, 86, pageW-2*margin)
	d.centered("Nomor "+c.Number, "mono", 14, ink, 130, pageW-2*margin)

	// Left column: the holder and what they passed.
	left, colW := margin+22, 520.0
	y := 180.0
	d.text("Diberikan kepada", "italic", 12, muted, left, y)
	y += 18
	y += d.block(c.Holder, "bold", 30, 12, ink, left, y, colW) + 12
	d.text("yang telah lulus pelatihan Kader Norma Ketenagakerjaan pada materi:", "regular", 12, ink, left, y)
	y += 22
	for i, t := range c.Topics {
		d.text(fmt.Sprintf("%d.  %s", i+1, TopicName(t, ID)), "regular", 12, ink, left+10, y)
		y += 19
	}
	y += 16
	zone := ZoneName(c.ProvinceCode)
	rows := [][2]string{
		{"Diterbitkan oleh", c.Issuer},
		{"Provinsi", c.ProvinceName()},
		{"Tanggal terbit", Date(c.IssueTime, c.ProvinceCode, ID) + " (" + zone + ")"},
		{"Berlaku sampai", Date(c.ExpireTime, c.ProvinceCode, ID) + " (" + zone + ")"},
	}
	for _, r := range rows {
		d.text(r[0], "regular", 11, muted, left, y)
		d.fit(r[1], "bold", 12, 8, ink, left+110, y-1, colW-110)
		y += 21
	}

	// Right column: the QR code and how to check the certificate.
	qrSize := 160.0
	qrX, qrY := pageW-margin-22-qrSize, 185.0
	if err := d.qr(c.VerifyURL, qrX, qrY, qrSize); err != nil {
		return nil, err
	}
	colX, colR := qrX-20, pageW-margin-22
	cy := qrY + qrSize + 10
	d.centered("Kode verifikasi", "regular", 10, muted, cy, colR-colX, colX)
	cy += 14
	d.centeredFit(c.Code, "mono", 13, 8, ink, cy, colR-colX, colX)
	cy += 20
	d.centered("Pindai kode QR atau buka", "regular", 9, muted, cy, colR-colX, colX)
	cy += 12
	d.centeredFit(strings.TrimSuffix(c.VerifyURL, "/"+c.Code), "mono", 9, 5, ink, cy, colR-colX, colX)
	cy += 12
	d.centered("dan masukkan kode di atas.", "regular", 9, muted, cy, colR-colX, colX)

	// Footer: the signature and what makes the certificate genuine.
	d.text("Sertifikat ini ditandatangani secara digital (Ed25519) dengan kunci publik "+c.KeyID+
		". Keasliannya dan statusnya saat ini (berlaku, dicabut atau kedaluwarsa)", "regular", 8.5, muted, left, pageH-72)
	d.text("hanya dapat dipastikan melalui halaman verifikasi di atas; cetakan ini sendiri tidak membuktikan bahwa sertifikat masih berlaku.",
		"regular", 8.5, muted, left, pageH-60)
	if d.err != nil {
		return nil, d.err
	}
	var buf bytes.Buffer
	if err := pdf.Write(&buf); err != nil {
		return nil, fmt.Errorf("certview: write PDF: %w", err)
	}
	return buf.Bytes(), nil
}

// drawer keeps the first error of a sequence of drawing calls.
type drawer struct {
	pdf  *gopdf.GoPdf
	err  error
	size float64 // the size shrink chose
}

func (d *drawer) stroke(c rgb) { d.pdf.SetStrokeColor(c.r, c.g, c.b) }

func (d *drawer) font(name string, size float64, c rgb) {
	if d.err == nil {
		d.err = d.pdf.SetFont(name, "", size)
	}
	d.pdf.SetTextColor(c.r, c.g, c.b)
}

func (d *drawer) width(s string) float64 {
	w, err := d.pdf.MeasureTextWidth(s)
	if err != nil && d.err == nil {
		d.err = err
	}
	return w
}

// text writes s with its top-left corner at x, y.
func (d *drawer) text(s, font string, size float64, c rgb, x, y float64) {
	d.font(font, size, c)
	d.pdf.SetXY(x, y)
	if d.err == nil {
		d.err = d.pdf.Cell(nil, s)
	}
}

// fit writes s at x, y in the largest size from size down to minSize that fits
// in width; text that is still too long is cut with an ellipsis.
func (d *drawer) fit(s, font string, size, minSize float64, c rgb, x, y, width float64) {
	d.text(d.shrink(s, font, size, minSize, width), font, d.size, c, x, y)
}

// shrink finds the size (left in d.size) and, if needed, the shortened text.
func (d *drawer) shrink(s, font string, size, minSize, width float64) string {
	for ; size > minSize; size -= 0.5 {
		d.font(font, size, ink)
		if d.width(s) <= width {
			d.size = size
			return s
		}
	}
	d.size = minSize
	d.font(font, minSize, ink)
	r := []rune(s)
	for len(r) > 1 && d.width(string(r)+"…") > width {
		r = r[:len(r)-1]
	}
	if len(r) == len([]rune(s)) {
		return s
	}
	return string(r) + "…"
}

// block writes s at x, y within width: on one line at the largest size from size
// down to 60 % of it, else on two lines down to minSize, else on three lines at
// minSize, cut with an ellipsis if even that is too long. It returns the height used.
func (d *drawer) block(s, font string, size, minSize float64, c rgb, x, y, width float64) float64 {
	one := size * 0.6
	for sz := size; ; sz -= 0.5 {
		d.font(font, sz, c)
		lines := d.wrap(s, width)
		if (sz > one && len(lines) > 1) || (len(lines) > 2 && sz > minSize) {
			continue
		}
		if len(lines) > 3 { // a cadre's name has at most 200 characters: this does not happen
			lines = []string{lines[0], lines[1], d.shrink(strings.Join(lines[2:], " "), font, sz, sz, width)}
			d.font(font, sz, c)
		}
		for i, l := range lines {
			d.text(l, font, sz, c, x, y+float64(i)*sz*1.2)
		}
		return float64(len(lines)) * sz * 1.2
	}
}

// wrap breaks s into lines no wider than width in the current font, between
// words, or inside a word longer than a line.
func (d *drawer) wrap(s string, width float64) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		try := strings.TrimSpace(line + " " + w)
		if d.width(try) <= width {
			line = try
			continue
		}
		if line != "" {
			lines = append(lines, line)
		}
		line = w
		for d.width(line) > width {
			r := []rune(line)
			cut := len(r) - 1
			for cut > 1 && d.width(string(r[:cut])) > width {
				cut--
			}
			lines = append(lines, string(r[:cut]))
			line = string(r[cut:])
		}
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// centered writes s centred in the band [x0, x0+width) (x0 defaults to the margin).
func (d *drawer) centered(s, font string, size float64, c rgb, y, width float64, x0 ...float64) {
	x := margin
	if len(x0) > 0 {
		x = x0[0]
	}
	d.font(font, size, c)
	d.text(s, font, size, c, x+(width-d.width(s))/2, y)
}

func (d *drawer) centeredFit(s, font string, size, minSize float64, c rgb, y, width, x0 float64) {
	s = d.shrink(s, font, size, minSize, width)
	d.centered(s, font, d.size, c, y, width, x0)
}

// qr draws the QR code of content as filled squares (vector, sharp at any print
// size) in a size×size box at x, y; the page around it is the quiet zone.
func (d *drawer) qr(content string, x, y, size float64) error {
	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		return fmt.Errorf("certview: QR code: %w", err)
	}
	n := code.Bounds().Dx()
	m := size / float64(n)
	d.pdf.SetFillColor(0, 0, 0)
	for row := 0; row < n; row++ {
		for col := 0; col < n; {
			if !dark(code.At(col, row)) {
				col++
				continue
			}
			run := col
			for run < n && dark(code.At(run, row)) {
				run++
			}
			// Overlap by a hair so that no white seams show between rows.
			d.pdf.RectFromUpperLeftWithStyle(x+float64(col)*m, y+float64(row)*m, float64(run-col)*m, m+0.05, "F")
			col = run
		}
	}
	return nil
}

func dark(c color.Color) bool { return color.GrayModel.Convert(c).(color.Gray).Y < 128 }
