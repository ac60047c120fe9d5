package certview

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

var pageTemplate = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// CSP is the Content-Security-Policy of every page: no script at all, the
// stylesheet from this origin only, images from this origin or data: URLs, forms
// posting only here, and no framing.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// AssetPrefix is where Assets serves the stylesheet.
const AssetPrefix = "/assets/"

// SecurityHeaders sets the headers every page carries.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept-Language")
}

// Asset writes the embedded file name (e.g. "verify.css"); ok is false if there
// is none.
func Asset(w http.ResponseWriter, r *http.Request, name string) (ok bool) {
	if name == "" || strings.ContainsAny(name, "/\\") || name != path.Clean(name) {
		return false
	}
	b, err := assetFS.ReadFile("assets/" + name)
	if err != nil {
		return false
	}
	h := w.Header()
	switch path.Ext(name) {
	case ".css":
		h.Set("Content-Type", "text/css; charset=utf-8")
	default:
		h.Set("Content-Type", http.DetectContentType(b))
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=3600")
	if r.Method != http.MethodHead {
		w.Write(b)
	}
	return true
}

// Form is what the form page shows again after a mistake.
type Form struct {
	Code, CodeError     string
	Number, NumberError string
}

// Message kinds, each with its heading, note and HTTP status.
type Message int

// Messages.
const (
	NotFound       Message = iota // no certificate has this code (404)
	Typo                          // the code's check symbol fails (400)
	Malformed                     // not a verification code at all (400)
	TooManyChecks                 // over a rate limit (429)
	Unavailable                   // the store failed (503)
	PageNotFound                  // no such page (404)
	NumberNotFound                // no certificate has this number (404)
)

var messages = map[Message]struct {
	heading, note, class string
	status               int
}{
	NotFound:       {"not_found", "not_found_note", "bad", http.StatusNotFound},
	Typo:           {"typo", "typo_note", "expired", http.StatusBadRequest},
	Malformed:      {"malformed", "malformed_note", "expired", http.StatusBadRequest},
	TooManyChecks:  {"too_many", "too_many_note", "expired", http.StatusTooManyRequests},
	Unavailable:    {"error", "error_note", "info", http.StatusServiceUnavailable},
	PageNotFound:   {"page_missing", "not_found_note", "info", http.StatusNotFound},
	NumberNotFound: {"not_found", "number_unknown", "bad", http.StatusNotFound},
}

// Status is the HTTP status a message is sent with.
func (m Message) Status() int { return messages[m].status }

type msgData struct{ Heading, Note, Class string }

// certData is a certificate prepared for the page.
type certData struct {
	Certificate
	Class, Mark, Word, Note string
	Revoked, Ended          string
	Issued, Expires         string
	TopicNames              []string
	ZoneNote                string
	NameCheck, NameMatches  bool
}

type pageData struct {
	Lang, OtherLang   Lang
	T                 map[string]string
	Title             string
	OtherURL, HomeURL string
	Kind              string
	Form              Form
	Cert              *certData
	Msg               msgData
}

func newPage(lang Lang, r *http.Request, kind string) *pageData {
	p := &pageData{Lang: lang, T: text[lang], Kind: kind, OtherLang: EN, HomeURL: "/verify"}
	if lang == EN {
		p.OtherLang, p.HomeURL = ID, "/verify?lang=en"
	}
	// The language link keeps the page (its path holds at most a verification
	// code, never personal data) but drops every other query parameter.
	u := url.URL{Path: r.URL.Path, RawQuery: "lang=" + string(p.OtherLang)}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		u.Path = "/verify"
	}
	p.OtherURL = u.String()
	p.Title = p.T["title"]
	return p
}

// WriteForm writes the verification form with status (200, or 400 after a mistake).
func WriteForm(w http.ResponseWriter, r *http.Request, lang Lang, status int, f Form) {
	p := newPage(lang, r, "form")
	p.Form = f
	write(w, r, status, p)
}

// WriteMessage writes a page that explains m in lang, with m's status.
func WriteMessage(w http.ResponseWriter, r *http.Request, lang Lang, m Message) {
	d := messages[m]
	p := newPage(lang, r, "message")
	p.Msg = msgData{Heading: p.T[d.heading], Note: p.T[d.note], Class: d.class}
	p.Title = p.Msg.Heading
	write(w, r, d.status, p)
}

// WriteCertificate writes the page of a certificate found by its code.
func WriteCertificate(w http.ResponseWriter, r *http.Request, lang Lang, c Certificate) {
	p := newPage(lang, r, "cert")
	p.Cert = prepare(c, lang)
	p.Title = p.Cert.Word + " · " + c.Number
	write(w, r, http.StatusOK, p)
}

// WriteNameCheck writes the answer to a check by number and name: c.Holder holds
// only the holder's initials, and matches says whether the name given matched.
func WriteNameCheck(w http.ResponseWriter, r *http.Request, lang Lang, c Certificate, matches bool) {
	p := newPage(lang, r, "cert")
	p.Cert = prepare(c, lang)
	p.Cert.NameCheck, p.Cert.NameMatches = true, matches
	p.Title = p.Cert.Word + " · " + c.Number
	write(w, r, http.StatusOK, p)
}

func prepare(c Certificate, lang Lang) *certData {
	t := text[lang]
	d := &certData{Certificate: c, ZoneNote: fmt.Sprintf(t["zone_note"], ZoneName(c.ProvinceCode))}
	switch {
	case c.KeyID != "" && !c.SignatureOK:
		d.Class, d.Mark, d.Word, d.Note = "bad", "✕", t["invalid"], t["sig_bad"]
	case c.State == knkv1.Certificate_STATE_VALID:
		d.Class, d.Mark, d.Word, d.Note = "valid", "✓", t["valid"], t["valid_note"]
	case c.State == knkv1.Certificate_STATE_REVOKED:
		d.Class, d.Mark, d.Word, d.Note = "revoked", "✕", t["revoked"], t["revoked_note"]
		if !c.RevokeTime.IsZero() {
			d.Revoked = Date(c.RevokeTime, c.ProvinceCode, lang)
		}
	default:
		d.Class, d.Mark, d.Word, d.Note = "expired", "!", t["expired"], t["expired_note"]
		d.Ended = Date(c.ExpireTime, c.ProvinceCode, lang)
	}
	d.Issued = Date(c.IssueTime, c.ProvinceCode, lang)
	d.Expires = Date(c.ExpireTime, c.ProvinceCode, lang)
	for _, tp := range c.Topics {
		d.TopicNames = append(d.TopicNames, TopicName(tp, lang))
	}
	return d
}

func write(w http.ResponseWriter, r *http.Request, status int, p *pageData) {
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, "page", p); err != nil {
		// The templates are fixed and their data plain values: this is a bug.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	SecurityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", string(p.Lang))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}
