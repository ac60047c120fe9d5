package cadre

import (
	"context"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/disclosure"
	"github.com/knk-id/knk/services/access"
)

// fieldsClass is what p sees of c by the disclosure table: every personal field
// (the NIK in full: admin, the enrolling federation) or masked ones.
func fieldsClass(p auth.Principal, c *knkv1.Cadre) knkv1.AccessLogEntry_Fields {
	policy, _ := disclosure.Policy("knk.v1.Cadre")
	if policy.Field("nik").For(disclosure.Of(p, c.Federation, "")) == disclosure.Shown {
		return access.Full
	}
	return access.Masked
}

// trail records in the access trail, before the answer leaves, that the request
// read one cadre.
func (s *Service) trail(ctx context.Context, method string, p auth.Principal, c *knkv1.Cadre) error {
	if s.Access == nil {
		return nil
	}
	return s.Access.Record(ctx, method, fieldsClass(p, c), c.Name)
}

// trailPage records a list page that shows personal fields unmasked: one entry
// naming every cadre of the page. Pages with masked fields only are not recorded.
func (s *Service) trailPage(ctx context.Context, method string, p auth.Principal, page []*knkv1.Cadre) error {
	if s.Access == nil {
		return nil
	}
	names := make([]string, 0, len(page))
	full := false
	for _, c := range page {
		names = append(names, c.Name)
		full = full || fieldsClass(p, c) == access.Full
	}
	if !full {
		return nil
	}
	return s.Access.Record(ctx, method, access.Full, names...)
}
