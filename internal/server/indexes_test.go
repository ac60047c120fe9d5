package server_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// TestEveryListFilterUsesAnIndex calls ListCadres and ListCertificates with each
// filter through the real server, catches the SQL each call runs, and EXPLAINs
// it on the engine under test: the table must be searched through an index made
// for that filter, never scanned (SQLite: EXPLAIN QUERY PLAN says SEARCH with the
// index; PostgreSQL: EXPLAIN with enable_seqscan=off, since tiny test tables are
// scanned anyway, names the index with an Index Cond or uses the partial index).
func TestEveryListFilterUsesAnIndex(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unit := e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	cadres := e.Trained(t, fed, unit, "31", 3)
	cert, err := e.Certs.IssueCertificate(testenv.Ctx(unit), &knkv1.IssueCertificateRequest{Cadre: cadres[0].Name})
	if err != nil {
		t.Fatal(err)
	}
	admin := testenv.Ctx(e.AdminKey)
	store := e.Server.DB()

	var (
		mu      sync.Mutex
		queries []struct {
			query string
			args  []any
		}
	)
	store.Trace(func(query string, args []any) {
		mu.Lock()
		defer mu.Unlock()
		queries = append(queries, struct {
			query string
			args  []any
		}{query, args})
	})
	defer store.Trace(nil)

	for _, c := range []struct {
		name    string
		table   string
		call    func() error
		indexes []string // any of these serves the filter
	}{
		{"cadres by state", "cadres", func() error {
			_, err := e.Cadres.ListCadres(admin, &knkv1.ListCadresRequest{State: knkv1.Cadre_STATE_WITHDRAWN})
			return err
		}, []string{"cadres_state"}},
		{"cadres by province", "cadres", func() error {
			_, err := e.Cadres.ListCadres(admin, &knkv1.ListCadresRequest{ProvinceCode: "31"})
			return err
		}, []string{"cadres_province"}},
		{"cadres by federation", "cadres", func() error {
			_, err := e.Cadres.ListCadres(admin, &knkv1.ListCadresRequest{Federation: "organizations/ksbsi"})
			return err
		}, []string{"cadres_federation"}},
		{"cadres by topic passed", "cadres", func() error {
			_, err := e.Cadres.ListCadres(admin, &knkv1.ListCadresRequest{TopicPassed: knkv1.Topic_TOPIC_WAGE_SCALE})
			return err
		}, []string{"cadres_topic_3"}},
		{"certificates by state", "certificates", func() error {
			_, err := e.Certs.ListCertificates(admin, &knkv1.ListCertificatesRequest{State: knkv1.Certificate_STATE_REVOKED})
			return err
		}, []string{"certificates_state"}},
		{"certificates valid (state and expiry)", "certificates", func() error {
			_, err := e.Certs.ListCertificates(admin, &knkv1.ListCertificatesRequest{State: knkv1.Certificate_STATE_VALID})
			return err
		}, []string{"certificates_state", "certificates_due"}},
		{"certificates expired (state or past expiry)", "certificates", func() error {
			_, err := e.Certs.ListCertificates(admin, &knkv1.ListCertificatesRequest{State: knkv1.Certificate_STATE_EXPIRED})
			return err
		}, []string{"certificates_state", "certificates_due"}},
		{"certificates by province", "certificates", func() error {
			_, err := e.Certs.ListCertificates(admin, &knkv1.ListCertificatesRequest{ProvinceCode: "31"})
			return err
		}, []string{"certificates_province"}},
		{"certificates by issuer", "certificates", func() error {
			_, err := e.Certs.ListCertificates(admin, &knkv1.ListCertificatesRequest{Issuer: "organizations/disnaker-dki"})
			return err
		}, []string{"certificates_issuer"}},
		{"certificates by cadre", "certificates", func() error {
			_, err := e.Certs.ListCertificates(admin, &knkv1.ListCertificatesRequest{Cadre: cert.Cadre})
			return err
		}, []string{"certificates_cadre", "certificates_one_valid"}},
	} {
		mu.Lock()
		queries = nil
		mu.Unlock()
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		mu.Lock()
		var found bool
		for _, q := range queries {
			// The page query starts with its keyset condition; sweeps running
			// meanwhile (expiry, erasure) read other things.
			if !strings.Contains(q.query, "FROM "+c.table+" WHERE "+keyset[c.table]+" > ?") {
				continue
			}
			found = true
			plan, err := store.Explain(context.Background(), q.query, q.args...)
			if err != nil {
				t.Fatalf("%s: explain: %v", c.name, err)
			}
			t.Logf("%s:\n%s", c.name, plan)
			if problem := planProblem(e.Engine(), c.table, plan, c.indexes); problem != "" {
				t.Errorf("%s: %s\nquery: %s\nplan:\n%s", c.name, problem, q.query, plan)
			}
		}
		mu.Unlock()
		if !found {
			t.Errorf("%s: no list query on %s was run", c.name, c.table)
		}
	}
}

// keyset is the column each table's pages are cut on.
var keyset = map[string]string{"cadres": "id", "certificates": "number"}

// planProblem says what is wrong with a plan for a filter that one of indexes
// should serve, or "" when the plan uses one of them and scans nothing.
func planProblem(engine, table, plan string, indexes []string) string {
	uses := false
	for _, ix := range indexes {
		uses = uses || strings.Contains(plan, ix)
	}
	if !uses {
		return "the plan uses none of " + strings.Join(indexes, ", ")
	}
	switch engine {
	case "sqlite":
		if regexp.MustCompile(`(?m)^SCAN ` + table + `\b`).MatchString(plan) {
			return "SQLite scans " + table
		}
	case "postgres":
		if strings.Contains(plan, "Seq Scan on "+table) {
			return "PostgreSQL scans " + table + " sequentially"
		}
	}
	return ""
}
