package privacy_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/certificate"
	"github.com/knk-id/knk/services/privacy"
)

var _ knkv1.PrivacyServiceServer = (*privacy.Service)(nil)

const (
	sitiNIK = "3171055508900004"
	budiNIK = "3171051508900003"
)

type world struct {
	*testenv.Env
	fed, otherFed, unit, inspector string
}

// setup starts knkd with its background sweeps off: the tests call the sweep
// themselves, after moving the clock.
func setup(t *testing.T) *world {
	t.Helper()
	return setupWith(t, testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), noSweeps))
}

func noSweeps(c *testenv.Config) { c.ExpiryInterval = -1 }

// setupWith sets the organizations up on a running knkd.
func setupWith(t *testing.T, e *testenv.Env) *world {
	t.Helper()
	return &world{
		Env:       e,
		fed:       e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, ""),
		otherFed:  e.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, ""),
		unit:      e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31"),
		inspector: e.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31"),
	}
}

func (w *world) cadre(t *testing.T, key, name, nik string) *knkv1.Cadre {
	t.Helper()
	c, err := w.Cadres.CreateCadre(testenv.Ctx(key), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
		DisplayName: name, Nik: nik, ProvinceCode: "31", Phone: "08121111" + nik[12:], Regency: "Jakarta Timur",
		Employer: &knkv1.Employer{Name: "PT Maju Jaya", Nib: "1234567890123"}, BpjsKpj: "12345678901",
	}})
	if err != nil {
		t.Fatalf("create cadre: %v", err)
	}
	return c
}

// keyID is the id part of a key secret (knk_{id}_{secret}).
func keyID(secret string) string { return strings.Split(secret, "_")[1] }

// dump returns every value of every row of the tables, as text.
func dump(t *testing.T, db *sql.DB, tables ...string) string {
	t.Helper()
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				fmt.Fprintf(&b, "%s|", v)
			}
			b.WriteString("\n")
		}
		rows.Close()
	}
	return b.String()
}

// Every read of personal data leaves one entry, with key, organization, fields
// class and request id; masked list pages leave none; the trail never holds a NIK.
func TestAccessTrail(t *testing.T) {
	w := setup(t)
	siti := w.cadre(t, w.fed, "Siti Rahayu", sitiNIK)
	budi := w.cadre(t, w.fed, "Budi Santoso", budiNIK)

	var header metadata.MD
	reqCtx := metadata.AppendToOutgoingContext(testenv.Ctx(w.fed), "x-request-id", "req-fed-get-1")
	if _, err := w.Cadres.GetCadre(reqCtx, &knkv1.GetCadreRequest{Name: siti.Name}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cadres.GetCadre(testenv.Ctx(w.inspector), &knkv1.GetCadreRequest{Name: siti.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cadres.LookupCadre(testenv.Ctx(w.unit), &knkv1.LookupCadreRequest{Nik: sitiNIK}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cadres.ListCadres(testenv.Ctx(w.AdminKey), &knkv1.ListCadresRequest{}); err != nil {
		t.Fatal(err)
	}
	// The inspectorate's page shows masked fields only: not recorded.
	if _, err := w.Cadres.ListCadres(testenv.Ctx(w.inspector), &knkv1.ListCadresRequest{}); err != nil {
		t.Fatal(err)
	}
	// A refused read discloses nothing and records nothing.
	if _, err := w.Cadres.GetCadre(testenv.Ctx(w.otherFed), &knkv1.GetCadreRequest{Name: siti.Name}); err == nil {
		t.Fatal("another federation read the cadre")
	}

	log, err := w.Privacy.ListAccessLog(testenv.Ctx(w.fed), &knkv1.ListAccessLogRequest{Cadre: siti.Name})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		method, org, key string
		fields           knkv1.AccessLogEntry_Fields
		count            int32
	}
	want := []row{
		{"GetCadre", "organizations/ksbsi", keyID(w.fed), knkv1.AccessLogEntry_FIELDS_FULL, 1},
		{"GetCadre", "organizations/pengawas-dki", keyID(w.inspector), knkv1.AccessLogEntry_FIELDS_MASKED, 1},
		{"LookupCadre", "organizations/disnaker-dki", keyID(w.unit), knkv1.AccessLogEntry_FIELDS_MASKED, 1},
		{"ListCadres", "organizations/admin", keyID(w.AdminKey), knkv1.AccessLogEntry_FIELDS_FULL, 2},
	}
	if len(log.Entries) != len(want) {
		t.Fatalf("%d entries, want %d: %v", len(log.Entries), len(want), log.Entries)
	}
	for i, e := range log.Entries {
		got := row{e.Method, e.Organization, e.KeyId, e.Fields, e.CadreCount}
		if got != want[i] || e.RequestId == "" || !e.AccessTime.AsTime().Equal(w.Clock.Now()) {
			t.Errorf("entry %d = %+v (request %q, at %v), want %+v", i, got, e.RequestId, e.AccessTime.AsTime(), want[i])
		}
	}
	if got := log.Entries[0].RequestId; got != "req-fed-get-1" || header.Get("x-request-id")[0] != got {
		t.Errorf("request id %q, want the one the call was answered with (%v)", got, header.Get("x-request-id"))
	}
	// The list page is one entry, naming both cadres.
	budiLog, err := w.Privacy.ListAccessLog(testenv.Ctx(w.AdminKey), &knkv1.ListAccessLogRequest{Cadre: budi.Name})
	if err != nil || len(budiLog.Entries) != 1 || budiLog.Entries[0].Id != log.Entries[3].Id {
		t.Errorf("Budi's trail = %v, %v; want the one list entry shared with Siti", budiLog, err)
	}

	// The trail holds no NIK, whole or masked, nor any name.
	stored := dump(t, w.SQL(t), "access_log", "access_log_cadres")
	for _, secret := range []string{sitiNIK, budiNIK, sitiNIK[:4] + "****", "Siti", "Budi", "08121111", "12345678901"} {
		if strings.Contains(stored, secret) {
			t.Errorf("the access log stores %q:\n%s", secret, stored)
		}
	}
	if !strings.Contains(stored, keyID(w.fed)) {
		t.Errorf("dump does not show the stored rows:\n%s", stored)
	}
}

// Only admin and the enrolling federation read a trail; anyone else in a
// role that may call it gets the NOT_FOUND of an unknown cadre; other roles
// are refused the method; REST serves both routes.
func TestAccessLogScopeAndREST(t *testing.T) {
	w := setup(t)
	siti := w.cadre(t, w.fed, "Siti Rahayu", sitiNIK)
	unknown := "cadres/01JD0000000000000000000000"
	for _, tc := range []struct {
		key, cadre string
		code       codes.Code
	}{
		{w.AdminKey, siti.Name, codes.OK},
		{w.fed, siti.Name, codes.OK},
		{w.otherFed, siti.Name, codes.NotFound},
		{w.otherFed, unknown, codes.NotFound},
		{w.inspector, siti.Name, codes.PermissionDenied},
		{w.unit, siti.Name, codes.PermissionDenied},
		{w.fed, "cadres/../../etc", codes.InvalidArgument},
	} {
		_, err := w.Privacy.ListAccessLog(testenv.Ctx(tc.key), &knkv1.ListAccessLogRequest{Cadre: tc.cadre})
		_, err2 := w.Privacy.ExportCadre(testenv.Ctx(tc.key), &knkv1.ExportCadreRequest{Name: tc.cadre})
		if status.Code(err) != tc.code || status.Code(err2) != tc.code {
			t.Errorf("%s on %s: log %v, export %v; want %v", tc.key[:12], tc.cadre, err, err2, tc.code)
		}
	}
	// Out of scope and unknown answer alike, apart from the name asked for.
	_, outside := w.Privacy.ListAccessLog(testenv.Ctx(w.otherFed), &knkv1.ListAccessLogRequest{Cadre: siti.Name})
	_, missing := w.Privacy.ListAccessLog(testenv.Ctx(w.otherFed), &knkv1.ListAccessLogRequest{Cadre: unknown})
	if strings.ReplaceAll(status.Convert(outside).Message(), siti.Name, "X") != strings.ReplaceAll(status.Convert(missing).Message(), unknown, "X") {
		t.Errorf("out of scope %v differs from unknown %v", outside, missing)
	}

	id := strings.TrimPrefix(siti.Name, "cadres/")
	resp := w.REST(t, http.MethodGet, "/v1/cadres/"+id+":accessLog?page_size=10", w.fed, nil)
	if resp.Status != http.StatusOK || resp.Body["entries"] == nil {
		t.Errorf("GET :accessLog = %d %s", resp.Status, resp.Raw)
	}
	resp = w.REST(t, http.MethodGet, "/v1/cadres/"+id+":export", w.fed, nil)
	if resp.Status != http.StatusOK || !strings.Contains(string(resp.Raw), sitiNIK) || resp.Body["access_log"] == nil {
		t.Errorf("GET :export = %d %s", resp.Status, resp.Raw)
	}
	resp = w.REST(t, http.MethodGet, "/v1/cadres/"+id+":export", w.otherFed, nil)
	if resp.Status != http.StatusNotFound || strings.Contains(string(resp.Raw), "Siti") {
		t.Errorf("GET :export by another federation = %d %s", resp.Status, resp.Raw)
	}
}

func TestAccessLogPages(t *testing.T) {
	w := setup(t)
	siti := w.cadre(t, w.fed, "Siti Rahayu", sitiNIK)
	budi := w.cadre(t, w.fed, "Budi Santoso", budiNIK)
	for range 5 {
		if _, err := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: siti.Name}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	token := ""
	for {
		page, err := w.Privacy.ListAccessLog(testenv.Ctx(w.fed), &knkv1.ListAccessLogRequest{Cadre: siti.Name, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			ids = append(ids, e.Id)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
		// A token is bound to its cadre.
		_, err = w.Privacy.ListAccessLog(testenv.Ctx(w.fed), &knkv1.ListAccessLogRequest{Cadre: budi.Name, PageToken: token})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("token reused for another cadre: %v", err)
		}
	}
	if len(ids) != 5 {
		t.Fatalf("paged through %d entries, want 5", len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("entries out of order: %v", ids)
		}
	}
}

func syncTrail(c *testenv.Config) { noSweeps(c); c.AccessLogSync = true }

// A flood of concurrent reads leaves exactly one entry per answered read. By
// default entries follow in the next batch (a read of the trail waits for them);
// with --access-log-sync each is on disk, visible to another connection, when
// its read returns.
func TestAccessTrailLosesNothing(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", durable), func(t *testing.T) {
			edit := noSweeps
			if durable {
				edit = syncTrail
			}
			w := setupWith(t, testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), edit))
			siti := w.cadre(t, w.fed, "Siti Rahayu", sitiNIK)
			const readers, each = 16, 25
			var wg sync.WaitGroup
			errs := make(chan error, readers*each)
			for range readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						_, err := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: siti.Name})
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if !durable { // a read of the trail waits for every entry queued before it
				if _, err := w.Privacy.ListAccessLog(testenv.Ctx(w.fed), &knkv1.ListAccessLogRequest{Cadre: siti.Name, PageSize: 1}); err != nil {
					t.Fatal(err)
				}
			}
			// Read behind knkd's back, before it stops.
			var n int
			if err := w.SQL(t).QueryRow(`SELECT COUNT(*) FROM access_log_cadres`).Scan(&n); err != nil || n != readers*each {
				t.Errorf("%d entries on disk (%v), want %d", n, err, readers*each)
			}
		})
	}
}

// With --access-log-sync, when the trail cannot be written the read fails
// instead of answering unrecorded.
func TestNoDisclosureWithoutRecord(t *testing.T) {
	w := setupWith(t, testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), syncTrail))
	siti := w.cadre(t, w.fed, "Siti Rahayu", sitiNIK)
	if _, err := w.SQL(t).Exec(`DROP TABLE access_log_cadres`); err != nil {
		t.Fatal(err)
	}
	got, err := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: siti.Name})
	if status.Code(err) != codes.Internal || got != nil {
		t.Errorf("GetCadre with a broken trail = %v, %v; want INTERNAL and no cadre", got, err)
	}
	if strings.Contains(status.Convert(err).Message(), "access_log") {
		t.Errorf("the error leaks the cause: %v", err)
	}
}

// By default a batch that cannot be written is logged and retried, never
// dropped: once the store is repaired the entry arrives.
func TestFailedTrailWritesAreRetried(t *testing.T) {
	w := setup(t)
	siti := w.cadre(t, w.fed, "Siti Rahayu", sitiNIK)
	store := w.SQL(t)
	if _, err := store.Exec(`ALTER TABLE access_log_cadres RENAME TO broken`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: siti.Name}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.Logs(), "access trail: writing entries failed; retrying") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line about the failed write:\n%s", w.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := store.Exec(`ALTER TABLE broken RENAME TO access_log_cadres`); err != nil {
		t.Fatal(err)
	}
	log, err := w.Privacy.ListAccessLog(testenv.Ctx(w.fed), &knkv1.ListAccessLogRequest{Cadre: siti.Name})
	if err != nil || len(log.Entries) != 1 || log.Entries[0].Method != "GetCadre" {
		t.Errorf("after repair: %v, %v; want the GetCadre entry", log, err)
	}
}

// certify takes a cadre through a session on all four topics to a certificate.
func (w *world) certify(t *testing.T, c *knkv1.Cadre) *knkv1.Certificate {
	t.Helper()
	ctx := testenv.Ctx(w.unit)
	start := w.Clock.Now().Add(24 * time.Hour)
	s, err := w.Training.CreateSession(ctx, &knkv1.CreateSessionRequest{Session: &knkv1.Session{
		Title: "Pelatihan KNK", ProvinceCode: "31", Venue: "Gedung Disnaker", Mode: knkv1.Session_MODE_IN_PERSON,
		Topics:    []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY},
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(7 * time.Hour)), Capacity: 10,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Training.EnrollCadre(ctx, &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name}); err != nil {
		t.Fatal(err)
	}
	scores := map[string]int32{"TOPIC_K3": 88, "TOPIC_PKWT": 92, "TOPIC_WAGE_SCALE": 75, "TOPIC_SOCIAL_SECURITY": 81}
	if _, err := w.Training.RecordResults(ctx, &knkv1.RecordResultsRequest{Name: s.Name,
		Results: []*knkv1.SessionResult{{Cadre: c.Name, Attended: true, Scores: scores}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Training.CompleteSession(ctx, &knkv1.CompleteSessionRequest{Name: s.Name}); err != nil {
		t.Fatal(err)
	}
	cert, err := w.Certs.IssueCertificate(ctx, &knkv1.IssueCertificateRequest{Cadre: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// The export holds everything about the cadre and nobody else, with the trail
// (the export itself included).
func TestExport(t *testing.T) {
	w := setup(t)
	siti := w.cadre(t, w.fed, "Siti Rahayu", sitiNIK)
	budi := w.cadre(t, w.fed, "Budi Santoso", budiNIK)
	cert := w.certify(t, siti)
	w.certify(t, budi)
	if _, err := w.Cadres.GetCadre(testenv.Ctx(w.inspector), &knkv1.GetCadreRequest{Name: siti.Name}); err != nil {
		t.Fatal(err)
	}
	x, err := w.Privacy.ExportCadre(testenv.Ctx(w.fed), &knkv1.ExportCadreRequest{Name: siti.Name})
	if err != nil {
		t.Fatal(err)
	}
	if x.Cadre.Nik != sitiNIK || x.Cadre.Phone != "+6281211110004" || x.Cadre.Certificate != cert.Name {
		t.Errorf("cadre in export = %v", x.Cadre)
	}
	if len(x.Enrollments) != 1 || x.Enrollments[0].Scores["TOPIC_K3"] != 88 || !x.Enrollments[0].Attended {
		t.Errorf("enrolments = %v", x.Enrollments)
	}
	if len(x.Certificates) != 1 || x.Certificates[0].Name != cert.Name || x.Certificates[0].HolderName != "Siti Rahayu" {
		t.Errorf("certificates = %v", x.Certificates)
	}
	if len(x.Memberships) != 1 || x.Memberships[0].State != knkv1.ForumMembership_STATE_ACTIVE {
		t.Errorf("memberships = %v", x.Memberships)
	}
	types := map[string]bool{}
	for _, e := range x.Events {
		types[e.Type] = true
		if strings.Contains(e.Resource, strings.TrimPrefix(budi.Name, "cadres/")) {
			t.Errorf("export holds an event about Budi: %v", e)
		}
	}
	for _, typ := range []string{"cadre.created", "enrollment.created", "certificate.issued", "forum.member_joined"} {
		if !types[typ] {
			t.Errorf("export lacks a %s event: %v", typ, x.Events)
		}
	}
	last := x.AccessLog[len(x.AccessLog)-1]
	if len(x.AccessLog) != 2 || x.AccessLog[0].Method != "GetCadre" || last.Method != "ExportCadre" || last.Fields != knkv1.AccessLogEntry_FIELDS_FULL {
		t.Errorf("access log in export = %v", x.AccessLog)
	}
}

// The sweep deletes entries past the access-log retention (2 years by default)
// and keeps younger ones.
func TestAccessLogRetention(t *testing.T) {
	w := setup(t)
	siti := w.cadre(t, w.fed, "Siti Rahayu", sitiNIK)
	read := func() {
		if _, err := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: siti.Name}); err != nil {
			t.Fatal(err)
		}
	}
	read()
	w.Clock.Advance(365 * 24 * time.Hour)
	read()
	w.Clock.Advance(365*24*time.Hour + time.Hour) // the first read is now 2 years and 1 hour old
	swept, err := w.Server.Sweep(context.Background())
	if err != nil || swept.AccessEntries != 1 {
		t.Fatalf("sweep = %+v, %v; want 1 entry deleted", swept, err)
	}
	log, err := w.Privacy.ListAccessLog(testenv.Ctx(w.fed), &knkv1.ListAccessLogRequest{Cadre: siti.Name})
	if err != nil || len(log.Entries) != 1 || !log.Entries[0].AccessTime.AsTime().Equal(w.Clock.Now().Add(-365*24*time.Hour-time.Hour)) {
		t.Errorf("after the sweep: %v, %v; want only the younger entry", log, err)
	}
	var n int
	if err := w.SQL(t).QueryRow(`SELECT COUNT(*) FROM access_log_cadres`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d cadre rows left (%v), want 1", n, err)
	}
}

// Five years after withdrawal the sweep erases the cadre's personal fields,
// replaces the NIK by its keyed hash, takes the name off its certificates and
// records cadre.erased; the same NIK registered again is recognised.
func TestErasureOfWithdrawnCadres(t *testing.T) {
	// On SQLite the key is the default file beside the database; PostgreSQL
	// replicas need a configured one.
	dsn := dbtest.DSN(t, dbtest.Engine())
	w := setupWith(t, testenv.StartWith(t, dsn, func(c *testenv.Config) {
		noSweeps(c)
		if dbtest.Engine() == "postgres" {
			c.NIKHashKeyFile = filepath.Join(t.TempDir(), "nik-key")
			os.WriteFile(c.NIKHashKeyFile, []byte(strings.Repeat("k", 32)), 0o600)
		}
	}))
	siti := w.cadre(t, w.fed, "Siti Rahayu", sitiNIK)
	budi := w.cadre(t, w.fed, "Budi Santoso", budiNIK)
	cert := w.certify(t, siti)
	if _, err := w.Cadres.WithdrawCadre(testenv.Ctx(w.fed), &knkv1.WithdrawCadreRequest{Name: siti.Name, Reason: "pindah kerja ke Batam"}); err != nil {
		t.Fatal(err)
	}
	if w.Engine() == "sqlite" {
		st, err := os.Stat(w.DBPath + ".nik-key")
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("NIK hash key file beside the database: %v, %v; want mode 0600", st, err)
		}
	}
	w.Clock.Advance(4 * 365 * 24 * time.Hour)
	if swept, err := w.Server.Sweep(context.Background()); err != nil || swept.Erased != 0 {
		t.Fatalf("sweep after 4 years = %+v, %v; want nothing erased", swept, err)
	}
	w.Clock.Advance(365*24*time.Hour + 24*time.Hour)
	swept, err := w.Server.Sweep(context.Background())
	if err != nil || swept.Erased != 1 {
		t.Fatalf("sweep after 5 years = %+v, %v; want Siti erased", swept, err)
	}
	if again, err := w.Server.Sweep(context.Background()); err != nil || again.Erased != 0 {
		t.Errorf("second sweep = %+v, %v; want nothing more", again, err)
	}
	got, err := w.Cadres.GetCadre(testenv.Ctx(w.AdminKey), &knkv1.GetCadreRequest{Name: siti.Name})
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != "" || got.Phone != "" || got.BirthDate != "" || got.Regency != "" || got.BpjsKpj != "" ||
		got.Employer.GetName() != "" || got.WithdrawReason != "" || strings.Contains(got.Nik, sitiNIK[12:]) ||
		got.ProvinceCode != "31" || got.Federation != "organizations/ksbsi" || len(got.PassedTopics) != 4 {
		t.Errorf("erased cadre = %v", got)
	}
	stored := dump(t, w.SQL(t), "cadres", "certificates")
	for _, secret := range []string{sitiNIK, "Siti", "pindah kerja", "+6281211110004"} {
		if strings.Contains(stored, secret) {
			t.Errorf("after erasure the store still holds %q", secret)
		}
	}
	if !strings.Contains(stored, "Budi Santoso") {
		t.Errorf("Budi, not withdrawn, was erased too")
	}
	v, err := w.Certs.VerifyCertificate(context.Background(), &knkv1.VerifyCertificateRequest{Name: cert.Name})
	if err != nil || v.HolderName != "" || v.Valid {
		t.Errorf("certificate of the erased cadre = %v, %v; want no holder name, not valid", v, err)
	}
	_ = budi

	// The same person registers again: a new cadre, recognised as a re-registration.
	again := w.cadre(t, w.otherFed, "Siti Rahayu", sitiNIK)
	events, err := w.Events.ListEvents(testenv.Ctx(w.AdminKey), &knkv1.ListEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range events.Events {
		if (e.Type == "cadre.erased" && e.Resource == siti.Name) || (e.Type == "cadre.reregistered" && e.Resource == again.Name) {
			seen = append(seen, e.Type)
		}
	}
	if strings.Join(seen, ",") != "cadre.erased,cadre.reregistered" {
		t.Errorf("events %v, want cadre.erased then cadre.reregistered", seen)
	}
	_ = certificate.ErasedHolderReason
}

// The checks every create and every sweep make stay index lookups, however many
// cadres are registered (a scan here made a 200,000-row import quadratic).
func TestErasureQueriesUseIndexes(t *testing.T) {
	e := testenv.Start(t)
	if e.Engine() != "sqlite" {
		t.Skip("query plans are checked on SQLite")
	}
	for query, index := range map[string]string{
		`SELECT COUNT(*) FROM cadres WHERE nik_hash = 'x' AND nik_hash <> ''`: "cadres_nik_hash",
		`SELECT id FROM cadres WHERE withdraw_time > 0 AND erase_time = 0 AND withdraw_time < 5
			ORDER BY withdraw_time LIMIT 100`: "cadres_erasable",
		`SELECT id FROM access_log WHERE id < 'x' ORDER BY id LIMIT 1 OFFSET 10`: "sqlite_autoindex_access_log_1",
	} {
		var plan strings.Builder
		rows, err := e.SQL(t).Query(`EXPLAIN QUERY PLAN ` + query)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan.WriteString(detail + "\n")
		}
		rows.Close()
		if !strings.Contains(plan.String(), index) {
			t.Errorf("%s\nplan:\n%s; want it to use %s", query, plan.String(), index)
		}
	}
}
