package cadre

import (
	"net/mail"
	"strconv"
	"strings"
	"time"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/idn"
	"github.com/knk-id/knk/internal/text"
)

// normalize checks a cadre's registration data against DOMAIN.md and returns it in
// stored form (trimmed text, E.164 phone, birth date and gender from the NIK).
// Violations name fields relative to the cadre ("nik", "employer.nib").
// federation is checked by the caller, who knows the principal.
func normalize(in *knkv1.Cadre, now time.Time, minAge int) (*knkv1.Cadre, api.Violations) {
	var v api.Violations
	c := &knkv1.Cadre{
		Nik:          idn.CleanNIK(in.GetNik()),
		ProvinceCode: strings.TrimSpace(in.GetProvinceCode()),
		BpjsKpj:      strings.TrimSpace(in.GetBpjsKpj()),
		Federation:   strings.TrimSpace(in.GetFederation()),
		Employer: &knkv1.Employer{
			Nib: strings.TrimSpace(in.GetEmployer().GetNib()),
		},
	}
	c.DisplayName = v.Text("display_name", in.GetDisplayName(), text.Name.Must())
	c.Regency = v.Text("regency", in.GetRegency(), text.Place)
	c.Employer.Name = v.Text("employer.name", in.GetEmployer().GetName(), text.Name)
	c.UnionMemberNumber = v.Text("union_member_number", in.GetUnionMemberNumber(), text.Code)

	if c.Nik == "" {
		v.Add("nik", "is required")
	} else if nik, err := idn.ParseNIK(c.Nik, now); err != nil {
		v.Add("nik", err.Error())
	} else {
		c.BirthDate = nik.BirthDate.Format(time.DateOnly)
		c.Gender = knkv1.Cadre_GENDER_MALE
		if nik.Female {
			c.Gender = knkv1.Cadre_GENDER_FEMALE
		}
		if b := strings.TrimSpace(in.GetBirthDate()); b != "" && b != c.BirthDate {
			if _, err := time.Parse(time.DateOnly, b); err != nil {
				v.Add("birth_date", "must be a date written YYYY-MM-DD")
			} else {
				v.Add("birth_date", "does not match the birth date encoded in the NIK (digits 7-12)")
			}
		}
		if g := in.GetGender(); g != knkv1.Cadre_GENDER_UNSPECIFIED && g != c.Gender {
			v.Add("gender", "does not match the gender encoded in the NIK (day of birth + 40 for women)")
		}
		if nik.Age(now) < minAge {
			v.Add("nik", "the cadre must be at least "+strconv.Itoa(minAge)+" years old at registration (birth date from the NIK)")
		}
	}

	if p := strings.TrimSpace(in.GetPhone()); p != "" {
		if e164, err := idn.NormalizePhone(p); err != nil {
			v.Add("phone", err.Error())
		} else {
			c.Phone = e164
		}
	}
	if c.Email = v.Text("email", in.GetEmail(), text.Rule{Max: 254}); c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email || len(c.Email) > 254 {
			v.Add("email", "must be a plain e-mail address such as nama@contoh.co.id")
		}
	}
	switch {
	case c.ProvinceCode == "":
		v.Add("province_code", "is required: the two-digit code of the workplace province")
	case !idn.ValidProvince(c.ProvinceCode):
		v.Add("province_code", "is not one of the 38 province codes")
	}
	if c.Employer.Nib != "" && !idn.ValidNIB(c.Employer.Nib) {
		v.Add("employer.nib", "must be the 13-digit NIB from OSS")
	}
	if c.BpjsKpj != "" && !idn.ValidKPJ(c.BpjsKpj) {
		v.Add("bpjs_kpj", "must be the 11-digit BPJS Ketenagakerjaan participant number (KPJ)")
	}
	return c, v
}

// updatable lists the update_mask paths UpdateCadre accepts.
var updatable = map[string]bool{
	"display_name": true, "phone": true, "email": true, "province_code": true, "regency": true,
	"employer": true, "employer.name": true, "employer.nib": true,
	"union_member_number": true, "bpjs_kpj": true,
}

// applyMask copies the fields named by paths from src to dst.
func applyMask(dst, src *knkv1.Cadre, paths []string) {
	if dst.Employer == nil {
		dst.Employer = &knkv1.Employer{}
	}
	for _, p := range paths {
		switch p {
		case "display_name":
			dst.DisplayName = src.GetDisplayName()
		case "phone":
			dst.Phone = src.GetPhone()
		case "email":
			dst.Email = src.GetEmail()
		case "province_code":
			dst.ProvinceCode = src.GetProvinceCode()
		case "regency":
			dst.Regency = src.GetRegency()
		case "employer":
			dst.Employer = &knkv1.Employer{Name: src.GetEmployer().GetName(), Nib: src.GetEmployer().GetNib()}
		case "employer.name":
			dst.Employer.Name = src.GetEmployer().GetName()
		case "employer.nib":
			dst.Employer.Nib = src.GetEmployer().GetNib()
		case "union_member_number":
			dst.UnionMemberNumber = src.GetUnionMemberNumber()
		case "bpjs_kpj":
			dst.BpjsKpj = src.GetBpjsKpj()
		}
	}
}

// populated is the implied update mask of a request without one (AIP-134).
func populated(c *knkv1.Cadre) []string {
	var paths []string
	for _, f := range []struct {
		path string
		set  bool
	}{
		{"display_name", c.GetDisplayName() != ""}, {"phone", c.GetPhone() != ""},
		{"email", c.GetEmail() != ""}, {"province_code", c.GetProvinceCode() != ""},
		{"regency", c.GetRegency() != ""}, {"employer", c.GetEmployer() != nil},
		{"union_member_number", c.GetUnionMemberNumber() != ""}, {"bpjs_kpj", c.GetBpjsKpj() != ""},
	} {
		if f.set {
			paths = append(paths, f.path)
		}
	}
	return paths
}

// sameData reports whether an import row repeats what is stored.
func sameData(a, b *knkv1.Cadre) bool {
	return a.Nik == b.Nik && a.DisplayName == b.DisplayName && a.Phone == b.Phone &&
		a.Email == b.Email && a.ProvinceCode == b.ProvinceCode && a.Regency == b.Regency &&
		a.GetEmployer().GetName() == b.GetEmployer().GetName() &&
		a.GetEmployer().GetNib() == b.GetEmployer().GetNib() &&
		a.Federation == b.Federation && a.UnionMemberNumber == b.UnionMemberNumber &&
		a.BpjsKpj == b.BpjsKpj
}
