package training_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// Every free-text field of every service refuses each class of hidden or
// reordering character through a real server, with INVALID_ARGUMENT naming the
// field, the class and the position, and stores nothing.
func TestFreeTextRefusesHiddenCharacters(t *testing.T) {
	w := setup(t)
	sess := w.session(t, w.dki, newSession(day, 10, k3))
	cadre := w.cadre(t, w.fed)
	classes := []struct {
		name, char, class string
	}{
		{"NUL", "\x00", "control character: U+0000"},
		{"ESC", "\x1b", "control character: U+001B"},
		{"LF", "\n", "line break: U+000A"},
		{"CR", "\r", "line break: U+000D"},
		{"right-to-left override", "\u202e", "bidirectional formatting character: U+202E"},
		{"first strong isolate", "\u2068", "bidirectional formatting character: U+2068"},
		{"right-to-left mark", "\u200f", "bidirectional formatting character: U+200F"},
		{"zero-width space", "\u200b", "zero-width character: U+200B"},
		{"zero-width joiner", "\u200d", "zero-width character: U+200D"},
		{"byte order mark", "\ufeff", "zero-width character: U+FEFF"},
	}
	fedCtx, unitCtx, adminCtx := testenv.Ctx(w.fed), testenv.Ctx(w.dki), testenv.Ctx(w.AdminKey)
	fields := []struct {
		field     string
		multiline bool // reasons take line feeds
		call      func(ctx context.Context, bad string) error
	}{
		{"cadre.display_name", false, func(_ context.Context, bad string) error {
			_, err := w.Cadres.CreateCadre(fedCtx, &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
				DisplayName: bad, Nik: "3171051508900099", ProvinceCode: "31"}})
			return err
		}},
		{"cadre.regency", false, func(_ context.Context, bad string) error {
			_, err := w.Cadres.CreateCadre(fedCtx, &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
				DisplayName: "Siti", Regency: bad, Nik: "3171051508900099", ProvinceCode: "31"}})
			return err
		}},
		{"cadre.employer.name", false, func(_ context.Context, bad string) error {
			_, err := w.Cadres.CreateCadre(fedCtx, &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
				DisplayName: "Siti", Employer: &knkv1.Employer{Name: bad}, Nik: "3171051508900099", ProvinceCode: "31"}})
			return err
		}},
		{"cadre.union_member_number", false, func(_ context.Context, bad string) error {
			_, err := w.Cadres.CreateCadre(fedCtx, &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
				DisplayName: "Siti", UnionMemberNumber: bad, Nik: "3171051508900099", ProvinceCode: "31"}})
			return err
		}},
		{"reason", true, func(_ context.Context, bad string) error {
			_, err := w.Cadres.WithdrawCadre(fedCtx, &knkv1.WithdrawCadreRequest{Name: cadre.Name, Reason: bad})
			return err
		}},
		{"session.title", false, func(_ context.Context, bad string) error {
			s := newSession(day, 10, k3)
			s.Title = bad
			_, err := w.Training.CreateSession(unitCtx, &knkv1.CreateSessionRequest{Session: s})
			return err
		}},
		{"session.venue", false, func(_ context.Context, bad string) error {
			s := newSession(day, 10, k3)
			s.Venue = bad
			_, err := w.Training.CreateSession(unitCtx, &knkv1.CreateSessionRequest{Session: s})
			return err
		}},
		{"reason", true, func(_ context.Context, bad string) error {
			_, err := w.Training.CancelSession(unitCtx, &knkv1.CancelSessionRequest{Name: sess.Name, Reason: bad})
			return err
		}},
		{"organization.display_name", false, func(_ context.Context, bad string) error {
			_, err := w.Orgs.CreateOrganization(adminCtx, &knkv1.CreateOrganizationRequest{OrganizationId: "baru",
				Organization: &knkv1.Organization{Kind: knkv1.Organization_KIND_FEDERATION, DisplayName: bad}})
			return err
		}},
	}
	for _, f := range fields {
		for _, c := range classes {
			if f.multiline && c.name == "LF" {
				continue
			}
			t.Run(f.field+"/"+c.name, func(t *testing.T) {
				err := f.call(context.Background(), "Ab"+c.char+"cd")
				want := c.class + " at character 3"
				if status.Code(err) != codes.InvalidArgument {
					t.Fatalf("got %v, want INVALID_ARGUMENT", err)
				}
				var got []*errdetails.BadRequest_FieldViolation
				for _, d := range status.Convert(err).Details() {
					if br, ok := d.(*errdetails.BadRequest); ok {
						got = append(got, br.FieldViolations...)
					}
				}
				if len(got) != 1 || got[0].Field != f.field || !strings.Contains(got[0].Description, want) {
					t.Errorf("violations %v, want one on %s saying %q", got, f.field, want)
				}
			})
		}
	}
	// Nothing was stored: the session is still scheduled, the cadre active, no
	// new cadre or organization exists.
	if s, err := w.Training.GetSession(unitCtx, &knkv1.GetSessionRequest{Name: sess.Name}); err != nil || s.State != knkv1.Session_STATE_SCHEDULED {
		t.Errorf("session after refused cancels: %v %v", s, err)
	}
	if l, err := w.Cadres.ListCadres(adminCtx, &knkv1.ListCadresRequest{}); err != nil || len(l.Cadres) != 1 || l.Cadres[0].State != knkv1.Cadre_STATE_ACTIVE {
		t.Errorf("cadres after refused creates and withdrawals: %v %v", l, err)
	}

	// Over REST the same refusal arrives as 400 with the BadRequest detail.
	resp := w.REST(t, http.MethodPost, "/v1/sessions", w.dki, map[string]any{
		"title": "Pelatihan \u202eKNK", "topics": []string{"TOPIC_K3"}, "province_code": "31", "venue": "Gedung",
		"mode": "MODE_IN_PERSON", "capacity": 10,
		"start_time": day.Format("2006-01-02T15:04:05Z"), "end_time": day.Add(7 * 3600e9).Format("2006-01-02T15:04:05Z"),
	})
	if resp.Status != http.StatusBadRequest || !strings.Contains(string(resp.Raw), `"field":"session.title"`) ||
		!strings.Contains(string(resp.Raw), "bidirectional formatting character: U+202E at character 11") {
		t.Errorf("REST: %d %s", resp.Status, resp.Raw)
	}
	// NFC: a decomposed name is stored composed.
	s := newSession(day, 10, k3)
	s.Title, s.StartTime = "Pelatihan Andre\u0301", timestamppb.New(day.Add(24*3600e9))
	s.EndTime = timestamppb.New(day.Add(25 * 3600e9))
	if out := w.session(t, w.dki, s); out.Title != "Pelatihan Andr\u00e9" {
		t.Errorf("title stored as %q, want NFC", out.Title)
	}
}
