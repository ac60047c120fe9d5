// Package disclosure is the registry's one policy on personal data in answers:
// for every resource that is about a person, and for every field of it, what each
// audience sees — the field in full, masked, or nothing — with the reason for
// every grant beyond admin and the cadre's own federation.
//
// Services decide which records a caller may read (scope); this package decides
// what of each record the caller sees. Every service calls Apply once, when it
// maps a record to the answer. The README's "Personal data" table is generated
// from Table (go run ./internal/disclosure/readme).
package disclosure

import (
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/knk-id/knk/internal/auth"
)

// Level is how much of a field an audience sees.
type Level int

// Levels, least first.
const (
	Hidden Level = iota // the field is left empty
	Masked              // a masked form (see Mask)
	Shown               // the field as stored
)

func (l Level) String() string {
	return [...]string{"hidden", "masked", "shown"}[l]
}

// Audience is who reads a record, relative to the person it is about.
type Audience int

// Audiences.
const (
	Admin Audience = iota
	// OwnFederation is the federation that enrolled the cadre (for a transfer
	// request: the federation asked to let the cadre go).
	OwnFederation
	// OtherFederation is any other federation (for a transfer request: the
	// federation that asked for the cadre).
	OtherFederation
	// OwnUnit is the training unit that issued the certificate or runs the
	// session the record belongs to.
	OwnUnit
	// Unit is any other training unit whose scope covers the record.
	Unit
	// Inspectorate is a labour inspectorate whose scope covers the record.
	Inspectorate
)

// Audiences lists every audience in table order.
var Audiences = []Audience{Admin, OwnFederation, OtherFederation, OwnUnit, Unit, Inspectorate}

func (a Audience) String() string {
	return [...]string{"admin", "own federation", "other federation", "own unit", "other unit", "inspectorate"}[a]
}

// Of is the audience of p for a record about a cadre enrolled by federation
// (organizations/{id}); unit is the training unit that issued the certificate or
// runs the session the record belongs to ("" for none).
func Of(p auth.Principal, federation, unit string) Audience {
	switch p.Kind {
	case auth.Admin:
		return Admin
	case auth.Federation:
		if federation == p.OrgName() {
			return OwnFederation
		}
		return OtherFederation
	case auth.TrainingUnit:
		if unit != "" && unit == p.OrgName() {
			return OwnUnit
		}
		return Unit
	case auth.Inspector:
		return Inspectorate
	}
	return OtherFederation // an unknown role sees what a stranger sees
}

// Field is one field of a resource and what each audience sees of it.
type Field struct {
	Name string // the proto field name
	// Levels by audience, in the order of Audiences.
	Admin, OwnFederation, OtherFederation, OwnUnit, Unit, Inspectorate Level
	// Why gives the reason for every grant to a unit, an inspectorate or another
	// federation, and for what is held back.
	Why string
}

// For is the level of audience a.
func (f Field) For(a Audience) Level {
	return [...]Level{f.Admin, f.OwnFederation, f.OtherFederation, f.OwnUnit, f.Unit, f.Inspectorate}[a]
}

// Resource is the policy of one message type.
type Resource struct {
	Message protoreflect.FullName
	Title   string
	Fields  []Field
}

// Field returns the policy of the field name ("" Name if there is none).
func (r Resource) Field(name string) Field {
	for _, f := range r.Fields {
		if f.Name == name {
			return f
		}
	}
	return Field{}
}

// all is a field every audience that can reach the record sees in full, but a
// federation it does not belong to.
func all(name, why string) Field {
	return Field{Name: name, Admin: Shown, OwnFederation: Shown, OwnUnit: Shown, Unit: Shown, Inspectorate: Shown, Why: why}
}

// own is a field only admin and the cadre's own federation see.
func own(name, why string) Field {
	return Field{Name: name, Admin: Shown, OwnFederation: Shown, Why: why}
}

// Table is the disclosure policy. A field missing from it is hidden from
// everyone but nobody (Apply clears it), and a test requires every field of
// every listed message to be here.
var Table = []Resource{
	{Message: "knk.v1.Cadre", Title: "Cadre", Fields: []Field{
		all("name", "the cadre's id: units enrol it, record its results and certify it; inspectors follow it up"),
		all("display_name", "units take attendance and print it on the certificate; inspectors meet the cadre at the company"),
		{Name: "nik", Admin: Shown, OwnFederation: Shown, OwnUnit: Masked, Unit: Masked, Inspectorate: Masked,
			Why: "the last four digits tell namesakes apart; any more rebuilds the NIK (digits 7–12 are the birth date and gender)"},
		own("birth_date", "held back: with the region it is most of the NIK; the minimum age is checked at registration"),
		own("gender", "held back: it is coded into the NIK's day of birth (+40 for women)"),
		own("phone", "held back: a federation reaches its own members; no unit or inspectorate task needs it"),
		own("email", "held back: as phone"),
		all("province_code", "the scope of units and inspectorates, and where the cadre is trained"),
		all("regency", "units plan sessions near the cadre; inspectors plan visits"),
		{Name: "employer", Admin: Shown, OwnFederation: Shown, Inspectorate: Shown,
			Why: "inspectors track which companies have a cadre (Kepmenakertrans 257/2014); a unit's training does not need it"},
		{Name: "federation", Admin: Shown, OwnFederation: Shown, OwnUnit: Shown, Unit: Shown,
			Why: "units arrange enrolment and results with the federation; union membership is sensitive and inspecting an employer does not need it"},
		own("union_member_number", "held back: the union's own register"),
		own("bpjs_kpj", "held back: inspectors check the employer's BPJS participation, not one worker's number"),
		all("state", "the cadre's standing in the programme is what units and inspectors work with"),
		all("passed_topics", "units enrol the cadre in what is still missing; inspectors see what was learnt"),
		all("certificate", "as state"),
		all("forum", "inspectorates guide the Forum KNK"),
		own("withdraw_reason", "held back: free text about the person, written by the federation"),
		all("create_time", "no personal data"),
		all("update_time", "no personal data"),
		all("etag", "no personal data"),
	}},
	{Message: "knk.v1.Certificate", Title: "Certificate", Fields: []Field{
		all("name", "the certificate's number: public on the certificate itself"),
		all("cadre", "links the certificate to the cadre, who is in the reader's scope"),
		all("holder_name", "printed on the certificate and shown by the public verification"),
		all("province_code", "as holder_name"),
		all("topics", "as holder_name"),
		all("issuer", "as holder_name"),
		all("issue_time", "as holder_name"),
		all("expire_time", "as holder_name"),
		all("state", "as holder_name"),
		{Name: "revoke_reason", Admin: Shown, OwnFederation: Shown, OwnUnit: Shown, Unit: Shown,
			Why: "units revoke and reissue; free text about the person is not an inspector's business"},
		all("revoke_time", "shown by the public verification"),
		all("signature", "public: anyone may check it with the published keys"),
		all("key_id", "as signature"),
		{Name: "verification_code", Admin: Shown, OwnFederation: Shown, OwnUnit: Shown,
			Why: "whoever holds the code reads the holder's name without a key: the unit that issued it hands it over, the federation keeps it for its member"},
		all("canonical_version", "which signed form the signature covers; no personal data"),
	}},
	{Message: "knk.v1.Enrollment", Title: "Enrolment and results", Fields: []Field{
		all("name", "the enrolment's id"),
		all("cadre", "the enrolled cadre's id (its other fields follow the cadre table)"),
		all("attended", "units take attendance; inspectors check that training took place"),
		{Name: "scores", Admin: Shown, OwnFederation: Shown, OwnUnit: Shown, Unit: Shown,
			Why: "units record and follow scores; an inspector needs the passed topics on the cadre, not a person's marks"},
		all("create_time", "no personal data"),
		all("cadre_display_name", "units take attendance by name; as the cadre's display_name"),
		all("state", "enrolled or waitlisted: who holds a place is what the unit plans the day with"),
		all("waitlist_position", "as state"),
		all("waitlist_note", "why a waitlisted cadre was passed over (a clash of dates); no personal data"),
		all("days_present", "as attended, day by day"),
	}},
	{Message: "knk.v1.ForumMembership", Title: "Forum membership", Fields: []Field{
		all("name", "the membership's id"),
		all("cadre", "the member's id (its other fields follow the cadre table)"),
		all("certificate", "the certificate the membership rests on"),
		all("state", "inspectorates guide the forums and need their members"),
		all("join_time", "as state"),
		all("end_time", "as state"),
		all("end_reason", "as state"),
		all("cadre_display_name", "inspectorates guide the forum's members by name; as the cadre's display_name"),
	}},
	{Message: "knk.v1.TransferRequest", Title: "Transfer request", Fields: []Field{
		{Name: "name", Admin: Shown, OwnFederation: Shown, OtherFederation: Shown,
			Why: "the requesting federation follows its own request"},
		own("cadre", "held back from the requester until the transfer is approved: it would name the cadre and its federation"),
		own("from_federation", "held back from the requester: a NIK registered elsewhere says nothing about whom"),
		{Name: "to_federation", Admin: Shown, OwnFederation: Shown, OtherFederation: Shown,
			Why: "the federation asked sees who asks; the requester sees itself"},
		{Name: "state", Admin: Shown, OwnFederation: Shown, OtherFederation: Shown, Why: "as name"},
		{Name: "reject_reason", Admin: Shown, OwnFederation: Shown, OtherFederation: Shown, Why: "as name"},
		{Name: "create_time", Admin: Shown, OwnFederation: Shown, OtherFederation: Shown, Why: "as name"},
		{Name: "decide_time", Admin: Shown, OwnFederation: Shown, OtherFederation: Shown, Why: "as name"},
	}},
}

var byMessage = func() map[protoreflect.FullName]Resource {
	m := map[protoreflect.FullName]Resource{}
	for _, r := range Table {
		m[r.Message] = r
	}
	return m
}()

// Policy returns the policy of a message type; ok is false for a message the
// table does not cover.
func Policy(msg protoreflect.FullName) (Resource, bool) {
	r, ok := byMessage[msg]
	return r, ok
}

// maskers are the masked forms, by message and field.
var maskers = map[string]func(string) string{
	"knk.v1.Cadre.nik": LastFour,
}

// Mask returns the masked form of value in field name of msg.
func Mask(msg protoreflect.FullName, name, value string) string {
	return maskers[string(msg)+"."+name](value)
}

// LastFour masks all but the last four characters of a NIK: "************0004".
// Anything that is not 16 ASCII digits is masked whole.
func LastFour(s string) string {
	if len(s) == 16 && strings.Trim(s, "0123456789") == "" {
		return strings.Repeat("*", 12) + s[12:]
	}
	return strings.Repeat("*", len([]rune(s)))
}

// Apply leaves in m only what audience a may see: hidden fields are cleared and
// masked ones replaced by their masked form. m must be a message the table
// covers (Apply panics otherwise: a new resource about a person needs a policy
// before it can be answered).
func Apply(m proto.Message, a Audience) {
	if m == nil {
		return
	}
	r := m.ProtoReflect()
	if !r.IsValid() {
		return
	}
	pol, ok := byMessage[r.Descriptor().FullName()]
	if !ok {
		panic("disclosure: no policy for " + r.Descriptor().FullName())
	}
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch pol.Field(string(fd.Name())).For(a) {
		case Hidden:
			r.Clear(fd)
		case Masked:
			if r.Has(fd) {
				r.Set(fd, protoreflect.ValueOfString(Mask(pol.Message, string(fd.Name()), r.Get(fd).String())))
			}
		}
	}
}

// Visible reports whether audience a sees field name of msg in any form. A list
// filter on a field the caller may not see would tell it the field, so services
// refuse such filters.
func Visible(msg protoreflect.FullName, name string, a Audience) bool {
	return byMessage[msg].Field(name).For(a) != Hidden
}

// InScope is the audience of p for a record that the query already restricted
// to cadres in p's scope, where a federation only ever reads its own cadres'
// records; unit is as in Of.
func InScope(p auth.Principal, unit string) Audience {
	return Of(p, p.OrgName(), unit)
}
