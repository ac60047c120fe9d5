package main

import (
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// Lists of people read as lists of people: enrolments and forum members carry
// the cadre's name beside its id, for the roles that may see the cadre.
func TestEnrollmentsAndMembersShowNames(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	fed := env.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	dki := env.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31")
	inspector := env.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31")
	c := certTrainedCadre(t, env, fed, dki)
	if _, err := env.Certs.IssueCertificate(testenv.Ctx(dki), &knkv1.IssueCertificateRequest{Cadre: c.Name}); err != nil {
		t.Fatal(err)
	}
	sessions, err := env.Training.ListSessions(testenv.Ctx(dki), &knkv1.ListSessionsRequest{})
	if err != nil || len(sessions.Sessions) != 1 {
		t.Fatalf("sessions: %v (%v)", sessions, err)
	}
	for _, key := range []string{fed, dki} {
		out, _ := certCtl(t, env, key, "sessions", "enrollments", sessions.Sessions[0].Name)
		e := certJSON(t, out)["enrollments"].([]any)[0].(map[string]any)
		if e["cadre_display_name"] != "Siti Rahayu" || e["cadre"] != c.Name {
			t.Errorf("sessions enrollments printed %s; want the cadre's id and name", out)
		}
	}
	out, _ := certCtl(t, env, inspector, "forums", "members", "31")
	if m := certJSON(t, out)["members"].([]any)[0].(map[string]any); m["cadre_display_name"] != "Siti Rahayu" || m["cadre"] != c.Name {
		t.Errorf("forums members printed %s; want the member's id and name", out)
	}
	other := env.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, "")
	out, _ = certCtl(t, env, other, "forums", "members", "31")
	if strings.Contains(out, "Siti") {
		t.Errorf("another federation's list of forum members names the cadre: %s", out)
	}
}
