package organization_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/organization"
)

var _ knkv1.OrganizationServiceServer = (*organization.Service)(nil)

type world struct {
	*testenv.Env
	fed, unit, inspector string
}

func setup(t *testing.T) world {
	t.Helper()
	e := testenv.Start(t)
	return world{
		Env:       e,
		fed:       e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, ""),
		unit:      e.Org(t, "disnaker-dki", knkv1.Organization_KIND_TRAINING_UNIT, "31"),
		inspector: e.Org(t, "pengawas-kalbar", knkv1.Organization_KIND_INSPECTORATE, "61"),
	}
}

func admin(w world) context.Context { return testenv.Ctx(w.AdminKey) }

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

// errorInfo returns the ErrorInfo of a status error, or nil.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// orgIDs lists every organization id, following the page tokens.
func orgIDs(t *testing.T, w world) []string {
	t.Helper()
	var ids []string
	token := ""
	for {
		resp, err := w.Orgs.ListOrganizations(admin(w), &knkv1.ListOrganizationsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range resp.Organizations {
			ids = append(ids, strings.TrimPrefix(o.Name, "organizations/"))
		}
		if token = resp.NextPageToken; token == "" {
			return ids
		}
	}
}

func keyNames(t *testing.T, w world, org string) []string {
	t.Helper()
	resp, err := w.Orgs.ListApiKeys(admin(w), &knkv1.ListApiKeysRequest{Parent: "organizations/" + org, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range resp.ApiKeys {
		names = append(names, k.Name)
	}
	return names
}

// works reports whether key is accepted: a federation key may list its cadres.
func works(w world, key string) error {
	_, err := w.Cadres.ListCadres(testenv.Ctx(key), &knkv1.ListCadresRequest{})
	return err
}

func TestCreateOrganization(t *testing.T) {
	w := setup(t)
	got, err := w.Orgs.CreateOrganization(admin(w), &knkv1.CreateOrganizationRequest{
		OrganizationId: "disnaker-kalbar",
		Organization: &knkv1.Organization{
			Kind: knkv1.Organization_KIND_TRAINING_UNIT, DisplayName: "  Disnaker Kalimantan Barat ", ProvinceCode: "61",
			Name: "organizations/ignored",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"name", got.Name, "organizations/disnaker-kalbar"},
		{"kind", got.Kind.String(), "KIND_TRAINING_UNIT"},
		{"display_name", got.DisplayName, "Disnaker Kalimantan Barat"},
		{"province_code", got.ProvinceCode, "61"},
		{"create_time", got.CreateTime.AsTime().Format(time.RFC3339), w.Clock.Now().Format(time.RFC3339)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	stored, err := w.Orgs.GetOrganization(admin(w), &knkv1.GetOrganizationRequest{Name: got.Name})
	if err != nil || stored.DisplayName != got.DisplayName || stored.Kind != got.Kind || !stored.CreateTime.AsTime().Equal(got.CreateTime.AsTime()) {
		t.Errorf("GetOrganization = %v (%v), want %v", stored, err, got)
	}
}

func TestCreateOrganizationRejectsBadInputAndStoresNothing(t *testing.T) {
	w := setup(t)
	before := orgIDs(t, w)
	valid := func() *knkv1.CreateOrganizationRequest {
		return &knkv1.CreateOrganizationRequest{
			OrganizationId: "kspsi",
			Organization:   &knkv1.Organization{Kind: knkv1.Organization_KIND_FEDERATION, DisplayName: "KSPSI", ProvinceCode: "61"},
		}
	}
	tests := []struct {
		name  string
		edit  func(r *knkv1.CreateOrganizationRequest)
		field string
	}{
		{"missing id", func(r *knkv1.CreateOrganizationRequest) { r.OrganizationId = "" }, "organization_id"},
		{"upper-case id", func(r *knkv1.CreateOrganizationRequest) { r.OrganizationId = "KSPSI" }, "organization_id"},
		{"one-letter id", func(r *knkv1.CreateOrganizationRequest) { r.OrganizationId = "k" }, "organization_id"},
		{"id starting with a digit", func(r *knkv1.CreateOrganizationRequest) { r.OrganizationId = "1kspsi" }, "organization_id"},
		{"id with a slash", func(r *knkv1.CreateOrganizationRequest) { r.OrganizationId = "kspsi/keys" }, "organization_id"},
		{"id with a space", func(r *knkv1.CreateOrganizationRequest) { r.OrganizationId = "ks psi" }, "organization_id"},
		{"id over 63 characters", func(r *knkv1.CreateOrganizationRequest) { r.OrganizationId = "k" + strings.Repeat("s", 63) }, "organization_id"},
		{"missing kind", func(r *knkv1.CreateOrganizationRequest) { r.Organization.Kind = knkv1.Organization_KIND_UNSPECIFIED }, "organization.kind"},
		{"unknown kind", func(r *knkv1.CreateOrganizationRequest) { r.Organization.Kind = 42 }, "organization.kind"},
		{"missing display_name", func(r *knkv1.CreateOrganizationRequest) { r.Organization.DisplayName = "" }, "organization.display_name"},
		{"blank display_name", func(r *knkv1.CreateOrganizationRequest) { r.Organization.DisplayName = " \t " }, "organization.display_name"},
		{"unknown province", func(r *knkv1.CreateOrganizationRequest) { r.Organization.ProvinceCode = "99" }, "organization.province_code"},
		{"one-digit province", func(r *knkv1.CreateOrganizationRequest) { r.Organization.ProvinceCode = "6" }, "organization.province_code"},
		{"province name", func(r *knkv1.CreateOrganizationRequest) { r.Organization.ProvinceCode = "Kalimantan Barat" }, "organization.province_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := valid()
			tt.edit(req)
			_, err := w.Orgs.CreateOrganization(admin(w), req)
			if got := violations(t, err); len(got) != 1 || got[0] != tt.field {
				t.Errorf("violations = %v, want [%s]", got, tt.field)
			}
		})
	}
	_, err := w.Orgs.CreateOrganization(admin(w), &knkv1.CreateOrganizationRequest{OrganizationId: "X"})
	if got := strings.Join(violations(t, err), ","); got != "organization_id,organization.kind,organization.display_name" {
		t.Errorf("an empty request: violations %s, want every bad field at once", got)
	}
	if after := orgIDs(t, w); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("organizations after bad requests: %v, want %v", after, before)
	}
}

func TestDuplicateOrganization(t *testing.T) {
	w := setup(t)
	_, err := w.Orgs.CreateOrganization(admin(w), &knkv1.CreateOrganizationRequest{
		OrganizationId: "ksbsi",
		Organization:   &knkv1.Organization{Kind: knkv1.Organization_KIND_INSPECTORATE, DisplayName: "Impostor"},
	})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("duplicate id: %v, want ALREADY_EXISTS", err)
	}
	got, err := w.Orgs.GetOrganization(admin(w), &knkv1.GetOrganizationRequest{Name: "organizations/ksbsi"})
	if err != nil || got.Kind != knkv1.Organization_KIND_FEDERATION || got.DisplayName != "ksbsi" {
		t.Errorf("the first ksbsi changed: %v (%v)", got, err)
	}
	if err := works(w, w.fed); err != nil {
		t.Errorf("the first ksbsi's key: %v", err)
	}
}

func TestGetOrganizationNotFoundAndBadNames(t *testing.T) {
	w := setup(t)
	_, err := w.Orgs.GetOrganization(admin(w), &knkv1.GetOrganizationRequest{Name: "organizations/nope"})
	info := errorInfo(err)
	if status.Code(err) != codes.NotFound || info == nil || info.Reason != "NOT_FOUND" || info.Domain != "knk" ||
		info.Metadata["resource"] != "organizations/nope" {
		t.Errorf("unknown organization: %v with ErrorInfo %v, want NOT_FOUND with ErrorInfo{NOT_FOUND, knk, resource}", err, info)
	}
	for _, name := range []string{"", "ksbsi", "orgs/ksbsi", "organizations/", "organizations/KSBSI", "organizations/ksbsi/keys/x"} {
		_, err := w.Orgs.GetOrganization(admin(w), &knkv1.GetOrganizationRequest{Name: name})
		if got := violations(t, err); len(got) != 1 || got[0] != "name" {
			t.Errorf("name %q: violations %v, want [name]", name, got)
		}
	}
}

func TestListOrganizationsPages(t *testing.T) {
	w := setup(t)
	for _, id := range []string{"kspsi", "kasbi", "ksbsi-kalbar", "disnaker-kalbar"} {
		w.Org(t, id, knkv1.Organization_KIND_FEDERATION, "")
	}
	want := "admin,disnaker-dki,disnaker-kalbar,kasbi,ksbsi,ksbsi-kalbar,kspsi,pengawas-kalbar"
	var got []string
	var pages []int
	token := ""
	for {
		resp, err := w.Orgs.ListOrganizations(admin(w), &knkv1.ListOrganizationsRequest{PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, len(resp.Organizations))
		for _, o := range resp.Organizations {
			got = append(got, strings.TrimPrefix(o.Name, "organizations/"))
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
		if len(pages) > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if strings.Join(got, ",") != want || fmt.Sprint(pages) != "[3 3 2]" {
		t.Errorf("pages %v of %v, want [3 3 2] of %s", pages, got, want)
	}

	first, err := w.Orgs.ListOrganizations(admin(w), &knkv1.ListOrganizationsRequest{PageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a token may be used again
		next, err := w.Orgs.ListOrganizations(admin(w), &knkv1.ListOrganizationsRequest{PageSize: 4, PageToken: first.NextPageToken})
		if err != nil || len(next.Organizations) != 4 || next.Organizations[0].Name != "organizations/ksbsi" || next.NextPageToken != "" {
			t.Errorf("second page: %v (%v), want ksbsi … pengawas-kalbar and no token", next, err)
		}
	}
	all, err := w.Orgs.ListOrganizations(admin(w), &knkv1.ListOrganizationsRequest{})
	if err != nil || len(all.Organizations) != 8 || all.NextPageToken != "" {
		t.Errorf("default page: %d organizations, token %q (%v)", len(all.GetOrganizations()), all.GetNextPageToken(), err)
	}
	if _, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: "organizations/admin"}); err != nil {
		t.Fatal(err)
	}
	keys, err := w.Orgs.ListApiKeys(admin(w), &knkv1.ListApiKeysRequest{Parent: "organizations/admin", PageSize: 1})
	if err != nil || len(keys.ApiKeys) != 1 || keys.NextPageToken == "" {
		t.Fatalf("two admin keys, page size 1: %v (%v), want one key and a next page token", keys, err)
	}
	rest, err := w.Orgs.ListApiKeys(admin(w), &knkv1.ListApiKeysRequest{Parent: "organizations/admin", PageSize: 1, PageToken: keys.NextPageToken})
	if err != nil || len(rest.ApiKeys) != 1 || rest.ApiKeys[0].Name == keys.ApiKeys[0].Name || rest.NextPageToken != "" {
		t.Errorf("second page of keys: %v (%v), want the other key and no token", rest, err)
	}
	_, err = w.Orgs.ListApiKeys(admin(w), &knkv1.ListApiKeysRequest{Parent: "organizations/ksbsi", PageToken: keys.NextPageToken})
	if got := violations(t, err); len(got) != 1 || got[0] != "page_token" {
		t.Errorf("admin's key page token for ksbsi's keys: violations %v, want [page_token]", got)
	}
	bad := []struct {
		name  string
		req   *knkv1.ListOrganizationsRequest
		field string
	}{
		{"negative page size", &knkv1.ListOrganizationsRequest{PageSize: -1}, "page_size"},
		{"garbage token", &knkv1.ListOrganizationsRequest{PageToken: "not-a-token"}, "page_token"},
		{"a ListApiKeys token", &knkv1.ListOrganizationsRequest{PageToken: keys.NextPageToken}, "page_token"},
	}
	for _, b := range bad {
		_, err := w.Orgs.ListOrganizations(admin(w), b.req)
		if got := violations(t, err); len(got) != 1 || got[0] != b.field {
			t.Errorf("%s: violations %v, want [%s]", b.name, got, b.field)
		}
	}
}

// storedValues returns every value of every column of every table of the store
// knkd runs on (SQLite file or PostgreSQL schema), as text.
func storedValues(t *testing.T, e *testenv.Env) []string {
	t.Helper()
	conn := e.SQL(t)
	tables := e.Tables(t)
	var values []string
	for _, table := range tables {
		rows, err := conn.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			cells := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range cells {
				ptrs[i] = &cells[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, c := range cells {
				values = append(values, fmt.Sprintf("%s.%s=%s", table, cols[i], c))
			}
		}
		rows.Close()
	}
	if len(tables) < 5 || len(values) == 0 {
		t.Fatalf("read %d tables, %d values from %s", len(tables), len(values), e.DBPath)
	}
	return values
}

func TestApiKeySecretIsShownOnceAndStoredOnlyAsAHash(t *testing.T) {
	w := setup(t)
	key, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi"})
	if err != nil {
		t.Fatal(err)
	}
	keyID, ok := strings.CutPrefix(key.Name, "organizations/ksbsi/keys/")
	if !ok || keyID == "" || len(key.Secret) < 32 || key.CreateTime == nil {
		t.Fatalf("CreateApiKey = %v", key)
	}
	if err := works(w, key.Secret); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	list, err := w.Orgs.ListApiKeys(admin(w), &knkv1.ListApiKeysRequest{Parent: "organizations/ksbsi"})
	if err != nil || len(list.ApiKeys) != 2 {
		t.Fatalf("ListApiKeys = %v (%v), want the setup key and the new one", list, err)
	}
	listed := false
	for _, k := range list.ApiKeys {
		if k.Secret != "" {
			t.Errorf("ListApiKeys returned the secret of %s", k.Name)
		}
		listed = listed || k.Name == key.Name
	}
	if !listed {
		t.Errorf("ListApiKeys = %v, missing %s", list.ApiKeys, key.Name)
	}
	r := w.REST(t, http.MethodGet, "/v1/organizations/ksbsi/keys", w.AdminKey, nil)
	if r.Status != http.StatusOK || strings.Contains(string(r.Raw), key.Secret) {
		t.Errorf("REST ListApiKeys: %d %s", r.Status, r.Raw)
	}

	// Neither the secret nor its random part is stored anywhere, nor logged.
	random := strings.SplitN(key.Secret, "_", 3)[2] // knk_<key id>_<random>; the random part may hold '_' too
	for _, v := range storedValues(t, w.Env) {
		if strings.Contains(v, key.Secret) || strings.Contains(v, random) {
			t.Errorf("the database holds the secret: %s", v)
		}
	}
	if logs := w.Logs(); strings.Contains(logs, random) {
		t.Errorf("the log holds the secret: %s", logs)
	}
}

func TestCreateApiKeyForMissingOrBadParent(t *testing.T) {
	w := setup(t)
	_, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: "organizations/nope"})
	if info := errorInfo(err); status.Code(err) != codes.NotFound || info.GetReason() != "NOT_FOUND" || info.GetDomain() != "knk" {
		t.Errorf("key for an unknown organization: %v (%v), want NOT_FOUND with ErrorInfo", err, info)
	}
	_, err = w.Orgs.ListApiKeys(admin(w), &knkv1.ListApiKeysRequest{Parent: "organizations/nope"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("keys of an unknown organization: %v, want NOT_FOUND", err)
	}
}

// A bad parent is reported under the request's field, parent.
func TestBadParentNamesTheParentField(t *testing.T) {
	w := setup(t)
	tests := []struct {
		name string
		call func(parent string) error
	}{
		{"CreateApiKey", func(parent string) error {
			_, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: parent})
			return err
		}},
		{"ListApiKeys", func(parent string) error {
			_, err := w.Orgs.ListApiKeys(admin(w), &knkv1.ListApiKeysRequest{Parent: parent})
			return err
		}},
	}
	for _, tt := range tests {
		for _, parent := range []string{"", "ksbsi", "organizations/KSBSI", "organizations/ksbsi/keys"} {
			if got := violations(t, tt.call(parent)); len(got) != 1 || got[0] != "parent" {
				t.Errorf("%s(parent %q): violations %v, want [parent]", tt.name, parent, got)
			}
		}
	}
}

func TestDeleteApiKeyRevokesAtOnce(t *testing.T) {
	w := setup(t)
	key, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi"})
	if err != nil {
		t.Fatal(err)
	}
	keyID := key.Name[strings.LastIndex(key.Name, "/")+1:]
	if err := works(w, key.Secret); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	refused := []struct {
		name string
		code codes.Code
	}{
		{"organizations/kspsi/keys/" + keyID, codes.NotFound}, // the right key id under another organization
		{"organizations/ksbsi/keys/01nosuchkey", codes.NotFound},
		{"organizations/ksbsi", codes.InvalidArgument},
		{"organizations/ksbsi/keys/", codes.InvalidArgument},
		{"keys/" + keyID, codes.InvalidArgument},
	}
	for _, r := range refused {
		_, err := w.Orgs.DeleteApiKey(admin(w), &knkv1.DeleteApiKeyRequest{Name: r.name})
		if status.Code(err) != r.code {
			t.Errorf("DeleteApiKey(%s): %v, want %v", r.name, err, r.code)
		}
	}
	if err := works(w, key.Secret); err != nil {
		t.Fatalf("a refused revocation revoked the key: %v", err)
	}

	if _, err := w.Orgs.DeleteApiKey(admin(w), &knkv1.DeleteApiKeyRequest{Name: key.Name}); err != nil {
		t.Fatal(err)
	}
	err = works(w, key.Secret)
	if info := errorInfo(err); status.Code(err) != codes.Unauthenticated || info.GetDomain() != "knk" {
		t.Errorf("revoked key: %v (%v), want UNAUTHENTICATED with ErrorInfo", err, info)
	}
	r := w.REST(t, http.MethodGet, "/v1/cadres", key.Secret, nil)
	if r.Status != http.StatusUnauthorized {
		t.Errorf("revoked key over REST: %d %s, want 401", r.Status, r.Raw)
	}
	for _, name := range keyNames(t, w, "ksbsi") {
		if name == key.Name {
			t.Errorf("ListApiKeys still lists the revoked %s", name)
		}
	}
	_, err = w.Orgs.DeleteApiKey(admin(w), &knkv1.DeleteApiKeyRequest{Name: key.Name})
	if info := errorInfo(err); status.Code(err) != codes.NotFound || info.GetReason() != "NOT_FOUND" {
		t.Errorf("revoking twice: %v (%v), want NOT_FOUND", err, info)
	}
	if err := works(w, w.fed); err != nil {
		t.Errorf("the organization's other key: %v", err)
	}
}

func TestForgedKeysAreRefused(t *testing.T) {
	w := setup(t)
	keyID := strings.TrimPrefix(keyNames(t, w, "ksbsi")[0], "organizations/ksbsi/keys/")
	tests := []struct{ name, key string }{
		{"the right key id with another secret", "knk_" + keyID + "_" + strings.Repeat("A", 43)},
		{"the secret with a character changed", w.fed[:len(w.fed)-1] + string(w.fed[len(w.fed)-1]^1)},
		{"the key id alone", "knk_" + keyID + "_"},
		{"not a key", "hunter2"},
		{"another organization's key id", "knk_" + strings.TrimPrefix(keyNames(t, w, "admin")[0], "organizations/admin/keys/") + w.fed[strings.LastIndex(w.fed, "_"):]},
	}
	for _, tt := range tests {
		if err := works(w, tt.key); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v, want UNAUTHENTICATED", tt.name, err)
		}
	}
}

var fresh atomic.Int64

type method struct {
	name string
	call func(w world, key string) error
}

// methods calls every OrganizationService method with key. Each call that would
// change data uses fresh names, so that a call allowed by mistake shows up.
func methods(victim *knkv1.ApiKey) []method {
	return []method{
		{"CreateOrganization", func(w world, key string) error {
			_, err := w.Orgs.CreateOrganization(testenv.Ctx(key), &knkv1.CreateOrganizationRequest{
				OrganizationId: fmt.Sprintf("org-%d", fresh.Add(1)),
				Organization:   &knkv1.Organization{Kind: knkv1.Organization_KIND_ADMIN, DisplayName: "Takeover"},
			})
			return err
		}},
		{"GetOrganization", func(w world, key string) error {
			_, err := w.Orgs.GetOrganization(testenv.Ctx(key), &knkv1.GetOrganizationRequest{Name: "organizations/ksbsi"})
			return err
		}},
		{"ListOrganizations", func(w world, key string) error {
			_, err := w.Orgs.ListOrganizations(testenv.Ctx(key), &knkv1.ListOrganizationsRequest{})
			return err
		}},
		{"CreateApiKey", func(w world, key string) error {
			_, err := w.Orgs.CreateApiKey(testenv.Ctx(key), &knkv1.CreateApiKeyRequest{Parent: "organizations/admin"})
			return err
		}},
		{"ListApiKeys", func(w world, key string) error {
			_, err := w.Orgs.ListApiKeys(testenv.Ctx(key), &knkv1.ListApiKeysRequest{Parent: "organizations/ksbsi"})
			return err
		}},
		{"DeleteApiKey", func(w world, key string) error {
			_, err := w.Orgs.DeleteApiKey(testenv.Ctx(key), &knkv1.DeleteApiKeyRequest{Name: victim.Name})
			return err
		}},
	}
}

// TestOnlyAdminManagesOrganizations calls every method with every other role:
// all are refused, and nothing changes.
func TestOnlyAdminManagesOrganizations(t *testing.T) {
	w := setup(t)
	victim, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi"})
	if err != nil {
		t.Fatal(err)
	}
	revoked := w.revokedKey(t)
	orgsBefore, adminKeysBefore := orgIDs(t, w), keyNames(t, w, "admin")
	roles := []struct {
		role, key string
		want      codes.Code
	}{
		{"federation", w.fed, codes.PermissionDenied},
		{"training unit", w.unit, codes.PermissionDenied},
		{"inspector", w.inspector, codes.PermissionDenied},
		{"no key", "", codes.Unauthenticated},
		{"unknown key", "knk_01jxyz_notakey", codes.Unauthenticated},
		{"revoked key", revoked, codes.Unauthenticated},
	}
	for _, r := range roles {
		// Wrong keys are also limited per address (10 a minute, burst 10): start each
		// role with a full bucket, since this test counts refusals, not floods.
		w.Clock.Advance(time.Minute)
		for _, m := range methods(victim) {
			t.Run(r.role+"/"+m.name, func(t *testing.T) {
				if got := status.Code(m.call(w, r.key)); got != r.want {
					t.Errorf("got %v, want %v", got, r.want)
				}
			})
		}
	}
	if got := orgIDs(t, w); strings.Join(got, ",") != strings.Join(orgsBefore, ",") {
		t.Errorf("organizations changed: %v, was %v", got, orgsBefore)
	}
	if got := keyNames(t, w, "admin"); strings.Join(got, ",") != strings.Join(adminKeysBefore, ",") {
		t.Errorf("admin keys changed: %v, was %v", got, adminKeysBefore)
	}
	if err := works(w, victim.Secret); err != nil {
		t.Errorf("a refused DeleteApiKey revoked the key: %v", err)
	}
	// Admin may call every method.
	for _, m := range methods(victim) {
		if err := m.call(w, w.AdminKey); err != nil {
			t.Errorf("admin %s: %v", m.name, err)
		}
	}
}

func (w world) revokedKey(t *testing.T) string {
	t.Helper()
	key, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: "organizations/admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Orgs.DeleteApiKey(admin(w), &knkv1.DeleteApiKeyRequest{Name: key.Name}); err != nil {
		t.Fatal(err)
	}
	return key.Secret
}

func TestTheKeyRoleIsTheOrganizationKind(t *testing.T) {
	w := setup(t)
	second := w.Org(t, "kemnaker-pusdatin", knkv1.Organization_KIND_ADMIN, "")
	if _, err := w.Orgs.ListOrganizations(testenv.Ctx(second), &knkv1.ListOrganizationsRequest{}); err != nil {
		t.Errorf("a key of a second KIND_ADMIN organization: %v", err)
	}
	tests := []struct {
		role, key              string
		listCadres, createOrgs codes.Code
	}{
		{"federation", w.fed, codes.OK, codes.PermissionDenied},
		{"inspector", w.inspector, codes.OK, codes.PermissionDenied},
		{"second admin", second, codes.OK, codes.OK},
	}
	for i, tt := range tests {
		_, err := w.Cadres.ListCadres(testenv.Ctx(tt.key), &knkv1.ListCadresRequest{})
		_, err2 := w.Orgs.CreateOrganization(testenv.Ctx(tt.key), &knkv1.CreateOrganizationRequest{
			OrganizationId: fmt.Sprintf("new-%d", i),
			Organization:   &knkv1.Organization{Kind: knkv1.Organization_KIND_FEDERATION, DisplayName: "New"},
		})
		if status.Code(err) != tt.listCadres || status.Code(err2) != tt.createOrgs {
			t.Errorf("%s: ListCadres %v, CreateOrganization %v; want %v, %v", tt.role, err, err2, tt.listCadres, tt.createOrgs)
		}
	}
}

func TestREST(t *testing.T) {
	w := testenv.Start(t)
	r := w.REST(t, http.MethodPost, "/v1/organizations?organization_id=ksbsi", w.AdminKey,
		`{"kind": "KIND_FEDERATION", "display_name": "KSBSI", "province_code": ""}`)
	if r.Status != http.StatusOK || r.Body["name"] != "organizations/ksbsi" || r.Body["kind"] != "KIND_FEDERATION" ||
		r.Body["display_name"] != "KSBSI" || r.Body["create_time"] == nil {
		t.Fatalf("create organization: %d %s", r.Status, r.Raw)
	}
	r = w.REST(t, http.MethodPost, "/v1/organizations/ksbsi/keys", w.AdminKey, `{}`)
	name, _ := r.Body["name"].(string)
	secret, _ := r.Body["secret"].(string)
	if r.Status != http.StatusOK || !strings.HasPrefix(name, "organizations/ksbsi/keys/") || secret == "" {
		t.Fatalf("create key: %d %s", r.Status, r.Raw)
	}
	if r := w.REST(t, http.MethodGet, "/v1/cadres", secret, nil); r.Status != http.StatusOK {
		t.Errorf("the new key over REST: %d %s", r.Status, r.Raw)
	}
	r = w.REST(t, http.MethodGet, "/v1/organizations/ksbsi", w.AdminKey, nil)
	if r.Status != http.StatusOK || r.Body["display_name"] != "KSBSI" {
		t.Errorf("get organization: %d %s", r.Status, r.Raw)
	}
	r = w.REST(t, http.MethodGet, "/v1/organizations?page_size=1", w.AdminKey, nil)
	token, _ := r.Body["next_page_token"].(string)
	if r.Status != http.StatusOK || token == "" {
		t.Fatalf("list organizations: %d %s", r.Status, r.Raw)
	}
	r = w.REST(t, http.MethodGet, "/v1/organizations?page_size=1&page_token="+token, w.AdminKey, nil)
	if orgs, _ := r.Body["organizations"].([]any); r.Status != http.StatusOK || len(orgs) != 1 || orgs[0].(map[string]any)["name"] != "organizations/ksbsi" {
		t.Errorf("second page: %d %s", r.Status, r.Raw)
	}
	r = w.REST(t, http.MethodGet, "/v1/organizations/ksbsi/keys", w.AdminKey, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Raw), name) || strings.Contains(string(r.Raw), secret) {
		t.Errorf("list keys: %d %s", r.Status, r.Raw)
	}

	errs := []struct {
		name, method, path, key, body string
		status                        int
		code                          codes.Code
	}{
		{"bad province", http.MethodPost, "/v1/organizations?organization_id=kspsi", w.AdminKey,
			`{"kind": "KIND_FEDERATION", "display_name": "KSPSI", "province_code": "99"}`, http.StatusBadRequest, codes.InvalidArgument},
		{"duplicate", http.MethodPost, "/v1/organizations?organization_id=ksbsi", w.AdminKey,
			`{"kind": "KIND_FEDERATION", "display_name": "KSBSI"}`, http.StatusConflict, codes.AlreadyExists},
		{"no key", http.MethodGet, "/v1/organizations", "", "", http.StatusUnauthorized, codes.Unauthenticated},
		{"federation key", http.MethodGet, "/v1/organizations", secret, "", http.StatusForbidden, codes.PermissionDenied},
		{"unknown", http.MethodGet, "/v1/organizations/nope", w.AdminKey, "", http.StatusNotFound, codes.NotFound},
	}
	for _, e := range errs {
		r := w.REST(t, e.method, e.path, e.key, e.body)
		if r.Status != e.status || r.Body["code"] != float64(e.code) || r.Body["message"] == "" {
			t.Errorf("%s: %d %s, want %d with code %d", e.name, r.Status, r.Raw, e.status, e.code)
		}
	}
	r = w.REST(t, http.MethodPost, "/v1/organizations?organization_id=kspsi", w.AdminKey, `{"kind": "KIND_FEDERATION", "display_name": " "}`)
	if !strings.Contains(string(r.Raw), "organization.display_name") {
		t.Errorf("the REST error does not name the field: %s", r.Raw)
	}

	r = w.REST(t, http.MethodDelete, "/v1/"+name, w.AdminKey, nil)
	if r.Status != http.StatusOK {
		t.Errorf("delete key: %d %s", r.Status, r.Raw)
	}
	if r := w.REST(t, http.MethodGet, "/v1/cadres", secret, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("the revoked key over REST: %d %s, want 401", r.Status, r.Raw)
	}
	if r := w.REST(t, http.MethodDelete, "/v1/"+name, w.AdminKey, nil); r.Status != http.StatusNotFound {
		t.Errorf("delete key twice: %d %s, want 404", r.Status, r.Raw)
	}
}

func TestCreateOrganizationRetryWithRequestID(t *testing.T) {
	e := testenv.Start(t)
	ctx := testenv.Ctx(e.AdminKey)
	req := &knkv1.CreateOrganizationRequest{OrganizationId: "kspi", RequestId: "c0ffee",
		Organization: &knkv1.Organization{Kind: knkv1.Organization_KIND_FEDERATION, DisplayName: "KSPI"}}
	first, err := e.Orgs.CreateOrganization(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.Orgs.CreateOrganization(ctx, req)
	if err != nil || !proto.Equal(first, again) {
		t.Errorf("retry with the request id: %v (%v), want %v", again, err, first)
	}
	req.RequestId = "another"
	if _, err := e.Orgs.CreateOrganization(ctx, req); status.Code(err) != codes.AlreadyExists {
		t.Errorf("same id, new request id: %v, want ALREADY_EXISTS", err)
	}
}
