package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/idn"
	"github.com/knk-id/knk/services/cadre"
)

// figure is one line of the table and one object in the JSON report.
type figure struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit,omitempty"`
	P50Ms         float64 `json:"p50_ms,omitempty"`
	P99Ms         float64 `json:"p99_ms,omitempty"`
	CPUUs         float64 `json:"cpu_us_per_op,omitempty"` // busy CPU of the whole machine per call or row
	Baseline      string  `json:"baseline,omitempty"`
	BaselineValue float64 `json:"baseline_value,omitempty"`
	Ratio         float64 `json:"ratio,omitempty"`
	Target        string  `json:"target,omitempty"`
	Pass          *bool   `json:"pass,omitempty"`
	Skipped       string  `json:"skipped,omitempty"` // why there is no value, e.g. "not implemented"
	Error         string  `json:"error,omitempty"`
	Note          string  `json:"note,omitempty"`
}

// goal is a figure's baseline and target (issue 6). A figure with a baseline is
// reported as a ratio to it; minRatio, maxRatio and below are its targets, zero
// when it has none.
type goal struct {
	baseline           string
	minRatio, maxRatio float64
	below              float64 // an absolute ceiling, in the figure's unit
}

var goals = map[string]goal{
	"store_write_rps":           {baseline: "baseline_grpc_rps"},
	"create_cadre_rps":          {baseline: "baseline_grpc_rps", minRatio: 0.5},
	"create_during_import_rps":  {baseline: "create_cadre_rps", minRatio: 0.5},
	"import_rows_per_s":         {baseline: "baseline_sqlite_rows_per_s", minRatio: 0.5},
	"import_peak_rss_mb":        {below: 300},
	"import_csv_server_rss_mb":  {below: 300},
	"import_xlsx_server_rss_mb": {below: 300},
	"get_cadre_rps":             {baseline: "baseline_grpc_rps", minRatio: 0.6},
	"list_cadres_rps":           {baseline: "baseline_grpc_rps"},
	"list_deep_page_p50_ms":     {baseline: "list_first_page_p50_ms", maxRatio: 1.5},
	"issue_certificate_rps":     {baseline: "baseline_grpc_rps"},
	"verify_rest_rps":           {baseline: "baseline_rest_rps", minRatio: 0.6},
	"verify_rest_p99_ms":        {below: 25},
	"verify_page_rps":           {baseline: "baseline_rest_rps", minRatio: 0.5},
	"verify_page_p99_ms":        {below: 25},
}

// judge fills in the baselines, ratios and verdicts of figs.
func judge(figs []figure) {
	values := map[string]float64{}
	for _, f := range figs {
		if f.Skipped == "" && f.Error == "" {
			values[f.Name] = f.Value
		}
	}
	for i := range figs {
		f := &figs[i]
		g, ok := goals[f.Name]
		if !ok {
			continue
		}
		f.Baseline = g.baseline
		switch {
		case g.minRatio > 0:
			f.Target = fmt.Sprintf(">= %.2gx", g.minRatio)
		case g.maxRatio > 0:
			f.Target = fmt.Sprintf("<= %.2gx", g.maxRatio)
		case g.below > 0:
			f.Target = fmt.Sprintf("< %g %s", g.below, f.Unit)
		}
		if _, ok := values[f.Name]; !ok {
			continue
		}
		base, haveBase := values[g.baseline]
		if haveBase && base > 0 {
			f.BaselineValue, f.Ratio = base, f.Value/base
		}
		var pass bool
		switch {
		case g.minRatio > 0 && haveBase:
			pass = f.Ratio >= g.minRatio
		case g.maxRatio > 0 && haveBase:
			pass = f.Ratio <= g.maxRatio
		case g.below > 0:
			pass = f.Value < g.below
		default:
			continue
		}
		f.Pass = &pass
	}
}

// The roster: row i of a run is cadreAt(i). Rows are numbered across the whole
// run (creates, then the import), so every row has its own NIK.

// nikSpace is how many distinct valid NIKs personAt yields: serial × district ×
// regency × province × day of birth × gender.
const nikSpace = 9999 * 99 * 99 * 38 * 28 * 2

// nikStride is prime and does not divide nikSpace, so i -> i·nikStride mod
// nikSpace visits every NIK once, in a scattered order like a real roster's.
const nikStride = 1_000_000_007

var provinces = idn.Provinces()

type person struct {
	nik, province, birthDate string
	female                   bool
}

// personAt is the i-th person: a distinct valid NIK, born in August 1990.
func personAt(i int64) person {
	hi, lo := bits.Mul64(uint64(i)%nikSpace, nikStride)
	x := bits.Rem64(hi, lo, nikSpace)
	serial := 1 + x%9999
	x /= 9999
	district := 1 + x%99
	x /= 99
	regency := 1 + x%99
	x /= 99
	prov := provinces[x%38].Code
	x /= 38
	day := 1 + x%28
	x /= 28
	p := person{province: prov, birthDate: fmt.Sprintf("1990-08-%02d", day), female: x%2 == 1}
	if p.female {
		day += 40
	}
	p.nik = fmt.Sprintf("%s%02d%02d%02d0890%04d", prov, regency, district, day, serial)
	return p
}

// cadreAt is the i-th roster row, every optional field filled in.
func cadreAt(i int64) *knkv1.Cadre {
	p := personAt(i)
	n := strconv.FormatInt(i, 10)
	return &knkv1.Cadre{
		DisplayName: "Kader " + n, Nik: p.nik, Phone: "0812-3456-7890", Email: "kader" + n + "@contoh.co.id",
		ProvinceCode: p.province, Regency: "Kota Contoh",
		Employer: &knkv1.Employer{Name: "PT Maju Jaya", Nib: "1234567890123"},
		BpjsKpj:  "12345678901", UnionMemberNumber: "KSBSI-" + n,
	}
}

// createCadre measures unary CreateCadre by the federation, each call a new cadre.
func (b *bench) createCadre(ctx context.Context) {
	var created atomic.Int64
	b.rate(ctx, "create_cadre_rps", func(ctx context.Context) error {
		_, err := b.cadres.CreateCadre(b.fedCtx(ctx), &knkv1.CreateCadreRequest{Cadre: cadreAt(b.nextRow.Add(1) - 1)})
		if err == nil {
			created.Add(1)
		}
		return err
	})
	b.stored += created.Load()
}

// importRoster streams --rows new rows through one ImportCadres call, and the
// server's peak RSS while it runs.
func (b *bench) importRoster(ctx context.Context) {
	const name = "import_rows_per_s"
	rows := int64(b.cfg.Rows)
	if err := b.knkd.resetPeak(); err != nil {
		fmt.Fprintf(b.log, "knkbench: cannot reset the peak RSS (%v): it is the peak since the server started\n", err)
	}
	var elapsed time.Duration
	cpu0 := busyCPU()
	err := b.profile(name, func() error {
		start := time.Now()
		stream, err := b.cadres.ImportCadres(b.fedCtx(ctx))
		if err != nil {
			return err
		}
		for range rows {
			err = stream.Send(&knkv1.ImportCadresRequest{Cadre: cadreAt(b.nextRow.Add(1) - 1)})
			if err != nil {
				break // io.EOF: the server ended the call; CloseImport says why
			}
		}
		resp, recvErr := cadre.CloseImport(stream)
		if (err != nil && !errors.Is(err, io.EOF)) || recvErr != nil {
			return errors.Join(err, recvErr)
		}
		elapsed = time.Since(start)
		if resp.GetCreated() != rows {
			first := ""
			if r := resp.GetRejections(); len(r) > 0 {
				first = fmt.Sprintf(", first: row %d %s: %s", r[0].Row, r[0].Field, r[0].Reason)
			}
			return fmt.Errorf("import created %d of %d rows (%d rejected%s)", resp.GetCreated(), rows, resp.GetRejected(), first)
		}
		return nil
	})
	if !b.record(name, err) {
		b.same("import_peak_rss_mb", name)
		return
	}
	b.stored += rows
	b.add(figure{Name: name, Value: float64(rows) / elapsed.Seconds(), Unit: "rows/s", CPUUs: cpuSince(cpu0, rows),
		Note: fmt.Sprintf("%d rows in one stream in %v", rows, elapsed.Round(time.Millisecond))})
	peak, err := b.knkd.peakRSS()
	if !b.record("import_peak_rss_mb", err) {
		return
	}
	note := fmt.Sprintf("knkd process (pid %d) VmHWM during a %d-row import; the target is for 1,000,000 rows", b.knkd.pid, rows)
	if b.knkd.inProcess {
		note = fmt.Sprintf("knkd runs in-process: the peak of the whole knkbench process (server, client, harness) during a %d-row import; the target is for 1,000,000 rows; use --server-bin for the server alone", rows)
	}
	b.add(figure{Name: "import_peak_rss_mb", Value: peak, Unit: "MB", Note: note})
}

// walk lists every cadre once, collecting the names for GetCadre and page tokens
// spread over the whole table for ListCadres. Tokens do not depend on page_size,
// so a token from a long page positions a page of 100 anywhere.
func (b *bench) walk(ctx context.Context) error {
	step := int32(min(1000, max(100, b.stored/50)))
	b.names, b.tokens = b.names[:0], b.tokens[:0]
	token := ""
	for {
		resp, err := b.cadres.ListCadres(b.fedCtx(ctx), &knkv1.ListCadresRequest{PageSize: step, PageToken: token})
		if err != nil {
			return fmt.Errorf("list every cadre: %w", err)
		}
		for _, c := range resp.Cadres {
			b.names = append(b.names, c.Name)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
		// Keep a token only if a full page of 100 follows it.
		if int64(len(b.names))+100 <= b.stored {
			b.tokens = append(b.tokens, token)
		}
	}
	if int64(len(b.names)) != b.stored {
		return fmt.Errorf("listed %d cadres, stored %d", len(b.names), b.stored)
	}
	if len(b.names) == 0 || len(b.tokens) == 0 {
		return fmt.Errorf("too few cadres (%d) to measure reads", len(b.names))
	}
	return nil
}

// getCadre measures GetCadre of random stored cadres.
func (b *bench) getCadre(ctx context.Context) {
	b.rate(ctx, "get_cadre_rps", func(ctx context.Context) error {
		_, err := b.cadres.GetCadre(b.fedCtx(ctx), &knkv1.GetCadreRequest{Name: b.names[rand.IntN(len(b.names))]})
		return err
	})
}

// listCadres measures pages of 100 spread over the whole table, then the first
// page alone and pages in the last tenth alone, whose p50 latencies should match.
func (b *bench) listCadres(ctx context.Context) {
	page := func(tokens func() string) func(context.Context) error {
		return func(ctx context.Context) error {
			resp, err := b.cadres.ListCadres(b.fedCtx(ctx), &knkv1.ListCadresRequest{PageSize: 100, PageToken: tokens()})
			if err == nil && len(resp.Cadres) != 100 {
				err = fmt.Errorf("a page of 100 held %d cadres", len(resp.Cadres))
			}
			return err
		}
	}
	all := append([]string{""}, b.tokens...)
	deep := b.tokens[len(b.tokens)*9/10:]
	b.rate(ctx, "list_cadres_rps", page(func() string { return all[rand.IntN(len(all))] }))
	for _, m := range []struct {
		name   string
		tokens []string
	}{
		{"list_first_page_p50_ms", []string{""}},
		{"list_deep_page_p50_ms", deep},
	} {
		res, ok := b.run(ctx, m.name, b.cfg.Duration/2, page(func() string { return m.tokens[rand.IntN(len(m.tokens))] }))
		if ok {
			b.add(figure{Name: m.name, Value: ms(res.P50), Unit: "ms", P50Ms: ms(res.P50), P99Ms: ms(res.P99),
				Note: fmt.Sprintf("%d pages of 100 from %d start positions", res.Calls, len(m.tokens))})
		}
	}
}

// allTopics is the bit set of the four topics a certificate needs, as stored in
// cadres.passed_topics (bit n is Topic n).
const allTopics = 1<<knkv1.Topic_TOPIC_K3 | 1<<knkv1.Topic_TOPIC_PKWT |
	1<<knkv1.Topic_TOPIC_WAGE_SCALE | 1<<knkv1.Topic_TOPIC_SOCIAL_SECURITY

// issueCertificate measures IssueCertificate by the admin, each call for another
// cadre, after crediting every cadre with all four topics directly in the store
// (the training flow that normally credits them is not what this measures).
func (b *bench) issueCertificate(ctx context.Context) {
	const name = "issue_certificate_rps"
	// An unimplemented service answers UNIMPLEMENTED; a real one NOT_FOUND.
	_, err := b.certs.IssueCertificate(b.adminCtx(ctx), &knkv1.IssueCertificateRequest{Cadre: "cadres/01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	if status.Code(err) == codes.Unimplemented {
		b.record(name, classify(err))
		return
	}
	err = b.knkd.store.Write(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE cadres SET passed_topics = ?`, allTopics)
		return err
	})
	if !b.record(name, err) {
		return
	}
	var (
		order  = rand.Perm(len(b.names))
		next   atomic.Int64
		issued = make([]string, len(order))
	)
	b.rate(ctx, name, func(ctx context.Context) error {
		i := next.Add(1) - 1
		if i >= int64(len(order)) {
			return errExhausted
		}
		c, err := b.certs.IssueCertificate(b.adminCtx(ctx), &knkv1.IssueCertificateRequest{Cadre: b.names[order[i]]})
		if err != nil {
			return err
		}
		issued[i] = c.Name
		return nil
	})
	for _, n := range issued {
		if n != "" {
			b.issued = append(b.issued, n)
		}
	}
}

// verifyREST measures the public REST verification of issued certificates.
func (b *bench) verifyREST(ctx context.Context) {
	const name = "verify_rest_rps"
	if len(b.issued) == 0 {
		// Not implemented answers 501; anything else means there was nothing to verify.
		err := getOK(ctx, b.http, b.baseURL+"/v1/certificates/KNK-31-2026-000001:verify")
		if !errors.Is(err, errNotImplemented) {
			err = fmt.Errorf("%w: no certificates were issued", errNothingToDo)
		}
		b.record(name, err)
		b.same("verify_rest_p99_ms", name)
		return
	}
	res, ok := b.rate(ctx, name, func(ctx context.Context) error {
		return getOK(ctx, b.http, b.baseURL+"/v1/"+b.issued[rand.IntN(len(b.issued))]+":verify")
	})
	if !ok {
		b.same("verify_rest_p99_ms", name)
		return
	}
	b.add(figure{Name: "verify_rest_p99_ms", Value: ms(res.P99), Unit: "ms", P50Ms: ms(res.P50), P99Ms: ms(res.P99)})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
