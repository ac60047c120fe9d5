package testenv

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// AllTopics are the four topics a certificate needs.
var AllTopics = []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY}

var nikSerial atomic.Int64

// NIK returns a valid NIK that no other call in this process returned.
func NIK() string {
	i := nikSerial.Add(1)
	return fmt.Sprintf("3171%02d150890%04d", 1+(i/9999)%99, 1+i%9999)
}

// Trained registers n cadres of province with the federation key fedKey and runs
// a session of the training unit unitKey that they all attend and pass in every
// topic, so each can be given a certificate.
func (e *Env) Trained(t testing.TB, fedKey, unitKey, province string, n int) []*knkv1.Cadre {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("Kader %d", i+1)
	}
	_, cadres := e.TrainedNamed(t, fedKey, unitKey, province, names...)
	return cadres
}

// TrainedNamed is Trained for cadres with the given names; it also returns the
// session's name.
func (e *Env) TrainedNamed(t testing.TB, fedKey, unitKey, province string, names ...string) (string, []*knkv1.Cadre) {
	t.Helper()
	fed, unit := Ctx(fedKey), Ctx(unitKey)
	var cadres []*knkv1.Cadre
	for _, name := range names {
		c, err := e.Cadres.CreateCadre(fed, &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
			DisplayName: name, Nik: NIK(), ProvinceCode: province}})
		if err != nil {
			t.Fatalf("create cadre: %v", err)
		}
		cadres = append(cadres, c)
	}
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	s, err := e.Training.CreateSession(unit, &knkv1.CreateSessionRequest{Session: &knkv1.Session{
		Title: "KNK", ProvinceCode: province, Mode: knkv1.Session_MODE_ONLINE, Capacity: int32(len(names)), Topics: AllTopics,
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(time.Hour))}})
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	results := make([]*knkv1.SessionResult, 0, len(cadres))
	for _, c := range cadres {
		if _, err := e.Training.EnrollCadre(unit, &knkv1.EnrollCadreRequest{Parent: s.Name, Cadre: c.Name}); err != nil {
			t.Fatalf("enrol: %v", err)
		}
		results = append(results, &knkv1.SessionResult{Cadre: c.Name, Attended: true, Scores: map[string]int32{
			"TOPIC_K3": 80, "TOPIC_PKWT": 80, "TOPIC_WAGE_SCALE": 80, "TOPIC_SOCIAL_SECURITY": 80}})
	}
	if _, err := e.Training.RecordResults(unit, &knkv1.RecordResultsRequest{Name: s.Name, Results: results}); err != nil {
		t.Fatalf("record results: %v", err)
	}
	if _, err := e.Training.CompleteSession(unit, &knkv1.CompleteSessionRequest{Name: s.Name}); err != nil {
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
