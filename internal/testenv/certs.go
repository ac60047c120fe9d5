package testenv

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// nikSerial makes the NIKs of Trained unique within the test binary.
var nikSerial atomic.Int64

// AllTopics are the four topics a certificate needs.
var AllTopics = []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY}

// Trained registers one cadre per name with the federation key fedKey in
// province, and runs them through one completed session of the training unit
// unitKey in which every one attended and passed all four topics. It returns the
// session's name and the cadres, in the order of names.
func (e *Env) Trained(t testing.TB, fedKey, unitKey, province string, names ...string) (string, []*knkv1.Cadre) {
	t.Helper()
	var cadres []*knkv1.Cadre
	for _, n := range names {
		serial := nikSerial.Add(1)
		c, err := e.Cadres.CreateCadre(Ctx(fedKey), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
			DisplayName: n, ProvinceCode: province,
			Nik: fmt.Sprintf("%s%02d%02d150890%04d", province, 1+serial/9999%99, 1, 1+serial%9999),
		}})
		if err != nil {
			t.Fatalf("register %q: %v", n, err)
		}
		cadres = append(cadres, c)
	}
	ctx := Ctx(unitKey)
	start := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	s, err := e.Training.CreateSession(ctx, &knkv1.CreateSessionRequest{Session: &knkv1.Session{
		Title: "Pelatihan KNK", Topics: AllTopics, ProvinceCode: province, Mode: knkv1.Session_MODE_ONLINE,
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(time.Hour)), Capacity: int32(len(names)),
	}})
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	scores := map[string]int32{}
	for _, tp := range AllTopics {
		scores[tp.String()] = 90
	}
	var results []*knkv1.SessionResult
	for _, c := range cadres {
		if _, err := e.Training.EnrollCadre(ctx, &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name}); err != nil {
			t.Fatalf("enrol: %v", err)
		}
		results = append(results, &knkv1.SessionResult{Cadre: c.Name, Attended: true, Scores: scores})
	}
	if _, err := e.Training.RecordResults(ctx, &knkv1.RecordResultsRequest{Name: s.Name, Results: results}); err != nil {
		t.Fatalf("record results: %v", err)
	}
	if _, err := e.Training.CompleteSession(ctx, &knkv1.CompleteSessionRequest{Name: s.Name}); err != nil {
		t.Fatalf("complete session: %v", err)
	}
	return s.Name, cadres
}

// Issue issues a certificate to each cadre with the training unit key unitKey.
func (e *Env) Issue(t testing.TB, unitKey string, cadres ...*knkv1.Cadre) []*knkv1.Certificate {
	t.Helper()
	var certs []*knkv1.Certificate
	for _, c := range cadres {
		cert, err := e.Certs.IssueCertificate(Ctx(unitKey), &knkv1.IssueCertificateRequest{Cadre: c.Name})
		if err != nil {
			t.Fatalf("issue a certificate to %s: %v", c.Name, err)
		}
		certs = append(certs, cert)
	}
	return certs
}
