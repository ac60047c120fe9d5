package cadre_test

import (
	"net/http"
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// A REST client reads the error's own message, never a gRPC error string
// ("rpc error: code = … desc = …") wrapped into it.
func TestRESTErrorsCarryNoGRPCWrapping(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	c, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
		DisplayName: "Siti Rahayu", Nik: "3171055508900004", ProvinceCode: "31"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodPatch, "/v1/" + c.Name + "?update_mask=phone", `{"etag": "999", "phone": "081234567890"}`, http.StatusConflict},
		{http.MethodPost, "/v1/" + c.Name + ":withdraw", `{"reason": "pindah", "etag": "999"}`, http.StatusConflict},
		{http.MethodPost, "/v1/cadres", `{"display_name": "X", "nik": "3171055508900004", "province_code": "31"}`, http.StatusConflict},
		{http.MethodGet, "/v1/cadres/01J000000000000000000000XX", nil, http.StatusNotFound},
	} {
		r := e.REST(t, tc.method, tc.path, fed, tc.body)
		msg, _ := r.Body["message"].(string)
		if r.Status != tc.status || msg == "" || strings.Contains(msg, "rpc error") || strings.Contains(msg, "desc =") {
			t.Errorf("%s %s: %d %s; want %d with a plain message", tc.method, tc.path, r.Status, r.Raw, tc.status)
		}
	}
}
