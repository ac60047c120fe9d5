package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/oklog/ulid/v2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knk-id/knk/internal/certcode"
	"github.com/knk-id/knk/internal/certview"
	"github.com/knk-id/knk/services/certificate"
)

// verifyPage is the public certificate check for people: GET /verify (the form),
// GET /verify/{code} (the certificate), POST /verify (number and holder name: the
// name travels in the body, never in a URL) and GET /assets/{name} (the
// stylesheet). It is an ordinary http.Handler mounted on the gateway mux, so
// middleware around the mux (such as the anonymous rate limit) covers it.
type verifyPage struct {
	certs *certificate.Service
	log   *slog.Logger
	mux   *http.ServeMux
}

func newVerifyPage(certs *certificate.Service, log *slog.Logger) *verifyPage {
	h := &verifyPage{certs: certs, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /verify", h.form)
	h.mux.HandleFunc("POST /verify", h.byNumber)
	h.mux.HandleFunc("GET /verify/{code}", h.byCode)
	h.mux.HandleFunc("GET /assets/{name}", func(w http.ResponseWriter, r *http.Request) {
		if !certview.Asset(w, r, r.PathValue("name")) {
			certview.WriteMessage(w, r, certview.Negotiate(r), certview.PageNotFound)
		}
	})
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		certview.WriteMessage(w, r, certview.Negotiate(r), certview.PageNotFound)
	})
	return h
}

// mountVerifyPage routes the page's paths of the gateway mux to it.
func (s *Server) mountVerifyPage(gw *runtime.ServeMux) error {
	h := newVerifyPage(s.certs, s.cfg.Logger)
	serve := func(w http.ResponseWriter, r *http.Request, _ map[string]string) { h.ServeHTTP(w, r) }
	for _, route := range [][2]string{
		{http.MethodGet, "/verify"}, {http.MethodPost, "/verify"},
		{http.MethodGet, "/verify/{rest=**}"}, {http.MethodGet, "/assets/{rest=**}"},
	} {
		if err := gw.HandlePath(route[0], route[1], serve); err != nil {
			return err
		}
	}
	return nil
}

// ServeHTTP answers a page request and logs one line like the API's: request
// id, route, status and duration, never the code or a name.
func (h *verifyPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" || len(reqID) > 64 {
		reqID = ulid.Make().String()
	}
	w.Header().Set("X-Request-Id", reqID)
	rec := &pageRecorder{ResponseWriter: w, status: http.StatusOK}
	h.mux.ServeHTTP(rec, r)
	level := slog.LevelInfo
	if rec.status >= 500 {
		level = slog.LevelError
	}
	route := r.Pattern
	if route == "" {
		route = r.Method + " page"
	}
	h.log.LogAttrs(r.Context(), level, "page", slog.String("request_id", reqID), slog.String("route", route),
		slog.Int("status", rec.status), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
}

// maxCodeInput bounds what is read as a verification code: a code is 21
// characters; people may add spaces.
const maxCodeInput = 64

// form shows the form; with ?code= it sends the browser to that code's page, or
// shows the form again saying what is wrong with the code.
func (h *verifyPage) form(w http.ResponseWriter, r *http.Request) {
	lang := certview.Negotiate(r)
	raw := strings.TrimSpace(r.URL.Query().Get("code"))
	if !r.URL.Query().Has("code") {
		certview.WriteForm(w, r, lang, http.StatusOK, certview.Form{})
		return
	}
	f := certview.Form{Code: truncate(raw, maxCodeInput)}
	if raw == "" {
		f.CodeError = certview.Text(lang, "need_code")
		certview.WriteForm(w, r, lang, http.StatusBadRequest, f)
		return
	}
	code, err := parseCode(raw)
	switch {
	case errors.Is(err, certcode.ErrChecksum):
		f.CodeError = certview.Text(lang, "typo_note")
	case err != nil:
		f.CodeError = certview.Text(lang, "malformed_note")
	default:
		u := url.URL{Path: "/verify/" + code}
		if r.URL.Query().Get("lang") == string(certview.EN) {
			u.RawQuery = "lang=en"
		}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	certview.WriteForm(w, r, lang, http.StatusBadRequest, f)
}

func parseCode(raw string) (string, error) {
	if len(raw) > maxCodeInput {
		return "", certcode.ErrLength
	}
	return certcode.ParseCode(raw)
}

// byCode shows the certificate whose verification code is in the path.
func (h *verifyPage) byCode(w http.ResponseWriter, r *http.Request) {
	lang := certview.Negotiate(r)
	raw := r.PathValue("code")
	if _, err := parseCode(raw); err != nil {
		m := certview.Malformed
		if errors.Is(err, certcode.ErrChecksum) {
			m = certview.Typo
		}
		certview.WriteMessage(w, r, lang, m)
		return
	}
	c, err := h.certs.Page(r.Context(), raw)
	if err != nil {
		h.fail(w, r, lang, err, certview.NotFound)
		return
	}
	certview.WriteCertificate(w, r, lang, c)
}

var numberPattern = regexp.MustCompile(`^KNK-[0-9]{2}-[0-9]{4}-[0-9]{6}$`)

// byNumber answers the form's check by number and holder name: the state, the
// holder's initials and whether the name matches.
func (h *verifyPage) byNumber(w http.ResponseWriter, r *http.Request) {
	lang := certview.Negotiate(r)
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		certview.WriteForm(w, r, lang, http.StatusBadRequest, certview.Form{NumberError: certview.Text(lang, "need_number")})
		return
	}
	number := strings.ToUpper(strings.TrimSpace(r.PostForm.Get("number")))
	name := strings.TrimSpace(r.PostForm.Get("holder_name"))
	f := certview.Form{Number: truncate(number, 64)}
	switch {
	case number == "" || name == "":
		f.NumberError = certview.Text(lang, "need_number")
	case !numberPattern.MatchString(number) || len(name) > 200:
		f.NumberError = certview.Text(lang, "bad_number")
	}
	if f.NumberError != "" {
		certview.WriteForm(w, r, lang, http.StatusBadRequest, f)
		return
	}
	c, matches, err := h.certs.NameCheck(r.Context(), number, name)
	if err != nil {
		h.fail(w, r, lang, err, certview.NumberNotFound)
		return
	}
	certview.WriteNameCheck(w, r, lang, c, matches)
}

// fail shows the page for a failed lookup: notFound for NOT_FOUND, a typo or
// malformed page for a bad code, "too many" for RESOURCE_EXHAUSTED; anything
// else is logged and shown as a passing fault.
func (h *verifyPage) fail(w http.ResponseWriter, r *http.Request, lang certview.Lang, err error, notFound certview.Message) {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.NotFound:
		certview.WriteMessage(w, r, lang, notFound)
		return
	case codes.InvalidArgument:
		m := certview.Malformed
		if reason(st) == "INVALID_CHECKSUM" {
			m = certview.Typo
		}
		certview.WriteMessage(w, r, lang, m)
		return
	case codes.ResourceExhausted:
		certview.WriteMessage(w, r, lang, certview.TooManyChecks)
		return
	}
	h.log.Error("page lookup failed", "request_id", w.Header().Get("X-Request-Id"), "route", r.Pattern, "cause", err.Error())
	certview.WriteMessage(w, r, lang, certview.Unavailable)
}

func reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

type pageRecorder struct {
	http.ResponseWriter
	status int
}

func (s *pageRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
