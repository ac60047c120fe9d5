package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

func TestCadresUpdateChangesOnlyTheFlagsGiven(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	c, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
		DisplayName: "Siti Rahayu", Nik: "3171055508900004", ProvinceCode: "31", Phone: "081211112222",
		Employer: &knkv1.Employer{Name: "PT Maju Jaya", Nib: "1234567890123"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := e2eCtl(t, e, fed, "cadres", "update", c.Name, "--phone", "+62 813 2222 3333", "--employer-name", "PT Sejahtera", "--regency", "")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("cadres update printed %q: %v", out, err)
	}
	stored, err := e.Cadres.GetCadre(testenv.Ctx(fed), &knkv1.GetCadreRequest{Name: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	if stored.Phone != "+6281322223333" || stored.Employer.GetName() != "PT Sejahtera" ||
		stored.Employer.GetNib() != "1234567890123" || stored.DisplayName != "Siti Rahayu" || stored.Etag == c.Etag {
		t.Errorf("after update: %+v; want the new phone and employer name, the NIB and name kept, a new etag", stored)
	}
	if got["name"] != c.Name || got["etag"] != stored.Etag {
		t.Errorf("printed %v, want the updated cadre", got)
	}

	_, _, err = e2eRun(t, "", "--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, fed), "cadres", "update", c.Name)
	if err == nil || !strings.Contains(err.Error(), "nothing to update") {
		t.Errorf("update without flags: %v, want 'nothing to update'", err)
	}
	_, _, err = e2eRun(t, "", "--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, fed), "cadres", "update", c.Name, "--phone", "12")
	if err == nil || !strings.HasPrefix(err.Error(), "INVALID_ARGUMENT: ") || !strings.Contains(err.Error(), "\n  cadre.phone: ") {
		t.Errorf("update with a bad phone: %v, want INVALID_ARGUMENT naming cadre.phone", err)
	}
}

func TestKeysRevokeSaysWhatItRevoked(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	_, stderr := e2eCtl(t, e, e.AdminKey, "keys", "create", "ksbsi")
	name := stderr[strings.Index(stderr, "organizations/ksbsi/keys/"):]
	name = strings.Fields(name)[0]
	keyID := name[strings.LastIndex(name, "/")+1:]
	out, _ := e2eCtl(t, e, e.AdminKey, "keys", "revoke", "ksbsi", keyID)
	if out != "revoked "+name+": it no longer works\n" {
		t.Errorf("keys revoke printed %q, want the revoked key's name", out)
	}
}

func TestListSaysWhenMorePagesExist(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	for i := range 3 {
		_, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
			DisplayName: fmt.Sprint("Anggota ", i), Nik: e2eNIK(i), ProvinceCode: "31"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	_, stderr := e2eCtl(t, e, fed, "cadres", "list", "--page-size", "2")
	if !strings.Contains(stderr, "first page of cadres only; more exist: add --all") {
		t.Errorf("a partial list said %q on stderr, want a note that more exist", stderr)
	}
	out, stderr := e2eCtl(t, e, fed, "cadres", "list", "--page-size", "2", "--all")
	if strings.Contains(stderr, "more exist") || strings.Count(out, `"display_name"`) != 3 {
		t.Errorf("list --all: stderr %q, %d cadres; want all 3 and no note", stderr, strings.Count(out, `"display_name"`))
	}
}
