package server_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium; the test never downloads a browser.
const chromiumPath = "/usr/bin/chromium"

// artifacts is where screenshots go: $KNK_ARTIFACTS if set, else the test's
// temporary directory.
func artifacts(t *testing.T) string {
	if d := os.Getenv("KNK_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// contrastJS lists every text whose colour has less contrast with the
// background behind it than WCAG 2 AA asks (4.5:1, or 3:1 for large text).
const contrastJS = `(() => {
  const lum = c => { const m = c.match(/[\d.]+/g).map(Number); const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return [0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]), m.length > 3 ? m[3] : 1]; };
  const bg = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor; if (lum(c)[1] > 0) return c; } return 'rgb(255, 255, 255)'; };
  const bad = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walk.nextNode());) {
    if (!n.textContent.trim()) continue;
    const el = n.parentElement, s = getComputedStyle(el);
    if (s.visibility === 'hidden' || s.display === 'none' || el.closest('.visually-hidden')) continue;
    const a = lum(s.color)[0], b = lum(bg(el))[0];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const px = parseFloat(s.fontSize), bold = parseInt(s.fontWeight) >= 700;
    const need = (px >= 24 || (bold && px >= 18.66)) ? 3 : 4.5;
    if (ratio < need) bad.push(n.textContent.trim().slice(0, 40) + ' ' + ratio.toFixed(2));
  }
  return bad;
})()`

// TestVerifyPageInChromium renders the page of a valid, a revoked and an expired
// certificate in headless Chromium on a 360-pixel phone and a 1280-pixel screen,
// and checks what a person sees: the texts, the language, nothing wider than
// the screen, AA contrast, no Content-Security-Policy complaint, and no request
// to anywhere but knkd.
func TestVerifyPageInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s not installed (Debian package chromium; .ci/run installs it): skipping the browser test", chromiumPath)
	}
	c := startPageCerts(t)
	e := c.env
	origin, err := url.Parse(e.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("accept-lang", "id-ID,id"), // a browser in Indonesia
		chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromiumPath, err)
	}

	var mu sync.Mutex
	var requests, complaints []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *log.EventEntryAdded:
			if strings.Contains(ev.Entry.Text, "Content Security Policy") || ev.Entry.Level == log.EntryLevelError {
				complaints = append(complaints, ev.Entry.Text)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}

	dir := artifacts(t)
	pages := []struct {
		name, path, lang string
		want             []string
	}{
		{"valid", "/verify/" + c.valid.VerificationCode, "id", []string{"BERLAKU", c.validName, "Keselamatan dan Kesehatan Kerja", "24 November 2032", c.valid.KeyId}},
		{"revoked", "/verify/" + c.revoked.VerificationCode, "id", []string{"DICABUT", "Data pelatihan tidak sah", "23 November 2026", c.revokedHolder}},
		{"expired", "/verify/" + c.expired.VerificationCode, "id", []string{"KEDALUWARSA", "23 November 2029", "Dewi Lestari"}},
		{"valid-en", "/verify/" + c.valid.VerificationCode + "?lang=en", "en", []string{"VALID", "Occupational safety and health"}},
		{"form", "/verify", "id", []string{"Periksa Sertifikat KNK", "Kode verifikasi"}},
	}
	for _, size := range []struct{ w, h int64 }{{360, 800}, {1280, 800}} {
		for _, p := range pages {
			what := fmt.Sprintf("%s at %dx%d", p.name, size.w, size.h)
			opts := []chromedp.EmulateViewportOption{}
			if size.w < 600 {
				opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
			}
			step, stop := context.WithTimeout(ctx, 30*time.Second)
			err := chromedp.Do(step, chromedp.EmulateViewport(size.w, size.h, opts...), chromedp.Navigate(e.BaseURL+p.path))
			if err != nil {
				stop()
				t.Fatalf("%s: %v", what, err)
			}
			lang, err1 := chromedp.Run(step, chromedp.Evaluate[string](`document.documentElement.lang`))
			text, err2 := chromedp.Run(step, chromedp.Evaluate[string](`document.body.innerText`))
			overflow, err3 := chromedp.Run(step, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
			lowContrast, err4 := chromedp.Run(step, chromedp.Evaluate[[]string](contrastJS))
			shot, err5 := chromedp.Run(step, chromedp.FullScreenshot(100))
			stop()
			for _, err := range []error{err1, err2, err3, err4, err5} {
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
			if lang != p.lang {
				t.Errorf("%s: <html lang=%q>, want %q", what, lang, p.lang)
			}
			for _, w := range p.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s: the page does not show %q:\n%s", what, w, text)
				}
			}
			if overflow {
				t.Errorf("%s: the page is wider than the screen", what)
			}
			if len(lowContrast) > 0 {
				t.Errorf("%s: text below WCAG AA contrast: %q", what, lowContrast)
			}
			file := filepath.Join(dir, fmt.Sprintf("verify-%s-%dx%d.png", p.name, size.w, size.h))
			if err := os.WriteFile(file, shot, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("screenshots in %s", dir)

	mu.Lock()
	defer mu.Unlock()
	if len(requests) == 0 {
		t.Fatal("saw no request: the network listener is not working")
	}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "data" && u.Host != origin.Host) {
			t.Errorf("a request left knkd's origin: %s", r)
		}
	}
	if len(complaints) > 0 {
		t.Errorf("the browser complained: %q", complaints)
	}
}
