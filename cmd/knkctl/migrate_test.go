package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
)

// snapshot reads every resource kind through the API, as the admin sees it.
func snapshot(t *testing.T, e *testenv.Env, session string, events int32) []proto.Message {
	t.Helper()
	ctx := testenv.Ctx(e.AdminKey)
	var out []proto.Message
	add := func(m proto.Message, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	add(e.Orgs.ListOrganizations(ctx, &knkv1.ListOrganizationsRequest{PageSize: 1000}))
	add(e.Orgs.ListApiKeys(ctx, &knkv1.ListApiKeysRequest{Parent: "organizations/ksbsi"}))
	add(e.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{PageSize: 1000}))
	add(e.Training.ListSessions(ctx, &knkv1.ListSessionsRequest{PageSize: 1000}))
	add(e.Training.ListEnrollments(ctx, &knkv1.ListEnrollmentsRequest{Parent: session, PageSize: 1000}))
	add(e.Certs.ListCertificates(ctx, &knkv1.ListCertificatesRequest{PageSize: 1000}))
	add(e.Certs.ListSigningKeys(ctx, &knkv1.ListSigningKeysRequest{}))
	add(e.Forums.ListForumMembers(ctx, &knkv1.ListForumMembersRequest{Parent: "forums/31", PageSize: 1000}))
	add(e.Forums.ListForumMembers(ctx, &knkv1.ListForumMembersRequest{Parent: "forums/61", PageSize: 1000}))
	page, err := e.Events.ListEvents(ctx, &knkv1.ListEventsRequest{PageSize: events})
	if err == nil {
		page.NextPageToken = "" // the copy has one event more: see below
	}
	add(page, err)
	add(e.Stats.ListProvinceStats(ctx, &knkv1.ListProvinceStatsRequest{}))
	return out
}

// TestMigrateStoreRoundTrip fills a SQLite store with every resource kind, copies
// it with `knkctl migrate-store` into PostgreSQL (or, without a PostgreSQL server,
// another SQLite file), and checks that knkd on the copy serves the same data and
// carries on: keys work, certificates verify, new events and memberships follow on.
func TestMigrateStoreRoundTrip(t *testing.T) {
	target := "sqlite"
	if len(dbtest.Engines()) > 1 {
		target = "postgres"
	}
	src := testenv.StartAt(t, dbtest.DSN(t, "sqlite"))
	fedKey := src.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	unitKey := src.Org(t, "kemnaker-pusat", knkv1.Organization_KIND_TRAINING_UNIT, "")
	src.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31")
	fed, unit := testenv.Ctx(fedKey), testenv.Ctx(unitKey)
	var cadres []*knkv1.Cadre
	for i := range 5 {
		c, err := src.Cadres.CreateCadre(fed, &knkv1.CreateCadreRequest{RequestId: fmt.Sprintf("r%d", i), Cadre: &knkv1.Cadre{
			DisplayName: fmt.Sprintf("Kader %d", i), Nik: fmt.Sprintf("31710115089000%02d", i+1), ProvinceCode: "31",
			Phone: "081234567890", Employer: &knkv1.Employer{Name: "PT Maju", Nib: "1234567890123"}}})
		if err != nil {
			t.Fatal(err)
		}
		cadres = append(cadres, c)
	}
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	s, err := src.Training.CreateSession(unit, &knkv1.CreateSessionRequest{Session: &knkv1.Session{
		Title: "KNK", ProvinceCode: "31", Mode: knkv1.Session_MODE_ONLINE, Capacity: 10,
		Topics:    []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY},
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	var results []*knkv1.SessionResult
	for _, c := range cadres {
		if _, err := src.Training.EnrollCadre(fed, &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name}); err != nil {
			t.Fatal(err)
		}
		results = append(results, &knkv1.SessionResult{Cadre: c.Name, Attended: true, Scores: map[string]int32{
			"TOPIC_K3": 80, "TOPIC_PKWT": 80, "TOPIC_WAGE_SCALE": 80, "TOPIC_SOCIAL_SECURITY": 80}})
	}
	if _, err := src.Training.RecordResults(unit, &knkv1.RecordResultsRequest{Name: s.Name, Results: results}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Training.CompleteSession(unit, &knkv1.CompleteSessionRequest{Name: s.Name}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cadres[:3] {
		if _, err := src.Certs.IssueCertificate(unit, &knkv1.IssueCertificateRequest{Cadre: c.Name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Certs.RevokeCertificate(unit, &knkv1.RevokeCertificateRequest{Name: "certificates/KNK-31-2026-000002", Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Cadres.UpdateCadre(fed, &knkv1.UpdateCadreRequest{Cadre: &knkv1.Cadre{Name: cadres[0].Name, ProvinceCode: "61"}}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, src, s.Name, 1000)
	logged := int32(len(before[9].(*knkv1.ListEventsResponse).Events))
	src.Stop(t)

	dst := dbtest.DSN(t, target)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"migrate-store", "--from", src.DBPath, "--to", dst}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("migrate-store: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "certificates") || !strings.Contains(stderr.String(), "verified") {
		t.Errorf("migrate-store output:\n%s\n%s", stdout.String(), stderr.String())
	}
	if err := run(context.Background(), []string{"migrate-store", "--from", src.DBPath, "--to", dst}, nil, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second copy into the same target: %v, want a refusal", err)
	}

	// The signing key travelled sealed: knkd on the copy needs the source's key-encryption key.
	moved := testenv.StartWith(t, dst, func(cfg *testenv.Config) { cfg.KeyEncryptionKeyFile = testenv.KEKFile(t, src.DBPath) }) // which adds an admin key: one more event
	moved.AdminKey = src.AdminKey                                                                                               // the keys travelled with the data
	after := snapshot(t, moved, s.Name, logged)
	for i := range before {
		if !proto.Equal(before[i], after[i]) {
			t.Errorf("resource list %d differs after the copy:\nbefore %v\nafter  %v", i, before[i], after[i])
		}
	}
	v, err := moved.Certs.VerifyCertificate(testenv.Ctx(src.AdminKey), &knkv1.VerifyCertificateRequest{Name: "certificates/KNK-31-2026-000001"})
	if err != nil || !v.Valid || v.VerificationCode == "" {
		t.Errorf("verify on the copy: %v %v", v, err)
	}
	if byCode, err := moved.Certs.VerifyCertificateByCode(context.Background(), &knkv1.VerifyCertificateByCodeRequest{Code: v.GetVerificationCode()}); err != nil || byCode.Name != v.Name {
		t.Errorf("verify by code on the copy: %v %v", byCode, err)
	}
	// Writes carry on after the copied rows: the next certificate, membership and event.
	cert, err := moved.Certs.IssueCertificate(testenv.Ctx(unitKey), &knkv1.IssueCertificateRequest{Cadre: cadres[3].Name})
	if err != nil || cert.Name != "certificates/KNK-31-2026-000004" || cert.KeyId != v.KeyId {
		t.Fatalf("issue on the copy: %v %v", cert, err)
	}
	events, err := moved.Events.ListEvents(testenv.Ctx(src.AdminKey), &knkv1.ListEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events.Events {
		if e.Sequence != int64(i+1) {
			t.Fatalf("event %d has sequence %d after the copy", i, e.Sequence)
		}
	}
	if n := len(events.Events); n <= int(logged)+1 {
		t.Errorf("no new events after the copy: %d", n)
	}
}
