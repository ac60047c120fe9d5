package training

import (
	"context"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// ForCadre returns every enrolment of the cadre (cadres/{id}) with attendance
// and scores (for a data-subject export).
func (s *Service) ForCadre(ctx context.Context, cadre string) ([]*knkv1.Enrollment, error) {
	return cadreEnrollments(ctx, s.DB, strings.TrimPrefix(cadre, "cadres/"))
}
