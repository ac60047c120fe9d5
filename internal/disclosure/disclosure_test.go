package disclosure_test

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/disclosure"
)

// TestTableCoversEveryField: every field of every message in the table has an
// entry, every entry names a real field, every masked entry has a masked form and
// every grant beyond admin and the own federation gives its reason.
func TestTableCoversEveryField(t *testing.T) {
	for _, r := range disclosure.Table {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(r.Message)
		if err != nil {
			t.Errorf("%s: %v", r.Message, err)
			continue
		}
		md := d.(protoreflect.MessageDescriptor)
		for i := range md.Fields().Len() {
			if f := r.Field(string(md.Fields().Get(i).Name())); f.Name == "" {
				t.Errorf("%s.%s has no entry in the disclosure table", r.Message, md.Fields().Get(i).Name())
			}
		}
		seen := map[string]bool{}
		for _, f := range r.Fields {
			fd := md.Fields().ByName(protoreflect.Name(f.Name))
			switch {
			case fd == nil:
				t.Errorf("%s has no field %q", r.Message, f.Name)
			case seen[f.Name]:
				t.Errorf("%s.%s is listed twice", r.Message, f.Name)
			case strings.TrimSpace(f.Why) == "":
				t.Errorf("%s.%s gives no reason", r.Message, f.Name)
			case f.Admin != disclosure.Shown || f.OwnFederation != disclosure.Shown:
				t.Errorf("%s.%s: admin and the own federation hold the record and see it whole", r.Message, f.Name)
			}
			seen[f.Name] = true
			for _, a := range disclosure.Audiences {
				if f.For(a) == disclosure.Masked && (fd == nil || fd.Kind() != protoreflect.StringKind) {
					t.Errorf("%s.%s is masked for %s but is not a string", r.Message, f.Name, a)
				}
				if f.For(a) == disclosure.Masked {
					func() {
						defer func() {
							if recover() != nil {
								t.Errorf("%s.%s is masked for %s but has no masked form", r.Message, f.Name, a)
							}
						}()
						disclosure.Mask(r.Message, f.Name, "3171055508900004")
					}()
				}
			}
		}
	}
}

// TestPersonalFieldsAreHeldBack pins what issue 10 requires whatever the table
// says elsewhere: beyond admin and the cadre's own federation, the NIK shows its
// last four digits only, and birth date, gender, phone and KPJ are not shown.
func TestPersonalFieldsAreHeldBack(t *testing.T) {
	cadre, _ := disclosure.Policy("knk.v1.Cadre")
	others := []disclosure.Audience{disclosure.OtherFederation, disclosure.OwnUnit, disclosure.Unit, disclosure.Inspectorate}
	for _, a := range others {
		for _, name := range []string{"birth_date", "gender", "phone", "bpjs_kpj", "email", "union_member_number"} {
			if got := cadre.Field(name).For(a); got != disclosure.Hidden {
				t.Errorf("cadre.%s is %s to %s", name, got, a)
			}
		}
		if got := cadre.Field("nik").For(a); got == disclosure.Shown {
			t.Errorf("cadre.nik is shown to %s", a)
		}
	}
	if got := disclosure.LastFour("3171055508900004"); got != "************0004" {
		t.Errorf("LastFour = %q", got)
	}
	for _, bad := range []string{"317105550890000", "31710555089000044", "3171o55508900004", "‮3171055508900"} {
		if got := disclosure.LastFour(bad); strings.Trim(got, "*") != "" {
			t.Errorf("LastFour(%q) = %q, want all stars", bad, got)
		}
	}
	cert, _ := disclosure.Policy("knk.v1.Certificate")
	if cert.Field("cadre").For(disclosure.OtherFederation) != disclosure.Hidden {
		t.Error("another federation sees which cadre holds a certificate")
	}
}

func fullCadre() *knkv1.Cadre {
	return &knkv1.Cadre{
		Name: "cadres/01J00000000000000000000000", DisplayName: "Siti Rahayu", Nik: "3171055508900004",
		BirthDate: "1990-08-15", Gender: knkv1.Cadre_GENDER_FEMALE, Phone: "+6281211112222", Email: "siti@contoh.id",
		ProvinceCode: "31", Regency: "Jakarta Timur", Employer: &knkv1.Employer{Name: "PT Maju Jaya", Nib: "1234567890123"},
		Federation: "organizations/ksbsi", UnionMemberNumber: "A-1", BpjsKpj: "12345678901",
		State: knkv1.Cadre_STATE_ACTIVE, PassedTopics: []knkv1.Topic{knkv1.Topic_TOPIC_K3},
		WithdrawReason: "x", CreateTime: timestamppb.Now(), UpdateTime: timestamppb.Now(), Etag: "1",
	}
}

// TestApplyFollowsTheTable checks Apply field by field against the table, for
// every audience, on a cadre with every field set.
func TestApplyFollowsTheTable(t *testing.T) {
	pol, _ := disclosure.Policy("knk.v1.Cadre")
	for _, a := range disclosure.Audiences {
		full := fullCadre()
		got := proto.Clone(full).(*knkv1.Cadre)
		disclosure.Apply(got, a)
		fr, gr := full.ProtoReflect(), got.ProtoReflect()
		fields := fr.Descriptor().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			switch pol.Field(string(fd.Name())).For(a) {
			case disclosure.Shown:
				if !gr.Get(fd).Equal(fr.Get(fd)) {
					t.Errorf("%s: %s changed", a, fd.Name())
				}
			case disclosure.Hidden:
				if gr.Has(fd) {
					t.Errorf("%s: %s = %v, want hidden", a, fd.Name(), gr.Get(fd))
				}
			case disclosure.Masked:
				if want := disclosure.Mask(pol.Message, string(fd.Name()), fr.Get(fd).String()); gr.Get(fd).String() != want {
					t.Errorf("%s: %s = %v, want %s", a, fd.Name(), gr.Get(fd), want)
				}
			}
		}
	}
}

func TestApplyRefusesAMessageWithoutPolicy(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Apply of a message the table does not cover did not panic")
		}
	}()
	disclosure.Apply(&knkv1.Session{Name: "sessions/x"}, disclosure.Inspectorate)
}

func TestAudienceOf(t *testing.T) {
	fed := auth.Principal{Org: "ksbsi", Kind: auth.Federation}
	unit := auth.Principal{Org: "disnaker-dki", Kind: auth.TrainingUnit, Province: "31"}
	for _, c := range []struct {
		p         auth.Principal
		fed, unit string
		want      disclosure.Audience
	}{
		{auth.Principal{Org: "admin", Kind: auth.Admin}, "organizations/ksbsi", "", disclosure.Admin},
		{fed, "organizations/ksbsi", "", disclosure.OwnFederation},
		{fed, "organizations/kspi", "", disclosure.OtherFederation},
		{unit, "organizations/ksbsi", "organizations/disnaker-dki", disclosure.OwnUnit},
		{unit, "organizations/ksbsi", "organizations/kemnaker", disclosure.Unit},
		{unit, "organizations/ksbsi", "", disclosure.Unit},
		{auth.Principal{Org: "pengawas", Kind: auth.Inspector}, "organizations/ksbsi", "organizations/pengawas", disclosure.Inspectorate},
		{auth.Principal{Org: "x"}, "organizations/x", "", disclosure.OtherFederation},
	} {
		if got := disclosure.Of(c.p, c.fed, c.unit); got != c.want {
			t.Errorf("Of(%v, %s, %s) = %s, want %s", c.p, c.fed, c.unit, got, c.want)
		}
	}
}

// TestREADMEShowsTheTable fails when README.md's generated section differs from
// the table; `make readme` rewrites it.
func TestREADMEShowsTheTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := disclosure.Rewrite(readme)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(readme) {
		t.Error("README.md's disclosure table is out of date: run `make readme` and commit")
	}
}
