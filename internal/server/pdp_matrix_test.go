package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/disclosure"
	"github.com/knk-id/knk/internal/server"
	"github.com/knk-id/knk/internal/testenv"
)

// The role × method × scope matrix of issue 10: every role calls every knk.v1
// method on a resource inside its scope and on one outside it, over gRPC and over
// REST, and gets the expected code each time; every answer that holds a person's
// record is checked field by field against the disclosure table, and every row of
// a list against the caller's scope.
//
// Two sides: x is ksbsi's cadres in DKI Jakarta (31), trained and certified by
// disnaker-dki; y is kspsi's cadres in Jawa Barat (32), trained and certified by
// disnaker-jabar.

type side int

const (
	sideX side = iota
	sideY
)

func (s side) String() string { return [...]string{"x", "y"}[s] }

type mxRole struct {
	name string
	key  string
	p    auth.Principal
	in   [2]bool // is side x / y in the role's scope
}

type mxWorld struct {
	*testenv.Env
	fedOrg, unitOrg, prov [2]string
	fedKey, unitKey       [2]string
	cadre                 [2]*knkv1.Cadre       // certified, enrolled in done, forum member
	cert                  [2]*knkv1.Certificate // the certificate of cadre
	done                  [2]*knkv1.Session     // completed session of cadre and the pools
	open                  [2]*knkv1.Session     // scheduled, for enrolments
	openCadre             [2]*knkv1.Cadre       // enrolled in open
	trained               [2][]*knkv1.Cadre     // passed every topic, no certificate
	certs                 [2][]*knkv1.Certificate
	n                     int
	cache                 map[string]any // admin's reads during one answer's check
}

// newCadre registers a fresh cadre of side s with every personal field set.
func (w *mxWorld) newCadre(t *testing.T, s side) *knkv1.Cadre {
	t.Helper()
	w.n++
	day := 1 + w.n%28
	if w.n%2 == 1 {
		day += 40 // women
	}
	c, err := w.Cadres.CreateCadre(testenv.Ctx(w.AdminKey), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
		DisplayName: fmt.Sprintf("Kader %d", w.n), Nik: fmt.Sprintf("%s71%02d%02d0590%04d", w.prov[s], 1+w.n%40, day, w.n),
		ProvinceCode: w.prov[s], Regency: "Kota", Phone: "0812-3456-7890", Email: "kader@contoh.id",
		Employer: &knkv1.Employer{Name: "PT Maju", Nib: "1234567890123"}, Federation: w.fedOrg[s],
		UnionMemberNumber: "A-1", BpjsKpj: "12345678901",
	}})
	if err != nil {
		t.Fatalf("create cadre: %v", err)
	}
	return c
}

var mxDay = time.Date(2027, 1, 4, 2, 0, 0, 0, time.UTC)

func (w *mxWorld) newSession(t *testing.T, s side, start time.Time, capacity int32) *knkv1.Session {
	t.Helper()
	out, err := w.Training.CreateSession(testenv.Ctx(w.AdminKey), &knkv1.CreateSessionRequest{Session: &knkv1.Session{
		Organizer: w.unitOrg[s], Title: "Pelatihan KNK", ProvinceCode: w.prov[s], Mode: knkv1.Session_MODE_ONLINE,
		Topics:    []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY},
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(7 * time.Hour)), Capacity: capacity,
	}})
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	return out
}

func (w *mxWorld) enroll(t *testing.T, sess *knkv1.Session, c *knkv1.Cadre) {
	t.Helper()
	if _, err := w.Training.EnrollCadre(testenv.Ctx(w.AdminKey), &knkv1.EnrollCadreRequest{Parent: sess.Name, Cadre: c.Name}); err != nil {
		t.Fatalf("enrol: %v", err)
	}
}

func (w *mxWorld) issue(t *testing.T, s side, c *knkv1.Cadre) *knkv1.Certificate {
	t.Helper()
	cert, err := w.Certs.IssueCertificate(testenv.Ctx(w.unitKey[s]), &knkv1.IssueCertificateRequest{Cadre: c.Name})
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return cert
}

func (w *mxWorld) transferRequest(t *testing.T, s side) *knkv1.TransferRequest {
	t.Helper()
	c := w.newCadre(t, s)
	full, _ := w.Cadres.GetCadre(testenv.Ctx(w.AdminKey), &knkv1.GetCadreRequest{Name: c.Name})
	tr, err := w.Cadres.RequestTransfer(testenv.Ctx(w.fedKey[1-s]), &knkv1.RequestTransferRequest{Nik: full.Nik})
	if err != nil {
		t.Fatalf("request transfer: %v", err)
	}
	return tr
}

const mxPool = 34 // per side: 16 issues + 16 revokes + spares

func mxSetup(t *testing.T) (*mxWorld, []mxRole) {
	t.Helper()
	e := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) {
		c.Edge.AnonymousLimit = server.Limit{PerMinute: -1} // the no-key role calls every method
	})
	w := &mxWorld{Env: e, fedOrg: [2]string{"organizations/ksbsi", "organizations/kspsi"},
		unitOrg: [2]string{"organizations/disnaker-dki", "organizations/disnaker-jabar"}, prov: [2]string{"31", "32"}}
	w.fedKey = [2]string{e.Org(t, "ksbsi", auth.Federation, ""), e.Org(t, "kspsi", auth.Federation, "")}
	w.unitKey = [2]string{e.Org(t, "disnaker-dki", auth.TrainingUnit, "31"), e.Org(t, "disnaker-jabar", auth.TrainingUnit, "32")}
	central := e.Org(t, "kemnaker", auth.TrainingUnit, "")
	insp := e.Org(t, "pengawas-dki", auth.Inspector, "31")
	all100 := map[string]int32{"TOPIC_K3": 100, "TOPIC_PKWT": 100, "TOPIC_WAGE_SCALE": 100, "TOPIC_SOCIAL_SECURITY": 100}
	for s := range []side{sideX, sideY} {
		s := side(s)
		w.done[s] = w.newSession(t, s, mxDay, mxPool+1)
		var results []*knkv1.SessionResult
		for range mxPool + 1 {
			c := w.newCadre(t, s)
			w.enroll(t, w.done[s], c)
			results = append(results, &knkv1.SessionResult{Cadre: c.Name, Attended: true, Scores: all100})
			w.trained[s] = append(w.trained[s], c)
		}
		if _, err := w.Training.RecordResults(testenv.Ctx(w.AdminKey), &knkv1.RecordResultsRequest{Name: w.done[s].Name, Results: results}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Training.CompleteSession(testenv.Ctx(w.AdminKey), &knkv1.CompleteSessionRequest{Name: w.done[s].Name}); err != nil {
			t.Fatal(err)
		}
		w.cadre[s], w.trained[s] = w.trained[s][0], w.trained[s][1:]
		w.cert[s] = w.issue(t, s, w.cadre[s])
		for _, c := range w.trained[s][:mxPool/2] {
			w.certs[s] = append(w.certs[s], w.issue(t, s, c))
		}
		w.trained[s] = w.trained[s][mxPool/2:]
		w.open[s] = w.newSession(t, s, mxDay.Add(7*24*time.Hour), 500)
		w.openCadre[s] = w.newCadre(t, s)
		w.enroll(t, w.open[s], w.openCadre[s])
	}
	roles := []mxRole{
		{"admin", e.AdminKey, auth.Principal{Org: "admin", Kind: auth.Admin}, [2]bool{true, true}},
		{"ksbsi", w.fedKey[sideX], auth.Principal{Org: "ksbsi", Kind: auth.Federation}, [2]bool{true, false}},
		{"kspsi", w.fedKey[sideY], auth.Principal{Org: "kspsi", Kind: auth.Federation}, [2]bool{false, true}},
		{"unit-31", w.unitKey[sideX], auth.Principal{Org: "disnaker-dki", Kind: auth.TrainingUnit, Province: "31"}, [2]bool{true, false}},
		{"unit-32", w.unitKey[sideY], auth.Principal{Org: "disnaker-jabar", Kind: auth.TrainingUnit, Province: "32"}, [2]bool{false, true}},
		{"central-unit", central, auth.Principal{Org: "kemnaker", Kind: auth.TrainingUnit}, [2]bool{true, true}},
		{"inspectorate-31", insp, auth.Principal{Org: "pengawas-dki", Kind: auth.Inspector, Province: "31"}, [2]bool{true, false}},
		{"no-key", "", auth.Principal{}, [2]bool{false, false}},
	}
	return w, roles
}

// mxCase is one method: how to build its request for a role on side s (fresh
// resources where the call uses them up), and the code the role should get.
type mxCase struct {
	method string
	kinds  []auth.Kind // roles that may call it; nil: public
	build  func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message
	// want is the code for an allowed role; nil means OK.
	want func(r mxRole, s side) codes.Code
}

var (
	admins   = []auth.Kind{auth.Admin}
	keyed    = []auth.Kind{auth.Admin, auth.Federation, auth.TrainingUnit, auth.Inspector}
	writers  = []auth.Kind{auth.Admin, auth.Federation}
	trainers = []auth.Kind{auth.Admin, auth.TrainingUnit}
	enrolers = []auth.Kind{auth.Admin, auth.Federation, auth.TrainingUnit}
)

// personal: a call addressed to a person; outside the scope it is NOT_FOUND.
func personal(r mxRole, s side) codes.Code {
	if r.in[s] {
		return codes.OK
	}
	return codes.NotFound
}

// managed: a call on a session; outside the scope it is PERMISSION_DENIED.
func managed(r mxRole, s side) codes.Code {
	if r.in[s] {
		return codes.OK
	}
	return codes.PermissionDenied
}

func mxCases() []mxCase {
	fresh := func(prefix string, w *mxWorld) string { w.n++; return fmt.Sprintf("%s-%d", prefix, w.n) }
	return []mxCase{
		// Organizations and keys: admin only; no person in them.
		{"CreateOrganization", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.CreateOrganizationRequest{OrganizationId: fresh("org", w),
				Organization: &knkv1.Organization{Kind: auth.Federation, DisplayName: "Serikat"}}
		}, nil},
		{"GetOrganization", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.GetOrganizationRequest{Name: w.fedOrg[s]}
		}, nil},
		{"ListOrganizations", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListOrganizationsRequest{}
		}, nil},
		{"CreateApiKey", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.CreateApiKeyRequest{Parent: w.fedOrg[s]}
		}, nil},
		{"ListApiKeys", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListApiKeysRequest{Parent: w.fedOrg[s]}
		}, nil},
		{"DeleteApiKey", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			k, err := w.Orgs.CreateApiKey(testenv.Ctx(w.AdminKey), &knkv1.CreateApiKeyRequest{Parent: w.fedOrg[s]})
			if err != nil {
				t.Fatal(err)
			}
			return &knkv1.DeleteApiKeyRequest{Name: k.Name}
		}, nil},
		{"RotateApiKey", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			k, err := w.Orgs.CreateApiKey(testenv.Ctx(w.AdminKey), &knkv1.CreateApiKeyRequest{Parent: w.fedOrg[s]})
			if err != nil {
				t.Fatal(err)
			}
			return &knkv1.RotateApiKeyRequest{Name: k.Name}
		}, nil},

		// Cadres.
		{"CreateCadre", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			w.n++
			return &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{DisplayName: "Baru", ProvinceCode: w.prov[s],
				Nik: fmt.Sprintf("%s7101150890%04d", w.prov[s], 5000+w.n), Federation: w.fedOrg[s]}}
		}, func(r mxRole, s side) codes.Code {
			if r.p.Kind == auth.Federation && !r.in[s] {
				return codes.PermissionDenied // registering for another federation
			}
			return codes.OK
		}},
		{"GetCadre", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.GetCadreRequest{Name: w.cadre[s].Name}
		}, personal},
		{"ListCadres", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListCadresRequest{ProvinceCode: w.prov[s], PageSize: 1000}
		}, func(r mxRole, s side) codes.Code {
			if !r.in[s] && r.p.Kind != auth.Federation {
				return codes.PermissionDenied // a province outside a provincial key
			}
			return codes.OK // a federation lists its own cadres there (none)
		}},
		{"UpdateCadre", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.UpdateCadreRequest{Cadre: &knkv1.Cadre{Name: w.openCadre[s].Name, Regency: fresh("Kota", w)},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"regency"}}}
		}, personal},
		{"WithdrawCadre", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.WithdrawCadreRequest{Name: w.newCadre(t, s).Name, Reason: "pindah kerja"}
		}, personal},
		{"LookupCadre", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			full, err := w.Cadres.GetCadre(testenv.Ctx(w.AdminKey), &knkv1.GetCadreRequest{Name: w.cadre[s].Name})
			if err != nil {
				t.Fatal(err)
			}
			return &knkv1.LookupCadreRequest{Nik: full.Nik}
		}, personal},
		{"ImportCadres", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			w.n++
			return &knkv1.ImportCadresRequest{Cadre: &knkv1.Cadre{DisplayName: "Impor", ProvinceCode: w.prov[s],
				Nik: fmt.Sprintf("%s7101150890%04d", w.prov[s], 5000+w.n), Federation: w.fedOrg[s]}}
		}, nil}, // a row for another federation is rejected in the summary, the call succeeds
		{"RequestTransfer", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			full, _ := w.Cadres.GetCadre(testenv.Ctx(w.AdminKey), &knkv1.GetCadreRequest{Name: w.newCadre(t, s).Name})
			return &knkv1.RequestTransferRequest{Nik: full.Nik, Federation: map[bool]string{true: w.fedOrg[1-s]}[r.p.Kind == auth.Admin]}
		}, func(r mxRole, s side) codes.Code {
			if r.p.Kind == auth.Federation && r.in[s] {
				return codes.FailedPrecondition // its own cadre already
			}
			return codes.OK
		}},
		{"ListTransferRequests", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListTransferRequestsRequest{PageSize: 1000}
		}, nil},
		{"ApproveTransfer", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ApproveTransferRequest{Name: w.transferRequest(t, s).Name}
		}, func(r mxRole, s side) codes.Code {
			if r.p.Kind == auth.Federation && !r.in[s] {
				return codes.PermissionDenied // the requester cannot approve its own request
			}
			return codes.OK
		}},
		{"RejectTransfer", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.RejectTransferRequest{Name: w.transferRequest(t, s).Name, Reason: "tidak dikenal"}
		}, nil}, // the federation asked declines, the requester withdraws

		// The access trail and the data-subject export: admin and the enrolling
		// federation; any other federation gets the NOT_FOUND of an unknown cadre.
		{"ListAccessLog", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListAccessLogRequest{Cadre: w.cadre[s].Name}
		}, personal},
		{"ExportCadre", writers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ExportCadreRequest{Name: w.cadre[s].Name}
		}, personal},

		// Training.
		{"CreateSession", trainers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			organizer := ""
			if r.p.Kind == auth.Admin {
				organizer = w.unitOrg[s]
			}
			return &knkv1.CreateSessionRequest{Session: &knkv1.Session{Organizer: organizer, Title: "Sosialisasi",
				ProvinceCode: w.prov[s], Mode: knkv1.Session_MODE_ONLINE, Topics: []knkv1.Topic{knkv1.Topic_TOPIC_K3},
				StartTime: timestamppb.New(mxDay.Add(30 * 24 * time.Hour)), EndTime: timestamppb.New(mxDay.Add(30*24*time.Hour + time.Hour)), Capacity: 10}}
		}, managed},
		{"GetSession", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.GetSessionRequest{Name: w.done[s].Name}
		}, nil},
		{"ListSessions", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListSessionsRequest{ProvinceCode: w.prov[s]}
		}, nil},
		{"UpdateSession", trainers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.UpdateSessionRequest{Session: &knkv1.Session{Name: w.open[s].Name, Title: fresh("Pelatihan", w)},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}}}
		}, managed},
		{"CancelSession", trainers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.CancelSessionRequest{Name: w.newSession(t, s, mxDay.Add(60*24*time.Hour), 5).Name, Reason: "banjir"}
		}, managed},
		{"EnrollCadre", enrolers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.EnrollCadreRequest{Parent: w.open[s].Name, Cadre: w.newCadre(t, s).Name}
		}, personal},
		{"ListEnrollments", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListEnrollmentsRequest{Parent: w.done[s].Name, PageSize: 1000}
		}, nil},
		{"DeleteEnrollment", enrolers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			c := w.newCadre(t, s)
			w.enroll(t, w.open[s], c)
			return &knkv1.DeleteEnrollmentRequest{Name: w.open[s].Name + "/enrollments/" + strings.TrimPrefix(c.Name, "cadres/")}
		}, func(r mxRole, s side) codes.Code {
			if r.p.Kind == auth.TrainingUnit {
				return managed(r, s) // the session decides for a unit
			}
			return personal(r, s) // the cadre decides for a federation
		}},
		{"RecordResults", trainers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.RecordResultsRequest{Name: w.open[s].Name, Results: []*knkv1.SessionResult{
				{Cadre: w.openCadre[s].Name, Attended: true, Scores: map[string]int32{"TOPIC_K3": 80}}}}
		}, managed},
		{"CompleteSession", trainers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.CompleteSessionRequest{Name: w.newSession(t, s, mxDay.Add(90*24*time.Hour), 5).Name}
		}, managed},

		// Certificates.
		{"IssueCertificate", trainers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			c := w.trained[s][0]
			w.trained[s] = w.trained[s][1:]
			return &knkv1.IssueCertificateRequest{Cadre: c.Name}
		}, personal},
		{"GetCertificate", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.GetCertificateRequest{Name: w.cert[s].Name}
		}, personal},
		{"ListCertificates", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListCertificatesRequest{ProvinceCode: w.prov[s], PageSize: 1000}
		}, nil},
		{"RevokeCertificate", trainers, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			c := w.certs[s][0]
			w.certs[s] = w.certs[s][1:]
			return &knkv1.RevokeCertificateRequest{Name: c.Name, Reason: "data salah"}
		}, personal},
		{"VerifyCertificate", nil, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.VerifyCertificateRequest{Name: w.cert[s].Name}
		}, nil},
		{"VerifyCertificateByCode", nil, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			full, err := w.Certs.GetCertificate(testenv.Ctx(w.AdminKey), &knkv1.GetCertificateRequest{Name: w.cert[s].Name})
			if err != nil {
				t.Fatal(err)
			}
			return &knkv1.VerifyCertificateByCodeRequest{Code: full.VerificationCode}
		}, nil},
		{"ListSigningKeys", nil, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListSigningKeysRequest{}
		}, nil},
		{"GetCertificatePdf", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.GetCertificatePdfRequest{Name: w.cert[s].Name}
		}, func(r mxRole, s side) codes.Code {
			if r.p.Kind == auth.TrainingUnit && r.p.Province == "" {
				return codes.NotFound // only the unit that issued it prints it, not the central unit
			}
			return personal(r, s)
		}},
		// Signing keys: admin only. Each call works on a key made for it, which has
		// signed nothing, so the other rows' certificates stay valid.
		{"RotateSigningKey", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.RotateSigningKeyRequest{}
		}, nil},
		{"RevokeSigningKey", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.RevokeSigningKeyRequest{KeyId: w.unusedKey(t, false), RevokedFrom: timestamppb.New(w.Clock.Now())}
		}, nil},
		{"ResignCertificates", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ResignCertificatesRequest{KeyId: w.unusedKey(t, true)}
		}, nil},

		// Forums and statistics carry counts; memberships follow scope.
		{"ListForums", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListForumsRequest{}
		}, nil},
		{"GetForum", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.GetForumRequest{Name: "forums/" + w.prov[s]}
		}, nil},
		{"ListForumMembers", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListForumMembersRequest{Parent: "forums/" + w.prov[s], PageSize: 1000}
		}, nil},
		{"ListProvinceStats", keyed, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListProvinceStatsRequest{}
		}, nil},

		// The change log names resources, never data, and is the admin's.
		{"ListEvents", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.ListEventsRequest{PageSize: 10}
		}, nil},
		{"WatchEvents", admins, func(t *testing.T, w *mxWorld, r mxRole, s side) proto.Message {
			return &knkv1.WatchEventsRequest{}
		}, nil},
	}
}

func (c mxCase) expect(r mxRole, s side) codes.Code {
	switch {
	case c.kinds == nil:
		return codes.OK
	case r.key == "":
		return codes.Unauthenticated
	case !slices.Contains(c.kinds, r.p.Kind):
		return codes.PermissionDenied
	case c.want == nil:
		return codes.OK
	}
	return c.want(r, s)
}

func TestRoleMethodScopeMatrix(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the full matrix: several thousand calls")
	}
	w, roles := mxSetup(t)
	cases := mxCases()
	methods := map[string]protoreflect.MethodDescriptor{}
	for _, m := range knkMethods(t) {
		methods[string(m.Name())] = m
	}
	for _, c := range cases {
		if methods[c.method] == nil {
			t.Fatalf("the matrix names %s, which is not a knk.v1 method", c.method)
		}
		delete(methods, c.method)
	}
	for name := range methods {
		t.Errorf("%s is missing from the matrix: every method needs its row", name)
	}
	transports := []struct {
		name string
		call func(t *testing.T, m protoreflect.MethodDescriptor, key string, req proto.Message) (proto.Message, codes.Code)
	}{
		{"grpc", func(t *testing.T, m protoreflect.MethodDescriptor, key string, req proto.Message) (proto.Message, codes.Code) {
			return callGRPC(t, w.Conn, m, key, req)
		}},
		{"rest", func(t *testing.T, m protoreflect.MethodDescriptor, key string, req proto.Message) (proto.Message, codes.Code) {
			return callREST(t, w.Env, m, key, req)
		}},
	}
	calls := 0
	for _, c := range cases {
		m := methodByName(t, c.method)
		for _, r := range roles {
			for _, s := range []side{sideX, sideY} {
				for _, tr := range transports {
					want := c.expect(r, s)
					req := c.build(t, w, r, s)
					resp, got := tr.call(t, m, r.key, req)
					calls++
					if got != want {
						t.Errorf("%s %s on side %s (in scope: %v) over %s: %v, want %v", r.name, c.method, s, r.in[s], tr.name, got, want)
						continue
					}
					if got == codes.OK && r.key != "" {
						w.checkDisclosed(t, fmt.Sprintf("%s %s %s %s", r.name, c.method, s, tr.name), r, resp)
					}
				}
			}
		}
	}
	t.Logf("%d calls, %d roles × %d methods × 2 sides × 2 transports", calls, len(roles), len(cases))
}

func methodByName(t *testing.T, name string) protoreflect.MethodDescriptor {
	for _, m := range knkMethods(t) {
		if string(m.Name()) == name {
			return m
		}
	}
	t.Fatalf("no method %s", name)
	return nil
}

// checkDisclosed walks an answer and checks every record about a person in it:
// that the role may read it at all (scope), and that each of its fields is what
// the disclosure table grants the role, compared with admin's full view.
func (w *mxWorld) checkDisclosed(t *testing.T, what string, r mxRole, resp proto.Message) {
	t.Helper()
	w.cache = map[string]any{}
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if pol, ok := disclosure.Policy(m.Descriptor().FullName()); ok {
			w.checkRecord(t, what, r, pol, m.Interface())
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message())
				}
			case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
				walk(v.Message())
			}
			return true
		})
	}
	walk(resp.ProtoReflect())
}

func (w *mxWorld) checkRecord(t *testing.T, what string, r mxRole, pol disclosure.Resource, got proto.Message) {
	t.Helper()
	full, audience, visible := w.adminView(t, r, got)
	if !visible {
		t.Errorf("%s: the answer holds %s, outside the role's scope", what, fieldValue(got.ProtoReflect(), "name"))
		return
	}
	fr, gr := full.ProtoReflect(), got.ProtoReflect()
	fields := fr.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch pol.Field(string(fd.Name())).For(audience) {
		case disclosure.Shown:
			if !gr.Get(fd).Equal(fr.Get(fd)) {
				t.Errorf("%s: %s.%s = %v, want %v (shown to %s)", what, pol.Title, fd.Name(), gr.Get(fd), fr.Get(fd), audience)
			}
		case disclosure.Hidden:
			if gr.Has(fd) {
				t.Errorf("%s: %s.%s = %v, want nothing (hidden from %s)", what, pol.Title, fd.Name(), gr.Get(fd), audience)
			}
		case disclosure.Masked:
			if want := disclosure.Mask(pol.Message, string(fd.Name()), fr.Get(fd).String()); gr.Get(fd).String() != want {
				t.Errorf("%s: %s.%s = %v, want %s (masked for %s)", what, pol.Title, fd.Name(), gr.Get(fd), want, audience)
			}
		}
	}
}

// adminView returns admin's view of the record got, the role's audience for it,
// and whether the record is in the role's scope.
func (w *mxWorld) adminView(t *testing.T, r mxRole, got proto.Message) (proto.Message, disclosure.Audience, bool) {
	t.Helper()
	admin := testenv.Ctx(w.AdminKey)
	cadreOf := func(name string) *knkv1.Cadre {
		return cached(t, w, name, func() (*knkv1.Cadre, error) {
			return w.Cadres.GetCadre(admin, &knkv1.GetCadreRequest{Name: name})
		})
	}
	cadreVisible := func(c *knkv1.Cadre) bool {
		switch r.p.Kind {
		case auth.Admin:
			return true
		case auth.Federation:
			return c.Federation == r.p.OrgName()
		}
		return r.p.InProvince(c.ProvinceCode)
	}
	find := func(list []proto.Message, name string) proto.Message {
		for _, m := range list {
			if m.ProtoReflect().Get(m.ProtoReflect().Descriptor().Fields().ByName("name")).String() == name {
				return m
			}
		}
		t.Fatalf("admin does not see %s", name)
		return nil
	}
	switch g := got.(type) {
	case *knkv1.Cadre:
		c := cadreOf(g.Name)
		return c, disclosure.Of(r.p, c.Federation, ""), cadreVisible(c)
	case *knkv1.Certificate:
		full, err := w.Certs.GetCertificate(admin, &knkv1.GetCertificateRequest{Name: g.Name})
		if err != nil {
			t.Fatal(err)
		}
		c := cadreOf(full.Cadre)
		own := r.p.Kind == auth.TrainingUnit && full.Issuer == r.p.OrgName()
		return full, disclosure.Of(r.p, c.Federation, full.Issuer), cadreVisible(c) || own
	case *knkv1.Enrollment:
		parent, _, _ := strings.Cut(g.Name, "/enrollments/")
		sess := cached(t, w, parent, func() (*knkv1.Session, error) {
			return w.Training.GetSession(admin, &knkv1.GetSessionRequest{Name: parent})
		})
		list := cached(t, w, parent+"/enrollments", func() (*knkv1.ListEnrollmentsResponse, error) {
			return w.Training.ListEnrollments(admin, &knkv1.ListEnrollmentsRequest{Parent: parent, PageSize: 1000})
		})
		var all []proto.Message
		for _, e := range list.Enrollments {
			all = append(all, e)
		}
		c := cadreOf(g.Cadre)
		sees := r.p.Kind == auth.Admin || (r.p.Kind == auth.TrainingUnit && (r.p.Province == "" || sess.Organizer == r.p.OrgName())) ||
			(r.p.Kind == auth.Inspector && r.p.InProvince(sess.ProvinceCode))
		return find(all, g.Name), disclosure.Of(r.p, c.Federation, sess.Organizer), sees || cadreVisible(c)
	case *knkv1.ForumMembership:
		parent, _, _ := strings.Cut(g.Name, "/members/")
		list := cached(t, w, parent+"/members", func() (*knkv1.ListForumMembersResponse, error) {
			return w.Forums.ListForumMembers(admin, &knkv1.ListForumMembersRequest{Parent: parent, PageSize: 1000})
		})
		var all []proto.Message
		for _, m := range list.Members {
			all = append(all, m)
		}
		c := cadreOf(g.Cadre)
		sees := r.p.Kind != auth.Federation && r.p.InProvince(strings.TrimPrefix(parent, "forums/"))
		return find(all, g.Name), disclosure.Of(r.p, c.Federation, ""), sees || cadreVisible(c)
	case *knkv1.TransferRequest:
		list := cached(t, w, "transferRequests", func() (*knkv1.ListTransferRequestsResponse, error) {
			return w.Cadres.ListTransferRequests(admin, &knkv1.ListTransferRequestsRequest{PageSize: 1000})
		})
		var all []proto.Message
		for _, m := range list.TransferRequests {
			all = append(all, m)
		}
		full := find(all, g.Name).(*knkv1.TransferRequest)
		a := disclosure.OtherFederation
		switch {
		case r.p.Kind == auth.Admin:
			a = disclosure.Admin
		case full.FromFederation == r.p.OrgName():
			a = disclosure.OwnFederation
		}
		return full, a, r.p.Kind == auth.Admin || full.FromFederation == r.p.OrgName() || full.ToFederation == r.p.OrgName()
	}
	t.Fatalf("no admin view for %T", got)
	return nil, 0, false
}

// unusedKey rotates the signing key and returns the id of the new key, which has
// signed nothing; revoked, it is revoked from now on (which rotates again).
func (w *mxWorld) unusedKey(t *testing.T, revoked bool) string {
	t.Helper()
	admin := testenv.Ctx(w.AdminKey)
	k, err := w.Certs.RotateSigningKey(admin, &knkv1.RotateSigningKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if revoked {
		if _, err := w.Certs.RevokeSigningKey(admin, &knkv1.RevokeSigningKeyRequest{KeyId: k.KeyId, RevokedFrom: timestamppb.New(w.Clock.Now())}); err != nil {
			t.Fatal(err)
		}
	}
	return k.KeyId
}

// cached returns admin's read of key during the check of one answer, reading it
// once.
func cached[T any](t *testing.T, w *mxWorld, key string, read func() (T, error)) T {
	t.Helper()
	if v, ok := w.cache[key]; ok {
		return v.(T)
	}
	v, err := read()
	if err != nil {
		t.Fatalf("admin reads %s: %v", key, err)
	}
	w.cache[key] = v
	return v
}
