package cadre_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/cadre"
)

var _ knkv1.CadreServiceServer = (*cadre.Service)(nil)

// nik returns the i-th distinct valid NIK of a man born 15 Aug 1990 in Jakarta.
func nik(i int) string {
	return fmt.Sprintf("3171%02d150890%04d", 1+(i/9999)%99, 1+i%9999)
}

func newCadre(i int) *knkv1.Cadre {
	return &knkv1.Cadre{
		DisplayName: fmt.Sprintf("Kader %d", i), Nik: nik(i), Phone: "0812-3456-7890",
		ProvinceCode: "31", Regency: "Jakarta Timur",
		Employer: &knkv1.Employer{Name: "PT Maju Jaya", Nib: "1234567890123"},
		BpjsKpj:  "12345678901", UnionMemberNumber: "KSBSI-001",
	}
}

type world struct {
	*testenv.Env
	fed, otherFed, central, provincial, otherProvince, inspector string
}

func setup(t *testing.T) world {
	t.Helper()
	e := testenv.Start(t)
	return world{
		Env:           e,
		fed:           e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, ""),
		otherFed:      e.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, ""),
		central:       e.Org(t, "kemnaker-pusat", knkv1.Organization_KIND_TRAINING_UNIT, ""),
		provincial:    e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31"),
		otherProvince: e.Org(t, "disnaker-kalbar", knkv1.Organization_KIND_TRAINING_UNIT, "61"),
		inspector:     e.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31"),
	}
}

func (w world) create(t *testing.T, key string, c *knkv1.Cadre) *knkv1.Cadre {
	t.Helper()
	out, err := w.Cadres.CreateCadre(testenv.Ctx(key), &knkv1.CreateCadreRequest{Cadre: c})
	if err != nil {
		t.Fatalf("create cadre: %v", err)
	}
	return out
}

func (w world) count(t *testing.T) int {
	t.Helper()
	n, token := 0, ""
	for {
		resp, err := w.Cadres.ListCadres(testenv.Ctx(w.AdminKey), &knkv1.ListCadresRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		n += len(resp.Cadres)
		if token = resp.NextPageToken; token == "" {
			return n
		}
	}
}

// violations returns the BadRequest fields of an INVALID_ARGUMENT error.
func violations(t *testing.T, err error) []string {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want INVALID_ARGUMENT", err)
	}
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				fields = append(fields, v.Field)
			}
		}
	}
	return fields
}

func TestCreateDerivesAndNormalises(t *testing.T) {
	w := setup(t)
	in := newCadre(1)
	in.Nik = "6171055508900004" // a woman born 15 Aug 1990 (day + 40)
	in.ProvinceCode = "61"
	got := w.create(t, w.fed, in)
	checks := []struct{ name, got, want string }{
		{"name prefix", got.Name[:7], "cadres/"},
		{"birth_date", got.BirthDate, "1990-08-15"},
		{"gender", got.Gender.String(), "GENDER_FEMALE"},
		{"phone", got.Phone, "+6281234567890"},
		{"state", got.State.String(), "STATE_ACTIVE"},
		{"federation", got.Federation, "organizations/ksbsi"},
		{"nik for the enrolling federation", got.Nik, "6171055508900004"},
		{"etag", got.Etag, "1"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestCreateRejectsBadInputAndStoresNothing(t *testing.T) {
	w := setup(t)
	tests := []struct {
		name  string
		edit  func(c *knkv1.Cadre)
		field string
	}{
		{"missing name", func(c *knkv1.Cadre) { c.DisplayName = " " }, "cadre.display_name"},
		{"missing nik", func(c *knkv1.Cadre) { c.Nik = "" }, "cadre.nik"},
		{"short nik", func(c *knkv1.Cadre) { c.Nik = "317101150890001" }, "cadre.nik"},
		{"nik unknown province", func(c *knkv1.Cadre) { c.Nik = "2071011508900001" }, "cadre.nik"},
		{"nik regency 00", func(c *knkv1.Cadre) { c.Nik = "3100011508900001" }, "cadre.nik"},
		{"nik impossible date", func(c *knkv1.Cadre) { c.Nik = "3171013102900001" }, "cadre.nik"},
		{"nik serial 0000", func(c *knkv1.Cadre) { c.Nik = "3171011508900000" }, "cadre.nik"},
		{"under 18", func(c *knkv1.Cadre) { c.Nik = "3171011508100001" }, "cadre.nik"},
		{"birth date disagrees", func(c *knkv1.Cadre) { c.BirthDate = "1990-08-16" }, "cadre.birth_date"},
		{"birth date malformed", func(c *knkv1.Cadre) { c.BirthDate = "15/08/1990" }, "cadre.birth_date"},
		{"gender disagrees", func(c *knkv1.Cadre) { c.Gender = knkv1.Cadre_GENDER_FEMALE }, "cadre.gender"},
		{"two phone numbers", func(c *knkv1.Cadre) { c.Phone = "021-555-1234 / 0812-3456-7890" }, "cadre.phone"},
		{"bad email", func(c *knkv1.Cadre) { c.Email = "budi at example" }, "cadre.email"},
		{"missing province", func(c *knkv1.Cadre) { c.ProvinceCode = "" }, "cadre.province_code"},
		{"unknown province", func(c *knkv1.Cadre) { c.ProvinceCode = "99" }, "cadre.province_code"},
		{"short NIB", func(c *knkv1.Cadre) { c.Employer.Nib = "123" }, "cadre.employer.nib"},
		{"KPJ with letters", func(c *knkv1.Cadre) { c.BpjsKpj = "1234567890A" }, "cadre.bpjs_kpj"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCadre(i)
			tt.edit(c)
			_, err := w.Cadres.CreateCadre(testenv.Ctx(w.fed), &knkv1.CreateCadreRequest{Cadre: c})
			if got := violations(t, err); len(got) != 1 || got[0] != tt.field {
				t.Errorf("violations = %v, want [%s]", got, tt.field)
			}
		})
	}
	if n := w.count(t); n != 0 {
		t.Errorf("%d cadres stored after only bad requests", n)
	}
}

func TestCreateListsEveryViolation(t *testing.T) {
	w := setup(t)
	c := newCadre(1)
	c.Phone, c.Email, c.BpjsKpj = "12", "x", "1"
	got := violations(t, func() error {
		_, err := w.Cadres.CreateCadre(testenv.Ctx(w.fed), &knkv1.CreateCadreRequest{Cadre: c})
		return err
	}())
	if strings.Join(got, ",") != "cadre.phone,cadre.email,cadre.bpjs_kpj" {
		t.Errorf("violations = %v", got)
	}
}

func TestAdminMustNameARegisteredFederation(t *testing.T) {
	w := setup(t)
	tests := []struct{ federation, wantField string }{
		{"", "cadre.federation"},
		{"organizations/nope", "cadre.federation"},
		{"organizations/disnaker-dki", "cadre.federation"},
	}
	for i, tt := range tests {
		c := newCadre(i)
		c.Federation = tt.federation
		_, err := w.Cadres.CreateCadre(testenv.Ctx(w.AdminKey), &knkv1.CreateCadreRequest{Cadre: c})
		if got := violations(t, err); len(got) != 1 || got[0] != tt.wantField {
			t.Errorf("federation %q: violations %v", tt.federation, got)
		}
	}
	c := newCadre(9)
	c.Federation = "organizations/kspsi"
	if got := w.create(t, w.AdminKey, c); got.Federation != "organizations/kspsi" {
		t.Errorf("federation = %s", got.Federation)
	}
	c = newCadre(10)
	c.Federation = "organizations/kspsi"
	_, err := w.Cadres.CreateCadre(testenv.Ctx(w.fed), &knkv1.CreateCadreRequest{Cadre: c})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("federation registering for another: %v", err)
	}
}

func TestDuplicateNIK(t *testing.T) {
	w := setup(t)
	w.create(t, w.fed, newCadre(1))
	dup := newCadre(1)
	dup.DisplayName = "Someone else"
	for _, key := range []string{w.fed, w.otherFed} {
		_, err := w.Cadres.CreateCadre(testenv.Ctx(key), &knkv1.CreateCadreRequest{Cadre: dup})
		if status.Code(err) != codes.AlreadyExists {
			t.Errorf("duplicate NIK: %v, want ALREADY_EXISTS", err)
		}
		if strings.Contains(status.Convert(err).Message(), dup.Nik) {
			t.Errorf("error message leaks the NIK: %s", status.Convert(err).Message())
		}
	}
	if n := w.count(t); n != 1 {
		t.Errorf("%d cadres, want 1", n)
	}
}

func TestCreateRetryWithRequestID(t *testing.T) {
	w := setup(t)
	req := &knkv1.CreateCadreRequest{Cadre: newCadre(1), RequestId: "6f1c2a9e-0d5b-4c1a-9a43-1f2e3d4c5b6a"}
	first, err := w.Cadres.CreateCadre(testenv.Ctx(w.fed), req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.Cadres.CreateCadre(testenv.Ctx(w.fed), req)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if again.Name != first.Name || again.Etag != first.Etag {
		t.Errorf("retry returned %s (etag %s), first was %s (etag %s)", again.Name, again.Etag, first.Name, first.Etag)
	}
	if n := w.count(t); n != 1 {
		t.Errorf("%d cadres after a retry, want 1", n)
	}
	// The same request id over REST (query string) is the same request too.
	body := map[string]any{"display_name": "Kader 1", "nik": nik(1), "province_code": "31"}
	r := w.REST(t, http.MethodPost, "/v1/cadres?request_id="+req.RequestId, w.fed, body)
	if r.Status != http.StatusOK || r.Body["name"] != first.Name {
		t.Errorf("REST retry: %d %s", r.Status, r.Raw)
	}
}

func TestConcurrentCreatesAllLand(t *testing.T) {
	w := setup(t)
	const n = 64
	var wg sync.WaitGroup
	names := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := w.Cadres.CreateCadre(testenv.Ctx(w.fed), &knkv1.CreateCadreRequest{Cadre: newCadre(i)})
			names[i], errs[i] = c.GetName(), err
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		seen[names[i]] = true
	}
	if len(seen) != n || w.count(t) != n {
		t.Errorf("%d distinct names, %d stored; want %d", len(seen), w.count(t), n)
	}
}

var freshCount atomic.Int64

// fresh returns a cadre with a NIK no other call of fresh returns.
func fresh() *knkv1.Cadre { return newCadre(5000 + int(freshCount.Add(1))) }

type method struct {
	name string
	call func(w world, key string, c *knkv1.Cadre) error
}

func methods() []method {
	return []method{
		{"CreateCadre", func(w world, key string, c *knkv1.Cadre) error {
			in := fresh()
			in.Federation = "organizations/ksbsi"
			_, err := w.Cadres.CreateCadre(testenv.Ctx(key), &knkv1.CreateCadreRequest{Cadre: in})
			return err
		}},
		{"GetCadre", func(w world, key string, c *knkv1.Cadre) error {
			_, err := w.Cadres.GetCadre(testenv.Ctx(key), &knkv1.GetCadreRequest{Name: c.Name})
			return err
		}},
		{"ListCadres", func(w world, key string, c *knkv1.Cadre) error {
			_, err := w.Cadres.ListCadres(testenv.Ctx(key), &knkv1.ListCadresRequest{})
			return err
		}},
		{"UpdateCadre", func(w world, key string, c *knkv1.Cadre) error {
			_, err := w.Cadres.UpdateCadre(testenv.Ctx(key), &knkv1.UpdateCadreRequest{
				Cadre: &knkv1.Cadre{Name: c.Name, Regency: "Jakarta Barat"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"regency"}}})
			return err
		}},
		{"LookupCadre", func(w world, key string, c *knkv1.Cadre) error {
			_, err := w.Cadres.LookupCadre(testenv.Ctx(key), &knkv1.LookupCadreRequest{Nik: c.Nik})
			return err
		}},
		{"ImportCadres", func(w world, key string, c *knkv1.Cadre) error {
			s, err := w.Cadres.ImportCadres(testenv.Ctx(key))
			if err == nil {
				_, err = cadre.CloseImport(s)
			}
			return err
		}},
		{"WithdrawCadre", func(w world, key string, c *knkv1.Cadre) error {
			_, err := w.Cadres.WithdrawCadre(testenv.Ctx(key), &knkv1.WithdrawCadreRequest{Name: c.Name, Reason: "moved abroad"})
			return err
		}},
	}
}

// TestRoles calls every method with every role on a cadre of ksbsi in DKI
// Jakarta (31). Writes are for the enrolling federation and admin; reads for
// everyone within their scope. A cadre outside the caller's scope is NOT_FOUND,
// as if it did not exist; a method the role may never call is PERMISSION_DENIED.
func TestRoles(t *testing.T) {
	w := setup(t)
	want := map[string]map[string]codes.Code{
		"admin":            {"CreateCadre": codes.OK, "GetCadre": codes.OK, "ListCadres": codes.OK, "UpdateCadre": codes.OK, "LookupCadre": codes.OK, "ImportCadres": codes.OK, "WithdrawCadre": codes.OK},
		"own federation":   {"CreateCadre": codes.OK, "GetCadre": codes.OK, "ListCadres": codes.OK, "UpdateCadre": codes.OK, "LookupCadre": codes.OK, "ImportCadres": codes.OK, "WithdrawCadre": codes.OK},
		"other federation": {"CreateCadre": codes.PermissionDenied, "GetCadre": codes.NotFound, "ListCadres": codes.OK, "UpdateCadre": codes.NotFound, "LookupCadre": codes.NotFound, "ImportCadres": codes.OK, "WithdrawCadre": codes.NotFound},
		"central unit":     {"CreateCadre": codes.PermissionDenied, "GetCadre": codes.OK, "ListCadres": codes.OK, "UpdateCadre": codes.PermissionDenied, "LookupCadre": codes.OK, "ImportCadres": codes.PermissionDenied, "WithdrawCadre": codes.PermissionDenied},
		"unit in province": {"CreateCadre": codes.PermissionDenied, "GetCadre": codes.OK, "ListCadres": codes.OK, "UpdateCadre": codes.PermissionDenied, "LookupCadre": codes.OK, "ImportCadres": codes.PermissionDenied, "WithdrawCadre": codes.PermissionDenied},
		"unit elsewhere":   {"CreateCadre": codes.PermissionDenied, "GetCadre": codes.NotFound, "ListCadres": codes.OK, "UpdateCadre": codes.PermissionDenied, "LookupCadre": codes.NotFound, "ImportCadres": codes.PermissionDenied, "WithdrawCadre": codes.PermissionDenied},
		"inspector":        {"CreateCadre": codes.PermissionDenied, "GetCadre": codes.OK, "ListCadres": codes.OK, "UpdateCadre": codes.PermissionDenied, "LookupCadre": codes.OK, "ImportCadres": codes.PermissionDenied, "WithdrawCadre": codes.PermissionDenied},
		"no key":           {"CreateCadre": codes.Unauthenticated, "GetCadre": codes.Unauthenticated, "ListCadres": codes.Unauthenticated, "UpdateCadre": codes.Unauthenticated, "LookupCadre": codes.Unauthenticated, "ImportCadres": codes.Unauthenticated, "WithdrawCadre": codes.Unauthenticated},
		"unknown key":      {"CreateCadre": codes.Unauthenticated, "GetCadre": codes.Unauthenticated, "ListCadres": codes.Unauthenticated, "UpdateCadre": codes.Unauthenticated, "LookupCadre": codes.Unauthenticated, "ImportCadres": codes.Unauthenticated, "WithdrawCadre": codes.Unauthenticated},
	}
	keys := map[string]string{
		"admin": w.AdminKey, "own federation": w.fed, "other federation": w.otherFed,
		"central unit": w.central, "unit in province": w.provincial, "unit elsewhere": w.otherProvince,
		"inspector": w.inspector, "no key": "", "unknown key": "knk_01jxyz_notakey",
	}
	for role, key := range keys {
		for _, m := range methods() {
			t.Run(role+"/"+m.name, func(t *testing.T) {
				c := w.create(t, w.fed, fresh())
				stored, _ := w.Cadres.GetCadre(testenv.Ctx(w.AdminKey), &knkv1.GetCadreRequest{Name: c.Name})
				if got := status.Code(m.call(w, key, stored)); got != want[role][m.name] {
					t.Errorf("got %v, want %v", got, want[role][m.name])
				}
			})
		}
	}
}

func TestNIKMasking(t *testing.T) {
	w := setup(t)
	c := w.create(t, w.fed, newCadre(1))
	masked := "************0002"
	tests := []struct {
		role, key, want string
	}{
		{"admin", w.AdminKey, nik(1)},
		{"enrolling federation", w.fed, nik(1)},
		{"training unit", w.provincial, masked},
		{"inspector", w.inspector, masked},
	}
	for _, tt := range tests {
		ctx := testenv.Ctx(tt.key)
		got, err := w.Cadres.GetCadre(ctx, &knkv1.GetCadreRequest{Name: c.Name})
		if err != nil || got.Nik != tt.want {
			t.Errorf("%s: GetCadre nik %q (%v), want %q", tt.role, got.GetNik(), err, tt.want)
		}
		list, err := w.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{})
		if err != nil || len(list.Cadres) != 1 || list.Cadres[0].Nik != tt.want {
			t.Errorf("%s: ListCadres %v (%v), want nik %q", tt.role, list, err, tt.want)
		}
		found, err := w.Cadres.LookupCadre(ctx, &knkv1.LookupCadreRequest{Nik: nik(1)})
		if err != nil || found.Nik != tt.want {
			t.Errorf("%s: LookupCadre nik %q (%v), want %q", tt.role, found.GetNik(), err, tt.want)
		}
		r := w.REST(t, http.MethodGet, "/v1/"+c.Name, tt.key, nil)
		if r.Body["nik"] != tt.want {
			t.Errorf("%s: REST nik %v, want %q", tt.role, r.Body["nik"], tt.want)
		}
	}
}

func TestUpdateWithMaskAndEtag(t *testing.T) {
	w := setup(t)
	c := w.create(t, w.fed, newCadre(1))
	ctx := testenv.Ctx(w.fed)
	upd, err := w.Cadres.UpdateCadre(ctx, &knkv1.UpdateCadreRequest{
		Cadre:      &knkv1.Cadre{Name: c.Name, Etag: c.Etag, Phone: "+62 813 1111 2222", DisplayName: "ignored"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"phone"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Phone != "+6281311112222" || upd.DisplayName != c.DisplayName || upd.Etag == c.Etag {
		t.Errorf("after update: phone %s, name %s, etag %s (was %s)", upd.Phone, upd.DisplayName, upd.Etag, c.Etag)
	}
	_, err = w.Cadres.UpdateCadre(ctx, &knkv1.UpdateCadreRequest{
		Cadre:      &knkv1.Cadre{Name: c.Name, Etag: c.Etag, Regency: "Bekasi"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"regency"}},
	})
	if status.Code(err) != codes.Aborted {
		t.Errorf("stale etag: %v, want ABORTED", err)
	}
	r := w.REST(t, http.MethodPatch, "/v1/"+c.Name+"?update_mask=regency", w.fed, map[string]any{"regency": "Bekasi", "etag": c.Etag})
	if r.Status != http.StatusConflict {
		t.Errorf("REST stale etag: %d %s, want 409", r.Status, r.Raw)
	}
	bad := []struct {
		paths []string
		cadre *knkv1.Cadre
		field string
	}{
		{[]string{"nik"}, &knkv1.Cadre{Nik: nik(2)}, "update_mask"},
		{[]string{"state"}, &knkv1.Cadre{State: knkv1.Cadre_STATE_CERTIFIED}, "update_mask"},
		{[]string{"phone"}, &knkv1.Cadre{Phone: "123"}, "cadre.phone"},
		{[]string{"province_code"}, &knkv1.Cadre{ProvinceCode: "00"}, "cadre.province_code"},
	}
	for _, b := range bad {
		b.cadre.Name = c.Name
		_, err := w.Cadres.UpdateCadre(ctx, &knkv1.UpdateCadreRequest{Cadre: b.cadre, UpdateMask: &fieldmaskpb.FieldMask{Paths: b.paths}})
		if got := violations(t, err); len(got) == 0 || got[0] != b.field {
			t.Errorf("mask %v: violations %v, want %s", b.paths, got, b.field)
		}
	}
	now, err := w.Cadres.GetCadre(ctx, &knkv1.GetCadreRequest{Name: c.Name})
	if err != nil || now.Etag != upd.Etag || now.Regency != c.Regency {
		t.Errorf("a refused update changed the cadre: %v %v", now, err)
	}
	r = w.REST(t, http.MethodPatch, "/v1/"+c.Name+"?update_mask=regency", w.fed, map[string]any{"regency": "Bekasi", "etag": upd.Etag})
	if r.Status != http.StatusOK || r.Body["regency"] != "Bekasi" {
		t.Errorf("REST update: %d %s", r.Status, r.Raw)
	}
}

func TestWithdraw(t *testing.T) {
	w := setup(t)
	c := w.create(t, w.fed, newCadre(1))
	r := w.REST(t, http.MethodPost, "/v1/"+c.Name+":withdraw", w.fed, map[string]any{"reason": "left the union"})
	if r.Status != http.StatusOK || r.Body["state"] != "STATE_WITHDRAWN" || r.Body["withdraw_reason"] != "left the union" {
		t.Fatalf("withdraw: %d %s", r.Status, r.Raw)
	}
	ctx := testenv.Ctx(w.fed)
	_, err := w.Cadres.WithdrawCadre(ctx, &knkv1.WithdrawCadreRequest{Name: c.Name, Reason: "again"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("withdraw twice: %v, want FAILED_PRECONDITION", err)
	}
	_, err = w.Cadres.UpdateCadre(ctx, &knkv1.UpdateCadreRequest{Cadre: &knkv1.Cadre{Name: c.Name, Regency: "x"}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("update withdrawn: %v, want FAILED_PRECONDITION", err)
	}
	_, err = w.Cadres.WithdrawCadre(ctx, &knkv1.WithdrawCadreRequest{Name: c.Name})
	if got := violations(t, err); len(got) != 1 || got[0] != "reason" {
		t.Errorf("withdraw without reason: %v", got)
	}
	list, err := w.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{State: knkv1.Cadre_STATE_WITHDRAWN})
	if err != nil || len(list.Cadres) != 1 {
		t.Errorf("list withdrawn: %v %v", list, err)
	}
}

func TestLookupOverREST(t *testing.T) {
	w := setup(t)
	c := w.create(t, w.fed, newCadre(1))
	tests := []struct {
		body       string
		wantStatus int
	}{
		{`{"nik": "` + nik(1) + `"}`, http.StatusOK},
		{`{"nik": "` + nik(2) + `"}`, http.StatusNotFound},
		{`{"nik": "12345"}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		r := w.REST(t, http.MethodPost, "/v1/cadres:lookup", w.fed, tt.body)
		if r.Status != tt.wantStatus {
			t.Errorf("lookup %s: %d %s, want %d", tt.body, r.Status, r.Raw, tt.wantStatus)
		}
	}
	r := w.REST(t, http.MethodPost, "/v1/cadres:lookup", w.fed, `{"nik": "`+nik(1)+`"}`)
	if r.Body["name"] != c.Name {
		t.Errorf("lookup found %v, want %s", r.Body["name"], c.Name)
	}
}

func TestRESTErrorsCarryCodeAndFields(t *testing.T) {
	w := setup(t)
	r := w.REST(t, http.MethodPost, "/v1/cadres", "", map[string]any{"display_name": "x"})
	if r.Status != http.StatusUnauthorized || r.Body["code"] != float64(codes.Unauthenticated) {
		t.Errorf("no key: %d %s", r.Status, r.Raw)
	}
	r = w.REST(t, http.MethodPost, "/v1/cadres", w.fed, map[string]any{"displayName": "Budi", "nik": "123", "provinceCode": "31"})
	if r.Status != http.StatusBadRequest || r.Body["code"] != float64(codes.InvalidArgument) || !strings.Contains(r.Body["message"].(string), "cadre.nik") {
		t.Errorf("bad nik: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(string(r.Raw), `"field":"cadre.nik"`) && !strings.Contains(string(r.Raw), `"field": "cadre.nik"`) {
		t.Errorf("error body has no field violation for cadre.nik: %s", r.Raw)
	}
	r = w.REST(t, http.MethodPost, "/v1/cadres", w.fed, map[string]any{"display_name": "Budi", "nik": nik(1), "province_code": "31"})
	if r.Status != http.StatusOK || r.Body["nik"] != nik(1) || !strings.HasPrefix(r.Body["name"].(string), "cadres/") {
		t.Errorf("create over REST: %d %s", r.Status, r.Raw)
	}
}

func TestPaginationUnderConcurrentInserts(t *testing.T) {
	w := setup(t)
	var before []string
	for i := range 120 {
		before = append(before, w.create(t, w.fed, newCadre(i)).Name)
	}
	ctx := testenv.Ctx(w.fed)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 120; i < 220; i++ {
			w.Cadres.CreateCadre(ctx, &knkv1.CreateCadreRequest{Cadre: newCadre(i)})
		}
	}()
	seen := map[string]bool{}
	last, token := "", ""
	for {
		resp, err := w.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.Cadres {
			if seen[c.Name] || c.Name <= last {
				t.Fatalf("%s repeated or out of order after %s", c.Name, last)
			}
			seen[c.Name], last = true, c.Name
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	<-done
	for _, name := range before {
		if !seen[name] {
			t.Errorf("%s, created before the walk, was skipped", name)
		}
	}
	_, err := w.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{PageSize: 7, PageToken: func() string {
		r, _ := w.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{PageSize: 7})
		return r.NextPageToken
	}(), ProvinceCode: "61"})
	if got := violations(t, err); len(got) != 1 || got[0] != "page_token" {
		t.Errorf("token reused with another filter: %v", got)
	}
	if got := violations(t, func() error {
		_, err := w.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{PageToken: "garbage"})
		return err
	}()); len(got) != 1 || got[0] != "page_token" {
		t.Errorf("garbage token: %v", got)
	}
	resp, err := w.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{})
	if err != nil || len(resp.Cadres) != 50 {
		t.Errorf("default page size: %d (%v), want 50", len(resp.GetCadres()), err)
	}
	resp, err = w.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{PageSize: 5000})
	if err != nil || len(resp.Cadres) != 220 {
		t.Errorf("page size over the max: %d (%v)", len(resp.GetCadres()), err)
	}
}

func TestListFiltersAndScope(t *testing.T) {
	w := setup(t)
	for i := range 6 {
		c := newCadre(i)
		if i%2 == 1 {
			c.ProvinceCode = "61"
		}
		key := w.fed
		if i >= 4 {
			key = w.otherFed
		}
		w.create(t, key, c)
	}
	tests := []struct {
		name string
		key  string
		req  *knkv1.ListCadresRequest
		want int
		code codes.Code
	}{
		{"admin sees all", w.AdminKey, &knkv1.ListCadresRequest{}, 6, codes.OK},
		{"admin by province", w.AdminKey, &knkv1.ListCadresRequest{ProvinceCode: "61"}, 3, codes.OK},
		{"admin by federation", w.AdminKey, &knkv1.ListCadresRequest{Federation: "organizations/kspsi"}, 2, codes.OK},
		{"federation sees its own", w.fed, &knkv1.ListCadresRequest{}, 4, codes.OK},
		{"federation asking for another", w.fed, &knkv1.ListCadresRequest{Federation: "organizations/kspsi"}, 0, codes.PermissionDenied},
		{"provincial inspector", w.inspector, &knkv1.ListCadresRequest{}, 3, codes.OK},
		{"inspector asking elsewhere", w.inspector, &knkv1.ListCadresRequest{ProvinceCode: "61"}, 0, codes.PermissionDenied},
		{"central unit", w.central, &knkv1.ListCadresRequest{ProvinceCode: "61"}, 3, codes.OK},
		{"nobody passed K3 yet", w.AdminKey, &knkv1.ListCadresRequest{TopicPassed: knkv1.Topic_TOPIC_K3}, 0, codes.OK},
		{"active", w.AdminKey, &knkv1.ListCadresRequest{State: knkv1.Cadre_STATE_ACTIVE}, 6, codes.OK},
	}
	for _, tt := range tests {
		resp, err := w.Cadres.ListCadres(testenv.Ctx(tt.key), tt.req)
		if status.Code(err) != tt.code || len(resp.GetCadres()) != tt.want {
			t.Errorf("%s: %d cadres (%v), want %d (%v)", tt.name, len(resp.GetCadres()), err, tt.want, tt.code)
		}
	}
}

func TestRestartKeepsData(t *testing.T) {
	w := setup(t)
	c := w.create(t, w.fed, newCadre(1))
	w.Stop(t)
	e := testenv.StartAt(t, w.DBPath)
	got, err := e.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: c.Name})
	if err != nil || got.Nik != c.Nik || got.Etag != c.Etag || got.Phone != c.Phone {
		t.Errorf("after restart: %v (%v), want %v", got, err, c)
	}
}

func TestRevokedKeyStopsAtOnce(t *testing.T) {
	w := setup(t)
	ctx := testenv.Ctx(w.AdminKey)
	key, err := w.Orgs.CreateApiKey(ctx, &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cadres.ListCadres(testenv.Ctx(key.Secret), &knkv1.ListCadresRequest{}); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if _, err := w.Orgs.DeleteApiKey(ctx, &knkv1.DeleteApiKeyRequest{Name: key.Name}); err != nil {
		t.Fatal(err)
	}
	_, err = w.Cadres.ListCadres(testenv.Ctx(key.Secret), &knkv1.ListCadresRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("revoked key: %v, want UNAUTHENTICATED", err)
	}
}

func importRows(t *testing.T, w world, key string, rows []*knkv1.Cadre) *knkv1.ImportCadresResponse {
	t.Helper()
	stream, err := w.Cadres.ImportCadres(testenv.Ctx(key))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rows {
		if err := stream.Send(&knkv1.ImportCadresRequest{Cadre: c}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cadre.CloseImport(stream)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return resp
}

func TestImportTenThousandRowsWithBadOnes(t *testing.T) {
	w := setup(t)
	w.create(t, w.otherFed, newCadre(7)) // row 8 belongs to another federation
	var rows []*knkv1.Cadre
	bad, warned := map[int64]string{}, map[int64]bool{}
	for i := range 10000 {
		c := newCadre(i)
		switch {
		case i == 7:
			bad[int64(i+1)] = "nik"
		case i%97 == 3:
			c.Nik = c.Nik[:15]
			bad[int64(i+1)] = "nik"
		case i%101 == 5:
			c.ProvinceCode = "00"
			bad[int64(i+1)] = "province_code"
		case i%103 == 9:
			c.Phone = "not a phone" // optional: imported without it, with a warning
			warned[int64(i+1)] = true
		}
		rows = append(rows, c)
	}
	resp := importRows(t, w, w.fed, rows)
	good := int64(len(rows) - len(bad))
	if resp.Created != good || resp.Rejected != int64(len(bad)) || resp.Unchanged != 0 || resp.Warned != int64(len(warned)) {
		t.Errorf("created %d rejected %d unchanged %d warned %d; want %d, %d, 0, %d",
			resp.Created, resp.Rejected, resp.Unchanged, resp.Warned, good, len(bad), len(warned))
	}
	for _, r := range resp.Rejections {
		if bad[r.Row] != r.Field || r.Reason == "" {
			t.Errorf("rejection %v, want field %q", r, bad[r.Row])
		}
		if r.Field == "nik" && r.Row != 8 && r.Value != "***********"+rows[r.Row-1].Nik[11:] {
			t.Errorf("rejection %v: the value must show the NIK by its last four digits only", r)
		}
	}
	for _, r := range resp.Warnings {
		if !warned[r.Row] || r.Field != "phone" || r.Value != "not a phone" || r.Reason == "" {
			t.Errorf("warning %v, want the unreadable phone of a warned row", r)
		}
	}
	if n := w.count(t); int64(n) != good+1 {
		t.Errorf("%d cadres stored, want %d", n, good+1)
	}
	again := importRows(t, w, w.fed, rows)
	if again.Created != 0 || again.Unchanged != good || again.Rejected != int64(len(bad)) {
		t.Errorf("re-run: created %d unchanged %d rejected %d", again.Created, again.Unchanged, again.Rejected)
	}
	// A registered member with other data is reported as changed and nothing is
	// applied, unless the import asks for updates; a value that only raised a
	// warning, or an empty cell, never erases what is stored.
	changed := newCadre(0)
	changed.DisplayName, changed.Phone, changed.Email = "Renamed", "not a phone", ""
	if r := importRows(t, w, w.fed, []*knkv1.Cadre{changed}); r.Changed != 1 || r.Rejected != 0 || r.Updated != 0 {
		t.Errorf("same NIK with other data: %v, want changed", r)
	}
	stream, err := w.Cadres.ImportCadres(testenv.Ctx(w.fed))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&knkv1.ImportCadresRequest{Cadre: changed, Update: true}); err != nil {
		t.Fatal(err)
	}
	if r, err := cadre.CloseImport(stream); err != nil || r.Updated != 1 || r.Warned != 1 {
		t.Errorf("import with update: %v (%v), want updated with a warning", r, err)
	}
	list, err := w.Cadres.ListCadres(testenv.Ctx(w.fed), &knkv1.ListCadresRequest{PageSize: 1})
	if err != nil || list.Cadres[0].DisplayName != "Renamed" || list.Cadres[0].Phone != "+6281234567890" {
		t.Errorf("after the update: %v (%v), want the new name and the phone kept", list.GetCadres(), err)
	}
}

func TestImportOverRESTAsNDJSON(t *testing.T) {
	w := setup(t)
	body := strings.Join([]string{
		`{"cadre": {"display_name": "Siti", "nik": "` + nik(1) + `", "province_code": "31"}}`,
		`{"cadre": {"display_name": "Budi", "nik": "123", "province_code": "31"}}`,
		`{"cadre": {"displayName": "Agus", "nik": "` + nik(2) + `", "provinceCode": "31"}}`,
	}, "\n")
	r := w.REST(t, http.MethodPost, "/v1/cadres:import", w.fed, body)
	if r.Status != http.StatusOK {
		t.Fatalf("import: %d %s", r.Status, r.Raw)
	}
	rej := r.Body["rejections"].([]any)
	if r.Body["created"] != "2" || r.Body["rejected"] != "1" || len(rej) != 1 || rej[0].(map[string]any)["row"] != "2" {
		t.Errorf("import result: %s", r.Raw)
	}
}

func TestImportAsAdminNeedsFederationPerRow(t *testing.T) {
	w := setup(t)
	withFed, without := newCadre(1), newCadre(2)
	withFed.Federation = "organizations/kspsi"
	resp := importRows(t, w, w.AdminKey, []*knkv1.Cadre{withFed, without})
	if resp.Created != 1 || resp.Rejected != 1 || resp.Rejections[0].Row != 2 || resp.Rejections[0].Field != "federation" {
		t.Errorf("admin import: %v", resp)
	}
}

func TestLogsHoldNoNIK(t *testing.T) {
	w := setup(t)
	c := w.create(t, w.fed, newCadre(1))
	w.Cadres.LookupCadre(testenv.Ctx(w.fed), &knkv1.LookupCadreRequest{Nik: c.Nik})
	w.Cadres.CreateCadre(testenv.Ctx(w.fed), &knkv1.CreateCadreRequest{Cadre: newCadre(1)})
	w.REST(t, http.MethodPost, "/v1/cadres:lookup", w.fed, `{"nik": "`+nik(1)+`"}`)
	logs := w.Logs()
	if !strings.Contains(logs, "LookupCadre") || !strings.Contains(logs, "organizations/ksbsi") {
		t.Fatalf("logs do not record calls: %s", logs)
	}
	if strings.Contains(logs, nik(1)) || strings.Contains(logs, nik(1)[4:12]) {
		t.Errorf("logs contain a NIK: %s", logs)
	}
}

// TestImportOverRESTWithALargeSummary imports a roster of 16,000 bad rows
// through the gateway: the answer is NDJSON, no line holds more than 1,000
// rejections, and together they list every rejected row once.
func TestImportOverRESTWithALargeSummary(t *testing.T) {
	w := setup(t)
	var b strings.Builder
	const rows = 16000
	for range rows {
		b.WriteString(`{"cadre": {"display_name": "X", "nik": "1", "province_code": "31", "phone": "1", "email": "x", "bpjs_kpj": "1", "employer": {"nib": "1"}}}` + "\n")
	}
	r := w.REST(t, http.MethodPost, "/v1/cadres:import", w.fed, b.String())
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("import: %d %s: %.300s", r.Status, r.Header.Get("Content-Type"), r.Raw)
	}
	lines := strings.Split(strings.TrimSuffix(string(r.Raw), "\n"), "\n")
	listed := map[string]int{} // row -> bad fields listed
	details := 0
	var last map[string]any
	for i, line := range lines {
		if err := json.Unmarshal([]byte(line), &last); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		rej, _ := last["rejections"].([]any)
		if len(rej) > cadre.RejectionsPerMessage {
			t.Errorf("line %d holds %d rejections", i+1, len(rej))
		}
		for _, x := range rej {
			listed[x.(map[string]any)["row"].(string)]++
		}
		details += len(rej)
		if last["done"] != (i == len(lines)-1) {
			t.Errorf("line %d of %d: done = %v", i+1, len(lines), last["done"])
		}
	}
	if last["rejected"] != fmt.Sprint(rows) || len(listed) != rows || listed["1"] != 5 {
		t.Errorf("rejected %v, %d rows listed, row 1 with %d fields; want %d rows, each with its 5 bad fields", last["rejected"], len(listed), listed["1"], rows)
	}
	if want := details/cadre.RejectionsPerMessage + 1; len(lines) != want {
		t.Errorf("%d details in %d lines, want %d lines", details, len(lines), want)
	}
}
