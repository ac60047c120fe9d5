package cadre_test

import (
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// NIKs and phone numbers as people and spreadsheets write them are cleaned
// without guessing: the digits are kept exactly, only separators go.
func TestCreateCleansNIKAndPhoneAsWritten(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	for _, tc := range []struct{ nik, phone, wantPhone string }{
		{"3171 0555 0890 0004", "(021) 555-1234", "+62215551234"},
		{"'3171051508900003", "+62 (0)812 3456 7890", "+6281234567890"},
		{"3171.0515.0890.0005", "812-3456-7890", "+6281234567890"},
	} {
		c, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
			DisplayName: "Siti Rahayu", Nik: tc.nik, Phone: tc.phone, ProvinceCode: "31"}})
		if err != nil {
			t.Errorf("create with NIK written %q, phone %q: %v", tc.nik, tc.phone, err)
			continue
		}
		if len(c.Nik) != 16 || c.Phone != tc.wantPhone {
			t.Errorf("NIK %q, phone %q stored as %q, %q; want 16 digits and %q", tc.nik, tc.phone, c.Nik, c.Phone, tc.wantPhone)
		}
	}
	_, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
		DisplayName: "Budi", Nik: "3171051508900009", Phone: "0812-1111-2222 / 0857-3333-4444", ProvinceCode: "31"}})
	if err == nil {
		t.Error("a phone cell holding two numbers was accepted by CreateCadre; want INVALID_ARGUMENT")
	}
}
