package cadre

import (
	"net/mail"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
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
				v.Add("birth_date", badDateFormat)
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

// badDateFormat is the violation of a birth date that is not a date at all (one
// that is a date but disagrees with the NIK may mean the NIK is wrong).
const badDateFormat = "must be a date written YYYY-MM-DD"

// leftOut says which violations an import may settle by leaving the value out:
// optional values that cannot be read. A birth date or gender that disagrees
// with the NIK is not among them, since the NIK itself may be what is wrong.
func leftOut(fv *errdetails.BadRequest_FieldViolation) bool {
	switch fv.Field {
	case "phone", "email", "regency", "employer.name", "employer.nib", "union_member_number", "bpjs_kpj":
		return true
	case "birth_date":
		return fv.Description == badDateFormat
	}
	return false
}

// lenient is normalize for an import row: when every problem is an optional
// value that cannot be read, the row is taken without those values and the
// problems are returned as warnings; otherwise the problems are the row's.
func lenient(in *knkv1.Cadre, now time.Time, minAge int) (c *knkv1.Cadre, problems, warnings api.Violations) {
	c, v := normalize(in, now, minAge)
	if len(v) == 0 || !all(v, leftOut) {
		return c, v, nil
	}
	without := proto.Clone(in).(*knkv1.Cadre)
	for _, fv := range v {
		setField(without, fv.Field, "")
	}
	c, problems = normalize(without, now, minAge)
	return c, problems, v
}

func all[T any](s []T, f func(T) bool) bool {
	for _, x := range s {
		if !f(x) {
			return false
		}
	}
	return true
}

// field is the value of a registration field of c, by its path.
func field(c *knkv1.Cadre, path string) string {
	switch path {
	case "display_name":
		return c.GetDisplayName()
	case "nik":
		return c.GetNik()
	case "birth_date":
		return c.GetBirthDate()
	case "gender":
		return c.GetGender().String()
	case "phone":
		return c.GetPhone()
	case "email":
		return c.GetEmail()
	case "province_code":
		return c.GetProvinceCode()
	case "regency":
		return c.GetRegency()
	case "employer.name":
		return c.GetEmployer().GetName()
	case "employer.nib":
		return c.GetEmployer().GetNib()
	case "union_member_number":
		return c.GetUnionMemberNumber()
	case "bpjs_kpj":
		return c.GetBpjsKpj()
	case "federation":
		return c.GetFederation()
	}
	return ""
}

// setField sets a text registration field of c by its path.
func setField(c *knkv1.Cadre, path, value string) {
	src := &knkv1.Cadre{Employer: &knkv1.Employer{}}
	switch path {
	case "birth_date":
		c.BirthDate = value
		return
	case "employer.name":
		src.Employer.Name = value
	case "employer.nib":
		src.Employer.Nib = value
	}
	src.DisplayName, src.Phone, src.Email, src.ProvinceCode, src.Regency = value, value, value, value, value
	src.UnionMemberNumber, src.BpjsKpj = value, value
	applyMask(c, src, []string{path})
}

// given lists the update paths of the values an import row gives: an empty cell
// means "not given", so it never erases a stored value.
func given(c *knkv1.Cadre) []string {
	var paths []string
	for _, p := range []string{"display_name", "phone", "email", "province_code", "regency", "employer.name",
		"employer.nib", "union_member_number", "bpjs_kpj"} {
		if field(c, p) != "" {
			paths = append(paths, p)
		}
	}
	return paths
}

// differs reports whether applying an import row's given values would change
// the stored cadre.
func differs(stored, row *knkv1.Cadre) bool {
	next := proto.Clone(stored).(*knkv1.Cadre)
	applyMask(next, row, given(row))
	return !proto.Equal(next, stored)
}
